package lockctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchkey/latchkey"
)

// store is lockctl's persistence. Every method takes ctx first, starts from
// s.db.WithContext(ctx) and returns latchkey errors: gorm's sentinel errors
// never leave it. It is safe for concurrent use.
type store struct {
	db  *gorm.DB
	now func() time.Time
}

func newStore(db *gorm.DB, now func() time.Time) *store { return &store{db: db, now: now} }

// tx runs fn with a store bound to one transaction: everything fn writes
// is committed together, or nothing when fn returns an error.
func (s *store) tx(ctx context.Context, fn func(ts *store) error) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&store{db: tx, now: s.now})
	})
}

// page is one window of a list: limit rows from offset.
type page struct {
	Limit  int
	Offset int
}

// translate maps gorm's sentinel errors to latchkey errors naming what, and
// wraps anything else with op.
func translate(err error, op, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return latchkey.Errorf(latchkey.NotFound, "%s not found", what)
	case errors.Is(err, gorm.ErrDuplicatedKey), errors.Is(err, gorm.ErrForeignKeyViolated):
		return latchkey.Errorf(latchkey.Conflict, "%s already exists or conflicts", what)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// likePattern returns a LIKE pattern matching q anywhere, case-folded, with
// LIKE's wildcards escaped (use with ESCAPE '\').
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// listPage counts what q selects, then loads one page of it into dst in the
// given order. q must be a fresh, unexecuted query.
func listPage[T any](q *gorm.DB, order string, p page, dst *[]T) (int64, error) {
	var total int64
	var zero T
	if err := q.Session(&gorm.Session{}).Model(&zero).Count(&total).Error; err != nil {
		return 0, err
	}
	if total == 0 || int64(p.Offset) >= total {
		*dst = []T{}
		return total, nil
	}
	err := q.Session(&gorm.Session{}).Order(order).Limit(p.Limit).Offset(p.Offset).Find(dst).Error
	return total, err
}

// utc returns t in UTC, truncated to microseconds, the finest precision both
// SQLite text timestamps and PostgreSQL keep.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}

func (s *store) stamp() time.Time { return utc(s.now()) }

// create inserts v (a pointer to a model) without touching associations.
func create[T any](ctx context.Context, s *store, v *T, what string) error {
	err := s.db.WithContext(ctx).Omit(clause.Associations).Create(v).Error
	return translate(err, "create "+what, what)
}

// forUpdate locks the rows tx reads until the transaction ends (SELECT …
// FOR UPDATE on PostgreSQL; SQLite's write transactions already run one at
// a time and its dialect drops the clause), so that a change computed from
// what was read is not written over a concurrent one.
func forUpdate(tx *gorm.DB) *gorm.DB {
	return tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
}

// byID loads the row with id into a new T.
func byID[T any](ctx context.Context, s *store, id int64, what string) (T, error) {
	var v T
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&v).Error
	return v, translate(err, fmt.Sprintf("get %s %d", what, id), what)
}
