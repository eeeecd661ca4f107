package connector_test

import (
	"testing"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/database"
)

// TestStatementsPerSignIn counts the database round trips of a walk-in's
// sign-in (statements, BEGIN, COMMIT and ROLLBACK, by the handle's own
// counter, latchkey_db_statements_total): the webhook's ingest, then the
// sync that makes its link on the bundled controller and the email that
// follows, the controller's and the outbox's statements included. The
// bounds catch a change that adds round trips to the hot path.
func TestStatementsPerSignIn(t *testing.T) {
	e := newEnv(t, envOptions{})
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
	if ingest > 10 || sync > 15 || email > 10 {
		t.Errorf("got %d round trips per ingest, %d per sync and %d per email, want at most 10, 15 and 10", ingest, sync, email)
	}
	if v := e.visit(res.VisitID); v.Status != connector.StatusActive {
		t.Errorf("visit %s after the sign-in, want active: the count is of a sign-in that did not happen", v.Status)
	}
}
