package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/testenv"
)

// TestUsersCommand creates a user from the password on stdin, changes it
// from the environment, lists users, and refuses bad input.
func TestUsersCommand(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"LATCHKEY_DATA_DIR": dataDir}
	getenv := func(k string) string { return env[k] }
	users := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := runUsers(ctx, args, getenv, strings.NewReader(stdin), &out)
		return out.String(), err
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dataDir, "setup-token")
	if err := os.WriteFile(tokenFile, []byte("a-first-run-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := users("correct horse battery\n", "create", "--email", "desk@example.com", "--role", "frontdesk"); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("setup token file after users create: %v, want it deleted (a user exists)", err)
	}
	if _, err := users("another long password\n", "create", "--email", "desk@example.com", "--role", "frontdesk"); err == nil {
		t.Fatal("creating the same email twice succeeded")
	}
	if _, err := users("x\n", "create", "--email", "boss@example.com", "--role", "janitor"); err == nil {
		t.Fatal("an unknown role was accepted")
	}
	if _, err := users("x\n", "create", "--role", "admin"); err == nil || !strings.Contains(err.Error(), "--email") {
		t.Fatalf("create without --email: got %v, want an error naming --email", err)
	}
	env["LATCHKEY_USER_PASSWORD"] = "a new long passphrase"
	if _, err := users("", "password", "--email", "desk@example.com"); err != nil {
		t.Fatalf("password: %v", err)
	}
	out, err := users("", "list")
	if err != nil || !strings.Contains(out, "desk@example.com\tfrontdesk") {
		t.Fatalf("list = %q, %v; want the desk user", out, err)
	}

	db, err := database.Open(ctx, "", database.SQLitePath(dataDir), testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	accts := accounts.NewStore(db)
	if _, err := accts.Authenticate(ctx, "desk@example.com", "correct horse battery"); err == nil {
		t.Fatal("the old password still works after `users password`")
	}
	if u, err := accts.Authenticate(ctx, "desk@example.com", "a new long passphrase"); err != nil || u.Role != accounts.RoleFrontDesk {
		t.Fatalf("sign in with the new password: %+v, %v", u, err)
	}
}
