// Package stacktest starts the whole latchkey stack for one test: a fresh
// database (SQLite, or PostgreSQL with TEST_DATABASE_URL) migrated by the
// one ordered list, the bundled controller reached in memory through its
// own handler, the connector service, a Redis queue (miniredis, or
// TEST_REDIS_URL) with a worker, and the public server with webhooks, the
// admin API and the front desk. One settable Clock drives them all.
package stacktest

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/schema"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/jobs"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
	"github.com/latchkey/latchkey/webhooks"
)

// Keys and URLs every stack uses.
const (
	AdminKey    = "stacktest-admin-key-0123456789abcdef"
	EnvoySecret = "stacktest-envoy-secret"
	PublicURL   = "http://latchkey.test"
)

// Clock is a settable clock, safe for concurrent use. A clock from
// NewClock stands still until moved; one from RunningClock runs with the
// wall clock, and moves with Advance and Set all the same.
type Clock struct {
	mu      sync.Mutex
	t       time.Time
	running bool
	since   time.Time // wall time when t was last set, for a running clock
}

// NewClock returns a clock reading t, standing still.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// RunningClock returns a clock that reads the wall time until moved.
func RunningClock() *Clock {
	now := time.Now()
	return &Clock{t: now.UTC(), running: true, since: now}
}

// Now returns the clock's reading.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return c.t.Add(time.Since(c.since))
	}
	return c.t
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t, c.since = t, time.Now()
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Options changes how Start builds the stack.
type Options struct {
	// Start is the first reading of a clock standing still (default: a
	// clock running with the wall time).
	Start time.Time
	// Worker runs a queue worker, so queued syncs and emails happen.
	Worker bool
	// Queue, when set, takes the service's queued work instead of Redis
	// (a test that records what is queued); there is then no Redis, no
	// Stack.Queue and no worker.
	Queue connector.Queue
	// EnvoySecrets are the webhook signing secrets (default EnvoySecret).
	EnvoySecrets []string
	// Reporter, when set, reports jobs answered 202 back to Envoy.
	Reporter connector.Reporter
	// UI configures the front desk; its Controller, (when unset) Now and
	// QueueStats are the stack's.
	UI web.UIOptions
	// Listen serves the stack on a loopback port (Stack.URL), which is
	// also the public URL in pass links: for a browser.
	Listen bool
}

// Stack is one running latchkey for a test, torn down in cleanup.
type Stack struct {
	DB         *database.DB
	Clock      *Clock
	Controller *lockctl.Controller
	Kisi       *kisi.Client
	Mappings   *mappings.Store
	Outbox     *mail.Outbox
	Accounts   *accounts.Store
	Service    *connector.Service
	Queue      *jobs.Client // nil with Options.Queue
	// Server is the public HTTP server: /webhooks, /api/v1, /admin, /v.
	Server *web.Server
	// URL is where Server listens with Options.Listen, else PublicURL.
	URL string
}

// Start builds a fresh stack for t.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	ctx := context.Background()
	clock := RunningClock()
	if !o.Start.IsZero() {
		clock = NewClock(o.Start)
	}
	log := testenv.Logger(t)
	s := &Stack{DB: testenv.DB(t), Clock: clock, URL: PublicURL}
	var served http.Handler = http.NotFoundHandler()
	if o.Listen {
		// Pass links name the server, so it listens before the service
		// is built and serves the stack once it is.
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.ServeHTTP(w, r) }))
		t.Cleanup(ts.Close)
		s.URL = ts.URL
	}
	if err := schema.Migrate(ctx, s.DB, testenv.Postgres()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	box, err := secretbox.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s.Outbox = mail.NewOutbox(s.DB).WithSealer(box)
	sim := lockctl.NewSimDriver(nil)
	t.Cleanup(sim.Close)
	// Doors stay open for an hour, so no relay timer fires during a test.
	s.Controller = lockctl.New(log, s.DB, sim, s.Outbox, lockctl.Options{AdminAPIKey: AdminKey, Now: s.Clock.Now, SimUnlockDuration: time.Hour,
		// Its secret key lets it take idempotency keys, as serve's does.
		SecretKey: bytes.Repeat([]byte{8}, 32)})
	t.Cleanup(s.Controller.Close)
	if err := s.Controller.Seed(ctx); err != nil {
		t.Fatalf("seed controller: %v", err)
	}
	s.Kisi, err = kisi.New("http://lockctl.internal", kisi.Options{APIKey: AdminKey, SupportsUpdate: true, IdempotentCreates: true,
		RatePerSecond: math.Inf(1), Burst: 1, MaxRetries: -1, Local: s.Controller,
		HTTPClient: &http.Client{Timeout: kisi.DefaultTimeout, Transport: kisi.InProcess(s.Controller.Handler())}})
	if err != nil {
		t.Fatal(err)
	}
	s.Mappings = mappings.NewStore(s.DB)
	// A test that records the queue needs no Redis (a real one, from
	// TEST_REDIS_URL, is held by one test at a time).
	var q connector.Queue = o.Queue
	var rdb *jobs.Redis
	if q == nil {
		rdb, err = jobs.OpenRedis(testenv.RedisURL(t))
		if err != nil {
			t.Fatalf("open redis: %v", err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		s.Queue = jobs.NewClient(rdb)
		q = s.Queue
	}
	s.Service = connector.NewService(log, connector.NewStore(s.DB), s.Kisi, s.Outbox, box,
		connector.Options{PublicURL: s.URL, Now: s.Clock.Now, Queue: q, Reporter: o.Reporter,
			Dialer: kisi.Dialer{URL: "http://lockctl.internal", Options: kisi.Options{SupportsUpdate: true,
				RatePerSecond: math.Inf(1), Burst: 1, MaxRetries: -1, Local: s.Controller,
				HTTPClient: &http.Client{Timeout: kisi.DefaultTimeout, Transport: kisi.InProcess(s.Controller.Handler())}}}})
	t.Cleanup(s.Service.Close)
	s.Accounts = accounts.NewStore(s.DB)
	s.Server = web.New(log, nil, web.Options{})
	if len(o.EnvoySecrets) == 0 {
		o.EnvoySecrets = []string{EnvoySecret}
	}
	wh := webhooks.NewHandler(log, s.Service, o.EnvoySecrets, prometheus.NewRegistry()).WithInstaller(s.Service)
	wh.Register(s.Server.Group("/webhooks"))
	wh.RegisterRoutes(s.Server.Group("/envoy/routes"))
	web.NewAPI(log, s.Service, s.Mappings, s.Kisi, s.Outbox, AdminKey).WithKeys(s.Accounts).Register(s.Server)
	o.UI.Controller = s.Kisi
	if o.UI.Now == nil {
		o.UI.Now = s.Clock.Now
	}
	if o.UI.QueueStats == nil && s.Queue != nil {
		o.UI.QueueStats = func(ctx context.Context) (web.QueueStats, error) {
			st, err := s.Queue.Stats(ctx)
			return web.QueueStats(st), err
		}
	}
	ui, err := web.NewUI(log, s.Accounts, s.Service, s.Mappings, s.Kisi, s.Outbox, o.UI)
	if err != nil {
		t.Fatal(err)
	}
	ui.Register(s.Server)
	if o.Worker && rdb != nil {
		w := jobs.NewWorker(log, rdb, s.Service, s.Queue, jobs.WorkerOptions{PollInterval: 50 * time.Millisecond, ShutdownTimeout: 2 * time.Second,
			Now: s.Clock.Now})
		if err := w.Start(); err != nil {
			t.Fatalf("start worker: %v", err)
		}
		t.Cleanup(w.Shutdown)
	}
	served = s.Server
	return s
}
