package connector_test

import (
	"strings"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/webhooks"
)

// zone sets the location's time zone in meta.
func zone(name string) mod {
	return func(t testing.TB, doc map[string]any) {
		obj(t, doc, "meta", "location", "attributes")["timezone"] = name
	}
}

// TestFieldsAtTheirBoundsAreStored: every field at its bound (counted in
// characters, here two-byte ones) is stored and synced; on PostgreSQL this
// proves the columns hold what the parser lets through.
func TestFieldsAtTheirBoundsAreStored(t *testing.T) {
	e := newEnv(t, envOptions{mapping: func(m *mappings.Mapping) { m.GuestIndicator = strings.Repeat("g", 40) }})
	long := func(n int) string { return strings.Repeat("é", n) }
	entry := strings.Repeat("8", connector.MaxIDLen)
	job := strings.Repeat("j", connector.MaxIDLen)
	body := walkIn(t, start, payloadID(entry), jobID(job), invitedBy(strings.Repeat("9", connector.MaxIDLen)),
		attr("full-name", long(connector.MaxNameLen)), attr("flow-name", long(connector.MaxNameLen)),
		attr("email", strings.Repeat("a", connector.MaxEmailLen-12)+"@example.com"),
		attr("phone-number", strings.Repeat("1", connector.MaxPhoneLen)),
		zone("America/Argentina/ComodRivadavia"),
		attr("host", long(connector.MaxNameLen)), attr("host-email", strings.Repeat("h", connector.MaxEmailLen-12)+"@example.com"),
		func(t testing.TB, doc map[string]any) {
			a := obj(t, doc, "meta", "location", "attributes")
			a["name"], a["address"], a["locale"] = long(connector.MaxNameLen), long(connector.MaxAddressLen), "de-CH-x-"+strings.Repeat("a", connector.MaxLocaleLen-8)
		})
	res := e.process(body)
	if res.Status != connector.StatusActive {
		t.Fatalf("got status %s (%s), want active", res.Status, res.Reason)
	}
	v := e.visit(res.VisitID)
	if v.Name != long(connector.MaxNameLen) {
		t.Errorf("name not stored whole: got %d characters", len([]rune(v.Name)))
	}
	if v.HostName != long(connector.MaxNameLen) || len(v.HostEmail) != connector.MaxEmailLen ||
		v.LocationName != long(connector.MaxNameLen) || v.LocationAddress != long(connector.MaxAddressLen) ||
		len(v.Locale) != connector.MaxLocaleLen {
		t.Errorf("host or location not stored whole: host %d, host email %d, location %d, address %d, locale %q",
			len([]rune(v.HostName)), len(v.HostEmail), len([]rune(v.LocationName)), len([]rune(v.LocationAddress)), v.Locale)
	}
	l := e.onlyLink(res.VisitID)
	if n := len([]rune(l.Name)); n > connector.MaxLinkNameLen {
		t.Errorf("link name of %d characters, want at most %d", n, connector.MaxLinkNameLen)
	}
}

// TestWindowOutsideTheYears1970To9999: an event whose window would end
// after 9999 is refused as invalid (the webhook answers 400), and nothing
// is stored; an extension past it is refused too.
func TestWindowOutsideTheYears1970To9999(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := walkIn(t, time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC))
	d := parse(t, body)
	_, err := e.svc.Ingest(e.ctx, d)
	if latchkey.KindOf(err) != latchkey.Invalid || !strings.Contains(latchkey.Message(err), "payload.attributes.signed-in-at") {
		t.Fatalf("got %v, want an invalid error naming payload.attributes.signed-in-at", err)
	}
	if vs, n, err := e.store.List(e.ctx, connector.VisitFilter{}); err != nil || n != 0 {
		t.Fatalf("visits after the refusal: %d (%v), want none", n, vs)
	}

	late := e.process(walkIn(t, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), payloadID("5"), jobID("job-late")))
	if late.Status != connector.StatusScheduled {
		t.Fatalf("sign-in on the last day: got %s, want scheduled", late.Status)
	}
	if _, err := e.svc.Extend(e.ctx, late.VisitID, connector.MaxExtendMinutes); latchkey.KindOf(err) != latchkey.Invalid {
		t.Errorf("extension past 9999: got %v, want an invalid error", err)
	}
}

// TestUnknownTimeZone: an unknown zone does not refuse the visitor: the
// window runs in UTC, the timeline says so and the operations view lists
// the zone.
func TestUnknownTimeZone(t *testing.T) {
	e := newEnv(t, envOptions{mapping: func(m *mappings.Mapping) { m.UntilEndOfDay = true; m.DurationMinutes = 0 }})
	res := e.process(walkIn(t, start, zone("Mars/Olympus")))
	v := e.visit(res.VisitID)
	if want := time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC); v.ValidUntil == nil || !v.ValidUntil.Equal(want) {
		t.Errorf("valid until: got %v, want UTC midnight %v", v.ValidUntil, want)
	}
	if v.BadTimeZone != "Mars/Olympus" {
		t.Errorf("bad time zone: got %q, want Mars/Olympus", v.BadTimeZone)
	}
	if !e.hasTimeline(res.VisitID, `unknown time zone "Mars/Olympus"`) {
		t.Errorf("timeline does not name the zone: %+v", e.timeline(res.VisitID))
	}
	zs, err := e.store.UnknownTimeZones(e.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(zs) != 1 || zs[0].TimeZone != "Mars/Olympus" || zs[0].LocationID != locationID || zs[0].Visits != 1 {
		t.Errorf("unknown zones: got %+v, want Mars/Olympus at %s on one visit", zs, locationID)
	}
	// A later event with a known zone puts things right.
	e.process(signOut(t, start, start.Add(time.Minute), zone("Europe/Berlin")))
	if v := e.visit(res.VisitID); v.TimeZone != "Europe/Berlin" || v.BadTimeZone != "" {
		t.Errorf("after a known zone: got zone %q, bad zone %q", v.TimeZone, v.BadTimeZone)
	}
	if zs, _ := e.store.UnknownTimeZones(e.ctx, 10); len(zs) != 0 {
		t.Errorf("unknown zones after the fix: got %+v, want none", zs)
	}
}

// parse parses body as the webhook receiver does.
func parse(t *testing.T, body []byte) connector.Inbound {
	t.Helper()
	d, err := webhooks.Parse(body)
	if err != nil {
		t.Fatalf("parse delivery: %v", err)
	}
	return connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event}
}
