package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/testenv"
)

func serve(s *Server, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHealthAndReadiness(t *testing.T) {
	queueUp := true
	s := New(testenv.Logger(t), []Check{
		{Name: "database", Func: func(context.Context) error { return nil }},
		{Name: "queue", Func: func(context.Context) error {
			if queueUp {
				return nil
			}
			return errors.New("dial tcp 127.0.0.1:6379: connection refused")
		}},
	}, Options{})
	if rec := serve(s, "GET", "/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("healthz: got %d", rec.Code)
	}
	if rec := serve(s, "GET", "/readyz"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"queue":"ok"`) {
		t.Fatalf("readyz up: got %d %s", rec.Code, rec.Body.String())
	}
	queueUp = false
	rec := serve(s, "GET", "/readyz")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"failed":["queue"]`) {
		t.Fatalf("readyz down: got %d %s, want 503 naming queue", rec.Code, rec.Body.String())
	}
	if rec.Header().Get(echo.HeaderXRequestID) == "" {
		t.Fatal("no request id header")
	}
}

func TestMetricsErrorsAndPanics(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{})
	g := s.Group("/t")
	g.GET("/panic", func(echo.Context) error { panic("boom") })
	g.GET("/internal", func(echo.Context) error { return errors.New("database password=hunter2 refused") })
	g.GET("/invalid", func(echo.Context) error { return latchkey.Errorf(latchkey.Invalid, "flow_id is required") })

	rec := serve(s, "GET", "/t/panic")
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"message":"internal error"`) {
		t.Fatalf("panic: got %d %s", rec.Code, rec.Body.String())
	}
	rec = serve(s, "GET", "/t/internal")
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatalf("internal error leaked its cause: %d %s", rec.Code, rec.Body.String())
	}
	rec = serve(s, "GET", "/t/invalid")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `{"error":{"code":"invalid","message":"flow_id is required"}}`) {
		t.Fatalf("invalid: got %d %s", rec.Code, rec.Body.String())
	}
	rec = serve(s, "GET", "/metrics")
	body := rec.Body.String()
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", `latchkey_http_requests_total{method="GET",route="/t/invalid",status="400"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestRedactPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/v/dtsO_w8XyI8ejJ4BDzJd2I9vZvBjwK01FveSF5U7Lfc", "/v/dtsO…"},
		{"/v/dtsO_w8XyI8ejJ4BDzJd2I9vZvBjwK01FveSF5U7Lfc/locks/1/unlock", "/v/dtsO…/locks/1/unlock"},
		{"/api/v1/visits", "/api/v1/visits"},
		{"/v/abc", "/v/abc"},
	}
	for _, tt := range tests {
		if got := redactPath(tt.in); got != tt.want {
			t.Errorf("redactPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Request log lines carry the duration in milliseconds, under a name that
// says so, not a bare integer of nanoseconds.
func TestRequestLogDurationHasAUnit(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(log, nil, Options{})
	s.Group("").GET("/slow", func(c echo.Context) error {
		time.Sleep(3 * time.Millisecond)
		return c.NoContent(http.StatusNoContent)
	})
	serve(s, http.MethodGet, "/slow")
	var line struct {
		Msg        string   `json:"msg"`
		DurationMS *float64 `json:"duration_ms"`
		Latency    any      `json:"latency"`
	}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if err := json.Unmarshal([]byte(l), &line); err == nil && line.Msg == "request" {
			break
		}
	}
	if line.DurationMS == nil || *line.DurationMS < 3 || *line.DurationMS > 10_000 || line.Latency != nil {
		t.Errorf("request log: duration_ms %v, latency %v; want about 3 ms in duration_ms and no unitless latency\n%s", line.DurationMS, line.Latency, buf.String())
	}
}
