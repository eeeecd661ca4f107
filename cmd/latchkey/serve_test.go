package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/webhooks"
)

type readyAnswer struct {
	Status string            `json:"status"`
	Failed []string          `json:"failed"`
	Checks map[string]string `json:"checks"`
}

func getReady(t *testing.T, base string) (int, readyAnswer) {
	t.Helper()
	code, raw := do(t, http.MethodGet, base+"/readyz", "", nil)
	var r readyAnswer
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("/readyz answered %d %s: %v", code, raw, err)
	}
	return code, r
}

// A fresh `serve --demo` on the test backends (the embedded default unless
// TEST_DATABASE_URL / TEST_REDIS_URL are set) answers health, readiness and
// metrics, turns a sign-in into a link and a captured email, and stops
// cleanly on SIGTERM.
func TestServeFreshStart(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	p := d.serve(t, "serve", nil, "--demo")

	cfg := startingConfig(t, p.out.String())
	if d.DatabaseURL == "" {
		if cfg["database_url"] != "(unset)" {
			t.Errorf("database_url = %v, want (unset)", cfg["database_url"])
		}
		if fi, err := os.Stat(filepath.Join(d.DataDir, "latchkey.db")); err != nil {
			t.Errorf("no SQLite database in the data dir: %v", err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("latchkey.db has mode %v, want 0600", fi.Mode().Perm())
		}
		if fi, err := os.Stat(d.DataDir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir: %v, %v; want mode 0700", fi.Mode(), err)
		}
	}
	if d.RedisURL == "" && !strings.Contains(p.out.String(), `"msg":"using in-process redis"`) {
		t.Errorf("no in-process Redis was started")
	}

	code, raw := do(t, http.MethodGet, p.URL+"/healthz", "", nil)
	if code != http.StatusOK || !strings.Contains(string(raw), `"ok"`) {
		t.Errorf("/healthz: %d %s", code, raw)
	}
	code, ready := getReady(t, p.URL)
	if diff := cmp.Diff(readyAnswer{Status: "ok", Checks: map[string]string{"database": "ok", "queue": "ok"}}, ready); code != http.StatusOK || diff != "" {
		t.Errorf("/readyz: %d (-want +got):\n%s", code, diff)
	}

	res := signIn(t, p.URL, d.EnvoySecret, walkInBody(t, nil))
	v := waitVisit(t, p.URL, d.AdminKey, res.VisitID, 15*time.Second, "synced with one link", syncedWithOneLink)
	if v.Status != "active" || !strings.HasPrefix(v.PassURL, p.URL+"/v/") {
		t.Errorf("visit after sign-in: status %q pass %q, want active with a pass on %s", v.Status, v.PassURL, p.URL)
	}
	waitOutbox(t, p.URL, d.AdminKey, "visitor@example.com", 15*time.Second)

	// One refused unlock (a door that does not exist) and one that opens.
	var locks []struct {
		ID int64 `json:"id"`
	}
	kisiGet(t, p.URL, d.AdminKey, "/locks", &locks)
	if len(locks) == 0 {
		t.Fatal("the demo has no doors")
	}
	if code, raw := do(t, http.MethodPost, fmt.Sprintf("%s/locks/%d/unlock", v.PassURL, 999999), "", nil); code == http.StatusOK {
		t.Fatalf("unlock of a door that does not exist: %d %s", code, raw)
	}
	opened := false
	for _, l := range locks {
		if code, _ := do(t, http.MethodPost, fmt.Sprintf("%s/locks/%d/unlock", v.PassURL, l.ID), "", nil); code == http.StatusOK {
			opened = true
			break
		}
	}
	if !opened {
		t.Fatal("no door opened through the pass")
	}

	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"\ngo_goroutines ", "\nprocess_resident_memory_bytes ", "\nprocess_cpu_seconds_total ",
		"# TYPE latchkey_http_requests_total counter",
		`latchkey_http_requests_total{method="GET",route="/healthz",status="200"}`,
		`latchkey_http_requests_total{method="POST",route="/webhooks/envoy",status="202"}`,
		// The product metrics, each with what this sign-in did.
		`latchkey_visits{status="active"} 1`,
		`latchkey_visits{status="revoked"} 0`,
		`latchkey_unlocks_total{outcome="ok"} 1`,
		`latchkey_unlocks_total{outcome="refused"} `,
		`latchkey_webhook_lag_seconds_count 1`,
		`latchkey_controller_request_duration_seconds_count{code="200",op="create_link"} 1`,
		`latchkey_controller_request_duration_seconds_count{code="200",op="unlock"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, series := range []string{"latchkey_syncs_total{outcome=\"ok\"}", "latchkey_emails_total{outcome=\"ok\"}"} {
		if n := metricValue(metrics, series); n < 1 {
			t.Errorf("%s = %v, want ≥ 1", series, n)
		}
	}
	p.stop(t)
	if !strings.Contains(p.out.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped line after SIGTERM")
	}
}

// metricValue returns the value of series in a Prometheus text exposition,
// -1 when it is absent.
func metricValue(exposition []byte, series string) float64 {
	for _, line := range strings.Split(string(exposition), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitOutbox waits until the captured mail holds a message to addr.
func waitOutbox(t testing.TB, base, key, addr string, d time.Duration) {
	t.Helper()
	if !outboxHas(t, base, key, addr, d) {
		t.Fatalf("no email to %s in the outbox within %v", addr, d)
	}
}

func outboxHas(t testing.TB, base, key, addr string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, raw := do(t, http.MethodGet, base+"/api/v1/outbox", key, nil)
		if code != http.StatusOK {
			t.Fatalf("GET outbox: %d %s", code, raw)
		}
		var msgs []struct {
			To      string `json:"to"`
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal(raw, &msgs); err != nil {
			t.Fatalf("outbox %s: %v", raw, err)
		}
		for _, m := range msgs {
			if strings.Contains(m.To, addr) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// /readyz answers 503 naming the queue while Redis is gone, and 200 again
// once it is back.
func TestReadyzNamesQueueWhenRedisGoes(t *testing.T) {
	t.Parallel()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	d := newDeployment(t, false)
	d.RedisURL = "redis://" + m.Addr()
	p := d.serve(t, "serve", nil)

	if code, r := getReady(t, p.URL); code != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d %+v", code, r)
	}
	m.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, r := getReady(t, p.URL)
		if code == http.StatusServiceUnavailable {
			if diff := cmp.Diff([]string{"queue"}, r.Failed); diff != "" {
				t.Errorf("failed checks (-want +got):\n%s", diff)
			}
			if r.Checks["database"] != "ok" || r.Checks["queue"] == "ok" || r.Checks["queue"] == "" {
				t.Errorf("checks = %v, want database ok and the queue's error", r.Checks)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %+v 10s after Redis went away", code, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := do(t, http.MethodGet, p.URL+"/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz with Redis gone: %d, want 200 (liveness does not depend on Redis)", code)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, r := getReady(t, p.URL)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %+v 10s after Redis came back", code, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Webhook deliveries through the running server: bad signatures, unmapped
// flows, walk-ins to invite-only flows, malformed and oversized bodies.
func TestWebhookTraces(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	p := d.serve(t, "serve", nil, "--demo")

	t.Run("bad signature", func(t *testing.T) {
		body := walkInBody(t, nil)
		for name, secret := range map[string]string{"wrong key": "not-" + d.EnvoySecret, "none": ""} {
			if code, raw := postWebhook(t, p.URL, body, secret); code != http.StatusUnauthorized {
				t.Errorf("%s: %d %s, want 401", name, code, raw)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/webhooks/envoy", bytes.NewReader(body))
		req.Header.Set("X-Envoy-Signature", "bm90IGEgc2lnbmF0dXJl")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("garbage signature: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("unmapped flow", func(t *testing.T) {
		res := signIn(t, p.URL, d.EnvoySecret, walkInBody(t, setFlow("999999")))
		v := waitVisit(t, p.URL, d.AdminKey, res.VisitID, 10*time.Second, "ignored", func(v visit) bool { return v.Status == "ignored" })
		if v.Reason == "" || len(v.Links) != 0 || v.FlowID != "999999" {
			t.Errorf("unmapped visit = %+v, want ignored with a reason and no links", v)
		}
		t.Logf("unmapped flow: %q", v.Reason)
	})

	t.Run("walk-in to invite-only flow", func(t *testing.T) {
		m := mappingBody("424242", []int64{visitorsGroup(t, p.URL, d.AdminKey)})
		m["only_invited"] = true
		createMapping(t, p.URL, d.AdminKey, m)
		res := signIn(t, p.URL, d.EnvoySecret, walkInBody(t, func(b map[string]any) {
			setFlow("424242")(b)
			b["payload"].(map[string]any)["id"] = "141649999"
		}))
		v := waitVisit(t, p.URL, d.AdminKey, res.VisitID, 10*time.Second, "ignored", func(v visit) bool { return v.Status == "ignored" })
		if v.Reason == "" || len(v.Links) != 0 {
			t.Errorf("invite-only walk-in = %+v, want ignored with a reason and no links", v)
		}
		t.Logf("invite-only walk-in: %q", v.Reason)
	})

	t.Run("duplicate delivery", func(t *testing.T) {
		body := walkInBody(t, func(b map[string]any) { b["payload"].(map[string]any)["id"] = "141650001" })
		first := signIn(t, p.URL, d.EnvoySecret, body)
		second := signIn(t, p.URL, d.EnvoySecret, body)
		if first.Status != "accepted" || second.Status != "duplicate" || second.VisitID != first.VisitID {
			t.Errorf("same delivery twice: %+v then %+v, want accepted then duplicate of the same visit", first, second)
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		body := []byte(`{"meta": {"event": "entry_sign_in"`)
		if code, raw := postWebhook(t, p.URL, body, d.EnvoySecret); code != http.StatusBadRequest {
			t.Errorf("malformed JSON: %d %s, want 400", code, raw)
		}
	})

	t.Run("body over 1 MiB", func(t *testing.T) {
		body := walkInBody(t, func(b map[string]any) {
			b["meta"].(map[string]any)["padding"] = strings.Repeat("x", 1<<20)
		})
		if code, raw := postWebhook(t, p.URL, body, d.EnvoySecret); code != http.StatusRequestEntityTooLarge {
			t.Errorf("with Content-Length: %d %s, want 413", code, raw)
		}
		// Without Content-Length (chunked), the limit holds while reading.
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/webhooks/envoy", io.MultiReader(bytes.NewReader(body)))
		req.Header.Set("X-Envoy-Signature", webhooks.Sign(body, d.EnvoySecret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked: %d, want 413", resp.StatusCode)
		}
	})
}

// visitorsGroup returns the id of the demo's "Visitors" group.
func visitorsGroup(t testing.TB, base, key string) int64 {
	t.Helper()
	code, raw := do(t, http.MethodGet, base+"/api/v1/groups", key, nil)
	if code != http.StatusOK {
		t.Fatalf("GET groups: %d %s", code, raw)
	}
	var gs []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &gs); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.Name == "Visitors" {
			return g.ID
		}
	}
	t.Fatalf("no Visitors group in %s", raw)
	return 0
}

// On SIGTERM the process stops taking work but finishes the link it is
// creating on a slow controller, then exits 0.
func TestSIGTERMFinishesWorkInFlight(t *testing.T) {
	t.Parallel()
	fake := newFakeKisi(t, 2*time.Second)
	d := newDeployment(t, false)
	d.Extra["LATCHKEY_CONTROLLER_URL"] = fake.URL
	d.Extra["LATCHKEY_CONTROLLER_API_KEY"] = fake.Key
	// The mapping's own re-check may land while the sync runs and ask for
	// one more; the restarted process's sweep makes it soon.
	d.Extra["LATCHKEY_LOST_AFTER"] = "1s"
	d.Extra["LATCHKEY_SWEEP_INTERVAL"] = "1s"
	p := d.serve(t, "serve", nil)
	createMapping(t, p.URL, d.AdminKey, mappingBody("359435", []int64{1}))
	res := signIn(t, p.URL, d.EnvoySecret, walkInBody(t, nil))

	select {
	case name := <-fake.created:
		if !strings.HasPrefix(name, "Jane Visitor") {
			t.Errorf("link name %q, want it named after the guest", name)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the controller got no POST /group_links within 15s")
	}
	sent := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 10*time.Second)
	took := p.exitedAt.Sub(sent)
	if code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	answered := fake.answeredTimes()
	if len(answered) != 1 || fake.abortedCount() != 0 {
		t.Fatalf("controller answered %d creates (%d abandoned by the client), want 1 finished", len(answered), fake.abortedCount())
	}
	if !p.exitedAt.After(answered[0]) {
		t.Errorf("process exited at %v, before the controller answered at %v", p.exitedAt, answered[0])
	}
	t.Logf("SIGTERM to exit: %v (controller answered %v after the signal)", took.Round(time.Millisecond), answered[0].Sub(sent).Round(time.Millisecond))
	for _, msg := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(p.out.String(), msg) {
			t.Errorf("log lacks %s", msg)
		}
	}

	// A new process on the same database finds the link recorded.
	p2 := d.serve(t, "serve again", nil)
	v := waitVisit(t, p2.URL, d.AdminKey, res.VisitID, 15*time.Second, "synced with one link", syncedWithOneLink)
	if v.Links[0].LinkID != 101 {
		t.Fatalf("after restart visit = %+v, want synced with link 101", v)
	}
	found := false
	for _, e := range v.Timeline {
		found = found || strings.Contains(e.Message, "link 101 created")
	}
	if !found {
		t.Errorf("timeline does not record link 101: %+v", v.Timeline)
	}
	p2.stop(t)
}

// `latchkey simulate sign-in` against `serve --demo` prints the visit with
// its link and pass URL, and `simulate sign-out` prints it revoked. The
// keys come from the data dir, as in the README.
func TestSimulateAgainstDemo(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	d.AdminKey, d.EnvoySecret, d.SecretKey = "", "", "" // generated into the data dir
	p := d.serve(t, "serve", nil, "--demo")
	// As in the README: the server is found from LATCHKEY_ADDR alone.
	getenv := mapEnv(map[string]string{"LATCHKEY_ADDR": strings.TrimPrefix(p.URL, "http://"), "LATCHKEY_DATA_DIR": d.DataDir})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var in bytes.Buffer
	if err := run(ctx, []string{"simulate", "sign-in", "--name", "Ada Lovelace", "--email", "ada@example.com"}, getenv, &in); err != nil {
		t.Fatalf("simulate sign-in: %v\n%s", err, in.String())
	}
	t.Logf("simulate sign-in:\n%s", in.String())
	out := in.String()
	for _, want := range []string{"posted entry_sign_in", "Ada Lovelace: active", "\n  link ", "\n  pass: " + p.URL + "/v/", "window: "} {
		if !strings.Contains(out, want) {
			t.Errorf("sign-in output lacks %q", want)
		}
	}
	if strings.Contains(out, "not synced") {
		t.Errorf("sign-in output says the visit is not synced")
	}
	pass := out[strings.Index(out, "pass: ")+len("pass: "):]
	pass = strings.TrimSpace(strings.SplitN(pass, "\n", 2)[0])
	if code, raw := do(t, http.MethodGet, pass, "", nil); code != http.StatusOK || !strings.Contains(string(raw), "Ada") {
		t.Errorf("GET %s: %d", pass, code)
	}

	var outOut bytes.Buffer
	// The README's sign-out gives only the email; the visitor keeps her name.
	if err := run(ctx, []string{"simulate", "sign-out", "--email", "ada@example.com"}, getenv, &outOut); err != nil {
		t.Fatalf("simulate sign-out: %v\n%s", err, outOut.String())
	}
	t.Logf("simulate sign-out:\n%s", outOut.String())
	if !strings.Contains(outOut.String(), "Ada Lovelace: revoked") {
		t.Errorf("sign-out output does not show the visit revoked:\n%s", outOut.String())
	}
	// Same visit both times.
	id := func(s string) string {
		i := strings.Index(s, "\nvisit ")
		if i < 0 {
			return ""
		}
		return strings.Fields(s[i+1:])[1]
	}
	if id(out) == "" || id(out) != id(outOut.String()) {
		t.Errorf("sign-in showed visit %q, sign-out visit %q", id(out), id(outOut.String()))
	}
}

// Start-up time and idle memory of `serve --demo` on the embedded default,
// for the record.
func TestStartupAndIdleMemory(t *testing.T) {
	d := &deployment{DataDir: filepath.Join(t.TempDir(), "data"), Extra: map[string]string{}}
	env := d.env(nil)
	port := freePort(t)
	env["LATCHKEY_ADDR"] = fmt.Sprintf("127.0.0.1:%d", port)
	delete(env, "LATCHKEY_POLL_INTERVAL") // the default
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	latchkeyBin(t)

	p := startProc(t, "serve", env, "serve", "--demo")
	var healthy time.Duration
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				healthy = time.Since(p.startedAt)
				break
			}
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("no /healthz 200 within 30s: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	ready := p.waitLog(t, "ready", 5*time.Second)
	startup, _ := ready["startup"].(string)
	if _, err := time.ParseDuration(startup); err != nil {
		t.Errorf(`"ready" line's startup %q is not a duration`, startup)
	}
	t.Logf("serve --demo, embedded default: exec to /healthz 200: %v; ready log startup: %s", healthy.Round(time.Millisecond), startup)

	// Measure memory after a few seconds without traffic.
	time.Sleep(3 * time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Logf("idle RSS not measured: %v", err)
	} else {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
				f := strings.Fields(line)
				kb, _ := strconv.Atoi(f[1])
				t.Logf("idle after 3s: %s %.1f MiB", f[0], float64(kb)/1024)
			}
		}
	}
	if healthy > 10*time.Second {
		t.Errorf("start-up took %v", healthy)
	}
	p.stop(t)
}

// LATCHKEY_DEBUG_ADDR serves the profiler on its own listener; the public
// address never does.
func TestDebugAddrServesProfiler(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	debug := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := d.serve(t, "serve", map[string]string{"LATCHKEY_DEBUG_ADDR": debug})
	if code, raw := do(t, http.MethodGet, "http://"+debug+"/debug/pprof/goroutine?debug=1", "", nil); code != http.StatusOK || !strings.Contains(string(raw), "goroutine profile") {
		t.Errorf("profiler on %s: %d %.200s", debug, code, raw)
	}
	if code, _ := do(t, http.MethodGet, p.URL+"/debug/pprof/goroutine?debug=1", "", nil); code != http.StatusNotFound {
		t.Errorf("public address /debug/pprof/: %d, want 404", code)
	}
	p.stop(t)
}
