package lockctl

import (
	"net/http"
	"time"
)

// User is a person with an email address who may sign in (through a login
// minted on their behalf) and hold role assignments. AccessEnabled false
// suspends all of their access at once.
type User struct {
	ID                  int64      `gorm:"primaryKey"`
	Email               string     `gorm:"size:320;not null;uniqueIndex:idx_lockctl_users_email"`
	Name                string     `gorm:"size:200;not null;default:''"`
	Image               string     `gorm:"size:1000;not null;default:''"`
	AccessEnabled       bool       `gorm:"not null"`
	PasswordFlowEnabled bool       `gorm:"not null"`
	SendEmails          bool       `gorm:"not null"`
	Confirmed           bool       `gorm:"not null"`
	Metadata            string     `gorm:"type:text;not null;default:'{}'"`
	Notes               string     `gorm:"size:1000;not null;default:''"`
	LastAccessedAt      *time.Time ``
	CreatedAt           time.Time  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt           time.Time  `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (User) TableName() string { return "lockctl_users" }

// Guest is a person without a login: a name and optional contact details.
// A guest opens doors with an access key.
type Guest struct {
	ID        int64     `gorm:"primaryKey"`
	Name      string    `gorm:"size:200;not null"`
	Email     string    `gorm:"size:320;not null;default:''"`
	Phone     string    `gorm:"column:phone_number;size:16;not null;default:''"`
	CreatedAt time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (Guest) TableName() string { return "lockctl_guests" }

// AccessKey is a guest's credential: its secret opens the guest's doors as
// a link (while LinkEnabled), its QR token at a reader (while
// QRCodeEnabled). Only SHA-256 hashes of both are stored.
type AccessKey struct {
	ID            int64      `gorm:"primaryKey"`
	GuestID       int64      `gorm:"not null;index"`
	LinkEnabled   bool       `gorm:"not null"`
	QRCodeEnabled bool       `gorm:"column:qr_code_enabled;not null"`
	SecretHash    string     `gorm:"size:64;not null;uniqueIndex:idx_lockctl_access_keys_secret"`
	QRTokenHash   string     `gorm:"column:qr_token_hash;size:64;not null;uniqueIndex:idx_lockctl_access_keys_qr"`
	LastUsedAt    *time.Time ``
	CreatedAt     time.Time  `gorm:"not null;autoCreateTime:false"`
}

// TableName implements gorm's tabler.
func (AccessKey) TableName() string { return "lockctl_access_keys" }

// Kinds of assignee and of what a role applies to.
const (
	assigneeUser              = "User"
	assigneeGuest             = "Guest"
	appliesOrganization       = "Organization"
	appliesPlace              = "Place"
	appliesGroup              = "Group"
	organizationID      int64 = 1 // lockctl serves one organization
)

// RoleAssignment gives a person (User or Guest) a role on the organization,
// a place or a group. Only group assignments carry a validity window
// [ValidFrom, ValidUntil). A person holds at most one role per place, group
// or organization (the unique index).
type RoleAssignment struct {
	ID            int64      `gorm:"primaryKey"`
	RoleID        string     `gorm:"size:64;not null"`
	AppliesToType string     `gorm:"size:16;not null;uniqueIndex:idx_lockctl_role_assignments_one,priority:3;index:idx_lockctl_role_assignments_target,priority:1"`
	AppliesToID   int64      `gorm:"not null;uniqueIndex:idx_lockctl_role_assignments_one,priority:4;index:idx_lockctl_role_assignments_target,priority:2"`
	AssigneeType  string     `gorm:"size:16;not null;uniqueIndex:idx_lockctl_role_assignments_one,priority:1"`
	AssigneeID    int64      `gorm:"not null;uniqueIndex:idx_lockctl_role_assignments_one,priority:2"`
	ValidFrom     *time.Time ``
	ValidUntil    *time.Time ``
	Notify        bool       `gorm:"not null"`
	CreatedByID   *int64     ``
	// IdempotencyKey is only set on assignments made before keys were
	// IdempotencyRecords; it is read, never written.
	IdempotencyKey *string   `gorm:"size:128;uniqueIndex:idx_lockctl_role_assignments_idempotency"`
	CreatedAt      time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt      time.Time `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (RoleAssignment) TableName() string { return "lockctl_role_assignments" }

// person is who a person credential (a user's login, a guest's access key)
// speaks for.
type person struct {
	Type  string // assigneeUser or assigneeGuest
	ID    int64
	Name  string
	Email string
	// Enabled is false when the person's access is suspended (a user's
	// access_enabled, a guest access key's link or QR switch).
	Enabled bool
}

// PersonUnlock is what CheckPersonUnlock needs about one role assignment
// of the person that could open the lock: the assignment, and for a group
// assignment whether the group has app access (login_enabled).
type PersonUnlock struct {
	Assignment   RoleAssignment
	LoginEnabled bool
}

// CheckPersonUnlock decides whether a person may open lock at now through
// one of candidates, their role assignments on the groups that open the
// lock, on its place or on the organization. viaLogin is true for a user's
// login (app access), false for a guest's access key. It returns the
// assignment that authorises the unlock, or the denial. Access fails
// closed: a disabled person, a role without unlock permission, a window
// that has not begun or has ended ([ValidFrom, ValidUntil), to the
// instant), or app access off on the group all refuse. CheckPersonUnlock
// is a pure function.
func CheckPersonUnlock(p person, candidates []PersonUnlock, lock Lock, viaLogin bool, now time.Time) (*RoleAssignment, *Denial) {
	if !p.Enabled {
		return nil, &Denial{http.StatusForbidden, CodeAccessDisabled, "Access is disabled"}
	}
	var best *Denial
	for _, cand := range candidates {
		ra := cand.Assignment
		role, ok := roleByID(ra.RoleID)
		var d *Denial
		switch {
		case !ok || !role.Permissions["locks_unlock"]:
			continue
		case ra.ValidFrom != nil && now.Before(*ra.ValidFrom):
			d = &Denial{http.StatusForbidden, CodeNotYetValid, "Access is not yet valid"}
		case ra.ValidUntil != nil && !now.Before(*ra.ValidUntil):
			d = &Denial{http.StatusForbidden, CodeNoLongerValid, "Access is no longer valid"}
		case viaLogin && ra.AppliesToType == appliesGroup && !cand.LoginEnabled:
			d = &Denial{http.StatusForbidden, CodeNoAppAccess, "App access is not enabled for this group"}
		default:
			if d := checkLock(lock); d != nil {
				return nil, d
			}
			return &ra, nil
		}
		if best == nil {
			best = d
		}
	}
	if best == nil {
		best = &Denial{http.StatusNotFound, CodeNotFound, "Lock not found"}
	}
	return nil, best
}

// Kisi's codes for person denials (protocols.md §2.2).
const (
	CodeAccessDisabled = "fcd8ff" // the person's access is suspended
	CodeNoAppAccess    = "f298df" // access rights don't include this credential
)
