package database

import (
	"context"
	"database/sql"
	"sync/atomic"

	"gorm.io/gorm"
)

// Statements counts the round trips a database handle makes: every
// statement sent, and the BEGIN, COMMIT and ROLLBACK of each transaction.
// It is how `latchkey bench` reports statements per operation.
type Statements struct {
	Queries, Execs, Begins, Commits, Rollbacks atomic.Int64
}

// Total is every round trip counted so far.
func (s *Statements) Total() int64 {
	return s.Queries.Load() + s.Execs.Load() + s.Begins.Load() + s.Commits.Load() + s.Rollbacks.Load()
}

// StatementsOf returns the counter of a handle made by Open, or nil.
func StatementsOf(db *gorm.DB) *Statements {
	if p, ok := db.Config.ConnPool.(*countingPool); ok {
		return p.n
	}
	return nil
}

// countStatements makes db count its round trips.
func countStatements(db *gorm.DB) {
	sqlDB, ok := db.Config.ConnPool.(*sql.DB)
	if !ok {
		return
	}
	p := &countingPool{counted: counted{ConnPool: sqlDB, n: &Statements{}}, db: sqlDB}
	db.Config.ConnPool = p
	db.Statement.ConnPool = p
}

// counted is a pool or a transaction with each statement counted.
type counted struct {
	gorm.ConnPool
	n *Statements
}

func (c counted) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	c.n.Execs.Add(1)
	return c.ConnPool.ExecContext(ctx, q, args...)
}

func (c counted) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c.n.Queries.Add(1)
	return c.ConnPool.QueryContext(ctx, q, args...)
}

func (c counted) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	c.n.Queries.Add(1)
	return c.ConnPool.QueryRowContext(ctx, q, args...)
}

// countingPool is the handle's pool, counted. It keeps the interfaces
// gorm looks for: a transaction beginner, and the *sql.DB behind it for
// DB().
type countingPool struct {
	counted
	db *sql.DB
}

func (p *countingPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	p.n.Begins.Add(1)
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{counted: counted{ConnPool: tx, n: p.n}, tx: tx}, nil
}

func (p *countingPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// countingTx is one transaction, counted, with its commit and rollback.
type countingTx struct {
	counted
	tx *sql.Tx
}

func (t *countingTx) Commit() error {
	t.n.Commits.Add(1)
	return t.tx.Commit()
}

func (t *countingTx) Rollback() error {
	t.n.Rollbacks.Add(1)
	return t.tx.Rollback()
}
