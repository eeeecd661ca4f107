package accounts

import (
	"strings"
	"time"

	latchkey "github.com/latchkey/latchkey"
)

// Role is what a front-desk user may do.
type Role string

// The roles of users.
const (
	// RoleAdmin may do everything, including API keys, users and the
	// queue dashboard.
	RoleAdmin Role = "admin"
	// RoleFrontDesk maps flows and watches and acts on today's visitors.
	RoleFrontDesk Role = "frontdesk"
)

// ParseRole returns the role named s, or an Invalid error.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.TrimSpace(strings.ToLower(s))); r {
	case RoleAdmin, RoleFrontDesk:
		return r, nil
	}
	return "", latchkey.Errorf(latchkey.Invalid, "role must be %q or %q", RoleAdmin, RoleFrontDesk)
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// SessionTTL is how long a session lasts after login.
const SessionTTL = 12 * time.Hour

// Errors of the accounts store.
var (
	ErrUserNotFound   = &latchkey.Error{Kind: latchkey.NotFound, Msg: "user not found"}
	ErrUserExists     = &latchkey.Error{Kind: latchkey.Conflict, Msg: "a user with this email already exists"}
	ErrBadCredentials = &latchkey.Error{Kind: latchkey.Unauthorized, Msg: "wrong email or password"}
	ErrNoSession      = &latchkey.Error{Kind: latchkey.Unauthorized, Msg: "not signed in"}
	ErrSetupDone      = &latchkey.Error{Kind: latchkey.Conflict, Msg: "the first admin already exists"}
	ErrAPIKeyNotFound = &latchkey.Error{Kind: latchkey.NotFound, Msg: "API key not found"}
)

// User is a person who signs in to the front desk.
type User struct {
	ID           int64     `gorm:"primaryKey"`
	Email        string    `gorm:"size:320;not null;uniqueIndex"`
	Role         Role      `gorm:"size:16;not null"`
	PasswordHash string    `gorm:"size:200;not null"`
	CreatedAt    time.Time `gorm:"not null"`
}

// TableName is the users table.
func (User) TableName() string { return "ui_users" }

// Session is a signed-in browser. Only the SHA-256 of its token is stored;
// CSRFToken is the synchronizer token its forms must carry.
type Session struct {
	ID        int64     `gorm:"primaryKey"`
	TokenHash string    `gorm:"size:64;not null;uniqueIndex"`
	UserID    int64     `gorm:"not null;index"`
	CSRFToken string    `gorm:"size:64;not null"`
	ExpiresAt time.Time `gorm:"not null;index"`
	CreatedAt time.Time `gorm:"not null"`
}

// TableName is the sessions table.
func (Session) TableName() string { return "ui_sessions" }

// APIKey is a named key for /api/v1. Only the SHA-256 of the key is stored;
// Prefix (its first characters) tells keys apart in lists.
type APIKey struct {
	ID         int64  `gorm:"primaryKey"`
	Name       string `gorm:"size:100;not null"`
	Prefix     string `gorm:"size:16;not null"`
	KeyHash    string `gorm:"size:64;not null;uniqueIndex"`
	CreatedBy  string `gorm:"size:320;not null"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// TableName is the API keys table.
func (APIKey) TableName() string { return "api_keys" }
