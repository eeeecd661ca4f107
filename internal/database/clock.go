package database

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Clock is the database's time as seen from this process: the local clock
// corrected by the offset last measured against the database server, so
// that every replica compares leases, window edges and sweeps against one
// clock whatever its own says. It is safe for concurrent use.
type Clock struct {
	db    *gorm.DB
	local func() time.Time

	mu     sync.Mutex
	offset time.Duration // database time − local time
	rtt    time.Duration // round trip of the measurement it came from
	at     time.Time     // local time of that measurement
}

// NewClock returns a Clock on db that has measured nothing yet (offset 0).
// local is this process's clock (time.Now when nil).
func NewClock(db *gorm.DB, local func() time.Time) *Clock {
	if local == nil {
		local = time.Now
	}
	return &Clock{db: db, local: local}
}

// Now is the database's current time, to within the measurement's error.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.local().Add(off)
}

// Offset is the last measured database time minus local time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// ToLocal converts a time on the database's clock to this process's clock,
// for schedulers that fire by the local clock.
func (c *Clock) ToLocal(t time.Time) time.Time { return t.Add(-c.Offset()) }

// Measure reads the database server's clock and keeps the offset of the
// local clock to it. Of a few readings it keeps the one with the shortest
// round trip, whose midpoint is the best estimate.
func (c *Clock) Measure(ctx context.Context) (time.Duration, error) {
	q := "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
	if c.db.Dialector.Name() == "postgres" {
		q = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
	}
	best, bestRTT := time.Duration(0), time.Duration(-1)
	for i := 0; i < 3; i++ {
		t0 := c.local()
		var s string
		if err := c.db.WithContext(ctx).Raw(q).Scan(&s).Error; err != nil {
			return 0, fmt.Errorf("read the database clock: %w", err)
		}
		t1 := c.local()
		dbNow, err := time.ParseInLocation("2006-01-02 15:04:05.999999", s, time.UTC)
		if err != nil {
			return 0, fmt.Errorf("read the database clock: %q: %w", s, err)
		}
		rtt := t1.Sub(t0)
		if bestRTT < 0 || rtt < bestRTT {
			best, bestRTT = dbNow.Sub(t0.Add(rtt/2)), rtt
		}
	}
	c.mu.Lock()
	c.offset, c.rtt, c.at = best, bestRTT, c.local()
	c.mu.Unlock()
	return best, nil
}
