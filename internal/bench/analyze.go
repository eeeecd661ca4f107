package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/latchkey/latchkey/internal/database"
)

// analyze stands in for autovacuum on a PostgreSQL server that runs
// without it: between phases it refreshes the planner's statistics, as
// autovacuum's analyze would have while the previous phase grew the
// tables. Without statistics PostgreSQL keeps each connection's plans from
// when the tables were nearly empty (sequential scans), and a phase would
// measure those instead of the server. With autovacuum on, or on SQLite,
// it does nothing.
func (b *Bench) analyze(ctx context.Context) {
	if !database.IsPostgres(b.cfg.DatabaseURL) || b.autovacuum == "on" {
		return
	}
	db, err := database.Open(ctx, b.cfg.DatabaseURL, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintf(b.cfg.Progress, "  analyze: %v\n", err)
		return
	}
	defer database.Close(db)
	if b.autovacuum == "" {
		if err := db.WithContext(ctx).Raw("SHOW autovacuum").Scan(&b.autovacuum).Error; err != nil {
			fmt.Fprintf(b.cfg.Progress, "  analyze: %v\n", err)
			return
		}
		if b.autovacuum == "on" {
			return
		}
	}
	if err := db.WithContext(ctx).Exec("ANALYZE").Error; err != nil {
		fmt.Fprintf(b.cfg.Progress, "  analyze: %v\n", err)
		return
	}
	fmt.Fprintf(b.cfg.Progress, "  autovacuum is off: ANALYZE, as autovacuum would have\n")
}
