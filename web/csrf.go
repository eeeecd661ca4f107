package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
)

// CSRF protection for the front desk.
//
// Signed-in forms carry the session's synchronizer token (stored with the
// session) in the hidden field csrfField. The login and first-run setup
// forms, which have no session yet, carry a random token that must also be
// in the preCSRFCookie (double submit); that cookie is HttpOnly and
// SameSite=Strict, so another site can neither read nor send it.

const (
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
	preCSRFCookie = "latchkey_csrf"
)

// errCSRF is the answer to a form without the right token.
var errCSRF = &latchkey.Error{Kind: latchkey.Forbidden, Msg: "the form's security token is missing or wrong; reload the page and try again"}

// unsafeMethod reports whether m changes state and so needs a token.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// anonymousForm reports whether path is a form posted before sign-in.
func anonymousForm(path string) bool {
	return path == "/admin/login" || path == "/admin/setup"
}

// checkCSRF rejects an unsafe request without the right token with 403.
// The queue dashboard's own API calls (JSON from its single-page app)
// cannot carry our token; they need a session and a same-origin request.
func (u *UI) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !unsafeMethod(r.Method) {
			return next(c)
		}
		if strings.HasPrefix(r.URL.Path, queuesPath+"/") || r.URL.Path == queuesPath {
			if !sameOrigin(r) {
				return errCSRF
			}
			return next(c)
		}
		got := c.FormValue(csrfField)
		if got == "" {
			got = r.Header.Get(csrfHeader)
		}
		var want string
		if anonymousForm(r.URL.Path) {
			if ck, err := c.Cookie(preCSRFCookie); err == nil {
				want = ck.Value
			}
		} else if s, ok := sessionOf(c); ok {
			want = s.CSRFToken
		}
		if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return errCSRF
		}
		return next(c)
	}
}

// sameOrigin reports whether a request's Origin (or, without one, its
// Sec-Fetch-Site) says it came from this site.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// preCSRFToken returns the anonymous form token, setting its cookie when
// the browser has none yet.
func (u *UI) preCSRFToken(c echo.Context) string {
	if ck, err := c.Cookie(preCSRFCookie); err == nil && len(ck.Value) >= 32 && len(ck.Value) <= 64 {
		return ck.Value
	}
	tok := randomToken(32)
	c.SetCookie(&http.Cookie{Name: preCSRFCookie, Value: tok, Path: "/admin", HttpOnly: true,
		Secure: u.secure(c), SameSite: http.SameSiteStrictMode, MaxAge: int((2 * time.Hour).Seconds())})
	return tok
}
