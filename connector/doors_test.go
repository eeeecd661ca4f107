package connector_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/mappings"
)

// doorCalls counts the door listings and link-holder calls made of the
// controller it wraps.
type doorCalls struct {
	*kisi.Client
	groupDoors, linkLocks, unlocks atomic.Int64
}

func (c *doorCalls) GroupDoors(ctx context.Context) (map[int64][]connector.Lock, error) {
	c.groupDoors.Add(1)
	return c.Client.GroupDoors(ctx)
}

func (c *doorCalls) LinkLocks(ctx context.Context, secret string) ([]connector.Lock, error) {
	c.linkLocks.Add(1)
	return c.Client.LinkLocks(ctx, secret)
}

func (c *doorCalls) Unlock(ctx context.Context, secret string, lockID int64) error {
	c.unlocks.Add(1)
	return c.Client.Unlock(ctx, secret, lockID)
}

// The guest emails of many visits name their doors from one listing of
// the install's group doors, with no call per link.
func TestEmailsShareOneDoorListing(t *testing.T) {
	e := newEnv(t, envOptions{})
	calls := &doorCalls{Client: e.client}
	e.svc = e.service(calls)
	for i, id := range []string{"901", "902", "903"} {
		e.process(walkIn(t, start, payloadID(id), jobID("doors-"+id), attr("email", "guest"+id+"@example.com"), attr("full-name", "Guest "+id)))
		if got := len(e.mails()); got != i+1 {
			t.Fatalf("after visitor %d: %d emails", i+1, got)
		}
	}
	if g, l := calls.groupDoors.Load(), calls.linkLocks.Load(); g != 1 || l != 0 {
		t.Errorf("3 emails made %d group-door listings and %d link-holder listings; want 1 and 0", g, l)
	}
	for _, m := range e.mails() {
		for _, door := range []string{"Front door", "Lobby", "Meeting room"} {
			if !strings.Contains(m.Text, door) {
				t.Errorf("email to %s does not name %q:\n%s", m.To, door, m.Text)
			}
		}
		if strings.Contains(m.Text, "Workshop") {
			t.Errorf("email to %s names the Workshop, which the Visitors group does not open", m.To)
		}
	}
}

// A pass with links on two groups finds the link of a door's group from
// the install's group doors: one unlock call, and no link holder asked for
// its doors (TestPassUnlockGoesStraightToTheDoorsLink checks no link is
// refused first).
func TestPassUnlockAsksNoLinkHolder(t *testing.T) {
	e := newEnv(t, envOptions{mapping: func(m *mappings.Mapping) { m.GroupIDs = []int64{groupID, 2} }})
	calls := &doorCalls{Client: e.client}
	e.svc = e.service(calls)
	id := e.process(walkIn(t, start)).VisitID
	if n := len(e.liveLinks(id)); n != 2 {
		t.Fatalf("%d live links, want 2", n)
	}
	byGroup, err := e.client.GroupDoors(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var workshop int64
	for _, lk := range byGroup[2] {
		if lk.Name == "Workshop" {
			workshop = lk.ID
		}
	}
	if workshop == 0 {
		t.Fatalf("group 2 has no Workshop: %+v", byGroup[2])
	}
	refused := e.countEvents("lock.unlock")
	calls.linkLocks.Store(0)
	e.clock.Advance(time.Minute)
	v := e.visit(id)
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), workshop); err != nil {
		t.Fatalf("unlock the Workshop: %v", err)
	}
	if u, l := calls.unlocks.Load(), calls.linkLocks.Load(); u != 1 || l != 0 {
		t.Errorf("one unlock made %d unlock calls and %d link-holder listings; want 1 and 0", u, l)
	}
	if n := e.countEvents("lock.unlock") - refused; n != 1 {
		t.Errorf("%d unlock events on the controller, want 1 (no refused try first)", n)
	}
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), 999999); err == nil {
		t.Error("unlock of a door no group of the pass holds: no error")
	}
}
