package connector_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
)

// visitState is the part of a visit the tests compare.
type visitState struct {
	SourceID   string
	Name       string
	Email      string
	Status     connector.Status
	ValidFrom  time.Time
	ValidUntil time.Time
}

func stateOf(v connector.Visit) visitState {
	s := visitState{SourceID: v.SourceID, Name: v.Name, Email: v.Email, Status: v.Status}
	if v.ValidFrom != nil {
		s.ValidFrom = v.ValidFrom.UTC()
	}
	if v.ValidUntil != nil {
		s.ValidUntil = v.ValidUntil.UTC()
	}
	return s
}

// checkVisit compares visit id's state with want.
func (e *env) checkVisit(id int64, want visitState) connector.Visit {
	e.t.Helper()
	v := e.visit(id)
	if diff := cmp.Diff(want, stateOf(v)); diff != "" {
		e.t.Errorf("visit %d (-want +got):\n%s", id, diff)
	}
	return v
}

// checkControllerLinks compares the controller's links with want.
func (e *env) checkControllerLinks(want []ctlLink) {
	e.t.Helper()
	got := e.controllerLinks()
	if len(want) == 0 {
		want = []ctlLink{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		e.t.Errorf("controller links (-want +got):\n%s", diff)
	}
}

// checkSubjects compares the subjects of the captured emails with want.
func (e *env) checkSubjects(want ...string) {
	e.t.Helper()
	if diff := cmp.Diff(want, e.subjects()); diff != "" {
		e.t.Errorf("email subjects (-want +got):\n%s", diff)
	}
}

const (
	subjectAccess  = "Your door pass"
	subjectUpdated = "Updated: your door pass"
	subjectResend  = "Your door pass (sent again)"
)

func TestWalkInSignInThenSignOut(t *testing.T) {
	e := newEnv(t, envOptions{})

	res := e.process(walkIn(t, start))
	if res.Status != connector.StatusActive || res.Duplicate || !res.Changed {
		t.Fatalf("sign-in: got %+v, want a changed, active visit", res)
	}
	v := e.checkVisit(res.VisitID, visitState{SourceID: "entry:" + signInEntryID, Name: "Jane Visitor", Email: guestEmail,
		Status: connector.StatusActive, ValidFrom: start, ValidUntil: start.Add(240 * time.Minute)})
	l := e.onlyLink(v.ID)
	if l.GroupID != groupID || l.Name != linkName {
		t.Errorf("stored link: got group %d named %q, want group %d named %q", l.GroupID, l.Name, groupID, linkName)
	}
	e.checkControllerLinks([]ctlLink{{ID: l.LinkID, GroupID: groupID, Name: linkName, ValidFrom: start,
		ValidUntil: start.Add(240 * time.Minute), Enabled: true}})

	mails := e.mails()
	if len(mails) != 1 {
		t.Fatalf("emails after sign-in: got %d, want 1", len(mails))
	}
	passURL := e.svc.PassURL(v)
	if mails[0].To != guestEmail || plainSubject(mails[0].Subject) != subjectAccess || !strings.Contains(mails[0].Text, passURL) {
		t.Errorf("email: got to %q subject %q, text without %s; want to %q, subject %q, text with the pass URL:\n%s",
			mails[0].To, mails[0].Subject, passURL, guestEmail, subjectAccess, mails[0].Text)
	}

	token := e.svc.PassToken(v)
	doors := e.doors(token)
	if len(doors) != 3 {
		t.Fatalf("doors of the pass: got %v, want the 3 doors of group Visitors", doors)
	}
	if err := e.svc.PassUnlock(e.ctx, token, doors[0]); err != nil {
		t.Fatalf("unlock door %d during the visit: got %v, want nil", doors[0], err)
	}
	unlocks := e.events("lock.unlock")
	if len(unlocks) != 1 {
		t.Fatalf("lock.unlock events: got %d, want 1", len(unlocks))
	}
	u := unlocks[0]
	if !u.Success || u.ActorName == nil || *u.ActorName != linkName || u.ActorType == nil || *u.ActorType != "GroupLink" ||
		u.ObjectID == nil || *u.ObjectID != doors[0] {
		t.Errorf("unlock event: got %+v (actor %v %v), want a successful unlock of lock %d by GroupLink %q",
			u, deref(u.ActorType), deref(u.ActorName), doors[0], linkName)
	}

	e.clock.Advance(30 * time.Minute)
	out := e.clock.Now()
	res = e.process(signOut(t, start, out))
	if res.VisitID != v.ID {
		t.Fatalf("sign-out visit: got %d, want the sign-in's visit %d", res.VisitID, v.ID)
	}
	e.checkVisit(v.ID, visitState{SourceID: "entry:" + signInEntryID, Name: "Jane Visitor", Email: guestEmail,
		Status: connector.StatusRevoked, ValidFrom: start, ValidUntil: out})
	if got := e.liveLinks(v.ID); len(got) != 0 {
		t.Errorf("stored live links after sign-out: got %+v, want none", got)
	}
	e.checkControllerLinks(nil)
	if got := e.countEvents("group_link.destroy"); got != 1 {
		t.Errorf("group_link.destroy events: got %d, want 1", got)
	}
	if err := e.svc.PassUnlock(e.ctx, token, doors[0]); !errors.Is(err, connector.ErrPassEnded) {
		t.Errorf("unlock after sign-out: got %v, want %v", err, connector.ErrPassEnded)
	}
	e.checkSubjects(subjectAccess)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestDuplicateDeliveries(t *testing.T) {
	tests := []struct {
		name string
		// body returns the i-th of five deliveries.
		body          func(t *testing.T, i int) []byte
		wantDuplicate int
	}{
		{
			name:          "same delivery five times",
			body:          func(t *testing.T, i int) []byte { return walkIn(t, start) },
			wantDuplicate: 4,
		},
		{
			name:          "same event under five job ids",
			body:          func(t *testing.T, i int) []byte { return walkIn(t, start, jobID(jobN("resent", i))) },
			wantDuplicate: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			var ids []int64
			duplicates, changed := 0, 0
			for i := range 5 {
				res := e.process(tt.body(t, i))
				ids = append(ids, res.VisitID)
				if res.Duplicate {
					duplicates++
				}
				if res.Changed {
					changed++
				}
				if res.Status != connector.StatusActive {
					t.Errorf("delivery %d: got status %s, want active", i, res.Status)
				}
			}
			if duplicates != tt.wantDuplicate {
				t.Errorf("duplicates: got %d, want %d", duplicates, tt.wantDuplicate)
			}
			if changed != 1 {
				t.Errorf("deliveries that changed the visit: got %d, want 1", changed)
			}
			for _, id := range ids {
				if id != ids[0] {
					t.Fatalf("visit ids: got %v, want one visit", ids)
				}
			}
			if got := e.countEvents("group_link.create"); got != 1 {
				t.Errorf("group_link.create events: got %d, want 1", got)
			}
			if got := len(e.controllerLinks()); got != 1 {
				t.Errorf("controller links: got %d, want 1", got)
			}
			e.checkSubjects(subjectAccess)
		})
	}
}

func TestSignOutBeforeSignIn(t *testing.T) {
	e := newEnv(t, envOptions{})
	in, out := start.Add(-10*time.Minute), start.Add(-time.Minute)

	first := e.process(signOut(t, in, out))
	second := e.process(walkIn(t, in))
	if first.VisitID != second.VisitID {
		t.Fatalf("visits: got %d and %d, want one visit for the entry", first.VisitID, second.VisitID)
	}
	if second.Status != connector.StatusRevoked {
		t.Errorf("sign-in after its sign-out: got status %s, want revoked", second.Status)
	}
	e.checkVisit(first.VisitID, visitState{SourceID: "entry:" + signInEntryID, Name: "Jane Visitor", Email: guestEmail,
		Status: connector.StatusRevoked, ValidFrom: in, ValidUntil: out})
	if got := e.liveLinks(first.VisitID); len(got) != 0 {
		t.Errorf("stored live links: got %+v, want none", got)
	}
	e.checkControllerLinks(nil)
	creates, destroys := e.countEvents("group_link.create"), e.countEvents("group_link.destroy")
	if creates > 1 || creates != destroys {
		t.Errorf("links created and deleted: got %d and %d, want at most one, each deleted", creates, destroys)
	}
	e.checkSubjects()
}

func TestInviteWindow(t *testing.T) {
	tests := []struct {
		name       string
		arrival    time.Time
		wantStatus connector.Status
		wantFrom   time.Time
	}{
		{"arrival hours ahead", start.Add(2 * time.Hour), connector.StatusScheduled, start.Add(90 * time.Minute)},
		{"advance starts before the invite came in", start.Add(10 * time.Minute), connector.StatusActive, start},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			res := e.process(inviteEvent(t, "invite_created", tt.arrival, "job-created"))
			wantUntil := tt.arrival.Add(240 * time.Minute)
			e.checkVisit(res.VisitID, visitState{SourceID: "invite:" + inviteID, Name: "Jane Visitor", Email: guestEmail,
				Status: tt.wantStatus, ValidFrom: tt.wantFrom, ValidUntil: wantUntil})
			l := e.onlyLink(res.VisitID)
			e.checkControllerLinks([]ctlLink{{ID: l.LinkID, GroupID: groupID, Name: linkName,
				ValidFrom: tt.wantFrom, ValidUntil: wantUntil, Enabled: true}})
			e.checkSubjects(subjectAccess)
		})
	}
}

func TestInviteUpdatedAndRemoved(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		name := "lockctl updates in place"
		if realKisi {
			name = "kisi replaces the link"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{realKisi: realKisi})
			arrive := start.Add(2 * time.Hour)
			res := e.process(inviteEvent(t, "invite_created", arrive, "job-created"))
			id := res.VisitID
			v := e.checkVisit(id, visitState{SourceID: "invite:" + inviteID, Name: "Jane Visitor", Email: guestEmail,
				Status: connector.StatusScheduled, ValidFrom: arrive.Add(-30 * time.Minute), ValidUntil: arrive.Add(240 * time.Minute)})
			token := e.svc.PassToken(v)
			old := e.onlyLink(id)

			// Before the window opens the controller refuses the door.
			doors := e.doors(token)
			if len(doors) == 0 {
				t.Fatal("doors of the scheduled pass: got none, want the group's doors")
			}
			var ce *connector.ControllerError
			if err := e.svc.PassUnlock(e.ctx, token, doors[0]); !errors.As(err, &ce) || ce.Code != "f358de" {
				t.Errorf("unlock before the window: got %v, want the controller's not-yet-valid refusal (f358de)", err)
			}

			e.clock.Advance(10 * time.Minute)
			arrive2 := start.Add(3 * time.Hour)
			res = e.process(inviteEvent(t, "invite_updated", arrive2, "job-updated"))
			if res.VisitID != id || !res.Changed {
				t.Fatalf("invite_updated: got %+v, want a change to visit %d", res, id)
			}
			from2, until2 := arrive2.Add(-30*time.Minute), arrive2.Add(240*time.Minute)
			v = e.checkVisit(id, visitState{SourceID: "invite:" + inviteID, Name: "Jane Visitor", Email: guestEmail,
				Status: connector.StatusScheduled, ValidFrom: from2, ValidUntil: until2})
			if got := e.svc.PassToken(v); got != token {
				t.Errorf("pass token after the update: got %q, want the unchanged %q", got, token)
			}
			if p, err := e.svc.PassByToken(e.ctx, token); err != nil || p.ID != id {
				t.Errorf("pass after the update: got visit %d, %v; want visit %d", p.ID, err, id)
			}
			cur := e.onlyLink(id)
			e.checkControllerLinks([]ctlLink{{ID: cur.LinkID, GroupID: groupID, Name: linkName,
				ValidFrom: from2, ValidUntil: until2, Enabled: true}})
			creates, updates, destroys := e.countEvents("group_link.create"), e.countEvents("group_link.update"), e.countEvents("group_link.destroy")
			if realKisi {
				if cur.LinkID == old.LinkID {
					t.Errorf("link id after the update: got the old %d, want a new link", cur.LinkID)
				}
				if creates != 2 || updates != 0 || destroys != 1 {
					t.Errorf("controller link events: got %d creates, %d updates, %d deletes; want 2, 0, 1", creates, updates, destroys)
				}
			} else {
				if cur.LinkID != old.LinkID {
					t.Errorf("link id after the update: got %d, want the same link %d", cur.LinkID, old.LinkID)
				}
				if creates != 1 || updates != 1 || destroys != 0 {
					t.Errorf("controller link events: got %d creates, %d updates, %d deletes; want 1, 1, 0", creates, updates, destroys)
				}
			}
			e.checkSubjects(subjectAccess, subjectUpdated)
			mails := e.mails()
			if passURL := e.svc.PassURL(v); !strings.Contains(mails[1].Text, passURL) {
				t.Errorf("updated email: got text without the pass URL %s:\n%s", passURL, mails[1].Text)
			}

			e.clock.Advance(10 * time.Minute)
			res = e.process(inviteEvent(t, "invite_removed", arrive2, "job-removed"))
			if res.Status != connector.StatusRevoked {
				t.Errorf("invite_removed: got status %s, want revoked", res.Status)
			}
			if got := e.visit(id).Status; got != connector.StatusRevoked {
				t.Errorf("visit status after invite_removed: got %s, want revoked", got)
			}
			if got := e.liveLinks(id); len(got) != 0 {
				t.Errorf("stored live links after invite_removed: got %+v, want none", got)
			}
			e.checkControllerLinks(nil)
			e.checkSubjects(subjectAccess, subjectUpdated)
		})
	}
}

func TestInvitedVisitorSignsInLate(t *testing.T) {
	e := newEnv(t, envOptions{})
	arrive := start.Add(time.Hour)
	inv := e.process(inviteEvent(t, "invite_created", arrive, "job-created"))
	e.checkVisit(inv.VisitID, visitState{SourceID: "invite:" + inviteID, Name: "Jane Visitor", Email: guestEmail,
		Status: connector.StatusScheduled, ValidFrom: arrive.Add(-30 * time.Minute), ValidUntil: arrive.Add(240 * time.Minute)})
	before := e.onlyLink(inv.VisitID)

	e.clock.Advance(2 * time.Hour) // an hour after the expected arrival
	signedIn := e.clock.Now()
	res := e.process(fixture(t, fixtureSignInInvited, invitedBy(inviteID), entryTime("signed-in-at", signedIn)))
	if res.VisitID != inv.VisitID {
		t.Fatalf("sign-in visit: got %d, want the invite's visit %d", res.VisitID, inv.VisitID)
	}
	wantUntil := signedIn.Add(240 * time.Minute)
	e.checkVisit(inv.VisitID, visitState{SourceID: "invite:" + inviteID, Name: "Jane Visitor", Email: guestEmail,
		Status: connector.StatusActive, ValidFrom: arrive.Add(-30 * time.Minute), ValidUntil: wantUntil})
	after := e.onlyLink(inv.VisitID)
	if after.LinkID != before.LinkID {
		t.Errorf("link after the late sign-in: got %d, want the invite's link %d updated in place", after.LinkID, before.LinkID)
	}
	e.checkControllerLinks([]ctlLink{{ID: before.LinkID, GroupID: groupID, Name: linkName,
		ValidFrom: arrive.Add(-30 * time.Minute), ValidUntil: wantUntil, Enabled: true}})
	e.checkSubjects(subjectAccess, subjectUpdated)
}

func TestSyncVisitIdempotent(t *testing.T) {
	t.Run("after the email", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		res := e.process(walkIn(t, start))
		events, version, timeline := len(e.events()), e.visit(res.VisitID).Version, len(e.timeline(res.VisitID))
		for i := range 2 {
			sr, err := e.svc.SyncVisit(e.ctx, res.VisitID)
			if err != nil {
				t.Fatalf("sync %d: %v", i, err)
			}
			if sr.EmailKind != "" || sr.Status != connector.StatusActive {
				t.Errorf("sync %d: got status %s, email %q; want active and no email", i, sr.Status, sr.EmailKind)
			}
		}
		if got := len(e.events()); got != events {
			t.Errorf("controller events: got %d, want the %d before the repeated syncs", got, events)
		}
		if got := e.visit(res.VisitID).Version; got != version {
			t.Errorf("visit version: got %d, want %d", got, version)
		}
		if got := len(e.timeline(res.VisitID)); got != timeline {
			t.Errorf("timeline entries: got %d, want %d", got, timeline)
		}
		e.checkSubjects(subjectAccess)
	})
	t.Run("before the email", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		res := e.ingest(e.svc, walkIn(t, start))
		var results []connector.SyncResult
		for i := range 2 {
			sr, err := e.svc.SyncVisit(e.ctx, res.VisitID)
			if err != nil {
				t.Fatalf("sync %d: %v", i, err)
			}
			results = append(results, sr)
		}
		if diff := cmp.Diff(results[0], results[1]); diff != "" {
			t.Errorf("second sync result (-first +second):\n%s", diff)
		}
		if results[0].EmailKind != connector.EmailAccess {
			t.Fatalf("email due: got %q, want %q", results[0].EmailKind, connector.EmailAccess)
		}
		if got := e.countEvents("group_link.create"); got != 1 {
			t.Errorf("group_link.create events: got %d, want 1", got)
		}
		// Both syncs' email tasks run: the guest still gets one email.
		for _, sr := range results {
			if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey); err != nil {
				t.Fatalf("send email: %v", err)
			}
		}
		e.checkSubjects(subjectAccess)
	})
}

func TestRepairDrift(t *testing.T) {
	t.Run("a missing link is created again", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		res := e.process(walkIn(t, start))
		v := e.visit(res.VisitID)
		token := e.svc.PassToken(v)
		doors := e.doors(token)
		old := e.onlyLink(v.ID)

		e.admin(http.MethodDelete, "/group_links/"+strconv.FormatInt(old.LinkID, 10), nil, http.StatusNoContent, nil)
		if err := e.svc.PassUnlock(e.ctx, token, doors[0]); err == nil {
			t.Fatal("unlock with the link deleted behind latchkey's back: got nil, want a refusal")
		}

		rep, err := e.svc.RepairDrift(e.ctx)
		if err != nil {
			t.Fatalf("repair drift: %v", err)
		}
		// The guest's pass URL and window are unchanged (the pass page shows
		// the new link's code): no email is due.
		if rep.Created != 1 || rep.Deleted != 0 || len(rep.Emails) != 0 {
			t.Errorf("drift report: got %+v, want one link created and no email due", rep)
		}
		cur := e.onlyLink(v.ID)
		if cur.LinkID == old.LinkID {
			t.Errorf("link after repair: got the deleted link %d, want a new one", cur.LinkID)
		}
		e.checkControllerLinks([]ctlLink{{ID: cur.LinkID, GroupID: groupID, Name: linkName, ValidFrom: start,
			ValidUntil: start.Add(240 * time.Minute), Enabled: true}})
		if got := e.svc.PassToken(e.visit(v.ID)); got != token {
			t.Errorf("pass token after repair: got %q, want the unchanged %q", got, token)
		}
		if err := e.svc.PassUnlock(e.ctx, token, doors[0]); err != nil {
			t.Errorf("unlock after repair: got %v, want nil", err)
		}

		// Nothing is left to repair.
		rep, err = e.svc.RepairDrift(e.ctx)
		if err != nil {
			t.Fatalf("second repair: %v", err)
		}
		if diff := cmp.Diff(connector.DriftReport{Checked: 1}, rep); diff != "" {
			t.Errorf("second drift report (-want +got):\n%s", diff)
		}
	})

	t.Run("a link that should be gone is deleted, others are left alone", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		res := e.process(walkIn(t, start))
		id := res.VisitID
		stray := e.onlyLink(id)

		var foreign struct {
			ID int64 `json:"id"`
		}
		e.admin(http.MethodPost, "/group_links", map[string]any{"group_link": map[string]any{
			"group_id": groupID, "name": "Cleaning crew"}}, http.StatusOK, &foreign)

		// The sign-out is stored, but its sync cannot reach the controller.
		e.clock.Advance(30 * time.Minute)
		down := e.downService()
		out := e.ingest(down, signOut(t, start, e.clock.Now()))
		if out.Status != connector.StatusRevoked {
			t.Fatalf("sign-out: got status %s, want revoked", out.Status)
		}
		if _, err := down.SyncVisit(e.ctx, id); latchkey.KindOf(err) != latchkey.Unavailable {
			t.Fatalf("sync with the controller down: got %v (kind %v), want an Unavailable error", err, latchkey.KindOf(err))
		}
		if got := len(e.controllerLinks()); got != 2 {
			t.Fatalf("controller links before repair: got %d, want the stray and the foreign link", got)
		}

		rep, err := e.svc.RepairDrift(e.ctx)
		if err != nil {
			t.Fatalf("repair drift: %v", err)
		}
		if diff := cmp.Diff(connector.DriftReport{Checked: 2, Deleted: 1}, rep); diff != "" {
			t.Errorf("drift report (-want +got):\n%s", diff)
		}
		got := e.controllerLinks()
		if len(got) != 1 || got[0].ID != foreign.ID || got[0].Name != "Cleaning crew" {
			t.Errorf("controller links after repair: got %+v, want only the foreign link %d", got, foreign.ID)
		}
		liveAfterRepair := e.liveLinks(id)

		// The retried sync finds the link gone and finishes.
		e.sync(id)
		if got := e.visit(id).Status; got != connector.StatusRevoked {
			t.Errorf("status after the retried sync: got %s, want revoked", got)
		}
		if got := e.liveLinks(id); len(got) != 0 {
			t.Errorf("stored live links after the retried sync: got %+v, want none", got)
		}
		if got := len(e.controllerLinks()); got != 1 {
			t.Errorf("controller links after the retried sync: got %d, want the foreign link only", got)
		}

		if len(liveAfterRepair) != 0 {
			t.Errorf("RepairDrift deleted stray link %d on the controller but left its row live (link_id=%d)",
				stray.LinkID, liveAfterRepair[0].LinkID)
		}
	})
}

func TestFrontDeskActions(t *testing.T) {
	t.Run("extend", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		id := e.process(walkIn(t, start)).VisitID
		old := e.onlyLink(id)
		v, err := e.svc.Extend(e.ctx, id, 60)
		if err != nil {
			t.Fatalf("extend: %v", err)
		}
		want := visitState{SourceID: "entry:" + signInEntryID, Name: "Jane Visitor", Email: guestEmail,
			Status: connector.StatusActive, ValidFrom: start, ValidUntil: start.Add(300 * time.Minute)}
		if diff := cmp.Diff(want, stateOf(v)); diff != "" {
			t.Errorf("extended visit (-want +got):\n%s", diff)
		}
		e.sync(id)
		e.checkVisit(id, want)
		e.checkControllerLinks([]ctlLink{{ID: old.LinkID, GroupID: groupID, Name: linkName, ValidFrom: start,
			ValidUntil: start.Add(300 * time.Minute), Enabled: true}})
		e.checkSubjects(subjectAccess, subjectUpdated)
	})
	t.Run("revoke", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		id := e.process(walkIn(t, start)).VisitID
		token := e.svc.PassToken(e.visit(id))
		doors := e.doors(token)
		e.clock.Advance(37 * time.Minute)
		revokedAt := start.Add(37 * time.Minute)
		v, err := e.svc.Revoke(e.ctx, id)
		if err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if v.Status != connector.StatusRevoked {
			t.Errorf("revoked visit: got status %s, want revoked", v.Status)
		}
		// The window ends when the desk revoked it, not when it would have.
		if v.ValidUntil == nil || !v.ValidUntil.Equal(revokedAt) || v.ValidFrom == nil || !v.ValidFrom.Equal(start) {
			t.Errorf("revoked visit's window: %v – %v, want %v – %v", v.ValidFrom, v.ValidUntil, start, revokedAt)
		}
		e.sync(id)
		if got := e.visit(id); got.Status != connector.StatusRevoked || got.Reason != "revoked at the front desk" {
			t.Errorf("visit after sync: got %s (%q), want revoked (%q)", got.Status, got.Reason, "revoked at the front desk")
		}
		e.checkControllerLinks(nil)
		if err := e.svc.PassUnlock(e.ctx, token, doors[0]); !errors.Is(err, connector.ErrPassEnded) {
			t.Errorf("unlock after revoke: got %v, want %v", err, connector.ErrPassEnded)
		}
		if _, err := e.svc.Revoke(e.ctx, id); latchkey.KindOf(err) != latchkey.Conflict {
			t.Errorf("second revoke: got %v, want a Conflict", err)
		}
		e.checkSubjects(subjectAccess)
	})
	t.Run("resend", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		id := e.process(walkIn(t, start)).VisitID
		v, err := e.svc.Resend(e.ctx, id)
		if err != nil {
			t.Fatalf("resend: %v", err)
		}
		key := e.queue.lastEmail(t)
		for range 2 { // a retried email task sends nothing more
			if err := e.svc.SendVisitEmail(e.ctx, id, connector.EmailResend, key); err != nil {
				t.Fatalf("send resend email: %v", err)
			}
		}
		e.checkSubjects(subjectAccess, subjectResend)
		passURL := e.svc.PassURL(v)
		for i, m := range e.mails() {
			if !strings.Contains(m.Text, passURL) {
				t.Errorf("email %d: got text without the pass URL %s:\n%s", i, passURL, m.Text)
			}
		}
		if got := e.countEvents("group_link.create"); got != 1 {
			t.Errorf("group_link.create events: got %d, want 1", got)
		}
	})
}

func TestIgnoredVisits(t *testing.T) {
	tests := []struct {
		name       string
		mapping    func(*mappings.Mapping)
		body       func(t *testing.T) []byte
		wantStatus connector.Status
		wantReason string
	}{
		{
			name:       "unmapped flow",
			body:       func(t *testing.T) []byte { return walkIn(t, start, flow("999999")) },
			wantStatus: connector.StatusIgnored,
			wantReason: "no mapping exists for flow 999999 at this location",
		},
		{
			name:       "walk-in on an invited-only flow",
			mapping:    func(m *mappings.Mapping) { m.OnlyInvited = true },
			body:       func(t *testing.T) []byte { return walkIn(t, start) },
			wantStatus: connector.StatusIgnored,
			wantReason: "walk-in, but this flow is for invited visitors only",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{mapping: tt.mapping})
			res := e.process(tt.body(t))
			if !res.Ignored || res.Status != tt.wantStatus || res.Reason != tt.wantReason {
				t.Errorf("ingest: got ignored %v, status %s, reason %q; want ignored, %s, %q",
					res.Ignored, res.Status, res.Reason, tt.wantStatus, tt.wantReason)
			}
			v := e.visit(res.VisitID)
			if v.Status != tt.wantStatus || v.Reason != tt.wantReason {
				t.Errorf("visit: got %s (%q), want %s (%q)", v.Status, v.Reason, tt.wantStatus, tt.wantReason)
			}
			e.checkControllerLinks(nil)
			if got := e.countEvents("group_link.create"); got != 0 {
				t.Errorf("group_link.create events: got %d, want 0", got)
			}
			e.checkSubjects()
		})
	}
}

func TestInviteEventsReordered(t *testing.T) {
	e := newEnv(t, envOptions{})
	created, updated := start.Add(2*time.Hour), start.Add(3*time.Hour)
	// Envoy retries a failed delivery later: the update is processed
	// first, the create a minute after it.
	res := e.process(inviteEvent(t, "invite_updated", updated, "job-updated"))
	e.clock.Advance(time.Minute)
	e.process(inviteEvent(t, "invite_created", created, "job-created"))
	want := visitState{SourceID: "invite:" + inviteID, Name: "Jane Visitor", Email: guestEmail,
		Status: connector.StatusScheduled, ValidFrom: updated.Add(-30 * time.Minute), ValidUntil: updated.Add(240 * time.Minute)}
	if diff := cmp.Diff(want, stateOf(e.visit(res.VisitID))); diff != "" {
		t.Fatalf("a retried invite_created processed after invite_updated must not bring the old arrival back; visit (-want +got):\n%s", diff)
	}
	l := e.onlyLink(res.VisitID)
	e.checkControllerLinks([]ctlLink{{ID: l.LinkID, GroupID: groupID, Name: linkName,
		ValidFrom: want.ValidFrom, ValidUntil: want.ValidUntil, Enabled: true}})
}

func TestAccessEndsAtValidUntil(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.process(walkIn(t, start)).VisitID
	token := e.svc.PassToken(e.visit(id))
	doors := e.doors(token)

	e.clock.Advance(240*time.Minute - time.Second)
	if err := e.svc.PassUnlock(e.ctx, token, doors[0]); err != nil {
		t.Fatalf("unlock in the window's last second: got %v, want nil", err)
	}
	// The controller checks the window itself, before any sweep ran.
	e.clock.Advance(time.Second)
	var ce *connector.ControllerError
	if err := e.svc.PassUnlock(e.ctx, token, doors[0]); !errors.As(err, &ce) || ce.Code != "f35ade" {
		t.Errorf("unlock at valid_until: got %v, want the controller's no-longer-valid refusal (f35ade)", err)
	}

	due, err := e.svc.VisitsDue(e.ctx, e.clock.Now())
	if err != nil {
		t.Fatalf("visits due: %v", err)
	}
	if diff := cmp.Diff([]connector.VisitRef{{ID: id, Version: 1}}, due); diff != "" {
		t.Errorf("visits due at valid_until (-want +got):\n%s", diff)
	}
	if sr := e.sync(id); sr.Status != connector.StatusExpired || !sr.NextAt.IsZero() {
		t.Errorf("sync at valid_until: got status %s, next at %v; want expired, no next sync", sr.Status, sr.NextAt)
	}
	e.checkControllerLinks(nil)
	if err := e.svc.PassUnlock(e.ctx, token, doors[0]); !errors.Is(err, connector.ErrPassEnded) {
		t.Errorf("unlock after expiry: got %v, want %v", err, connector.ErrPassEnded)
	}
	e.checkSubjects(subjectAccess)
}

// TestInvitedSignOutWithoutInviteRelationship: a sign-out that names only
// the entry still finds the invite's visit its sign-in joined.
func TestInvitedSignOutWithoutInviteRelationship(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	invite := e.process(inviteEvent(t, "invite_created", start.Add(time.Hour), "job-invite"))
	signedIn := start.Add(50 * time.Minute)
	signIn := e.process(fixture(t, fixtureSignInInvited, invitedBy(inviteID), entryTime("signed-in-at", signedIn), payloadID("777")))
	if signIn.VisitID != invite.VisitID {
		t.Fatalf("sign-in joined visit %d, want the invite's visit %d", signIn.VisitID, invite.VisitID)
	}
	e.clock.Advance(time.Hour)
	out := e.process(fixture(t, fixtureSignOut, payloadID("777"), entryTime("signed-in-at", signedIn), entryTime("signed-out-at", e.clock.Now())))
	if out.VisitID != invite.VisitID {
		t.Fatalf("sign-out went to visit %d, want the invite's visit %d", out.VisitID, invite.VisitID)
	}
	if got := e.visit(invite.VisitID).Status; got != connector.StatusRevoked {
		t.Fatalf("status after sign-out: got %s, want revoked", got)
	}
	if n := len(e.liveLinks(invite.VisitID)); n != 0 {
		t.Fatalf("live links after sign-out: got %d, want 0", n)
	}
}

// TestMappingChangedReachesOpenVisits: deleting a flow's mapping takes the
// access of its open visits away, and mapping it again gives it back.
func TestMappingChangedReachesOpenVisits(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.process(walkIn(t, e.clock.Now()))
	if n := len(e.liveLinks(res.VisitID)); n != 1 {
		t.Fatalf("live links after sign-in: got %d, want 1", n)
	}
	maps := mappings.NewStore(e.db)
	if err := maps.Delete(e.ctx, e.mapping.ID); err != nil {
		t.Fatal(err)
	}
	refs, err := e.svc.MappingChanged(e.ctx, e.mapping.LocationID, e.mapping.FlowID)
	if err != nil || len(refs) != 1 || refs[0].ID != res.VisitID {
		t.Fatalf("MappingChanged = %v, %v; want the one open visit", refs, err)
	}
	e.sync(res.VisitID)
	if v := e.visit(res.VisitID); v.Status != connector.StatusIgnored || len(e.liveLinks(v.ID)) != 0 {
		t.Fatalf("after the mapping was deleted: status %s with %d live links; want ignored with none", v.Status, len(e.liveLinks(v.ID)))
	}
	m := e.mapping
	m.ID = 0
	m, err = maps.Create(e.ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.MappingChanged(e.ctx, m.LocationID, m.FlowID); err != nil {
		t.Fatal(err)
	}
	e.sync(res.VisitID)
	if v := e.visit(res.VisitID); v.Status != connector.StatusActive || len(e.liveLinks(v.ID)) != 1 {
		t.Fatalf("after mapping again: status %s with %d live links; want active with one", v.Status, len(e.liveLinks(v.ID)))
	}

	// An ignored visit of days ago is not looked at again.
	if err := maps.Delete(e.ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.MappingChanged(e.ctx, m.LocationID, m.FlowID); err != nil {
		t.Fatal(err)
	}
	e.sync(res.VisitID)
	e.clock.Advance(72 * time.Hour)
	if refs, err := e.svc.MappingChanged(e.ctx, m.LocationID, m.FlowID); err != nil || len(refs) != 0 {
		t.Fatalf("MappingChanged three days later = %v, %v; want no visit (the ignored one is old)", refs, err)
	}

	// An invite sent days ahead, ignored while its flow is unmapped, is
	// reached by a mapping made days later, before the arrival.
	inv := e.process(inviteEvent(t, "invite_created", e.clock.Now().Add(96*time.Hour), "job-far-ahead"))
	if got := e.visit(inv.VisitID).Status; got != connector.StatusIgnored {
		t.Fatalf("invite on an unmapped flow: status %s, want ignored", got)
	}
	e.clock.Advance(72 * time.Hour)
	m.ID = 0
	if m, err = maps.Create(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	refs, err = e.svc.MappingChanged(e.ctx, m.LocationID, m.FlowID)
	if err != nil || len(refs) != 1 || refs[0].ID != inv.VisitID {
		t.Fatalf("MappingChanged before the invite's arrival = %v, %v; want only the invite's visit %d", refs, err, inv.VisitID)
	}
	e.sync(inv.VisitID)
	if got := e.visit(inv.VisitID).Status; got != connector.StatusScheduled {
		t.Errorf("invite after its flow was mapped: status %s, want scheduled", got)
	}
}

// TestInvitedSignInBeforeInviteThenBareSignOut: the sign-in of an invited
// visitor is processed before its invite, and the sign-out names only the
// entry; all three land on one visit.
func TestInvitedSignInBeforeInviteThenBareSignOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	signIn := e.process(fixture(t, fixtureSignInInvited, invitedBy(inviteID), entryTime("signed-in-at", start), payloadID("888")))
	invite := e.process(inviteEvent(t, "invite_created", start.Add(10*time.Minute), "job-invite-late"))
	if invite.VisitID != signIn.VisitID {
		t.Fatalf("invite went to visit %d, want the sign-in's visit %d", invite.VisitID, signIn.VisitID)
	}
	e.clock.Advance(time.Hour)
	out := e.process(fixture(t, fixtureSignOut, payloadID("888"), entryTime("signed-in-at", start), entryTime("signed-out-at", e.clock.Now())))
	if out.VisitID != signIn.VisitID {
		t.Fatalf("sign-out went to visit %d, want visit %d", out.VisitID, signIn.VisitID)
	}
	if got := e.visit(signIn.VisitID).Status; got != connector.StatusRevoked {
		t.Fatalf("status after sign-out: got %s, want revoked", got)
	}
}

// TestLinksOf reads the links of several visits at once.
func TestLinksOf(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.process(walkIn(t, e.clock.Now()))
	b := e.process(walkIn(t, e.clock.Now(), payloadID("555"), jobID("job-b")))
	got, err := e.store.LinksOf(e.ctx, []int64{a.VisitID, b.VisitID, 999})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[a.VisitID]) != 1 || len(got[b.VisitID]) != 1 || len(got[999]) != 0 {
		t.Fatalf("LinksOf: got %d, %d and %d links; want 1, 1 and 0", len(got[a.VisitID]), len(got[b.VisitID]), len(got[999]))
	}
	if got[a.VisitID][0].LinkID == got[b.VisitID][0].LinkID {
		t.Fatalf("both visits got link %d", got[a.VisitID][0].LinkID)
	}
}

// TestMappingChangeSkipsVisitsAlreadyDecidedWithIt: a visit that arrived
// after the mapping change (decided with it, sync still owed) is left to
// that sync: no second version, no timeline noise.
func TestMappingChangeSkipsVisitsAlreadyDecidedWithIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.ingest(e.svc, walkIn(t, e.clock.Now()))
	refs, err := e.svc.MappingChanged(e.ctx, e.mapping.LocationID, e.mapping.FlowID)
	if err != nil || len(refs) != 0 {
		t.Fatalf("MappingChanged = %v, %v; want nothing to sync again", refs, err)
	}
	if v := e.visit(res.VisitID); v.Version != res.Version {
		t.Errorf("version %d, want still %d", v.Version, res.Version)
	}
	// Once synced, a mapping change re-decides it.
	e.sync(res.VisitID)
	refs, err = e.svc.MappingChanged(e.ctx, e.mapping.LocationID, e.mapping.FlowID)
	if err != nil || len(refs) != 1 {
		t.Fatalf("MappingChanged after the sync = %v, %v; want the visit", refs, err)
	}
}

// TestSameEventAgainLaterChangesNothing: the same sign-in delivered again
// as a new job seconds later (Envoy re-sent it) records its receipt but
// changes nothing to sync: the visit's version stays, so no sync is
// queued and Envoy is told the job is done.
func TestSameEventAgainLaterChangesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.process(walkIn(t, start, jobID("first")))
	e.clock.Advance(5 * time.Second)
	again := e.ingest(e.svc, walkIn(t, start, jobID("again")))
	if again.Duplicate || again.VisitID != first.VisitID {
		t.Fatalf("again: %+v; want the same visit, not a duplicate delivery", again)
	}
	if again.Changed || again.Version != first.Version {
		t.Errorf("again: changed %t, version %d; want unchanged at version %d", again.Changed, again.Version, first.Version)
	}
}
