package connector

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/secretbox"
	"gorm.io/gorm"
)

// OpenLinkSecret opens the sealed secret of link l, for tests that unlock
// through the controller directly.
func OpenLinkSecret(box *secretbox.Box, l VisitLink) (string, error) {
	b, err := box.Open(l.SecretEnc, linkAD(l.VisitID, l.GroupID))
	return string(b), err
}

// ExplainVisitsFor returns the database's plan for the lookup an event
// makes to find its visits.
func (s *Store) ExplainVisitsFor(install, location, source, entry, invite string) (string, error) {
	var vs []Visit
	return s.explain(func(tx *gorm.DB) *gorm.DB {
		return visitsForQuery(tx, install, location, source, entry, invite).Find(&vs)
	})
}

// IngestTogether stores ins as deliveries that arrived together: one
// batch, then each delivery the batch did not take alone, as Ingest does.
// It reports how many the batch stored.
func (s *Service) IngestTogether(ctx context.Context, ins []Inbound) ([]IngestResult, []error, int) {
	batch := make([]*pendingIngest, len(ins))
	for i, in := range ins {
		batch[i] = &pendingIngest{ctx: ctx, in: in, done: make(chan struct{})}
	}
	s.ingestBatch(batch)
	res, errs, stored := make([]IngestResult, len(ins)), make([]error, len(ins)), 0
	for i, p := range batch {
		if p.alone {
			res[i], errs[i] = s.ingestOne(ctx, p.in)
			continue
		}
		res[i], errs[i] = p.res, p.err
		stored++
	}
	return res, errs, stored
}

// ExplainGenericVisitsFor returns PostgreSQL's generic plan for the
// lookup an event makes to find its visits: the plan of the prepared
// statement once it is cached, made without the values.
func (s *Store) ExplainGenericVisitsFor(install, location, source, entry, invite string) (string, error) {
	var vs []Visit
	stmt := visitsForQuery(s.db.Session(&gorm.Session{DryRun: true}), install, location, source, entry, invite).Find(&vs).Statement
	var plan strings.Builder
	err := s.db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SET LOCAL plan_cache_mode = force_generic_plan").Error; err != nil {
			return err
		}
		if err := tx.Exec("PREPARE lk_visits_for AS " + stmt.SQL.String()).Error; err != nil {
			return err
		}
		defer tx.Exec("DEALLOCATE lk_visits_for")
		// EXPLAIN takes no parameters: the values go in as literals.
		vals := make([]string, len(stmt.Vars))
		for i, v := range stmt.Vars {
			vals[i] = "'" + strings.ReplaceAll(fmt.Sprint(v), "'", "''") + "'"
		}
		var lines []string
		if err := tx.Raw("EXPLAIN EXECUTE lk_visits_for(" + strings.Join(vals, ",") + ")").Scan(&lines).Error; err != nil {
			return err
		}
		plan.WriteString(strings.Join(lines, "\n"))
		return nil
	})
	return plan.String(), err
}

// SweepPlans returns the database's plan for each periodic sweep's query,
// and for each lookup that must read only rows that owe work, by name.
func (s *Store) SweepPlans(now time.Time) (map[string]string, error) {
	var (
		refs  []VisitRef
		ls    []VisitLink
		ps    []VisitPerson
		vs    []Visit
		ids   []int64
		n     int64
		spans []struct{ ValidFrom, ValidUntil time.Time }
	)
	cutoff := now.Add(-30 * time.Second)
	queries := map[string]func(tx *gorm.DB) *gorm.DB{
		"due":         func(tx *gorm.DB) *gorm.DB { return dueQuery(tx, now, 1000).Scan(&refs) },
		"unsynced":    func(tx *gorm.DB) *gorm.DB { return unsyncedQuery(tx, cutoff, 1000).Scan(&refs) },
		"emailsOwed":  func(tx *gorm.DB) *gorm.DB { return emailsOwedQuery(tx, cutoff, 1000).Scan(&refs) },
		"reportsOwed": func(tx *gorm.DB) *gorm.DB { return reportsOwedQuery(tx, cutoff, 1000).Pluck("id", &ids) },
		"activeLinks": func(tx *gorm.DB) *gorm.DB { return activeLinksQuery(tx).Find(&ls) },
		"peopleRows":  func(tx *gorm.DB) *gorm.DB { return peopleRowsQuery(tx).Find(&ps) },
		"creatingElsewhere": func(tx *gorm.DB) *gorm.DB {
			return creatingElsewhereQuery(tx, 1, 1, "link|1|x").Count(&n)
		},
		"guestCreatingElsewhere": func(tx *gorm.DB) *gorm.DB {
			return guestCreatingQuery(tx, 1, "guest|Jane|x|").Count(&n)
		},
		"memberWindows": func(tx *gorm.DB) *gorm.DB { return memberWindowsQuery(tx, 7, 1).Scan(&spans) },
		"syncLag": func(tx *gorm.DB) *gorm.DB {
			return syncLagQuery(tx, now).Count(&n)
		},
		"openCountsLive": func(tx *gorm.DB) *gorm.DB {
			return openCountQuery(tx, openCountQueries[0]).Scan(&refs)
		},
		"openCountsAttention": func(tx *gorm.DB) *gorm.DB {
			return openCountQuery(tx, openCountQueries[1]).Scan(&refs)
		},
		// An install other than the history's, as when one of several
		// is uninstalled.
		"openVisitsOf": func(tx *gorm.DB) *gorm.DB { return openVisitsOfQuery(tx, "2", 500).Pluck("id", &ids) },
		"failedVisits": func(tx *gorm.DB) *gorm.DB {
			return tx.Model(&Visit{}).Where("status = ?", StatusFailed).Where(attentionSQL).Count(&n)
		},
		"emailFailedVisits": func(tx *gorm.DB) *gorm.DB {
			return tx.Model(&Visit{}).Where(emailFailedSQL, KindEmailSent, KindEmailFailed, KindEmailFailed).Find(&vs)
		},
	}
	out := map[string]string{}
	for name, q := range queries {
		plan, err := s.explain(q)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = plan
	}
	return out, nil
}

// explain returns the database's plan for the statement q runs.
func (s *Store) explain(q func(tx *gorm.DB) *gorm.DB) (string, error) {
	sql := s.db.ToSQL(q)
	explain := "EXPLAIN QUERY PLAN "
	if s.db.Dialector.Name() == "postgres" {
		explain = "EXPLAIN "
	}
	rows, err := s.db.Raw(explain + sql).Rows()
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&plan, vals...)
	}
	return plan.String(), rows.Err()
}

// PartialIndexes names the partial indexes the migration makes.
func PartialIndexes() []string {
	var out []string
	for _, ix := range partialIndexes {
		out = append(out, ix.name)
	}
	return out
}

// DroppedIndexes names the indexes of earlier releases the migration
// drops, by table.
func DroppedIndexes() map[string][]string {
	out := map[string][]string{}
	for _, ix := range droppedIndexes {
		out[ix.table] = append(out[ix.table], ix.name)
	}
	return out
}

// PersonCredentialOf returns the credential of visit v's person, if it
// has one, for tests that unlock through the controller directly.
func (s *Service) PersonCredentialOf(ctx context.Context, v Visit) (PersonCredential, bool, error) {
	return s.personCredential(ctx, &v)
}

// FlushTimeline writes the timeline rows queued so far.
func (s *Service) FlushTimeline(ctx context.Context) { s.timeline.flush(ctx) }

// FinishSync marks the leased visit synced with its stored decision, as
// the last statement of a sync does, and reports whether it did.
func (l *Lease) FinishSync(ctx context.Context, now time.Time) (bool, error) {
	v, err := l.Visit(ctx)
	if err != nil {
		return false, err
	}
	finished, _, err := l.finishSync(ctx, &v, decisionOf(&v), "", time.UTC, now, false)
	return finished, err
}
