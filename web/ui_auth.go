package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/accounts"
)

const sessionCookie = "latchkey_session"

// maxEmailBytes is the longest email an account can have (RFC 5321).
const maxEmailBytes = 320

// Keys of request-scoped values on the echo context, read through the
// typed accessors below.
const (
	ctxUser    = "ui.user"
	ctxSession = "ui.session"
	ctxPreCSRF = "ui.pre_csrf"
)

func userOf(c echo.Context) (User, bool) {
	u, ok := c.Get(ctxUser).(User)
	return u, ok
}

func sessionOf(c echo.Context) (Session, bool) {
	s, ok := c.Get(ctxSession).(Session)
	return s, ok
}

// secure reports whether cookies should be Secure: behind TLS, or when the
// public URL is https.
func (u *UI) secure(c echo.Context) bool {
	return u.opts.SecureCookies || c.Scheme() == "https"
}

// loadSession puts the signed-in user, if any, on the context.
func (u *UI) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		s, usr, err := u.accts.SessionByToken(c.Request().Context(), ck.Value)
		if errors.Is(err, accounts.ErrNoSession) {
			u.clearSessionCookie(c)
			return next(c)
		}
		if err != nil {
			return err
		}
		c.Set(ctxSession, s)
		c.Set(ctxUser, usr)
		return next(c)
	}
}

// requireUser sends a visitor without a session to the login page.
func (u *UI) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := userOf(c); ok {
			return next(c)
		}
		target := "/admin/login"
		if r := c.Request(); r.Method == http.MethodGet && r.URL.Path != "/admin" && r.URL.Path != "/admin/" {
			target += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
		return c.Redirect(http.StatusSeeOther, target)
	}
}

// requireAdmin refuses users who are not admins.
func (u *UI) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if usr, ok := userOf(c); ok && usr.Role == RoleAdmin {
			return next(c)
		}
		return latchkey.Errorf(latchkey.Forbidden, "only admins may open this page")
	}
}

// canSimulate reports whether usr may post simulated visitor events.
func (u *UI) canSimulate(usr User) bool { return usr.Role == RoleAdmin || u.opts.Demo }

func (u *UI) setSessionCookie(c echo.Context, token string) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: token, Path: "/admin", HttpOnly: true,
		Secure: u.secure(c), SameSite: http.SameSiteLaxMode, MaxAge: int(SessionTTL.Seconds())})
}

func (u *UI) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", HttpOnly: true,
		Secure: u.secure(c), SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// safeNext keeps a post-login redirect on our own pages.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin"
	}
	return next
}

type loginForm struct {
	Email, Next, Error string
}

func (u *UI) loginPage(c echo.Context) error {
	if _, ok := userOf(c); ok {
		return c.Redirect(http.StatusSeeOther, "/admin")
	}
	n, err := u.accts.CountUsers(c.Request().Context())
	if err != nil {
		return err
	}
	if n == 0 {
		return c.Redirect(http.StatusSeeOther, "/admin/setup")
	}
	c.Set(ctxPreCSRF, u.preCSRFToken(c))
	return u.render(c, http.StatusOK, "login", "Sign in", loginForm{Next: safeNext(c.QueryParam("next"))})
}

func (u *UI) login(c echo.Context) error {
	email := strings.ToLower(strings.TrimSpace(c.FormValue("email")))
	if len(email) > maxEmailBytes {
		// No account has such an email; keep the form and logs small.
		email = email[:maxEmailBytes]
	}
	form := loginForm{Email: email, Next: safeNext(c.FormValue("next"))}
	again := func(status int, msg string) error {
		form.Error = msg
		c.Set(ctxPreCSRF, u.preCSRFToken(c))
		return u.render(c, status, "login", "Sign in", form)
	}
	if !u.logins.allow(c.RealIP(), email) {
		c.Response().Header().Set("Retry-After", "60")
		return again(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a minute and try again.")
	}
	ctx := c.Request().Context()
	usr, err := u.accts.Authenticate(ctx, email, c.FormValue("password"))
	if errors.Is(err, accounts.ErrBadCredentials) {
		u.log.Info("login failed", "remote_ip", c.RealIP())
		return again(http.StatusUnauthorized, "Wrong email or password.")
	}
	if err != nil {
		return err
	}
	err = u.startSession(c, usr, form.Next)
	if errors.Is(err, accounts.ErrBadCredentials) { // the password changed meanwhile
		return again(http.StatusUnauthorized, "Wrong email or password.")
	}
	return err
}

func (u *UI) startSession(c echo.Context, usr User, next string) error {
	tok, _, err := u.accts.NewSession(c.Request().Context(), usr)
	if err != nil {
		return err
	}
	u.setSessionCookie(c, tok)
	u.log.Info("signed in", "user_id", usr.ID, "role", usr.Role)
	return c.Redirect(http.StatusSeeOther, next)
}

func (u *UI) logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := u.accts.DeleteSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	u.clearSessionCookie(c)
	return c.Redirect(http.StatusSeeOther, "/admin/login")
}

type setupForm struct {
	Email, Token, Error string
	MinLength           int
}

// errSetupToken refuses first-run setup without the one-time token.
var errSetupToken = latchkey.Errorf(latchkey.Forbidden,
	"first-run setup needs the one-time link that latchkey serve printed at start-up (/admin/setup?token=…; the token is in data/setup-token)")

// setupTokenOK reports, in constant time, whether tok is the live
// first-run token. There is none before it is configured or after setup.
func (u *UI) setupTokenOK(tok string) bool {
	u.setupMu.Lock()
	want := u.setupHash
	u.setupMu.Unlock()
	got := sha256.Sum256([]byte(tok))
	return want != [32]byte{} && tok != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// endSetup kills the first-run token.
func (u *UI) endSetup() {
	u.setupMu.Lock()
	u.setupHash = [32]byte{}
	u.setupMu.Unlock()
	if u.opts.SetupDone != nil {
		u.opts.SetupDone()
	}
}

// setupPage is the first-run page that creates the first admin; it exists
// only while there is no user, and only for the holder of the token.
func (u *UI) setupPage(c echo.Context) error {
	n, err := u.accts.CountUsers(c.Request().Context())
	if err != nil {
		return err
	}
	if n > 0 {
		return c.Redirect(http.StatusSeeOther, "/admin/login")
	}
	tok := c.QueryParam("token")
	if !u.setupTokenOK(tok) {
		return errSetupToken
	}
	c.Set(ctxPreCSRF, u.preCSRFToken(c))
	return u.render(c, http.StatusOK, "setup", "Set up latchkey", setupForm{Token: tok, MinLength: MinPasswordLength})
}

func (u *UI) setup(c echo.Context) error {
	email := c.FormValue("email")
	form := setupForm{Email: email, Token: c.FormValue("token"), MinLength: MinPasswordLength}
	if !u.setupTokenOK(form.Token) {
		return errSetupToken
	}
	if !u.logins.allow(c.RealIP(), "setup") {
		return latchkey.Errorf(latchkey.TooMany, "too many attempts; wait a minute")
	}
	pw := c.FormValue("password")
	if pw != c.FormValue("password_confirm") {
		form.Error = "The two passwords differ."
		c.Set(ctxPreCSRF, u.preCSRFToken(c))
		return u.render(c, http.StatusBadRequest, "setup", "Set up latchkey", form)
	}
	usr, err := u.accts.CreateFirstUser(c.Request().Context(), email, pw)
	if errors.Is(err, accounts.ErrSetupDone) {
		u.endSetup()
		return c.Redirect(http.StatusSeeOther, "/admin/login")
	}
	if latchkey.KindOf(err) == latchkey.Invalid {
		form.Error = latchkey.Message(err)
		c.Set(ctxPreCSRF, u.preCSRFToken(c))
		return u.render(c, http.StatusBadRequest, "setup", "Set up latchkey", form)
	}
	if err != nil {
		return err
	}
	u.endSetup()
	u.log.Info("first admin created", "user_id", usr.ID)
	return u.startSession(c, usr, "/admin")
}

// loginLimiter limits sign-in attempts per client address, and per
// account and address together: guessing from one address is slow, and
// nobody's failures elsewhere can lock an account's owner out. Both tables
// are bounded (least recently used dropped) and keyed by hashes, so
// neither the number nor the size of attacker-chosen emails can grow them.
// It is safe for concurrent use.
type loginLimiter struct {
	now    func() time.Time
	byIP   *limiterTable
	byAcct *limiterTable
}

// Per address: 20 attempts, then one every 6 s; per account and address:
// 5, then one every 20 s. Each table keeps at most loginTableSize buckets.
var (
	ipRate, ipBurst       = rate.Every(6 * time.Second), 20
	emailRate, emailBurst = rate.Every(20 * time.Second), 5
	loginTableSize        = 10_000
)

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, byIP: newLimiterTable(ipRate, ipBurst, loginTableSize), byAcct: newLimiterTable(emailRate, emailBurst, loginTableSize)}
}

// allow reports whether another attempt from ip for account may go ahead,
// and counts it.
func (l *loginLimiter) allow(ip, account string) bool {
	now := l.now()
	addr := addressKey(ip)
	ipOK := l.byIP.allow(now, addr)
	acctOK := l.byAcct.allow(now, addr, account)
	return ipOK && acctOK
}
