package lockctl

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestWrongAdminKeysAreThrottledPerAddress(t *testing.T) {
	e := newEnv(t, nil)
	const attacker, other = "192.0.2.50", "192.0.2.51"
	burst := defaultLoginFailRate.Burst
	for i := range 100 {
		rec := e.do(req{method: "GET", path: "/group_links", auth: "KISI-LOGIN guess" + strconv.Itoa(i), ip: attacker})
		if i < burst {
			wantError(t, rec, http.StatusUnauthorized, CodeNotAuthorized)
			continue
		}
		wantError(t, rec, http.StatusTooManyRequests, CodeRateLimited)
		if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("429 with Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
	// While wrong keys from that address are throttled, the right key still
	// works there: strangers sharing an address cannot stop the connector
	// revoking links.
	e.must(200, req{method: "GET", path: "/group_links", auth: admin(), ip: attacker})
	wantError(t, e.do(req{method: "GET", path: "/group_links", auth: "KISI-LOGIN guess", ip: attacker}), http.StatusTooManyRequests, CodeRateLimited)
	// Other addresses are not affected.
	wantError(t, e.do(req{method: "GET", path: "/group_links", auth: "KISI-LOGIN guess", ip: other}), http.StatusUnauthorized, CodeNotAuthorized)
	e.must(200, req{method: "GET", path: "/group_links", auth: admin(), ip: other})
	// Correct keys use up nothing.
	for range 3 * burst {
		e.must(200, req{method: "GET", path: "/group_links", auth: admin(), ip: other})
	}
	// The budget refills with time.
	e.clock.Set(e.clock.Now().Add(time.Duration(float64(time.Second) / defaultLoginFailRate.PerSecond)))
	e.must(200, req{method: "GET", path: "/group_links", auth: admin(), ip: attacker})
}
