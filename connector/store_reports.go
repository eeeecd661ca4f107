package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// States of a report owed to Envoy.
const (
	// reportWaiting: the job was answered 202; its visit's sync has not
	// settled yet.
	reportWaiting = "waiting"
	// reportDue: the outcome is known and the report is to be sent.
	reportDue = "due"
	// reportFailed: it could not be sent and was given up (kept a week,
	// for the operations panel).
	reportFailed = "failed"
)

// reportRow is a report owed to Envoy on job JobID, answered 202 for visit
// VisitID at Version. It is written in the transaction of what it reports
// (the delivery, then the sync that settles it), and deleted once sent.
type reportRow struct {
	ID        int64  `gorm:"primaryKey"`
	JobID     string `gorm:"size:64;not null;uniqueIndex:envoy_reports_job"`
	VisitID   int64  `gorm:"not null;index:envoy_reports_visit"`
	Version   int64  `gorm:"not null"`
	State     string `gorm:"size:16;not null;index:envoy_reports_state"`
	Status    string `gorm:"size:16;not null"`
	Reason    string `gorm:"size:500;not null"`
	Error     string `gorm:"size:500;not null"`
	CreatedAt time.Time
	DueAt     *time.Time
}

func (reportRow) TableName() string { return "envoy_reports" }

func migrateReports(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).AutoMigrate(&reportRow{})
}

// oweReport records that job jobID is to be reported once visit id's sync
// at version settles. A job already owed is left as it is.
func (s *Store) oweReport(ctx context.Context, jobID string, id, version int64, now time.Time) error {
	r := reportRow{JobID: jobID, VisitID: id, Version: version, State: reportWaiting, CreatedAt: now}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error
	if err != nil {
		return fmt.Errorf("owe report of job for visit %d: %w", id, err)
	}
	return nil
}

// settleReports makes the reports waiting on visit id at version or before
// due with status and reason, and returns their ids.
func (s *Store) settleReports(ctx context.Context, id, version int64, status, reason string, now time.Time) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&reportRow{}).
		Where("visit_id = ? AND state = ? AND version <= ?", id, reportWaiting, version).Limit(100).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return nil, wrapReports(err, id)
	}
	err = s.db.WithContext(ctx).Model(&reportRow{}).Where("id IN ?", ids).
		Updates(map[string]any{"state": reportDue, "status": status, "reason": clipRunes(reason, 500), "due_at": now}).Error
	return ids, wrapReports(err, id)
}

func wrapReports(err error, id int64) error {
	if err != nil {
		return fmt.Errorf("reports of visit %d: %w", id, err)
	}
	return nil
}

// report returns report id; found is false once it was sent.
func (s *Store) report(ctx context.Context, id int64) (reportRow, bool, error) {
	var r reportRow
	err := s.db.WithContext(ctx).Take(&r, "id = ?", id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read report %d: %w", id, err)
	}
	return r, true, nil
}

// deleteReport forgets report id (it was sent, or its visit is gone).
func (s *Store) deleteReport(ctx context.Context, id int64) error {
	if err := s.db.WithContext(ctx).Delete(&reportRow{}, "id = ?", id).Error; err != nil {
		return fmt.Errorf("delete report %d: %w", id, err)
	}
	return nil
}

// giveUpReport marks due report id failed with reason, and reports whether
// it did.
func (s *Store) giveUpReport(ctx context.Context, id int64, reason string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&reportRow{}).Where("id = ? AND state = ?", id, reportDue).
		Updates(map[string]any{"state": reportFailed, "error": clipRunes(reason, 500)})
	if res.Error != nil {
		return false, fmt.Errorf("give up report %d: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// reportsOwed lists up to limit due reports that became due before cutoff.
func (s *Store) reportsOwed(ctx context.Context, cutoff time.Time, limit int) ([]int64, error) {
	var ids []int64
	if err := reportsOwedQuery(s.db.WithContext(ctx), cutoff, limit).Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("reports owed: %w", err)
	}
	return ids, nil
}

// reportsOwedQuery selects reportsOwed's reports, through the index
// envoy_reports_state.
func reportsOwedQuery(q *gorm.DB, cutoff time.Time, limit int) *gorm.DB {
	return q.Model(&reportRow{}).Where("state = ? AND due_at < ?", reportDue, cutoff).Order("id").Limit(limit)
}

// pruneReports deletes the reports made before before that were given up,
// still wait for a settlement, or are due but were never sent (reporting
// was turned off): a week late, a report tells Envoy nothing.
func (s *Store) pruneReports(ctx context.Context, before time.Time) error {
	err := s.db.WithContext(ctx).Where("state IN ? AND created_at < ?", []string{reportFailed, reportWaiting, reportDue}, before).
		Delete(&reportRow{}).Error
	if err != nil {
		return fmt.Errorf("prune reports: %w", err)
	}
	return nil
}

// ReportsGivenUp counts the reports to Envoy given up since since (they
// are kept a week).
func (s *Store) ReportsGivenUp(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&reportRow{}).Where("state = ? AND created_at >= ?", reportFailed, since).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count failed reports: %w", err)
	}
	return n, nil
}

// clipRunes shortens s to at most n runes.
func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
