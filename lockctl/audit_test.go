package lockctl

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestChangeAndAuditAreOneTransaction breaks the audit log (its table is
// dropped) and checks that no admin change is answered 2xx or kept without
// its event.
func TestChangeAndAuditAreOneTransaction(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	l := e.link(f.visitors, map[string]any{"name": "Before"})
	if err := e.c.store.db.Migrator().DropTable(&Event{}); err != nil {
		t.Fatalf("drop events: %v", err)
	}
	linkPath := fmt.Sprintf("/group_links/%d", l.ID)

	wantError(t, e.do(req{method: "POST", path: "/group_links", auth: admin(),
		body: map[string]any{"group_link": map[string]any{"group_id": f.visitors, "name": "Unaudited"}}}), 500, CodeUnexpected)
	wantError(t, e.do(req{method: "PATCH", path: linkPath, auth: admin(),
		body: map[string]any{"group_link": map[string]any{"name": "After"}}}), 500, CodeUnexpected)
	wantError(t, e.do(req{method: "DELETE", path: linkPath, auth: admin()}), 500, CodeUnexpected)
	wantError(t, e.do(req{method: "POST", path: fmt.Sprintf("/locks/%d/lock_down", f.front), auth: admin()}), 500, CodeUnexpected)
	wantError(t, e.do(req{method: "PATCH", path: fmt.Sprintf("/locks/%d", f.lobby), auth: admin(),
		body: map[string]any{"lock": map[string]any{"online": false}}}), 500, CodeUnexpected)
	wantError(t, e.do(req{method: "POST", path: "/logins", auth: admin(), body: map[string]any{"login": map[string]any{}}}), 500, CodeUnexpected)

	links := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/group_links", auth: admin()}))
	if len(links) != 1 || links[0]["name"] != "Before" {
		t.Errorf("links after refused changes %v, want only %q unchanged", links, "Before")
	}
	for _, id := range []int64{f.front, f.lobby} {
		lk := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/locks/%d", id), auth: admin()}))
		if lk["locked_down"] != false || lk["online"] != true {
			t.Errorf("lock %d after refused changes: locked_down %v, online %v", id, lk["locked_down"], lk["online"])
		}
	}
	var logins int64
	if err := e.c.store.db.Model(&Login{}).Count(&logins).Error; err != nil || logins != 0 {
		t.Errorf("%d logins (%v) stored without their event", logins, err)
	}
}

// TestPersonChangesAndAuditAreOneTransaction does the same for users,
// members, guests, role assignments, shares, invites and groups.
func TestPersonChangesAndAuditAreOneTransaction(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	u := e.user(nil)
	g := e.guest("Grace")
	ra := e.assign(groupRole("Guest", g, f.visitors, t0, t0.Add(time.Hour)))
	rows := func() map[string]int64 {
		out := map[string]int64{}
		for _, m := range []any{&User{}, &Guest{}, &RoleAssignment{}, &AccessKey{}, &Login{}} {
			var n int64
			if err := e.c.store.db.Model(m).Count(&n).Error; err != nil {
				t.Fatalf("count %T: %v", m, err)
			}
			out[fmt.Sprintf("%T", m)] = n
		}
		return out
	}
	before := rows()
	if err := e.c.store.db.Migrator().DropTable(&Event{}); err != nil {
		t.Fatalf("drop events: %v", err)
	}
	window := groupRole("User", u, f.staff, t0, t0.Add(time.Hour))
	for _, r := range []req{
		{method: "POST", path: "/users", body: map[string]any{"user": map[string]any{"email": "new@example.com"}}},
		{method: "POST", path: "/members", body: map[string]any{"member": map[string]any{"email": "new@example.com"}}},
		{method: "PATCH", path: fmt.Sprintf("/users/%d", u), body: map[string]any{"user": map[string]any{"name": "Changed"}}},
		{method: "DELETE", path: fmt.Sprintf("/users/%d", u)},
		{method: "POST", path: "/guests", body: map[string]any{"guest": map[string]any{"name": "New"}}},
		{method: "DELETE", path: fmt.Sprintf("/guests/%d", g)},
		{method: "POST", path: "/role_assignments", body: map[string]any{"role_assignment": window}},
		{method: "PATCH", path: fmt.Sprintf("/role_assignments/%d", ra), body: map[string]any{"role_assignment": map[string]any{"valid_until": nil}}},
		{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", ra)},
		{method: "POST", path: "/shares", body: map[string]any{"share": map[string]any{"email": "share@example.com", "group_id": f.visitors}}},
		{method: "POST", path: "/invites", body: map[string]any{"invite": map[string]any{"invites_to_type": "Group", "invites_to_id": f.visitors,
			"invitee": map[string]any{"resource_type": "Guest", "name": "Invited"}, "role_assignment": map[string]any{"role_id": "group_basic"}}}},
		{method: "POST", path: "/logins", body: map[string]any{"login": map[string]any{"email": "ada@example.com"}}},
		{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), body: map[string]any{"group": map[string]any{"login_enabled": true}}},
	} {
		r.auth = admin()
		t.Run(r.method+" "+r.path, func(t *testing.T) { wantError(t, e.do(r), 500, CodeUnexpected) })
	}
	if d := cmp.Diff(before, rows()); d != "" {
		t.Errorf("rows changed by unaudited requests (-before +after):\n%s", d)
	}
	got := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()}))
	if got["valid_until"] != rfc(t0.Add(time.Hour)) {
		t.Errorf("valid_until %v after a refused update, want %s", got["valid_until"], rfc(t0.Add(time.Hour)))
	}
	grp := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin()}))
	if grp["login_enabled"] != false {
		t.Error("login_enabled changed by a refused update")
	}
}
