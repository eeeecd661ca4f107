package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
