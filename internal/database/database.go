// Package database opens the service's gorm database: PostgreSQL when the DSN
// is a postgres URL, otherwise pure-Go SQLite in a file. It imports no domain
// package.
package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// DB is an open database. Packages outside the stores name it by this
// alias, so that gorm stays in the stores and here.
type DB = gorm.DB

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// ValidateURL checks a DATABASE_URL value without connecting. An empty value
// is valid (it selects SQLite).
func ValidateURL(dsn string) error {
	if dsn == "" {
		return nil
	}
	if !IsPostgres(dsn) {
		return fmt.Errorf("must be a postgres:// URL or empty for SQLite")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// url.Parse quotes the whole URL, password included: say less.
		return fmt.Errorf("not a valid URL")
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return fmt.Errorf("no host")
	}
	return nil
}

// SQLitePath returns the SQLite file used when no DATABASE_URL is set.
func SQLitePath(dataDir string) string { return filepath.Join(dataDir, "latchkey.db") }

// Open connects to dsn (a postgres URL) or, when dsn is empty, to the SQLite
// file sqlitePath, creating its directory. SQLite is opened in WAL mode with a
// busy timeout, immediate write transactions and foreign keys, so concurrent
// writers wait instead of failing with SQLITE_BUSY.
func Open(ctx context.Context, dsn, sqlitePath string, log *slog.Logger) (*gorm.DB, error) {
	logCfg := logger.Config{
		SlowThreshold:             500 * time.Millisecond,
		LogLevel:                  logger.Warn,
		IgnoreRecordNotFoundError: true,
		ParameterizedQueries:      true,
	}
	cfg := &gorm.Config{
		TranslateError: true,
		// A single Create, Update or Delete is one statement, atomic on
		// its own (no model has associations or hooks), so gorm's
		// BEGIN/COMMIT around each only cost two round trips. Work that
		// must be atomic uses an explicit transaction.
		SkipDefaultTransaction: true,
		// gorm's prepared-statement cache re-prepares inside every
		// transaction: measured slower on PostgreSQL and no faster on
		// SQLite (webhooks BenchmarkWebhookIngest), so it stays off.
		PrepareStmt: false,
		NowFunc:     func() time.Time { return time.Now().UTC() },
		Logger:      newLogger(logger.NewSlogLogger(log.With("component", "gorm"), logCfg), logCfg),
	}
	var (
		db  *gorm.DB
		err error
	)
	if dsn != "" {
		if err := ValidateURL(dsn); err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		db, err = gorm.Open(postgres.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// Webhooks, the worker and the bundled controller share this pool;
		// their work waits on commits, not CPU, so it is larger than the
		// core count.
		sqlDB.SetMaxOpenConns(40)
		sqlDB.SetMaxIdleConns(40)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		if err := prepareSQLiteFiles(sqlitePath, log); err != nil {
			return nil, err
		}
		q := "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		db, err = gorm.Open(sqlite.Open("file:"+sqlitePath+"?"+q), cfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", sqlitePath, err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// One writer at a time is what SQLite allows anyway; a small pool
		// keeps readers concurrent under WAL.
		sqlDB.SetMaxOpenConns(4)
	}
	if err := Ping(ctx, db); err != nil {
		return nil, err
	}
	countStatements(db)
	return db, nil
}

// prepareSQLiteFiles creates the data folder (0700) and the database file
// (0600) before SQLite does, which would make it world-readable; SQLite
// gives the -wal and -shm files the database's mode. Files an older
// release left readable are tightened. An existing folder is left as the
// operator made it (it may be shared, like /tmp), with a warning when
// others can enter it.
func prepareSQLiteFiles(path string, log *slog.Logger) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("data dir is open to other users; make it 0700", "dir", dir, "mode", fi.Mode().Perm().String())
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create sqlite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create sqlite %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", p, err)
		}
	}
	return nil
}

// heartbeat is the one row readiness writes.
type heartbeat struct {
	ID int       `gorm:"column:id;primaryKey;autoIncrement:false"`
	At time.Time `gorm:"column:at;not null"`
}

func (heartbeat) TableName() string { return "readiness_heartbeat" }

// Migrate creates the readiness heartbeat table. It only adds.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&heartbeat{}); err != nil {
		return fmt.Errorf("migrate readiness_heartbeat: %w", err)
	}
	return nil
}

// Ready checks that the database answers and can take a write: it upserts
// the one heartbeat row and commits. A rolled-back write would prove
// nothing (neither SQLite nor PostgreSQL needs the disk for it), while the
// commit needs a WAL append on both, which fails on a full disk or a
// read-only database. The error says which step failed.
func Ready(ctx context.Context, db *gorm.DB) error {
	if err := Ping(ctx, db); err != nil {
		return err
	}
	hb := heartbeat{ID: 1, At: time.Now().UTC()}
	err := db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"at"}),
	}).Create(&hb).Error
	if err != nil {
		return fmt.Errorf("write heartbeat (disk full or read-only?): %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes the underlying connection pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}
