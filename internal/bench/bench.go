package bench

import (
	"context"
	"fmt"
	"golang.org/x/time/rate"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Phases in the order they run. The unlock phase uses the passes the
// signin phase made usable, and signout then revokes them; burst is the
// front desk's busy moment (see Bench.burst).
var Phases = []string{"ceiling", "quiet", "ingest", "signin", "unlock", "signout", "burst"}

// Config says what to drive and how hard. The zero value of a field means
// its default.
type Config struct {
	URL, Secret, APIKey string
	Location, Flow      string
	// Rate is the paced rate of the ingest and unlock phases (per second).
	Rate float64
	// EventRate is the paced rate of sign-ins and sign-outs (per second).
	EventRate float64
	// QuietRate is the paced rate of the quiet phase's sign-ins (5/s).
	QuietRate float64
	// NoWorker says the server runs no worker (LATCHKEY_ROLE=web): the
	// bench does not wait for one between phases.
	NoWorker bool
	// PollRate bounds, across all waiting guests, how many times per
	// second the signin and signout phases try a door to see whether
	// access changed (default 400). Without the bound, a server that falls
	// behind is buried under its own guests' retries, and the latency it
	// reports is that of the retries.
	PollRate float64
	// Concurrency bounds requests in flight per phase.
	Concurrency int
	// Duration bounds each phase; Count, when set, bounds its operations.
	Duration time.Duration
	Count    int
	// Phases to run, a subset of Phases.
	Phases []string
	// DatabaseURL is the server's database for the insert ceiling: a
	// postgres URL, or "" with SQLitePath.
	DatabaseURL, SQLitePath string
	// PID is the server's process, for CPU and memory (0: not measured).
	PID int
	// Progress receives a line per phase about once a second.
	Progress io.Writer
}

// Report is everything one run measured.
type Report struct {
	URL         string   `json:"url"`
	Database    string   `json:"database"`
	PID         int      `json:"server_pid,omitempty"`
	Phases      []Phase  `json:"phases"`
	EchoRate    float64  `json:"echo_rate,omitempty"`
	InsertRate  float64  `json:"insert_tx_rate,omitempty"`
	PeakRSSMB   float64  `json:"server_peak_rss_mb,omitempty"`
	HWMMB       float64  `json:"server_rss_high_water_mb,omitempty"`
	Ratios      []Ratio  `json:"ratios,omitempty"`
	Targets     []Target `json:"targets,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	LockID      int64    `json:"lock_id,omitempty"`
	Concurrency int      `json:"concurrency"`
}

// Bench runs the phases against one server. Build it with New.
type Bench struct {
	cfg    Config
	http   *http.Client
	procs  *procs
	runID  int64
	seq    atomic.Int64
	jobs   atomic.Int64
	lockID int64

	// polls paces the door tries of waiting guests (Config.PollRate).
	polls *rate.Limiter

	mu     sync.Mutex
	usable []*visitor // passes that opened a door, for unlock and signout

	// autovacuum is the server database's setting, once analyze read it.
	autovacuum string
}

// New returns a Bench for cfg with defaults filled in.
func New(cfg Config) *Bench {
	if cfg.Rate <= 0 {
		cfg.Rate = 2000
	}
	if cfg.EventRate <= 0 {
		cfg.EventRate = 200
	}
	if cfg.QuietRate <= 0 {
		cfg.QuietRate = 5
	}
	if cfg.PollRate <= 0 {
		cfg.PollRate = 400
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if len(cfg.Phases) == 0 {
		cfg.Phases = Phases
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * cfg.Concurrency,
		MaxIdleConnsPerHost: 4 * cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Bench{cfg: cfg, http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		runID: time.Now().Unix() % 1000000, polls: rate.NewLimiter(rate.Limit(cfg.PollRate), max(1, int(cfg.PollRate/20)))}
}

func (b *Bench) has(phase string) bool { return slices.Contains(b.cfg.Phases, phase) }

// Run runs the selected phases in order and returns what they measured.
// It fails only when the server cannot be used at all (unreachable, wrong
// secret, unmapped flow); failed requests within a phase are counted.
func (b *Bench) Run(ctx context.Context) (*Report, error) {
	var stores []string
	if b.cfg.DatabaseURL != "" {
		stores = []string{"postgres", "redis-server"}
	}
	b.procs = newProcs(b.cfg.PID, stores, b.statements)
	defer b.procs.close()
	r := &Report{URL: b.cfg.URL, PID: b.cfg.PID, Concurrency: b.cfg.Concurrency, Database: "sqlite " + b.cfg.SQLitePath}
	if b.cfg.DatabaseURL != "" {
		r.Database = redactURL(b.cfg.DatabaseURL)
	}
	if b.has("ceiling") {
		b.section("ceiling: bare echo handler and single-row insert transactions")
		echo := b.echoCeiling(ctx)
		r.Phases = append(r.Phases, echo)
		r.EchoRate = echo.Rate
		ins, err := b.insertCeiling(ctx)
		if err != nil {
			r.Notes = append(r.Notes, "insert ceiling not measured: "+err.Error())
		} else {
			r.Phases = append(r.Phases, ins)
			r.InsertRate = ins.Rate
		}
	}
	needsServer := b.has("quiet") || b.has("ingest") || b.has("signin") || b.has("unlock") || b.has("signout") || b.has("burst")
	if !needsServer {
		b.finish(r)
		return r, nil
	}
	// One webhook first: a wrong secret or an unmapped flow should stop the
	// run with one clear line, not thousands of errors.
	if _, _, err := b.postWebhook(ctx, b.envoyBody(b.newVisitor(), "entry_sign_in", time.Now())); err != nil {
		return nil, fmt.Errorf("first webhook: %w", err)
	}
	// Statistics for what --seed stored, or an earlier run left.
	b.analyze(ctx)
	if b.has("quiet") || b.has("signin") || b.has("unlock") || b.has("signout") {
		if b.cfg.APIKey == "" {
			return nil, fmt.Errorf("the quiet, signin, unlock and signout phases need the admin API key (--api-key) to find each visit's pass")
		}
		id, err := b.discoverLock(ctx)
		if err != nil {
			return nil, err
		}
		b.lockID, r.LockID = id, id
	}
	if b.has("quiet") {
		// First, while the server is idle: nothing queued, workers asleep.
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
		b.pause(ctx, 2*time.Second)
		b.section(fmt.Sprintf("quiet: sign-in -> usable and -> email captured, %.0f/s", b.cfg.QuietRate))
		r.Phases = append(r.Phases, b.quiet(ctx))
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
	}
	if b.has("ingest") {
		b.section("ingest: signed entry_sign_in webhooks, each a new visit")
		r.Phases = append(r.Phases, b.ingest(ctx, load{Concurrency: b.cfg.Concurrency, Duration: b.cfg.Duration, Count: b.cfg.Count}, "ingest-max"))
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
		r.Phases = append(r.Phases, b.ingest(ctx, load{Rate: b.cfg.Rate, Concurrency: b.cfg.Concurrency, Duration: b.cfg.Duration, Count: b.cfg.Count}, "ingest"))
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
	}
	if b.has("signin") {
		b.section(fmt.Sprintf("signin: sign-in -> first successful unlock through the pass, %.0f/s", b.cfg.EventRate))
		r.Phases = append(r.Phases, b.signin(ctx))
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
	}
	if b.has("unlock") {
		if err := b.ensurePasses(ctx, b.passesNeeded()); err != nil {
			return nil, err
		}
		// The passes' emails must not share the phase's cores.
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
		b.section(fmt.Sprintf("unlock: guest unlocks over %d passes (one client address each)", len(b.usable)))
		r.Phases = append(r.Phases, b.unlocks(ctx, load{Concurrency: b.cfg.Concurrency, Duration: b.cfg.Duration, Count: b.cfg.Count}, "unlock-max"))
		// Let the per-link token buckets refill before the paced run.
		b.pause(ctx, 5*time.Second)
		r.Phases = append(r.Phases, b.unlocks(ctx, load{Rate: b.cfg.Rate, Concurrency: b.cfg.Concurrency, Duration: b.cfg.Duration, Count: b.cfg.Count}, "unlock"))
		b.pause(ctx, 2*time.Second)
	}
	if b.has("signout") {
		n := int(b.cfg.EventRate * b.cfg.Duration.Seconds())
		if b.cfg.Count > 0 {
			n = min(n, b.cfg.Count)
		}
		if err := b.ensurePasses(ctx, n); err != nil {
			return nil, err
		}
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
		b.section(fmt.Sprintf("signout: sign-out -> first refused unlock through the pass, %.0f/s", b.cfg.EventRate))
		r.Phases = append(r.Phases, b.signout(ctx))
	}
	if b.has("burst") {
		if b.cfg.APIKey == "" {
			return nil, fmt.Errorf("the burst phase needs the admin API key (--api-key) for its front-desk actions")
		}
		if err := b.settle(ctx); err != nil {
			return nil, err
		}
		b.section(fmt.Sprintf("burst: %d front-desk actions and %d sign-ins at once, round after round", burstSize, burstSize))
		r.Phases = append(r.Phases, b.burst(ctx))
	}
	b.finish(r)
	return r, nil
}

func (b *Bench) section(s string) { fmt.Fprintf(b.cfg.Progress, "%s\n", s) }

// settle waits until the worker has worked off the phase's backlog, so it
// does not land in the next phase.
func (b *Bench) settle(ctx context.Context) error {
	if !b.cfg.NoWorker {
		b.section("settle: waiting for the worker to catch up")
		if err := b.drain(ctx, 10*time.Minute); err != nil {
			return err
		}
	}
	b.analyze(ctx)
	return nil
}

func (b *Bench) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.LastIndex(s, "@"); j > i {
			rest := s[i+3 : j]
			if user, _, ok := strings.Cut(rest, ":"); ok {
				return s[:i+3] + user + ":***" + s[j:]
			}
		}
	}
	return s
}

// CheckLoopback returns an error unless rawURL's host is on this machine's
// loopback: the bench is a load generator and must not be pointed at
// anything else.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--url %q: not an absolute URL", rawURL)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--url %q: load goes only to loopback (127.0.0.1, ::1, localhost)", rawURL)
}
