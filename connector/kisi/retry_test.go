package kisi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
)

func TestRetryAfter429(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func() string
		min, max   time.Duration
	}{
		{name: "seconds", retryAfter: func() string { return "2" }, min: 2 * time.Second, max: 2 * time.Second},
		{
			name:       "http date",
			retryAfter: func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) },
			min:        time.Second, max: 3 * time.Second,
		},
		{name: "absent", retryAfter: func() string { return "" }, min: 500 * time.Microsecond, max: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					if v := tt.retryAfter(); v != "" {
						w.Header().Set("Retry-After", v)
					}
					writeJSON(w, http.StatusTooManyRequests, []byte(`{"error":"Too many requests","code":"ffffff"}`))
					return
				}
				w.Header().Set("X-Collection-Range", "*/0")
				writeJSON(w, http.StatusOK, []byte(`[]`))
			})
			cl := newTestClient(t, srv.URL, Options{})
			waits := recordSleeps(cl)
			if _, err := cl.ListGroups(context.Background()); err != nil {
				t.Fatalf("ListGroups: %v", err)
			}
			if n := srv.count(); n != 2 {
				t.Errorf("got %d requests, want 2", n)
			}
			w := waits.all()
			if len(w) != 1 || w[0] < tt.min || w[0] > tt.max {
				t.Errorf("waits = %v, want one in [%v, %v]", w, tt.min, tt.max)
			}
		})
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "120")
		writeJSON(w, http.StatusTooManyRequests, []byte(`{"error":"Too many requests","code":"ffffff"}`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	waits := recordSleeps(cl)
	_, err := cl.ListGroups(context.Background())
	checkKind(t, err, latchkey.TooMany)
	if n, w := srv.count(), waits.all(); n != 1 || len(w) != 0 {
		t.Errorf("got %d requests and waits %v, want 1 request and no wait", n, w)
	}
}

func Test429Exhausted(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusTooManyRequests, []byte(`{"error":"Too many requests","code":"ffffff"}`))
	})
	cl := newTestClient(t, srv.URL, Options{MaxRetries: 3})
	recordSleeps(cl)
	err := cl.DeleteLink(context.Background(), 42)
	checkKind(t, err, latchkey.TooMany)
	if n := srv.count(); n != 4 {
		t.Errorf("got %d requests, want 4", n)
	}
}

func Test5xxRetried(t *testing.T) {
	statuses := []int{http.StatusServiceUnavailable, http.StatusBadGateway}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= len(statuses) {
			writeJSON(w, statuses[n-1], []byte(`<html>bad gateway</html>`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	cl := newTestClient(t, srv.URL, Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	waits := recordSleeps(cl)
	if err := cl.DeleteLink(context.Background(), 42); err != nil {
		t.Fatalf("DeleteLink: %v", err)
	}
	if n := srv.count(); n != 3 {
		t.Errorf("got %d requests, want 3", n)
	}
	w := waits.all()
	if len(w) != 2 {
		t.Fatalf("waits = %v, want 2", w)
	}
	// Equal jitter: retry n waits in [d/2, d] with d = 100ms << n.
	for n, got := range w {
		d := 100 * time.Millisecond << n
		if got < d/2 || got > d {
			t.Errorf("wait %d = %v, want in [%v, %v]", n, got, d/2, d)
		}
	}
}

func Test5xxExhausted(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusInternalServerError, []byte(`{"error":"Unexpected error","code":"ffffff"}`))
	})
	cl := newTestClient(t, srv.URL, Options{MaxRetries: 2})
	_, err := cl.ListLinks(context.Background(), 12)
	checkKind(t, err, latchkey.Unavailable)
	if got := controllerErr(t, err); got.Status != 500 || got.Code != "ffffff" {
		t.Errorf("controller error = %+v, want status 500 code ffffff", got)
	}
	if got, wantMsg := latchkey.Message(err), "controller unavailable for the links of group 12: Unexpected error"; got != wantMsg {
		t.Errorf("public message = %q, want %q", got, wantMsg)
	}
	if n := srv.count(); n != 3 {
		t.Errorf("got %d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestCancelStopsRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 {
			cancel()
		}
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"down","code":"fac001"}`))
	})
	// Real waits, long enough that ten retries would take seconds.
	cl := newTestClient(t, srv.URL, Options{MaxRetries: 10, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	start := time.Now()
	err := cl.DeleteLink(ctx, 42)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled in the chain", err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("got %d requests, want 2", n)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v after cancel, want prompt return", el)
	}
}

func TestDeadlineShorterThanRetryAfter(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusTooManyRequests, []byte(`{"error":"slow down","code":"ffffff"}`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	waits := recordSleeps(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := cl.DeleteLink(ctx, 42)
	checkKind(t, err, latchkey.TooMany)
	if n, w := srv.count(), waits.all(); n != 1 || len(w) != 0 {
		t.Errorf("got %d requests and waits %v, want 1 request and no wait", n, w)
	}
}

// TestRateLimit checks that requests are spaced by the client-side limit:
// n requests at r per second with burst 1 take at least (n-1)/r, however
// they are issued. Only the lower bound is asserted; it cannot flake.
func TestRateLimit(t *testing.T) {
	const (
		perSecond = 40.0
		n         = 6
	)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.WriteHeader(http.StatusNoContent)
	})
	minTotal := time.Duration(float64(n-1) / perSecond * float64(time.Second))
	for _, concurrent := range []bool{false, true} {
		cl := newTestClient(t, srv.URL, Options{RatePerSecond: perSecond})
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			del := func() {
				if err := cl.DeleteLink(context.Background(), int64(i)); err != nil {
					t.Errorf("DeleteLink(%d): %v", i, err)
				}
			}
			if !concurrent {
				del()
				continue
			}
			wg.Go(del)
		}
		wg.Wait()
		// 1% slack covers float rounding in the limiter's arithmetic.
		if el := time.Since(start); el < minTotal*99/100 {
			t.Errorf("concurrent=%v: %d requests took %v, want at least %v", concurrent, n, el, minTotal)
		}
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"Fri, 01 May 2026 12:00:10 GMT", 10 * time.Second, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("Retry-After", tt.value)
		}
		got, ok := retryAfter(h, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	cl := newTestClient(t, "http://controller.invalid", Options{MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second})
	caps := []time.Duration{200e6, 400e6, 800e6, 1600e6, 3200e6, 5e9, 5e9, 5e9}
	for n, d := range caps {
		for range 20 {
			if b := cl.backoff(n); b < d/2 || b > d {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, b, d/2, d)
			}
		}
	}
	if b := cl.backoff(100); b < 2500*time.Millisecond || b > 5*time.Second {
		t.Errorf("backoff(100) = %v, want capped at 5s", b)
	}
}
