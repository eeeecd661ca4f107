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
	"github.com/latchkey/latchkey/internal/guesttext"
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
	// args makes a message's template data from name, value pairs.
	"args": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				m[k] = kv[i+1]
			}
		}
		return m
	},
}).ParseFS(templateFS, "templates/pass.html"))

// Unlock outcomes a guest can see, by the controller's refusal: message
// ids of the guest catalogues (internal/guesttext).
var unlockMessages = map[connector.Refusal]string{
	connector.RefusedNotStarted:         "unlock.not_started",
	connector.RefusedEnded:              "unlock.ended",
	connector.RefusedRevoked:            "unlock.revoked",
	connector.RefusedDoorOffline:        "unlock.door_offline",
	connector.RefusedNoAnswer:           "unlock.no_answer",
	connector.RefusedDoorLockedDown:     "unlock.door_locked_down",
	connector.RefusedBuildingLockedDown: "unlock.building_locked_down",
	connector.RefusedTooMany:            "unlock.too_many",
}

// Messages for outcomes that are not a controller code.
const (
	msgUnlocked     = "unlock.ok"
	msgPassEnded    = "unlock.pass_ended"
	msgWrongDoor    = "unlock.wrong_door"
	msgUnreachable  = "unlock.unreachable"
	msgUnknownPass  = "unlock.unknown_pass"
	msgSettingUp    = "unlock.setting_up"
	msgKeyElsewhere = "unlock.key_with_guest"
	msgInternal     = "unlock.internal"
	msgNoDoors      = "pass.doors.unavailable"
)

// unlockOutcome turns an unlock error into an HTTP status and a message id
// for the guest: 403 for a refusal, 429 for too many attempts, 503 when the
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
	if errors.Is(err, connector.ErrKeyWithGuest) {
		return http.StatusForbidden, msgKeyElsewhere
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
	stateRevoked   = "revoked"   // at the desk, or the link gone on the controller
	stateDenied    = "denied"    // refused by the block list, or denied at the desk
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
	// Txt is the page's text in the guest's language.
	Txt                              guesttext.Text
	Token, Name, Window, Zone, State string
	Message                          string
	Place, Address, Host             string
	Countdown                        string
	// StateText says what the pass does now; for a scheduled pass it is
	// split around the live countdown (StateText, countdown, StateAfter).
	StateText, StateAfter string
	ActiveText            string
	MessageOK             bool
	Doors                 []doorView
	QR                    template.URL
	StartsAt, EndsAt, Now time.Time
	Usable                bool
	// KeyNote says the doors open with a key the door system sent the
	// guest itself, not from this page (connector.Pass.KeyWithGuest).
	KeyNote string
	Nonce   string
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
		case v.ManuallyRevoked:
			return stateRevoked
		case f.Denied:
			return stateDenied
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

// passText is the guest's language: the visit's location's locale, else
// the browser's Accept-Language, else English.
func passText(c echo.Context, locale string) guesttext.Text {
	al := c.Request().Header.Get("Accept-Language")
	if len(al) > 200 {
		al = al[:200]
	}
	return guesttext.For(locale, al)
}

// renderPass renders the pass page for token with an optional outcome
// message (a message id). When the controller cannot list the doors the page still shows
// the window and says why the doors are missing: a link the controller no
// longer knows reads as revoked.
func (a *API) renderPass(c echo.Context, token string, status int, msg string, ok bool) error {
	ctx := c.Request().Context()
	p, err := a.svc.PassView(ctx, token)
	if errors.Is(err, connector.ErrPassNotFound) {
		view := passView{Txt: passText(c, ""), State: stateNotFound, Message: msg}
		return a.writePass(c, http.StatusNotFound, view)
	}
	if err != nil && p.Visit.ID == 0 {
		return err
	}
	now := a.svc.Now()
	v := p.Visit
	txt := passText(c, v.Locale)
	loc := zones.load(v.TimeZone)
	if loc == nil {
		loc = time.UTC
	}
	view := passView{Txt: txt, Token: token, Name: v.Name, Zone: loc.String(), Message: msg, MessageOK: ok, Now: now,
		State: passState(v, now), Place: v.LocationName, Address: v.LocationAddress, Host: v.HostName}
	var from, until string
	if v.ValidFrom != nil && v.ValidUntil != nil {
		view.Window = txt.Window(*v.ValidFrom, *v.ValidUntil, loc)
		from = txt.T("datetime", map[string]any{"Date": txt.Date(*v.ValidFrom, loc), "Time": txt.Clock(*v.ValidFrom, loc)})
		until = txt.T("datetime", map[string]any{"Date": txt.Date(*v.ValidUntil, loc), "Time": txt.Clock(*v.ValidUntil, loc)}) +
			" " + zoneAbbrev(*v.ValidUntil, loc)
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
			view.Message = msgNoDoors
			if status == http.StatusOK {
				status = http.StatusServiceUnavailable
			}
		}
		p.Doors, p.QRToken, p.QRImage = nil, "", nil
	}
	view.ActiveText = txt.T("pass.state.active", map[string]any{"Until": until})
	switch view.State {
	case stateScheduled:
		// The countdown is live: the sentence is cut around it.
		const mark = "\x00"
		parts := strings.SplitN(txt.T("pass.state.scheduled", map[string]any{"Countdown": mark, "From": from}), mark, 2)
		view.StateText = parts[0]
		if len(parts) == 2 {
			view.StateAfter = parts[1]
		}
	case stateActive:
		view.StateText = view.ActiveText
	default:
		view.StateText = txt.T("pass.state."+view.State, nil)
	}
	view.Usable = view.State == stateActive
	if p.KeyWithGuest {
		view.Usable, view.KeyNote = false, txt.T("pass.doors.key_with_guest", nil)
	}
	for _, d := range p.Doors {
		dv := doorView{LockID: d.LockID, Name: d.Name, Available: d.Available()}
		switch {
		case !d.Online:
			dv.Note = txt.T("pass.door.offline", nil)
		case d.LockedDown:
			dv.Note = txt.T("pass.door.lockeddown", nil)
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
	if view.Message != "" {
		view.Message = view.Txt.T(view.Message, nil)
	}
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

// zoneAbbrev names loc at t: its abbreviation ("CET"), or its IANA name
// where the zone has none ("+06" says less than "Asia/Dhaka").
func zoneAbbrev(t time.Time, loc *time.Location) string {
	z := t.In(loc).Format("MST")
	if z != "" && (z[0] == '+' || z[0] == '-') {
		return loc.String()
	}
	return z
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
	case errors.Is(err, connector.ErrPassSettingUp):
		status, msg = http.StatusConflict, msgSettingUp
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
	switch status {
	case http.StatusTooManyRequests:
		c.Response().Header().Set("Retry-After", "5")
	case http.StatusConflict:
		c.Response().Header().Set("Retry-After", "1")
	}
	if wantsHTML(c) {
		return a.renderPass(c, token, status, msg, err == nil)
	}
	// The page's script names the page's language in Accept-Language.
	return c.JSON(status, map[string]string{"message": passText(c, "").T(msg, nil)})
}

// wantsHTML reports whether the request is a browser's form submission
// rather than the page script's fetch (which asks for JSON).
func wantsHTML(c echo.Context) bool {
	accept := c.Request().Header.Get(echo.HeaderAccept)
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, echo.MIMEApplicationJSON)
}
