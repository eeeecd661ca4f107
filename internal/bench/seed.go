package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/lockctl"
)

// seedBatch is the number of visits written per transaction.
const seedBatch = 1000

// Seed bulk-inserts n past visits straight into the server's database, as
// history accumulates in production: each an expired, synced visit with
// one removed link, one webhook delivery, two timeline entries and one
// controller audit event. Live lookups (pass, dedupe key, source, links by
// visit) must stay as fast with this history as without it. Seeded visits
// are already synced and expired, so no sweep picks them up.
func Seed(ctx context.Context, dsn, sqlitePath string, n int, progress io.Writer) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := database.Open(ctx, dsn, sqlitePath, log)
	if err != nil {
		return err
	}
	defer database.Close(db)
	run := time.Now().UnixNano()
	start := time.Now()
	last := start
	base := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	for done := 0; done < n; {
		k := min(seedBatch, n-done)
		visits := make([]connector.Visit, k)
		for i := range visits {
			j := done + i
			at := base.Add(time.Duration(j%(29*24*3600)) * time.Second)
			from, until := at, at.Add(4*time.Hour)
			v := &visits[i]
			v.InstallID, v.LocationID = "1", "seed"
			v.SourceID = fmt.Sprintf("entry:seed%d-%d", run, j)
			v.FlowID, v.FlowName, v.TimeZone = "seed", "Visitor", "Europe/Berlin"
			v.Name, v.Email = fmt.Sprintf("Seeded Guest %d", j), fmt.Sprintf("seed%d-%d@bench.example", run, j)
			v.Status, v.Reason = connector.StatusExpired, "access ended"
			v.ValidFrom, v.ValidUntil = &from, &until
			v.Version, v.SyncedVersion = 2, 2
			v.PassHash, v.PassSalt = randomHex(32), randomHex(16)
			v.CreatedAt, v.UpdatedAt = at, until
		}
		err := db.WithContext(ctx).Transaction(func(tx *database.DB) error {
			if err := tx.CreateInBatches(visits, 500).Error; err != nil {
				return fmt.Errorf("visits: %w", err)
			}
			links := make([]connector.VisitLink, k)
			dels := make([]connector.Delivery, k)
			tl := make([]connector.TimelineEntry, 0, 2*k)
			evs := make([]lockctl.Event, k)
			for i := range visits {
				v := &visits[i]
				links[i] = connector.VisitLink{VisitID: v.ID, GroupID: 1, Name: v.Name + " (Visitor)",
					ValidFrom: *v.ValidFrom, ValidUntil: *v.ValidUntil, Removed: true, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
				id := v.ID
				dels[i] = connector.Delivery{DedupeKey: "seed:" + v.SourceID, Event: "entry_sign_in", JobID: randomHex(8),
					SourceID: v.SourceID, VisitID: &id, Outcome: string(v.Status), Reason: v.Reason, ReceivedAt: v.CreatedAt}
				tl = append(tl,
					connector.TimelineEntry{VisitID: v.ID, At: v.CreatedAt, Kind: connector.KindEventReceived, Message: "entry_sign_in received"},
					connector.TimelineEntry{VisitID: v.ID, At: *v.ValidUntil, Kind: connector.KindLinkRevoked, Message: "access ended"})
				evs[i] = lockctl.Event{UUID: uuidLike(), Type: "lock.unlock", ActorType: "GroupLink", ActorName: v.Name,
					ObjectType: "Lock", Success: true, ClientIP: "198.18.0.1", CreatedAt: v.CreatedAt.Add(time.Minute)}
			}
			for _, rows := range []any{links, dels, tl, evs} {
				if err := tx.CreateInBatches(rows, 500).Error; err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		done += k
		if time.Since(last) >= time.Second || done == n {
			last = time.Now()
			fmt.Fprintf(progress, "  seed %d/%d visits (%.0f visits/s)\n", done, n, float64(done)/time.Since(start).Seconds())
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuidLike() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
