package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/mappings"
)

//go:embed templates/ui/*.html static/*
var uiFS embed.FS

// queuesPath is where the queue dashboard is mounted.
const queuesPath = "/admin/queues"

// QueueStats are queue depths summed over every queue, for the health panel.
type QueueStats struct {
	Pending, Active, Scheduled, Retry, Archived int
}

// UIOptions tunes the front desk; the zero value works.
type UIOptions struct {
	// Demo lets front-desk users (not only admins) simulate visitors.
	Demo bool
	// SecureCookies marks cookies Secure even when the request itself is
	// plain HTTP (set it when LATCHKEY_PUBLIC_URL is https behind a proxy).
	SecureCookies bool
	// Controller is read for door events, door status and minted keys;
	// nil: those views say so.
	Controller Controller
	// QueueStats reports queue depths for the health panel; nil hides them.
	QueueStats func(ctx context.Context) (QueueStats, error)
	// ClockOffset reports the database's clock minus this process's, for
	// the health panel; nil hides it.
	ClockOffset func() time.Duration
	// Queues is the queue dashboard, served to admins at /admin/queues;
	// nil hides it.
	Queues http.Handler
	// TimeZone is the IANA zone that decides what "today" is and the
	// default zone of previews and simulations (default UTC).
	TimeZone string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SetupToken is the one-time token /admin/setup asks for while no
	// user exists. Empty closes first-run setup (accounts are then made
	// with "latchkey users create").
	SetupToken string
	// SetupDone, when set, is called once the first admin exists, so the
	// token's file can be removed.
	SetupDone func()
}

// UI is the front desk: server-rendered pages under /admin for staff to
// map flows, watch and act on today's visitors and check operations. It is
// safe for concurrent use.
type UI struct {
	log      *slog.Logger
	accts    *Accounts
	svc      *connector.Service
	maps     *mappings.Store
	groups   GroupLister
	outbox   *mail.Outbox
	opts     UIOptions
	zone     *time.Location
	pages    map[string]*template.Template
	ctrl     Controller
	logins   *loginLimiter
	gatherer prometheus.Gatherer

	// setupMu guards setupHash: the SHA-256 of the first-run token, zero
	// once setup is done (or when there never was a token).
	setupMu   sync.Mutex
	setupHash [32]byte

	cacheMu    sync.Mutex
	groupCache cached[[]connector.Group]
	doorCache  cached[map[int64][]door]
}

// cached is a value with the time it was fetched.
type cached[T any] struct {
	at  time.Time
	val T
}

// NewUI returns the front desk. outbox is nil when mail goes out over SMTP.
func NewUI(log *slog.Logger, accts *Accounts, svc *connector.Service, maps *mappings.Store, groups GroupLister, outbox *mail.Outbox, opts UIOptions) (*UI, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	zone := time.UTC
	if opts.TimeZone != "" {
		var err error
		if zone, err = time.LoadLocation(opts.TimeZone); err != nil {
			return nil, fmt.Errorf("time zone %q: %w", opts.TimeZone, err)
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u := &UI{log: log.With("component", "ui"), accts: accts, svc: svc, maps: maps, groups: groups, outbox: outbox,
		opts: opts, zone: zone, pages: pages, logins: newLoginLimiter(opts.Now)}
	if opts.SetupToken != "" {
		u.setupHash = sha256.Sum256([]byte(opts.SetupToken))
	}
	u.ctrl = opts.Controller
	return u, nil
}

// parsePages parses each page together with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(uiFS, "templates/ui/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/ui/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New(base).Funcs(uiFuncs).Funcs(deskFuncs).ParseFS(uiFS, "templates/ui/layout.html", "templates/ui/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// Register mounts the front desk under /admin on s.
func (u *UI) Register(s *Server) {
	u.gatherer = s.Registry()
	registerFavicon(s)
	g := s.Group("/admin", u.htmlErrors, u.securityHeaders, u.loadSession, u.checkCSRF)
	static, _ := fs.Sub(uiFS, "static")
	g.GET("/static/*", echo.WrapHandler(http.StripPrefix("/admin/static/", staticHandler(static))))

	g.GET("/login", u.loginPage)
	g.POST("/login", u.login)
	g.GET("/setup", u.setupPage)
	g.POST("/setup", u.setup)
	g.POST("/logout", u.logout, u.requireUser)

	g.GET("", u.visitsPage, u.requireUser)
	g.GET("/", u.visitsPage, u.requireUser)
	g.GET("/visits/rows", u.visitRows, u.requireUser)
	g.GET("/visits/:id", u.visitPage, u.requireUser)
	g.GET("/visits/:id/live", u.visitLive, u.requireUser)
	g.GET("/visits/:id/qr", u.visitQR, u.requireUser)
	g.POST("/visits/:id/revoke", u.revoke, u.requireUser)
	g.POST("/visits/:id/extend", u.extend, u.requireUser)
	g.POST("/visits/:id/resend", u.resend, u.requireUser)
	g.POST("/visits/:id/email", u.correctEmail, u.requireUser)
	g.POST("/simulate", u.simulate, u.requireUser)

	g.GET("/mappings", u.mappingsPage, u.requireUser)
	g.GET("/mappings/new", u.newMappingPage, u.requireUser)
	g.POST("/mappings", u.createMapping, u.requireUser)
	g.GET("/mappings/:id", u.editMappingPage, u.requireUser)
	g.POST("/mappings/:id", u.updateMapping, u.requireUser)
	g.POST("/mappings/:id/delete", u.deleteMapping, u.requireUser)

	g.GET("/operations", u.operationsPage, u.requireUser)
	g.GET("/events", u.eventsPage, u.requireUser)
	g.GET("/events.csv", u.eventsCSV, u.requireUser)
	g.GET("/outbox", u.outboxPage, u.requireUser)
	g.GET("/outbox/:id/html", u.outboxHTML, u.requireUser)

	g.GET("/keys", u.keysPage, u.requireUser, u.requireAdmin)
	g.POST("/keys", u.createKey, u.requireUser, u.requireAdmin)
	g.POST("/keys/:id/revoke", u.revokeKey, u.requireUser, u.requireAdmin)
	g.POST("/keys/controller/:id/revoke", u.revokeControllerKey, u.requireUser, u.requireAdmin)
	g.GET("/users", u.usersPage, u.requireUser, u.requireAdmin)
	g.POST("/users", u.createUser, u.requireUser, u.requireAdmin)
	g.POST("/users/:id/delete", u.deleteUser, u.requireUser, u.requireAdmin)

	if u.opts.Queues != nil {
		h := echo.WrapHandler(selfContained(u.opts.Queues))
		g.Any("/queues", h, u.requireUser, u.requireAdmin)
		g.Any("/queues/*", h, u.requireUser, u.requireAdmin)
	}
}

// staticHandler serves the embedded assets with a short cache lifetime.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServer(http.FS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})
}

// securityHeaders keeps our pages out of frames and scripts from other
// origins.
func (u *UI) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		// The queue dashboard's own pages get theirs from selfContained.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		if !strings.HasPrefix(c.Request().URL.Path, "/admin/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// htmlErrors renders errors from the front desk as pages rather than the
// API's JSON. 5xx are logged once here.
func (u *UI) htmlErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		status, msg := http.StatusInternalServerError, "Something went wrong. Please try again."
		var he *echo.HTTPError
		if errors.As(err, &he) {
			status = he.Code
			msg = http.StatusText(he.Code)
			if m, ok := he.Message.(string); ok {
				msg = m
			}
		} else if k := latchkey.KindOf(err); k != latchkey.Internal {
			status, msg = statusOf(k), latchkey.Message(err)
		}
		if status >= 500 {
			u.log.Error("page failed", "request_id", requestID(c), "method", c.Request().Method, "path", c.Path(), "status", status, "err", err)
		}
		if isQueuesAPI(c.Request().URL.Path) {
			return err
		}
		return u.render(c, status, "error", "Error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
	}
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	User    User
	CSRF    string
	Flash   string
	Demo    bool
	Queues  bool
	CanSim  bool
	Data    any
	NowYear int
	// Zone is the front desk's time zone, for times that belong to no
	// location (keys, users).
	Zone *time.Location
}

// render writes page name with data inside the layout.
func (u *UI) render(c echo.Context, status int, name, title string, data any) error {
	t, ok := u.pages[name]
	if !ok {
		return fmt.Errorf("no page template %q", name)
	}
	v := view{Title: title, Nav: name, Data: data, Demo: u.opts.Demo, Queues: u.opts.Queues != nil, NowYear: u.now().Year(), Zone: u.zone}
	if usr, ok := userOf(c); ok {
		v.User = usr
		v.CanSim = u.canSimulate(usr)
	}
	if s, ok := sessionOf(c); ok {
		v.CSRF = s.CSRFToken
	}
	if tok, ok := c.Get(ctxPreCSRF).(string); ok {
		v.CSRF = tok
	}
	v.Flash = flashes[c.QueryParam("done")]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// renderFragment writes one named template without the layout, for the
// live-refresh fragments.
func (u *UI) renderFragment(c echo.Context, page, name string, data any) error {
	t, ok := u.pages[page]
	if !ok {
		return fmt.Errorf("no page template %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("render %s/%s: %w", page, name, err)
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// flashes are the messages a redirect may ask a page to show; only these
// fixed texts can appear, so a link cannot put words on the page.
var flashes = map[string]string{
	"revoked":         "Access revoked. The links are being removed from the controller.",
	"extended":        "Access extended.",
	"resent":          "The pass email is on its way.",
	"email_corrected": "Address corrected. The pass email is on its way to it.",
	"mapping-created": "Mapping created.",
	"mapping-saved":   "Mapping saved.",
	"mapping-deleted": "Mapping deleted.",
	"key-revoked":     "API key revoked.",
	"user-created":    "User created.",
	"user-deleted":    "User deleted.",
	"simulated":       "Visitor event simulated.",
}

// redirect answers 303 to path with an optional flash code.
func redirect(c echo.Context, path, done string) error {
	if done != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "done=" + url.QueryEscape(done)
	}
	return c.Redirect(http.StatusSeeOther, path)
}

func (u *UI) now() time.Time { return u.opts.Now() }

// localZone returns the location of an IANA zone name, or the UI's zone.
func (u *UI) localZone(name string) *time.Location {
	if loc := zones.load(name); loc != nil {
		return loc
	}
	return u.zone
}

var uiFuncs = template.FuncMap{
	"fmtTime": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(loc).Format("Mon 2 Jan 15:04 MST")
	},
	"fmtPtr": func(t *time.Time, loc *time.Location) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.In(loc).Format("Mon 2 Jan 15:04 MST")
	},
	"clock": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(loc).Format("15:04:05")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago": func(d time.Duration) string { return humanDuration(d) },
	"contains": func(ids []int64, id int64) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	},
	"join": strings.Join,
}

// humanDuration renders d coarsely: "12 s", "5 min", "3 h", "2 days".
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// cachedGroups returns the controller's groups, fetched at most every 15 s.
func (u *UI) cachedGroups(ctx context.Context) ([]connector.Group, error) {
	u.cacheMu.Lock()
	c := u.groupCache
	u.cacheMu.Unlock()
	if c.val != nil && u.now().Sub(c.at) < 15*time.Second {
		return c.val, nil
	}
	gs, err := u.groups.ListGroups(ctx)
	if err != nil {
		return nil, latchkey.Wrap(latchkey.Unavailable, "could not list the controller's groups", err)
	}
	u.cacheMu.Lock()
	u.groupCache = cached[[]connector.Group]{at: u.now(), val: gs}
	u.cacheMu.Unlock()
	return gs, nil
}

// groupNames maps group ids to names; unknown groups read "group <id>".
func groupNames(gs []connector.Group) map[int64]string {
	out := make(map[int64]string, len(gs))
	for _, g := range gs {
		out[g.ID] = g.Name
	}
	return out
}
