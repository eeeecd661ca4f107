package bench

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// procStat is a process's CPU time so far and its resident memory now.
type procStat struct {
	cpu time.Duration
	rss int64 // bytes
}

// readStat reads /proc/<pid>/stat; pid "self" is this process.
func readStat(pid string) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return procStat{}, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("bad /proc/%s/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// After ')': state is field 3, utime 14, stime 15, rss 24 (1-based).
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("short /proc/%s/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{
		cpu: time.Duration(ut+st) * time.Second / clockTicks,
		rss: rss * int64(os.Getpagesize()),
	}, nil
}

// peakRSS returns VmHWM, the process's peak resident memory since it
// started, in bytes.
func peakRSS(pid string) int64 {
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// procs samples the server's and this process's CPU and memory, and, when
// the server runs on PostgreSQL + Redis, the CPU of those processes on this
// machine. It is safe for concurrent use.
type procs struct {
	pid string // "" when the server's process is unknown
	// backends names the processes whose CPU counts as the server's
	// stores (by /proc/<pid>/comm); none on the embedded default.
	backends []string
	// statements reads the server's database round trips so far (its
	// latchkey_db_statements_total), or fails.
	statements func() (float64, error)
	mu         sync.Mutex
	peak       int64 // highest RSS seen since the last begin
	stop       chan struct{}
}

func newProcs(pid int, backends []string, statements func() (float64, error)) *procs {
	p := &procs{stop: make(chan struct{}), backends: backends, statements: statements}
	if pid > 0 {
		p.pid = strconv.Itoa(pid)
		go p.sample()
	}
	return p
}

func (p *procs) sample() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if s, err := readStat(p.pid); err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, s.rss)
				p.mu.Unlock()
			}
		}
	}
}

func (p *procs) close() { close(p.stop) }

type window struct {
	at             time.Time
	server, client procStat
	backends       map[string]time.Duration // pid → CPU so far
	stmts          float64                  // -1: not known
}

// backendCPU returns the CPU so far of every process named in names.
func backendCPU(names []string) map[string]time.Duration {
	if len(names) == 0 {
		return nil
	}
	out := map[string]time.Duration{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || !slices.Contains(names, strings.TrimSpace(string(comm))) {
			continue
		}
		if s, err := readStat(filepath.Base(d)); err == nil {
			out[filepath.Base(d)] = s.cpu
		}
	}
	return out
}

func (p *procs) begin() window {
	w := window{at: time.Now(), stmts: -1}
	w.client, _ = readStat("self")
	w.backends = backendCPU(p.backends)
	if p.statements != nil {
		if n, err := p.statements(); err == nil {
			w.stmts = n
		}
	}
	if p.pid != "" {
		w.server, _ = readStat(p.pid)
		p.mu.Lock()
		p.peak = w.server.rss
		p.mu.Unlock()
	}
	return w
}

func (p *procs) end(w window, ph *Phase) {
	wall := time.Since(w.at).Seconds()
	if c, err := readStat("self"); err == nil {
		ph.ClientCPU = round((c.cpu-w.client.cpu).Seconds()/wall, 2)
	}
	ops := float64(ph.OK + ph.Refused + ph.Limited)
	if ops > 0 && w.stmts >= 0 {
		if n, err := p.statements(); err == nil {
			ph.StatementsPerOp = round((n-w.stmts)/ops, 1)
		}
	}
	if p.pid == "" {
		return
	}
	s, err := readStat(p.pid)
	if err != nil {
		return
	}
	ph.ServerCPU = round((s.cpu-w.server.cpu).Seconds()/wall, 2)
	p.mu.Lock()
	ph.ServerRSSMB = round(float64(max(p.peak, s.rss))/(1<<20), 1)
	p.mu.Unlock()
	// A store process that started during the phase counts from zero;
	// one that ended is missed (the server keeps its connections open).
	var backend time.Duration
	for pid, cpu := range backendCPU(p.backends) {
		backend += cpu - w.backends[pid]
	}
	ph.StoreCPU = round(backend.Seconds()/wall, 2)
	if ops > 0 {
		ph.CPUPerOpMs = round(((s.cpu-w.server.cpu)+backend).Seconds()*1000/ops, 3)
	}
}

// FindPID returns the pid of the process listening on rawURL's TCP port on
// this machine, by matching the listening socket in /proc/net/tcp{,6} to a
// process's open files. It returns an error when none is found (or /proc
// cannot be read, as for another user's process without privileges).
func FindPID(rawURL string) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return 0, fmt.Errorf("no port in %s", rawURL)
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == pn {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", pn)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, d := range dirs {
		fds, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(d, fd.Name())); err == nil && inodes[l] {
				return strconv.Atoi(filepath.Base(filepath.Dir(d)))
			}
		}
	}
	return 0, fmt.Errorf("no process found for port %d", pn)
}

// ProcEnv returns the value of key in process pid's environment, or "".
func ProcEnv(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// ProcDir returns process pid's working directory, or "".
func ProcDir(pid int) string {
	d, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return ""
	}
	return d
}
