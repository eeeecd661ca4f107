package web

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/testenv"
)

func mustCIDRs(t *testing.T, cidrs ...string) []*net.IPNet {
	t.Helper()
	var nets []*net.IPNet
	for _, c := range cidrs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	return nets
}

// TestOnlyTrustedProxiesSetAddressAndScheme: X-Forwarded-For and
// X-Forwarded-Proto are believed from the configured proxies only, not from
// loopback or private-range peers (a guest on the building's Wi-Fi).
func TestOnlyTrustedProxiesSetAddressAndScheme(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{TrustedProxies: mustCIDRs(t, "10.0.0.1/32", "fd00::/64")})
	s.e.GET("/whoami", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()+" "+c.Scheme()) })
	tests := []struct {
		name, peer, xff, proto string
		want                   string
		hsts                   bool
	}{
		{name: "guest on the Wi-Fi", peer: "192.168.1.50:4000", xff: "8.8.8.8", proto: "https", want: "192.168.1.50 http"},
		{name: "loopback", peer: "127.0.0.1:4000", xff: "8.8.8.8", proto: "https", want: "127.0.0.1 http"},
		{name: "public client", peer: "203.0.113.9:4000", xff: "10.0.0.1", proto: "https", want: "203.0.113.9 http"},
		{name: "trusted proxy", peer: "10.0.0.1:4000", xff: "8.8.8.8", proto: "https", want: "8.8.8.8 https", hsts: true},
		{name: "trusted proxy, forged chain", peer: "10.0.0.1:4000", xff: "1.1.1.1, 192.168.1.50", want: "192.168.1.50 http"},
		{name: "trusted IPv6 proxy", peer: "[fd00::5]:4000", xff: "2001:db8::7", proto: "https", want: "2001:db8::7 https", hsts: true},
		{name: "trusted proxy, no header", peer: "10.0.0.1:4000", want: "10.0.0.1 http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
			req.RemoteAddr = tt.peer
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tt.hsts {
				t.Errorf("HSTS sent: %v, want %v", got, tt.hsts)
			}
		})
	}
}

// TestInProcessCallsCarryTheGuestAddress: the connector's in-process calls
// to the bundled controller report the guest's address; the same request
// arriving over the network from loopback does not.
func TestInProcessCallsCarryTheGuestAddress(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{})
	s.e.GET("/whoami", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()) })
	for _, tt := range []struct {
		name string
		h    http.Handler
		want string
	}{
		{"in process", s.InProcess(), "192.168.7.7"},
		{"over the network", s, "127.0.0.1"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		req.RemoteAddr = "127.0.0.1:0"
		req.Header.Set("X-Forwarded-For", "192.168.7.7")
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, req)
		if rec.Body.String() != tt.want {
			t.Errorf("%s: client address %q, want %q", tt.name, rec.Body.String(), tt.want)
		}
	}
}

// TestTrustedForwardingForAnotherHandler: a handler with its own address
// rules (the standalone lockctl) sees forwarding headers only from trusted
// proxies, reduced to the one address they vouch for.
func TestTrustedForwardingForAnotherHandler(t *testing.T) {
	var gotXFF, gotProto []string
	var gotIP string
	// The wrapped handler has echo's default address rules, which believe
	// X-Forwarded-For from private peers only, as the standalone lockctl's.
	inner := echo.New()
	inner.IPExtractor = echo.ExtractIPFromXFFHeader()
	inner.GET("/", func(c echo.Context) error {
		gotXFF, gotProto, gotIP = c.Request().Header.Values("X-Forwarded-For"), c.Request().Header.Values("X-Forwarded-Proto"), c.RealIP()
		return nil
	})
	h := TrustedForwarding(mustCIDRs(t, "10.0.0.1/32", "203.0.113.5/32"), inner)
	for _, tt := range []struct {
		peer      string
		wantIP    string
		wantProto []string
	}{
		{"192.168.1.50:1", "192.168.1.50", nil}, // not a proxy: its headers are dropped
		{"10.0.0.1:1", "192.168.1.50", []string{"https"}},
		{"203.0.113.5:1", "192.168.1.50", []string{"https"}}, // a public proxy too
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = tt.peer
		req.Header.Set("X-Forwarded-For", "8.8.8.8, 192.168.1.50")
		req.Header.Set("X-Forwarded-Proto", "https")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if gotIP != tt.wantIP || len(gotXFF) != 0 || len(gotProto) != len(tt.wantProto) {
			t.Errorf("peer %s: handler saw client %q, X-Forwarded-For %q, proto %q; want %q, none, %q", tt.peer, gotIP, gotXFF, gotProto, tt.wantIP, tt.wantProto)
		}
	}
}
