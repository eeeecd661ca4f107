package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

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

// MigrateAccounts creates the users, sessions and API keys tables.
func MigrateAccounts(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&User{}, &Session{}, &APIKey{}); err != nil {
		return fmt.Errorf("migrate accounts: %w", err)
	}
	return nil
}

// Accounts stores users, their sessions and API keys. It is safe for
// concurrent use.
type Accounts struct {
	db  *gorm.DB
	now func() time.Time
	// dummy is a password hash checked for unknown emails, so a login
	// takes as long whether or not the email exists.
	dummy string
}

// NewAccounts returns the accounts store on db.
func NewAccounts(db *gorm.DB) *Accounts {
	return &Accounts{db: db, now: time.Now, dummy: hashPassword("not a real password")}
}

func (a *Accounts) clock() time.Time { return a.now().UTC().Truncate(time.Second) }

// normalizeEmail trims and lower-cases an email and checks its shape.
func normalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", latchkey.Errorf(latchkey.Invalid, "email is required")
	}
	if addr, err := mail.ParseAddress(s); err != nil || addr.Address != s || len(s) > 320 {
		return "", latchkey.Errorf(latchkey.Invalid, "email %q is not an email address", s)
	}
	return s, nil
}

// CountUsers returns the number of users.
func (a *Accounts) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := a.db.WithContext(ctx).Model(&User{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CreateUser adds a user. It returns an Invalid error for a bad email, role
// or a password shorter than MinPasswordLength, and ErrUserExists.
func (a *Accounts) CreateUser(ctx context.Context, email, password string, role Role) (User, error) {
	return a.createUser(ctx, a.db.WithContext(ctx), email, password, role)
}

// CreateFirstUser adds the first admin; it returns ErrSetupDone once any
// user exists.
func (a *Accounts) CreateFirstUser(ctx context.Context, email, password string) (User, error) {
	var u User
	err := a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Count and insert must not interleave with another setup's. On
		// PostgreSQL the table lock (which conflicts with itself and with
		// inserts) orders them; SQLite's write transactions already run
		// one at a time.
		if tx.Dialector.Name() == "postgres" {
			if err := tx.Exec("LOCK TABLE ui_users IN SHARE ROW EXCLUSIVE MODE").Error; err != nil {
				return fmt.Errorf("lock users: %w", err)
			}
		}
		var n int64
		if err := tx.Model(&User{}).Count(&n).Error; err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if n > 0 {
			return ErrSetupDone
		}
		var err error
		u, err = a.createUser(ctx, tx, email, password, RoleAdmin)
		return err
	})
	return u, err
}

func (a *Accounts) createUser(_ context.Context, db *gorm.DB, email, password string, role Role) (User, error) {
	email, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	if len([]rune(password)) < MinPasswordLength {
		return User{}, latchkey.Errorf(latchkey.Invalid, "password must have at least %d characters", MinPasswordLength)
	}
	if len(password) > 256 {
		return User{}, latchkey.Errorf(latchkey.Invalid, "password is longer than 256 bytes")
	}
	u := User{Email: email, Role: role, PasswordHash: hashPassword(password), CreatedAt: a.clock()}
	if err := db.Create(&u).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return User{}, ErrUserExists
		}
		return User{}, fmt.Errorf("create user %s: %w", email, err)
	}
	return u, nil
}

// SetPassword replaces the password of the user with email and ends their
// sessions.
func (a *Accounts) SetPassword(ctx context.Context, email, password string) error {
	u, err := a.UserByEmail(ctx, email)
	if err != nil {
		return err
	}
	if len([]rune(password)) < MinPasswordLength {
		return latchkey.Errorf(latchkey.Invalid, "password must have at least %d characters", MinPasswordLength)
	}
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&User{}).Where("id = ?", u.ID).Update("password_hash", hashPassword(password)).Error; err != nil {
			return fmt.Errorf("set password of %s: %w", u.Email, err)
		}
		if err := tx.Where("user_id = ?", u.ID).Delete(&Session{}).Error; err != nil {
			return fmt.Errorf("end sessions of %s: %w", u.Email, err)
		}
		return nil
	})
}

// UserByEmail returns the user with email, or ErrUserNotFound.
func (a *Accounts) UserByEmail(ctx context.Context, email string) (User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var u User
	err := a.db.WithContext(ctx).Where("email = ?", email).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return User{}, ErrUserNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", email, err)
	}
	return u, nil
}

// Users lists every user by email.
func (a *Accounts) Users(ctx context.Context) ([]User, error) {
	var us []User
	if err := a.db.WithContext(ctx).Order("email").Find(&us).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// DeleteUser removes user id and their sessions.
func (a *Accounts) DeleteUser(ctx context.Context, id int64) error {
	return a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("user_id = ?", id).Delete(&Session{}).Error; err != nil {
			return fmt.Errorf("end sessions of user %d: %w", id, err)
		}
		res := tx.Delete(&User{}, id)
		if res.Error != nil {
			return fmt.Errorf("delete user %d: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrUserNotFound
		}
		return nil
	})
}

// Authenticate returns the user whose email and password match, or
// ErrBadCredentials. It does the same work whether or not the email exists.
func (a *Accounts) Authenticate(ctx context.Context, email, password string) (User, error) {
	u, err := a.UserByEmail(ctx, email)
	if errors.Is(err, ErrUserNotFound) {
		checkPassword(a.dummy, password)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	if !checkPassword(u.PasswordHash, password) {
		return User{}, ErrBadCredentials
	}
	return u, nil
}

// NewSession starts a session for user u, as read when their password was
// checked, and returns its token (for the cookie) and the session. It
// returns ErrBadCredentials when the user was deleted or their password
// changed since: the user row is locked while the session is stored, so a
// concurrent SetPassword either comes first (and this fails) or ends this
// session too.
func (a *Accounts) NewSession(ctx context.Context, u User) (string, Session, error) {
	tok := randomToken(32)
	now := a.clock()
	s := Session{TokenHash: hashToken(tok), UserID: u.ID, CSRFToken: randomToken(32), ExpiresAt: now.Add(SessionTTL), CreatedAt: now}
	db := a.db.WithContext(ctx)
	// Expired sessions are dropped here, so the table stays small.
	if err := db.Where("expires_at < ?", now).Delete(&Session{}).Error; err != nil {
		return "", Session{}, fmt.Errorf("drop expired sessions: %w", err)
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		var cur User
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthShare}).
			Select("id", "password_hash").Where("id = ?", u.ID).Take(&cur).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrBadCredentials
		}
		if err != nil {
			return fmt.Errorf("user of new session: %w", err)
		}
		if cur.PasswordHash != u.PasswordHash {
			return ErrBadCredentials
		}
		if err := tx.Create(&s).Error; err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", Session{}, err
	}
	return tok, s, nil
}

// SessionByToken returns the unexpired session with token and its user, or
// ErrNoSession.
func (a *Accounts) SessionByToken(ctx context.Context, token string) (Session, User, error) {
	if len(token) < 20 || len(token) > 100 {
		return Session{}, User{}, ErrNoSession
	}
	var s Session
	db := a.db.WithContext(ctx)
	err := db.Where("token_hash = ? AND expires_at > ?", hashToken(token), a.clock()).Take(&s).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, User{}, ErrNoSession
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("session: %w", err)
	}
	var u User
	err = db.Where("id = ?", s.UserID).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Session{}, User{}, ErrNoSession
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("user of session: %w", err)
	}
	return s, u, nil
}

// DeleteSession ends the session with token; an unknown token is no error.
func (a *Accounts) DeleteSession(ctx context.Context, token string) error {
	if err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(token)).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// apiKeyPrefix marks latchkey API keys, so they are easy to spot in leaks.
const apiKeyPrefix = "lk_"

// CreateAPIKey creates a named key and returns it in full (the only time it
// is known) with its stored record.
func (a *Accounts) CreateAPIKey(ctx context.Context, name, createdBy string) (string, APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", APIKey{}, latchkey.Errorf(latchkey.Invalid, "name is required (at most 100 characters)")
	}
	key := apiKeyPrefix + randomToken(24)
	k := APIKey{Name: name, Prefix: key[:len(apiKeyPrefix)+6], KeyHash: hashToken(key), CreatedBy: createdBy, CreatedAt: a.clock()}
	if err := a.db.WithContext(ctx).Create(&k).Error; err != nil {
		return "", APIKey{}, fmt.Errorf("create API key %q: %w", name, err)
	}
	return key, k, nil
}

// APIKeys lists the keys, newest first.
func (a *Accounts) APIKeys(ctx context.Context) ([]APIKey, error) {
	var ks []APIKey
	if err := a.db.WithContext(ctx).Order("created_at DESC, id DESC").Find(&ks).Error; err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return ks, nil
}

// RevokeAPIKey deletes key id, or returns ErrAPIKeyNotFound.
func (a *Accounts) RevokeAPIKey(ctx context.Context, id int64) error {
	res := a.db.WithContext(ctx).Delete(&APIKey{}, id)
	if res.Error != nil {
		return fmt.Errorf("revoke API key %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrAPIKeyNotFound
	}
	return nil
}

// ValidAPIKey reports whether key is a live API key, and records its use.
// The lookup is by SHA-256, so the key itself is never compared.
func (a *Accounts) ValidAPIKey(ctx context.Context, key string) bool {
	if !strings.HasPrefix(key, apiKeyPrefix) || len(key) > 100 {
		return false
	}
	db := a.db.WithContext(ctx)
	res := db.Model(&APIKey{}).Where("key_hash = ?", hashToken(key)).UpdateColumn("last_used_at", a.clock())
	return res.Error == nil && res.RowsAffected == 1
}

// Argon2id parameters (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// hashPassword returns an argon2id hash of pw with a random salt, in the
// usual $argon2id$v=19$m=…,t=…,p=…$salt$hash form.
func hashPassword(pw string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	sum := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// checkPassword reports whether pw matches encoded, comparing in constant
// time with the parameters stored in the hash.
func checkPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 10 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// randomToken returns n random bytes, URL-safe base64 encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
