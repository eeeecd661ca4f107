package connector_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
)

// unlockingDoor returns a door visit id's pass opens now.
func (e *env) unlockingDoor(id int64) int64 {
	e.t.Helper()
	v := e.visit(id)
	for _, lock := range e.lockIDs() {
		if e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), lock) == nil {
			return lock
		}
	}
	e.t.Fatalf("visit %d: the pass opens no door", id)
	return 0
}

// TestPassRefusedTheMomentAccessEnds: a sign-out or a desk revoke refuses
// the pass's very next unlock, before any sync has taken the link off the
// controller (which would still open the door for it).
func TestPassRefusedTheMomentAccessEnds(t *testing.T) {
	for _, how := range []string{"sign-out", "desk revoke"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			in := start.Add(time.Minute)
			e.clock.Set(in)
			id := e.process(walkIn(t, in)).VisitID
			door := e.unlockingDoor(id)
			e.clock.Set(in.Add(time.Minute))
			switch how {
			case "sign-out":
				e.ingest(e.svc, signOut(t, in, in.Add(time.Minute))) // no sync
			default:
				if _, err := e.svc.Revoke(e.ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			v := e.visit(id)
			if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), door); !errors.Is(err, connector.ErrPassEnded) {
				t.Errorf("unlock after %s: %v, want ErrPassEnded", how, err)
			}
			secrets := e.linkSecrets(id)
			if len(secrets) == 0 || e.client.Unlock(e.ctx, secrets[0], door) != nil {
				t.Fatalf("the link should still open the door until the sync: the check above proved nothing")
			}
		})
	}
}

// TestInProcessUnlockRefusals: through an in-process controller (Local)
// the pass opens its door, and a refusal keeps the controller's reason:
// one second past the window the door stays shut, as "ended".
func TestInProcessUnlockRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	local, err := kisi.New(e.srv.URL, kisi.Options{APIKey: adminKey, SupportsUpdate: true, RatePerSecond: math.Inf(1), MaxRetries: -1, Local: e.lc})
	if err != nil {
		t.Fatal(err)
	}
	svc := e.service(local)
	in := start.Add(time.Minute)
	e.clock.Set(in)
	id := e.process(walkIn(t, in)).VisitID
	door := e.unlockingDoor(id)
	v := e.visit(id)
	if err := svc.PassUnlock(e.ctx, svc.PassToken(v), door); err != nil {
		t.Fatalf("in-process unlock: %v", err)
	}
	e.clock.Set(v.ValidUntil.Add(time.Second))
	err = svc.PassUnlock(e.ctx, svc.PassToken(v), door)
	var ce *connector.ControllerError
	if !errors.As(err, &ce) || ce.Refusal != connector.RefusedEnded {
		t.Errorf("unlock a second after valid_until: %v, want refused as ended", err)
	}
	for _, want := range []string{fmt.Sprintf("door %d unlocked", door)} {
		d, derr := svc.Detail(e.ctx, id)
		if derr != nil {
			t.Fatal(derr)
		}
		found := false
		for _, te := range d.Timeline {
			found = found || te.Message == want
		}
		if !found {
			t.Errorf("timeline lacks %q", want)
		}
	}
}

// TestPassBeforeItsAccessIsMade: a guest who tries the door after signing
// in but before the sync has made their access is told it is being set up
// (worth trying again in a moment), not that the pass does not open the
// door; once synced, the same door opens.
func TestPassBeforeItsAccessIsMade(t *testing.T) {
	e := newEnv(t, envOptions{})
	in := start.Add(time.Minute)
	e.clock.Set(in)
	id := e.ingest(e.svc, walkIn(t, in)).VisitID // no sync yet
	v := e.visit(id)
	door := e.lockIDs()[0]
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), door); !errors.Is(err, connector.ErrPassSettingUp) {
		t.Fatalf("unlock before the sync: %v, want ErrPassSettingUp", err)
	}
	e.sync(id)
	if got := e.unlockingDoor(id); got == 0 {
		t.Fatal("no door after the sync")
	}
}
