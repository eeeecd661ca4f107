// Package testenv gives tests real backing services: PostgreSQL and Redis when
// TEST_DATABASE_URL / TEST_REDIS_URL are set, otherwise SQLite in a temporary
// directory and an in-process Redis (miniredis). It imports no domain package.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
)

// Logger returns a logger that discards output unless TEST_LOG is set.
func Logger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if os.Getenv("TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Postgres reports whether tests run against a real PostgreSQL.
func Postgres() bool { return os.Getenv("TEST_DATABASE_URL") != "" }

// DSN returns a database location for a fresh, empty database: a postgres URL
// of a newly created database (dropped in cleanup) when TEST_DATABASE_URL is
// set, otherwise "" with a SQLite path under a temporary directory.
func DSN(tb testing.TB) (dsn, sqlitePath string) {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		return "", filepath.Join(tb.TempDir(), "test.db")
	}
	name := "lk_test_" + randHex(6)
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{})
	if err != nil {
		tb.Fatalf("open TEST_DATABASE_URL: %v", err)
	}
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	closeDB(admin)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	tb.Cleanup(func() {
		admin, err := gorm.Open(postgres.Open(base), &gorm.Config{})
		if err != nil {
			tb.Errorf("reopen for drop: %v", err)
			return
		}
		defer closeDB(admin)
		if err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	return u.String(), ""
}

// DB returns an open, empty database for one test, closed in cleanup.
func DB(tb testing.TB) *gorm.DB {
	tb.Helper()
	dsn, path := DSN(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := database.Open(ctx, dsn, path, Logger(tb))
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(func() { closeDB(db) })
	return db
}

var redisMu sync.Mutex

// RedisURL returns the URL of an empty Redis for one test. With
// TEST_REDIS_URL set, the real Redis is flushed first (such test runs use
// -p 1); otherwise a miniredis with TTLs driven by the wall clock is started
// and closed in cleanup.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		redisMu.Lock()
		tb.Cleanup(redisMu.Unlock)
		opt, err := redis.ParseURL(u)
		if err != nil {
			tb.Fatalf("parse TEST_REDIS_URL: %v", err)
		}
		c := redis.NewClient(opt)
		defer c.Close()
		if err := c.FlushDB(context.Background()).Err(); err != nil {
			tb.Fatalf("flush redis: %v", err)
		}
		return u
	}
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		tb.Fatalf("start miniredis: %v", err)
	}
	tb.Cleanup(m.Close)
	return "redis://" + m.Addr()
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
