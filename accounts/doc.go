// Package accounts owns the people who sign in to the front desk: users and
// their roles, sessions, API keys for /api/v1, and password hashing
// (argon2id). Its store is the only code that touches their tables.
//
// It imports the root package only; it knows nothing of HTTP.
package accounts
