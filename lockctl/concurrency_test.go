package lockctl

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentLinkChangesAreAllKept: PATCHes of different fields of one
// link, and an unlock by its holder, all at once, each keep their change:
// a lost update could re-enable a link an administrator just disabled.
func TestConcurrentLinkChangesAreAllKept(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	until := e.clock.Now().Add(2 * time.Hour)
	for i := range 15 {
		l := e.link(f.visitors, nil)
		path := fmt.Sprintf("/group_links/%d", l.ID)
		name := fmt.Sprintf("Renamed %d", i)
		codes := make([]int, 4)
		var wg sync.WaitGroup
		wg.Go(func() {
			codes[0] = e.do(req{method: "PATCH", path: path, auth: admin(),
				body: map[string]any{"group_link": map[string]any{"name": name}}}).Code
		})
		wg.Go(func() {
			codes[1] = e.do(req{method: "PATCH", path: path, auth: admin(),
				body: map[string]any{"group_link": map[string]any{"link_enabled": false}}}).Code
		})
		wg.Go(func() {
			codes[2] = e.do(req{method: "PATCH", path: path, auth: admin(),
				body: map[string]any{"group_link": map[string]any{"valid_until": rfc(until)}}}).Code
		})
		wg.Go(func() {
			codes[3] = e.do(req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(l.Secret),
				ip: fmt.Sprintf("10.0.0.%d", i+1)}).Code
		})
		wg.Wait()
		for j, c := range codes[:3] {
			if c != 200 {
				t.Fatalf("link %d: PATCH %d answered %d", l.ID, j, c)
			}
		}
		got := decode[struct {
			Name        string     `json:"name"`
			LinkEnabled bool       `json:"link_enabled"`
			ValidUntil  string     `json:"valid_until"`
			LastUsedAt  *time.Time `json:"last_used_at"`
		}](t, e.must(200, req{method: "GET", path: path, auth: admin()}))
		if got.Name != name || got.LinkEnabled || got.ValidUntil != rfc(until) {
			t.Errorf("link %d: name %q, enabled %v, valid_until %q; want %q, false, %s (a change was lost)",
				l.ID, got.Name, got.LinkEnabled, got.ValidUntil, name, rfc(until))
		}
		if codes[3] == 200 && got.LastUsedAt == nil {
			t.Errorf("link %d: unlocked, but last_used_at is not set", l.ID)
		}
	}
}

// TestLockdownSurvivesConcurrentDriverReports: a lockdown and the driver
// reporting the relay at the same moment both stay recorded; a lost update
// would silently cancel the lockdown.
func TestLockdownSurvivesConcurrentDriverReports(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	path := fmt.Sprintf("/locks/%d", f.front)
	for i := range 15 {
		unlocked := i%2 == 0
		until := e.clock.Now().Add(time.Minute)
		var code int
		var wg sync.WaitGroup
		wg.Go(func() {
			code = e.do(req{method: "POST", path: path + "/lock_down", auth: admin()}).Code
		})
		wg.Go(func() {
			e.c.onStateChange(StateChange{LockID: f.front, Unlocked: &unlocked, Until: &until})
		})
		wg.Wait()
		if code != 204 {
			t.Fatalf("iteration %d: lock_down answered %d", i, code)
		}
		got := decode[struct {
			LockedDown      bool    `json:"locked_down"`
			LockedDownSince *string `json:"locked_down_since"`
			Unlocked        bool    `json:"unlocked"`
		}](t, e.must(200, req{method: "GET", path: path, auth: admin()}))
		if !got.LockedDown || got.LockedDownSince == nil || got.Unlocked != unlocked {
			t.Errorf("iteration %d: locked down %v (since %v), unlocked %v; want locked down, unlocked %v (a change was lost)",
				i, got.LockedDown, got.LockedDownSince, got.Unlocked, unlocked)
		}
		e.must(204, req{method: "POST", path: path + "/cancel_lockdown", auth: admin()})
	}
	events, _, err := e.c.store.listEvents(context.Background(), EventFilter{Types: []string{EventLockLockDown}}, page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 15 {
		t.Errorf("%d lock.lock_down events, want 15", len(events))
	}
}

// TestConcurrentSeedsMakeOneDemo: replicas started together with --demo
// all seed successfully and make the demo data once.
func TestConcurrentSeedsMakeOneDemo(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	db := e.c.store.db
	for i := range 15 {
		for _, m := range []any{&GroupLock{}, &Group{}, &Lock{}, &Place{}} {
			if err := db.Where("1 = 1").Delete(m).Error; err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for j := range errs {
			wg.Go(func() { errs[j] = e.c.Seed(ctx) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("iteration %d: seed: %v", i, err)
			}
		}
		var places, locks, groups, groupLocks int64
		db.Model(&Place{}).Count(&places)
		db.Model(&Lock{}).Count(&locks)
		db.Model(&Group{}).Count(&groups)
		db.Model(&GroupLock{}).Count(&groupLocks)
		if places != 1 || locks != 4 || groups != 2 || groupLocks != 6 {
			t.Errorf("iteration %d: %d places, %d locks, %d groups, %d group locks; want 1, 4, 2, 6",
				i, places, locks, groups, groupLocks)
		}
	}
}
