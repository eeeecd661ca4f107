package mappings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	latchkey "github.com/latchkey/latchkey"
)

// ErrNotFound is returned for a mapping that does not exist.
var ErrNotFound = &latchkey.Error{Kind: latchkey.NotFound, Msg: "mapping not found"}

// row is the stored form of a Mapping: group ids as JSON text.
type row struct {
	ID              int64   `gorm:"primaryKey"`
	LocationID      string  `gorm:"size:64;not null;uniqueIndex:mappings_location_flow,priority:1"`
	FlowID          string  `gorm:"size:64;not null;uniqueIndex:mappings_location_flow,priority:2"`
	GroupIDs        []int64 `gorm:"serializer:json;type:text;not null"`
	DurationMinutes int     `gorm:"not null"`
	AdvanceMinutes  int     `gorm:"not null"`
	OnlyInvited     bool    `gorm:"not null"`
	RevokeOnSignOut bool    `gorm:"not null"`
	GraceMinutes    int     `gorm:"not null"`
	UntilEndOfDay   bool    `gorm:"not null"`
	Delivery        string  `gorm:"size:16;not null"`
	Credential      string  `gorm:"size:16;not null;default:link"`
	AppAccess       bool    `gorm:"not null"`
	GuestIndicator  string  `gorm:"size:40;not null"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (row) TableName() string { return "flow_mappings" }

func toRow(m Mapping) row {
	return row{ID: m.ID, LocationID: m.LocationID, FlowID: m.FlowID, GroupIDs: m.GroupIDs,
		DurationMinutes: m.DurationMinutes, AdvanceMinutes: m.AdvanceMinutes, OnlyInvited: m.OnlyInvited,
		RevokeOnSignOut: m.RevokeOnSignOut, GraceMinutes: m.GraceMinutes, UntilEndOfDay: m.UntilEndOfDay,
		Delivery: string(m.Delivery), Credential: string(m.Credential), AppAccess: m.AppAccess, GuestIndicator: m.GuestIndicator,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func (r row) toDomain() Mapping {
	if r.Credential == "" {
		r.Credential = string(CredentialLink)
	}
	return Mapping{ID: r.ID, LocationID: r.LocationID, FlowID: r.FlowID, GroupIDs: r.GroupIDs,
		DurationMinutes: r.DurationMinutes, AdvanceMinutes: r.AdvanceMinutes, OnlyInvited: r.OnlyInvited,
		RevokeOnSignOut: r.RevokeOnSignOut, GraceMinutes: r.GraceMinutes, UntilEndOfDay: r.UntilEndOfDay,
		Delivery: Delivery(r.Delivery), Credential: Credential(r.Credential), AppAccess: r.AppAccess, GuestIndicator: r.GuestIndicator,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// Migrate creates or extends the mappings table.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&row{}); err != nil {
		return fmt.Errorf("migrate mappings: %w", err)
	}
	return nil
}

// Store persists mappings. It is safe for concurrent use.
type Store struct {
	db  *gorm.DB
	now func() time.Time
}

// NewStore returns a Store on db.
func NewStore(db *gorm.DB) *Store { return &Store{db: db, now: time.Now} }

func (s *Store) translate(err error, what string) error {
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return latchkey.Errorf(latchkey.Conflict, "a mapping for this location and flow already exists")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Create validates and stores m, returning it with its id. A second mapping
// for the same location and flow is a Conflict.
func (s *Store) Create(ctx context.Context, m Mapping) (Mapping, error) {
	m.Normalize()
	if err := m.Validate(); err != nil {
		return Mapping{}, err
	}
	now := s.now().UTC()
	m.ID, m.CreatedAt, m.UpdatedAt = 0, now, now
	r := toRow(m)
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return Mapping{}, s.translate(err, "create mapping")
	}
	return r.toDomain(), nil
}

// Update validates and replaces mapping m.ID. It returns the mapping as it
// was before and as stored. The row is locked from the read to the write, so
// a concurrent Update or Delete of the mapping comes wholly before or after
// this one: before is what this update replaced, and a mapping deleted
// meanwhile is not written back.
func (s *Store) Update(ctx context.Context, m Mapping) (before, after Mapping, err error) {
	m.Normalize()
	if err := m.Validate(); err != nil {
		return Mapping{}, Mapping{}, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var old row
		if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Take(&old, m.ID).Error; err != nil {
			return s.translate(err, fmt.Sprintf("get mapping %d", m.ID))
		}
		m.CreatedAt, m.UpdatedAt = old.CreatedAt, s.now().UTC()
		r := toRow(m)
		if err := tx.Save(&r).Error; err != nil {
			return s.translate(err, fmt.Sprintf("update mapping %d", m.ID))
		}
		before, after = old.toDomain(), r.toDomain()
		return nil
	})
	if err != nil {
		return Mapping{}, Mapping{}, err
	}
	return before, after, nil
}

// Delete removes mapping id.
func (s *Store) Delete(ctx context.Context, id int64) error {
	_, err := s.Remove(ctx, id)
	return err
}

// Remove deletes mapping id and returns it as it was, read under a row lock
// so that it is what was deleted, not what a concurrent Update replaced.
func (s *Store) Remove(ctx context.Context, id int64) (Mapping, error) {
	var old row
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Take(&old, id).Error; err != nil {
			return s.translate(err, fmt.Sprintf("get mapping %d", id))
		}
		if err := tx.Delete(&row{}, id).Error; err != nil {
			return s.translate(err, fmt.Sprintf("delete mapping %d", id))
		}
		return nil
	})
	if err != nil {
		return Mapping{}, err
	}
	return old.toDomain(), nil
}

// Get returns mapping id.
func (s *Store) Get(ctx context.Context, id int64) (Mapping, error) {
	var r row
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return Mapping{}, s.translate(err, fmt.Sprintf("get mapping %d", id))
	}
	return r.toDomain(), nil
}

// Find returns the mapping for a location and flow.
func (s *Store) Find(ctx context.Context, locationID, flowID string) (Mapping, error) {
	var r row
	err := s.db.WithContext(ctx).Where("location_id = ? AND flow_id = ?", locationID, flowID).Take(&r).Error
	if err != nil {
		return Mapping{}, s.translate(err, "find mapping")
	}
	return r.toDomain(), nil
}

// List returns every mapping, optionally of one location, by location and
// flow.
func (s *Store) List(ctx context.Context, locationID string) ([]Mapping, error) {
	q := s.db.WithContext(ctx).Order("location_id, flow_id")
	if locationID != "" {
		q = q.Where("location_id = ?", locationID)
	}
	var rs []row
	if err := q.Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("list mappings: %w", err)
	}
	out := make([]Mapping, len(rs))
	for i, r := range rs {
		out[i] = r.toDomain()
	}
	return out, nil
}
