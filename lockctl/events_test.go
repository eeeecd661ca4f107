package lockctl

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/testenv"
)

func TestEventsAndEventSets(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LinkRate = Rate{PerSecond: -1} })
	f := e.site()
	t0 := e.clock.Now()
	// A link made and removed first, so that link ids and event ids differ.
	first := e.link(f.visitors, map[string]any{"name": "Link 0"})
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/group_links/%d", first.ID), auth: admin()})
	l := e.link(f.visitors, map[string]any{"name": "Link A"})
	if got := decode[idOnly](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin()})); got.ID != l.ID || l.ID == first.ID {
		t.Fatalf("link %d reads back as %d (the first was %d)", l.ID, got.ID, first.ID)
	}
	for i := range 5 {
		e.clock.Set(t0.Add(time.Duration(i+1) * time.Minute))
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)})
	}
	e.must(200, req{method: "PATCH", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin(),
		body: map[string]any{"group_link": map[string]any{"name": "Link B"}}})
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin()})

	all := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=lock.unlock,group_link.create,group_link.update,group_link.destroy", auth: admin()}))
	var types []string
	for _, ev := range all {
		types = append(types, ev.Type)
	}
	want := []string{"group_link.destroy", "group_link.update", "lock.unlock", "lock.unlock", "lock.unlock",
		"lock.unlock", "lock.unlock", "group_link.create", "group_link.destroy", "group_link.create"}
	if d := cmp.Diff(want, types); d != "" {
		t.Errorf("event types newest first (-want +got):\n%s", d)
	}
	if all[0].ActorType == nil || *all[0].ActorType != "User" || all[0].ObjectName != "Link B" || *all[0].PlaceID != f.placeID {
		t.Errorf("destroy event %+v", all[0])
	}
	// The create event names the link it made (on PostgreSQL the link's
	// id comes from the same statement's insert).
	if c := all[len(all)-3]; c.ObjectID == nil || *c.ObjectID != l.ID || c.ObjectName != "Link A" || c.PlaceID == nil ||
		*c.PlaceID != f.placeID || c.ActorType == nil || *c.ActorType != "User" || !c.Success {
		t.Errorf("create event %+v, want link %d's", c, l.ID)
	}

	rec := e.must(200, req{method: "GET", path: "/events?type=lock.unlock&limit=2&offset=1&since=" + rfc(t0.Add(2*time.Minute)), auth: admin()})
	if r := rec.Header().Get("X-Collection-Range"); r != "1-2/4" {
		t.Errorf("X-Collection-Range %q, want 1-2/4", r)
	}
	page := decodeStrict[[]kisiEvent](t, rec)
	if len(page) != 2 || page[0].CreatedAt != rfc(t0.Add(4*time.Minute)) || page[1].CreatedAt != rfc(t0.Add(3*time.Minute)) {
		t.Errorf("paged unlock events %+v", page)
	}
	for _, bad := range []string{"success=maybe", "since=yesterday", "actor_id=x"} {
		wantError(t, e.do(req{method: "GET", path: "/events?" + bad, auth: admin()}), 400, CodeBadRequest)
	}

	// An event set over the unlocks, read three at a time through the cursor.
	set := decodeStrict[kisiEventSet](t, e.must(200, req{method: "POST", path: "/event_sets", auth: admin(),
		body: map[string]any{"event_set": map[string]any{"event_type": "lock.unlock", "event_actor_type": "GroupLink",
			"event_actor_id": l.ID, "interval": rfc(t0) + "/PT1H"}}}))
	if set.Status != "finished" || len(set.Events) != 5 || set.Cursor != nil {
		t.Fatalf("event set %+v", set)
	}
	var seen []string
	cursor := ""
	for range 5 {
		rec := e.must(200, req{method: "GET", path: fmt.Sprintf("/event_sets/%d?limit=2&cursor=%s", set.ID, cursor), auth: admin()})
		p := decodeStrict[kisiEventSet](t, rec)
		for _, ev := range p.Events {
			seen = append(seen, ev.CreatedAt)
		}
		if p.Cursor == nil {
			break
		}
		cursor = *p.Cursor
	}
	wantSeen := []string{rfc(t0.Add(5 * time.Minute)), rfc(t0.Add(4 * time.Minute)), rfc(t0.Add(3 * time.Minute)),
		rfc(t0.Add(2 * time.Minute)), rfc(t0.Add(1 * time.Minute))}
	if d := cmp.Diff(wantSeen, seen); d != "" {
		t.Errorf("event set pages (-want +got):\n%s", d)
	}
	// Events after the set was made are not part of it.
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: admin()})
	if p := decodeStrict[kisiEventSet](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/event_sets/%d", set.ID), auth: admin()})); len(p.Events) != 5 {
		t.Errorf("set grew to %d events", len(p.Events))
	}
	// Everything so far: the 8 above, this last unlock, and the relay's
	// unlocked event, which the lock driver reports on its own goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for len(decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events", auth: admin()}))) < len(all)+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	dflt := decodeStrict[kisiEventSet](t, e.must(200, req{method: "POST", path: "/event_sets", auth: admin(), body: map[string]any{"event_set": map[string]any{}}}))
	if len(dflt.Events) != len(all)+2 {
		t.Errorf("default event set has %d events, want %d", len(dflt.Events), len(all)+2)
	}

	for _, iv := range []string{"nonsense", rfc(t0) + "/P100D"} {
		e.must(422, req{method: "POST", path: "/event_sets", auth: admin(), body: map[string]any{"event_set": map[string]any{"interval": iv}}})
	}
	wantError(t, e.do(req{method: "GET", path: "/event_sets/999", auth: admin()}), 404, CodeNotFound)
	wantError(t, e.do(req{method: "GET", path: fmt.Sprintf("/event_sets/%d?cursor=x", set.ID), auth: admin()}), 400, CodeBadRequest)
	e.clock.Set(t0.Add(25 * time.Hour))
	wantError(t, e.do(req{method: "GET", path: fmt.Sprintf("/event_sets/%d", set.ID), auth: admin()}), 404, CodeNotFound)
}

func TestSimDriverRelocksAndReports(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Now = time.Now
		o.SimUnlockDuration = 50 * time.Millisecond
	})
	f := e.site()
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: admin()})
	deadline := time.Now().Add(10 * time.Second)
	var types []string
	for time.Now().Before(deadline) {
		evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET",
			path: fmt.Sprintf("/events?object_id=%d&type=lock.unlocked,lock.locked", f.front), auth: admin()}))
		types = types[:0]
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		if len(types) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := cmp.Diff([]string{"lock.locked", "lock.unlocked"}, types); d != "" {
		t.Fatalf("relay events newest first (-want +got):\n%s", d)
	}
	lock := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/locks/%d", f.front), auth: admin()}))
	if lock["unlocked"] != false || lock["unlocked_until"] != nil {
		t.Errorf("lock after relock %v", lock)
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for range 2 {
		if err := e.c.Seed(ctx); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	groups := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/groups", auth: admin()}))
	got := map[string]any{}
	for _, g := range groups {
		got[g["name"].(string)] = []any{g["id"], g["locks_count"]}
	}
	if d := cmp.Diff(map[string]any{"Visitors": []any{1.0, 3.0}, "Contractors": []any{2.0, 3.0}}, got); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	places := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/places", auth: admin()}))
	if len(places) != 1 || places[0]["name"] != "HQ" || places[0]["time_zone"] != "Europe/Berlin" || places[0]["locks_count"] != 4.0 {
		t.Errorf("places %v", places)
	}
	if rec := e.must(200, req{method: "GET", path: "/group_locks", auth: admin()}); rec.Header().Get("X-Collection-Range") != "0-9/6" {
		t.Errorf("group_locks range %q, want 0-9/6", rec.Header().Get("X-Collection-Range"))
	}
}

func TestMigrateTwice(t *testing.T) {
	db := testenv.DB(t)
	for range 2 {
		if err := Migrate(context.Background(), db); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
}

// TestRegisterOnForeignEcho mounts the API under /lockctl on an echo whose
// error handler answers in another format: lockctl's errors stay Kisi's.
func TestRegisterOnForeignEcho(t *testing.T) {
	e := newEnv(t, nil)
	srv := echo.New()
	srv.HTTPErrorHandler = func(err error, c echo.Context) {
		_ = c.JSON(http.StatusTeapot, map[string]any{"error": map[string]string{"message": err.Error()}})
	}
	e.c.Register(srv.Group("/lockctl"))
	f := e.site()
	e.h = srv
	wantError(t, e.do(req{method: "GET", path: "/lockctl/group_links"}), 401, CodeNotAuthorized)
	wantError(t, e.do(req{method: "GET", path: "/lockctl/nothing-here", auth: admin()}), 404, CodeNotFound)
	e.must(200, req{method: "POST", path: "/lockctl" + unlockPath(f.front), auth: admin()})
	rec := e.do(req{method: "GET", path: "/places", auth: admin()})
	if rec.Code != http.StatusTeapot {
		t.Errorf("outside /lockctl: %d, want the host's own error handling", rec.Code)
	}
}

func TestEventTypes(t *testing.T) {
	e := newEnv(t, nil)
	got := decodeStrict[[]string](t, e.must(200, req{method: "GET", path: "/events/types", auth: admin()}))
	if !slices.IsSorted(got) {
		t.Errorf("event types %v, want them sorted", got)
	}
	for _, want := range []string{"lock.unlock", "role_assignment.update", "guest.create", "invite.create", "user.destroy"} {
		if !slices.Contains(got, want) {
			t.Errorf("event types lack %s", want)
		}
	}
}
