package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/bench"
	"github.com/latchkey/latchkey/internal/database"
)

const benchUsage = `usage: latchkey bench [flags]

Drives a running latchkey over loopback with signed Envoy webhooks and guest
pass unlocks, prints progress about once a second, then a table of
throughput, latency percentiles, CPU per operation (server, and PostgreSQL
and Redis on this machine), database statements per operation and memory,
the machine's ceiling (a bare echo handler, single-row insert transactions)
with our figures as ratios of it, and the targets met or missed. Phases run
in the order ceiling, quiet, ingest, signin, unlock, signout, burst.
--seed N first bulk-inserts N visits with their links straight into the
database, to measure how cost grows with stored data.`

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		cfg             bench.Config
		phases, dataDir string
		asJSON          bool
		seed            int
	)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { fmt.Fprintln(stdout, benchUsage); fs.PrintDefaults() }
	fs.StringVar(&cfg.URL, "url", envOr(getenv, "LATCHKEY_URL", "http://127.0.0.1:8080"), "base URL of the running server, on this machine (LATCHKEY_URL)")
	fs.StringVar(&cfg.Secret, "secret", firstSecret(getenv("LATCHKEY_ENVOY_SECRET")), "Envoy signing secret (LATCHKEY_ENVOY_SECRET; default: the data dir's envoy-secret)")
	fs.StringVar(&cfg.APIKey, "api-key", strings.TrimSpace(getenv("LATCHKEY_ADMIN_API_KEY")), "admin API key, to find each visit's pass (LATCHKEY_ADMIN_API_KEY; default: the data dir's admin-api-key)")
	fs.StringVar(&dataDir, "data-dir", envOr(getenv, "LATCHKEY_DATA_DIR", ""), "the server's data dir, for keys and the SQLite file (default: the server process's, else ./data)")
	fs.Float64Var(&cfg.Rate, "rate", 2000, "paced rate of the ingest and unlock phases, per second")
	fs.Float64Var(&cfg.EventRate, "event-rate", 200, "paced rate of the signin and signout phases, per second")
	fs.Float64Var(&cfg.QuietRate, "quiet-rate", 5, "paced rate of the quiet phase's sign-ins, per second")
	fs.Float64Var(&cfg.PollRate, "poll-rate", 400, "door tries per second at most, over all guests waiting in the signin and signout phases")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "requests in flight at most (closed-loop phases use exactly this many)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of each phase")
	fs.IntVar(&cfg.Count, "count", 0, "operations per phase at most (0: bounded by --duration only)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "the server's database for the insert ceiling and --seed (default: the server process's DATABASE_URL, else the SQLite file in the data dir)")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id for CPU and memory (default: the process listening on --url's port)")
	fs.StringVar(&phases, "phases", strings.Join(bench.Phases, ","), "phases to run: "+strings.Join(bench.Phases, ","))
	fs.StringVar(&cfg.Location, "location", demoLocationID, "Envoy location id (mapped, like the demo's)")
	fs.StringVar(&cfg.Flow, "flow", demoFlowID, "Envoy flow id (mapped, like the demo's)")
	fs.IntVar(&seed, "seed", 0, "first bulk-insert this many visits with links into the database")
	fs.BoolVar(&cfg.NoWorker, "no-worker", false, "the server runs no worker (LATCHKEY_ROLE=web): do not wait for one between phases; measures the webhook receiver alone")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON (progress still goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	if err := bench.CheckLoopback(cfg.URL); err != nil {
		return err
	}
	cfg.Phases = nil
	for _, p := range strings.Split(phases, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(bench.Phases, p) {
			return fmt.Errorf("bench: --phases: unknown phase %q (want some of %s)", p, strings.Join(bench.Phases, ","))
		}
		cfg.Phases = append(cfg.Phases, p)
	}
	if cfg.PID == 0 {
		if pid, err := bench.FindPID(cfg.URL); err == nil {
			cfg.PID = pid
		} else {
			fmt.Fprintf(os.Stderr, "server process not found (%v): CPU and memory not measured; pass --pid\n", err)
		}
	}
	dataDir = serverDataDir(dataDir, cfg.PID)
	if cfg.Secret == "" {
		cfg.Secret = readKeyFile(dataDir, "envoy-secret")
	}
	if cfg.APIKey == "" {
		cfg.APIKey = readKeyFile(dataDir, "admin-api-key")
	}
	if cfg.Secret == "" && slices.ContainsFunc(cfg.Phases, func(p string) bool { return p != "ceiling" }) {
		return fmt.Errorf("bench: no signing secret: set LATCHKEY_ENVOY_SECRET or --secret (none in %s)", dataDir)
	}
	if cfg.DatabaseURL == "" && cfg.PID > 0 {
		cfg.DatabaseURL = bench.ProcEnv(cfg.PID, "DATABASE_URL")
	}
	if cfg.DatabaseURL == "" {
		sqlitePath := database.SQLitePath(dataDir)
		if _, err := os.Stat(sqlitePath); err == nil {
			cfg.SQLitePath = sqlitePath
		}
	}
	progress := io.Writer(stdout)
	if asJSON {
		progress = os.Stderr
	}
	cfg.Progress = progress
	if seed > 0 {
		if err := bench.Seed(ctx, cfg.DatabaseURL, cfg.SQLitePath, seed, progress); err != nil {
			return fmt.Errorf("bench: seed: %w", err)
		}
	}
	rep, err := bench.New(cfg).Run(ctx)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	bench.Print(stdout, rep)
	return nil
}

// serverDataDir picks the data dir: the flag or LATCHKEY_DATA_DIR, else the
// server process's own (its LATCHKEY_DATA_DIR, relative to its working
// directory), else ./data.
func serverDataDir(dir string, pid int) string {
	if dir != "" {
		return dir
	}
	if pid > 0 {
		cwd := bench.ProcDir(pid)
		d := bench.ProcEnv(pid, "LATCHKEY_DATA_DIR")
		if d == "" {
			d = "data"
		}
		if !filepath.IsAbs(d) && cwd != "" {
			d = filepath.Join(cwd, d)
		}
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return "./data"
}
