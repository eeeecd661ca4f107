package lockctl

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/testenv"
)

// TestEventSweepReadsItsIndex: the sweep finds the events past retention
// through the created_at index, not by reading every event kept (which
// SQLite did while they were ordered by id). On PostgreSQL, with
// TEST_DATABASE_URL, after ANALYZE.
func TestEventSweepReadsItsIndex(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	evs := make([]Event, 3000)
	for i := range evs {
		evs[i] = Event{UUID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Type: "lock.unlock", Success: true,
			CreatedAt: now.Add(-time.Duration(i) * time.Minute)}
	}
	db := e.c.store.db
	if err := db.CreateInBatches(evs, 200).Error; err != nil {
		t.Fatal(err)
	}
	explain := "EXPLAIN QUERY PLAN "
	if testenv.Postgres() {
		explain = "EXPLAIN "
		if err := db.Exec("ANALYZE lockctl_events").Error; err != nil {
			t.Fatal(err)
		}
	}
	sql := db.ToSQL(func(tx *gorm.DB) *gorm.DB {
		var ids []int64
		return (&store{db: tx}).oldEvents(now.Add(-defaultEventRetention), 1000).Find(&ids)
	})
	var lines []string
	rows, err := db.Raw(explain + sql).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "idx_lockctl_events_created_at") {
		t.Errorf("the sweep does not read the created_at index:\n%s", plan)
	}
	if strings.Contains(plan, "SCAN lockctl_events") || strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "lockctl_events_pkey") {
		t.Errorf("the sweep reads every event:\n%s", plan)
	}
}
