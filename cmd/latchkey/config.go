package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/jobs"
)

// Roles a serve process can take.
const (
	roleAll       = "all"
	roleWeb       = "web"
	roleWorker    = "worker"
	roleScheduler = "scheduler"
)

// config is every setting of latchkey serve. It is filled from the
// environment, then from flags, and checked by validate.
type config struct {
	Addr           string
	DataDir        string
	PublicURL      string
	DatabaseURL    string
	RedisURL       string
	SMTPURL        string
	MailFrom       string
	ControllerURL  string
	ControllerKey  string
	ControllerKind string // lockctl or kisi
	AdminAPIKey    string
	EnvoySecrets   []string
	// EnvoyAPIURL, when set, switches on reports to Envoy, made with the
	// client id and the first Envoy secret.
	EnvoyAPIURL     string
	EnvoyClientID   string
	SecretKey       string
	Roles           map[string]bool
	Demo            bool
	LockDriver      string
	MQTTURL         string
	MQTTPrefix      string
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	Concurrency     int
	PollInterval    time.Duration
	TimeZone        string
	SweepEvery      time.Duration
	DriftEvery      time.Duration
	LostAfter       time.Duration
	EventRetention  time.Duration // lockctl events older than this are deleted
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) on a
	// listener of its own, never on the public address.
	DebugAddr string
	// TrustedProxies may set the client address and scheme.
	TrustedProxies []*net.IPNet
}

// has reports whether this process takes role r.
func (c *config) has(r string) bool { return c.Roles[roleAll] || c.Roles[r] }

// roleList names the roles, sorted.
func (c *config) roleList() string {
	roles := make([]string, 0, len(c.Roles))
	for r := range c.Roles {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return strings.Join(roles, ",")
}

// bundledController reports whether the connector drives the lockctl inside
// this deployment (no LATCHKEY_CONTROLLER_URL).
func (c *config) bundledController() bool { return c.ControllerURL == "" }

// minSecretBytes is the shortest admin key or Envoy secret accepted.
const minSecretBytes = 16

// settingError names the setting that is wrong.
type settingError struct {
	name string
	err  error
}

func (e *settingError) Error() string { return e.name + ": " + e.err.Error() }

func bad(name string, format string, args ...any) error {
	return &settingError{name: name, err: fmt.Errorf(format, args...)}
}

// loadConfig reads the environment, then the flags in args.
func loadConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := &config{
		Addr:           env("LATCHKEY_ADDR", ":8080"),
		DataDir:        env("LATCHKEY_DATA_DIR", "./data"),
		PublicURL:      env("LATCHKEY_PUBLIC_URL", ""),
		DatabaseURL:    env("DATABASE_URL", ""),
		RedisURL:       env("REDIS_URL", ""),
		SMTPURL:        env("SMTP_URL", ""),
		MailFrom:       env("LATCHKEY_MAIL_FROM", "latchkey <access@latchkey.localhost>"),
		ControllerURL:  env("LATCHKEY_CONTROLLER_URL", ""),
		ControllerKey:  env("LATCHKEY_CONTROLLER_API_KEY", ""),
		ControllerKind: env("LATCHKEY_CONTROLLER_KIND", ""),
		AdminAPIKey:    env("LATCHKEY_ADMIN_API_KEY", ""),
		SecretKey:      env("LATCHKEY_SECRET_KEY", ""),
		LockDriver:     env("LATCHKEY_LOCK_DRIVER", "sim"),
		MQTTURL:        env("LATCHKEY_MQTT_URL", "tcp://127.0.0.1:1883"),
		MQTTPrefix:     env("LATCHKEY_MQTT_PREFIX", "latchkey/locks"),
		LogFormat:      env("LATCHKEY_LOG_FORMAT", "auto"),
		TimeZone:       env("LATCHKEY_TIME_ZONE", ""),
		DebugAddr:      env("LATCHKEY_DEBUG_ADDR", ""),
		EnvoyAPIURL:    strings.TrimSpace(getenv("LATCHKEY_ENVOY_API_URL")),
		EnvoyClientID:  strings.TrimSpace(getenv("LATCHKEY_ENVOY_CLIENT_ID")),
	}
	for _, s := range strings.Split(getenv("LATCHKEY_ENVOY_SECRET"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.EnvoySecrets = append(c.EnvoySecrets, s)
		}
	}
	role := env("LATCHKEY_ROLE", roleAll)
	level := env("LATCHKEY_LOG_LEVEL", "info")
	shutdown := env("LATCHKEY_SHUTDOWN_TIMEOUT", "9s")
	poll := env("LATCHKEY_POLL_INTERVAL", "1s")
	concurrency := env("LATCHKEY_WORKER_CONCURRENCY", "20")
	durations := []struct {
		name, def string
		dst       *time.Duration
	}{
		{"LATCHKEY_SWEEP_INTERVAL", "30s", &c.SweepEvery},
		{"LATCHKEY_DRIFT_INTERVAL", "10m", &c.DriftEvery},
		{"LATCHKEY_LOST_AFTER", "30s", &c.LostAfter},
		{"LATCHKEY_EVENT_RETENTION", "2160h", &c.EventRetention},
	}

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (LATCHKEY_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory for SQLite and generated keys (LATCHKEY_DATA_DIR)")
	fs.StringVar(&role, "role", role, "comma-separated roles: web, worker, scheduler or all (LATCHKEY_ROLE)")
	fs.BoolVar(&c.Demo, "demo", false, "seed demo data: place HQ, doors, groups and the fixtures' flow mapping")
	fs.StringVar(&level, "log-level", level, "debug, info, warn or error (LATCHKEY_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var errs []error
	roleErr := false
	c.Roles = map[string]bool{}
	for _, r := range strings.Split(role, ",") {
		switch r = strings.TrimSpace(r); r {
		case roleAll, roleWeb, roleWorker, roleScheduler:
			c.Roles[r] = true
		default:
			errs = append(errs, bad("--role", "unknown role %q (want web, worker, scheduler or all)", r))
			roleErr = true
		}
	}
	if roleErr {
		c.Roles = map[string]bool{}
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		errs = append(errs, bad("LATCHKEY_LOG_LEVEL", "unknown level %q", level))
	}
	if c.LogFormat != "auto" && c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, bad("LATCHKEY_LOG_FORMAT", "want auto, json or text, got %q", c.LogFormat))
	}
	var err error
	if c.ShutdownTimeout, err = time.ParseDuration(shutdown); err != nil || c.ShutdownTimeout <= 0 {
		errs = append(errs, bad("LATCHKEY_SHUTDOWN_TIMEOUT", "want a positive duration such as 9s, got %q", shutdown))
	}
	if c.PollInterval, err = time.ParseDuration(poll); err != nil || c.PollInterval <= 0 {
		errs = append(errs, bad("LATCHKEY_POLL_INTERVAL", "want a positive duration such as 1s, got %q", poll))
	}
	for _, d := range durations {
		raw := env(d.name, d.def)
		v, err := time.ParseDuration(raw)
		if err != nil || v <= 0 {
			errs = append(errs, bad(d.name, "want a positive duration such as %s, got %q", d.def, raw))
		}
		*d.dst = v
	}
	if c.Concurrency, err = strconv.Atoi(concurrency); err != nil || c.Concurrency < 1 || c.Concurrency > 1000 {
		errs = append(errs, bad("LATCHKEY_WORKER_CONCURRENCY", "want a number from 1 to 1000, got %q", concurrency))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, bad("LATCHKEY_ADDR", "want host:port such as :8080, got %q", c.Addr))
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			errs = append(errs, bad("LATCHKEY_DEBUG_ADDR", "want host:port such as 127.0.0.1:6060, got %q", c.DebugAddr))
		}
	}
	if err := database.ValidateURL(c.DatabaseURL); err != nil {
		errs = append(errs, &settingError{"DATABASE_URL", err})
	}
	if c.RedisURL != "" {
		if err := jobs.ValidateRedisURL(c.RedisURL); err != nil {
			errs = append(errs, &settingError{"REDIS_URL", err})
		}
	} else if !c.Roles[roleAll] && len(c.Roles) > 0 {
		errs = append(errs, bad("REDIS_URL", "required with --role %s: the in-process Redis is private to one process", role))
	}
	if c.SMTPURL != "" {
		if err := mail.ValidateURL(c.SMTPURL); err != nil {
			errs = append(errs, &settingError{"SMTP_URL", err})
		}
	}
	if c.PublicURL != "" {
		if err := checkHTTPURL(c.PublicURL); err != nil {
			errs = append(errs, &settingError{"LATCHKEY_PUBLIC_URL", err})
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if c.ControllerURL != "" {
		if err := checkHTTPURL(c.ControllerURL); err != nil {
			errs = append(errs, &settingError{"LATCHKEY_CONTROLLER_URL", err})
		}
		if c.ControllerKey == "" {
			errs = append(errs, bad("LATCHKEY_CONTROLLER_API_KEY", "required with LATCHKEY_CONTROLLER_URL"))
		}
		c.ControllerURL = strings.TrimRight(c.ControllerURL, "/")
	}
	switch c.ControllerKind {
	case "":
		c.ControllerKind = "lockctl"
		if strings.Contains(c.ControllerURL, "kisi.io") {
			c.ControllerKind = "kisi"
		}
	case "lockctl", "kisi":
	default:
		errs = append(errs, bad("LATCHKEY_CONTROLLER_KIND", "want lockctl or kisi, got %q", c.ControllerKind))
	}
	if c.SecretKey != "" {
		if k, err := hex.DecodeString(c.SecretKey); err != nil || len(k) != 32 {
			errs = append(errs, bad("LATCHKEY_SECRET_KEY", "want 64 hex characters (32 bytes)"))
		}
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil {
			errs = append(errs, bad("LATCHKEY_TIME_ZONE", "want an IANA zone such as Europe/Berlin, got %q", c.TimeZone))
		}
	}
	// Short secrets can be guessed; the generated ones have 24 bytes.
	if n := len(c.AdminAPIKey); n > 0 && n < minSecretBytes {
		errs = append(errs, bad("LATCHKEY_ADMIN_API_KEY", "want at least %d bytes, got %d", minSecretBytes, n))
	}
	for i, sec := range c.EnvoySecrets {
		if len(sec) < minSecretBytes {
			errs = append(errs, bad("LATCHKEY_ENVOY_SECRET", "want at least %d bytes in each secret, secret %d has %d", minSecretBytes, i+1, len(sec)))
			break
		}
	}
	if c.EnvoyAPIURL != "" {
		if u, err := url.Parse(c.EnvoyAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, bad("LATCHKEY_ENVOY_API_URL", "want Envoy's base URL, such as https://app.envoy.com"))
		}
		if c.EnvoyClientID == "" {
			errs = append(errs, bad("LATCHKEY_ENVOY_CLIENT_ID", "needed with LATCHKEY_ENVOY_API_URL (the integration's client id)"))
		}
		if len(c.EnvoySecrets) == 0 {
			errs = append(errs, bad("LATCHKEY_ENVOY_SECRET", "needed with LATCHKEY_ENVOY_API_URL (the integration's client secret)"))
		}
	}
	if c.TrustedProxies, err = parseCIDRs(getenv("LATCHKEY_TRUSTED_PROXIES")); err != nil {
		errs = append(errs, &settingError{"LATCHKEY_TRUSTED_PROXIES", err})
	}
	if c.LockDriver != "sim" && c.LockDriver != "mqtt" {
		errs = append(errs, bad("LATCHKEY_LOCK_DRIVER", "want sim or mqtt, got %q", c.LockDriver))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// parseCIDRs reads a comma-separated list of CIDRs; a bare address is a
// network of one.
func parseCIDRs(raw string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, f := range strings.Split(raw, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			ip := net.ParseIP(f)
			if ip == nil {
				return nil, fmt.Errorf("want CIDRs such as 10.0.0.0/8,::1/128, got %q", f)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(f)
		if err != nil {
			return nil, fmt.Errorf("want CIDRs such as 10.0.0.0/8,::1/128, got %q", f)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// checkHTTPURL checks an absolute http(s) URL. Its errors never repeat
// the URL's password.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		return fmt.Errorf("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http(s) URL, got %q", maskURL(raw))
	}
	return nil
}

// mask shows that a secret is set without showing it.
func mask(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(set)"
}

// maskURL hides the credentials of a URL; it is the one helper for every
// URL we log, print or return.
func maskURL(raw string) string {
	if raw == "" {
		return "(unset)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	// Passwords may also sit in the query (libpq's password=, sslpassword=).
	q, masked := u.Query(), false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") || strings.EqualFold(k, "secret") {
			q.Set(k, "xxxxx")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// LogValue lets the config be logged with every secret masked.
func (c *config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("data_dir", c.DataDir),
		slog.String("public_url", maskURL(c.PublicURL)),
		slog.String("database_url", maskURL(c.DatabaseURL)),
		slog.String("redis_url", maskURL(c.RedisURL)),
		slog.String("smtp_url", maskURL(c.SMTPURL)),
		slog.String("controller_url", maskURL(c.ControllerURL)),
		slog.String("controller_kind", c.ControllerKind),
		slog.String("controller_api_key", mask(c.ControllerKey)),
		slog.String("admin_api_key", mask(c.AdminAPIKey)),
		slog.Int("envoy_secrets", len(c.EnvoySecrets)),
		slog.String("envoy_api_url", maskURL(c.EnvoyAPIURL)),
		slog.Bool("envoy_reports", c.EnvoyAPIURL != ""),
		slog.String("secret_key", mask(c.SecretKey)),
		slog.String("roles", c.roleList()),
		slog.Bool("demo", c.Demo),
		slog.String("lock_driver", c.LockDriver),
		slog.String("debug_addr", c.DebugAddr),
		slog.String("trusted_proxies", cidrList(c.TrustedProxies)),
	)
}

func cidrList(nets []*net.IPNet) string {
	s := make([]string, len(nets))
	for i, n := range nets {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}
