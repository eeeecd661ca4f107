package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// quietPoll is how often the quiet phase tries a guest's door and looks
// for their email: it bounds how much the figures overstate.
const quietPoll = 5 * time.Millisecond

// errNoOutbox says the server sends mail over SMTP, so the bench cannot
// see when an email went out.
var errNoOutbox = errors.New("the server has no captured outbox (mail goes over SMTP)")

// quiet measures a quiet day: sign-ins at QuietRate (5/s), each timed
// from the webhook to the first successful unlock through its pass and,
// separately, to its guest email being captured (the outbox's sent_at,
// read from the admin API; this machine's clock on both sides).
func (b *Bench) quiet(ctx context.Context) Phase {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		emails   []time.Duration
		emailErr error
	)
	l := load{Rate: b.cfg.QuietRate, Concurrency: 64, Duration: b.cfg.Duration, Count: b.cfg.Count}
	p := b.drive(ctx, "quiet", l, func(ctx context.Context, _ int) (outcome, int, string) {
		sent := time.Now()
		v, st, err := b.signInEvery(ctx, 30*time.Second, quietPoll)
		if err != nil {
			return outcomeError, st, err.Error()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := b.awaitEmail(ctx, v, 30*time.Second, quietPoll)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				emailErr = cmpErr(emailErr, err)
				return
			}
			emails = append(emails, max(at.Sub(sent), 0))
		}()
		return outcomeOK, st, ""
	})
	wg.Wait()
	p.Note = fmt.Sprintf("latency: webhook sent -> first 200 from the pass's unlock, door tried every %s", quietPoll)
	switch {
	case len(emails) > 0:
		l := summarise(emails)
		p.Email = &l
		p.Note += fmt.Sprintf("; email: webhook sent -> captured (sent_at), %d of %d", len(emails), p.OK)
	case emailErr != nil:
		p.Note += "; email not measured: " + emailErr.Error()
	}
	return p
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// awaitEmail returns when the guest email of v was captured.
func (b *Bench) awaitEmail(ctx context.Context, v *visitor, wait, every time.Duration) (time.Time, error) {
	deadline := time.Now().Add(wait)
	path := "/api/v1/outbox?limit=1&to=" + url.QueryEscape(b.email(v))
	for time.Now().Before(deadline) {
		var msgs []struct {
			SentAt time.Time `json:"sent_at"`
		}
		st, err := b.getJSONStatus(ctx, path, &msgs)
		switch {
		case st == 404:
			return time.Time{}, errNoOutbox
		case err != nil:
			return time.Time{}, err
		case len(msgs) > 0:
			return msgs[0].SentAt, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(every):
		}
	}
	return time.Time{}, fmt.Errorf("visit %d: no email within %s", v.visitID, wait)
}
