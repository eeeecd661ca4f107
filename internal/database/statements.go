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
	p := &countingPool{db: sqlDB, n: &Statements{}}
	db.Config.ConnPool = p
	db.Statement.ConnPool = p
}

// countingPool is the handle's pool with each call counted. It keeps the
// interfaces gorm looks for: a transaction beginner, and the *sql.DB behind
// it for DB().
type countingPool struct {
	db *sql.DB
	n  *Statements
}

func (p *countingPool) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, q)
}

func (p *countingPool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	p.n.Execs.Add(1)
	return p.db.ExecContext(ctx, q, args...)
}

func (p *countingPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	p.n.Queries.Add(1)
	return p.db.QueryContext(ctx, q, args...)
}

func (p *countingPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	p.n.Queries.Add(1)
	return p.db.QueryRowContext(ctx, q, args...)
}

func (p *countingPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	p.n.Begins.Add(1)
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{tx: tx, n: p.n}, nil
}

func (p *countingPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// countingTx is one transaction with each call counted.
type countingTx struct {
	tx *sql.Tx
	n  *Statements
}

func (t *countingTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, q)
}

func (t *countingTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	t.n.Execs.Add(1)
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *countingTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t.n.Queries.Add(1)
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *countingTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	t.n.Queries.Add(1)
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t *countingTx) Commit() error {
	t.n.Commits.Add(1)
	return t.tx.Commit()
}

func (t *countingTx) Rollback() error {
	t.n.Rollbacks.Add(1)
	return t.tx.Rollback()
}
