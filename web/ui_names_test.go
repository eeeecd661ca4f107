package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/web"
)

// TestUINamesInsteadOfIds: once an event named the flow, the mappings
// list and the simulate picker show the name, not "flow 359435".
func TestUINamesInsteadOfIds(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Demo: true, TimeZone: "Europe/Berlin"})
	desk := e.signIn(t, "desk@example.com", accounts.RoleAdmin)
	e.createDemoMapping(t)
	rec := e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {desk.csrf}, "kind": {"sign-in"}, "name": {"Grace Hopper"},
		"email": {"grace@example.com"}, "flow": {"177837/359435"}, "flow_name": {"Contractor walk-in"}, "time_zone": {"Europe/Berlin"}}, desk.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("simulate: %d", rec.Code)
	}
	list := e.do(t, http.MethodGet, "/admin/mappings", nil, desk.cookie).Body.String()
	if !strings.Contains(list, ">Contractor walk-in</a>") {
		t.Errorf("mappings list lacks the flow's name:\n%s", list)
	}
	visits := e.do(t, http.MethodGet, "/admin", nil, desk.cookie).Body.String()
	if !strings.Contains(visits, "location 177837 · Contractor walk-in</option>") {
		t.Errorf("simulate picker lacks the flow's name:\n%s", visits)
	}
}
