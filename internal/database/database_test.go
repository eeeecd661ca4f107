package database_test

import (
	"context"
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
