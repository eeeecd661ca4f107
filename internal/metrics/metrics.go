// Package metrics holds latchkey's product metrics: visits by status, sync,
// email and unlock outcomes, controller request latency and webhook lag.
// The adapters that see each outcome (the worker, the pass page, the
// webhook receiver, the controller client's transport) record it here, so
// the domain stays free of Prometheus. Every label value comes from a fixed
// set; a value outside it is recorded as "other", so no client can mint a
// series.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey/latchkey/internal/database"
)

// Outcomes of syncs, emails and unlocks.
const (
	OK      = "ok"      // done
	Retry   = "retry"   // failed for now; the queue tries again
	Failed  = "failed"  // failed for good
	Refused = "refused" // an unlock the controller or latchkey refused
	Other   = "other"
)

var outcomes = map[string]bool{OK: true, Retry: true, Failed: true, Refused: true}

func outcome(o string) string {
	if outcomes[o] {
		return o
	}
	return Other
}

// Metrics records the product metrics. A nil *Metrics records nothing.
type Metrics struct {
	syncs, emails, unlocks, reports *prometheus.CounterVec
	controller                      *prometheus.HistogramVec
	lag                             prometheus.Histogram
}

// New registers the product metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_syncs_total", Help: "Visit syncs (making the controller match a visit) by outcome.",
		}, []string{"outcome"}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_emails_total", Help: "Guest emails by outcome.",
		}, []string{"outcome"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_envoy_reports_total", Help: "Job reports sent back to Envoy by outcome.",
		}, []string{"outcome"}),
		unlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_unlocks_total", Help: "Pass page unlock attempts by outcome.",
		}, []string{"outcome"}),
		controller: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_controller_request_duration_seconds", Help: "Requests to the access controller by operation and status code (\"error\" when no answer came).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"op", "code"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "latchkey_webhook_lag_seconds", Help: "Receive time minus the time of the event a webhook reports (sign-in, sign-out).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
	}
	for _, o := range []string{OK, Retry, Failed, Other} {
		m.syncs.WithLabelValues(o)
		m.emails.WithLabelValues(o)
		m.reports.WithLabelValues(o)
	}
	for _, o := range []string{OK, Refused, Failed, Other} {
		m.unlocks.WithLabelValues(o)
	}
	reg.MustRegister(m.syncs, m.emails, m.reports, m.unlocks, m.controller, m.lag)
	return m
}

// Sync records one sync's outcome.
func (m *Metrics) Sync(o string) {
	if m != nil {
		m.syncs.WithLabelValues(outcome(o)).Inc()
	}
}

// Email records one email attempt's outcome.
func (m *Metrics) Email(o string) {
	if m != nil {
		m.emails.WithLabelValues(outcome(o)).Inc()
	}
}

// Report records one attempt at a report to Envoy.
func (m *Metrics) Report(o string) {
	if m != nil {
		m.reports.WithLabelValues(outcome(o)).Inc()
	}
}

// Unlock records one pass unlock attempt's outcome.
func (m *Metrics) Unlock(o string) {
	if m != nil {
		m.unlocks.WithLabelValues(outcome(o)).Inc()
	}
}

// WebhookLag records how long after the event its webhook arrived. Events
// without a time, and clocks that put the event after its receipt, are
// not recorded.
func (m *Metrics) WebhookLag(received, event time.Time) {
	if m == nil || event.IsZero() || received.Before(event) {
		return
	}
	m.lag.Observe(received.Sub(event).Seconds())
}

// Transport wraps base (http.DefaultTransport when nil) so that every
// controller request is timed by operation and answer code. A nil
// *Metrics returns base unchanged.
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if m == nil {
		return base
	}
	return timed{base: base, hist: m.controller}
}

type timed struct {
	base http.RoundTripper
	hist *prometheus.HistogramVec
}

func (t timed) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	code := "error"
	if err == nil {
		code = statusCode(resp.StatusCode)
	}
	t.hist.WithLabelValues(Op(r.Method, r.URL.Path), code).Observe(time.Since(start).Seconds())
	return resp, err
}

func statusCode(c int) string {
	if c < 100 || c > 599 {
		return "other"
	}
	return strconv.Itoa(c)
}

// ops names the controller calls latchkey makes, by method and path with
// ids replaced by "{id}". Any other call is "other".
var ops = map[string]string{
	"GET /group_links":              "list_links",
	"POST /group_links":             "create_link",
	"GET /group_links/{id}":         "get_link",
	"PATCH /group_links/{id}":       "update_link",
	"DELETE /group_links/{id}":      "delete_link",
	"POST /group_links/void":        "void_link",
	"GET /groups":                   "list_groups",
	"GET /places":                   "list_places",
	"GET /locks":                    "list_locks",
	"POST /locks/{id}/unlock":       "unlock",
	"GET /group_locks":              "list_group_locks",
	"GET /events":                   "list_events",
	"POST /event_sets":              "list_events",
	"GET /logins":                   "list_logins",
	"POST /logins":                  "create_login",
	"DELETE /logins/{id}":           "delete_login",
	"GET /role_assignments":         "list_role_assignments",
	"POST /role_assignments":        "create_role_assignment",
	"PATCH /role_assignments/{id}":  "update_role_assignment",
	"DELETE /role_assignments/{id}": "delete_role_assignment",
	"POST /role_assignments/void":   "void_role_assignment",
	"POST /invites":                 "create_invite",
	"GET /users":                    "list_users",
	"POST /users":                   "create_user",
	"DELETE /users/{id}":            "delete_user",
	"GET /guests":                   "list_guests",
	"POST /guests":                  "create_guest",
	"DELETE /guests/{id}":           "delete_guest",
	"GET /organizations/{id}":       "get_organization",
}

// Op names the controller operation of a request, from a fixed set. A
// controller's base URL may carry a path prefix (the bundled one is at
// /lockctl); up to two leading segments are dropped to find the call.
func Op(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if s != "" && strings.Trim(s, "0123456789") == "" {
			segs[i] = "{id}"
		}
	}
	for drop := 0; drop <= 2 && drop < len(segs); drop++ {
		if op, ok := ops[method+" /"+strings.Join(segs[drop:], "/")]; ok {
			return op
		}
	}
	return Other
}

// VisitCounter returns how many visits there are in each status.
type VisitCounter func(ctx context.Context) (map[string]int64, error)

// RegisterVisits registers the latchkey_visits{status} gauge, read from
// count at scrape time, at most once per every (the last answer is kept in
// between, so scrapes cannot load the database). Only the statuses in
// statuses are reported.
func RegisterVisits(reg prometheus.Registerer, statuses []string, every time.Duration, count VisitCounter) {
	reg.MustRegister(&visits{
		desc:     prometheus.NewDesc("latchkey_visits", "Visits by status.", []string{"status"}, nil),
		statuses: statuses, every: every, count: count,
	})
}

type visits struct {
	desc     *prometheus.Desc
	statuses []string
	every    time.Duration
	count    VisitCounter

	mu   sync.Mutex
	at   time.Time
	last map[string]int64
}

func (v *visits) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *visits) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	if v.last == nil || time.Since(v.at) >= v.every {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if n, err := v.count(ctx); err == nil {
			v.last, v.at = n, time.Now()
		}
		cancel()
	}
	last := v.last
	v.mu.Unlock()
	if last == nil {
		return // the database did not answer; report nothing rather than zeros
	}
	for _, s := range v.statuses {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.GaugeValue, float64(last[s]), s)
	}
}

// RegisterStatements registers latchkey_db_statements_total{kind}: the
// database round trips of the process's handle (statements, and the BEGIN,
// COMMIT and ROLLBACK of transactions). A nil s registers nothing.
func RegisterStatements(reg prometheus.Registerer, s *database.Statements) {
	if s == nil {
		return
	}
	for kind, n := range map[string]*atomic.Int64{"query": &s.Queries, "exec": &s.Execs, "begin": &s.Begins, "commit": &s.Commits, "rollback": &s.Rollbacks} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "latchkey_db_statements_total", Help: "Database round trips by kind.", ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(n.Load()) }))
	}
}
