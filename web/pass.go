package web

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/metrics"
)

// The guest pass page, GET /v/{pass}, and its unlock action,
// POST /v/{pass}/locks/{lock_id}/unlock.
//
// The pass token in the URL is the guest's only credential. It is derived,
// not stored: token = HMAC-SHA256(secret key, random 128-bit salt of the
// visit), 256 bits, base64url; only SHA-256(token) is kept for lookup (see
// connector.Service.Ingest and internal/secretbox). The controller link
// secrets behind a pass are sealed with AES-GCM and opened only to call the
// controller as the link holder. The token never reaches a log line (the
// request logger shortens /v/ paths) or a Referer header (Referrer-Policy:
// no-referrer on every /v/ response and in the page).

//go:embed templates/*.html
var templateFS embed.FS

var passTmpl = template.Must(template.New("pass.html").Funcs(template.FuncMap{
	"unix": func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.Unix()
	},
	"unixms": func(t time.Time) int64 { return t.UnixMilli() },
}).ParseFS(templateFS, "templates/pass.html"))

// Unlock outcomes a guest can see, by the controller's refusal.
var unlockMessages = map[connector.Refusal]string{
	connector.RefusedNotStarted:         "Your access has not started yet. The doors open for you when your visit begins.",
	connector.RefusedEnded:              "Your access has ended.",
	connector.RefusedRevoked:            "This pass no longer opens doors: it has been revoked. Please ask at the front desk.",
	connector.RefusedDoorOffline:        "This door is offline right now. Please ask at the front desk.",
	connector.RefusedNoAnswer:           "The door did not respond. Please try again or ask at the front desk.",
	connector.RefusedDoorLockedDown:     "This door is locked down. Please ask at the front desk.",
	connector.RefusedBuildingLockedDown: "This building is locked down. Please ask at the front desk.",
	connector.RefusedTooMany:            "Too many attempts. Please wait a few seconds and try again.",
}

// Messages for outcomes that are not a controller code.
const (
	msgUnlocked    = "Unlocked! Push the door now."
	msgPassEnded   = "This pass no longer opens doors."
	msgWrongDoor   = "This pass does not open this door."
	msgUnreachable = "The door system is not reachable right now. Please try again or ask at the front desk."
	msgUnknownPass = "This pass does not exist."
	msgInternal    = "Something went wrong. Please ask at the front desk."
)

// unlockOutcome turns an unlock error into an HTTP status and a message for
// the guest: 403 for a refusal, 429 for too many attempts, 503 when the
// door system could not be reached.
func unlockOutcome(err error) (int, string) {
	var ce *connector.ControllerError
	if errors.As(err, &ce) {
		if msg, ok := unlockMessages[ce.Refusal]; ok {
			switch {
			case ce.Status == http.StatusTooManyRequests:
				return http.StatusTooManyRequests, msg
			case ce.Status >= 500:
				return http.StatusServiceUnavailable, msg
			}
			return http.StatusForbidden, msg
		}
	}
	switch latchkey.KindOf(err) {
	case latchkey.TooMany:
		return http.StatusTooManyRequests, unlockMessages[connector.RefusedTooMany]
	case latchkey.NotFound:
		return http.StatusForbidden, msgWrongDoor
	case latchkey.Unauthorized:
		return http.StatusForbidden, msgPassEnded
	case latchkey.Forbidden:
		if errors.Is(err, connector.ErrPassEnded) {
			return http.StatusForbidden, msgPassEnded
		}
		return http.StatusForbidden, msgWrongDoor
	case latchkey.Unavailable:
		return http.StatusServiceUnavailable, msgUnreachable
	}
	return http.StatusInternalServerError, msgInternal
}

// Pass page states.
const (
	stateScheduled = "scheduled"
	stateActive    = "active"
	stateRevoked   = "revoked"   // at the desk, or refused by the block list
	stateDeparted  = "departed"  // signed out
	stateCancelled = "cancelled" // the invitation was withdrawn
	stateHeld      = "held"
	stateEnded     = "ended"
	stateNotFound  = "notfound"
)

type doorView struct {
	LockID    int64
	Name      string
	Note      string // "offline", "locked down" or ""
	Available bool
}

type passView struct {
	Token, Name, From, Until, Zone, State, Message string
	Place, Address, Host                           string
	Countdown                                      string
	MessageOK                                      bool
	Doors                                          []doorView
	QR                                             template.URL
	StartsAt, EndsAt, Now                          time.Time
	Usable                                         bool
	Nonce                                          string
}

// passState is what the page shows for a visit at now. The window decides
// between scheduled, active and ended, since the controller checks it at the
// instant of each unlock while the visit's status follows on the next sweep.
func passState(v connector.Visit, now time.Time) string {
	switch v.Status {
	case connector.StatusScheduled, connector.StatusActive:
		switch {
		case v.ValidFrom == nil || v.ValidUntil == nil:
			return string(v.Status)
		case !now.Before(*v.ValidUntil):
			return stateEnded
		case now.Before(*v.ValidFrom):
			return stateScheduled
		}
		return stateActive
	case connector.StatusRevoked:
		// The guest is told how access ended: thanked after a sign-out,
		// given the plain reason after a desk revoke, a cancelled
		// invitation or a refusal.
		f := v.Facts
		switch {
		case v.ManuallyRevoked || f.Denied:
			return stateRevoked
		case f.InviteRemoved:
			return stateCancelled
		case !f.SignedOutAt.IsZero():
			return stateDeparted
		}
		return stateRevoked
	case connector.StatusHeld:
		return stateHeld
	}
	return stateEnded
}

// renderPass renders the pass page for token with an optional outcome
// message. When the controller cannot list the doors the page still shows
// the window and says why the doors are missing: a link the controller no
// longer knows reads as revoked.
func (a *API) renderPass(c echo.Context, token string, status int, msg string, ok bool) error {
	ctx := c.Request().Context()
	p, err := a.svc.PassView(ctx, token)
	if errors.Is(err, connector.ErrPassNotFound) {
		return a.writePass(c, http.StatusNotFound, passView{State: stateNotFound})
	}
	if err != nil && p.Visit.ID == 0 {
		return err
	}
	now := a.svc.Now()
	v := p.Visit
	loc := time.UTC
	if l, lerr := time.LoadLocation(v.TimeZone); lerr == nil && v.TimeZone != "" {
		loc = l
	}
	view := passView{Token: token, Name: v.Name, Zone: loc.String(), Message: msg, MessageOK: ok, Now: now,
		State: passState(v, now), Place: v.LocationName, Address: v.LocationAddress, Host: v.HostName}
	if v.ValidFrom != nil && v.ValidUntil != nil {
		view.From = v.ValidFrom.In(loc).Format("Mon 2 Jan, 15:04")
		view.Until = v.ValidUntil.In(loc).Format("Mon 2 Jan, 15:04 MST")
		view.StartsAt, view.EndsAt = *v.ValidFrom, *v.ValidUntil
		view.Countdown = countdown(v.ValidFrom.Sub(now))
	}
	if err != nil {
		if latchkey.KindOf(err) == latchkey.Unauthorized {
			// The controller no longer knows the link: revoked there,
			// unless access had ended anyway.
			if view.State == stateActive || view.State == stateScheduled {
				view.State = stateRevoked
			}
		} else if view.Message == "" {
			a.log.Warn("pass doors", "visit_id", v.ID, "err", err)
			view.Message = "Your doors cannot be listed right now. Please reload in a moment or ask at the front desk."
			if status == http.StatusOK {
				status = http.StatusServiceUnavailable
			}
		}
		p.Doors, p.QRToken, p.QRImage = nil, "", nil
	}
	view.Usable = view.State == stateActive
	for _, d := range p.Doors {
		dv := doorView{LockID: d.LockID, Name: d.Name, Available: d.Available()}
		switch {
		case !d.Online:
			dv.Note = "offline"
		case d.LockedDown:
			dv.Note = "locked down"
		}
		view.Doors = append(view.Doors, dv)
	}
	if len(p.QRImage) > 0 && (view.State == stateActive || view.State == stateScheduled) {
		view.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(p.QRImage))
	}
	return a.writePass(c, status, view)
}

// writePass renders view under a Content-Security-Policy that allows only
// this page's own inline style and script (by nonce), inline images and
// requests to this origin.
func (a *API) writePass(c echo.Context, status int, view passView) error {
	view.Nonce = rand.Text()
	var b strings.Builder
	if err := passTmpl.Execute(&b, view); err != nil {
		return fmt.Errorf("render pass page: %w", err)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'nonce-"+view.Nonce+"'; script-src 'nonce-"+view.Nonce+"'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	return c.HTML(status, b.String())
}

// countdown renders d as "2h 5m", "5m 3s" or "40s", as the page's script
// does.
func countdown(d time.Duration) string {
	s := max(int64(d/time.Second), 0)
	h, m, x := s/3600, s%3600/60, s%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, x)
	}
	return fmt.Sprintf("%ds", x)
}

func (a *API) passPage(c echo.Context) error {
	return a.renderPass(c, c.Param("pass"), http.StatusOK, "", false)
}

// passUnlock answers JSON {"message"} for scripts, and re-renders the page
// with the outcome for a plain form POST (no JavaScript needed).
func (a *API) passUnlock(c echo.Context) error {
	token := c.Param("pass")
	lockID, err := pathID(c, "lock_id")
	if err != nil {
		return err
	}
	ctx := connector.WithClientInfo(c.Request().Context(), connector.ClientInfo{IP: c.RealIP(), UserAgent: c.Request().UserAgent()})
	err = a.svc.PassUnlock(ctx, token, lockID)
	status, msg := http.StatusOK, msgUnlocked
	switch {
	case errors.Is(err, connector.ErrPassNotFound):
		status, msg = http.StatusNotFound, msgUnknownPass
	case err != nil:
		status, msg = unlockOutcome(err)
		if status >= 500 {
			a.log.Warn("pass unlock", "lock_id", lockID, "err", err)
		}
	}
	switch {
	case err == nil:
		a.metrics.Unlock(metrics.OK)
	case status >= 500:
		a.metrics.Unlock(metrics.Failed)
	default:
		a.metrics.Unlock(metrics.Refused)
	}
	if status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", "5")
	}
	if wantsHTML(c) {
		return a.renderPass(c, token, status, msg, err == nil)
	}
	return c.JSON(status, map[string]string{"message": msg})
}

// wantsHTML reports whether the request is a browser's form submission
// rather than the page script's fetch (which asks for JSON).
func wantsHTML(c echo.Context) bool {
	accept := c.Request().Header.Get(echo.HeaderAccept)
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, echo.MIMEApplicationJSON)
}
