package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOpNamesOnlyKnownCalls(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/group_links", "create_link"},
		{"PATCH", "/group_links/42", "update_link"},
		{"POST", "/lockctl/group_links", "create_link"},
		{"DELETE", "/lockctl/group_links/7", "delete_link"},
		{"POST", "/locks/3/unlock", "unlock"},
		{"POST", "/api/lockctl/locks/3/unlock", "unlock"},
		{"GET", "/group_links/abc", Other},
		{"GET", "/anything/the/client/chose", Other},
		{"BREW", "/group_links", Other},
		{"POST", "/a/b/c/group_links", Other},
	} {
		if got := Op(c.method, c.path); got != c.want {
			t.Errorf("Op(%s %s) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

func TestOutcomesAreAFixedSet(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Sync(OK)
	m.Sync("drop table")
	m.Email(Failed)
	m.Unlock(Refused)
	if got := testutil.ToFloat64(m.syncs.WithLabelValues(OK)); got != 1 {
		t.Errorf("syncs ok = %v", got)
	}
	if got := testutil.ToFloat64(m.syncs.WithLabelValues(Other)); got != 1 {
		t.Errorf("syncs other = %v, want the unknown outcome counted there", got)
	}
	if n := testutil.CollectAndCount(m.syncs); n != 4 {
		t.Errorf("sync series = %d, want the 4 fixed ones", n)
	}
	var nilM *Metrics // a process without metrics records nothing and does not panic
	nilM.Sync(OK)
	nilM.WebhookLag(time.Now(), time.Now())
}

func TestWebhookLagSkipsEventsWithoutATimeOrFromTheFuture(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	now := time.Now()
	m.WebhookLag(now, time.Time{})
	m.WebhookLag(now, now.Add(time.Minute))
	m.WebhookLag(now, now.Add(-2*time.Second))
	if n := testutil.CollectAndCount(m.lag); n != 1 {
		t.Fatalf("series = %d", n)
	}
	out := exposition(reg)
	if !strings.Contains(out, "latchkey_webhook_lag_seconds_count 1\n") || !strings.Contains(out, "latchkey_webhook_lag_seconds_sum 2\n") {
		t.Errorf("lag histogram:\n%s", out)
	}
}

func TestTransportTimesEveryAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/unlock") {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := New(reg)
	c := &http.Client{Transport: m.Transport(nil)}
	for _, p := range []string{"/group_links", "/locks/9/unlock", "/secret-path-123abc"} {
		resp, err := c.Post(srv.URL+p, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := c.Get("http://127.0.0.1:1/group_links"); err == nil {
		t.Fatal("a closed port answered")
	}
	out := exposition(reg)
	for _, want := range []string{
		`_count{code="200",op="create_link"} 1`,
		`_count{code="403",op="unlock"} 1`,
		`_count{code="200",op="other"} 1`,
		`_count{code="error",op="list_links"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret-path") {
		t.Error("a request path became a label value")
	}
}

func TestVisitsGaugeIsCachedAndSilentWhenTheDatabaseFails(t *testing.T) {
	calls := 0
	fail := false
	reg := prometheus.NewRegistry()
	RegisterVisits(reg, []string{"active", "revoked"}, time.Hour, func(context.Context) (map[string]int64, error) {
		calls++
		if fail {
			return nil, errors.New("database down")
		}
		return map[string]int64{"active": 3, "other-status": 9}, nil
	})
	want := "# HELP latchkey_visits Visits by status.\n# TYPE latchkey_visits gauge\nlatchkey_visits{status=\"active\"} 3\nlatchkey_visits{status=\"revoked\"} 0\n"
	for range 3 {
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latchkey_visits"); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("count ran %d times for 3 scrapes within the cache period, want 1", calls)
	}

	reg2 := prometheus.NewRegistry()
	fail = true
	RegisterVisits(reg2, []string{"active"}, time.Hour, func(context.Context) (map[string]int64, error) { return nil, errors.New("down") })
	if n, err := testutil.GatherAndCount(reg2, "latchkey_visits"); err != nil || n != 0 {
		t.Errorf("with the database down: %d series, %v; want none (not zeros)", n, err)
	}
}

// exposition returns reg's metrics as a scrape would see them.
func exposition(reg *prometheus.Registry) string {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// The dashboard in docs/ queries only metrics that exist.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.controller.WithLabelValues("unlock", "200").Observe(0) // a vector shows once it has a series
	m.reports.WithLabelValues(OK).Inc()
	RegisterStatements(reg, &database.Statements{})
	RegisterVisits(reg, []string{"active"}, time.Hour, func(context.Context) (map[string]int64, error) { return map[string]int64{}, nil })
	known := map[string]bool{"latchkey_webhooks_total": true, "latchkey_http_requests_total": true, "latchkey_http_request_duration_seconds": true}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		known[mf.GetName()] = true
	}
	name := regexp.MustCompile(`latchkey_[a-z_]+`)
	if len(d.Panels) < 8 {
		t.Fatalf("%d panels", len(d.Panels))
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if !known[base] {
					t.Errorf("panel %q queries %s, which latchkey does not export", p.Title, n)
				}
			}
		}
	}
}
