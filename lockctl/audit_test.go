package lockctl

import (
	"fmt"
	"testing"
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
