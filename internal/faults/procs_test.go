package faults

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "latchkey-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "latchkey")
	switch {
	case testing.Short():
		binErr = fmt.Errorf("fault tests do not run with -short")
	case os.Getenv("LATCHKEY_FAULT_TESTS") == "":
		// They take minutes and start their own servers: .ci/run runs
		// them in a step of their own rather than in every go test ./...
		binErr = fmt.Errorf("fault tests run only with LATCHKEY_FAULT_TESTS=1 (as .ci/run does)")
	default:
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/latchkey/latchkey/cmd/latchkey").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// latchkeyBin returns the binary built for this run, or fails the test.
func latchkeyBin(t *testing.T) string {
	t.Helper()
	if binErr != nil {
		if testing.Short() || os.Getenv("LATCHKEY_FAULT_TESTS") == "" {
			t.Skip(binErr)
		}
		t.Fatal(binErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
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

// child is a process the test started and must stop.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// start runs name with args and env (added to a minimal environment); the
// process is killed at cleanup if still running, and its output is logged
// when the test fails.
func start(t *testing.T, name string, env []string, bin string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c := &child{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("%s output (last 4000 bytes):\n%s", name, tail(out.String(), 4000))
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop sends SIGTERM and waits up to d, then kills.
func (c *child) stop(d time.Duration) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(d):
		c.kill()
	}
}

// waitHTTP polls url until it answers want or d passes.
func waitHTTP(t *testing.T, url string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %s (last: %s)", url, want, d, last)
}

// redisServer is a private redis-server on its own port, which a test may
// stop and start again (empty: it keeps nothing on disk).
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	c    *child
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: skipping (CI machines have it)")
	}
	r := &redisServer{t: t, bin: bin, port: freePort(t)}
	r.start()
	return r
}

func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.c = start(r.t, "redis-server", nil, r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", r.t.TempDir())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), 200*time.Millisecond); err == nil {
			conn.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("redis-server did not listen on %d", r.port)
}

func (r *redisServer) stop() { r.c.kill() }

// postgres is a private PostgreSQL cluster in a temporary directory.
type postgres struct {
	t          *testing.T
	bin, dir   string
	port       int
	runAs      []string
	sockDir    string
	cleanupDir string
}

// pgBinDir finds PostgreSQL's server programs (initdb, pg_ctl).
func pgBinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

func startPostgres(t *testing.T) *postgres {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Skip("PostgreSQL's initdb is not installed: skipping (CI machines have it)")
	}
	dir, err := os.MkdirTemp("", "latchkey-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &postgres{t: t, bin: bin, dir: filepath.Join(dir, "data"), sockDir: dir, cleanupDir: dir, port: freePort(t)}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: run the cluster as postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			t.Skip("running as root and there is no postgres user for initdb: skipping")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	t.Cleanup(func() {
		p.pgctl("stop", "-m", "immediate")
		os.RemoveAll(p.cleanupDir)
	})
	if out, err := p.run(filepath.Join(bin, "initdb"), "-D", p.dir, "-U", "postgres", "--auth=trust", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	return p
}

func (p *postgres) run(name string, args ...string) (string, error) {
	full := append(append([]string(nil), p.runAs...), name)
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput()
	return string(out), err
}

func (p *postgres) pgctl(args ...string) (string, error) {
	return p.run(filepath.Join(p.bin, "pg_ctl"), append([]string{"-D", p.dir, "-w"}, args...)...)
}

func (p *postgres) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.sockDir)
	if out, err := p.pgctl("-o", opts, "-l", filepath.Join(p.sockDir, "pg.log"), "start"); err != nil {
		p.t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

func (p *postgres) stop() {
	p.t.Helper()
	if out, err := p.pgctl("stop", "-m", "fast"); err != nil {
		p.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (p *postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// server is one latchkey process and what a test needs to talk to it.
type server struct {
	*child
	base, apiKey, secret string
}

// serve starts latchkey with args on a free port and waits for /healthz.
// env adds to (and overrides) the defaults: a fresh data dir, fixed keys
// and fast polling and sweeps, so faults heal within the tests' bounds.
func serve(t *testing.T, name string, env map[string]string, args ...string) *server {
	t.Helper()
	bin := latchkeyBin(t)
	port := freePort(t)
	if a, ok := env["LATCHKEY_ADDR"]; ok {
		// A restart on the address of the process it replaces.
		_, p, _ := net.SplitHostPort(a)
		var err error
		if port, err = strconv.Atoi(p); err != nil {
			t.Fatalf("LATCHKEY_ADDR %q: %v", a, err)
		}
	}
	s := &server{base: fmt.Sprintf("http://127.0.0.1:%d", port), apiKey: "faults-admin-key-0123456789abcdef", secret: "faults-envoy-secret-0123456789"}
	vars := map[string]string{
		"LATCHKEY_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "LATCHKEY_DATA_DIR": t.TempDir(),
		"LATCHKEY_ADMIN_API_KEY": s.apiKey, "LATCHKEY_ENVOY_SECRET": s.secret,
		"LATCHKEY_SECRET_KEY": strings.Repeat("ab", 32),
		"LATCHKEY_LOG_FORMAT": "json", "LATCHKEY_LOG_LEVEL": "warn",
		"LATCHKEY_POLL_INTERVAL": "100ms", "LATCHKEY_SWEEP_INTERVAL": "2s", "LATCHKEY_LOST_AFTER": "3s",
		"LATCHKEY_SHUTDOWN_TIMEOUT": "3s",
	}
	for k, v := range env {
		vars[k] = v
	}
	var list []string
	for k, v := range vars {
		list = append(list, k+"="+v)
	}
	s.child = start(t, name, list, bin, args...)
	// lockctl is waited for by the caller; a worker alone serves no HTTP.
	if a := strings.Join(args, " "); strings.Contains(a, "lockctl") || strings.HasSuffix(a, "--role worker") {
		return s
	}
	waitHTTP(t, s.base+"/healthz", http.StatusOK, 30*time.Second)
	return s
}

func lookRedis() (string, error) { return exec.LookPath("redis-server") }
