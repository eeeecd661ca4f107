package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"
)

// pollEvery is how often a waiting guest first retries the door: it bounds
// the resolution of the sign-in and sign-out latencies. The wait between
// tries grows by a tenth of the time already waited, up to pollMax, and all
// guests' tries together are paced at Config.PollRate, so a lagging server
// is not buried under its own guests' retries.
const (
	pollEvery = 25 * time.Millisecond
	pollMax   = 250 * time.Millisecond
)

// ingest posts each operation as a new visitor's sign-in.
func (b *Bench) ingest(ctx context.Context, l load, name string) Phase {
	return b.drive(ctx, name, l, func(ctx context.Context, _ int) (outcome, int, string) {
		v := b.newVisitor()
		st, _, err := b.postWebhook(ctx, b.envoyBody(v, "entry_sign_in", time.Now()))
		if err != nil {
			return outcomeError, st, err.Error()
		}
		return outcomeOK, st, ""
	})
}

// signIn signs a new visitor in and waits until its pass opens the door.
func (b *Bench) signIn(ctx context.Context, wait time.Duration) (*visitor, int, error) {
	return b.signInEvery(ctx, wait, pollEvery)
}

// signInEvery is signIn with the door first retried every every.
func (b *Bench) signInEvery(ctx context.Context, wait, every time.Duration) (*visitor, int, error) {
	v := b.newVisitor()
	st, id, err := b.postWebhook(ctx, b.envoyBody(v, "entry_sign_in", time.Now()))
	if err != nil {
		return nil, st, err
	}
	v.visitID = id
	if err := b.fetchPass(ctx, v); err != nil {
		return nil, 0, err
	}
	st, err = b.pollUnlock(ctx, v, wait, every, http.StatusOK)
	if err != nil {
		return nil, st, err
	}
	b.mu.Lock()
	b.usable = append(b.usable, v)
	b.mu.Unlock()
	return v, st, nil
}

// pollUnlock tries the door, first every every, until it answers want.
func (b *Bench) pollUnlock(ctx context.Context, v *visitor, wait, every time.Duration, want int) (int, error) {
	start := time.Now()
	deadline := start.Add(wait)
	last, lastMsg := 0, ""
	for time.Now().Before(deadline) {
		if err := b.polls.Wait(ctx); err != nil {
			return 0, err
		}
		st, msg, err := b.unlock(ctx, v)
		if err == nil && st == want {
			return st, nil
		}
		if err != nil {
			msg = err.Error()
		}
		last, lastMsg = st, msg
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(min(every+time.Since(start)/10, pollMax)):
		}
	}
	return last, fmt.Errorf("visit %d: door did not answer %d within %s (last: %d %s)", v.visitID, want, wait, last, lastMsg)
}

func (b *Bench) signin(ctx context.Context) Phase {
	l := load{Rate: b.cfg.EventRate, Concurrency: int(b.cfg.EventRate * 30), Duration: b.cfg.Duration, Count: b.cfg.Count}
	p := b.drive(ctx, "signin", l, func(ctx context.Context, _ int) (outcome, int, string) {
		_, st, err := b.signIn(ctx, 30*time.Second)
		if err != nil {
			return outcomeError, st, err.Error()
		}
		return outcomeOK, st, ""
	})
	p.Note = fmt.Sprintf("latency: webhook sent -> first 200 from POST /v/{pass}/locks/{id}/unlock; door retried every %s, backing off to %s, at most %.0f tries/s over all guests", pollEvery, pollMax, b.cfg.PollRate)
	return p
}

// unlockHeadroom is the closed-loop unlock rate the bench's passes are
// made for: twice the PostgreSQL target.
const unlockHeadroom = 10_000

// passesNeeded is how many passes keep the per-link limit (1/s, burst 5)
// from throttling a phase at the paced rate or at unlockHeadroom,
// whichever is more; a closed-loop phase that goes faster still is
// reported with its 429s, which the unlock target does not count.
func (b *Bench) passesNeeded() int {
	d := b.cfg.Duration.Seconds()
	n := int(math.Ceil(max(b.cfg.Rate, unlockHeadroom)*d/(5+d))) + 1
	if b.cfg.Count > 0 {
		n = min(n, b.cfg.Count)
	}
	return n
}

// ensurePasses signs visitors in until n passes have opened a door.
func (b *Bench) ensurePasses(ctx context.Context, n int) error {
	b.mu.Lock()
	missing := n - len(b.usable)
	b.mu.Unlock()
	if missing <= 0 {
		return nil
	}
	b.section(fmt.Sprintf("setup: %d more usable passes", missing))
	p := b.drive(ctx, "setup", load{Concurrency: b.cfg.Concurrency, Duration: 10 * time.Minute, Count: missing},
		func(ctx context.Context, _ int) (outcome, int, string) {
			if _, st, err := b.signIn(ctx, time.Minute); err != nil {
				return outcomeError, st, err.Error()
			}
			return outcomeOK, 200, ""
		})
	if p.OK < int64(missing) {
		return fmt.Errorf("setup: only %d of %d passes became usable (first error: %s)", p.OK, missing, p.FirstError)
	}
	return nil
}

func (b *Bench) unlocks(ctx context.Context, l load, name string) Phase {
	b.mu.Lock()
	passes := append([]*visitor(nil), b.usable...)
	b.mu.Unlock()
	p := b.drive(ctx, name, l, func(ctx context.Context, i int) (outcome, int, string) {
		st, msg, err := b.unlock(ctx, passes[i%len(passes)])
		switch {
		case err != nil:
			return outcomeError, 0, err.Error()
		case st == http.StatusOK:
			return outcomeOK, st, ""
		case st == http.StatusForbidden:
			return outcomeRefused, st, ""
		case st == http.StatusTooManyRequests:
			return outcomeLimited, st, ""
		}
		return outcomeError, st, msg
	})
	p.Note = fmt.Sprintf("%d passes, round robin, each with its own client address", len(passes))
	return p
}

func (b *Bench) signout(ctx context.Context) Phase {
	b.mu.Lock()
	n := int(b.cfg.EventRate * b.cfg.Duration.Seconds())
	if b.cfg.Count > 0 {
		n = min(n, b.cfg.Count)
	}
	n = min(n, len(b.usable))
	leaving := b.usable[len(b.usable)-n:]
	b.usable = b.usable[:len(b.usable)-n]
	b.mu.Unlock()
	if n == 0 {
		return Phase{Name: "signout", Mode: "paced", Note: "no usable passes to sign out"}
	}
	l := load{Rate: b.cfg.EventRate, Concurrency: int(b.cfg.EventRate * 30), Duration: b.cfg.Duration, Count: n}
	p := b.drive(ctx, "signout", l, func(ctx context.Context, i int) (outcome, int, string) {
		v := leaving[i]
		st, _, err := b.postWebhook(ctx, b.envoyBody(v, "entry_sign_out", time.Now()))
		if err != nil {
			return outcomeError, st, err.Error()
		}
		if st, err := b.pollUnlock(ctx, v, 30*time.Second, pollEvery, http.StatusForbidden); err != nil {
			return outcomeError, st, err.Error()
		}
		return outcomeOK, st, ""
	})
	p.Note = fmt.Sprintf("latency: webhook sent -> first 403 from the pass's unlock; door retried every %s, backing off to %s, at most %.0f tries/s over all guests", pollEvery, pollMax, b.cfg.PollRate)
	return p
}
