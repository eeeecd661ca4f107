package connector_test

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/schema"
	"github.com/latchkey/latchkey/internal/testenv"
)

// historyRows is how many past visits the plan tests store: on PostgreSQL
// enough that, with statistics, it would rather read a small index than
// scan; SQLite plans without statistics, so a few show its plan.
func historyRows() int {
	if testenv.Postgres() {
		return 3000
	}
	return 50
}

// storeHistory writes n past visits as history accumulates: each expired
// and synced, with a removed link, a removed guest and role, and a failed
// report to Envoy; then a few live visits that owe work. On PostgreSQL the
// tables are analyzed, as autovacuum would.
func storeHistory(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	old := start.Add(-30 * 24 * time.Hour)
	vs := make([]connector.Visit, 0, n+10)
	for i := range n {
		from := old.Add(time.Duration(i) * time.Minute)
		until := from.Add(4 * time.Hour)
		vs = append(vs, connector.Visit{InstallID: "1", LocationID: locationID, SourceID: fmt.Sprintf("entry:h%d", i),
			EntryID: fmt.Sprintf("h%d", i), Email: fmt.Sprintf("h%d@example.com", i), PassHash: fmt.Sprintf("h%d", i),
			Status: connector.StatusExpired, ValidFrom: &from, ValidUntil: &until, Version: 2, SyncedVersion: 2,
			EmailDueKey: "k", EmailedWindow: "k", CreatedAt: from, UpdatedAt: until})
	}
	// Live work: a visit about to open, one open, one unsynced.
	soon, later := start.Add(time.Hour), start.Add(5*time.Hour)
	for i, st := range []connector.Status{connector.StatusScheduled, connector.StatusActive, connector.StatusActive, connector.StatusFailed} {
		v := connector.Visit{InstallID: "1", LocationID: locationID, SourceID: fmt.Sprintf("entry:live%d", i),
			PassHash: fmt.Sprintf("live%d", i), Status: st, ValidFrom: &soon, ValidUntil: &later, Version: 2, SyncedVersion: 2,
			CreatedAt: start, UpdatedAt: start}
		if i == 2 {
			v.SyncedVersion = 1
		}
		vs = append(vs, v)
	}
	if err := db.CreateInBatches(vs, 200).Error; err != nil {
		t.Fatal(err)
	}
	var (
		links  []connector.VisitLink
		people []connector.VisitPerson
		roles  []connector.VisitRole
	)
	for _, v := range vs {
		live := v.Status == connector.StatusScheduled || v.Status == connector.StatusActive
		links = append(links, connector.VisitLink{VisitID: v.ID, GroupID: groupID, LinkID: v.ID, Name: "x",
			ValidFrom: *v.ValidFrom, ValidUntil: *v.ValidUntil, Removed: !live})
		people = append(people, connector.VisitPerson{VisitID: v.ID, Kind: connector.PersonGuest, PersonID: v.ID,
			Created: true, Removed: !live})
		roles = append(roles, connector.VisitRole{VisitID: v.ID, GroupID: groupID, AssignmentID: v.ID, PersonID: 7,
			ValidFrom: *v.ValidFrom, ValidUntil: *v.ValidUntil, Removed: !live})
	}
	for _, rows := range []any{links, people, roles} {
		if err := db.CreateInBatches(rows, 200).Error; err != nil {
			t.Fatal(err)
		}
	}
	// Reports given up are kept a week.
	err := db.Exec(`INSERT INTO envoy_reports (job_id, visit_id, version, state, status, reason, error, created_at, due_at)
		SELECT 'job-' || CAST(id AS TEXT), id, 2, 'failed', 'done', '', 'refused', ?, ? FROM visits`, start, start).Error
	if err != nil {
		t.Fatal(err)
	}
	if testenv.Postgres() {
		if err := db.Exec("ANALYZE").Error; err != nil {
			t.Fatal(err)
		}
	}
}

// planScan is one read of a table in a query plan: the table, the index it
// goes through ("" for none) and whether it looks up a range of that index
// (false: it reads all of it).
type planScan struct {
	table, index string
	bounded      bool
}

var (
	sqliteScan = regexp.MustCompile(`(SCAN|SEARCH) (\w+)(?: AS \w+)?(?: USING (?:COVERING |INTEGER PRIMARY KEY|PRIMARY KEY)?(?:INDEX )?(\w+)?)?`)
	pgScan     = regexp.MustCompile(`(Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan|Bitmap Heap Scan)(?: using (\w+))? on (\w+)`)
)

// planScans reads the table reads out of a plan of either database.
func planScans(plan string) []planScan {
	var out []planScan
	lines := strings.Split(plan, "\n")
	for i, line := range lines {
		if m := sqliteScan.FindStringSubmatch(line); m != nil && !strings.Contains(line, "SUBQUERY") {
			out = append(out, planScan{table: m[2], index: m[3], bounded: m[1] == "SEARCH"})
			continue
		}
		m := pgScan.FindStringSubmatch(line)
		if m == nil || m[1] == "Bitmap Heap Scan" {
			continue
		}
		s := planScan{table: m[3], index: m[2]}
		if m[1] == "Bitmap Index Scan" { // "Bitmap Index Scan on <index>"
			s.index, s.table = m[3], ""
		}
		// The node's conditions follow it, up to the next node.
		for _, detail := range lines[i+1:] {
			if strings.Contains(detail, "->") {
				break
			}
			if strings.Contains(detail, "Index Cond:") {
				s.bounded = true
			}
		}
		out = append(out, s)
	}
	return out
}

// historyTables are the tables that grow with history.
var historyTables = []string{"visits", "visit_links", "visit_people", "visit_roles", "envoy_reports"}

// TestSweepsReadOnlyWorkOwed: every periodic sweep's query, and each
// lookup that must not grow with history, reads a partial index of the
// rows that owe work (or a range of an index), never every row of a table
// that grows with history: with thousands of past visits stored, no plan
// scans one of those tables or walks a whole index that holds them all.
// On SQLite always; on PostgreSQL, after ANALYZE, with TEST_DATABASE_URL.
func TestSweepsReadOnlyWorkOwed(t *testing.T) {
	e := newEnv(t, envOptions{})
	storeHistory(t, e.db, historyRows())
	plans, err := e.store.SweepPlans(start)
	if err != nil {
		t.Fatal(err)
	}
	// The index each query is meant to read.
	want := map[string][]string{
		"due":                    {"visits_live", "visits_starting"},
		"unsynced":               {"visits_owed"},
		"emailsOwed":             {"visits_owed"},
		"syncLag":                {"visits_owed"},
		"reportsOwed":            {"envoy_reports_state"},
		"activeLinks":            {"visits_live"},
		"peopleRows":             {"visit_people_drift"},
		"creatingElsewhere":      {"visit_links_creating"},
		"guestCreatingElsewhere": {"visit_people_creating"},
		"memberWindows":          {"visit_roles_person"},
		"failedVisits":           {"visits_attention"},
		"openCountsLive":         {"visits_live"},
		"openCountsAttention":    {"visits_attention"},
		"emailFailedVisits":      {"visits_live"},
		"openVisitsOf":           {"visits_of_install"},
	}
	partial := connector.PartialIndexes()
	for name, indexes := range want {
		plan, ok := plans[name]
		if !ok {
			t.Errorf("no plan for %s", name)
			continue
		}
		scans := planScans(plan)
		// SQLite takes the index it is meant to; PostgreSQL may take
		// another partial one by its statistics.
		for _, ix := range indexes {
			if !slices.ContainsFunc(scans, func(s planScan) bool {
				return s.index == ix || (testenv.Postgres() && slices.Contains(partial, s.index))
			}) {
				t.Errorf("%s does not read %s:\n%s", name, ix, plan)
			}
		}
		for _, s := range scans {
			if s.bounded || slices.Contains(partial, s.index) {
				continue
			}
			if s.table == "" || slices.Contains(historyTables, s.table) {
				t.Errorf("%s reads all of %s %s:\n%s", name, s.table, s.index, plan)
			}
		}
	}
	for name := range plans {
		if _, ok := want[name]; !ok {
			t.Errorf("plan %s is not checked", name)
		}
	}
}

// TestPlanScansFindsFullReads: the plan reader above tells a read of a
// whole table or index from a range lookup, in the plans both databases
// print, so the test above can fail.
func TestPlanScansFindsFullReads(t *testing.T) {
	tests := []struct {
		plan string
		want []planScan
	}{
		{"2 0 0 SCAN visits\n", []planScan{{table: "visits"}}},
		{"3 0 0 SCAN visits USING INDEX visits_live\n", []planScan{{table: "visits", index: "visits_live"}}},
		{"2 0 0 SEARCH visits USING INDEX visits_owed (updated_at<?)\n", []planScan{{table: "visits", index: "visits_owed", bounded: true}}},
		{"4 0 0 SEARCH visit_links USING INDEX visit_links_group (visit_id=?)\n", []planScan{{table: "visit_links", index: "visit_links_group", bounded: true}}},
		{"2 0 0 SCAN visits USING INTEGER PRIMARY KEY\n", []planScan{{table: "visits"}}},
		{"Seq Scan on visits  (cost=0.00..1.00 rows=1 width=8)\n  Filter: (x)\n", []planScan{{table: "visits"}}},
		{"Limit\n  ->  Index Scan using visits_pkey on visits  (cost=1)\n        Filter: (status)\n", []planScan{{table: "visits", index: "visits_pkey"}}},
		{"Bitmap Heap Scan on visits\n  ->  BitmapOr\n        ->  Bitmap Index Scan on visits_live\n              Index Cond: (valid_until <= now())\n",
			[]planScan{{index: "visits_live", bounded: true}}},
	}
	for _, tt := range tests {
		if got := planScans(tt.plan); !slices.Equal(got, tt.want) {
			t.Errorf("planScans(%q) = %+v, want %+v", tt.plan, got, tt.want)
		}
	}
}

// TestMigrationDropsIndexesOfEarlierReleases: on a database an earlier
// release made, with the indexes it had, the migration drops those no
// query needs and makes the partial ones; run again, it changes nothing.
func TestMigrationDropsIndexesOfEarlierReleases(t *testing.T) {
	e := newEnv(t, envOptions{})
	// What an earlier release's schema had on visits.
	for _, ddl := range []string{
		"CREATE UNIQUE INDEX visits_source ON visits (install_id, location_id, source_id)",
		"CREATE INDEX idx_visits_source_id ON visits (source_id)",
		"CREATE INDEX visits_status_until ON visits (status, valid_until)",
		"CREATE INDEX idx_visits_synced_version ON visits (synced_version)",
		"CREATE INDEX visits_entry ON visits (install_id, location_id, entry_id)",
		"CREATE INDEX visits_invite ON visits (install_id, location_id, invite_id)",
		"DROP INDEX visits_live",
	} {
		if err := e.db.Exec(ddl).Error; err != nil {
			t.Fatalf("%s: %v", ddl, err)
		}
	}
	e.process(walkIn(t, start)) // data in place while the schema changes
	for range 2 {
		if err := schema.Migrate(e.ctx, e.db, testenv.Postgres()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	for table, names := range connector.DroppedIndexes() {
		for _, name := range names {
			if e.db.Migrator().HasIndex(table, name) {
				t.Errorf("index %s on %s is still there", name, table)
			}
		}
	}
	for _, name := range append(connector.PartialIndexes(), "visits_by_source", "visits_by_entry", "visits_by_invite") {
		found := false
		for _, table := range historyTables {
			found = found || e.db.Migrator().HasIndex(table, name)
		}
		if !found {
			t.Errorf("index %s is missing", name)
		}
	}
	// The unique key still refuses a second visit of one source.
	var v connector.Visit
	if err := e.db.Take(&v).Error; err != nil {
		t.Fatal(err)
	}
	dup := connector.Visit{InstallID: v.InstallID, LocationID: v.LocationID, SourceID: v.SourceID, PassHash: "other"}
	if err := e.db.Create(&dup).Error; err == nil {
		t.Error("a second visit of one source was stored")
	}
}

// TestVisitCounterReadsHistoryRarely: the gauge's counts are exact for the
// open statuses on every call and, for the final ones, as of the last full
// count, made again once finalEvery has passed.
func TestVisitCounterReadsHistoryRarely(t *testing.T) {
	e := newEnv(t, envOptions{})
	storeHistory(t, e.db, 20)
	count := e.store.VisitCounter(time.Hour)
	want := map[string]int64{"expired": 20, "scheduled": 1, "active": 2, "failed": 1}
	got, err := count(e.ctx)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("first count: %v %v, want %v", got, err, want)
	}
	// One active visit ends, one failed one is held for the desk.
	for _, ch := range []struct{ from, to connector.Status }{{connector.StatusActive, connector.StatusExpired}, {connector.StatusFailed, connector.StatusHeld}} {
		var id int64
		e.db.Model(&connector.Visit{}).Where("status = ?", ch.from).Limit(1).Pluck("id", &id)
		if err := e.db.Model(&connector.Visit{}).Where("id = ?", id).Update("status", ch.to).Error; err != nil {
			t.Fatal(err)
		}
	}
	got, err = count(e.ctx)
	want = map[string]int64{"expired": 20, "scheduled": 1, "active": 1, "held": 1}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("within finalEvery: %v %v, want %v (open statuses now, final ones as first counted)", got, err, want)
	}
	got, err = e.store.VisitCounter(0)(e.ctx)
	want["expired"] = 21
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("a full count: %v %v, want %v", got, err, want)
	}
}
