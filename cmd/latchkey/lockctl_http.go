package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/web"
)

// lockctlHandler serves the controller's Kisi API at the root for
// `latchkey lockctl`, with what an operator needs beside it: /healthz (the
// process is up), /readyz (the database answers), /metrics (Prometheus:
// requests by method, route template and status, and their durations) and
// one log line per request. Forwarding headers count only from trusted
// peers.
func lockctlHandler(log *slog.Logger, lc *lockctl.Controller, db *database.DB, trusted []*net.IPNet) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_http_requests_total", Help: "HTTP requests by method, route and status.",
	}, []string{"method", "route", "status"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "latchkey_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"method", "route"})
	reg.MustRegister(reqs, dur)
	metrics.RegisterStatements(reg, database.StatementsOf(db))

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// web.TrustedForwarding has already removed what untrusted peers sent.
	e.IPExtractor = echo.ExtractIPFromXFFHeader()
	e.Use(middleware.Recover(), middleware.RequestID())
	e.Use(lockctlObserve(log.With("component", "http"), reqs, dur))
	e.Use(middleware.BodyLimit("1M"))
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error { return lockctlReadyz(c, db) })
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	lc.Register(e.Group(""))
	return web.TrustedForwarding(trusted, e)
}

// lockctlReadyz answers 200 while the database answers within 3 s, else 503
// naming it.
func lockctlReadyz(c echo.Context, db *database.DB) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	err := lockctlPing(ctx, db)
	if err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": []string{"database"},
			"checks": map[string]string{"database": err.Error()}})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": map[string]string{"database": "ok"}})
}

func lockctlPing(ctx context.Context, db *database.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// lockctlObserve logs each request once and counts it. The route label is the
// matched route's template (/locks/:id), never the path, and the method
// label one of a fixed set, so no client chooses a label value.
func lockctlObserve(log *slog.Logger, reqs *prometheus.CounterVec, dur *prometheus.HistogramVec) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				// Write the error here, so the status logged is the one
				// sent.
				c.Error(err)
			}
			took := time.Since(start)
			status := c.Response().Status
			route := c.Path()
			if route == "" || route == "/*" {
				route = "unmatched"
			}
			method := web.MetricMethod(c.Request().Method)
			reqs.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
			dur.WithLabelValues(method, route).Observe(took.Seconds())
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", method), slog.String("route", route), slog.Int("status", status),
				slog.Float64("duration_ms", float64(took.Microseconds())/1000),
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("remote_ip", c.RealIP()))
			return nil
		}
	}
}
