package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/database"
)

// echoCeiling serves a bare echo handler in this process on loopback and
// drives it closed-loop like the server: the request rate this machine
// reaches with nothing behind the handler.
func (b *Bench) echoCeiling(ctx context.Context) Phase {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Phase{Name: "echo", Note: "not measured: " + err.Error()}
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	p := b.drive(ctx, "echo", load{Concurrency: b.cfg.Concurrency, Duration: b.cfg.Duration, Count: b.cfg.Count},
		func(ctx context.Context, _ int) (outcome, int, string) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return outcomeError, 0, err.Error()
			}
			resp, err := b.http.Do(req)
			if err != nil {
				return outcomeError, 0, err.Error()
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return outcomeError, resp.StatusCode, resp.Status
			}
			return outcomeOK, resp.StatusCode, ""
		})
	// The echo server runs inside the bench: its CPU is the client's.
	p.ServerCPU, p.ServerRSSMB, p.StoreCPU, p.CPUPerOpMs, p.StatementsPerOp = 0, 0, 0, 0, 0
	p.Note = "bare echo handler served by the bench process itself"
	return p
}

// insertCeiling runs single-row insert transactions (BEGIN; INSERT;
// COMMIT) on the server's database, in a scratch table dropped afterwards,
// through a pool sized like the server's.
func (b *Bench) insertCeiling(ctx context.Context) (Phase, error) {
	if b.cfg.DatabaseURL == "" && b.cfg.SQLitePath == "" {
		return Phase{}, errors.New("no database given (--database-url)")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := database.Open(ctx, b.cfg.DatabaseURL, b.cfg.SQLitePath, log)
	if err != nil {
		return Phase{}, err
	}
	defer database.Close(db)
	sqlDB, err := db.DB()
	if err != nil {
		return Phase{}, err
	}
	table := fmt.Sprintf("bench_ceiling_%d", b.runID)
	ddl := "CREATE TABLE " + table + " (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL, at TIMESTAMP NOT NULL)"
	ins := "INSERT INTO " + table + " (v, at) VALUES (?, ?)"
	conc := min(b.cfg.Concurrency, 4)
	if database.IsPostgres(b.cfg.DatabaseURL) {
		ddl = "CREATE TABLE " + table + " (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)"
		ins = "INSERT INTO " + table + " (v, at) VALUES ($1, $2)"
		conc = min(b.cfg.Concurrency, 20)
	}
	if _, err := sqlDB.ExecContext(ctx, ddl); err != nil {
		return Phase{}, fmt.Errorf("create scratch table: %w", err)
	}
	defer func() {
		if _, err := sqlDB.ExecContext(context.WithoutCancel(ctx), "DROP TABLE "+table); err != nil {
			fmt.Fprintf(b.cfg.Progress, "  could not drop scratch table %s: %v\n", table, err)
		}
	}()
	p := b.drive(ctx, "insert-tx", load{Concurrency: conc, Duration: b.cfg.Duration, Count: b.cfg.Count},
		func(ctx context.Context, i int) (outcome, int, string) {
			tx, err := sqlDB.BeginTx(ctx, nil)
			if err != nil {
				return outcomeError, 0, err.Error()
			}
			if _, err := tx.ExecContext(ctx, ins, fmt.Sprintf("row %d", i), time.Now().UTC()); err != nil {
				_ = tx.Rollback()
				return outcomeError, 0, err.Error()
			}
			if err := tx.Commit(); err != nil {
				return outcomeError, 0, err.Error()
			}
			return outcomeOK, 0, ""
		})
	p.Note = fmt.Sprintf("BEGIN; INSERT one row; COMMIT, %d connections, same database as the server", conc)
	return p, nil
}
