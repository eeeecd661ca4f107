package database

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// expectedErrors is a gorm logger that does not report, as failed
// statements, the outcomes callers expect and handle: a duplicate key (a
// repeated webhook delivery, a message already stored) is how idempotency
// works here, not an error. Everything else goes to next.
//
// It also keeps gorm from formatting statements nobody logs: gorm's own
// loggers render every statement's SQL before deciding whether to log it,
// which costs CPU on every query. A statement that succeeded, in time,
// below the Info level is dropped before its SQL is rendered.
type expectedErrors struct {
	logger.Interface
	level logger.LogLevel
	slow  time.Duration
}

func newLogger(next logger.Interface, cfg logger.Config) expectedErrors {
	return expectedErrors{Interface: next, level: cfg.LogLevel, slow: cfg.SlowThreshold}
}

func (l expectedErrors) LogMode(level logger.LogLevel) logger.Interface {
	return expectedErrors{Interface: l.Interface.LogMode(level), level: level, slow: l.slow}
}

func (l expectedErrors) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrRecordNotFound) {
		err = nil // still traced as a statement, e.g. when slow
	}
	if l.level <= logger.Silent {
		return
	}
	if err == nil && l.level < logger.Info && (l.slow == 0 || time.Since(begin) <= l.slow) {
		return // nothing to log: do not render the statement
	}
	l.Interface.Trace(ctx, begin, fc, err)
}
