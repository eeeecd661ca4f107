package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/internal/database"
)

const usersUsage = `usage: latchkey users create --email EMAIL --role admin|frontdesk
       latchkey users password --email EMAIL
       latchkey users list

Manages the people who sign in to the front desk at /admin. The password
is read from LATCHKEY_USER_PASSWORD when set, else from the first line of
standard input (never from a flag, which would show in ps). Uses the
database of "latchkey serve": DATABASE_URL, or SQLite in LATCHKEY_DATA_DIR.`

// runUsers creates users, sets passwords and lists users.
func runUsers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stdout, usersUsage)
		return fmt.Errorf("users: give create, password or list")
	}
	sub := args[0]
	fs := flag.NewFlagSet("users "+sub, flag.ContinueOnError)
	fs.SetOutput(stdout)
	email := fs.String("email", "", "the user's email")
	role := fs.String("role", string(accounts.RoleFrontDesk), "admin or frontdesk")
	dataDir := fs.String("data-dir", envOr(getenv, "LATCHKEY_DATA_DIR", "./data"), "data directory with the SQLite database (LATCHKEY_DATA_DIR)")
	fs.Bool("password-stdin", true, "read the password from standard input (the default unless LATCHKEY_USER_PASSWORD is set)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch sub {
	case "create", "password", "list":
	default:
		fmt.Fprintln(stdout, usersUsage)
		return fmt.Errorf("users: unknown command %q (want create, password or list)", sub)
	}
	dsn := strings.TrimSpace(getenv("DATABASE_URL"))
	if dsn == "" {
		if err := os.MkdirAll(*dataDir, 0o700); err != nil {
			return fmt.Errorf("LATCHKEY_DATA_DIR: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := database.Open(ctx, dsn, database.SQLitePath(*dataDir), log)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer database.Close(db)
	if err := accounts.Migrate(ctx, db); err != nil {
		return err
	}
	accts := accounts.NewStore(db)
	if sub == "list" {
		us, err := accts.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", u.Email, u.Role, u.CreatedAt.Format("2006-01-02"))
		}
		return nil
	}
	if strings.TrimSpace(*email) == "" {
		return fmt.Errorf("users %s: --email is required", sub)
	}
	pw, err := readPassword(getenv, stdin)
	if err != nil {
		return err
	}
	if sub == "password" {
		if err := accts.SetPassword(ctx, *email, pw); err != nil {
			return fmt.Errorf("users password: %w", err)
		}
		fmt.Fprintf(stdout, "password of %s changed; their sessions were ended\n", strings.ToLower(strings.TrimSpace(*email)))
		return nil
	}
	r, err := accounts.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("users create: --role: %w", err)
	}
	u, err := accts.CreateUser(ctx, *email, pw, r)
	if err != nil {
		return fmt.Errorf("users create: %w", err)
	}
	// A user exists now: the first-run setup token is dead.
	if err := removeSetupToken(*dataDir); err != nil {
		return fmt.Errorf("users create: %w", err)
	}
	fmt.Fprintf(stdout, "created %s (%s)\n", u.Email, u.Role)
	return nil
}

// readPassword takes LATCHKEY_USER_PASSWORD, else the first line of stdin.
func readPassword(getenv func(string) string, stdin io.Reader) (string, error) {
	if pw := getenv("LATCHKEY_USER_PASSWORD"); pw != "" {
		return pw, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("no password: pipe it on stdin or set LATCHKEY_USER_PASSWORD")
	}
	return pw, nil
}
