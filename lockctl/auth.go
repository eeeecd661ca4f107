package lockctl

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

// principal is who made a request: an administrator (a login, or the
// bootstrap key when Login is nil), the holder of a group link, a user
// signed in with a login of theirs (User and Login set, Admin false) or a
// guest holding an access key (Guest and AccessKey set).
type principal struct {
	Admin     bool
	Login     *Login
	Link      *GroupLink
	User      *User
	Guest     *Guest
	AccessKey *AccessKey
	// ViaQR is true when the access key's QR token was presented.
	ViaQR bool
}

// person returns who a person credential speaks for, or nil for an
// administrator or a link holder.
func (p *principal) person() *person {
	switch {
	case p.User != nil:
		return &person{Type: assigneeUser, ID: p.User.ID, Name: p.User.Name, Email: p.User.Email, Enabled: p.User.AccessEnabled}
	case p.Guest != nil:
		enabled := p.AccessKey.LinkEnabled
		if p.ViaQR {
			enabled = p.AccessKey.QRCodeEnabled
		}
		return &person{Type: assigneeGuest, ID: p.Guest.ID, Name: p.Guest.Name, Email: p.Guest.Email, Enabled: enabled}
	}
	return nil
}

const (
	principalKey = "lockctl.principal"
	authErrKey   = "lockctl.auth_error"
	// viewKey holds the *accessView a group link was resolved under, so
	// that its unlock decides on the same access generation.
	viewKey = "lockctl.access_view"
)

var (
	errNoCredentials = &apiError{Status: http.StatusUnauthorized, Code: CodeNotAuthorized, Message: "Not authorized"}
	errBadLogin      = &apiError{Status: http.StatusUnauthorized, Code: CodeNotAuthorized, Message: "Not authorized"}
	errBadLink       = &apiError{Status: http.StatusUnauthorized, Code: CodeLinkInvalid, Message: "Link is invalid"}
	errBadAccessKey  = &apiError{Status: http.StatusUnauthorized, Code: CodeLinkInvalid, Message: "Access key is invalid"}
	errAdminOnly     = &apiError{Status: http.StatusForbidden, Code: CodeAccessDenied, Message: "Access denied"}
)

// authenticate resolves the Authorization header into a principal (or an
// authentication error) and stores both in the echo context. It never
// rejects by itself: the route's requirement decides, and the unlock route
// records failed attempts before answering.
func (c *Controller) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		p, v, err := c.resolveHeader(ec.Request().Context(), ec.Request().Header.Get(echo.HeaderAuthorization), addressKey(ec.RealIP()))
		if err != nil {
			ec.Set(authErrKey, err)
		} else {
			ec.Set(principalKey, p)
		}
		if v != nil {
			ec.Set(viewKey, v)
		}
		return next(ec)
	}
}

// resolveHeader resolves an Authorization header sent from address into
// a principal. A group link is read with the access generation (see
// linkView); the view it was read under comes back with it (nil for other
// credentials).
func (c *Controller) resolveHeader(ctx context.Context, header, address string) (*principal, *accessView, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return nil, nil, errNoCredentials
	}
	switch strings.ToUpper(scheme) {
	case "KISI-LOGIN":
		p, err := c.resolveLogin(ctx, address, cred)
		return p, nil, err
	case "KISI-GROUP-LINK":
		v, l, found, err := c.linkView(ctx, hashSecret(cred))
		if err != nil {
			return nil, nil, err
		}
		if !found {
			return nil, v, errBadLink
		}
		return &principal{Link: &l}, v, nil
	case "KISI-ACCESS-KEY":
		p, err := c.resolveAccessKey(ctx, cred)
		return p, nil, err
	}
	return nil, nil, errNoCredentials
}

// defaultLoginFailRate is how many wrong KISI-LOGIN keys one address may
// send: a burst of 10, then one every 5 s.
var defaultLoginFailRate = Rate{PerSecond: 0.2, Burst: 10}

// resolveLogin checks a KISI-LOGIN key sent from address. A right key is
// always taken, so strangers spending an address's budget cannot stop the
// connector revoking links from there; each wrong key takes a token from
// the address's budget, and with the budget spent a wrong key is answered
// 429. Keys are long and random (see docs/security.md), so a guesser learns
// nothing useful from the faster answer.
func (c *Controller) resolveLogin(ctx context.Context, address, cred string) (*principal, error) {
	refused := func() (*principal, error) {
		if ok, wait, _ := c.loginFails.reserve(address); !ok {
			return nil, &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
				Message: "Too many wrong API keys, retry in " + strconv.Itoa(int(wait/time.Second)) + " s", RetryAfter: wait}
		}
		return nil, errBadLogin
	}
	if c.opts.AdminAPIKey != "" && equalSecret(cred, c.opts.AdminAPIKey) {
		return &principal{Admin: true}, nil
	}
	l, err := c.store.loginBySecret(ctx, hashSecret(cred))
	switch {
	case latchkey.KindOf(err) == latchkey.NotFound:
		return refused()
	case err != nil:
		return nil, err
	}
	now := c.now()
	if !c.loginAlive(l, now) {
		return refused()
	}
	if l.LastUsedAt == nil || now.Sub(*l.LastUsedAt) >= loginTouchEvery {
		if err := c.store.touchLogin(ctx, l.ID, now); err != nil {
			return nil, err
		}
		l.LastUsedAt = ptr(utc(now))
	}
	if l.UserID != nil {
		u, err := c.store.user(ctx, *l.UserID)
		if latchkey.KindOf(err) == latchkey.NotFound {
			return nil, errBadLogin
		}
		if err != nil {
			return nil, err
		}
		return &principal{Login: &l, User: &u}, nil
	}
	return &principal{Admin: true, Login: &l}, nil
}

// resolveAccessKey finds the guest whose access key (link secret or QR
// token) is cred.
func (c *Controller) resolveAccessKey(ctx context.Context, cred string) (*principal, error) {
	k, viaQR, err := c.store.accessKeyBySecret(ctx, hashSecret(cred))
	if latchkey.KindOf(err) == latchkey.NotFound {
		return nil, errBadAccessKey
	}
	if err != nil {
		return nil, err
	}
	g, err := c.store.guest(ctx, k.GuestID)
	if latchkey.KindOf(err) == latchkey.NotFound {
		return nil, errBadAccessKey
	}
	if err != nil {
		return nil, err
	}
	return &principal{Guest: &g, AccessKey: &k, ViaQR: viaQR}, nil
}

// who returns the request's principal, or the authentication error.
func who(ec echo.Context) (*principal, error) {
	if p, ok := ec.Get(principalKey).(*principal); ok {
		return p, nil
	}
	if err, ok := ec.Get(authErrKey).(error); ok {
		return nil, err
	}
	return nil, errNoCredentials
}

// requireAdmin lets only KISI-LOGIN principals through: 401 without valid
// credentials, 403 for link holders.
func requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		p, err := who(ec)
		if err != nil {
			return err
		}
		if !p.Admin {
			return errAdminOnly
		}
		return next(ec)
	}
}

// requireAny lets any authenticated principal through.
func requireAny(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		if _, err := who(ec); err != nil {
			return err
		}
		return next(ec)
	}
}

// actor fills the actor and authentication fields of e from p.
func actor(e *Event, p *principal) {
	switch {
	case p == nil:
	case p.Link != nil:
		e.ActorType, e.ActorID, e.ActorName, e.ActorEmail = actorGroupLink, ptr(p.Link.ID), p.Link.Name, p.Link.Email
		e.AuthenticatedByType, e.AuthenticatedByID = authByGroupLink, ptr(p.Link.ID)
	case p.User != nil:
		e.ActorType, e.ActorID, e.ActorName, e.ActorEmail = actorUser, ptr(p.User.ID), p.User.Name, p.User.Email
		e.AuthenticatedByType, e.AuthenticatedByID = authByLogin, ptr(p.Login.ID)
	case p.Guest != nil:
		e.ActorType, e.ActorID, e.ActorName, e.ActorEmail = actorGuest, ptr(p.Guest.ID), p.Guest.Name, p.Guest.Email
		e.AuthenticatedByType, e.AuthenticatedByID = authByAccessKey, ptr(p.AccessKey.ID)
	case p.Login != nil:
		e.ActorType, e.ActorID, e.ActorName, e.ActorEmail = actorUser, ptr(p.Login.ID), p.Login.displayName(), p.Login.Email
		e.AuthenticatedByType, e.AuthenticatedByID = authByLogin, ptr(p.Login.ID)
	default:
		e.ActorType, e.ActorName, e.AuthenticatedByType = actorUser, "Administrator", authByLogin
	}
}

// requestEvent starts an event for the current request: actor from the
// principal (if any), client IP, user agent and time.
func (c *Controller) requestEvent(ec echo.Context, typ string) Event {
	e := Event{Type: typ, ClientIP: truncate(ec.RealIP(), 64), UserAgent: boundedUserAgent(ec.Request().UserAgent())}
	p, _ := who(ec)
	actor(&e, p)
	return e
}

// record stores e; a failure is logged, never returned, so that the answer
// to the client does not depend on the audit log being writable.
func (c *Controller) record(ec echo.Context, e Event) { c.recordEvent(ec.Request().Context(), e) }

// recordEvent is record outside an HTTP request.
func (c *Controller) recordEvent(ctx context.Context, e Event) {
	if err := c.store.addEvent(context.WithoutCancel(ctx), &e); err != nil {
		c.log.Error("record event", "type", e.Type, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
