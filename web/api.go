package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/mappings"
)

// GroupLister lists the controller's groups.
type GroupLister interface {
	ListGroups(ctx context.Context) ([]connector.Group, error)
}

// API serves /api/v1 and the guest pass routes.
type API struct {
	log    *slog.Logger
	svc    *connector.Service
	maps   *mappings.Store
	groups GroupLister
	outbox *mail.Outbox
	// keyHash is the SHA-256 of the admin API key; keys are compared
	// by hash in constant time.
	keyHash [32]byte
	// keys, when set, accepts the API keys admins create in the UI.
	keys KeyChecker
	// failures counts wrong keys per client address.
	failures *limiterTable
	now      func() time.Time
	// metrics counts pass unlock outcomes (nil: not counted).
	metrics *metrics.Metrics
}

// Wrong API keys: 10 per address, then one every 2 s; at most
// keyFailureTableSize addresses are tracked (least recently used dropped).
var (
	keyFailureRate, keyFailureBurst = rate.Every(2 * time.Second), 10
	keyFailureTableSize             = 10_000
)

// WithMetrics counts pass unlock outcomes in m.
func (a *API) WithMetrics(m *metrics.Metrics) *API {
	a.metrics = m
	return a
}

// KeyChecker tells whether a bearer key is a valid API key.
type KeyChecker interface {
	ValidAPIKey(ctx context.Context, key string) bool
}

// WithKeys makes the API accept the keys k knows besides the admin key.
func (a *API) WithKeys(k KeyChecker) *API {
	a.keys = k
	return a
}

// NewAPI returns the API. outbox is nil when mail goes out over SMTP.
func NewAPI(log *slog.Logger, svc *connector.Service, maps *mappings.Store, groups GroupLister, outbox *mail.Outbox, adminKey string) *API {
	return &API{log: log.With("component", "api"), svc: svc, maps: maps, groups: groups, outbox: outbox, keyHash: sha256.Sum256([]byte(adminKey)),
		failures: newLimiterTable(keyFailureRate, keyFailureBurst, keyFailureTableSize), now: time.Now}
}

// Register mounts the API and the guest routes on s.
func (a *API) Register(s *Server) {
	registerOpenAPI(s)
	g := s.Group("/api/v1", a.requireKey)
	g.GET("/mappings", a.listMappings)
	g.POST("/mappings", a.createMapping)
	g.POST("/mappings/preview", a.previewMapping)
	g.GET("/mappings/:id", a.getMapping)
	g.PUT("/mappings/:id", a.updateMapping)
	g.DELETE("/mappings/:id", a.deleteMapping)
	g.GET("/groups", a.listGroups)
	g.GET("/visits", a.listVisits)
	g.GET("/visits/:id", a.getVisit)
	g.POST("/visits/:id/revoke", a.revokeVisit)
	g.POST("/visits/:id/resend", a.resendVisit)
	g.POST("/visits/:id/email", a.correctVisitEmail)
	g.POST("/visits/:id/extend", a.extendVisit)
	g.GET("/outbox", a.listOutbox)

	v := s.Group("/v", noReferrer)
	v.GET("/:pass", a.passPage)
	v.POST("/:pass/locks/:lock_id/unlock", a.passUnlock)
}

// requireKey accepts "Authorization: Bearer <admin key>" (or a key admins
// made). A valid key is always taken, so strangers behind the same address
// cannot lock the front desk out of revoking access; wrong keys are counted
// per address and, past the limit, answered 429. Keys are long and random,
// so the answer to a wrong key tells a guesser nothing useful.
func (a *API) requireKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		addr := addressKey(c.RealIP())
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		tok, ok := strings.CutPrefix(h, "Bearer ")
		tok = strings.TrimSpace(tok)
		got := sha256.Sum256([]byte(tok))
		valid := ok && tok != "" && (subtle.ConstantTimeCompare(got[:], a.keyHash[:]) == 1 ||
			(a.keys != nil && a.keys.ValidAPIKey(c.Request().Context(), tok)))
		if !valid {
			if a.failures.blocked(a.now(), addr) || !a.failures.allow(a.now(), addr) {
				return a.tooManyKeys(c)
			}
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
			return latchkey.Errorf(latchkey.Unauthorized, "missing or invalid API key")
		}
		return next(c)
	}
}

// tooManyKeys answers 429 with {"message"} (and, like every API error,
// {"error":{"code","message"}}): this middleware writes it itself because
// the body carries both shapes.
func (a *API) tooManyKeys(c echo.Context) error {
	const msg = "too many wrong API keys from this address; wait and try again"
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(time.Duration(float64(time.Second)/float64(keyFailureRate)).Seconds())))
	return c.JSON(http.StatusTooManyRequests, map[string]any{
		"message": msg,
		"error":   map[string]string{"code": latchkey.TooMany.String(), "message": msg},
	})
}

// noReferrer keeps pass tokens out of Referer headers and caches.
func noReferrer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		return next(c)
	}
}

func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, latchkey.Errorf(latchkey.Invalid, "%s must be a positive number", name)
	}
	return id, nil
}

func queryInt(c echo.Context, name string, def, max int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		return 0, latchkey.Errorf(latchkey.Invalid, "%s must be a number from 0 to %d", name, max)
	}
	return n, nil
}

// bind decodes the JSON body into v, as an Invalid error when it does not.
func bind(c echo.Context, v any) error {
	if err := (&echo.DefaultBinder{}).BindBody(c, v); err != nil {
		msg := "request body is not valid JSON"
		if he, ok := err.(*echo.HTTPError); ok {
			if s, ok := he.Message.(string); ok {
				msg = s
			}
		}
		return latchkey.Errorf(latchkey.Invalid, "%s", msg)
	}
	return nil
}
