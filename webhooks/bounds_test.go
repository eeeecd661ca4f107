package webhooks

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/fixtures"
)

// edit returns the sign-in fixture (or invite fixture for an invite event)
// changed by change.
func edit(name string, change func(doc map[string]any)) []byte {
	return fixtures.EditEnvoy(name, change)
}

func path(doc map[string]any, keys ...string) map[string]any {
	cur := doc
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	return cur
}

// TestParseBounds: every field latchkey stores is refused, naming the
// field, beyond its bound; at the bound it is accepted.
func TestParseBounds(t *testing.T) {
	const signIn, invite = "envoy-plugin-event-entry_sign_in.json", "envoy-plugin-event-invite_created.json"
	attr := func(key string, v any) func(map[string]any) {
		return func(d map[string]any) { path(d, "payload", "attributes")[key] = v }
	}
	rel := func(name, id string) func(map[string]any) {
		return func(d map[string]any) { path(d, "payload", "relationships", name, "data")["id"] = id }
	}
	long := func(n int) string { return strings.Repeat("é", n) } // two bytes, one character
	id := func(n int) string { return strings.Repeat("7", n) }
	tests := []struct {
		name    string
		fixture string
		change  func(map[string]any)
		field   string // "" means accepted
	}{
		{"name at 200 characters", signIn, attr("full-name", long(200)), ""},
		{"name over 200 characters", signIn, attr("full-name", long(201)), "payload.attributes.full-name"},
		{"name of 100,000 characters", signIn, attr("full-name", strings.Repeat("x", 100000)), "payload.attributes.full-name"},
		{"NUL in a name", signIn, attr("full-name", "Jane\x00Visitor"), "payload.attributes.full-name"},
		{"newline in a name", signIn, attr("full-name", "Jane\nBcc: x@example.com"), "payload.attributes.full-name"},
		{"NUL in an email", signIn, attr("email", "a\x00@example.com"), "payload.attributes.email"},
		{"email at 320 characters", signIn, attr("email", strings.Repeat("a", 308)+"@example.com"), ""},
		{"email over 320 characters", signIn, attr("email", strings.Repeat("a", 309)+"@example.com"), "payload.attributes.email"},
		{"phone over 64 characters", signIn, attr("phone-number", id(65)), "payload.attributes.phone-number"},
		{"flow name over 200 characters", signIn, attr("flow-name", long(201)), "payload.attributes.flow-name"},
		{"approval status over 64 characters", signIn, attr("approval-status", map[string]any{"status": id(65)}), "payload.attributes.approval-status.status"},
		{"entry id at 64 characters", signIn, func(d map[string]any) { d["payload"].(map[string]any)["id"] = id(64) }, ""},
		{"entry id over 64 characters", signIn, func(d map[string]any) { d["payload"].(map[string]any)["id"] = id(65) }, "payload.id"},
		{"NUL in an entry id", signIn, func(d map[string]any) { d["payload"].(map[string]any)["id"] = "1\x002" }, "payload.id"},
		{"flow id over 64 characters", signIn, rel("flow", id(65)), "payload.relationships.flow.data.id"},
		{"invite id over 64 characters", signIn, rel("invite", id(65)), "payload.relationships.invite.data.id"},
		{"location id over 64 characters", signIn, rel("location", id(65)), "payload.relationships.location.data.id"},
		{"entry of an invite over 64 characters", invite, rel("entry", id(65)), "payload.relationships.entry.data.id"},
		{"invite flow-id over 64 characters", invite, func(d map[string]any) {
			path(d, "payload", "attributes")["flow-id"] = json.Number(id(65))
			delete(path(d, "payload", "relationships"), "flow")
		}, "payload.attributes.flow-id"},
		{"job id over 64 characters", signIn, func(d map[string]any) { path(d, "meta", "job")["id"] = id(65) }, "meta.job.id"},
		{"install id over 64 characters", signIn, func(d map[string]any) { path(d, "meta")["install_id"] = id(65) }, "meta.install_id"},
		{"meta location id over 64 characters", signIn, func(d map[string]any) { path(d, "meta", "location")["id"] = id(65) }, "meta.location.id"},
		{"event name over 64 characters", signIn, func(d map[string]any) { path(d, "meta")["event"] = "entry_" + id(60) }, "meta.event"},
		{"NUL in an unknown event's name", signIn, func(d map[string]any) { path(d, "meta")["event"] = "x\x00" }, "meta.event"},
		{"time zone over 64 characters", signIn, func(d map[string]any) { path(d, "meta", "location", "attributes")["timezone"] = "Europe/" + id(60) }, "meta.location.attributes.timezone"},
		{"time zone with a NUL", signIn, func(d map[string]any) { path(d, "meta", "location", "attributes")["timezone"] = "UTC\x00" }, "meta.location.attributes.timezone"},
		{"sign-in in year 9999", signIn, attr("signed-in-at", "9999-12-31 23:00:00 UTC"), ""},
		{"sign-in past 9999 after zone conversion", signIn, attr("signed-in-at", "9999-12-31T23:00:00-05:00"), "payload.attributes.signed-in-at"},
		{"sign-in before 1970", signIn, attr("signed-in-at", "1969-12-31 23:59:59 UTC"), "payload.attributes.signed-in-at"},
		{"sign-in at the epoch", signIn, attr("signed-in-at", "1970-01-01 00:00:00 UTC"), ""},
		{"arrival before 1970 after zone conversion", invite, attr("expected-arrival-time", "1970-01-01T00:30:00+01:00"), "payload.attributes.expected-arrival-time"},
		{"sign-out in year 0", signIn, attr("signed-out-at", "0000-01-01 00:00:00 UTC"), "payload.attributes.signed-out-at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(edit(tt.fixture, tt.change))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one naming %s", tt.field)
			}
			if k := latchkey.KindOf(err); k != latchkey.Invalid {
				t.Errorf("got kind %v, want %v", k, latchkey.Invalid)
			}
			msg := latchkey.Message(err)
			if !strings.HasPrefix(msg, tt.field+" ") && !strings.HasPrefix(msg, tt.field+":") {
				t.Errorf("got message %q, want it to name %s first", msg, tt.field)
			}
			if len(msg) > 300 {
				t.Errorf("message is %d bytes long; it must not echo the whole value", len(msg))
			}
		})
	}
}

// TestParseTruncatesToSeconds: times are compared at the controller's
// precision, whole seconds.
func TestParseTruncatesToSeconds(t *testing.T) {
	d, err := Parse(edit("envoy-plugin-event-entry_sign_in.json", func(d map[string]any) {
		path(d, "payload", "attributes")["signed-in-at"] = "2026-05-04T08:00:00.999Z"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC); !d.Event.SignedInAt.Equal(want) {
		t.Errorf("got %v, want %v", d.Event.SignedInAt, want)
	}
}
