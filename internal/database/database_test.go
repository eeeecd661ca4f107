package database_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/testenv"
)

func TestValidateURL(t *testing.T) {
	tests := []struct {
		dsn     string
		wantErr string
	}{
		{"", ""},
		{"postgres://u:p@127.0.0.1:5432/db?sslmode=disable", ""},
		{"postgresql://127.0.0.1/db", ""},
		{"mysql://u:p@host/db", "must be a postgres:// URL"},
		{"postgres://u:s3cret%zz@host/db", "not a valid URL"},
		{"postgres:///db", "no host"},
	}
	for _, tt := range tests {
		err := database.ValidateURL(tt.dsn)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && !strings.Contains(got, tt.wantErr) {
			t.Errorf("ValidateURL(%q) = %q, want %q", tt.dsn, got, tt.wantErr)
		}
		if strings.Contains(got, "s3cret") {
			t.Errorf("ValidateURL(%q) leaks the password: %q", tt.dsn, got)
		}
	}
}

func TestOpenSQLitePragmas(t *testing.T) {
	if testenv.Postgres() {
		t.Skip("SQLite pragmas: the suite runs on PostgreSQL")
	}
	db := testenv.DB(t)
	var mode string
	var busy, fk int
	db.Raw("PRAGMA journal_mode").Scan(&mode)
	db.Raw("PRAGMA busy_timeout").Scan(&busy)
	db.Raw("PRAGMA foreign_keys").Scan(&fk)
	if mode != "wal" || busy < 5000 || fk != 1 {
		t.Fatalf("journal_mode=%s busy_timeout=%d foreign_keys=%d; want wal, >=5000, 1", mode, busy, fk)
	}
	if err := database.Ping(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteFilesArePrivate: a new data folder is 0700 and the database
// with its -wal and -shm files 0600, also when an older release left the
// database world-readable.
func TestSQLiteFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	path := database.SQLitePath(dir)
	db, err := database.Open(ctx, "", path, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("CREATE TABLE t (x INTEGER)").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO t VALUES (1)").Error; err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		checkMode(t, f, 0o600)
	}
	if err := database.Close(db); err != nil {
		t.Fatal(err)
	}

	// A database left 0644 is tightened on open.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = database.Open(ctx, "", path, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	checkMode(t, path, 0o600)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// TestReadyNeedsAWrite: readiness takes a committed write, so a database
// that still answers pings but cannot write (full disk, read-only) is not
// ready, and the error says so.
func TestReadyNeedsAWrite(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	if err := database.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := database.Ready(ctx, db); err != nil {
			t.Fatalf("Ready on a healthy database (check %d): %v", i+1, err)
		}
	}
	var n int64
	if err := db.Table("readiness_heartbeat").Count(&n).Error; err != nil || n != 1 {
		t.Fatalf("heartbeat rows: %d, %v; want one", n, err)
	}
	// One connection, which can no longer write.
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	readOnly := "PRAGMA query_only = 1"
	if testenv.Postgres() {
		readOnly = "SET default_transaction_read_only = on"
	}
	if err := db.Exec(readOnly).Error; err != nil {
		t.Fatal(err)
	}
	if err := database.Ping(ctx, db); err != nil {
		t.Fatalf("ping: %v (the point is that pings still pass)", err)
	}
	err = database.Ready(ctx, db)
	if err == nil {
		t.Fatal("Ready passed on a database that cannot write")
	}
	if !strings.Contains(err.Error(), "write") {
		t.Errorf("Ready error %q does not say the write failed", err)
	}
}

// A duplicate key is an outcome callers expect (a repeated delivery); it is
// not logged as a failed statement. Other failures still are.
func TestDuplicateKeysAreNotLoggedAsErrors(t *testing.T) {
	var buf syncBuf
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dsn, path := testenv.DSN(t)
	db, err := database.Open(context.Background(), dsn, path, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	type row struct {
		Key string `gorm:"primaryKey;size:16"`
	}
	if err := db.AutoMigrate(&row{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&row{Key: "a"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&row{Key: "a"}).Error; !errors.Is(err, gorm.ErrDuplicatedKey) {
		t.Fatalf("second insert: %v, want a duplicate key", err)
	}
	if strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("a duplicate key was logged as an error:\n%s", buf.String())
	}
	_ = db.Exec("SELECT * FROM no_such_table").Error
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("a real failure was not logged:\n%s", buf.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
