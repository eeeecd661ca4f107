package lockctl

import (
	"time"
)

// GroupLink is an access link: whoever holds its secret may open the locks
// of its group while the link is enabled and inside its validity window.
// Only SHA-256 hashes of the secret and the QR token are stored.
type GroupLink struct {
	ID          int64      `gorm:"primaryKey"`
	GroupID     int64      `gorm:"not null;index"`
	Name        string     `gorm:"size:500;not null"`
	Email       string     `gorm:"size:320;not null;default:''"`
	Phone       string     `gorm:"size:32;not null;default:''"`
	LinkEnabled bool       `gorm:"not null"`
	QRType      string     `gorm:"column:quick_response_code_type;size:16;not null;default:''"`
	ValidFrom   *time.Time ``
	ValidUntil  *time.Time ``
	SecretHash  string     `gorm:"size:64;not null;uniqueIndex:idx_lockctl_group_links_secret"`
	QRTokenHash string     `gorm:"column:quick_response_code_token_hash;size:64;not null;default:''"`
	LastUsedAt  *time.Time ``
	// CreatedByID is the Login that created the link; nil for the bootstrap
	// admin key.
	CreatedByID *int64    ``
	CreatedAt   time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt   time.Time `gorm:"not null;autoUpdateTime:false"`
}

// TableName implements gorm's tabler.
func (GroupLink) TableName() string { return "lockctl_group_links" }

// Kisi's error codes for link and unlock denials (protocols.md §2.2). The
// codes are informational; clients decide on the HTTP status.
const (
	CodeLinkInvalid      = "f29aef" // unknown, disabled or deleted link
	CodeNotYetValid      = "f358de" // now is before valid_from
	CodeNoLongerValid    = "f35ade" // now is at or after valid_until
	CodeLockOffline      = "fac001" // the lock's controller is not reachable
	CodeLockedDown       = "fad001" // the door is locked down
	CodeDriverFailed     = "ff420a" // the driver could not move the relay
	CodeNotAuthorized    = "afc516" // missing or unknown KISI-LOGIN key
	CodeAccessDenied     = "afc496" // authenticated, but not allowed to do this
	CodeNotFound         = "f40400" // no such resource (lockctl's own code)
	CodeRateLimited      = "34ffaa" // not allowed at this moment: too many requests
	CodeBadRequest       = "f40000" // malformed request (lockctl's own code)
	CodeTooLarge         = "f41300" // request body over the limit (lockctl's own code)
	CodeUnexpected       = "ffffff" // unexpected error
	codeValidationFailed = "f42200" // stored on events for refused writes
)

// Denial is why an unlock was refused: the HTTP status, Kisi's code and a
// message safe to show to the link holder.
type Denial struct {
	Status  int
	Code    string
	Message string
}

// CheckUnlock decides whether link may open lock at now. inGroup reports
// whether the lock belongs to the link's group. It returns nil when the unlock
// is allowed. The window is [ValidFrom, ValidUntil): a link valid until T
// opens nothing at T. CheckUnlock is a pure function.
func CheckUnlock(link GroupLink, lock Lock, inGroup bool, now time.Time) *Denial {
	switch {
	case !link.LinkEnabled:
		return &Denial{403, CodeLinkInvalid, "Link is disabled"}
	case link.ValidFrom != nil && now.Before(*link.ValidFrom):
		return &Denial{403, CodeNotYetValid, "Access is not yet valid"}
	case link.ValidUntil != nil && !now.Before(*link.ValidUntil):
		return &Denial{403, CodeNoLongerValid, "Access is no longer valid"}
	case !inGroup:
		return &Denial{404, CodeNotFound, "Lock not found"}
	}
	return checkLock(lock)
}

// checkLock refuses locks that cannot be opened by anyone right now.
func checkLock(lock Lock) *Denial {
	switch {
	case !lock.Online:
		return &Denial{403, CodeLockOffline, "Lock is offline"}
	case lock.LockedDown:
		return &Denial{403, CodeLockedDown, "Lock is locked down"}
	}
	return nil
}
