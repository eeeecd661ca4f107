package lockctl

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func unlockPath(id int64) string { return fmt.Sprintf("/locks/%d/unlock", id) }

func TestUnlockWindowToTheSecond(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	l := e.link(f.visitors, map[string]any{"valid_from": rfc(t0), "valid_until": rfc(t0.Add(2 * time.Second))})

	e.clock.Set(t0.Add(time.Second))
	rec := e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)})
	if d := cmp.Diff(map[string]string{"message": "Unlocked!"}, decodeStrict[map[string]string](t, rec)); d != "" {
		t.Errorf("unlock answer (-want +got):\n%s", d)
	}
	e.clock.Set(t0.Add(2 * time.Second))
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)}), 403, CodeNoLongerValid)
	e.clock.Set(t0.Add(3 * time.Second))
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)}), 403, CodeNoLongerValid)

	future := e.link(f.visitors, map[string]any{"valid_from": rfc(t0.Add(time.Hour)), "valid_until": rfc(t0.Add(2 * time.Hour))})
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(future.Secret)}), 403, CodeNotYetValid)
	e.clock.Set(t0.Add(time.Hour))
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(future.Secret)})
}

func TestUnlockRefusals(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LinkRate, o.IPRate = Rate{PerSecond: -1}, Rate{PerSecond: -1} })
	f := e.site()
	good := e.link(f.visitors, nil)
	disabled := e.link(f.visitors, map[string]any{"link_enabled": false})
	e.must(200, req{method: "PATCH", path: fmt.Sprintf("/locks/%d", f.lobby), auth: admin(),
		body: map[string]any{"lock": map[string]any{"online": false}}})

	tests := []struct {
		name   string
		path   string
		auth   string
		status int
		code   string
	}{
		{"no credentials", unlockPath(f.front), "", 401, CodeNotAuthorized},
		{"unknown link", unlockPath(f.front), holder("nope"), 401, CodeLinkInvalid},
		{"unknown login", unlockPath(f.front), "KISI-LOGIN nope", 401, CodeNotAuthorized},
		{"other scheme", unlockPath(f.front), "Bearer " + adminKey, 401, CodeNotAuthorized},
		{"disabled link", unlockPath(f.front), holder(disabled.Secret), 403, CodeLinkInvalid},
		{"lock outside the group", unlockPath(f.back), holder(good.Secret), 404, CodeNotFound},
		{"no such lock", unlockPath(999), holder(good.Secret), 404, CodeNotFound},
		{"bad lock id", "/locks/x/unlock", holder(good.Secret), 404, CodeNotFound},
		{"offline lock", unlockPath(f.lobby), holder(good.Secret), 403, CodeLockOffline},
		{"admin, offline lock", unlockPath(f.lobby), admin(), 403, CodeLockOffline},
		{"admin, no such lock", unlockPath(999), admin(), 404, CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do(req{method: "POST", path: tt.path, auth: tt.auth}), tt.status, tt.code)
		})
	}

	t.Run("locked down", func(t *testing.T) {
		e.must(204, req{method: "POST", path: fmt.Sprintf("/locks/%d/lock_down", f.front), auth: admin()})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(good.Secret)}), 403, CodeLockedDown)
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: admin()}), 403, CodeLockedDown)
		e.must(204, req{method: "POST", path: fmt.Sprintf("/locks/%d/cancel_lockdown", f.front), auth: admin()})
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(good.Secret)})
	})
	t.Run("admin unlocks any online lock", func(t *testing.T) {
		e.must(200, req{method: "POST", path: unlockPath(f.back), auth: admin()})
	})
	t.Run("driver failure is a 503 and a failed event", func(t *testing.T) {
		e.sim.Jam(f.front, true)
		defer e.sim.Jam(f.front, false)
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(good.Secret)}), 503, CodeDriverFailed)
		evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=lock.unlock&limit=1", auth: admin()}))
		if len(evs) != 1 || evs[0].Success || evs[0].Code == nil || *evs[0].Code != CodeDriverFailed {
			t.Fatalf("newest unlock event %+v, want a failed %s", evs, CodeDriverFailed)
		}
	})
}

func TestHolderSeesOnlyGroupLocks(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	l := e.link(f.visitors, nil)
	rec := e.must(200, req{method: "GET", path: "/locks", auth: holder(l.Secret)})
	locks := decodeStrict[[]kisiHolderLock](t, rec)
	want := []kisiHolderLock{
		{ID: f.front, Configured: true, Name: "Front door", Online: ptr(true), PlaceID: f.placeID, Place: kisiPlaceRef{ID: f.placeID, Name: "HQ"}},
		{ID: f.lobby, Configured: true, Name: "Lobby", Online: ptr(true), PlaceID: f.placeID, Place: kisiPlaceRef{ID: f.placeID, Name: "HQ"}},
	}
	if d := cmp.Diff(want, locks); d != "" {
		t.Errorf("holder locks (-want +got):\n%s", d)
	}
	if r := rec.Header().Get("X-Collection-Range"); r != "0-49/2" {
		t.Errorf("X-Collection-Range %q, want 0-49/2", r)
	}
	places := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/places", auth: holder(l.Secret)}))
	if len(places) != 1 || places[0]["name"] != "HQ" || places[0]["time_zone"] != "Europe/Berlin" {
		t.Errorf("holder places %v", places)
	}
	for _, path := range []string{"/group_links", "/groups", "/events", fmt.Sprintf("/locks/%d", f.front)} {
		wantError(t, e.do(req{method: "GET", path: path, auth: holder(l.Secret)}), 403, CodeAccessDenied)
	}
}

func TestConcurrentUnlocksAreAllAnsweredAndAudited(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	l := e.link(f.visitors, nil)
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret), ip: "192.0.2.7"})
			statuses[i] = rec.Code
			if rec.Code == http.StatusTooManyRequests {
				if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("429 with Retry-After %q", rec.Header().Get("Retry-After"))
				}
			}
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	// The clock stands still, so exactly the link's burst gets through.
	if d := cmp.Diff(map[int]int{200: 5, 429: n - 5}, count); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET",
		path: fmt.Sprintf("/events?type=lock.unlock&actor_type=GroupLink&actor_id=%d&limit=250", l.ID), auth: admin()}))
	got := map[bool]int{}
	for _, ev := range evs {
		got[ev.Success]++
		if ev.ClientIP == nil || *ev.ClientIP != "192.0.2.7" {
			t.Errorf("event client_ip %v", ev.ClientIP)
		}
	}
	// Refusals are sampled: one minute keeps the first few of each reason.
	if d := cmp.Diff(map[bool]int{true: 5, false: defaultRefusalSamples}, got); d != "" {
		t.Errorf("audited unlocks by success (-want +got):\n%s", d)
	}
}

func TestRateLimitPerIP(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.IPRate = Rate{PerSecond: 1, Burst: 2}
		o.LinkRate = Rate{PerSecond: -1}
	})
	f := e.site()
	l := e.link(f.visitors, nil)
	// The per-address limit is for attempts without a valid credential.
	var codes []int
	for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		codes = append(codes, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder("wrong"), ip: ip}).Code)
	}
	if d := cmp.Diff([]int{401, 401, 429, 401}, codes); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	rec := e.do(req{method: "POST", path: unlockPath(f.front), ip: "192.0.2.1"})
	wantError(t, rec, 429, CodeRateLimited)
	if rec.Header().Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", rec.Header().Get("Retry-After"))
	}
	// A valid link is limited per link only, never by its address.
	for range 3 {
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret), ip: "192.0.2.1"})
	}
	e.clock.Set(e.clock.Now().Add(time.Second))
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder("wrong"), ip: "192.0.2.1"}), 401, CodeLinkInvalid)
}

func TestUnlockEventFields(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	l := e.link(f.visitors, map[string]any{"name": "Grace Hopper (Visitor)", "email": "grace@example.com"})
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret), ip: "198.51.100.4", ua: "door-test/1"})
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.back), auth: holder(l.Secret), ip: "198.51.100.4", ua: "door-test/1"}), 404, CodeNotFound)

	evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=lock.unlock", auth: admin()}))
	if len(evs) != 2 {
		t.Fatalf("got %d unlock events, want 2", len(evs))
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].ID < evs[j].ID })
	at := rfc(e.clock.Now())
	want := []kisiEvent{
		{Type: "lock.unlock", Action: "unlock", ActorType: ptr("GroupLink"), ActorID: &l.ID, ActorName: ptr("Grace Hopper (Visitor)"),
			ActorEmail: ptr("grace@example.com"), AuthenticatedByType: ptr("GroupLink"), AuthenticatedByID: &l.ID,
			ObjectType: "Lock", ObjectID: &f.front, ObjectName: "Front door", Success: true, PlaceID: &f.placeID,
			ClientIP: ptr("198.51.100.4"), UserAgent: ptr("door-test/1"), CreatedAt: at},
		{Type: "lock.unlock", Action: "unlock", ActorType: ptr("GroupLink"), ActorID: &l.ID, ActorName: ptr("Grace Hopper (Visitor)"),
			ActorEmail: ptr("grace@example.com"), AuthenticatedByType: ptr("GroupLink"), AuthenticatedByID: &l.ID,
			ObjectType: "Lock", ObjectID: &f.back, ObjectName: "Back door", Success: false, PlaceID: &f.placeID,
			Code: ptr(CodeNotFound), Message: ptr("Lock not found"), ErrorCode: ptr(CodeNotFound), ErrorMessage: ptr("Lock not found"),
			ClientIP: ptr("198.51.100.4"), UserAgent: ptr("door-test/1"), CreatedAt: at},
	}
	for i := range evs {
		if evs[i].UUID == "" || evs[i].ID == 0 {
			t.Errorf("event %d has no uuid or id", i)
		}
		evs[i].UUID, evs[i].ID = "", 0
	}
	if d := cmp.Diff(want, evs); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}
