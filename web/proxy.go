package web

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// forwardingHeaders are the request headers through which a proxy reports
// the client's address and scheme. They are removed from requests whose
// peer is not a trusted proxy, so echo's RealIP and Scheme cannot be told
// a client-chosen value.
var forwardingHeaders = []string{
	echo.HeaderXForwardedFor, echo.HeaderXRealIP, echo.HeaderXForwardedProto,
	echo.HeaderXForwardedProtocol, echo.HeaderXForwardedSsl, echo.HeaderXUrlScheme, "Forwarded",
}

// inProcessKey marks requests this process sends to itself (see
// Server.InProcess). Its type is unexported, so no request arriving over
// the network can carry it.
type inProcessKey struct{}

func inProcess(r *http.Request) bool {
	v, _ := r.Context().Value(inProcessKey{}).(bool)
	return v
}

// proxyTrust knows which peers may report the client's address and scheme.
type proxyTrust struct {
	nets []*net.IPNet
	xff  echo.IPExtractor
}

func newProxyTrust(nets []*net.IPNet) *proxyTrust {
	// Nothing is trusted by default: not loopback, link-local or private
	// ranges (a guest on the building's Wi-Fi is a private peer).
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range nets {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return &proxyTrust{nets: nets, xff: echo.ExtractIPFromXFFHeader(opts...)}
}

// trusted reports whether the peer of r is a trusted proxy.
func (p *proxyTrust) trusted(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the echo IPExtractor: the peer's address, or the nearest
// untrusted address in X-Forwarded-For when the peer is a trusted proxy.
// A call from this process to itself names the guest it acts for in its
// X-Forwarded-For, set by our own client.
func (p *proxyTrust) clientIP(r *http.Request) string {
	if inProcess(r) {
		xff := r.Header.Values(echo.HeaderXForwardedFor)
		if len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	return p.xff(r)
}

// strip removes the forwarding headers of a request not sent by a trusted
// proxy (or by this process).
func (p *proxyTrust) strip(r *http.Request) {
	if inProcess(r) || p.trusted(r) {
		return
	}
	for _, h := range forwardingHeaders {
		r.Header.Del(h)
	}
}

// InProcess returns the server's handler for this process's calls to
// itself (the connector driving the bundled controller in memory). Their
// X-Forwarded-For, set by our own client to the guest it acts for, is
// believed; the same header over the network is not.
func (s *Server) InProcess() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), inProcessKey{}, true)))
	})
}

// TrustedForwarding wraps h, a handler with address rules of its own (the
// standalone lockctl), so that forwarding headers reach it only from the
// trusted proxies. A request a trusted proxy forwarded reaches h from the
// one client address it vouches for: that becomes the request's peer
// address (whatever address rules h has, public proxies included), and
// X-Forwarded-For is removed. It is safe for concurrent use.
func TrustedForwarding(trusted []*net.IPNet, h http.Handler) http.Handler {
	p := newProxyTrust(trusted)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.trusted(r) {
			p.strip(r)
		} else if r.Header.Get(echo.HeaderXForwardedFor) != "" {
			r.RemoteAddr = net.JoinHostPort(p.xff(r), "0")
			r.Header.Del(echo.HeaderXForwardedFor)
		}
		h.ServeHTTP(w, r)
	})
}
