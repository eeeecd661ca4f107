package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/internal/testenv"
)

// mapEnv is a getenv over a map.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunWithoutCommand(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), nil, mapEnv(nil), &out)
	if err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("run with no args: err = %v, want one saying no command was given", err)
	}
	if !strings.Contains(out.String(), "usage: latchkey") {
		t.Errorf("run with no args printed %q, want the usage", out.String())
	}
}

func TestRunUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, mapEnv(nil), &out)
	if err == nil || !strings.Contains(err.Error(), `"frobnicate"`) || !strings.Contains(err.Error(), "serve") {
		t.Errorf("run frobnicate: err = %v, want one naming the command and the valid ones", err)
	}
}

func TestRunHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, mapEnv(nil), &out); err != nil {
		t.Errorf("run help: %v", err)
	}
	for _, cmd := range []string{"serve", "lockctl", "simulate"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("help does not list %s:\n%s", cmd, out.String())
		}
	}
}

// runServeConfig runs `latchkey serve args` with env on a data dir that does
// not exist yet and a free port, and returns run's error and output. It
// fails the test if anything was started: a "starting" log line or the data
// dir created.
func runServeConfig(t *testing.T, args []string, env map[string]string) (string, error) {
	t.Helper()
	out, started, err := tryServeConfig(t, args, env)
	if started {
		t.Errorf("serve started despite the bad setting:\n%s", out)
	}
	return out, err
}

// tryServeConfig is runServeConfig reporting whether serve started instead
// of failing; a server that starts is stopped at once.
func tryServeConfig(t *testing.T, args []string, env map[string]string) (out string, started bool, err error) {
	t.Helper()
	out, dataDir, err := serveUntil(t, args, env, `"msg":"starting"`, 10*time.Second)
	_, serr := os.Stat(dataDir)
	return out, strings.Contains(out, `"msg":"starting"`) || serr == nil, err
}

// serveUntil runs `latchkey serve args` with env on a fresh data dir and a
// free port until marker is logged (or d passes), then stops it; it
// returns the output, the data dir and run's error.
func serveUntil(t *testing.T, args []string, env map[string]string, marker string, d time.Duration) (out, dataDir string, err error) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	full := map[string]string{
		"LATCHKEY_DATA_DIR": dataDir,
		"LATCHKEY_ADDR":     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	w := &cancelOnWrite{cancel: cancel, marker: marker}
	err = run(ctx, append([]string{"serve"}, args...), mapEnv(full), w)
	return w.String(), dataDir, err
}

// cancelOnWrite collects output and calls cancel once marker was written.
type cancelOnWrite struct {
	syncBuffer
	cancel func()
	marker string
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := c.syncBuffer.Write(p)
	if strings.Contains(c.String(), c.marker) {
		c.cancel()
	}
	return n, err
}

func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		setting string // the setting the error must name
	}{
		{"database url of another scheme", nil, map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"unparsable database url", nil, map[string]string{"DATABASE_URL": "postgres://%zz"}, "DATABASE_URL"},
		{"database url without host", nil, map[string]string{"DATABASE_URL": "postgres:///latchkey"}, "DATABASE_URL"},
		{"unknown role flag", []string{"--role", "janitor"}, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}, "--role"},
		{"unknown role in list", []string{"--role", "web,janitor"}, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379"}, "--role"},
		{"unknown role env", nil, map[string]string{"LATCHKEY_ROLE": "janitor", "REDIS_URL": "redis://127.0.0.1:6379"}, "--role"},
		{"bad log level", nil, map[string]string{"LATCHKEY_LOG_LEVEL": "loud"}, "LATCHKEY_LOG_LEVEL"},
		{"bad log level flag", []string{"--log-level", "loud"}, nil, "LATCHKEY_LOG_LEVEL"},
		{"bad log format", nil, map[string]string{"LATCHKEY_LOG_FORMAT": "xml"}, "LATCHKEY_LOG_FORMAT"},
		{"secret key not hex", nil, map[string]string{"LATCHKEY_SECRET_KEY": strings.Repeat("zz", 32)}, "LATCHKEY_SECRET_KEY"},
		{"secret key too short", nil, map[string]string{"LATCHKEY_SECRET_KEY": strings.Repeat("ab", 31)}, "LATCHKEY_SECRET_KEY"},
		{"web role without redis", []string{"--role", "web"}, nil, "REDIS_URL"},
		{"worker role without redis", []string{"--role", "worker,scheduler"}, nil, "REDIS_URL"},
		{"redis url of another scheme", nil, map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"},
		{"controller url without key", nil, map[string]string{"LATCHKEY_CONTROLLER_URL": "https://api.kisi.io"}, "LATCHKEY_CONTROLLER_API_KEY"},
		{"controller url not http", nil, map[string]string{"LATCHKEY_CONTROLLER_URL": "ftp://kisi", "LATCHKEY_CONTROLLER_API_KEY": "k"}, "LATCHKEY_CONTROLLER_URL"},
		{"controller kind", nil, map[string]string{"LATCHKEY_CONTROLLER_KIND": "acme"}, "LATCHKEY_CONTROLLER_KIND"},
		{"sweep interval not a duration", nil, map[string]string{"LATCHKEY_SWEEP_INTERVAL": "soon"}, "LATCHKEY_SWEEP_INTERVAL"},
		{"lost after zero", nil, map[string]string{"LATCHKEY_LOST_AFTER": "0s"}, "LATCHKEY_LOST_AFTER"},
		{"drift interval negative", nil, map[string]string{"LATCHKEY_DRIFT_INTERVAL": "-1m"}, "LATCHKEY_DRIFT_INTERVAL"},
		{"shutdown timeout not a duration", nil, map[string]string{"LATCHKEY_SHUTDOWN_TIMEOUT": "forever"}, "LATCHKEY_SHUTDOWN_TIMEOUT"},
		{"poll interval without unit", nil, map[string]string{"LATCHKEY_POLL_INTERVAL": "1"}, "LATCHKEY_POLL_INTERVAL"},
		{"concurrency zero", nil, map[string]string{"LATCHKEY_WORKER_CONCURRENCY": "0"}, "LATCHKEY_WORKER_CONCURRENCY"},
		{"concurrency not a number", nil, map[string]string{"LATCHKEY_WORKER_CONCURRENCY": "ten"}, "LATCHKEY_WORKER_CONCURRENCY"},
		{"debug address without a port", nil, map[string]string{"LATCHKEY_DEBUG_ADDR": "localhost"}, "LATCHKEY_DEBUG_ADDR"},
		{"addr without port", nil, map[string]string{"LATCHKEY_ADDR": "8080"}, "LATCHKEY_ADDR"},
		{"addr flag without port", []string{"--addr", "localhost"}, nil, "LATCHKEY_ADDR"},
		{"public url not absolute", nil, map[string]string{"LATCHKEY_PUBLIC_URL": "example.com"}, "LATCHKEY_PUBLIC_URL"},
		{"smtp url of another scheme", nil, map[string]string{"SMTP_URL": "ftp://mail.example.com"}, "SMTP_URL"},
		{"lock driver", nil, map[string]string{"LATCHKEY_LOCK_DRIVER": "zigbee"}, "LATCHKEY_LOCK_DRIVER"},
		{"one-character admin key", nil, map[string]string{"LATCHKEY_ADMIN_API_KEY": "x"}, "LATCHKEY_ADMIN_API_KEY"},
		{"15-byte admin key", nil, map[string]string{"LATCHKEY_ADMIN_API_KEY": strings.Repeat("k", 15)}, "LATCHKEY_ADMIN_API_KEY"},
		{"one-character envoy secret", nil, map[string]string{"LATCHKEY_ENVOY_SECRET": "x"}, "LATCHKEY_ENVOY_SECRET"},
		{"short envoy secret among long ones", nil, map[string]string{"LATCHKEY_ENVOY_SECRET": strings.Repeat("s", 32) + ",short"}, "LATCHKEY_ENVOY_SECRET"},
		{"trusted proxy not a CIDR", nil, map[string]string{"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, "LATCHKEY_TRUSTED_PROXIES"},
		{"trusted proxy bad mask", nil, map[string]string{"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/33"}, "LATCHKEY_TRUSTED_PROXIES"},
		{"envoy API URL not a URL", nil, map[string]string{"LATCHKEY_ENVOY_API_URL": "app.envoy.com", "LATCHKEY_ENVOY_CLIENT_ID": "c1", "LATCHKEY_ENVOY_SECRET": "an-envoy-secret-of-24-bytes"}, "LATCHKEY_ENVOY_API_URL"},
		{"envoy API URL without a client id", nil, map[string]string{"LATCHKEY_ENVOY_API_URL": "https://app.envoy.com", "LATCHKEY_ENVOY_SECRET": "an-envoy-secret-of-24-bytes"}, "LATCHKEY_ENVOY_CLIENT_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runServeConfig(t, tt.args, tt.env)
			if err == nil {
				t.Fatalf("serve %v with %v: no error", tt.args, tt.env)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.setting+": ") {
				t.Errorf("error %q does not start by naming %s", msg, tt.setting)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error for one bad setting spans several lines: %q", msg)
			}
		})
	}
}

func TestServeConfigErrorsNameEverySetting(t *testing.T) {
	_, err := runServeConfig(t, []string{"--role", "web"}, map[string]string{
		"LATCHKEY_LOG_LEVEL":      "loud",
		"LATCHKEY_SWEEP_INTERVAL": "soon",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"REDIS_URL", "LATCHKEY_LOG_LEVEL", "LATCHKEY_SWEEP_INTERVAL"} {
		if !strings.Contains(err.Error(), s+": ") {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"--colour"}} {
		_, err := runServeConfig(t, args, nil)
		if err == nil {
			t.Errorf("serve %v: no error", args)
		}
	}
}

// A mistyped role is one bad value and should give one line; today it also
// reports REDIS_URL as missing, which sends the operator after the wrong
// setting.
func TestServeConfigUnknownRoleIsOneError(t *testing.T) {
	_, err := runServeConfig(t, []string{"--role", "janitor"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "--role: ") {
		t.Fatalf("serve --role janitor: err = %v, want a --role error", err)
	}
	if strings.Contains(err.Error(), "REDIS_URL") {
		t.Fatalf("an unknown --role must be the only error, got %q", err)
	}
}

// A worker concurrency with trailing garbage must be refused like any other
// malformed number.
func TestServeConfigRejectsConcurrencyWithTrailingGarbage(t *testing.T) {
	_, started, err := tryServeConfig(t, nil, map[string]string{"LATCHKEY_WORKER_CONCURRENCY": "10x"})
	if started {
		t.Fatal(`LATCHKEY_WORKER_CONCURRENCY="10x" was accepted`)
	}
	if !strings.HasPrefix(err.Error(), "LATCHKEY_WORKER_CONCURRENCY: ") {
		t.Errorf("error %q does not name LATCHKEY_WORKER_CONCURRENCY", err)
	}
}

// An unparsable URL's error must name the setting without repeating the
// password it carries (the error goes to stderr and into process logs).
func TestServeConfigErrorsHidePasswords(t *testing.T) {
	const pw = "hunter2-url-password"
	tests := []struct {
		setting, value string
	}{
		{"DATABASE_URL", "postgres://latchkey:" + pw + "@%zz/latchkey"},
		{"REDIS_URL", "redis://:" + pw + "@%zz:6379/0"},
		{"SMTP_URL", "smtp://mailer:" + pw + "@%zz:587"},
		{"LATCHKEY_CONTROLLER_URL", "http://ctl:" + pw + "@%zz/api"},
		{"LATCHKEY_CONTROLLER_URL", "ftp://ctl:" + pw + "@kisi.example.com"},
		{"LATCHKEY_PUBLIC_URL", "ftp://desk:" + pw + "@desk.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			out, err := runServeConfig(t, nil, map[string]string{tt.setting: tt.value})
			if err == nil {
				t.Fatalf("%s=%q: no error", tt.setting, tt.value)
			}
			if !strings.HasPrefix(err.Error(), tt.setting+": ") {
				t.Errorf("error %q does not name %s", err, tt.setting)
			}
			if strings.Contains(out, pw) {
				t.Errorf("output repeats the password: %q", out)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("the %s error repeats the URL's password: %q", tt.setting, err)
			}
		})
	}
}

// containsAny returns the secrets that occur in s.
func containsAny(s string, secrets []string) []string {
	var found []string
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			found = append(found, sec)
		}
	}
	return found
}

// startingConfig returns the config group of the "starting" log line.
func startingConfig(t *testing.T, out string) map[string]any {
	t.Helper()
	for _, l := range logLines(out) {
		if l["msg"] == "starting" {
			cfg, _ := l["config"].(map[string]any)
			return cfg
		}
	}
	t.Fatalf("no starting line in:\n%s", out)
	return nil
}

// The start-up log of a process that fails to reach its database shows that
// each secret is set, never its value; neither does the error.
func TestStartupLogMasksSecrets(t *testing.T) {
	closed := freePort(t)
	secrets := map[string]string{
		"db":         "pg-password-" + randomHex(t, 6),
		"redis":      "redis-password-" + randomHex(t, 6),
		"smtp":       "smtp-password-" + randomHex(t, 6),
		"admin":      "admin-key-" + randomHex(t, 6),
		"envoy-old":  "envoy-old-" + randomHex(t, 6),
		"envoy-new":  "envoy-new-" + randomHex(t, 6),
		"secret-key": randomHex(t, 32),
		"controller": "controller-key-" + randomHex(t, 6),
		"ctl-url-pw": "controller-url-password-" + randomHex(t, 6),
	}
	env := map[string]string{
		"LATCHKEY_DATA_DIR":           filepath.Join(t.TempDir(), "data"),
		"LATCHKEY_ADDR":               fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"LATCHKEY_LOG_FORMAT":         "json",
		"DATABASE_URL":                fmt.Sprintf("postgres://latchkey:%s@127.0.0.1:%d/latchkey?sslmode=disable&connect_timeout=2", secrets["db"], closed),
		"REDIS_URL":                   fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", secrets["redis"], closed),
		"SMTP_URL":                    fmt.Sprintf("smtp://mailer:%s@127.0.0.1:%d", secrets["smtp"], closed),
		"LATCHKEY_ADMIN_API_KEY":      secrets["admin"],
		"LATCHKEY_ENVOY_SECRET":       secrets["envoy-old"] + "," + secrets["envoy-new"],
		"LATCHKEY_SECRET_KEY":         secrets["secret-key"],
		"LATCHKEY_CONTROLLER_URL":     fmt.Sprintf("http://ctl:%s@127.0.0.1:%d", secrets["ctl-url-pw"], closed),
		"LATCHKEY_CONTROLLER_API_KEY": secrets["controller"],
	}
	var values []string
	for _, v := range secrets {
		values = append(values, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"serve"}, mapEnv(env), &out)
	if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") {
		t.Errorf("serve against a closed database port: err = %v, want a DATABASE_URL error", err)
	}
	if found := containsAny(out.String(), values); len(found) > 0 {
		t.Errorf("start-up log shows secrets %q:\n%s", found, out.String())
	}
	if err != nil {
		if found := containsAny(err.Error(), values); len(found) > 0 {
			t.Errorf("error shows secrets %q: %v", found, err)
		}
	}
	cfg := startingConfig(t, out.String())
	got := map[string]any{}
	for _, k := range []string{"admin_api_key", "secret_key", "controller_api_key", "envoy_secrets", "database_url", "redis_url", "smtp_url", "controller_url"} {
		got[k] = cfg[k]
	}
	want := map[string]any{
		"admin_api_key": "(set)", "secret_key": "(set)", "controller_api_key": "(set)", "envoy_secrets": float64(2),
		"database_url":   fmt.Sprintf("postgres://latchkey:xxxxx@127.0.0.1:%d/latchkey?sslmode=disable&connect_timeout=2", closed),
		"redis_url":      fmt.Sprintf("redis://:xxxxx@127.0.0.1:%d/0", closed),
		"smtp_url":       fmt.Sprintf("smtp://mailer:xxxxx@127.0.0.1:%d", closed),
		"controller_url": fmt.Sprintf("http://ctl:xxxxx@127.0.0.1:%d", closed),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("start-up config (-want +got):\n%s", diff)
	}
}

// libpq accepts the password as a query parameter too; the start-up log
// must hide it there as well.
func TestStartupLogMasksPasswordInDatabaseURLQuery(t *testing.T) {
	const pw = "query-password-0f3c"
	env := map[string]string{
		"LATCHKEY_DATA_DIR":      filepath.Join(t.TempDir(), "data"),
		"LATCHKEY_ADDR":          fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"LATCHKEY_LOG_FORMAT":    "json",
		"DATABASE_URL":           fmt.Sprintf("postgres://latchkey@127.0.0.1:%d/latchkey?sslmode=disable&password=%s", freePort(t), pw),
		"LATCHKEY_ADMIN_API_KEY": "admin-" + randomHex(t, 12), "LATCHKEY_ENVOY_SECRET": "envoy-" + randomHex(t, 12), "LATCHKEY_SECRET_KEY": randomHex(t, 32),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"serve"}, mapEnv(env), &out)
	if err == nil {
		t.Fatal("serve against a closed port: no error")
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("error shows the password: %v", err)
	}
	if strings.Contains(out.String(), pw) {
		t.Errorf("the start-up log shows a DATABASE_URL password given as ?password=: %s", startingConfig(t, out.String())["database_url"])
	}
}

// A server run in this process, with secrets set, serving real traffic:
// nothing it logs from start to stop contains a secret or a pass token.
func TestRunningServerLogsNoSecrets(t *testing.T) {
	d := newDeployment(t, false)
	dbURL := d.DatabaseURL
	var dbPassword string
	if dbURL != "" {
		// Local PostgreSQL trusts the connection; the password only has to
		// stay out of the log.
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		dbPassword = "pg-" + randomHex(t, 6)
		u.User = url.UserPassword(u.User.Username(), dbPassword)
		dbURL = u.String()
	}
	port := freePort(t)
	env := d.env(map[string]string{"LATCHKEY_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "DATABASE_URL": dbURL, "LATCHKEY_LOG_LEVEL": "debug"})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = run(ctx, []string{"serve", "--demo"}, mapEnv(env), out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop within 20s of its context ending")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), `"msg":"ready"`) {
		select {
		case <-done:
			t.Fatalf("serve ended: %v\n%s", runErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 30s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitHTTP(t, base+"/healthz", http.StatusOK, 10*time.Second)

	if code, _ := postWebhook(t, base, walkInBody(t, nil), "wrong-"+d.EnvoySecret); code != http.StatusUnauthorized {
		t.Errorf("badly signed webhook: %d, want 401", code)
	}
	if code, _ := do(t, http.MethodGet, base+"/api/v1/visits", "wrong-"+d.AdminKey, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong API key: %d, want 401", code)
	}
	res := signIn(t, base, d.EnvoySecret, walkInBody(t, nil))
	v := waitVisit(t, base, d.AdminKey, res.VisitID, 15*time.Second, "synced", syncedWithOneLink)
	if v.PassURL == "" {
		t.Fatalf("synced visit has no pass URL: %+v", v)
	}
	if code, _ := do(t, http.MethodGet, v.PassURL, "", nil); code != http.StatusOK {
		t.Errorf("GET pass page: %d", code)
	}
	pass := v.PassURL[strings.LastIndex(v.PassURL, "/")+1:]

	cancel()
	select {
	case <-done:
		if runErr != nil {
			t.Errorf("serve returned %v after its context ended", runErr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := out.String()
	if !strings.Contains(log, `"msg":"stopped"`) {
		t.Errorf("no stopped line in the log")
	}
	secrets := []string{d.AdminKey, d.EnvoySecret, d.SecretKey, pass, dbPassword}
	if found := containsAny(log, secrets); len(found) > 0 {
		t.Errorf("the log shows secrets %q:\n%s", found, log)
	}
	if testenv.Postgres() && !strings.Contains(log, "xxxxx") {
		t.Errorf("the log does not show the redacted database URL")
	}
	var cfg map[string]any
	for _, l := range logLines(log) {
		if l["msg"] == "starting" {
			cfg, _ = l["config"].(map[string]any)
		}
	}
	b, _ := json.Marshal(cfg)
	if !strings.Contains(string(b), `"admin_api_key":"(set)"`) {
		t.Errorf("start-up config does not show the admin key as (set): %s", b)
	}
}

// With no LATCHKEY_PUBLIC_URL, emailed links point at loopback: serve says
// so once, naming the setting; with a public address it says nothing.
func TestServeWarnsWhenLinksPointAtLoopback(t *testing.T) {
	serveUntilReady := func(env map[string]string) string {
		t.Helper()
		out, _, err := serveUntil(t, nil, env, `"msg":"ready"`, 20*time.Second)
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, out)
		}
		if !strings.Contains(out, `"msg":"ready"`) {
			t.Fatalf("serve never got ready:\n%s", out)
		}
		return out
	}
	out := serveUntilReady(nil)
	if n := strings.Count(out, "set LATCHKEY_PUBLIC_URL"); n != 1 {
		t.Errorf("without a public URL: %d warnings naming LATCHKEY_PUBLIC_URL, want 1:\n%s", n, out)
	}
	out = serveUntilReady(map[string]string{"LATCHKEY_PUBLIC_URL": "https://doors.example.com"})
	if strings.Contains(out, "set LATCHKEY_PUBLIC_URL") {
		t.Errorf("with a public URL: warned anyway:\n%s", out)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	nets, err := parseCIDRs(" 10.0.0.1, fd00::/64,192.168.0.0/16 ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cidrList(nets), "10.0.0.1/32,fd00::/64,192.168.0.0/16"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if nets, err := parseCIDRs(""); err != nil || len(nets) != 0 {
		t.Errorf("empty setting: %v, %v; want no proxies", nets, err)
	}
}

// TestServeConfigAcceptsSixteenByteSecrets: 16 bytes is enough for the admin
// key and every Envoy secret.
func TestServeConfigAcceptsSixteenByteSecrets(t *testing.T) {
	env := mapEnv(map[string]string{"LATCHKEY_ADMIN_API_KEY": strings.Repeat("k", 16), "LATCHKEY_ENVOY_SECRET": strings.Repeat("a", 16) + "," + strings.Repeat("b", 40)})
	if _, err := loadConfig(nil, env, io.Discard); err != nil {
		t.Fatalf("16-byte secrets refused: %v", err)
	}
}
