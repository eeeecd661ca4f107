package webhooks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/fixtures"
)

// readFixture returns the body of fixture name; SDK payloads, which are bare
// resources, come wrapped in a plugin-style meta for event.
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	return fixtures.Envoy(name)
}

// wrapPayload wraps a bare payload in a plugin-style body for event.
func wrapPayload(event string, payload []byte) []byte {
	return fmt.Appendf(nil, `{"meta":{"event":%q,"install_id":"65699","job":{"id":"sdk-job-%s"},`+
		`"location":{"id":"177837","attributes":{"timezone":"Asia/Dhaka"}}},"payload":%s}`, event, event, payload)
}

func sqlUTC(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseFixtures(t *testing.T) {
	dhakaEntry := func(id string) connector.Event {
		return connector.Event{
			Kind: connector.EventSignIn, InstallID: "65699", LocationID: "177837", TimeZone: "Asia/Dhaka",
			FlowID: "359435", FlowName: "Visitor", EntryID: id, FullName: "Jane Visitor",
			Email: "visitor@example.com", ApprovalStatus: "approved",
			LocationName: "Head Office", LocationAddress: "1 Example Street, Example City", Locale: "en",
		}
	}
	walkIn := dhakaEntry("141649852")
	walkIn.SignedInAt = sqlUTC("2022-09-22 10:07:07")
	invited := dhakaEntry("140873360")
	invited.InviteID = "43335901"
	invited.HostName, invited.HostEmail = "Harry Host", "host@example.com"
	invited.SignedInAt = sqlUTC("2022-09-15 10:35:58")
	out := dhakaEntry("140353831")
	out.Kind = connector.EventSignOut
	out.SignedInAt = sqlUTC("2022-09-12 10:49:36")
	out.SignedOutAt = sqlUTC("2022-09-12 10:57:53")
	out.HostName, out.HostEmail = "Harry Host", "host@example.com"

	tests := []struct {
		file    string
		wrap    string // event to wrap a bare SDK payload in
		want    Delivery
		wantErr string
	}{
		{
			file: "envoy-plugin-event-entry_sign_in.json",
			want: Delivery{Event: walkIn, Kind: "entry_sign_in", Known: true,
				JobID: "292bed38-7cda-4da2-9569-aadaf6cf7767", DedupeKey: "292bed38-7cda-4da2-9569-aadaf6cf7767"},
		},
		{
			file: "envoy-plugin-event-entry_sign_in-invited.json",
			want: Delivery{Event: invited, Kind: "entry_sign_in", Known: true,
				JobID: "9096f975-e048-433e-8ddb-4446ca0509e9", DedupeKey: "9096f975-e048-433e-8ddb-4446ca0509e9"},
		},
		{
			file: "envoy-plugin-event-entry_sign_out.json",
			want: Delivery{Event: out, Kind: "entry_sign_out", Known: true,
				JobID: "081d84a9-5540-445f-b4c7-2a14a8675cff", DedupeKey: "081d84a9-5540-445f-b4c7-2a14a8675cff"},
		},
		{
			file: "envoy-plugin-event-invite_created.json",
			want: Delivery{
				Event: connector.Event{
					Kind: connector.EventInviteCreated, InstallID: "65699", LocationID: "177837",
					TimeZone: "Asia/Dhaka", FlowID: "359435", FlowName: "Visitor", InviteID: "43116507",
					FullName: "Jane Visitor", Email: "visitor@example.com",
					ExpectedArrival: time.Date(2022, 9, 13, 7, 15, 0, 0, time.UTC), ApprovalStatus: "approved",
					HostName: "Harry Host", HostEmail: "host@example.com",
					LocationName: "Head Office", LocationAddress: "1 Example Street, Example City", Locale: "en",
				},
				Kind: "invite_created", Known: true,
				JobID: "001871d5-30ad-4dc1-bd67-56a028a939af", DedupeKey: "001871d5-30ad-4dc1-bd67-56a028a939af",
			},
		},
		{
			file: "envoy-sdk-test-entry-payload.json",
			wrap: "entry_sign_in",
			want: Delivery{
				Event: connector.Event{
					Kind: connector.EventSignIn, InstallID: "65699", LocationID: "loc1", TimeZone: "Asia/Dhaka",
					FlowName: "Default", EntryID: "1", FullName: "Jane Doe", Email: "jane@example.com",
					SignedInAt: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC),
				},
				Kind: "entry_sign_in", Known: true, JobID: "sdk-job-entry_sign_in", DedupeKey: "sdk-job-entry_sign_in",
			},
		},
		{
			file: "envoy-sdk-test-invite-payload.json",
			wrap: "invite_created",
			want: Delivery{
				Event: connector.Event{
					Kind: connector.EventInviteCreated, InstallID: "65699", LocationID: "loc1", TimeZone: "Asia/Dhaka",
					FlowID: "flow1", FlowName: "Default", InviteID: "1", FullName: "Jane Doe", Email: "jane@example.com",
					ExpectedArrival: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC),
				},
				Kind: "invite_created", Known: true, JobID: "sdk-job-invite_created", DedupeKey: "sdk-job-invite_created",
			},
		},
		{
			// Not a plugin delivery: the 2015 v1 webhook shape has no event name.
			file:    "envoy-classic-webhook-v1-shape.json",
			wantErr: "event name is missing: expected meta.event or event",
		},
		{
			// Plugin API request/response examples, not a delivery.
			file:    "envoy-plugin-api-examples.json",
			wantErr: "event name is missing: expected meta.event or event",
		},
	}

	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			if tt.wrap != "" {
				body = wrapPayload(tt.wrap, body)
			}
			got, err := Parse(body)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got no error, want %q", tt.wantErr)
				}
				if k := latchkey.KindOf(err); k != latchkey.Invalid {
					t.Errorf("got kind %v, want %v", k, latchkey.Invalid)
				}
				if msg := latchkey.Message(err); msg != tt.wantErr {
					t.Errorf("got message %q, want %q", msg, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", d)
			}
		})
	}

	// Every fixture must be in the table, so a new one is not silently skipped.
	var missing []string
	for _, name := range fixtures.EnvoyNames() {
		if !covered[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("got fixtures without a test case %v, want none", missing)
	}
}

// mutateFixture decodes a fixture, lets edit change it and encodes it again.
func mutateFixture(tb testing.TB, name string, edit func(body map[string]any)) []byte {
	tb.Helper()
	var body map[string]any
	if err := json.Unmarshal(readFixture(tb, name), &body); err != nil {
		tb.Fatalf("decode fixture %s: %v", name, err)
	}
	edit(body)
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatalf("encode fixture %s: %v", name, err)
	}
	return b
}

func obj(v any, keys ...string) map[string]any {
	m := v.(map[string]any)
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

func TestParseFallbacks(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want func(d *Delivery) // applied to the fixture's normal result
	}{
		{
			name: "flow id from a numeric flow-id attribute",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				delete(obj(b, "payload", "relationships"), "flow")
			}),
		},
		{
			name: "flow id from a string flow-id attribute",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				delete(obj(b, "payload", "relationships"), "flow")
				obj(b, "payload", "attributes")["flow-id"] = "359435"
			}),
		},
		{
			name: "location id from meta when the payload has none",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				delete(obj(b, "payload", "relationships"), "location")
			}),
		},
		{
			name: "time zone from time-zone when timezone is absent",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				delete(obj(b, "meta", "location", "attributes"), "timezone")
			}),
		},
		{
			name: "top-level event without meta",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				delete(b, "meta")
				b["event"] = "invite_created"
			}),
			want: func(d *Delivery) {
				d.JobID, d.Event.InstallID, d.Event.TimeZone = "", "", ""
				d.Event.LocationName, d.Event.LocationAddress, d.Event.Locale = "", "", ""
				d.DedupeKey = dedupeKey("", "invite_created", eventFields(d.Event)) // see TestDedupeKey
				d.LegacyKey, _ = legacyEventKey("", "invite_created", d.Event)
			},
		},
		{
			name: "meta.event wins over a top-level event",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				b["event"] = "entry_sign_in"
			}),
		},
		{
			name: "RFC 3339 arrival with an offset is converted to UTC",
			body: mutateFixture(t, "envoy-plugin-event-invite_created.json", func(b map[string]any) {
				obj(b, "payload", "attributes")["expected-arrival-time"] = "2022-09-13T13:15:00.000+06:00"
			}),
		},
	}
	base, err := Parse(readFixture(t, "envoy-plugin-event-invite_created.json"))
	if err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := base
			if tt.want != nil {
				tt.want(&want)
			}
			got, err := Parse(tt.body)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseTimestamps(t *testing.T) {
	want := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Time
	}{
		{"SQL with UTC", "2024-01-15 10:30:00 UTC", want},
		{"SQL without zone is UTC", "2024-01-15 10:30:00", want},
		{"SQL with fraction", "2024-01-15 10:30:00.000 UTC", want},
		{"RFC 3339", "2024-01-15T10:30:00Z", want},
		{"RFC 3339 with millis", "2024-01-15T10:30:00.000Z", want},
		{"RFC 3339 with offset", "2024-01-15T05:30:00-05:00", want},
		{"empty", "", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Appendf(nil, `{"meta":{"event":"entry_sign_in"},"payload":{"id":"1","type":"entries","attributes":{"signed-in-at":%q}}}`, tt.in)
			d, err := Parse(body)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := d.Event.SignedInAt; !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v in UTC", got, tt.want)
			}
		})
	}
}

func TestParseNulls(t *testing.T) {
	body := []byte(`{"meta":{"event":"entry_sign_out","install_id":null,"job":null,"location":{"id":null,"attributes":null},"config":null},
		"payload":{"id":"7","type":"entries","attributes":{"full-name":"A B","email":null,"phone-number":null,"flow-name":null,
		"flow-id":null,"signed-in-at":"2024-01-15 10:30:00 UTC","signed-out-at":null,"expected-arrival-time":null,"approval-status":null},
		"relationships":{"invite":{"data":null},"flow":null,"location":{"data":{"id":"177837","type":"locations"}},"agreeable-ndas":{"data":[]}}}}`)
	got, err := Parse(body)
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	want := Delivery{
		Event: connector.Event{Kind: connector.EventSignOut, LocationID: "177837", EntryID: "7", FullName: "A B",
			SignedInAt: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)},
		Kind: "entry_sign_out", Known: true,
	}
	if !strings.HasPrefix(got.DedupeKey, "v1:sha256:") || !strings.HasPrefix(got.LegacyKey, "sha256:") {
		t.Errorf("DedupeKey = %q, LegacyKey = %q, want hashes of the delivery", got.DedupeKey, got.LegacyKey)
	}
	got.DedupeKey, got.LegacyKey = "", ""
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Parse() mismatch (-want +got):\n%s", d)
	}
}

func TestParseUnknownEvent(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Delivery
	}{
		{
			name: "employee event with an odd payload",
			body: `{"meta":{"event":"employee_entry_sign_in","install_id":"65699","job":{"id":"j1"}},"payload":{"id":5,"attributes":[]}}`,
			want: Delivery{Event: connector.Event{Kind: "employee_entry_sign_in", InstallID: "65699"},
				Kind: "employee_entry_sign_in", JobID: "j1", DedupeKey: "j1"},
		},
		{
			name: "no payload, no job",
			body: `{"event":"desk_sign_in"}`,
			want: Delivery{Event: connector.Event{Kind: "desk_sign_in"}, Kind: "desk_sign_in",
				DedupeKey: dedupeKey("", "desk_sign_in", []field{{"install", ""}, {"location", ""}, {"id", ""}}),
				LegacyKey: legacyKey("", "desk_sign_in", []byte("\x00\x00"))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	entry := func(payload string) string {
		return `{"meta":{"event":"entry_sign_in"},"payload":` + payload + `}`
	}
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty body", ``, "body is not valid JSON: unexpected end of JSON input (at byte 0)"},
		{"truncated", `{"meta":{"event":"entry_sign_in"`, "body is not valid JSON: unexpected end of JSON input (at byte 32)"},
		{"trailing garbage", `{"event":"x"} x`, "body is not valid JSON: invalid character 'x' after top-level value (at byte 15)"},
		{"not an object", `[1,2]`, "body must be an object, not array"},
		{"meta not an object", `{"meta":"entry_sign_in"}`, "meta must be an object, not string"},
		{"event not a string", `{"event":5}`, "event must be a string, not number"},
		{"install id not a string", `{"meta":{"event":"x","install_id":65699}}`, "meta.install_id must be a string, not number"},
		{"no event", `{"payload":{"id":"1"}}`, "event name is missing: expected meta.event or event"},
		{"null body", `null`, "event name is missing: expected meta.event or event"},
		{"known event without payload", `{"meta":{"event":"entry_sign_in"}}`, "payload is missing for event entry_sign_in"},
		{"known event with null payload", entry(`null`), "payload is missing for event entry_sign_in"},
		{"payload not an object", entry(`"1"`), "payload must be an object, not string"},
		{"missing payload id", entry(`{"type":"entries","attributes":{}}`), "payload.id is missing for event entry_sign_in"},
		{"numeric payload id", entry(`{"id":1,"type":"entries"}`), "payload.id must be a string, not number"},
		{"wrong payload type", entry(`{"id":"1","type":"invites"}`), `payload.type is "invites", want "entries" for event entry_sign_in`},
		{"bad timestamp", entry(`{"id":"1","attributes":{"signed-in-at":"yesterday"}}`), `payload.attributes.signed-in-at: "yesterday" is not a time`},
		{"other zone abbreviation", entry(`{"id":"1","attributes":{"signed-in-at":"2024-01-15 10:30:00 EST"}}`), `payload.attributes.signed-in-at: "2024-01-15 10:30:00 EST" is not a time`},
		{"email not a string", entry(`{"id":"1","attributes":{"email":["a"]}}`), "payload.attributes.email must be a string, not array"},
		{"approval status not an object", entry(`{"id":"1","attributes":{"approval-status":"approved"}}`), "payload.attributes.approval-status must be an object, not string"},
		{"flow-id a boolean", `{"meta":{"event":"invite_created"},"payload":{"id":"1","attributes":{"flow-id":true}}}`, "payload.attributes.flow-id must be a string or an integer, not true"},
		{"flow-id a fraction", `{"meta":{"event":"invite_created"},"payload":{"id":"1","attributes":{"flow-id":1.5}}}`, "payload.attributes.flow-id must be a string or an integer, not 1.5"},
		{"flow data an array", entry(`{"id":"1","relationships":{"flow":{"data":[{"id":"2"}]}}}`), "payload.relationships.flow.data must be an object, not array"},
		{"invite relationship a number", entry(`{"id":"1","relationships":{"invite":7}}`), "payload.relationships.invite must be an object, not number"},
		{"location id a number", entry(`{"id":"1","relationships":{"location":{"data":{"id":177837}}}}`), "payload.relationships.location.data.id must be a string, not number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if k := latchkey.KindOf(err); k != latchkey.Invalid {
				t.Errorf("got kind %v, want %v", k, latchkey.Invalid)
			}
			if got := latchkey.Message(err); got != tt.want {
				t.Errorf("got message %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDedupeKeyIsPinned: the key of a delivery without a job id is fixed
// by the named fields and their version, and the key the release before
// stored for the same delivery is still derived, byte for byte.
func TestDedupeKeyIsPinned(t *testing.T) {
	body := mutateFixture(t, "envoy-plugin-event-entry_sign_out.json", func(b map[string]any) { delete(obj(b, "meta"), "job") })
	d, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	const (
		wantKey    = "v1:sha256:"
		wantLegacy = "sha256:"
	)
	if !strings.HasPrefix(d.DedupeKey, wantKey) || len(d.DedupeKey) != len(wantKey)+64 {
		t.Errorf("key %q, want %s and a SHA-256", d.DedupeKey, wantKey)
	}
	// The release before hashed the JSON of connector.Event as it was
	// then; the value it stored for this delivery is written down here,
	// so no later field of connector.Event can move it.
	const storedLegacy = wantLegacy + "1ab9b7d92ccdf1742646a16bdf7da4c7adf6b8bce043879cc6b70bbafac57e50"
	if d.LegacyKey != storedLegacy {
		t.Errorf("legacy key %q, want %q", d.LegacyKey, storedLegacy)
	}
	const stored = "v1:sha256:770071458b26805218652c1d592a2b28a93557b5cc860c237ba9b2f48cd3f132"
	if d.DedupeKey != stored {
		t.Errorf("key %q, want the stored %q", d.DedupeKey, stored)
	}
	if got := dedupeKey("", d.Kind, eventFields(d.Event)); got != d.DedupeKey {
		t.Errorf("key %q is not the one of the named fields, %q", d.DedupeKey, got)
	}
}

func TestDedupeKey(t *testing.T) {
	noJob := func(edit func(b map[string]any)) []byte {
		return mutateFixture(t, "envoy-plugin-event-entry_sign_out.json", func(b map[string]any) {
			delete(obj(b, "meta"), "job")
			if edit != nil {
				edit(b)
			}
		})
	}
	key := func(body []byte) string {
		t.Helper()
		d, err := Parse(body)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return d.DedupeKey
	}
	base := key(noJob(nil))
	tests := []struct {
		name string
		body []byte
		same bool
	}{
		{"same instant in another format", noJob(func(b map[string]any) {
			obj(b, "payload", "attributes")["signed-out-at"] = "2022-09-12T10:57:53Z"
		}), true},
		{"attribute latchkey does not read changed", noJob(func(b map[string]any) {
			obj(b, "payload", "attributes")["host"] = "Someone Else"
		}), true},
		{"different sign-out time", noJob(func(b map[string]any) {
			obj(b, "payload", "attributes")["signed-out-at"] = "2022-09-12 11:00:00 UTC"
		}), false},
		{"different email", noJob(func(b map[string]any) {
			obj(b, "payload", "attributes")["email"] = "other@example.com"
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := key(tt.body); (got == base) != tt.same {
				t.Errorf("key %q, first delivery's %q: same = %v, want %v", got, base, got == base, tt.same)
			}
		})
	}
	if got := key(readFixture(t, "envoy-plugin-event-entry_sign_out.json")); got != "081d84a9-5540-445f-b4c7-2a14a8675cff" {
		t.Errorf("with a job id: key %q, want the job id", got)
	}
}

// TestDisplayFieldsLeaveTheDedupeKey: the host and the location's name,
// address and locale are read, but a delivery's key is what it was before
// latchkey read them, so a retry of a delivery stored then is still a
// duplicate; junk in them (too long, control characters, not a string)
// is cleaned or dropped instead of refusing the delivery.
func TestDisplayFieldsLeaveTheDedupeKey(t *testing.T) {
	strip := func(b map[string]any) {
		delete(obj(b, "meta"), "job")
		a := obj(b, "meta", "location", "attributes")
		delete(a, "name")
		delete(a, "address")
		delete(a, "locale")
		pa := obj(b, "payload", "attributes")
		delete(pa, "host")
		delete(pa, "host-email")
	}
	bare, err := Parse(mutateFixture(t, "envoy-plugin-event-entry_sign_out.json", strip))
	if err != nil {
		t.Fatal(err)
	}
	full, err := Parse(mutateFixture(t, "envoy-plugin-event-entry_sign_out.json", func(b map[string]any) { delete(obj(b, "meta"), "job") }))
	if err != nil {
		t.Fatal(err)
	}
	if full.Event.HostName != "Harry Host" || full.Event.LocationName != "Head Office" {
		t.Fatalf("display fields not read: %+v", full.Event)
	}
	if bare.DedupeKey != full.DedupeKey || bare.LegacyKey != full.LegacyKey {
		t.Errorf("keys moved with display fields: %q/%q vs %q/%q", bare.DedupeKey, bare.LegacyKey, full.DedupeKey, full.LegacyKey)
	}

	junk, err := Parse(mutateFixture(t, "envoy-plugin-event-entry_sign_out.json", func(b map[string]any) {
		a := obj(b, "meta", "location", "attributes")
		a["name"] = "Head\nOffice"
		a["address"] = strings.Repeat("é", 400)
		a["locale"] = map[string]any{"x": 1}
		pa := obj(b, "payload", "attributes")
		pa["host"] = 42
		pa["host-email"] = "not an address"
	}))
	if err != nil {
		t.Fatalf("junk display fields refused the delivery: %v", err)
	}
	ev := junk.Event
	if ev.LocationName != "Head Office" || ev.Locale != "" || ev.HostName != "" || ev.HostEmail != "" {
		t.Errorf("junk not cleaned: %+v", ev)
	}
	if n := len([]rune(ev.LocationAddress)); n != connector.MaxAddressLen || !strings.HasSuffix(ev.LocationAddress, "…") {
		t.Errorf("address of %d characters, want %d ending in …", n, connector.MaxAddressLen)
	}
}
