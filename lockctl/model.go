package lockctl

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Place is a site with doors, in one IANA time zone.
type Place struct {
	ID          int64     `gorm:"primaryKey"`
	Name        string    `gorm:"size:200;not null;uniqueIndex:idx_lockctl_places_name"`
	Description string    `gorm:"size:1000;not null;default:''"`
	Address     string    `gorm:"size:500;not null;default:''"`
	Latitude    *float64  ``
	Longitude   *float64  ``
	TimeZone    string    `gorm:"size:64;not null"`
	CreatedAt   time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt   time.Time `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (Place) TableName() string { return "lockctl_places" }

// Lock is one door at a place. Online and LockedDown gate every unlock;
// Unlocked mirrors what the driver last reported.
type Lock struct {
	ID              int64      `gorm:"primaryKey"`
	PlaceID         int64      `gorm:"not null;uniqueIndex:idx_lockctl_locks_place_name"`
	Name            string     `gorm:"size:200;not null;uniqueIndex:idx_lockctl_locks_place_name"`
	Description     string     `gorm:"size:1000;not null;default:''"`
	Online          bool       `gorm:"not null"`
	LockedDown      bool       `gorm:"not null"`
	LockedDownSince *time.Time ``
	Unlocked        bool       `gorm:"not null"`
	UnlockedUntil   *time.Time ``
	CreatedAt       time.Time  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt       time.Time  `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (Lock) TableName() string { return "lockctl_locks" }

// Group is a place-scoped set of locks. A group link opens its locks.
type Group struct {
	ID           int64     `gorm:"primaryKey"`
	PlaceID      int64     `gorm:"not null;uniqueIndex:idx_lockctl_groups_place_name"`
	Name         string    `gorm:"size:200;not null;uniqueIndex:idx_lockctl_groups_place_name"`
	Description  string    `gorm:"size:1000;not null;default:''"`
	LoginEnabled bool      `gorm:"not null"`
	CreatedAt    time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt    time.Time `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (Group) TableName() string { return "lockctl_groups" }

// GroupLock says that a group opens a lock.
type GroupLock struct {
	ID        int64     `gorm:"primaryKey"`
	GroupID   int64     `gorm:"not null;uniqueIndex:idx_lockctl_group_locks_pair"`
	LockID    int64     `gorm:"not null;uniqueIndex:idx_lockctl_group_locks_pair;index"`
	CreatedAt time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (GroupLock) TableName() string { return "lockctl_group_locks" }

// Login is an API key created through POST /logins. Only the SHA-256 hash of
// its secret is kept. MintedBy is mintHash of the bootstrap key it was
// minted under (directly or through another login): the login works only
// while that is still the configured bootstrap key.
type Login struct {
	ID          int64      `gorm:"primaryKey"`
	Name        string     `gorm:"size:100;not null;default:''"`
	MintedBy    string     `gorm:"size:64;not null;default:'';index"`
	Email       string     `gorm:"size:320;not null;default:''"`
	Type        string     `gorm:"size:32;not null;default:'device'"`
	DeviceBrand string     `gorm:"size:100;not null;default:''"`
	DeviceModel string     `gorm:"size:100;not null;default:''"`
	OSName      string     `gorm:"column:os_name;size:100;not null;default:''"`
	Expire      bool       `gorm:"not null"`
	SecretHash  string     `gorm:"size:64;not null;uniqueIndex:idx_lockctl_logins_secret"`
	LastUsedAt  *time.Time ``
	// UserID is the User this login signs in, for a login created on a
	// user's behalf (login.email); nil for an administrator's API key.
	UserID    *int64    `gorm:"index"`
	CreatedAt time.Time `gorm:"not null;autoCreateTime:false"`
}

// TableName implements gorm's tabler.
func (Login) TableName() string { return "lockctl_logins" }

// Migrate creates or extends lockctl's tables. It only adds tables, columns
// and indexes; it never drops anything.
func Migrate(ctx context.Context, db *gorm.DB) error {
	err := db.WithContext(ctx).AutoMigrate(
		&Place{}, &Lock{}, &Group{}, &GroupLock{}, &GroupLink{}, &Login{}, &Event{}, &EventSet{}, &IdempotencyRecord{},
		&User{}, &Guest{}, &AccessKey{}, &RoleAssignment{}, &accessGeneration{},
	)
	if err != nil {
		return fmt.Errorf("migrate lockctl: %w", err)
	}
	if err := migrateGeneration(ctx, db); err != nil {
		return fmt.Errorf("migrate lockctl: %w", err)
	}
	return nil
}
