package kisi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"

	"github.com/latchkey/latchkey/connector"
)

// Response bodies are read whole; these caps keep a misbehaving controller
// from exhausting memory.
const (
	maxBodyBytes  = 16 << 20
	maxErrorBytes = 64 << 10
)

// call describes one logical controller call; do may send it several times.
type call struct {
	method string
	path   []string // path segments below the base URL
	query  url.Values
	body   any // marshalled to JSON when non-nil
	policy retryPolicy
	// secret is the link secret of a holder call (or a person's access key
	// or login secret, with scheme); empty for admin calls, which
	// authenticate with the API key.
	secret string
	// scheme is the Authorization scheme of a holder call; "" is
	// KISI-GROUP-LINK.
	scheme string
	// op names the call in wrapped errors ("delete link 42"); subject names
	// its object in public messages ("link 42").
	op, subject string
	// notFound names what a 404 means is missing ("lock 7"); subject when
	// empty.
	notFound string
	// idempotencyKey, when set, is sent as Idempotency-Key.
	idempotencyKey string
}

func (c call) holder() bool { return c.secret != "" }

func (c call) missing() string {
	if c.notFound != "" {
		return c.notFound
	}
	return c.subject
}

// response is a controller answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// attempt sends c once. sent reports whether the request was written to the
// connection in full, which decides whether a failed POST may be retried.
func (cl *Client) attempt(ctx context.Context, c call, payload []byte) (resp *response, sent bool, err error) {
	u := cl.base.JoinPath(c.path...)
	if c.query != nil {
		u.RawQuery = c.query.Encode()
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u.String(), body)
	if err != nil {
		return nil, false, fmt.Errorf("build request: %w", err)
	}
	cl.setHeaders(req, c, payload != nil)
	r, err := cl.hc.Do(req)
	if err != nil {
		return nil, wrote.Load(), err
	}
	defer r.Body.Close()
	limit := int64(maxBodyBytes)
	if r.StatusCode >= 300 {
		limit = maxErrorBytes
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		return nil, true, fmt.Errorf("read %s answer: %w", r.Status, err)
	}
	return &response{status: r.StatusCode, header: r.Header, body: b}, true, nil
}

func (cl *Client) setHeaders(req *http.Request, c call, hasBody bool) {
	if c.holder() {
		scheme := c.scheme
		if scheme == "" {
			scheme = "KISI-GROUP-LINK"
		}
		req.Header.Set("Authorization", scheme+" "+c.secret)
	} else {
		req.Header.Set("Authorization", "KISI-LOGIN "+cl.opts.APIKey)
	}
	req.Header.Set("Accept", "application/json")
	if c.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", c.idempotencyKey)
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", userAgent)
	if ci, ok := connector.ClientInfoFrom(req.Context()); ok && c.holder() {
		// The guest behind a holder call: a controller that trusts us
		// (lockctl behind the same proxy) audits and rate-limits them.
		if ci.IP != "" {
			req.Header.Set("X-Forwarded-For", ci.IP)
		}
		if ci.UserAgent != "" {
			req.Header.Set("User-Agent", ci.UserAgent+" "+userAgent)
		}
	}
	req.Header.Set("X-Kisi-Integration-Identifier", cl.opts.IntegrationIdentifier)
	if cl.opts.IntegrationContact != "" {
		req.Header.Set("X-Kisi-Integration-Contact", cl.opts.IntegrationContact)
	}
}

// decode parses a 2xx answer into v; an unreadable answer is Unavailable.
func decode(c call, resp *response, v any) error {
	if err := json.Unmarshal(resp.body, v); err != nil {
		return wrapOp(c, unreadable(c, err))
	}
	return nil
}
