package web

import (
	"github.com/latchkey/latchkey/accounts"
)

// The front desk's words for the accounts it signs people in with; the
// accounts package owns them.
type (
	// Accounts is the accounts store.
	Accounts = accounts.Store
	// Role is what a front-desk user may do.
	Role = accounts.Role
	// User is a person who signs in to the front desk.
	User = accounts.User
	// Session is a signed-in browser.
	Session = accounts.Session
	// APIKey is a key for /api/v1.
	APIKey = accounts.APIKey
)

// The roles of users.
const (
	RoleAdmin     = accounts.RoleAdmin
	RoleFrontDesk = accounts.RoleFrontDesk
)

// Limits of accounts.
const (
	MinPasswordLength = accounts.MinPasswordLength
	SessionTTL        = accounts.SessionTTL
)

// randomToken returns n random bytes, URL-safe base64 encoded.
func randomToken(n int) string { return accounts.RandomToken(n) }
