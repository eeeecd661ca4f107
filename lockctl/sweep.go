package lockctl

import (
	"context"
	"fmt"
	"time"
)

const (
	// defaultEventRetention is how long events are kept by default.
	defaultEventRetention = 90 * 24 * time.Hour
	// defaultSweepBatch is how many events one DELETE removes, so that a
	// sweep never holds a long lock on the table.
	defaultSweepBatch = 1000
)

// Sweep stores the summaries of refused unlock attempts whose minute is
// over, deletes events older than the retention (in batches), expired event
// sets and logins minted under an earlier bootstrap key. It returns the first error; what was deleted stays deleted.
// It is safe to call concurrently, also from several replicas.
func (c *Controller) Sweep(ctx context.Context) error {
	c.audit.flush(ctx)
	for _, e := range c.refusals.flush(c.now()) {
		if err := c.store.addEvent(ctx, &e); err != nil {
			return fmt.Errorf("store refusal summary: %w", err)
		}
	}
	before := c.now().Add(-c.opts.EventRetention)
	for {
		n, err := c.store.deleteEventsBefore(ctx, before, c.sweepBatch)
		if err != nil {
			return err
		}
		if n < int64(c.sweepBatch) {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := c.store.deleteExpiredEventSets(ctx); err != nil {
		return err
	}
	for {
		n, err := c.store.deleteIdempotencyBefore(ctx, c.now().Add(-idempotencyRetention), c.sweepBatch)
		if err != nil {
			return err
		}
		if n < int64(c.sweepBatch) {
			break
		}
	}
	return c.sweepLogins(ctx)
}

// staleLoginGrace is how long logins of another bootstrap key are kept
// after their last use: replicas being restarted with a rotated key may
// briefly disagree on which key is current, and none should delete the
// other's fresh logins.
const staleLoginGrace = 24 * time.Hour

// sweepLogins deletes the logins minted under another bootstrap key, which
// no longer authenticate, once unused for staleLoginGrace. Without a
// bootstrap key it keeps them (a start with the key unset by mistake
// destroys nothing).
func (c *Controller) sweepLogins(ctx context.Context) error {
	if c.opts.AdminAPIKey == "" {
		return nil
	}
	_, err := c.store.deleteLoginsNotMintedBy(ctx, mintHash(c.opts.AdminAPIKey), c.now().Add(-staleLoginGrace))
	return err
}

// RunSweeps calls Sweep every interval until ctx ends, logging failures.
func (c *Controller) RunSweeps(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Sweep(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("sweep events", "err", err)
			}
		}
	}
}
