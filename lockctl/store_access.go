package lockctl

import (
	"context"
	"database/sql"
	"errors"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// accessGeneration is the one-row counter that every write able to change
// a cached unlock decision bumps in its own transaction (see accessCache).
type accessGeneration struct {
	ID int64 `gorm:"primaryKey;autoIncrement:false"`
	N  int64 `gorm:"not null;default:0"`
}

// TableName implements gorm's tabler.
func (accessGeneration) TableName() string { return "lockctl_access_generation" }

// migrateGeneration creates the generation's row if it is missing.
func migrateGeneration(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&accessGeneration{ID: 1}).Error
}

// generation returns the access generation. A missing row is an error, so
// that no decision is taken from a cache that could not be checked.
// It is read on every unlock, so it goes straight to the connection pool,
// past gorm's statement building and reflection.
func (s *store) generation(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.ConnPool.QueryRowContext(ctx, "SELECT n FROM lockctl_access_generation WHERE id = 1").Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		err = gorm.ErrRecordNotFound
	}
	return n, translate(err, "read access generation", "access generation")
}

// bumpGeneration moves the access generation on, inside tx: every cached
// unlock decision of every process is dropped once tx commits.
func bumpGeneration(tx *gorm.DB) error {
	err := tx.Exec("UPDATE lockctl_access_generation SET n = n + 1 WHERE id = 1").Error
	return translate(err, "bump access generation", "access generation")
}

// groupLockIDs returns the ids of the locks group groupID opens.
func (s *store) groupLockIDs(ctx context.Context, groupID int64) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&GroupLock{}).Where("group_id = ?", groupID).Pluck("lock_id", &ids).Error
	return ids, translate(err, "list group locks", "group lock")
}
