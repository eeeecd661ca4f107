package kisi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/fixtures"
)

const (
	testAPIKey = "test-api-key-0123456789"
	testSecret = "link-secret-abcdef0123456789"
)

// fixture returns a captured Kisi payload.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return fixtures.Kisi(name)
}

// misc returns one entry of kisi-misc-responses.json.
func misc(t testing.TB, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(fixture(t, "kisi-misc-responses.json"), &m); err != nil {
		t.Fatalf("parse kisi-misc-responses.json: %v", err)
	}
	v, ok := m[key]
	if !ok {
		t.Fatalf("kisi-misc-responses.json has no %q", key)
	}
	return v
}

type seenRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// server is an httptest server that records requests and answers them with
// handle, called with the 1-based request number.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seenRequest
}

func newServer(t testing.TB, handle func(w http.ResponseWriter, r *http.Request, n int)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seenRequest{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body,
		})
		n := len(s.reqs)
		s.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.reqs...)
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// newTestClient returns a client for url with test defaults: a fixed API
// key, no client-side rate limit and millisecond backoff. opts overrides.
func newTestClient(t testing.TB, url string, opts Options) *Client {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testAPIKey
	}
	if opts.RatePerSecond == 0 {
		opts.RatePerSecond = math.Inf(1)
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Millisecond
	}
	cl, err := New(url, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	return cl
}

// sleeps replaces cl's retry wait with one that records the durations and
// returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func recordSleeps(cl *Client) *sleeps {
	s := &sleeps{}
	cl.sleep = func(ctx context.Context, d time.Duration) error {
		s.mu.Lock()
		s.d = append(s.d, d)
		s.mu.Unlock()
		return ctx.Err()
	}
	return s
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// checkKind fails unless err has kind want.
func checkKind(t testing.TB, err error, want latchkey.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want kind %v", want)
	}
	if got := latchkey.KindOf(err); got != want {
		t.Fatalf("got kind %v, want %v (err: %v)", got, want, err)
	}
}

// controllerErr returns the *connector.ControllerError in err's chain.
func controllerErr(t testing.TB, err error) *connector.ControllerError {
	t.Helper()
	var ce *connector.ControllerError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v has no *connector.ControllerError cause", err)
	}
	return ce
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func timeRef(t time.Time) *time.Time { return &t }
