package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/envoy"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/redisserver"
	"github.com/latchkey/latchkey/internal/schema"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/jobs"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
	"github.com/latchkey/latchkey/webhooks"
)

// app holds what serve built, for shutdown in reverse order.
type app struct {
	log       *slog.Logger
	lockctl   *lockctl.Controller // the bundled controller this process serves, or nil
	service   *connector.Service
	db        *database.DB
	redis     *jobs.Redis
	miniredis *redisserver.Server
	srv       *web.Server
	worker    *jobs.Worker
	scheduler *jobs.Scheduler
	queuesUI  *asynqmon.HTTPHandler
	debug     *http.Server
	// clock is the database's time; stopClock ends its re-measuring.
	clock     *database.Clock
	stopClock context.CancelFunc
	serveErr  chan error
	// listenAddr is where the web role listens ("" without it).
	listenAddr string
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	started := time.Now()
	cfg, err := loadConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogFormat, cfg.LogLevel)
	if err := ensureKeys(cfg, log); err != nil {
		return err
	}
	log.Info("starting", "config", cfg)
	a := &app{log: log, serveErr: make(chan error, 1)}
	defer a.close()
	if err := a.start(ctx, cfg); err != nil {
		return err
	}
	if cfg.DebugAddr != "" {
		if err := a.startDebug(cfg.DebugAddr); err != nil {
			return err
		}
	}
	log.Info("ready", "addr", a.addr(), "roles", cfg.roleList(), "startup", time.Since(started).Round(time.Millisecond).String())
	select {
	case <-ctx.Done():
	case err := <-a.serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	a.shutdown(sctx)
	log.Info("stopped")
	return nil
}

// ensureKeys fills unset keys from files in the data dir, creating them on
// first start, and says where they are (never what they are).
func ensureKeys(cfg *config, log *slog.Logger) error {
	type key struct {
		name string
		n    int
		dst  func(string)
		set  bool
	}
	keys := []key{
		{"admin-api-key", 24, func(k string) { cfg.AdminAPIKey = k }, cfg.AdminAPIKey != ""},
		{"envoy-secret", 24, func(k string) { cfg.EnvoySecrets = []string{k} }, len(cfg.EnvoySecrets) > 0},
		{"secret-key", 32, func(k string) { cfg.SecretKey = k }, cfg.SecretKey != ""},
	}
	for _, k := range keys {
		if k.set {
			continue
		}
		v, created, err := loadOrCreateKey(cfg.DataDir, k.name, k.n)
		if err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
		k.dst(v)
		if created {
			log.Info("generated key", "file", filepath.Join(cfg.DataDir, k.name))
		}
	}
	return nil
}

func (a *app) addr() string { return a.listenAddr }

// localRuns bounds the syncs and emails a worker process runs at once
// beside its queue's workers (more wait for the queue).
const localRuns = 4

func (a *app) start(ctx context.Context, cfg *config) error {
	log := a.log
	var err error
	if a.db, err = database.Open(ctx, cfg.DatabaseURL, database.SQLitePath(cfg.DataDir), log); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := schema.Migrate(ctx, a.db, database.IsPostgres(cfg.DatabaseURL)); err != nil {
		return err
	}
	a.startClock(ctx)
	redisURL := cfg.RedisURL
	if redisURL == "" {
		if a.miniredis, err = redisserver.Start("127.0.0.1:0"); err != nil {
			return err
		}
		redisURL = a.miniredis.URL()
		log.Info("using in-process redis", "addr", redisURL)
	}
	if a.redis, err = jobs.OpenRedis(redisURL); err != nil {
		return err
	}
	if err := a.redis.Ping(ctx); err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	client := jobs.NewClient(a.redis)

	var ln net.Listener
	if cfg.has(roleWeb) {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("LATCHKEY_ADDR: %w", err)
		}
	}
	if ln != nil {
		checks := []web.Check{
			{Name: "database", Func: func(ctx context.Context) error { return database.Ready(ctx, a.db) }},
			{Name: "queue", Func: a.redis.Ping},
		}
		a.srv = web.New(log, checks, web.Options{TrustedProxies: cfg.TrustedProxies})
	}
	public := cfg.PublicURL
	if public == "" && ln != nil {
		public = "http://" + loopbackAddr(ln.Addr())
	}
	if cfg.has(roleWorker) {
		warnLocalPublicURL(log, public) // the worker is what emails links
	}
	box, err := secretbox.NewFromHex(cfg.SecretKey)
	if err != nil {
		return fmt.Errorf("LATCHKEY_SECRET_KEY: %w", err)
	}
	var (
		sender mail.Sender
		outbox *mail.Outbox
	)
	if cfg.SMTPURL != "" {
		if sender, err = mail.NewSMTP(cfg.SMTPURL, cfg.MailFrom, mail.SMTPOptions{}); err != nil {
			return fmt.Errorf("SMTP_URL: %w", err)
		}
	} else {
		// Captured mail holds pass URLs and link secrets: sealed at rest.
		outbox = mail.NewOutbox(a.db).WithSealer(box)
		sender = outbox
	}
	// The bundled controller is served at /lockctl for other processes and
	// tools; this process calls it in memory, through its own handler.
	var lc *lockctl.Controller
	if ln != nil && cfg.bundledController() {
		driver, err := newDriver(ctx, cfg, log)
		if err != nil {
			return err
		}
		lc = lockctl.New(log, a.db, driver, sender, lockctl.Options{AdminAPIKey: cfg.AdminAPIKey, PublicURL: public + "/lockctl",
			EventRetention: cfg.EventRetention, Now: a.clock.Now, SecretKey: idempotencyKeyFrom(cfg.SecretKey)})
		lc.Register(a.srv.Group("/lockctl"))
		a.lockctl = lc
		go lc.RunSweeps(ctx, cfg.SweepEvery)
		if cfg.Demo {
			if err := lc.Seed(ctx); err != nil {
				return fmt.Errorf("demo seed: %w", err)
			}
		}
	}
	ctrlURL, ctrlKey := cfg.ControllerURL, cfg.ControllerKey
	if cfg.bundledController() {
		ctrlKey = cfg.AdminAPIKey
		switch {
		case ln != nil:
			ctrlURL = "http://" + loopbackAddr(ln.Addr()) + "/lockctl"
		case public != "":
			ctrlURL = public + "/lockctl"
		default:
			return fmt.Errorf("LATCHKEY_CONTROLLER_URL: needed when this process has no web role (or set LATCHKEY_PUBLIC_URL to a web process)")
		}
	}
	kopts := kisi.Options{APIKey: ctrlKey, SupportsUpdate: cfg.ControllerKind == "lockctl", IdempotentCreates: cfg.ControllerKind == "lockctl"}
	if cfg.bundledController() {
		kopts.RatePerSecond, kopts.Burst = math.Inf(1), 1
		if lc != nil {
			// The controller is served by this very process: call its own
			// handler in memory, not over loopback TCP and not through the
			// public server's middleware.
			kopts.HTTPClient = &http.Client{Timeout: kisi.DefaultTimeout, Transport: kisi.InProcess(http.StripPrefix("/lockctl", lc.Handler()))}
			// Unlocks skip even that: the controller decides in memory.
			kopts.Local = lc
		}
	}
	var m *metrics.Metrics
	if a.srv != nil {
		m = metrics.New(a.srv.Registry())
		metrics.RegisterStatements(a.srv.Registry(), database.StatementsOf(a.db))
		kopts.WrapTransport = m.Transport
	}
	ac, err := kisi.New(ctrlURL, kopts)
	if err != nil {
		return fmt.Errorf("LATCHKEY_CONTROLLER_URL: %w", err)
	}
	maps := mappings.NewStore(a.db)
	var reporter connector.Reporter
	if cfg.EnvoyAPIURL != "" {
		// The integration's client secret is the one its events are
		// signed with: the first of LATCHKEY_ENVOY_SECRET.
		if reporter, err = envoy.New(cfg.EnvoyAPIURL, envoy.Options{ClientID: cfg.EnvoyClientID, ClientSecret: cfg.EnvoySecrets[0]}); err != nil {
			return fmt.Errorf("LATCHKEY_ENVOY_API_URL: %w", err)
		}
	}
	svc := connector.NewService(log, connector.NewStore(a.db), ac, sender, box, connector.Options{PublicURL: public, Now: a.clock.Now, Queue: client,
		Dialer: kisi.Dialer{URL: ctrlURL, Options: kopts}, Reporter: reporter})
	a.service = svc

	if ln != nil {
		metrics.RegisterVisits(a.srv.Registry(), connector.StatusNames(), 10*time.Second, svc.Store().VisitCounter(10*time.Minute))
		wh := webhooks.NewHandler(log, svc, cfg.EnvoySecrets, a.srv.Registry()).WithInstaller(svc).WithMetrics(m)
		wh.Register(a.srv.Group("/webhooks"))
		wh.RegisterRoutes(a.srv.Group("/envoy/routes"))
		accts := accounts.NewStore(a.db)
		web.NewAPI(log, svc, maps, ac, outbox, cfg.AdminAPIKey).WithKeys(accts).WithMetrics(m).Register(a.srv)
		setupToken, err := prepareSetup(ctx, accts, cfg.DataDir)
		if err != nil {
			return err
		}
		if err := a.registerUI(cfg, accts, setupToken, redisURL, svc, maps, ac, client, outbox); err != nil {
			return err
		}
		if setupToken != "" {
			// The contract: the one-time link is printed at start-up. It
			// opens nothing once the first admin exists.
			log.Info("first-run setup", "url", maskURL(public)+"/admin/setup?token="+setupToken)
		}
		if cfg.Demo {
			// Seed before serving, so the first request sees the demo
			// mapping (the bundled controller answers in memory).
			if err := seedDemoMapping(ctx, maps, ac, log); err != nil {
				return fmt.Errorf("demo seed: %w", err)
			}
		}
		a.listenAddr = ln.Addr().String()
		go func() {
			if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.serveErr <- err
			}
		}()
	}
	if cfg.has(roleWorker) {
		a.worker = jobs.NewWorker(log, a.redis, svc, client, jobs.WorkerOptions{
			Concurrency: cfg.Concurrency, PollInterval: cfg.PollInterval, LostAfter: cfg.LostAfter,
			ShutdownTimeout: max(cfg.ShutdownTimeout-time.Second, time.Second),
			Now:             a.clock.Now, ToLocal: a.clock.ToLocal, Metrics: m,
		})
		// Work this process enqueues starts at once here too, instead of
		// waiting for the next poll of an idle queue; the queued copy is
		// the durable record (see jobs.Client.RunLocally).
		client.RunLocally(a.worker, localRuns)
		if err := a.worker.Start(); err != nil {
			return err
		}
	}
	if cfg.has(roleScheduler) {
		a.scheduler = jobs.NewScheduler(log, a.redis, jobs.SchedulerOptions{ExpireEvery: cfg.SweepEvery, LostEvery: cfg.SweepEvery, DriftEvery: cfg.DriftEvery})
		a.scheduler.Start()
	}
	return nil
}

// registerUI mounts the front desk, with the queue dashboard for admins.
func (a *app) registerUI(cfg *config, accts *accounts.Store, setupToken, redisURL string, svc *connector.Service, maps *mappings.Store, ctrl *kisi.Client, client *jobs.Client, outbox *mail.Outbox) error {
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", jobs.ValidateRedisURL("\x00"))
	}
	a.queuesUI = asynqmon.New(asynqmon.Options{RootPath: "/admin/queues", RedisConnOpt: opt})
	zone := cfg.TimeZone
	if zone == "" && cfg.Demo {
		zone = "Europe/Berlin"
	}
	ui, err := web.NewUI(a.log, accts, svc, maps, ctrl, outbox, web.UIOptions{
		Demo: cfg.Demo, SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://"),
		Controller: ctrl, TimeZone: zone, Queues: a.queuesUI, ClockOffset: a.clock.Offset,
		SetupToken: setupToken,
		SetupDone: func() {
			if err := removeSetupToken(cfg.DataDir); err != nil {
				a.log.Warn("remove setup token", "err", err)
			}
		},
		QueueStats: func(ctx context.Context) (web.QueueStats, error) {
			s, err := client.Stats(ctx)
			return web.QueueStats(s), err
		},
	})
	if err != nil {
		return err
	}
	ui.Register(a.srv)
	return nil
}

var _ kisi.Local = (*lockctl.Controller)(nil)

func newDriver(ctx context.Context, cfg *config, log *slog.Logger) (lockctl.Driver, error) {
	if cfg.LockDriver == "mqtt" {
		d, err := lockctl.NewMQTTDriver(ctx, cfg.MQTTURL, cfg.MQTTPrefix, log)
		if err != nil {
			return nil, fmt.Errorf("LATCHKEY_MQTT_URL: %w", err)
		}
		return d, nil
	}
	return lockctl.NewSimDriver(nil), nil
}

// loopbackAddr turns a listen address such as [::]:8080 into one this
// process can dial.
func loopbackAddr(addr net.Addr) string { return reachableAddr(addr.String()) }

// reachableAddr is host:port addr with a wildcard or missing host replaced
// by loopback; addr itself when it is not host:port.
func reachableAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// warnLocalPublicURL says once, naming LATCHKEY_PUBLIC_URL, when the links
// put in guest emails would point at this machine only.
func warnLocalPublicURL(log *slog.Logger, public string) {
	u, err := url.Parse(public)
	if err != nil {
		return
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		log.Warn("links in guest emails point at "+public+", which a guest's phone cannot open: set LATCHKEY_PUBLIC_URL to the address guests reach",
			"setting", "LATCHKEY_PUBLIC_URL", "public_url", public)
	}
}

// shutdown stops the scheduler, lets the worker finish its tasks in flight
// (the bundled controller still answers meanwhile), then stops HTTP.
func (a *app) shutdown(ctx context.Context) {
	if a.scheduler != nil {
		a.scheduler.Stop(ctx)
	}
	var wg sync.WaitGroup
	if a.worker != nil {
		a.worker.Shutdown()
	}
	if a.srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.srv.Shutdown(ctx); err != nil {
				a.log.Warn("http shutdown", "err", err)
			}
		}()
	}
	if a.debug != nil {
		_ = a.debug.Close()
	}
	wg.Wait()
	// Their queued timeline rows and audit events, once no request or
	// task is left to add any.
	if a.service != nil {
		a.service.Close()
	}
	if a.lockctl != nil {
		a.lockctl.Close()
	}
}

// idempotencyKeyFrom derives, from the hex secret key, the key lockctl
// derives the secrets of idempotent link creates with (a key of its own,
// so no other use of the secret key shares it).
func idempotencyKeyFrom(secretKeyHex string) []byte {
	k, err := hex.DecodeString(secretKeyHex)
	if err != nil || len(k) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("lockctl idempotent creates"))
	return m.Sum(nil)
}

// clockSkewLimit is how far this machine's clock may be off the database's
// before serve says so loudly.
const clockSkewLimit = 2 * time.Second

// startClock measures this machine's clock against the database's, says
// loudly when they differ by more than clockSkewLimit, and keeps measuring
// every 30 s: leases, window edges and sweeps are judged by the database's
// clock, so a replica with a wrong clock neither ends access early nor
// flaps a link.
func (a *app) startClock(ctx context.Context) {
	a.clock = database.NewClock(a.db, nil)
	var skewed atomic.Bool
	report := func(off time.Duration) {
		if off.Abs() > clockSkewLimit {
			if !skewed.Swap(true) {
				a.log.Error("this machine's clock is "+off.Round(time.Millisecond).String()+" off the database's; latchkey goes by the database's clock, but fix this machine's time (NTP)",
					"clock_offset", off.String())
			}
		} else if skewed.Swap(false) {
			a.log.Info("this machine's clock agrees with the database's again", "clock_offset", off.String())
		}
	}
	if off, err := a.clock.Measure(ctx); err != nil {
		a.log.Warn("could not read the database clock; using this machine's", "err", err)
	} else {
		report(off)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopClock = cancel
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				off, err := a.clock.Measure(cctx)
				if err != nil {
					continue // keep the last offset; readiness reports the database
				}
				report(off)
			}
		}
	}()
}

// startDebug serves Go's profiler on addr, for diagnosing a live process.
func (a *app) startDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("LATCHKEY_DEBUG_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.debug.Serve(ln) }()
	a.log.Info("profiler listening", "addr", ln.Addr().String())
	return nil
}

func (a *app) close() {
	if a.stopClock != nil {
		a.stopClock()
	}
	if a.queuesUI != nil {
		_ = a.queuesUI.Close()
	}
	if a.redis != nil {
		_ = a.redis.Close()
	}
	if a.miniredis != nil {
		a.miniredis.Close()
	}
	// Queued timeline rows and audit events are written before the
	// database closes, also when serving failed and shutdown never ran
	// (both closes are idempotent).
	if a.service != nil {
		a.service.Close()
	}
	if a.lockctl != nil {
		a.lockctl.Close()
	}
	if a.db != nil {
		_ = database.Close(a.db)
	}
}
