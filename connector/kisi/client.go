package kisi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchkey/latchkey/connector"
)

// Defaults applied by New to zero fields of Options.
const (
	DefaultRatePerSecond         = 5
	DefaultBurst                 = 1
	DefaultMaxRetries            = 4
	DefaultMinBackoff            = 200 * time.Millisecond
	DefaultMaxBackoff            = 5 * time.Second
	DefaultIntegrationIdentifier = "latchkey"
	// DefaultTimeout bounds one HTTP attempt when Options.HTTPClient is nil.
	DefaultTimeout = 30 * time.Second
)

const userAgent = "latchkey-connector-kisi/1"

// Options tunes a Client. The zero value of every field but APIKey selects
// the documented default.
type Options struct {
	// APIKey is the Kisi login secret (API key) sent as
	// "Authorization: KISI-LOGIN <key>" on admin calls. Required.
	APIKey string
	// HTTPClient makes the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// WrapTransport, when set, wraps the transport every request goes
	// through (to time controller calls).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// RatePerSecond is the client-side request rate (default 5, Kisi's
	// per-user limit). math.Inf(1) disables the limit; negative is invalid.
	RatePerSecond float64
	// Burst is the rate limiter's burst (default 1: requests are spaced
	// evenly, as Kisi advises serial requests per user).
	Burst int
	// MaxRetries is how many times a failed attempt is retried (default 4);
	// a negative value disables retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (defaults 200 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
	// IntegrationIdentifier is sent as X-Kisi-Integration-Identifier
	// (default "latchkey").
	IntegrationIdentifier string
	// IntegrationContact, when set, is sent as X-Kisi-Integration-Contact.
	IntegrationContact string
	// SupportsUpdate says the controller has PATCH /group_links/{id}
	// (lockctl does, real Kisi does not). When false, UpdateLink returns
	// connector.ErrUpdateUnsupported without a request.
	SupportsUpdate bool
	// IdempotentCreates says the controller honours an Idempotency-Key on
	// POST /group_links (lockctl does, real Kisi does not): a create sent
	// again under its key gets the link it made, so creates are retried like
	// any idempotent call and a creation cut off half way is simply sent
	// again.
	IdempotentCreates bool
	// Local, when set, is the controller this client talks to, running in
	// the same process: unlocks are asked of it in memory (see Local),
	// every other call goes through HTTPClient as usual.
	Local Local
}

// Client talks to one Kisi-compatible controller with one API key. It is
// safe for concurrent use; all its requests share its rate limits.
type Client struct {
	base *url.URL
	opts Options
	hc   *http.Client
	// admin limits calls made with the API key (Kisi counts them against
	// the key's user); holder limits calls made with link secrets, which
	// Kisi does not count against that user, so a reconcile run never
	// delays a guest at the door.
	admin  *rate.Limiter
	holder *rate.Limiter
	// sleep waits between retries; tests replace it to observe waits.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ connector.AccessControl = (*Client)(nil)

// IdempotentCreates reports whether CreateLink sends LinkSpec.IdempotencyKey
// to a controller that honours it (Options.IdempotentCreates).
func (cl *Client) IdempotentCreates() bool { return cl.opts.IdempotentCreates }

// New returns a Client for the controller at baseURL, an absolute http or
// https URL that may carry a path prefix (http://127.0.0.1:8080/lockctl).
// It returns an error when baseURL is not such a URL, carries credentials,
// a query or a fragment, when opts.APIKey is empty, or when an option is out
// of range. New makes no request.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("kisi: parse base url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("kisi: base url %q: scheme must be http or https", baseURL)
	case u.Host == "":
		return nil, fmt.Errorf("kisi: base url %q: missing host", baseURL)
	case u.User != nil:
		return nil, errors.New("kisi: base url must not carry credentials; use Options.APIKey")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("kisi: base url %q: must not have a query or fragment", baseURL)
	}
	if opts.APIKey == "" {
		return nil, errors.New("kisi: empty API key")
	}
	if err := applyDefaults(&opts); err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		// Guests unlock concurrently: keep enough idle connections to the
		// controller that busy moments reuse them (the default keeps 2).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
		hc = &http.Client{Timeout: DefaultTimeout, Transport: t}
	}
	if opts.WrapTransport != nil {
		wrapped := *hc
		wrapped.Transport = opts.WrapTransport(hc.Transport)
		hc = &wrapped
	}
	limit := rate.Limit(opts.RatePerSecond)
	if math.IsInf(opts.RatePerSecond, 1) {
		limit = rate.Inf
	}
	return &Client{
		base:   u,
		opts:   opts,
		hc:     hc,
		admin:  rate.NewLimiter(limit, opts.Burst),
		holder: rate.NewLimiter(limit, opts.Burst),
		sleep:  sleepCtx,
	}, nil
}

func applyDefaults(o *Options) error {
	switch {
	case o.RatePerSecond < 0 || math.IsNaN(o.RatePerSecond):
		return fmt.Errorf("kisi: rate per second %v must be positive", o.RatePerSecond)
	case o.Burst < 0:
		return fmt.Errorf("kisi: burst %d must not be negative", o.Burst)
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return errors.New("kisi: backoff must not be negative")
	}
	if o.RatePerSecond == 0 {
		o.RatePerSecond = DefaultRatePerSecond
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MinBackoff > o.MaxBackoff {
		return fmt.Errorf("kisi: min backoff %v exceeds max backoff %v", o.MinBackoff, o.MaxBackoff)
	}
	if o.IntegrationIdentifier == "" {
		o.IntegrationIdentifier = DefaultIntegrationIdentifier
	}
	return nil
}
