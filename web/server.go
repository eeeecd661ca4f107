package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	latchkey "github.com/latchkey/latchkey"
)

// Check is a named readiness check (database, queue…).
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Options tunes the server; the zero value works.
type Options struct {
	// BodyLimit caps request bodies (default "1M").
	BodyLimit string
	// RequestTimeout bounds a request's context (default 30s).
	RequestTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers (default 10s),
	// ReadTimeout the whole request with its body (default 30s),
	// WriteTimeout writing the answer from the end of the headers (default
	// 60s: longer than RequestTimeout, so handlers meet their own deadline
	// first; nothing here streams), IdleTimeout a keep-alive connection
	// between requests (default 120s).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes caps request headers (default 64 KiB); larger get 431.
	MaxHeaderBytes int
	// TrustedProxies are the peers that may set the client's address
	// (X-Forwarded-For) and scheme (X-Forwarded-Proto). None by default.
	TrustedProxies []*net.IPNet
}

// Server is the HTTP server. It implements http.Handler, so tests need no
// listening port.
type Server struct {
	log      *slog.Logger
	e        *echo.Echo
	http     *http.Server
	registry *prometheus.Registry
	checks   []Check
	limit    string
}

// New builds the echo instance with recover, request ids, request logging,
// metrics, a request timeout and a body limit, and the /healthz, /readyz and
// /metrics endpoints. Metrics are registered on a registry of our own.
func New(log *slog.Logger, checks []Check, opts Options) *Server {
	if opts.BodyLimit == "" {
		opts.BodyLimit = "1M"
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{log: log.With("component", "http"), e: echo.New(), registry: reg, checks: checks, limit: opts.BodyLimit}
	s.http = HTTPServer(s.e, opts)
	s.http.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	e := s.e
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// Forwarding headers are believed only from the trusted proxies, so a
	// client cannot choose its own address (rate limits, audit) or scheme
	// (HSTS, Secure cookies).
	trust := newProxyTrust(opts.TrustedProxies)
	e.IPExtractor = trust.clientIP
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			trust.strip(c.Request())
			return next(c)
		}
	})
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic", "err", err, "request_id", requestID(c), "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.RequestID())
	e.Use(securityHeaders)
	e.Use(s.requestLogger())
	e.Use(newHTTPMetrics(reg))
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: opts.RequestTimeout}))
	e.Use(middleware.BodyLimit(opts.BodyLimit))
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	return s
}

// Registry returns the server's Prometheus registry, for other collectors.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Group returns a route group under prefix for another package to mount its
// routes on (webhooks, lockctl).
func (s *Server) Group(prefix string, m ...echo.MiddlewareFunc) *echo.Group {
	return s.e.Group(prefix, m...)
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// Serve serves on ln until Shutdown, with the listener limits of Options.
// It returns http.ErrServerClosed after a clean shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown stops accepting connections and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// HTTPServer returns an http.Server for h with the timeouts and header
// limit of opts (their defaults where unset), so that slow or idle clients
// cannot hold connections. Every listener latchkey opens uses it.
func HTTPServer(h http.Handler, opts Options) *http.Server {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ReadHeaderTimeout, 10*time.Second)
	def(&opts.ReadTimeout, 30*time.Second)
	def(&opts.WriteTimeout, 60*time.Second)
	def(&opts.IdleTimeout, 120*time.Second)
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
	}
}

// securityHeaders sets headers every response gets; HSTS only when the
// request came over TLS (directly or through a proxy that says so).
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if c.Scheme() == "https" {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		return next(c)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz runs every check; a failure answers 503 naming what failed.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	result := map[string]string{}
	var failed []string
	for _, ch := range s.checks {
		if err := ch.Func(ctx); err != nil {
			result[ch.Name] = err.Error()
			failed = append(failed, ch.Name)
			continue
		}
		result[ch.Name] = "ok"
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed, "checks": result})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": result})
}

// statusOf maps an error kind to an HTTP status.
func statusOf(k latchkey.Kind) int {
	switch k {
	case latchkey.Invalid:
		return http.StatusBadRequest
	case latchkey.NotFound:
		return http.StatusNotFound
	case latchkey.Conflict:
		return http.StatusConflict
	case latchkey.Unauthorized:
		return http.StatusUnauthorized
	case latchkey.Forbidden:
		return http.StatusForbidden
	case latchkey.Unavailable:
		return http.StatusServiceUnavailable
	case latchkey.TooMany:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// handleError is the one place errors become responses:
// {"error":{"code","message"}}. 5xx are logged once with the request id.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := http.StatusInternalServerError, "internal", "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		code = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
		if he.Code == http.StatusRequestEntityTooLarge && msg == http.StatusText(he.Code) {
			msg = "request body is larger than " + s.limit + "B"
		}
	} else {
		k := latchkey.KindOf(err)
		status, code, msg = statusOf(k), k.String(), latchkey.Message(err)
	}
	if status >= 500 {
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Request().Method, "path", c.Path(), "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		werr = c.JSON(status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
	}
	if werr != nil {
		s.log.Warn("write error response", "err", werr)
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

func (s *Server) requestLogger() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogLatency: true, LogRequestID: true, LogError: true, LogRemoteIP: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			// Only the path is logged, never the query or a pass token
			// in full: /v/<pass> paths are shortened.
			s.log.LogAttrs(c.Request().Context(), levelFor(v.Status), "request",
				slog.String("method", v.Method), slog.String("path", redactPath(v.URIPath)),
				slog.Int("status", v.Status), slog.Float64("duration_ms", float64(v.Latency.Microseconds())/1000),
				slog.String("request_id", v.RequestID), slog.String("remote_ip", v.RemoteIP))
			return nil
		},
	})
}

func levelFor(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelWarn
	case status >= 400:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// redactPath hides guest pass tokens, which are bearer secrets.
func redactPath(p string) string {
	const prefix = "/v/"
	if len(p) > len(prefix)+6 && p[:len(prefix)] == prefix {
		rest := p[len(prefix):]
		end := len(rest)
		for i := range rest {
			if rest[i] == '/' {
				end = i
				break
			}
		}
		return prefix + rest[:4] + "…" + rest[end:]
	}
	return p
}

func newHTTPMetrics(reg prometheus.Registerer) echo.MiddlewareFunc {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_http_requests_total", Help: "HTTP requests by method, route and status.",
	}, []string{"method", "route", "status"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "latchkey_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"method", "route"})
	reg.MustRegister(reqs, dur)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			status := c.Response().Status
			var he *echo.HTTPError
			if err != nil {
				status = statusOf(latchkey.KindOf(err))
				if errors.As(err, &he) {
					status = he.Code
				}
			}
			// c.Path() is the matched route's template (a group's
			// catch-all for unknown paths under it), never the path
			// itself.
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			method := MetricMethod(c.Request().Method)
			reqs.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
			dur.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// MetricMethod keeps a method label to a fixed set: any method name is a
// valid request, and each would otherwise mint a series.
func MetricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
