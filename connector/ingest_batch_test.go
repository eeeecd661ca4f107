package connector_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/database"
)

// deliveries parses bodies as the receiver does.
func deliveries(t *testing.T, bodies ...[]byte) []connector.Inbound {
	t.Helper()
	ins := make([]connector.Inbound, len(bodies))
	for i, b := range bodies {
		in, err := inbound(b)
		if err != nil {
			t.Fatal(err)
		}
		ins[i] = in
	}
	return ins
}

// walkIns is n walk-ins' sign-ins, entries from, from+1, …, each with a
// job id of its own.
func walkIns(t *testing.T, n, from int, job string) []connector.Inbound {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = walkIn(t, start, payloadID(fmt.Sprint(from+i)), jobID(jobN(job, i)))
	}
	return deliveries(t, bodies...)
}

// TestDeliveriesArrivingTogetherShareOneTransaction: a batch applies its
// deliveries one after the other, as if each had arrived alone (a sign-out
// in the same batch as its sign-in ends the visit the sign-in made), in far
// fewer round trips than one transaction each.
func TestDeliveriesArrivingTogetherShareOneTransaction(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.ingest(e.svc, walkIn(t, start, payloadID("900"), jobID("job-warm")))
	ins := append(walkIns(t, 8, 1000, "together"), deliveries(t, walkIn(t, start, jobID("job-in")),
		signOut(t, start, start.Add(time.Hour), jobID("job-out")), fixture(t, fixtureSignIn, eventName("entry_deleted"), jobID("job-unknown")))...)

	n := database.StatementsOf(e.db)
	before := n.Total()
	res, errs, stored := e.svc.IngestTogether(e.ctx, ins)
	taken := n.Total() - before
	if stored != len(ins) {
		t.Fatalf("the batch stored %d of %d deliveries", stored, len(ins))
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	// Each new visit costs its lookup and its insert; the batch adds its
	// locks, the key check, the mapping, the deliveries, the timeline rows,
	// BEGIN and COMMIT. Alone, each delivery takes 9.
	t.Logf("%d round trips for %d deliveries", taken, len(ins))
	if want := int64(2*len(ins) + 9); taken > want {
		t.Errorf("%d round trips for %d deliveries, want at most %d", taken, len(ins), want)
	}
	for i := range 8 {
		if !res[i].Changed || res[i].Status != connector.StatusActive || res[i].VisitID == 0 {
			t.Errorf("walk-in %d: %+v, want a new active visit", i, res[i])
		}
	}
	in, out := res[8], res[9]
	if out.VisitID != in.VisitID || out.Status != connector.StatusExpired && out.Status != connector.StatusRevoked {
		t.Errorf("sign-in %+v, sign-out %+v: want the sign-out to end the visit the sign-in made", in, out)
	}
	if v := e.visit(in.VisitID); v.Status != out.Status || v.Version != out.Version {
		t.Errorf("stored visit %s v%d, want %s v%d", v.Status, v.Version, out.Status, out.Version)
	}
	if !res[10].Ignored {
		t.Errorf("unknown event: %+v, want ignored", res[10])
	}
	// Every delivery is stored, and every visit's timeline written.
	for i, in := range ins {
		again, err := e.svc.Ingest(e.ctx, in)
		if err != nil || !again.Duplicate {
			t.Errorf("delivery %d again: %+v, %v; want a duplicate", i, again, err)
		}
	}
	for i := range 9 {
		if len(e.timeline(res[i].VisitID)) == 0 {
			t.Errorf("visit %d has no timeline", res[i].VisitID)
		}
	}
}

// TestBatchAnswersARetriedDeliveryAlone: a delivery already stored is
// answered as a duplicate, from what was stored, and the rest of its batch
// is stored together.
func TestBatchAnswersARetriedDeliveryAlone(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.ingest(e.svc, walkIn(t, start, payloadID("2000"), jobID("job-first")))
	ins := deliveries(t, walkIn(t, start, payloadID("2001"), jobID("job-a")), walkIn(t, start, payloadID("2000"), jobID("job-first")),
		walkIn(t, start, payloadID("2002"), jobID("job-b")), walkIn(t, start, payloadID("2002"), jobID("job-b")))
	res, errs, stored := e.svc.IngestTogether(e.ctx, ins)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if stored != 2 {
		t.Errorf("the batch stored %d deliveries, want 2 (the retry and the repeat answered alone)", stored)
	}
	if !res[1].Duplicate || res[1].VisitID != first.VisitID {
		t.Errorf("retried delivery: %+v, want a duplicate of visit %d", res[1], first.VisitID)
	}
	if res[0].Duplicate || res[2].Duplicate || !res[3].Duplicate || res[3].VisitID != res[2].VisitID {
		t.Errorf("results %+v: want two new visits and the repeat a duplicate of the second", res)
	}
}

// TestBatchThatFailsIsStoredAlone: one delivery the service refuses
// rolls its batch back, and each delivery is then stored (or refused) by
// itself: the refusal is answered to that delivery alone.
func TestBatchThatFailsIsStoredAlone(t *testing.T) {
	e := newEnv(t, envOptions{})
	ins := deliveries(t, walkIn(t, start, payloadID("3001"), jobID("job-a")), walkIn(t, start, payloadID("3002"), jobID("job-bad")),
		walkIn(t, start, payloadID("3003"), jobID("job-c")))
	ins[1].Event.SignedInAt = time.Date(connector.MaxYear, 12, 31, 23, 0, 0, 0, time.UTC)
	res, errs, stored := e.svc.IngestTogether(e.ctx, ins)
	if stored != 0 {
		t.Errorf("the failed batch stored %d deliveries", stored)
	}
	if latchkey.KindOf(errs[1]) != latchkey.Invalid {
		t.Errorf("the bad delivery: %v, want Invalid", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil || res[i].Status != connector.StatusActive {
			t.Errorf("delivery %d: %+v, %v; want stored alone", i, res[i], errs[i])
		}
	}
}

// TestConcurrentIngestsAllStoreOnce: deliveries posted at once, retries
// among them, each end up stored exactly once, whichever batches they fell
// into, and they share transactions: far fewer round trips than one
// transaction each (9 on PostgreSQL, 8 on SQLite, more for a duplicate).
func TestConcurrentIngestsAllStoreOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.ingest(e.svc, walkIn(t, start, payloadID("3999"), jobID("job-warm")))
	ins := walkIns(t, 40, 4000, "conc")
	ins = append(ins, ins[:20]...) // Envoy's retries, in flight together
	res := make([]connector.IngestResult, len(ins))
	n := database.StatementsOf(e.db)
	before := n.Total()
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() {
			var err error
			if res[i], err = e.svc.Ingest(e.ctx, in); err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
		})
	}
	waitOrFail(t, &wg)
	taken := n.Total() - before
	t.Logf("%d round trips for %d concurrent deliveries", taken, len(ins))
	if taken > int64(7*len(ins)) {
		t.Errorf("%d round trips for %d concurrent deliveries: they shared no transactions", taken, len(ins))
	}
	dups := 0
	for i := range 40 {
		id := res[i].VisitID
		if i < 20 && res[i+40].VisitID != id {
			t.Errorf("delivery %d and its retry: visits %d and %d", i, id, res[i+40].VisitID)
		}
		if res[i].Duplicate {
			dups++
		}
		if i < 20 && res[i+40].Duplicate {
			dups++
		}
	}
	if dups != 20 {
		t.Errorf("%d duplicates, want 20 (each retry or its original)", dups)
	}
	var visits int64
	if err := e.db.Model(&connector.Visit{}).Count(&visits).Error; err != nil || visits != 41 {
		t.Errorf("%d visits stored (%v), want 41", visits, err)
	}
}

// TestEveryQueuedDeliveryIsAnswered: round after round of deliveries
// posted together, each is answered: writers that stop as others queue
// leave none behind.
func TestEveryQueuedDeliveryIsAnswered(t *testing.T) {
	e := newEnv(t, envOptions{})
	for round := range 30 {
		var wg sync.WaitGroup
		for i := range 1 + round%7 {
			in := deliveries(t, walkIn(t, start, payloadID(fmt.Sprintf("%d%03d", 6+round, i)), jobID(fmt.Sprintf("job-r%d-%d", round, i))))[0]
			wg.Go(func() {
				if res, err := e.svc.Ingest(e.ctx, in); err != nil || res.VisitID == 0 {
					t.Errorf("round %d delivery %d: %+v, %v", round, i, res, err)
				}
			})
		}
		waitOrFail(t, &wg)
	}
}

// TestKnownEventWithoutLocationIsRefused: an event that needs a location
// and names none is refused as bad input, alone or among others, and the
// others are stored.
func TestKnownEventWithoutLocationIsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	bad := deliveries(t, walkIn(t, start, payloadID("7001"), jobID("job-noloc")))[0]
	bad.Event.LocationID = ""
	if _, err := e.svc.Ingest(e.ctx, bad); latchkey.KindOf(err) != latchkey.Invalid {
		t.Errorf("alone: %v, want Invalid", err)
	}
	ins := append(deliveries(t, walkIn(t, start, payloadID("7002"), jobID("job-a"))), bad)
	ins = append(ins, deliveries(t, walkIn(t, start, payloadID("7003"), jobID("job-b")))...)
	res, errs, stored := e.svc.IngestTogether(e.ctx, ins)
	if latchkey.KindOf(errs[1]) != latchkey.Invalid {
		t.Errorf("in a batch: %v, want Invalid", errs[1])
	}
	if stored != 2 || errs[0] != nil || errs[2] != nil || res[0].VisitID == 0 || res[2].VisitID == 0 {
		t.Errorf("the others: %+v, %v, %d stored by the batch; want both stored together", res, errs, stored)
	}
	only := []connector.Inbound{bad, bad}
	if _, errs, _ := e.svc.IngestTogether(e.ctx, only); latchkey.KindOf(errs[0]) != latchkey.Invalid {
		t.Errorf("a batch of only those: %v, want Invalid", errs[0])
	}
}

// waitOrFail waits for wg, failing the test if it takes a minute: a
// delivery left in the queue with no writer is never answered.
func waitOrFail(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a delivery was never answered")
	}
}
