// Package schema is the one ordered list of every package's migrations,
// used by latchkey serve and by the test stack alike.
//
// Like internal/bench it knows the domain packages (it must, to list them);
// nothing but cmd and test helpers import it.
package schema

import (
	"context"
	"fmt"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/mappings"
)

// Steps are the migrations in the order they run: a package's tables come
// after those they refer to.
var Steps = []func(context.Context, *database.DB) error{
	database.Migrate, lockctl.Migrate, mappings.Migrate, connector.Migrate, mail.Migrate, accounts.Migrate,
}

// lockKey is the PostgreSQL advisory lock that keeps replicas starting
// together from migrating at the same time.
const lockKey = 7_283_021_401

// Migrate runs Steps in order. On PostgreSQL it holds an advisory lock on
// one connection meanwhile, so replicas that start together migrate one
// after another.
func Migrate(ctx context.Context, db *database.DB, postgres bool) error {
	run := func(db *database.DB) error {
		for _, m := range Steps {
			if err := m(ctx, db); err != nil {
				return err
			}
		}
		return nil
	}
	if !postgres {
		return run(db)
	}
	return db.WithContext(ctx).Connection(func(conn *database.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", lockKey).Error; err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(?)", lockKey)
		return run(conn)
	})
}
