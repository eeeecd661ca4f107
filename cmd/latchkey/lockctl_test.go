package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/lockctl"
)

const lockctlTestKey = "lockctl-test-admin-key-0123456789"

// get makes a request and returns its status and body.
func get(t *testing.T, method, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestLockctlOperable: the standalone controller answers /healthz and
// /readyz (503 naming the database once it is gone), exports request
// metrics by route template, never by path, and logs every request with
// its method, route, status and duration in milliseconds.
func TestLockctlOperable(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	if err := lockctl.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	lc := lockctl.New(log, db, lockctl.NewSimDriver(nil), nil, lockctl.Options{AdminAPIKey: lockctlTestKey})
	if err := lc.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(lockctlHandler(log, lc, db, nil))
	t.Cleanup(ts.Close)

	if code, body := get(t, http.MethodGet, ts.URL+"/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("GET /healthz: %d %s", code, body)
	}
	if code, body := get(t, http.MethodGet, ts.URL+"/readyz", ""); code != 200 || !strings.Contains(body, `"database":"ok"`) {
		t.Errorf("GET /readyz: %d %s, want 200 with the database ok", code, body)
	}
	// The Kisi API is still at the root, with Kisi's errors.
	if code, _ := get(t, http.MethodGet, ts.URL+"/locks", "KISI-LOGIN "+lockctlTestKey); code != 200 {
		t.Errorf("GET /locks as admin: %d, want 200", code)
	}
	if code, _ := get(t, http.MethodGet, ts.URL+"/locks/987654", ""); code != 401 {
		t.Errorf("GET /locks/987654 without a key: %d, want 401", code)
	}
	get(t, http.MethodGet, ts.URL+"/no/such/path/123456", "KISI-LOGIN "+lockctlTestKey)
	get(t, "BREW", ts.URL+"/locks", "")

	_, metrics := get(t, http.MethodGet, ts.URL+"/metrics", "")
	for _, want := range []string{
		`latchkey_http_requests_total{method="GET",route="/locks",status="200"} 1`,
		`latchkey_http_requests_total{method="GET",route="/locks/:id",status="401"} 1`,
		`latchkey_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`latchkey_http_request_duration_seconds_count{method="GET",route="/locks/:id"} 1`,
		`method="other"`,
		`route="unmatched"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, chosen := range []string{"987654", "123456", "BREW", "/no/such"} {
		if strings.Contains(metrics, chosen) {
			t.Errorf("/metrics has a label a client chose: %q", chosen)
		}
	}

	// One log line per request, with the route template and a duration
	// in milliseconds.
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	var found bool
	for _, l := range lines {
		if l["route"] == "/locks/:id" {
			found = true
			if l["method"] != "GET" || l["status"] != float64(401) {
				t.Errorf("request log %v: want method GET, status 401", l)
			}
			if ms, ok := l["duration_ms"].(float64); !ok || ms < 0 || ms > 10_000 {
				t.Errorf("request log %v: duration_ms %v, want a number of milliseconds", l, l["duration_ms"])
			}
		}
		if raw, _ := json.Marshal(l); strings.Contains(string(raw), "987654") {
			t.Errorf("request log has the raw path: %s", raw)
		}
	}
	if !found || len(lines) < 7 {
		t.Errorf("got %d request log lines (route /locks/:id logged: %v), want one per request (7 or more):\n%s", len(lines), found, logs.String())
	}

	// Without its database the controller is not ready, and says why.
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	if code, body := get(t, http.MethodGet, ts.URL+"/readyz", ""); code != 503 || !strings.Contains(body, `"database"`) {
		t.Errorf("GET /readyz with the database closed: %d %s, want 503 naming the database", code, body)
	}
	if code, _ := get(t, http.MethodGet, ts.URL+"/healthz", ""); code != 200 {
		t.Errorf("GET /healthz with the database closed: %d, want 200 (the process is up)", code)
	}
}

// TestRunLockctlServesOperations runs `latchkey lockctl` in-process: it
// listens, answers /healthz, /readyz and /metrics beside the Kisi API,
// logs its requests, and stops when its context ends.
func TestRunLockctlServesOperations(t *testing.T) {
	dsn, _ := testenv.DSN(t)
	env := map[string]string{"LATCHKEY_ADMIN_API_KEY": lockctlTestKey, "DATABASE_URL": dsn, "LATCHKEY_LOG_FORMAT": "json"}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runLockctl(ctx, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--demo"}, func(k string) string { return env[k] }, &out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("lockctl: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("lockctl did not stop within 15 s of its context ending")
		}
	})
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		for _, l := range logLines(out.String()) {
			if l["msg"] == "lockctl ready" {
				addr, _ = l["addr"].(string)
			}
		}
		if addr != "" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("lockctl exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lockctl not ready after 30 s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := "http://" + addr
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, http.MethodGet, base+p, ""); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, _ := get(t, http.MethodGet, base+"/places", "KISI-LOGIN "+lockctlTestKey); code != 200 {
		t.Errorf("GET /places: %d, want 200", code)
	}
	if _, m := get(t, http.MethodGet, base+"/metrics", ""); !strings.Contains(m, `latchkey_http_requests_total{method="GET",route="/places",status="200"} 1`) {
		t.Errorf("/metrics does not count GET /places:\n%.2000s", m)
	}
	var logged bool
	for _, l := range logLines(out.String()) {
		if l["msg"] == "request" && l["route"] == "/places" && l["status"] == float64(200) && l["duration_ms"] != nil {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no request log line for GET /places:\n%s", out.String())
	}
}
