package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/web"
)

// runLockctl runs the bundled controller alone, with Kisi's paths at the
// root and /healthz, /readyz and /metrics beside them:
// latchkey lockctl [--addr :8081] [--demo].
func runLockctl(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lockctl", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", envOr(getenv, "LATCHKEY_ADDR", ":8081"), "listen address (LATCHKEY_ADDR)")
	dataDir := fs.String("data-dir", envOr(getenv, "LATCHKEY_DATA_DIR", "./data"), "data directory (LATCHKEY_DATA_DIR)")
	demo := fs.Bool("demo", false, "seed place HQ, doors and groups")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := &config{DataDir: *dataDir, AdminAPIKey: strings.TrimSpace(getenv("LATCHKEY_ADMIN_API_KEY")), LockDriver: envOr(getenv, "LATCHKEY_LOCK_DRIVER", "sim"),
		MQTTURL: envOr(getenv, "LATCHKEY_MQTT_URL", "tcp://127.0.0.1:1883"), MQTTPrefix: envOr(getenv, "LATCHKEY_MQTT_PREFIX", "latchkey/locks"),
		SecretKey: strings.TrimSpace(getenv("LATCHKEY_SECRET_KEY")), EnvoySecrets: []string{"unused"}}
	if n := len(cfg.AdminAPIKey); n > 0 && n < minSecretBytes {
		return bad("LATCHKEY_ADMIN_API_KEY", "want at least %d bytes, got %d", minSecretBytes, n)
	}
	trusted, err := parseCIDRs(getenv("LATCHKEY_TRUSTED_PROXIES"))
	if err != nil {
		return &settingError{"LATCHKEY_TRUSTED_PROXIES", err}
	}
	dsn := strings.TrimSpace(getenv("DATABASE_URL"))
	if err := database.ValidateURL(dsn); err != nil {
		return &settingError{"DATABASE_URL", err}
	}
	if smtpURL := getenv("SMTP_URL"); smtpURL != "" {
		if err := mail.ValidateURL(smtpURL); err != nil {
			return &settingError{"SMTP_URL", err}
		}
	}
	log := newLogger(stdout, envOr(getenv, "LATCHKEY_LOG_FORMAT", "auto"), 0)
	if err := ensureKeys(cfg, log); err != nil {
		return err
	}
	db, err := database.Open(ctx, dsn, database.SQLitePath(*dataDir), log)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer database.Close(db)
	if err := lockctl.Migrate(ctx, db); err != nil {
		return err
	}
	if err := mail.Migrate(ctx, db); err != nil {
		return err
	}
	// The secret key seals captured mail, which holds link secrets.
	box, err := secretbox.NewFromHex(cfg.SecretKey)
	if err != nil {
		return fmt.Errorf("LATCHKEY_SECRET_KEY: %w", err)
	}
	var sender mail.Sender = mail.NewOutbox(db).WithSealer(box)
	if smtpURL := getenv("SMTP_URL"); smtpURL != "" {
		if sender, err = mail.NewSMTP(smtpURL, envOr(getenv, "LATCHKEY_MAIL_FROM", "lockctl <access@latchkey.localhost>"), mail.SMTPOptions{}); err != nil {
			return &settingError{"SMTP_URL", err}
		}
	}
	driver, err := newDriver(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return &settingError{"LATCHKEY_ADDR", err}
	}
	public := envOr(getenv, "LATCHKEY_PUBLIC_URL", "http://"+loopbackAddr(ln.Addr()))
	warnLocalPublicURL(log, public)
	retention, err := time.ParseDuration(envOr(getenv, "LATCHKEY_EVENT_RETENTION", "2160h"))
	if err != nil || retention <= 0 {
		return &settingError{"LATCHKEY_EVENT_RETENTION", fmt.Errorf("want a positive duration such as 2160h")}
	}
	lc := lockctl.New(log, db, driver, sender, lockctl.Options{AdminAPIKey: cfg.AdminAPIKey, PublicURL: public, EventRetention: retention,
		SecretKey: idempotencyKeyFrom(cfg.SecretKey)})
	go lc.RunSweeps(ctx, time.Minute)
	if *demo {
		if err := lc.Seed(ctx); err != nil {
			return fmt.Errorf("demo seed: %w", err)
		}
	}
	srv := web.HTTPServer(lockctlHandler(log, lc, db, trusted), web.Options{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("lockctl ready", "addr", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-errc:
		lc.Close() // queued audit events, before the database closes
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	lc.Close() // queued audit events, once no request is left to add any
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(getenv func(string) string, k, def string) string {
	if v := strings.TrimSpace(getenv(k)); v != "" {
		return v
	}
	return def
}
