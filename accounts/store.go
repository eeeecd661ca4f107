package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	latchkey "github.com/latchkey/latchkey"
)

// Migrate creates the users, sessions and API keys tables.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&User{}, &Session{}, &APIKey{}); err != nil {
		return fmt.Errorf("migrate accounts: %w", err)
	}
	return nil
}

// Store stores users, their sessions and API keys. It is safe for
// concurrent use.
type Store struct {
	db  *gorm.DB
	now func() time.Time
	// dummy is a password hash checked for unknown emails, so a login
	// takes as long whether or not the email exists.
	dummy string
}

// NewStore returns the accounts store on db.
func NewStore(db *gorm.DB) *Store {
	return &Store{db: db, now: time.Now, dummy: hashPassword("not a real password")}
}

func (a *Store) clock() time.Time { return a.now().UTC().Truncate(time.Second) }

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
func (a *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	if err := a.db.WithContext(ctx).Model(&User{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// CreateUser adds a user. It returns an Invalid error for a bad email, role
// or a password shorter than MinPasswordLength, and ErrUserExists.
func (a *Store) CreateUser(ctx context.Context, email, password string, role Role) (User, error) {
	return a.createUser(ctx, a.db.WithContext(ctx), email, password, role)
}

// CreateFirstUser adds the first admin; it returns ErrSetupDone once any
// user exists.
func (a *Store) CreateFirstUser(ctx context.Context, email, password string) (User, error) {
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

func (a *Store) createUser(_ context.Context, db *gorm.DB, email, password string, role Role) (User, error) {
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
func (a *Store) SetPassword(ctx context.Context, email, password string) error {
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
func (a *Store) UserByEmail(ctx context.Context, email string) (User, error) {
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
func (a *Store) Users(ctx context.Context) ([]User, error) {
	var us []User
	if err := a.db.WithContext(ctx).Order("email").Find(&us).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// DeleteUser removes user id and their sessions.
func (a *Store) DeleteUser(ctx context.Context, id int64) error {
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
func (a *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
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
func (a *Store) NewSession(ctx context.Context, u User) (string, Session, error) {
	tok := RandomToken(32)
	now := a.clock()
	s := Session{TokenHash: hashToken(tok), UserID: u.ID, CSRFToken: RandomToken(32), ExpiresAt: now.Add(SessionTTL), CreatedAt: now}
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
func (a *Store) SessionByToken(ctx context.Context, token string) (Session, User, error) {
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
func (a *Store) DeleteSession(ctx context.Context, token string) error {
	if err := a.db.WithContext(ctx).Where("token_hash = ?", hashToken(token)).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// apiKeyPrefix marks latchkey API keys, so they are easy to spot in leaks.
const apiKeyPrefix = "lk_"

// CreateAPIKey creates a named key and returns it in full (the only time it
// is known) with its stored record.
func (a *Store) CreateAPIKey(ctx context.Context, name, createdBy string) (string, APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", APIKey{}, latchkey.Errorf(latchkey.Invalid, "name is required (at most 100 characters)")
	}
	key := apiKeyPrefix + RandomToken(24)
	k := APIKey{Name: name, Prefix: key[:len(apiKeyPrefix)+6], KeyHash: hashToken(key), CreatedBy: createdBy, CreatedAt: a.clock()}
	if err := a.db.WithContext(ctx).Create(&k).Error; err != nil {
		return "", APIKey{}, fmt.Errorf("create API key %q: %w", name, err)
	}
	return key, k, nil
}

// APIKeys lists the keys, newest first.
func (a *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	var ks []APIKey
	if err := a.db.WithContext(ctx).Order("created_at DESC, id DESC").Find(&ks).Error; err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return ks, nil
}

// RevokeAPIKey deletes key id, or returns ErrAPIKeyNotFound.
func (a *Store) RevokeAPIKey(ctx context.Context, id int64) error {
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
func (a *Store) ValidAPIKey(ctx context.Context, key string) bool {
	if !strings.HasPrefix(key, apiKeyPrefix) || len(key) > 100 {
		return false
	}
	db := a.db.WithContext(ctx)
	res := db.Model(&APIKey{}).Where("key_hash = ?", hashToken(key)).UpdateColumn("last_used_at", a.clock())
	return res.Error == nil && res.RowsAffected == 1
}
