package lockctl

import (
	"context"
	"database/sql"
	"errors"
	"time"

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
// It serves the shared reads that name no link (see accessReads), so it
// goes straight to the connection pool, past gorm's statement building
// and reflection.
func (s *store) generation(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.ConnPool.QueryRowContext(ctx, "SELECT n FROM lockctl_access_generation WHERE id = 1").Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		err = gorm.ErrRecordNotFound
	}
	return n, translate(err, "read access generation", "access generation")
}

// accessRead is one decision's share of a read of the access data: the
// access generation and, when the decision named a link's secret, that
// link (Found false: no link has it).
type accessRead struct {
	Gen   int64
	Link  GroupLink
	Found bool
}

// accessReads reads the access generation and the links whose secrets
// hash to hashes ("" asks for the generation alone), in one statement, so
// each link is read in the state the generation names. Every hash asked is
// in the answer. A missing generation row is an error, as in generation.
func (s *store) accessReads(ctx context.Context, hashes []string) (map[string]accessRead, error) {
	wanted := make([]string, 0, len(hashes))
	for _, h := range hashes {
		if h != "" {
			wanted = append(wanted, h)
		}
	}
	out := make(map[string]accessRead, len(hashes))
	if len(wanted) == 0 {
		gen, err := s.generation(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hashes {
			out[h] = accessRead{Gen: gen}
		}
		return out, nil
	}
	// Every unlock reads this, so its rows are scanned by hand, past gorm's
	// reflection. The generation's row is joined to the links, so it comes
	// back (with no link) when none of the secrets is known.
	rows, err := s.db.WithContext(ctx).Raw(`SELECT g.n, l.id, l.group_id, l.name, l.email, l.phone,
		l.link_enabled, l.quick_response_code_type, l.valid_from, l.valid_until, l.secret_hash,
		l.quick_response_code_token_hash, l.last_used_at, l.created_by_id, l.created_at, l.updated_at
		FROM lockctl_access_generation g
		LEFT JOIN lockctl_group_links l ON l.secret_hash IN ? WHERE g.id = 1`, wanted).Rows()
	if err != nil {
		return nil, translate(err, "read access generation and links", "group link")
	}
	defer rows.Close()
	var (
		gen  int64
		read bool // the generation's row came back
	)
	for rows.Next() {
		var (
			id, groupID                *int64
			name, email, phone, qrType *string
			secretHash, qrTokenHash    *string
			enabled                    *bool
			createdAt, updatedAt       *time.Time
			l                          GroupLink
		)
		if err := rows.Scan(&gen, &id, &groupID, &name, &email, &phone, &enabled, &qrType, &l.ValidFrom, &l.ValidUntil,
			&secretHash, &qrTokenHash, &l.LastUsedAt, &l.CreatedByID, &createdAt, &updatedAt); err != nil {
			return nil, translate(err, "read access generation and links", "group link")
		}
		read = true
		if id == nil {
			continue // no link has any of the secrets
		}
		l.ID, l.GroupID, l.Name, l.Email, l.Phone = *id, deref(groupID), deref(name), deref(email), deref(phone)
		l.LinkEnabled, l.QRType, l.SecretHash, l.QRTokenHash = deref(enabled), deref(qrType), deref(secretHash), deref(qrTokenHash)
		l.CreatedAt, l.UpdatedAt = deref(createdAt), deref(updatedAt)
		out[l.SecretHash] = accessRead{Gen: gen, Link: l, Found: true}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "read access generation and links", "group link")
	}
	if !read {
		return nil, translate(gorm.ErrRecordNotFound, "read access generation", "access generation")
	}
	for _, h := range hashes {
		if _, ok := out[h]; !ok {
			out[h] = accessRead{Gen: gen}
		}
	}
	return out, nil
}

// deref is *p, or the zero value when p is nil (a column of a row that a
// left join did not find).
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
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
