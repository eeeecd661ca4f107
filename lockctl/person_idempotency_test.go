package lockctl

import (
	"fmt"
	"testing"
	"time"
)

// assignmentVoided is what POST /role_assignments/void answers.
type assignmentVoided struct {
	RoleAssignmentID *int64  `json:"role_assignment_id"`
	AssigneeType     *string `json:"assignee_type"`
	AssigneeID       *int64  `json:"assignee_id"`
}

func (e *env) voidAssignment(key string) assignmentVoided {
	e.t.Helper()
	return decode[assignmentVoided](e.t, e.must(200, req{method: "POST", path: "/role_assignments/void", auth: admin(),
		body: map[string]any{"idempotency_key": key}}))
}

func (e *env) countOf(path string) int {
	e.t.Helper()
	return len(decode[[]idOnly](e.t, e.must(200, req{method: "GET", path: path, auth: admin()})))
}

func inviteBody(group int64, t0 time.Time) map[string]any {
	return map[string]any{"invite": map[string]any{"invites_to_type": "Group", "invites_to_id": group, "notify": false,
		"invitee":         map[string]any{"resource_type": "Guest", "name": "Ada"},
		"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": rfc(t0), "valid_until": rfc(t0.Add(time.Hour))}}}
}

// A role assignment's key outlives it: a create under the key that arrives
// after the assignment was deleted (cut off, then delivered) answers 410 and
// makes nothing.
func TestLateAssignmentCreateAfterDeleteMakesNothing(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	g := e.guest("Ada")
	body := map[string]any{"role_assignment": groupRole("Guest", g, f.visitors, t0, t0.Add(time.Hour))}
	h := map[string]string{"Idempotency-Key": "ra-deleted"}
	id := decode[idOnly](t, e.must(200, req{method: "POST", path: "/role_assignments", auth: admin(), header: h, body: body})).ID
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", id), auth: admin()})
	wantError(t, e.do(req{method: "POST", path: "/role_assignments", auth: admin(), header: h, body: body}), 410, CodeGone)
	if n := e.countOf("/role_assignments"); n != 0 {
		t.Errorf("%d role assignments after a late create under a deleted one's key, want 0", n)
	}
	// Deleting the person frees nothing either.
	h2 := map[string]string{"Idempotency-Key": "ra-person-deleted"}
	e.must(200, req{method: "POST", path: "/role_assignments", auth: admin(), header: h2, body: body})
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/guests/%d", g), auth: admin()})
	g2 := e.guest("Ada again")
	body = map[string]any{"role_assignment": groupRole("Guest", g2, f.visitors, t0, t0.Add(time.Hour))}
	wantError(t, e.do(req{method: "POST", path: "/role_assignments", auth: admin(), header: h2, body: body}), 410, CodeGone)
}

// An invite's key outlives its role assignment: the invite sent again
// after its assignment was deleted makes no guest, assignment or key.
func TestLateInviteAfterDeleteMakesNothing(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	h := map[string]string{"Idempotency-Key": "visit-7-guest"}
	first := decode[invited](t, e.must(200, req{method: "POST", path: "/invites", auth: admin(), header: h, body: inviteBody(f.visitors, t0)}))
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", first.RoleAssignmentID), auth: admin()})
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/guests/%d", first.InviteeID), auth: admin()})
	wantError(t, e.do(req{method: "POST", path: "/invites", auth: admin(), header: h, body: inviteBody(f.visitors, t0)}), 410, CodeGone)
	if n := e.countOf("/guests"); n != 0 {
		t.Errorf("%d guests after a late invite, want 0", n)
	}
	if n := e.countOf("/role_assignments"); n != 0 {
		t.Errorf("%d role assignments after a late invite, want 0", n)
	}
}

// Voiding a role assignment's key settles a creation the client lost track
// of: what it made is deleted (the answer names the person, for the caller
// to tidy up), and a create that has not arrived yet never will make
// anything.
func TestVoidAssignmentIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	h := map[string]string{"Idempotency-Key": "visit-8-guest"}
	inv := decode[invited](t, e.must(200, req{method: "POST", path: "/invites", auth: admin(), header: h, body: inviteBody(f.visitors, t0)}))
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: accessKey(inv.AccessKey.Secret)})
	got := e.voidAssignment("visit-8-guest")
	if got.RoleAssignmentID == nil || *got.RoleAssignmentID != inv.RoleAssignmentID ||
		got.AssigneeType == nil || *got.AssigneeType != "Guest" || got.AssigneeID == nil || *got.AssigneeID != inv.InviteeID {
		t.Errorf("void of the invite's key: %+v, want role assignment %d of guest %d", got, inv.RoleAssignmentID, inv.InviteeID)
	}
	if rec := e.do(req{method: "POST", path: unlockPath(f.front), auth: accessKey(inv.AccessKey.Secret)}); rec.Code == 200 {
		t.Errorf("unlock after the void: 200, want a refusal")
	}
	if again := e.voidAssignment("visit-8-guest"); again.RoleAssignmentID != nil {
		t.Errorf("second void: %+v, want nothing", again)
	}
	wantError(t, e.do(req{method: "POST", path: "/invites", auth: admin(), header: h, body: inviteBody(f.visitors, t0)}), 410, CodeGone)

	// Voided before the create arrived: neither an invite nor a role
	// assignment under the key makes anything.
	if got := e.voidAssignment("visit-9-guest"); got.RoleAssignmentID != nil {
		t.Errorf("void of an unused key: %+v", got)
	}
	h9 := map[string]string{"Idempotency-Key": "visit-9-guest"}
	wantError(t, e.do(req{method: "POST", path: "/invites", auth: admin(), header: h9, body: inviteBody(f.visitors, t0)}), 410, CodeGone)
	body := map[string]any{"role_assignment": groupRole("Guest", inv.InviteeID, f.visitors, t0, t0.Add(time.Hour))}
	wantError(t, e.do(req{method: "POST", path: "/role_assignments", auth: admin(), header: h9, body: body}), 410, CodeGone)
	if n := e.countOf("/role_assignments"); n != 0 {
		t.Errorf("%d role assignments left, want 0", n)
	}
	if n := e.countOf("/guests"); n != 1 {
		t.Errorf("%d guests, want only the first invite's", n)
	}
	e.must(422, req{method: "POST", path: "/role_assignments/void", auth: admin(), body: map[string]any{"idempotency_key": ""}})
}

// Keys of links and of role assignments share one namespace: a key that
// made a link cannot make a role assignment, nor the other way round.
func TestIdempotencyKeyKindsDoNotMix(t *testing.T) {
	e := newEnv(t, withSecretKey)
	f := e.site()
	t0 := e.clock.Now()
	e.createUnder(200, f.visitors, "k-link")
	body := map[string]any{"role_assignment": groupRole("Guest", e.guest("Ada"), f.visitors, t0, t0.Add(time.Hour))}
	wantError(t, e.do(req{method: "POST", path: "/role_assignments", auth: admin(),
		header: map[string]string{"Idempotency-Key": "k-link"}, body: body}), 409, "f40900")
	e.must(200, req{method: "POST", path: "/role_assignments", auth: admin(),
		header: map[string]string{"Idempotency-Key": "k-ra"}, body: body})
	e.createUnder(409, f.visitors, "k-ra")
	e.must(409, req{method: "POST", path: "/group_links/void", auth: admin(), body: map[string]any{"idempotency_key": "k-ra"}})
	e.must(409, req{method: "POST", path: "/role_assignments/void", auth: admin(), body: map[string]any{"idempotency_key": "k-link"}})
}
