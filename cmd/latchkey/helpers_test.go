package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/webhooks"
)

// The binary under test is built once per test run, on first use, and
// removed when the package's tests end.
var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
	goMissing bool
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// latchkeyBin returns the path of a freshly built latchkey, or skips the test
// when no go toolchain is available to build it.
func latchkeyBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			if g := os.Getenv("GOROOT"); g != "" {
				goBin = filepath.Join(g, "bin", "go")
			}
			if _, serr := os.Stat(goBin); goBin == "" || serr != nil {
				goMissing = true
				return
			}
		}
		if buildDir, buildErr = os.MkdirTemp("", "latchkey-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "latchkey")
		cmd := exec.Command(goBin, "build", "-o", binPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if goMissing {
		t.Skip("no go toolchain on PATH: cannot build the latchkey binary")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a loopback port nobody listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer collects a process's output; safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines parses JSON log lines; lines that are not JSON are skipped.
func logLines(out string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// proc is a latchkey child process.
type proc struct {
	name      string
	cmd       *exec.Cmd
	out       *syncBuffer
	startedAt time.Time
	done      chan struct{}
	// set before done is closed
	waitErr  error
	exitedAt time.Time
	// URL is the base URL of the web role ("" without one).
	URL string
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *proc) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// wait waits up to d for the process to end and returns its exit code.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v; output:\n%s", p.name, d, p.out.String())
	}
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		return 0
	case errors.As(p.waitErr, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: wait: %v", p.name, p.waitErr)
	return -1
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("%s exited with status %d after SIGTERM; output:\n%s", p.name, code, p.out.String())
	}
}

// waitLog waits until a JSON log line with msg appears and returns it.
func (p *proc) waitLog(t testing.TB, msg string, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, l := range logLines(p.out.String()) {
			if l["msg"] == msg {
				return l
			}
		}
		if p.exited() {
			t.Fatalf("%s exited before logging %q; output:\n%s", p.name, msg, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v; output:\n%s", p.name, msg, d, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProc runs the binary with exactly env (plus PATH and HOME) and args.
// The process is killed in cleanup if it is still running, and its output
// is logged when the test failed.
func startProc(t testing.TB, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(latchkeyBin(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	p.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.exitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// deployment is one latchkey installation: a data dir, a database, a Redis
// and the keys every process of it shares.
type deployment struct {
	DataDir     string
	DatabaseURL string // "" selects SQLite in DataDir
	RedisURL    string // "" selects the in-process Redis (role all only)
	AdminKey    string
	EnvoySecret string
	SecretKey   string
	// Extra is added to every process's environment.
	Extra map[string]string
}

// newDeployment returns a deployment on the test backends: PostgreSQL and
// Redis when TEST_DATABASE_URL / TEST_REDIS_URL are set, otherwise the
// embedded default (SQLite in the data dir, in-process Redis). sharedRedis
// asks for a Redis that several processes can reach even without
// TEST_REDIS_URL (a miniredis in this test process).
func newDeployment(t testing.TB, sharedRedis bool) *deployment {
	t.Helper()
	d := &deployment{
		DataDir:     filepath.Join(t.TempDir(), "data"),
		AdminKey:    "admin-" + randomHex(t, 12),
		EnvoySecret: "envoy-" + randomHex(t, 12),
		SecretKey:   randomHex(t, 32),
		Extra:       map[string]string{},
	}
	if testenv.Postgres() {
		d.DatabaseURL, _ = testenv.DSN(t)
	}
	if sharedRedis || os.Getenv("TEST_REDIS_URL") != "" {
		d.RedisURL = testenv.RedisURL(t)
	}
	return d
}

// env returns the environment of one process of the deployment.
func (d *deployment) env(extra map[string]string) map[string]string {
	env := map[string]string{
		"LATCHKEY_DATA_DIR":         d.DataDir,
		"LATCHKEY_LOG_FORMAT":       "json",
		"LATCHKEY_POLL_INTERVAL":    "100ms",
		"LATCHKEY_ADMIN_API_KEY":    d.AdminKey,
		"LATCHKEY_ENVOY_SECRET":     d.EnvoySecret,
		"LATCHKEY_SECRET_KEY":       d.SecretKey,
		"LATCHKEY_SHUTDOWN_TIMEOUT": "9s",
	}
	if d.DatabaseURL != "" {
		env["DATABASE_URL"] = d.DatabaseURL
	}
	if d.RedisURL != "" {
		env["REDIS_URL"] = d.RedisURL
	}
	for k, v := range d.Extra {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	// An empty value removes a setting.
	for k, v := range env {
		if v == "" {
			delete(env, k)
		}
	}
	return env
}

// serve starts `latchkey serve args...` on a port of the kernel's choosing
// (LATCHKEY_ADDR 127.0.0.1:0, so no other process can take it between
// choosing and listening) and waits until it logged "ready" with the
// address it listens on and, when it has the web role, answers /healthz.
func (d *deployment) serve(t testing.TB, name string, extra map[string]string, args ...string) *proc {
	t.Helper()
	env := d.env(extra)
	env["LATCHKEY_ADDR"] = "127.0.0.1:0"
	p := startProc(t, name, env, append([]string{"serve"}, args...)...)
	ready := p.waitLog(t, "ready", 30*time.Second)
	if roles, _ := ready["roles"].(string); roles == "all" || strings.Contains(roles, "web") {
		addr, _ := ready["addr"].(string)
		if addr == "" {
			t.Fatalf("%s logged ready without its address: %v", name, ready)
		}
		p.URL = "http://" + addr
		waitHTTP(t, p.URL+"/healthz", http.StatusOK, 10*time.Second)
	}
	return p
}

// waitHTTP polls url until it answers want.
func waitHTTP(t testing.TB, url string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		last := fmt.Sprint(err)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want %d within %v, last: %s", url, want, d, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends a request with an optional JSON body and admin key, and returns
// the status and body.
func do(t testing.TB, method, url, key string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b
}

// webhookResult is the answer of POST /webhooks/envoy.
type webhookResult struct {
	Status      string `json:"status"`
	VisitID     int64  `json:"visit_id"`
	VisitStatus string `json:"visit_status"`
	Reason      string `json:"reason"`
}

// postWebhook posts body to /webhooks/envoy signed with secret ("" sends no
// signature) and returns the status and raw answer.
func postWebhook(t testing.TB, base string, body []byte, secret string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/envoy", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Envoy-Signature", webhooks.Sign(body, secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post webhook: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// signIn posts a correctly signed sign-in and returns the accepted result.
func signIn(t testing.TB, base, secret string, body []byte) webhookResult {
	t.Helper()
	code, raw := postWebhook(t, base, body, secret)
	ignored := code == http.StatusBadRequest && strings.Contains(string(raw), `"status":"ignored"`)
	if code != http.StatusOK && code != http.StatusAccepted && !ignored {
		t.Fatalf("sign-in webhook: %d %s", code, raw)
	}
	var res webhookResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("sign-in answer %s: %v", raw, err)
	}
	if res.VisitID == 0 {
		t.Fatalf("sign-in answer has no visit id: %s", raw)
	}
	return res
}

// walkInBody returns the captured walk-in sign-in, signed in now, with a
// fresh job id; edit may change it further.
func walkInBody(t testing.TB, edit func(body map[string]any)) []byte {
	t.Helper()
	raw := fixtures.Envoy("envoy-plugin-event-entry_sign_in.json")
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	obj := func(m map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			m = m[k].(map[string]any)
		}
		return m
	}
	obj(body, "meta", "job")["id"] = uuid.NewString()
	obj(body, "payload", "attributes")["signed-in-at"] = time.Now().UTC().Format("2006-01-02 15:04:05") + " UTC"
	if edit != nil {
		edit(body)
	}
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// setFlow changes the flow of a fixture body.
func setFlow(flow string) func(map[string]any) {
	return func(body map[string]any) {
		rel := body["payload"].(map[string]any)["relationships"].(map[string]any)
		rel["flow"].(map[string]any)["data"].(map[string]any)["id"] = flow
	}
}

// visit is the API's view of a visit.
type visit struct {
	ID       int64  `json:"id"`
	SourceID string `json:"source_id"`
	FlowID   string `json:"flow_id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Synced   bool   `json:"synced"`
	PassURL  string `json:"pass_url"`
	Links    []struct {
		GroupID int64 `json:"group_id"`
		LinkID  int64 `json:"link_id"`
		Removed bool  `json:"removed"`
	} `json:"links"`
	Timeline []struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"timeline"`
}

func getVisit(t testing.TB, base, key string, id int64) visit {
	t.Helper()
	code, raw := do(t, http.MethodGet, fmt.Sprintf("%s/api/v1/visits/%d", base, id), key, nil)
	if code != http.StatusOK {
		t.Fatalf("GET visit %d: %d %s", id, code, raw)
	}
	var v visit
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("visit %s: %v", raw, err)
	}
	return v
}

// waitVisit polls visit id until ok holds.
func waitVisit(t testing.TB, base, key string, id int64, d time.Duration, what string, ok func(visit) bool) visit {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := getVisit(t, base, key, id)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("visit %d not %s within %v: %+v", id, what, d, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncedWithOneLink is the state of a walk-in whose access exists.
func syncedWithOneLink(v visit) bool {
	return v.Synced && len(v.Links) == 1 && v.Links[0].LinkID != 0 && !v.Links[0].Removed
}

// mappingBody is the mapping of product.md for flow on location 177837.
func mappingBody(flow string, groups []int64) map[string]any {
	return map[string]any{
		"location_id": "177837", "flow_id": flow, "group_ids": groups,
		"duration_minutes": 240, "advance_minutes": 30, "only_invited": false,
		"revoke_on_sign_out": true, "grace_minutes": 0, "until_end_of_day": false, "delivery": "latchkey",
	}
}

func createMapping(t testing.TB, base, key string, body map[string]any) {
	t.Helper()
	code, raw := do(t, http.MethodPost, base+"/api/v1/mappings", key, body)
	if code != http.StatusCreated {
		t.Fatalf("create mapping: %d %s", code, raw)
	}
}
