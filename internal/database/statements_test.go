package database_test

import (
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/testenv"
)

// The counter sees every round trip, inside transactions too, and the
// handle still works as gorm's: DB(), nested transactions, rollbacks.
func TestStatementsCountsRoundTrips(t *testing.T) {
	db := testenv.DB(t)
	n := database.StatementsOf(db)
	if n == nil {
		t.Fatal("a handle made by Open has no statement counter")
	}
	type counted struct {
		ID   int64
		Name string
	}
	if err := db.AutoMigrate(&counted{}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(n)
	ctx := context.Background()
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&counted{Name: "a"}).Error; err != nil {
			return err
		}
		var c int64
		if err := tx.Model(&counted{}).Count(&c).Error; err != nil {
			return err
		}
		// A nested transaction is a savepoint, not a second BEGIN.
		return tx.Transaction(func(tx *gorm.DB) error { return tx.Exec("DELETE FROM counteds WHERE name = ?", "b").Error })
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Transaction(func(tx *gorm.DB) error { return gorm.ErrInvalidData })
	got := diff(snapshot(n), before)
	if got.begins != 2 || got.commits != 1 || got.rollbacks != 1 {
		t.Errorf("transactions: %+v, want 2 begins, 1 commit, 1 rollback", got)
	}
	// The insert, the count, the savepoint and the delete.
	if got.queries+got.execs != 4 {
		t.Errorf("statements: %+v, want 4", got)
	}
	if _, err := db.DB(); err != nil {
		t.Errorf("DB() behind the counter: %v", err)
	}
}

type counts struct{ queries, execs, begins, commits, rollbacks int64 }

func snapshot(n *database.Statements) counts {
	return counts{n.Queries.Load(), n.Execs.Load(), n.Begins.Load(), n.Commits.Load(), n.Rollbacks.Load()}
}

func diff(a, b counts) counts {
	return counts{a.queries - b.queries, a.execs - b.execs, a.begins - b.begins, a.commits - b.commits, a.rollbacks - b.rollbacks}
}
