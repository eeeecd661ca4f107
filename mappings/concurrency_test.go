package mappings

import (
	"context"
	"fmt"
	"sync"
	"testing"

	latchkey "github.com/latchkey/latchkey"
)

// TestConcurrentUpdateAndDeleteLeaveItDeleted: a mapping deleted while it
// is being updated stays deleted, an update that comes second finds nothing
// to update, and Remove returns what it deleted: the web handlers re-decide
// the visits of that mapping's flow.
func TestConcurrentUpdateAndDeleteLeaveItDeleted(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := range 15 {
		m := valid()
		m.FlowID = fmt.Sprint(900000 + i)
		m, err := s.Create(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var deleted Mapping
		var before, after [3]Mapping
		var delErr error
		var errs [3]error
		wg.Go(func() { deleted, delErr = s.Remove(ctx, m.ID) })
		for j := range 3 {
			wg.Go(func() {
				u := m
				u.FlowID = fmt.Sprintf("%d-%d", 900000+i, j)
				before[j], after[j], errs[j] = s.Update(ctx, u)
			})
		}
		wg.Wait()
		if delErr != nil {
			t.Fatalf("mapping %d: delete: %v", m.ID, delErr)
		}
		// The last successful update stored the flow no other one replaced.
		last := m.FlowID
		replaced := map[string]bool{}
		for j, err := range errs {
			switch {
			case err == nil:
				replaced[before[j].FlowID] = true
			case latchkey.KindOf(err) != latchkey.NotFound:
				t.Fatalf("mapping %d: update: %v", m.ID, err)
			}
		}
		for j, err := range errs {
			if err == nil && !replaced[after[j].FlowID] {
				last = after[j].FlowID
			}
		}
		if deleted.FlowID != last {
			t.Errorf("mapping %d: Remove returned flow %s, but deleted what the last update stored (flow %s)", m.ID, deleted.FlowID, last)
		}
		if got, err := s.Get(ctx, m.ID); latchkey.KindOf(err) != latchkey.NotFound {
			t.Errorf("mapping %d: deleted, then found again (%+v, %v): an update brought it back", m.ID, got, err)
		}
	}
}

// TestConcurrentUpdatesReportWhatTheyReplaced: of two updates of one
// mapping at once, one replaces the original and the other what the first
// stored. The web handlers re-decide the visits of the flow each update
// moved the mapping away from; a stale "before" would leave that flow's
// visits with access from a mapping that no longer exists.
func TestConcurrentUpdatesReportWhatTheyReplaced(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := range 15 {
		m := valid()
		m.FlowID = fmt.Sprint(910000 + i)
		m, err := s.Create(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var before, after [2]Mapping
		var errs [2]error
		for j := range 2 {
			wg.Go(func() {
				u := m
				u.FlowID = fmt.Sprintf("%d-%d", 910000+i, j)
				before[j], after[j], errs[j] = s.Update(ctx, u)
			})
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("mapping %d: updates: %v, %v", m.ID, errs[0], errs[1])
		}
		first, second := 0, 1
		if before[1].FlowID == m.FlowID {
			first, second = 1, 0
		}
		if before[first].FlowID != m.FlowID || before[second].FlowID != after[first].FlowID {
			t.Errorf("mapping %d (flow %s): one update replaced flow %s, the other flow %s; want %s and what the first stored (%s)",
				m.ID, m.FlowID, before[first].FlowID, before[second].FlowID, m.FlowID, after[first].FlowID)
		}
		got, err := s.Get(ctx, m.ID)
		if err != nil || got.FlowID != after[second].FlowID {
			t.Errorf("mapping %d: stored flow %s (%v), want what the second update stored (%s)", m.ID, got.FlowID, err, after[second].FlowID)
		}
	}
}
