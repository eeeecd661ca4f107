package connector_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/webhooks"
)

// TestLegacyDedupeKeyIsADuplicate: a retry whose delivery an older release
// stored under its unversioned key is a duplicate, not a second event.
func TestLegacyDedupeKeyIsADuplicate(t *testing.T) {
	e := newEnv(t, envOptions{})
	d, err := webhooks.Parse(walkIn(t, start, jobID("")))
	if err != nil {
		t.Fatal(err)
	}
	if d.LegacyKey == "" || d.LegacyKey == d.DedupeKey {
		t.Fatalf("keys %q and %q: want a legacy key of its own", d.DedupeKey, d.LegacyKey)
	}
	in := connector.Inbound{DedupeKey: d.LegacyKey, EventName: d.Kind, Known: d.Known, Event: d.Event}
	first, err := e.svc.Ingest(e.ctx, in) // as the release before stored it
	if err != nil || first.Duplicate {
		t.Fatalf("first delivery: %+v, %v", first, err)
	}
	in.DedupeKey, in.LegacyKey = d.DedupeKey, d.LegacyKey
	again, err := e.svc.Ingest(e.ctx, in)
	if err != nil || !again.Duplicate || again.VisitID != first.VisitID {
		t.Errorf("retry under the versioned key: %+v, %v; want a duplicate of visit %d", again, err, first.VisitID)
	}
	in.DedupeKey, in.LegacyKey = d.DedupeKey+"-other", d.LegacyKey+"-other"
	if other, err := e.svc.Ingest(e.ctx, in); err != nil || other.Duplicate {
		t.Errorf("a delivery with keys of its own: %+v, %v; want it applied", other, err)
	}
}

// TestSearchEscapesAndFoldsCase: the visitor search matches names and
// emails case-insensitively, and takes % and _ literally, alike on both
// databases.
func TestSearchEscapesAndFoldsCase(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i, name := range []string{"Ann_Lee", "AnnXLee", "100% Visitor", "Bob"} {
		e.ingest(e.svc, walkIn(t, start, payloadID(fmt.Sprint(900+i)), jobID(fmt.Sprint("search-", i)),
			attr("full-name", name), attr("email", fmt.Sprintf("guest%d@Example.COM", i))))
	}
	tests := []struct {
		q    string
		want int64
	}{
		{"ann_", 1}, {"ANN", 2}, {"100%", 1}, {"%", 1}, {"_", 1}, {"example.com", 4}, {"bob", 1}, {`\`, 0},
	}
	for _, tt := range tests {
		_, n, err := e.store.List(e.ctx, connector.VisitFilter{Query: tt.q})
		if err != nil || n != tt.want {
			t.Errorf("search %q: %d visits (err %v), want %d", tt.q, n, err, tt.want)
		}
	}
}

// TestSyncLagCountsBeyondAThousand: the operations panel's count of visits
// waiting for their sync is the true count, not a page of them.
func TestSyncLagCountsBeyondAThousand(t *testing.T) {
	e := newEnv(t, envOptions{})
	const n = 1005
	old := start.Add(-time.Hour)
	vs := make([]connector.Visit, n)
	for i := range vs {
		vs[i] = connector.Visit{InstallID: "i", LocationID: locationID, SourceID: fmt.Sprintf("entry:lag-%d", i),
			PassHash: fmt.Sprintf("lag-%d", i), Version: 2, SyncedVersion: 1, Status: connector.StatusActive,
			CreatedAt: old, UpdatedAt: old.Add(time.Duration(i) * time.Second)}
	}
	if err := e.db.CreateInBatches(vs, 200).Error; err != nil {
		t.Fatal(err)
	}
	got, since, err := e.store.SyncLag(e.ctx, start)
	if err != nil || got != n || !since.Equal(old) {
		t.Errorf("sync lag: %d visits since %v (err %v), want %d since %v", got, since, err, n, old)
	}
}

// TestPassUnlockGoesStraightToTheDoorsLink: a pass with a link per group
// unlocks a door of the second group with that group's link alone: no
// other link is tried and refused (a failed event in the controller's
// log, and a spent rate-limit token).
func TestPassUnlockGoesStraightToTheDoorsLink(t *testing.T) {
	e := newEnv(t, envOptions{mapping: func(m *mappings.Mapping) { m.GroupIDs = []int64{groupID, 2} }})
	id := e.process(walkIn(t, start)).VisitID
	v := e.visit(id)
	p, err := e.svc.PassView(e.ctx, e.svc.PassToken(v))
	if err != nil {
		t.Fatal(err)
	}
	door := int64(0)
	for _, d := range p.Doors {
		if d.GroupID == 2 {
			door = d.LockID
		}
	}
	if door == 0 || len(e.liveLinks(id)) != 2 {
		t.Fatalf("doors %+v, %d live links: want a door of group 2 and two links", p.Doors, len(e.liveLinks(id)))
	}
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), door); err != nil {
		t.Fatalf("unlock door %d: %v", door, err)
	}
	for _, ev := range e.events("lock.unlock") {
		if !ev.Success {
			t.Errorf("a refused unlock was sent: %+v", ev)
		}
	}
	if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), 9999); latchkey.KindOf(err) != latchkey.NotFound {
		t.Errorf("unlock of a door the pass does not open: %v, want NotFound", err)
	}
}

// TestEventLookupUsesItsIndexes: the lookup an event makes for its visit
// is an index search on each identity it carries, not a read of every
// visit at the location (which SQLite, with no statistics, chose when the
// install and location stood outside the alternatives, and PostgreSQL's
// generic plan chose, before its first ANALYZE, while they led the entry
// and invite indexes).
func TestEventLookupUsesItsIndexes(t *testing.T) {
	e := newEnv(t, envOptions{})
	if e.db.Dialector.Name() == "postgres" {
		// Visits at one location, and no statistics yet.
		vs := make([]connector.Visit, 5000)
		for i := range vs {
			vs[i] = connector.Visit{InstallID: "1", LocationID: "loc", SourceID: fmt.Sprintf("entry:%d", i), EntryID: fmt.Sprint(i),
				InviteID: fmt.Sprint(i), PassHash: fmt.Sprintf("hash-%d", i), Version: 1, CreatedAt: start, UpdatedAt: start}
		}
		if err := e.db.CreateInBatches(vs, 500).Error; err != nil {
			t.Fatal(err)
		}
		plan, err := e.store.ExplainGenericVisitsFor("1", "loc", "entry:e1", "e1", "i1")
		if err != nil {
			t.Fatal(err)
		}
		conds := 0
		for _, line := range strings.Split(plan, "\n") {
			if _, cond, ok := strings.Cut(line, "Index Cond: "); ok {
				conds++
				if !strings.Contains(cond, "source_id") && !strings.Contains(cond, "entry_id") && !strings.Contains(cond, "invite_id") {
					t.Errorf("the generic plan reads an index by install and location alone (%s):\n%s", cond, plan)
				}
			}
		}
		if conds == 0 || strings.Contains(plan, "Seq Scan") {
			t.Errorf("the generic plan does not search an index for each identity:\n%s", plan)
		}
		return
	}
	plan, err := e.store.ExplainVisitsFor("1", "loc", "entry:e1", "e1", "i1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"visits_by_source (source_id=? AND install_id=? AND location_id=?)",
		"visits_by_entry (entry_id=? AND install_id=? AND location_id=?)", "visits_by_invite (invite_id=? AND install_id=? AND location_id=?)"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "(install_id=? AND location_id=?)\n") || strings.Contains(plan, "SCAN visits") {
		t.Errorf("plan reads the location's visits:\n%s", plan)
	}
}
