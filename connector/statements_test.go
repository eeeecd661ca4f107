package connector_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/mappings"
)

// TestStatementsPerSignIn counts the database round trips of a walk-in's
// sign-in (statements, BEGIN, COMMIT and ROLLBACK, by the handle's own
// counter, latchkey_db_statements_total): the webhook's ingest, then the
// sync that makes its link on the bundled controller and the email that
// follows, the controller's and the outbox's statements included. The
// bounds catch a change that adds round trips to the hot path.
func TestStatementsPerSignIn(t *testing.T) {
	e := newEnv(t, envOptions{idempotentCreates: true}) // as serve drives the bundled controller
	n := database.StatementsOf(e.db)
	if n == nil {
		t.Fatal("the test database counts no statements")
	}
	// A first visit warms what is read once (zones, the controller's doors).
	e.process(walkIn(t, start, payloadID("1001"), jobID("job-warm")))

	before := n.Total()
	taken := func() int64 {
		now := n.Total()
		d := now - before
		before = now
		return d
	}
	d, err := inbound(walkIn(t, start, payloadID("1002"), jobID("job-counted")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Ingest(e.ctx, d)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	ingest := taken()
	sr, err := e.svc.SyncVisit(e.ctx, res.VisitID)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	sync := taken()
	if sr.EmailKind == "" {
		t.Fatalf("the sync asks for no email")
	}
	if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey); err != nil {
		t.Fatalf("email: %v", err)
	}
	email := taken()
	t.Logf("round trips: ingest %d, sync %d, email %d", ingest, sync, email)
	// On PostgreSQL the email's record (the window mailed, its timeline
	// row) is one statement; elsewhere a transaction of two.
	// So are the bundled controller's link, its creation event and the
	// record of its idempotency key in the sync, after the key's lookup.
	emailMax, syncMax := int64(10), int64(16)
	if e.db.Dialector.Name() == "postgres" {
		emailMax, syncMax = 7, 12
	}
	if ingest > 10 || sync > syncMax || email > emailMax {
		t.Errorf("got %d round trips per ingest, %d per sync and %d per email, want at most 10, %d and %d", ingest, sync, email, syncMax, emailMax)
	}
	if v := e.visit(res.VisitID); v.Status != connector.StatusActive {
		t.Errorf("visit %s after the sign-in, want active: the count is of a sign-in that did not happen", v.Status)
	}
}

// TestStatementsPerPassUnlock counts the round trips of a lone pass
// unlock, the bundled controller's included, once the first unlock has
// warmed what is cached: a link's pass, and a guest's, which unlocks with
// the guest's own access key after checking the visit's roles. A lone
// unlock writes its audit batch by itself (on PostgreSQL one statement,
// elsewhere BEGIN, event, last use, COMMIT), and so does the connector's
// timeline row; under load both batches are shared (latchkey bench counts
// that).
func TestStatementsPerPassUnlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) *env
		// want is the bound on SQLite, wantPG on PostgreSQL, where the
		// audit event and the link's last use are one statement.
		want, wantPG int64
	}{
		{"link", func(t *testing.T) *env { return newEnv(t, envOptions{}) }, 7, 4},
		{"guest", func(t *testing.T) *env { return personEnv(t, mappings.CredentialGuest, false) }, 12, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			n := database.StatementsOf(e.db)
			if n == nil {
				t.Fatal("the test database counts no statements")
			}
			token := e.svc.PassToken(e.visit(e.process(walkIn(t, start)).VisitID))
			if err := e.svc.PassUnlock(e.ctx, token, 1); err != nil {
				t.Fatalf("first unlock: %v", err)
			}
			// The fewest of five: a write the first unlock left to a
			// background batch may land in one count, never in all.
			got := int64(-1)
			for range 5 {
				e.clock.Advance(2 * time.Second) // past the controller's per-door limit
				e.svc.FlushTimeline(e.ctx)
				before := n.Total()
				if err := e.svc.PassUnlock(e.ctx, token, 1); err != nil {
					t.Fatalf("unlock: %v", err)
				}
				e.svc.FlushTimeline(e.ctx) // its "door unlocked" row, written off the request
				if d := n.Total() - before; got < 0 || d < got {
					got = d
				}
			}
			t.Logf("round trips per %s unlock: %d", tc.name, got)
			want := tc.want
			if e.db.Dialector.Name() == "postgres" {
				want = tc.wantPG
			}
			if got > want {
				t.Errorf("%d round trips per %s unlock, want at most %d", got, tc.name, want)
			}
		})
	}
}
