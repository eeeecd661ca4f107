package connector_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/mappings"
)

// ctlRole is the part of a controller role assignment the tests compare.
type ctlRole struct {
	ID           int64      `json:"id"`
	RoleID       string     `json:"role_id"`
	AppliesToID  int64      `json:"applies_to_id"`
	AssigneeType string     `json:"assignee_type"`
	AssigneeID   int64      `json:"assignee_id"`
	ValidFrom    *time.Time `json:"valid_from"`
	ValidUntil   *time.Time `json:"valid_until"`
}

// controllerRoles lists every group role assignment on the controller,
// by group.
func (e *env) controllerRoles() []ctlRole {
	e.t.Helper()
	var rs []ctlRole
	e.admin(http.MethodGet, "/role_assignments?applies_to_type=Group&limit=250", nil, http.StatusOK, &rs)
	sort.Slice(rs, func(i, j int) bool { return rs[i].AppliesToID < rs[j].AppliesToID })
	return rs
}

// personEnv is an environment whose mapping gives cred on both demo
// groups, with app access on the groups (a member's login opens doors only
// where it is on), against lockctl or as against real Kisi.
func personEnv(t *testing.T, cred mappings.Credential, realKisi bool) *env {
	t.Helper()
	e := newEnv(t, envOptions{realKisi: realKisi, mapping: func(m *mappings.Mapping) {
		m.Credential, m.GroupIDs, m.GuestIndicator = cred, []int64{1, 2}, "Envoy Guest"
	}})
	if !realKisi {
		// As serve drives lockctl: updates in place, idempotency keys.
		e.client = e.idempotentClient()
		e.svc = e.service(e.client)
	}
	for _, g := range []int64{1, 2} {
		e.admin(http.MethodPatch, "/groups/"+strconv.FormatInt(g, 10), map[string]any{"group": map[string]any{"login_enabled": true}}, http.StatusNoContent, nil)
	}
	return e
}

// checkRoles fails unless the controller holds exactly one group_basic role
// assignment per demo group, all of one person of type typ, each valid
// exactly [from, until); it returns the person's id.
func (e *env) checkRoles(typ string, from, until time.Time) int64 {
	e.t.Helper()
	rs := e.controllerRoles()
	if len(rs) != 2 {
		e.t.Fatalf("controller role assignments: %+v, want one on each of groups 1 and 2", rs)
	}
	for i, r := range rs {
		switch {
		case r.AppliesToID != int64(i+1), r.RoleID != "group_basic", r.AssigneeType != typ, r.AssigneeID != rs[0].AssigneeID:
			e.t.Errorf("role assignment %+v: want group_basic on group %d for %s %d", r, i+1, typ, rs[0].AssigneeID)
		case r.ValidFrom == nil || r.ValidUntil == nil || !r.ValidFrom.Equal(from) || !r.ValidUntil.Equal(until):
			e.t.Errorf("role assignment %d on group %d valid %v – %v, want %v – %v", r.ID, r.AppliesToID, r.ValidFrom, r.ValidUntil, from, until)
		}
	}
	return rs[0].AssigneeID
}

// refusal returns the domain refusal of a failed unlock.
func refusal(err error) connector.Refusal {
	var ce *connector.ControllerError
	if errors.As(err, &ce) {
		return ce.Refusal
	}
	return ""
}

// A guest and a member visitor, on lockctl and as against real Kisi: one
// role assignment per mapped group whose window is the visit's, named
// with the guest indicator; the pass lists the doors and unlocks through
// the person's own credential until the last second of the window, and
// is refused one second after it; a sign-out deletes the role assignments
// and the person at once.
func TestPersonCredentialLifecycle(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		for _, cred := range []mappings.Credential{mappings.CredentialGuest, mappings.CredentialMember} {
			t.Run(fmt.Sprintf("%s/kisi=%v", cred, realKisi), func(t *testing.T) {
				e := personEnv(t, cred, realKisi)
				id := e.process(walkIn(t, start)).VisitID
				v := e.visit(id)
				if v.Status != connector.StatusActive {
					t.Fatalf("visit status %s (%s), want active", v.Status, v.Reason)
				}
				from, until := *v.ValidFrom, *v.ValidUntil
				if !from.Equal(start) || !until.Equal(start.Add(240*time.Minute)) {
					t.Fatalf("window %v – %v", from, until)
				}
				typ, path := "Guest", "/guests/"
				if cred == mappings.CredentialMember {
					typ, path = "User", "/users/"
				}
				person := e.checkRoles(typ, from, until)
				var got struct {
					Name  string `json:"name"`
					Email string `json:"email"`
				}
				e.admin(http.MethodGet, path+strconv.FormatInt(person, 10), nil, http.StatusOK, &got)
				if got.Name != "Jane Visitor (Envoy Guest)" || got.Email != guestEmail {
					t.Errorf("person on the controller: %+v, want \"Jane Visitor (Envoy Guest)\" <%s>", got, guestEmail)
				}
				if n := len(e.controllerLinks()); n != 0 {
					t.Errorf("controller links: %d, want none", n)
				}
				if n := len(e.subjects()); n != 1 {
					t.Errorf("emails: %v, want one", e.subjects())
				}
				if ms := e.mails(); len(ms) == 1 && cred == mappings.CredentialGuest && !strings.Contains(ms[0].HTML, "cid:qr.png") {
					t.Errorf("a guest's email shows no reader QR code")
				}

				token := e.svc.PassToken(v)
				doors := e.doors(token)
				sort.Slice(doors, func(i, j int) bool { return doors[i] < doors[j] })
				if fmt.Sprint(doors) != "[1 2 3 4]" {
					t.Errorf("pass doors %v, want [1 2 3 4] (both groups')", doors)
				}
				if err := e.svc.PassUnlock(e.ctx, token, 4); err != nil {
					t.Fatalf("unlock in the window: %v", err)
				}
				e.clock.Set(until.Add(-time.Second))
				if err := e.svc.PassUnlock(e.ctx, token, 1); err != nil {
					t.Fatalf("unlock in the window's last second: %v", err)
				}
				e.clock.Set(until.Add(time.Second))
				if err := e.svc.PassUnlock(e.ctx, token, 1); refusal(err) != connector.RefusedEnded {
					t.Fatalf("unlock one second after the window: %v (refusal %q), want ended", err, refusal(err))
				}

				e.clock.Set(start.Add(time.Hour))
				e.process(signOut(t, start, start.Add(time.Hour)))
				if v := e.visit(id); v.Status != connector.StatusRevoked {
					t.Fatalf("after sign-out: %s, want revoked", v.Status)
				}
				if rs := e.controllerRoles(); len(rs) != 0 {
					t.Errorf("role assignments after sign-out: %+v, want none", rs)
				}
				e.admin(http.MethodGet, path+strconv.FormatInt(person, 10), nil, http.StatusNotFound, nil)
				if err := e.svc.PassUnlock(e.ctx, token, 1); err == nil {
					t.Errorf("unlock after sign-out succeeded")
				}
			})
		}
	}
}

// A reschedule moves the window of the person's role assignments: in place
// on lockctl (same role assignments), and as against real Kisi by a new
// guest made before the old one is deleted (a member's role is made
// again); either way one role assignment per group with the new window,
// and one email for the new window only.
func TestPersonCredentialReschedule(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		for _, cred := range []mappings.Credential{mappings.CredentialGuest, mappings.CredentialMember} {
			t.Run(fmt.Sprintf("%s/kisi=%v", cred, realKisi), func(t *testing.T) {
				e := personEnv(t, cred, realKisi)
				typ := "Guest"
				if cred == mappings.CredentialMember {
					typ = "User"
				}
				arrive := start.Add(2 * time.Hour)
				id := e.process(inviteEvent(t, "invite_created", arrive, "job-created")).VisitID
				first := e.checkRoles(typ, arrive.Add(-30*time.Minute), arrive.Add(240*time.Minute))
				before := e.controllerRoles()

				arrive2 := start.Add(3 * time.Hour)
				e.process(inviteEvent(t, "invite_updated", arrive2, "job-updated"))
				second := e.checkRoles(typ, arrive2.Add(-30*time.Minute), arrive2.Add(240*time.Minute))
				after := e.controllerRoles()
				switch {
				case !realKisi && (before[0].ID != after[0].ID || before[1].ID != after[1].ID):
					t.Errorf("role assignments on lockctl: %d,%d then %d,%d, want the same ones updated", before[0].ID, before[1].ID, after[0].ID, after[1].ID)
				case realKisi && cred == mappings.CredentialGuest && first == second:
					t.Errorf("guest %d kept on a controller that cannot update role assignments", first)
				case cred == mappings.CredentialMember && first != second:
					t.Errorf("member %d became %d: a user is one per email", first, second)
				}
				if realKisi && cred == mappings.CredentialGuest {
					e.admin(http.MethodGet, "/guests/"+strconv.FormatInt(first, 10), nil, http.StatusNotFound, nil)
				}
				token := e.svc.PassToken(e.visit(id))
				e.clock.Set(arrive2)
				if err := e.svc.PassUnlock(e.ctx, token, 1); err != nil {
					t.Errorf("unlock after the reschedule: %v", err)
				}
				if n := len(e.subjects()); n != 2 {
					t.Errorf("emails: %v, want the access email and one for the new window", e.subjects())
				}
			})
		}
	}
}

// lostAnswers wraps a Kisi client: the first guest invite and the first
// role assignment creation reach the controller, and their answers are
// lost.
type lostAnswers struct {
	*kisi.Client
	mu                 sync.Mutex
	invites, roleMakes int
}

var errLost = latchkey.Errorf(latchkey.Unavailable, "controller unreachable: the answer was lost")

func (c *lostAnswers) InviteGuest(ctx context.Context, spec connector.GuestSpec) (connector.GuestGrant, error) {
	g, err := c.Client.InviteGuest(ctx, spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.invites++; c.invites == 1 && err == nil {
		return connector.GuestGrant{}, errLost
	}
	return g, err
}

func (c *lostAnswers) CreateRole(ctx context.Context, spec connector.RoleSpec) (connector.RoleAssignment, error) {
	r, err := c.Client.CreateRole(ctx, spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roleMakes++; c.roleMakes == 1 && err == nil {
		return connector.RoleAssignment{}, errLost
	}
	return r, err
}

// A guest invite and a role assignment creation that reached the
// controller but whose answers were lost leave no orphan: the next syncs
// void them under their idempotency keys (lockctl), or find and delete
// them once they have settled (as against real Kisi), and the visit ends
// with one guest and one role assignment per group.
func TestPersonCreationCutOffLeavesNoOrphan(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		t.Run(fmt.Sprintf("kisi=%v", realKisi), func(t *testing.T) {
			e := personEnv(t, mappings.CredentialGuest, realKisi)
			e.svc = e.service(&lostAnswers{Client: e.client})
			id := e.ingest(e.svc, walkIn(t, start)).VisitID
			for n := 0; n < 5; n++ {
				if _, err := e.svc.SyncVisit(e.ctx, id); err == nil {
					break
				}
				e.clock.Advance(40 * time.Second) // past the settling time of a cut-off creation
			}
			v := e.visit(id)
			if v.SyncedVersion != v.Version {
				t.Fatalf("visit not synced after 5 syncs: %+v", e.timeline(id))
			}
			guest := e.checkRoles("Guest", *v.ValidFrom, *v.ValidUntil)
			var guests []struct {
				ID int64 `json:"id"`
			}
			e.admin(http.MethodGet, "/guests?limit=250", nil, http.StatusOK, &guests)
			if len(guests) != 1 || guests[0].ID != guest {
				t.Errorf("guests on the controller: %+v, want only %d", guests, guest)
			}
			settled := 0
			for _, te := range e.timeline(id) {
				if strings.Contains(te.Message, "left by an interrupted") {
					settled++
				}
			}
			// Under idempotency keys the role creation is simply sent again
			// and the controller hands back the one it made; the invite,
			// whose key the next sync voids, is settled either way.
			want := 1
			if realKisi {
				want = 2
			}
			if settled != want {
				t.Errorf("timeline notes %d cut-off creations settled, want %d: %+v", settled, want, e.timeline(id))
			}
		})
	}
}

// Drift repair deletes a role assignment of a pass's guest that no visit
// records, and makes again one the controller lost.
func TestDriftRepairOfPersonRoles(t *testing.T) {
	e := personEnv(t, mappings.CredentialGuest, false)
	id := e.process(walkIn(t, start)).VisitID
	v := e.visit(id)
	guest := e.checkRoles("Guest", *v.ValidFrom, *v.ValidUntil)
	var g struct {
		ID int64 `json:"id"`
	}
	e.admin(http.MethodPost, "/groups", map[string]any{"group": map[string]any{"name": "Stray", "place_id": 1}}, http.StatusOK, &g)
	var stray ctlRole
	e.admin(http.MethodPost, "/role_assignments", map[string]any{"role_assignment": map[string]any{
		"applies_to_type": "Group", "applies_to_id": g.ID, "assignee_type": "Guest", "assignee_id": guest, "role_id": "group_basic"}},
		http.StatusOK, &stray)
	lost := e.controllerRoles()[1]
	e.admin(http.MethodDelete, "/role_assignments/"+strconv.FormatInt(lost.ID, 10), nil, http.StatusNoContent, nil)

	rep, err := e.svc.RepairDrift(e.ctx)
	if err != nil {
		t.Fatalf("repair drift: %v", err)
	}
	if rep.Deleted != 1 || rep.Created != 1 {
		t.Errorf("drift report %+v, want 1 deleted (the stray) and 1 created (the lost)", rep)
	}
	e.checkRoles("Guest", *v.ValidFrom, *v.ValidUntil)
	if rep, err := e.svc.RepairDrift(e.ctx); err != nil || rep.Deleted != 0 || rep.Created != 0 {
		t.Errorf("second repair: %+v, %v; want nothing to do", rep, err)
	}
}

// Two visits of one member (one user per email) share the user's one role
// per group: its window covers both while they overlap, narrows to the
// other when one signs out, and the user goes only with the last visit.
func TestMemberSharedByTwoVisits(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		t.Run(fmt.Sprintf("kisi=%v", realKisi), func(t *testing.T) {
			e := personEnv(t, mappings.CredentialMember, realKisi)
			a := e.process(walkIn(t, start)).VisitID
			later := start.Add(time.Hour)
			e.clock.Set(later)
			b := e.process(walkIn(t, later, payloadID("222"), jobID("job-b"))).VisitID
			if a == b {
				t.Fatal("one visit for two entries")
			}
			user := e.checkRoles("User", start, later.Add(240*time.Minute))

			e.clock.Set(start.Add(2 * time.Hour))
			e.process(signOut(t, start, start.Add(2*time.Hour)))
			if v := e.visit(a); v.Status != connector.StatusRevoked {
				t.Fatalf("visit a after its sign-out: %s", v.Status)
			}
			if got := e.checkRoles("User", later, later.Add(240*time.Minute)); got != user {
				t.Errorf("user %d became %d", user, got)
			}
			e.admin(http.MethodGet, "/users/"+strconv.FormatInt(user, 10), nil, http.StatusOK, nil)
			if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(e.visit(b)), 1); err != nil {
				t.Errorf("visit b's pass after visit a signed out: %v", err)
			}

			e.process(signOut(t, later, start.Add(2*time.Hour), payloadID("222"), jobID("job-b-out")))
			if rs := e.controllerRoles(); len(rs) != 0 {
				t.Errorf("role assignments after both sign-outs: %+v", rs)
			}
			e.admin(http.MethodGet, "/users/"+strconv.FormatInt(user, 10), nil, http.StatusNotFound, nil)
		})
	}
}

// A mapping that moves from links to guests moves its visits over: the
// guest's role assignments are made before the links go, and the pass URL
// stays.
func TestCredentialChangeFromLinkToGuest(t *testing.T) {
	e := personEnv(t, mappings.CredentialLink, false)
	id := e.process(walkIn(t, start)).VisitID
	if n := len(e.liveLinks(id)); n != 2 {
		t.Fatalf("links under credential link: %d, want 2", n)
	}
	m := e.mapping
	m.Credential = mappings.CredentialGuest
	if _, _, err := mappings.NewStore(e.db).Update(e.ctx, m); err != nil {
		t.Fatalf("update mapping: %v", err)
	}
	if _, err := e.svc.MappingChanged(e.ctx, locationID, flowID); err != nil {
		t.Fatalf("mapping changed: %v", err)
	}
	e.sync(id)
	v := e.visit(id)
	e.checkRoles("Guest", *v.ValidFrom, *v.ValidUntil)
	if n := len(e.controllerLinks()); n != 0 {
		t.Errorf("controller links after the change: %d, want none", n)
	}
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), 4); err != nil {
		t.Errorf("the same pass after the change: %v", err)
	}
	made, broke := -1, -1
	for i, te := range e.timeline(id) {
		switch {
		case made < 0 && strings.HasPrefix(te.Message, "guest "):
			made = i
		case broke < 0 && strings.HasPrefix(te.Message, "link ") && strings.Contains(te.Message, "deleted"):
			broke = i
		}
	}
	if made < 0 || broke < 0 || made > broke {
		t.Errorf("timeline: guest made at entry %d, first link deleted at %d; want the guest first: %+v", made, broke, e.timeline(id))
	}
}

// failingInvites wraps a Kisi client whose guest invites fail while fail
// is set.
type failingInvites struct {
	*kisi.Client
	fail bool
}

func (c *failingInvites) InviteGuest(ctx context.Context, spec connector.GuestSpec) (connector.GuestGrant, error) {
	if c.fail {
		return connector.GuestGrant{}, latchkey.Errorf(latchkey.Invalid, "controller refused the invite")
	}
	return c.Client.InviteGuest(ctx, spec)
}

// On a controller that cannot update role assignments, a reschedule whose
// new guest cannot be made leaves the guest the access and the pass they
// had.
func TestGuestReplacementMakesBeforeBreak(t *testing.T) {
	e := personEnv(t, mappings.CredentialGuest, true)
	cl := &failingInvites{Client: e.client}
	e.svc = e.service(cl)
	arrive := start.Add(2 * time.Hour)
	id := e.process(inviteEvent(t, "invite_created", arrive, "job-created")).VisitID
	from, until := arrive.Add(-30*time.Minute), arrive.Add(240*time.Minute)
	old := e.checkRoles("Guest", from, until)

	cl.fail = true
	e.ingest(e.svc, inviteEvent(t, "invite_updated", start.Add(3*time.Hour), "job-updated"))
	if _, err := e.svc.SyncVisit(e.ctx, id); err == nil {
		t.Fatal("sync with a failing invite: no error")
	}
	if got := e.checkRoles("Guest", from, until); got != old {
		t.Errorf("guest %d became %d", old, got)
	}
	e.clock.Set(arrive)
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(e.visit(id)), 1); err != nil {
		t.Errorf("the pass after a failed replacement: %v", err)
	}
	cl.fail = false
	e.sync(id)
	arrive2 := start.Add(3 * time.Hour)
	if got := e.checkRoles("Guest", arrive2.Add(-30*time.Minute), arrive2.Add(240*time.Minute)); got == old {
		t.Errorf("guest %d kept after the replacement", got)
	}
	e.admin(http.MethodGet, "/guests/"+strconv.FormatInt(old, 10), nil, http.StatusNotFound, nil)
}

// A member's pass opens only the doors of the visit's mapped groups: the
// controller user may hold roles of their own (an employee visiting
// another site of the company), which the login behind the pass would
// open too, so latchkey neither lists nor unlocks those.
func TestMemberPassOpensOnlyTheVisitsDoors(t *testing.T) {
	e := newEnv(t, envOptions{mapping: func(m *mappings.Mapping) {
		m.Credential, m.GroupIDs = mappings.CredentialMember, []int64{1}
	}})
	e.client = e.idempotentClient()
	e.svc = e.service(e.client)
	for _, g := range []int64{1, 2} {
		e.admin(http.MethodPatch, "/groups/"+strconv.FormatInt(g, 10), map[string]any{"group": map[string]any{"login_enabled": true}}, http.StatusNoContent, nil)
	}
	var u struct {
		ID int64 `json:"id"`
	}
	e.admin(http.MethodPost, "/users", map[string]any{"user": map[string]any{"name": "Jane Visitor", "email": guestEmail}}, http.StatusOK, &u)
	e.admin(http.MethodPost, "/role_assignments", map[string]any{"role_assignment": map[string]any{
		"applies_to_type": "Group", "applies_to_id": 2, "assignee_type": "User", "assignee_id": u.ID, "role_id": "group_basic"}},
		http.StatusOK, nil)

	id := e.process(walkIn(t, start)).VisitID
	token := e.svc.PassToken(e.visit(id))
	doors := e.doors(token)
	sort.Slice(doors, func(i, j int) bool { return doors[i] < doors[j] })
	if fmt.Sprint(doors) != "[1 2 3]" {
		t.Errorf("pass doors %v, want [1 2 3] (the Visitors group's; not the Workshop of the user's own role)", doors)
	}
	if err := e.svc.PassUnlock(e.ctx, token, 4); latchkey.KindOf(err) != latchkey.NotFound {
		t.Errorf("unlock of the Workshop through the visit's pass: %v, want NotFound", err)
	}
	if err := e.svc.PassUnlock(e.ctx, token, 1); err != nil {
		t.Errorf("unlock of the front door: %v", err)
	}
}

// The front desk cannot correct the address of a member visit: its pass
// is the login of the controller user found by that address, which a
// corrected address would hand to someone else.
func TestMemberEmailIsNotCorrectedAtTheDesk(t *testing.T) {
	e := personEnv(t, mappings.CredentialMember, false)
	id := e.process(walkIn(t, start)).VisitID
	if _, err := e.svc.CorrectEmail(e.ctx, id, "someone.else@example.com"); latchkey.KindOf(err) != latchkey.Conflict {
		t.Fatalf("correct a member's address: %v, want a conflict", err)
	}
	if v := e.visit(id); v.Email != guestEmail {
		t.Errorf("address became %q", v.Email)
	}
	if n := len(e.mails()); n != 1 {
		t.Errorf("%d emails, want the one of the sign-in", n)
	}
}
