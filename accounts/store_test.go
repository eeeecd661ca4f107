package accounts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/internal/testenv"
)

func newAccounts(t *testing.T) *Store {
	t.Helper()
	db := testenv.DB(t)
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return NewStore(db)
}

// TestConcurrentSetupsMakeOneAdmin: first-run setups submitted at once
// create one admin; the others are told setup is done.
func TestConcurrentSetupsMakeOneAdmin(t *testing.T) {
	ctx := context.Background()
	a := newAccounts(t)
	for i := range 15 {
		if err := a.db.Where("1 = 1").Delete(&User{}).Error; err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for j := range errs {
			wg.Go(func() {
				_, errs[j] = a.CreateFirstUser(ctx, fmt.Sprintf("admin%d-%d@example.com", i, j), "a long enough password")
			})
		}
		wg.Wait()
		created := 0
		for _, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, ErrSetupDone):
				t.Fatalf("iteration %d: setup: %v", i, err)
			}
		}
		n, err := a.CountUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if created != 1 || n != 1 {
			t.Errorf("iteration %d: %d setups succeeded, %d users; want one first admin", i, created, n)
		}
	}
}

// TestPasswordChangeEndsConcurrentLogins: a sign-in with the old password
// that races a password change does not leave a session behind: the change
// ends every session, including one started from a check of the old
// password.
func TestPasswordChangeEndsConcurrentLogins(t *testing.T) {
	ctx := context.Background()
	a := newAccounts(t)
	const email, oldPW, newPW = "desk@example.com", "the old long password", "the new long password"
	if _, err := a.CreateUser(ctx, email, oldPW, RoleFrontDesk); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		var wg sync.WaitGroup
		var tok string
		var loginErr, setErr error
		wg.Go(func() {
			u, err := a.Authenticate(ctx, email, oldPW)
			if err != nil {
				loginErr = err
				return
			}
			tok, _, loginErr = a.NewSession(ctx, u)
		})
		wg.Go(func() { setErr = a.SetPassword(ctx, email, newPW) })
		wg.Wait()
		if setErr != nil {
			t.Fatalf("iteration %d: set password: %v", i, setErr)
		}
		if loginErr != nil && !errors.Is(loginErr, ErrBadCredentials) {
			t.Fatalf("iteration %d: sign-in: %v", i, loginErr)
		}
		if loginErr == nil {
			if _, _, err := a.SessionByToken(ctx, tok); !errors.Is(err, ErrNoSession) {
				t.Errorf("iteration %d: a session started with the old password outlived the password change (%v)", i, err)
			}
		}
		if err := a.SetPassword(ctx, email, oldPW); err != nil {
			t.Fatal(err)
		}
	}
}
