package kisi

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
)

// InProcess returns a RoundTripper that serves every request with h, in
// memory: the Client's own code path (headers, paging, retries, errors)
// against a controller in the same process, such as the bundled lockctl's
// own handler, without a socket and without any server's middleware in
// between. The address the Client names in X-Forwarded-For (the guest it
// acts for) becomes the request's peer address, so the controller's audit
// log and per-address limits see the guest; nothing from the network
// reaches this path.
func InProcess(h http.Handler) http.RoundTripper { return inProcess{h} }

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	in := r.Clone(r.Context())
	in.RemoteAddr = "127.0.0.1:0"
	if xff := in.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		parts := strings.Split(xff[len(xff)-1], ",")
		if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
			in.RemoteAddr = net.JoinHostPort(ip.String(), "0")
		}
		in.Header.Del("X-Forwarded-For")
	}
	in.RequestURI = r.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}
