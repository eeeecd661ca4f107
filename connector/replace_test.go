package connector_test

import (
	"context"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
)

// callLog wraps a Kisi client, records the order of link creates and
// deletes, and fails creates while failCreates is set.
type callLog struct {
	*kisi.Client
	mu          sync.Mutex
	calls       []string
	failCreates bool
}

func (c *callLog) CreateLink(ctx context.Context, spec connector.LinkSpec) (connector.Link, error) {
	c.mu.Lock()
	c.calls = append(c.calls, "create")
	fail := c.failCreates
	c.mu.Unlock()
	if fail {
		return connector.Link{}, latchkey.Errorf(latchkey.Invalid, "controller refused the create")
	}
	return c.Client.CreateLink(ctx, spec)
}

func (c *callLog) DeleteLink(ctx context.Context, id int64) error {
	c.mu.Lock()
	c.calls = append(c.calls, "delete")
	c.mu.Unlock()
	return c.Client.DeleteLink(ctx, id)
}

// On a controller that cannot update links in place, a window change makes
// the new link before it deletes the old one: a create that fails leaves
// the guest the access they had, not none.
func TestReplacementMakesBeforeBreak(t *testing.T) {
	e := newEnv(t, envOptions{realKisi: true})
	cl := &callLog{Client: e.client}
	e.svc = e.service(cl)
	arrive := start.Add(2 * time.Hour)
	id := e.process(inviteEvent(t, "invite_created", arrive, "job-created")).VisitID
	old := e.onlyLink(id)
	from, until := arrive.Add(-30*time.Minute), arrive.Add(240*time.Minute)

	cl.mu.Lock()
	cl.failCreates, cl.calls = true, nil
	cl.mu.Unlock()
	arrive2 := start.Add(3 * time.Hour)
	e.ingest(e.svc, inviteEvent(t, "invite_updated", arrive2, "job-updated"))
	if _, err := e.svc.SyncVisit(e.ctx, id); err == nil {
		t.Fatal("sync with a failing create: no error")
	}
	// The old link still opens the doors, and is still the one recorded.
	e.checkControllerLinks([]ctlLink{{ID: old.LinkID, GroupID: groupID, Name: linkName, ValidFrom: from, ValidUntil: until, Enabled: true}})
	if got := e.onlyLink(id); got.LinkID != old.LinkID {
		t.Errorf("recorded link after a failed replacement: %d, want the old %d", got.LinkID, old.LinkID)
	}

	cl.mu.Lock()
	cl.failCreates, cl.calls = false, nil
	cl.mu.Unlock()
	e.sync(id)
	cur := e.onlyLink(id)
	if cur.LinkID == old.LinkID {
		t.Fatalf("link after the replacement: still the old %d", cur.LinkID)
	}
	from2, until2 := arrive2.Add(-30*time.Minute), arrive2.Add(240*time.Minute)
	e.checkControllerLinks([]ctlLink{{ID: cur.LinkID, GroupID: groupID, Name: linkName, ValidFrom: from2, ValidUntil: until2, Enabled: true}})
	cl.mu.Lock()
	calls := cl.calls
	cl.mu.Unlock()
	if len(calls) != 2 || calls[0] != "create" || calls[1] != "delete" {
		t.Errorf("controller calls of the replacement: %v, want [create delete]", calls)
	}
}
