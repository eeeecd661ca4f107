package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/testenv"
)

// httpSeries counts the series of the HTTP metrics and returns their
// method and route labels.
func httpSeries(t *testing.T, s *Server) (int, map[string]bool, map[string]bool) {
	t.Helper()
	mfs, err := s.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n, methods, routes := 0, map[string]bool{}, map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "latchkey_http_requests_total" && mf.GetName() != "latchkey_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n++
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					methods[l.GetValue()] = true
				case "route":
					routes[l.GetValue()] = true
				}
			}
		}
	}
	return n, methods, routes
}

// TestMetricLabelsAreNotClientChosen: bogus methods and paths do not mint
// series; methods fall into a fixed set and routes are templates.
func TestMetricLabelsAreNotClientChosen(t *testing.T) {
	s := New(testenv.Logger(t), nil, Options{})
	g := s.Group("/api")
	g.GET("/things/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	send := func(round int) {
		for i := 0; i < 30; i++ {
			for _, req := range []*http.Request{
				httptest.NewRequest(fmt.Sprintf("BOGUS%d-%d", round, i), "/healthz", nil),
				httptest.NewRequest(fmt.Sprintf("X%d%d", round, i), fmt.Sprintf("/nowhere/%d/%d", round, i), nil),
				httptest.NewRequest(http.MethodGet, fmt.Sprintf("/random-%d-%d", round, i), nil),
				httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/things/%d%d", round, i), nil),
				httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/unknown/%d%d", round, i), nil),
				httptest.NewRequest(http.MethodPost, fmt.Sprintf("/api/things/%d%d", round, i), nil),
			} {
				s.ServeHTTP(httptest.NewRecorder(), req)
			}
		}
	}
	send(1)
	first, methods, routes := httpSeries(t, s)
	send(2)
	second, _, _ := httpSeries(t, s)
	if second != first {
		t.Errorf("series grew from %d to %d with new bogus methods and paths", first, second)
	}
	if first > 20 {
		t.Errorf("%d series after 180 requests, want a handful", first)
	}
	allowed := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "other": true}
	for m := range methods {
		if !allowed[m] {
			t.Errorf("method label %q", m)
		}
	}
	for r := range routes {
		if r != "unmatched" && r != "/healthz" && r != "/api/things/:id" && r != "/api/*" {
			t.Errorf("route label %q is not a route template", r)
		}
	}
}
