package connector_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/webhooks"
)

// checkNoAccess fails unless visit id has status want, no live links, and
// neither its pass nor any link it ever had opens a door now.
func (e *env) checkNoAccess(id int64, want connector.Status) {
	e.t.Helper()
	v := e.visit(id)
	if v.Status != want {
		e.t.Errorf("visit %d: got status %s (%s), want %s", id, v.Status, v.Reason, want)
	}
	if ls := e.liveLinks(id); len(ls) != 0 {
		e.t.Errorf("visit %d: got %d live links, want none", id, len(ls))
	}
	for _, lock := range e.lockIDs() {
		if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), lock); err == nil {
			e.t.Errorf("visit %d: pass unlocked door %d, want refused", id, lock)
		}
		for _, secret := range e.linkSecrets(id) {
			err := e.client.Unlock(e.ctx, secret, lock)
			var ce *connector.ControllerError
			switch {
			case err == nil:
				e.t.Errorf("visit %d: a link of the visit unlocked door %d at the controller, want refused", id, lock)
			case errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests:
				e.t.Fatalf("visit %d: the controller rate-limited the check, so it proves nothing: %v", id, err)
			}
		}
	}
}

// hasTimeline reports whether visit id's timeline has an entry containing s.
func (e *env) hasTimeline(id int64, s string) bool {
	e.t.Helper()
	for _, te := range e.timeline(id) {
		if strings.Contains(te.Message, s) {
			return true
		}
	}
	return false
}

// invitedEntry makes an invite's payload name entry id as its entry.
func invitedEntry(id string) mod {
	return func(t testing.TB, doc map[string]any) {
		obj(t, doc, "payload", "relationships")["entry"] = map[string]any{"data": map[string]any{"type": "entries", "id": id}}
	}
}

// TestVisitIdentityJoinsEntryAndInvite: whichever event carries the invite
// relationship, events of one entry and its invite land on the visit they
// share, and an event that ends access ends it for that visit.
func TestVisitIdentityJoinsEntryAndInvite(t *testing.T) {
	t.Run("walk-in sign-in, sign-out with invite", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		in := e.process(walkIn(t, start))
		if in.Status != connector.StatusActive {
			t.Fatalf("sign-in: got %s, want active", in.Status)
		}
		e.clock.Advance(10 * time.Minute)
		out := e.process(signOut(t, start, e.clock.Now(), invitedBy("555")))
		if out.VisitID != in.VisitID {
			t.Errorf("sign-out went to visit %d, want the sign-in's visit %d", out.VisitID, in.VisitID)
		}
		e.checkNoAccess(in.VisitID, connector.StatusRevoked)
	})
	t.Run("walk-in sign-in, then its invite removed", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		in := e.process(walkIn(t, start))
		e.clock.Advance(time.Minute)
		rm := e.process(fixture(t, fixtureInvite, eventName("invite_removed"), arrival(start), jobID("job-rm"), invitedEntry(signInEntryID)))
		if rm.VisitID != in.VisitID {
			t.Errorf("invite_removed went to visit %d, want the entry's visit %d", rm.VisitID, in.VisitID)
		}
		e.checkNoAccess(in.VisitID, connector.StatusRevoked)
	})
	t.Run("invite and bare walk-in, then sign-out naming both", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		inv := e.process(inviteEvent(t, "invite_created", start.Add(10*time.Minute), "job-inv"))
		in := e.process(walkIn(t, start))
		if inv.VisitID == in.VisitID {
			t.Fatalf("nothing links the bare sign-in to the invite yet, but they share visit %d", in.VisitID)
		}
		e.clock.Advance(20 * time.Minute)
		out := e.process(signOut(t, start, e.clock.Now(), invitedBy(inviteID)))
		for _, id := range []int64{inv.VisitID, in.VisitID} {
			e.sync(id)
			e.checkNoAccess(id, connector.StatusRevoked)
		}
		if out.VisitID != inv.VisitID && out.VisitID != in.VisitID {
			t.Errorf("sign-out went to visit %d, want one of %d, %d", out.VisitID, inv.VisitID, in.VisitID)
		}
	})
}

// TestSignOutWithoutUsableTime: a sign-out whose time is missing, null or
// before the sign-in ends access at the time it was received, and says so.
func TestSignOutWithoutUsableTime(t *testing.T) {
	tests := []struct {
		name string
		out  mod
	}{
		{"absent", func(t testing.TB, doc map[string]any) { delete(obj(t, doc, "payload", "attributes"), "signed-out-at") }},
		{"null", attr("signed-out-at", nil)},
		{"before the sign-in", entryTime("signed-out-at", start.Add(-time.Hour))},
		// A local time sent without its zone reads as UTC and lands hours
		// ahead for a location east of UTC: the visitor left at receipt.
		{"later than it arrived", entryTime("signed-out-at", start.Add(2*time.Hour))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			in := e.process(walkIn(t, start))
			e.clock.Advance(10 * time.Minute)
			received := e.clock.Now()
			out := e.process(fixture(t, fixtureSignOut, payloadID(signInEntryID), entryTime("signed-in-at", start), tt.out))
			if out.VisitID != in.VisitID {
				t.Fatalf("sign-out went to visit %d, want %d", out.VisitID, in.VisitID)
			}
			e.checkNoAccess(in.VisitID, connector.StatusRevoked)
			if v := e.visit(in.VisitID); v.ValidUntil == nil || !v.ValidUntil.Equal(received) {
				t.Errorf("valid until: got %v, want the receive time %v", v.ValidUntil, received)
			}
			if !e.hasTimeline(in.VisitID, "using the time it was received") {
				t.Errorf("timeline does not say the receive time was used: %+v", e.timeline(in.VisitID))
			}
		})
	}
}

// TestApprovalHolds: only an approved (or, without a review, an absent)
// approval status opens doors.
func TestApprovalHolds(t *testing.T) {
	review := func(t *testing.T) []byte {
		return walkIn(t, start, eventName("entry_blacklist_review"), jobID("job-review"), attr("approval-status", map[string]any{"status": "pending"}))
	}
	tests := []struct {
		name   string
		events func(t *testing.T) [][]byte
		want   connector.Status
	}{
		{"sign-in pending", func(t *testing.T) [][]byte {
			return [][]byte{walkIn(t, start, attr("approval-status", map[string]any{"status": "pending"}))}
		}, connector.StatusHeld},
		{"sign-in rejected", func(t *testing.T) [][]byte {
			return [][]byte{walkIn(t, start, attr("approval-status", map[string]any{"status": "rejected"}))}
		}, connector.StatusHeld},
		{"review, then sign-in without approval status", func(t *testing.T) [][]byte {
			return [][]byte{review(t), walkIn(t, start, attr("approval-status", nil))}
		}, connector.StatusHeld},
		{"sign-in without approval status, then review", func(t *testing.T) [][]byte {
			return [][]byte{walkIn(t, start, attr("approval-status", nil)), review(t)}
		}, connector.StatusHeld},
		{"review, then approved sign-in", func(t *testing.T) [][]byte {
			return [][]byte{review(t), walkIn(t, start)}
		}, connector.StatusActive},
		{"pending sign-in, then approved", func(t *testing.T) [][]byte {
			return [][]byte{walkIn(t, start, attr("approval-status", map[string]any{"status": "pending"}), jobID("job-pending")), walkIn(t, start)}
		}, connector.StatusActive},
		{"sign-in without approval status", func(t *testing.T) [][]byte {
			return [][]byte{walkIn(t, start, attr("approval-status", nil))}
		}, connector.StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			var id int64
			for _, body := range tt.events(t) {
				id = e.process(body).VisitID
			}
			v := e.visit(id)
			if v.Status != tt.want {
				t.Fatalf("got status %s (%s), want %s", v.Status, v.Reason, tt.want)
			}
			if tt.want == connector.StatusHeld {
				if v.Reason == "" {
					t.Errorf("held without a reason")
				}
				e.checkNoAccess(id, connector.StatusHeld)
			}
		})
	}
}

// TestSubSecondTimes: times are compared at whole seconds, so a sign-in
// and sign-out within one second revoke (never fail), and a walk-in is
// active at once.
func TestSubSecondTimes(t *testing.T) {
	frac := func(key string, at time.Time) mod { return attr(key, at.UTC().Format(time.RFC3339Nano)) }
	t.Run("walk-in", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		e.clock.Advance(500 * time.Millisecond)
		res := e.process(walkIn(t, start, frac("signed-in-at", start.Add(300*time.Millisecond))))
		if res.Status != connector.StatusActive {
			t.Errorf("walk-in signed in 200ms ago: got %s, want active", res.Status)
		}
	})
	for _, ms := range []int{0, 100, 300, 600, 900} {
		e := newEnv(t, envOptions{})
		e.clock.Advance(time.Duration(ms) * time.Millisecond)
		in, out := start.Add(100*time.Millisecond), start.Add(700*time.Millisecond)
		id := e.process(walkIn(t, start, frac("signed-in-at", in))).VisitID
		e.process(signOut(t, in, out, frac("signed-in-at", in), frac("signed-out-at", out)))
		v := e.visit(id)
		if v.Status != connector.StatusRevoked {
			t.Errorf("clock at +%dms: got status %s (%s), want revoked", ms, v.Status, v.Reason)
		}
		e.checkNoAccess(id, connector.StatusRevoked)
	}
}

// TestEmptyNameKeepsKnownName: an event without a name, or with an empty
// one, never replaces the visitor's known name.
func TestEmptyNameKeepsKnownName(t *testing.T) {
	tests := []struct {
		name string
		mod  mod
	}{
		{"absent", func(t testing.TB, doc map[string]any) { delete(obj(t, doc, "payload", "attributes"), "full-name") }},
		{"null", attr("full-name", nil)},
		{"empty", attr("full-name", "")},
		{"blank", attr("full-name", "   ")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			id := e.process(walkIn(t, start)).VisitID
			e.clock.Advance(time.Minute)
			e.process(signOut(t, start, e.clock.Now(), tt.mod))
			if got := e.visit(id).Name; got != "Jane Visitor" {
				t.Errorf("name after a sign-out without one: got %q, want %q", got, "Jane Visitor")
			}
		})
	}
}

// lockIDs lists the controller's locks.
func (e *env) lockIDs() []int64 {
	e.t.Helper()
	var locks []struct {
		ID int64 `json:"id"`
	}
	e.admin("GET", "/locks?limit=100", nil, 200, &locks)
	ids := make([]int64, 0, len(locks))
	for _, l := range locks {
		ids = append(ids, l.ID)
	}
	return ids
}

// linkSecrets returns the secrets of every link visit id ever had.
func (e *env) linkSecrets(id int64) []string {
	e.t.Helper()
	ls, err := e.store.Links(e.ctx, id)
	if err != nil {
		e.t.Fatalf("links of visit %d: %v", id, err)
	}
	var out []string
	for _, l := range ls {
		if len(l.SecretEnc) == 0 {
			continue
		}
		s, err := connector.OpenLinkSecret(e.box, l)
		if err != nil {
			e.t.Fatalf("open secret of visit %d group %d: %v", id, l.GroupID, err)
		}
		out = append(out, s)
	}
	return out
}

// An invite and a sign-out naming that invite, arriving at once while the
// entry's own visit exists: whichever commits first, the invite's visit
// learns of the sign-out (on PostgreSQL, where row locks cannot cover a
// row still to be inserted, identity locks make them take turns).
func TestConcurrentInviteAndSignOutNamingIt(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := 0; i < 20; i++ {
		entry, invite := fmt.Sprint(7100000+i), fmt.Sprint(8100000+i)
		e.ingest(e.svc, walkIn(t, start, payloadID(entry), jobID("in-"+entry)))
		inviteBody := fixture(t, fixtureInvite, payloadID(invite), arrival(start.Add(time.Hour)), jobID("inv-"+invite))
		outBody := signOut(t, start, start.Add(time.Minute), payloadID(entry), invitedBy(invite), jobID("out-"+entry))
		var wg sync.WaitGroup
		for _, b := range [][]byte{inviteBody, outBody} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := webhooks.Parse(b)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.svc.Ingest(e.ctx, connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		vs, _, err := e.store.List(e.ctx, connector.VisitFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range vs {
			if v.SourceID != "invite:"+invite && v.InviteID != invite && v.SourceID != "entry:"+entry {
				continue
			}
			n++
			if v.Facts.SignedOutAt.IsZero() {
				t.Errorf("round %d: visit %d (%s) of the invite or its entry never learned of the sign-out naming it", i, v.ID, v.SourceID)
			}
		}
		if n == 0 {
			t.Fatalf("round %d: no visit of invite %s or entry %s", i, invite, entry)
		}
	}
}
