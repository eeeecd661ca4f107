package lockctl

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// user creates a user with the given fields merged over an email and name.
func (e *env) user(fields map[string]any) int64 {
	e.t.Helper()
	u := map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}
	for k, v := range fields {
		u[k] = v
	}
	return decode[idOnly](e.t, e.must(200, req{method: "POST", path: "/users", auth: admin(), body: map[string]any{"user": u}})).ID
}

func (e *env) guest(name string) int64 {
	e.t.Helper()
	return decode[idOnly](e.t, e.must(200, req{method: "POST", path: "/guests", auth: admin(),
		body: map[string]any{"guest": map[string]any{"name": name}}})).ID
}

// assign creates a role assignment with the given fields and returns its id.
func (e *env) assign(fields map[string]any) int64 {
	e.t.Helper()
	return decode[idOnly](e.t, e.must(200, req{method: "POST", path: "/role_assignments", auth: admin(),
		body: map[string]any{"role_assignment": fields}})).ID
}

func groupRole(assigneeType string, assigneeID, groupID int64, from, until time.Time) map[string]any {
	return map[string]any{"assignee_type": assigneeType, "assignee_id": assigneeID, "applies_to_type": "Group",
		"applies_to_id": groupID, "role_id": "group_basic", "valid_from": rfc(from), "valid_until": rfc(until)}
}

// userLogin mints a login on behalf of the user with email and returns
// its Authorization header.
func (e *env) userLogin(email string) string {
	e.t.Helper()
	got := decode[struct {
		Secret string `json:"secret"`
		UserID int64  `json:"user_id"`
	}](e.t, e.must(200, req{method: "POST", path: "/logins", auth: admin(),
		body: map[string]any{"login": map[string]any{"type": "device", "email": email}}}))
	return "KISI-LOGIN " + got.Secret
}

type invited struct {
	ID               int64 `json:"id"`
	InviteeID        int64 `json:"invitee_id"`
	RoleAssignmentID int64 `json:"role_assignment_id"`
	AccessKey        *struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	} `json:"access_key"`
}

// inviteGuest invites a guest to group for [from, until) and returns the
// invite with the access key's secret.
func (e *env) inviteGuest(groupID int64, name string, from, until time.Time, extra map[string]any) invited {
	e.t.Helper()
	inv := map[string]any{"invites_to_type": "Group", "invites_to_id": groupID,
		"invitee":         map[string]any{"resource_type": "Guest", "name": name, "email": nil, "phone_number": nil},
		"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": rfc(from), "valid_until": rfc(until)},
		"access_key":      map[string]any{"link_enabled": true}, "notify": false}
	for k, v := range extra {
		inv[k] = v
	}
	return decode[invited](e.t, e.must(200, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": inv}}))
}

func accessKey(secret string) string { return "KISI-ACCESS-KEY " + secret }

func TestUsersCRUDAndFilters(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	ada := e.user(map[string]any{"email": "Ada@Example.com", "notes": "engine", "metadata": map[string]any{"badge": "A1"}})
	bob := e.user(map[string]any{"email": "bob@example.com", "name": "Bob"})
	e.assign(map[string]any{"assignee_type": "User", "assignee_id": bob, "applies_to_type": "Group",
		"applies_to_id": f.visitors, "role_id": "group_basic"})

	got := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/users/%d", ada), auth: admin()}))
	if got["email"] != "ada@example.com" || got["resource_type"] != "User" || got["access_enabled"] != true {
		t.Errorf("user %v, want lower-cased email, resource_type User, access enabled", got)
	}
	ids := func(path string) []int64 {
		t.Helper()
		var out []int64
		for _, u := range decode[[]idOnly](t, e.must(200, req{method: "GET", path: path, auth: admin()})) {
			out = append(out, u.ID)
		}
		return out
	}
	for path, want := range map[string][]int64{
		"/users":                       {ada, bob},
		"/users?email=ADA@example.com": {ada},
		"/users?query=engine":          {ada},
		fmt.Sprintf("/users?group_id=%d", f.visitors):     {bob},
		fmt.Sprintf("/users?place_id=%d", f.placeID):      {bob},
		"/users?sort=-name":                               {bob, ada},
		fmt.Sprintf("/members?ids=%d", bob):               {bob},
		fmt.Sprintf("/users?user_id=%d", ada):             {ada},
		fmt.Sprintf("/users?user_id=%d&ids=%d", ada, bob): nil,
		"/users?user_id=me":                               nil,
	} {
		if d := cmp.Diff(want, ids(path)); d != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, d)
		}
	}
	if rec := e.must(200, req{method: "GET", path: "/users?limit=500", auth: admin()}); rec.Header().Get("X-Collection-Range") != "0-99/2" {
		t.Errorf("X-Collection-Range %q, want 0-99/2 (users page at most 100)", rec.Header().Get("X-Collection-Range"))
	}

	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/users/%d", ada), auth: admin(),
		body: map[string]any{"user": map[string]any{"name": "Ada King", "access_enabled": false}}})
	got = decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/users/%d", ada), auth: admin()}))
	if got["name"] != "Ada King" || got["access_enabled"] != false {
		t.Errorf("after PATCH %v, want name Ada King, access disabled", got)
	}
	member := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/members/%d", bob), auth: admin()}))
	if member["resource_type"] != "Member" || member["user"].(map[string]any)["email"] != "bob@example.com" || member["shares_count"] != 1.0 {
		t.Errorf("member %v, want Member of bob@example.com with 1 share", member)
	}

	tests := []struct {
		name  string
		user  map[string]any
		field string
	}{
		{"no email", map[string]any{"name": "X"}, "email"},
		{"bad email", map[string]any{"email": "not an email"}, "email"},
		{"taken email", map[string]any{"email": "BOB@example.com"}, "email"},
		{"long name", map[string]any{"email": "c@example.com", "name": strings.Repeat("n", maxPersonName+1)}, "name"},
		{"nested metadata", map[string]any{"email": "c@example.com", "metadata": map[string]any{"a": map[string]any{}}}, "metadata"},
		{"long metadata value", map[string]any{"email": "c@example.com", "metadata": map[string]any{"a": strings.Repeat("v", 501)}}, "metadata"},
		{"bad image", map[string]any{"email": "c@example.com", "image": "javascript:alert(1)"}, "image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.must(422, req{method: "POST", path: "/users", auth: admin(), body: map[string]any{"user": tt.user}})
			if errs := decode[map[string]map[string][]string](t, rec)["errors"]; len(errs[tt.field]) == 0 {
				t.Errorf("errors %v, want one on %s", errs, tt.field)
			}
		})
	}

	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/users/%d", bob), auth: admin()})
	e.must(404, req{method: "GET", path: fmt.Sprintf("/users/%d", bob), auth: admin()})
	if n := len(decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/role_assignments", auth: admin()}))); n != 0 {
		t.Errorf("%d role assignments left after deleting their user, want 0", n)
	}
	types := eventTypes(t, e, "user.create,user.update,user.destroy")
	if d := cmp.Diff([]string{"user.destroy", "user.update", "user.create", "user.create"}, types); d != "" {
		t.Errorf("user events, newest first (-want +got):\n%s", d)
	}
}

// eventTypes lists the types of the events of the given types, newest
// first.
func eventTypes(t *testing.T, e *env, types string) []string {
	t.Helper()
	var out []string
	for _, ev := range decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=" + types, auth: admin()})) {
		out = append(out, ev.Type)
	}
	return out
}

func TestGuests(t *testing.T) {
	e := newEnv(t, nil)
	id := decode[map[string]any](t, e.must(200, req{method: "POST", path: "/guests", auth: admin(), body: map[string]any{
		"guest": map[string]any{"name": "Ada Lovelace (Envoy Guest)", "email": "ada@example.com", "phone_number": "+12125550123"}}}))
	want := map[string]any{"id": id["id"], "resource_type": "Guest", "name": "Ada Lovelace (Envoy Guest)",
		"email": "ada@example.com", "phone_number": "+12125550123", "created_at": rfc(e.clock.Now()), "updated_at": rfc(e.clock.Now())}
	if d := cmp.Diff(want, id); d != "" {
		t.Errorf("guest (-want +got):\n%s", d)
	}
	e.guest("Bob")
	if got := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/guests?query=envoy", auth: admin()})); len(got) != 1 {
		t.Errorf("guests matching envoy: %v, want one", got)
	}
	for name, g := range map[string]map[string]any{
		"no name":          {"email": "x@example.com"},
		"blank name":       {"name": "  "},
		"german phone":     {"name": "X", "phone_number": "+4930123456"},
		"phone without +1": {"name": "X", "phone_number": "2125550123"},
		"short phone":      {"name": "X", "phone_number": "+1212555012"},
		"bad email":        {"name": "X", "email": "nope"},
	} {
		t.Run(name, func(t *testing.T) {
			e.must(422, req{method: "POST", path: "/guests", auth: admin(), body: map[string]any{"guest": g}})
		})
	}
	gid := int64(id["id"].(float64))
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/guests/%d", gid), auth: admin()})
	wantError(t, e.do(req{method: "GET", path: fmt.Sprintf("/guests/%d", gid), auth: admin()}), 404, CodeNotFound)
	if d := cmp.Diff([]string{"guest.destroy", "guest.create", "guest.create"}, eventTypes(t, e, "guest.create,guest.destroy")); d != "" {
		t.Errorf("guest events (-want +got):\n%s", d)
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t, nil)
	list := decode[[]roleResponse](t, e.must(200, req{method: "GET", path: "/roles", auth: admin()}))
	byID := map[string]roleResponse{}
	for _, r := range list {
		byID[r.ID] = r
	}
	for id, unlock := range map[string]bool{"group_basic": true, "group_manager": true} {
		r, ok := byID[id]
		if !ok || r.AppliesTo != "Group" || r.ResourceType != "Role" || r.Permissions["locks_unlock"] != unlock {
			t.Errorf("role %s: %+v, want a Group role with locks_unlock %v", id, r, unlock)
		}
	}
	if byID["group_basic"].Permissions["role_assignments_write"] || !byID["group_manager"].Permissions["role_assignments_write"] {
		t.Error("only group_manager may manage role assignments")
	}
	e.must(200, req{method: "GET", path: "/roles/group_manager", auth: admin()})
	wantError(t, e.do(req{method: "GET", path: "/roles/owner", auth: admin()}), 404, CodeNotFound)
}

func TestRoleAssignments(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	ada := e.user(nil)
	g := e.guest("Grace")
	ra := e.assign(groupRole("User", ada, f.visitors, t0, t0.Add(time.Hour)))
	got := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()}))
	for k, v := range map[string]any{"resource_type": "RoleAssignment", "applies_to_type": "Group", "assignee_type": "User",
		"role_id": "group_basic", "valid_from": rfc(t0), "valid_until": rfc(t0.Add(time.Hour)), "type": "group",
		"group_id": float64(f.visitors), "user_id": float64(ada), "guest_id": nil} {
		if !cmp.Equal(got[k], v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	t.Run("one role per person per group", func(t *testing.T) {
		rec := e.must(422, req{method: "POST", path: "/role_assignments", auth: admin(), body: map[string]any{"role_assignment": map[string]any{
			"assignee_type": "User", "assignee_id": ada, "applies_to_type": "Group", "applies_to_id": f.visitors, "role_id": "group_manager"}}})
		if !strings.Contains(rec.Body.String(), fmt.Sprintf("role assignment %d", ra)) {
			t.Errorf("422 body %s, want it to name role assignment %d", rec.Body.String(), ra)
		}
	})
	t.Run("legacy shape", func(t *testing.T) {
		id := e.assign(map[string]any{"user_id": ada, "group_id": f.staff, "role_id": "group_basic"})
		got := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", id), auth: admin()}))
		if got["applies_to_id"] != float64(f.staff) || got["assignee_id"] != float64(ada) {
			t.Errorf("legacy create gave %v", got)
		}
	})
	placeRA := e.assign(map[string]any{"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Place",
		"applies_to_id": f.placeID, "role_id": "place_observer"})
	e.assign(map[string]any{"assignee_type": "User", "assignee_id": ada, "applies_to_type": "Organization",
		"applies_to_id": 1, "role_id": "organization_observer"})

	for name, body := range map[string]map[string]any{
		"window on a place":   {"assignee_type": "User", "assignee_id": ada, "applies_to_type": "Place", "applies_to_id": f.placeID, "role_id": "place_observer", "valid_until": rfc(t0)},
		"group role on place": {"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Place", "applies_to_id": f.placeID, "role_id": "group_basic"},
		"unknown role":        {"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Group", "applies_to_id": f.staff, "role_id": "owner"},
		"unknown group":       {"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Group", "applies_to_id": 999, "role_id": "group_basic"},
		"unknown guest":       {"assignee_type": "Guest", "assignee_id": 999, "applies_to_type": "Group", "applies_to_id": f.staff, "role_id": "group_basic"},
		"team":                {"assignee_type": "Team", "assignee_id": 1, "applies_to_type": "Group", "applies_to_id": f.staff, "role_id": "group_basic"},
		"until before from":   groupRole("Guest", g, f.staff, t0, t0.Add(-time.Second)),
		"year 10000":          {"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Group", "applies_to_id": f.staff, "role_id": "group_basic", "valid_until": "10000-01-01T00:00:00Z"},
		"bad time":            {"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Group", "applies_to_id": f.staff, "role_id": "group_basic", "valid_from": "tomorrow"},
	} {
		t.Run(name, func(t *testing.T) {
			e.must(422, req{method: "POST", path: "/role_assignments", auth: admin(), body: map[string]any{"role_assignment": body}})
		})
	}

	count := func(path string) int {
		t.Helper()
		return len(decode[[]idOnly](t, e.must(200, req{method: "GET", path: path, auth: admin()})))
	}
	for path, want := range map[string]int{
		"/role_assignments": 4,
		fmt.Sprintf("/role_assignments?assignee_type=User&assignee_id=%d", ada):             3,
		fmt.Sprintf("/role_assignments?assignee_type=Guest&assignee_id=%d", g):              1,
		fmt.Sprintf("/role_assignments?applies_to_type=Group&applies_to_id=%d", f.visitors): 1,
		"/role_assignments?applies_to_type=Place":                                           1,
		"/role_assignments?scope=organization":                                              1,
		fmt.Sprintf("/role_assignments?group_id=%d", f.staff):                               1,
		"/role_assignments?query=grace":                                                     1,
		"/role_assignments?role_id=group_basic":                                             2,
	} {
		if got := count(path); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
	e.must(400, req{method: "GET", path: "/role_assignments?assignee_id=1", auth: admin()})

	t.Run("update validity", func(t *testing.T) {
		e.must(204, req{method: "PATCH", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin(), body: map[string]any{
			"role_assignment": map[string]any{"valid_until": rfc(t0.Add(2 * time.Hour))}}})
		got := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()}))
		if got["valid_until"] != rfc(t0.Add(2*time.Hour)) || got["valid_from"] != rfc(t0) {
			t.Errorf("after PATCH window %v–%v, want %s–%s", got["valid_from"], got["valid_until"], rfc(t0), rfc(t0.Add(2*time.Hour)))
		}
		e.must(204, req{method: "PUT", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin(), body: map[string]any{
			"role_assignment": map[string]any{"valid_from": nil}}})
		got = decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()}))
		if got["valid_from"] != nil {
			t.Errorf("valid_from %v after setting null, want null", got["valid_from"])
		}
		e.must(422, req{method: "PATCH", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin(), body: map[string]any{
			"role_assignment": map[string]any{"valid_from": rfc(t0.Add(3 * time.Hour))}}})
		e.must(422, req{method: "PATCH", path: fmt.Sprintf("/role_assignments/%d", placeRA), auth: admin(), body: map[string]any{
			"role_assignment": map[string]any{"valid_until": rfc(t0)}}})
	})
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()})
	e.must(404, req{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()})
	want := []string{"role_assignment.destroy", "role_assignment.update", "role_assignment.update", "role_assignment.create",
		"role_assignment.create", "role_assignment.create", "role_assignment.create"}
	if d := cmp.Diff(want, eventTypes(t, e, "role_assignment.create,role_assignment.update,role_assignment.destroy")); d != "" {
		t.Errorf("role assignment events (-want +got):\n%s", d)
	}
}
