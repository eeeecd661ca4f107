package kisi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// retryPolicy says which failures of a call may be retried.
//
// Kisi has no idempotency key, so a POST that reached the controller must not
// be sent again blindly: a create could leave a second live link (a second
// credential for the guest), an unlock could open the door a second time,
// late. Hence:
//
//   - GET, PATCH and DELETE are idempotent and are retried on 429, on 5xx
//     (except 501) and on any network error. A repeated DELETE that finds the
//     link gone answers 404, which callers treat as done.
//   - POST /group_links is retried on 429, which means the controller did not
//     process it, and on network errors that happened before the request was
//     written in full (DNS, connection refused, TLS handshake). It is not
//     retried on 5xx or on a connection lost after the request was sent: the
//     link may exist, and the reconciler, which lists links by name, is the
//     safe place to find it.
//   - POST /locks/{id}/unlock is a person at a door. It is retried only on
//     network errors before the request was written; a 429 returns TooMany
//     at once and a 5xx Unavailable at once, for the person to try again.
type retryPolicy int

const (
	retryIdempotent retryPolicy = iota
	retryCreate
	retryUnsent
)

// maxRetryAfter is the longest Retry-After the client waits out. A longer one
// returns the TooMany error, so that the caller's job queue retries later
// instead of a worker blocking.
const maxRetryAfter = time.Minute

// do sends c, waiting for the rate limiter before every attempt and retrying
// per c.policy with backoff. It returns the 2xx answer or an error whose
// chain holds a *latchkey.Error (and ctx.Err() when ctx ended the call).
func (cl *Client) do(ctx context.Context, c call) (*response, error) {
	var payload []byte
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return nil, fmt.Errorf("kisi: %s: encode request: %w", c.op, err)
		}
		payload = b
	}
	lim := cl.admin
	if c.holder() {
		lim = cl.holder
	}
	for n := 0; ; n++ {
		if err := lim.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, wrapOp(c, ctx.Err())
			}
			return nil, wrapOp(c, latchkey.Wrap(latchkey.TooMany,
				"client-side rate limit leaves no time before the deadline", err))
		}
		resp, sent, err := cl.attempt(ctx, c, payload)
		if err == nil && resp.status < 300 {
			return resp, nil
		}
		var failure error
		switch {
		case err != nil && !sent:
			failure = fmt.Errorf("%w (%w)", unreachable(err), connector.ErrNotSent)
		case err != nil:
			failure = unreachable(err)
		default:
			failure = cl.answerError(c, resp)
		}
		if ctx.Err() != nil {
			return nil, wrapOp(c, errors.Join(ctx.Err(), failure))
		}
		wait, ok := cl.retryWait(c.policy, resp, sent, n)
		if !ok || n >= cl.opts.MaxRetries {
			return nil, wrapOp(c, failure)
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
			return nil, wrapOp(c, failure)
		}
		if err := cl.sleep(ctx, wait); err != nil {
			return nil, wrapOp(c, errors.Join(err, failure))
		}
	}
}

// retryWait says whether attempt n (0-based) of a call with policy p may be
// retried after answer resp (nil on a network error), and after how long.
func (cl *Client) retryWait(p retryPolicy, resp *response, sent bool, n int) (time.Duration, bool) {
	if resp == nil {
		if p == retryIdempotent || !sent {
			return cl.backoff(n), true
		}
		return 0, false
	}
	switch {
	case resp.status == http.StatusTooManyRequests:
		if p == retryUnsent {
			return 0, false
		}
		d, ok := retryAfter(resp.header, time.Now())
		switch {
		case !ok || d <= 0:
			return cl.backoff(n), true
		case d > maxRetryAfter:
			return 0, false
		}
		return d, true
	case resp.status >= 500 && resp.status != http.StatusNotImplemented:
		return cl.backoff(n), p == retryIdempotent
	}
	return 0, false
}

// backoff is the wait before retry n+1: MinBackoff doubled n times, capped at
// MaxBackoff, with "equal jitter" (a random point in its upper half) so that
// clients that failed together do not retry together.
func (cl *Client) backoff(n int) time.Duration {
	d := cl.opts.MaxBackoff
	if n < 32 {
		if e := cl.opts.MinBackoff << n; e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = 24 * 60 * 60
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
