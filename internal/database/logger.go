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
type expectedErrors struct{ logger.Interface }

func (l expectedErrors) LogMode(level logger.LogLevel) logger.Interface {
	return expectedErrors{l.Interface.LogMode(level)}
}

func (l expectedErrors) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		err = nil // still traced as a statement, e.g. when slow
	}
	l.Interface.Trace(ctx, begin, fc, err)
}
