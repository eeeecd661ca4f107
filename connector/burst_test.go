package connector_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/webhooks"
)

// burstSize is how many front-desk actions and how many webhooks a busy
// morning sends at once.
const burstSize = 24

// burst is a front desk's busy moment: actions on signed-in visits and new
// sign-ins arriving together.
type burst struct {
	e       *env
	visits  []int64     // signed in and synced before the burst
	until   []time.Time // their window ends before it
	arrives [][]byte    // sign-ins the burst delivers
}

func newBurst(e *env, round int) *burst {
	e.t.Helper()
	b := &burst{e: e}
	for i := range burstSize {
		id := fmt.Sprintf("b%d-seed-%d", round, i)
		res := e.ingest(e.svc, walkIn(e.t, start, payloadID(id), jobID(id)))
		e.sync(res.VisitID)
		b.visits = append(b.visits, res.VisitID)
		b.until = append(b.until, *e.visit(res.VisitID).ValidUntil)
		in := fmt.Sprintf("b%d-new-%d", round, i)
		b.arrives = append(b.arrives, walkIn(e.t, start, payloadID(in), jobID(in)))
	}
	return b
}

// run sends the burst at once: even visits are extended by 30 minutes, odd
// ones revoked, and every new sign-in ingested. It returns how long it took
// and every error.
func (b *burst) run(ctx context.Context) (time.Duration, []error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	began := time.Now()
	for i, id := range b.visits {
		wg.Add(2)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = b.e.svc.Extend(ctx, id, 30)
			} else {
				_, err = b.e.svc.Revoke(ctx, id)
			}
			if err != nil {
				fail(fmt.Errorf("action on visit %d: %w", id, err))
			}
		}()
		go func() {
			defer wg.Done()
			d, err := webhooks.Parse(b.arrives[i])
			if err == nil {
				_, err = b.e.svc.Ingest(ctx, connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event})
			}
			if err != nil {
				fail(fmt.Errorf("webhook %d: %w", i, err))
			}
		}()
	}
	wg.Wait()
	return time.Since(began), errs
}

// check fails unless every effect of the burst was kept.
func (b *burst) check(t testing.TB) {
	t.Helper()
	for i, id := range b.visits {
		v := b.e.visit(id)
		if i%2 == 0 {
			if want := b.until[i].Add(30 * time.Minute); v.ValidUntil == nil || !v.ValidUntil.Equal(want) || v.ExtendMinutes != 30 {
				t.Errorf("visit %d after extend: until %v, extended %d min; want until %v, 30 min", id, v.ValidUntil, v.ExtendMinutes, want)
			}
			continue
		}
		if v.Status != connector.StatusRevoked {
			t.Errorf("visit %d after revoke: status %s, want revoked", id, v.Status)
		}
	}
	for i, body := range b.arrives {
		d, err := webhooks.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		vs, _, err := b.e.store.List(b.e.ctx, connector.VisitFilter{SourceID: d.Event.SourceID()})
		if err != nil || len(vs) != 1 || vs[0].Status != connector.StatusActive {
			t.Errorf("sign-in %d: visits %+v (err %v), want one active", i, vs, err)
		}
	}
}

// TestBusyFrontDesk sends front-desk actions and webhooks at once: every
// one succeeds, in time, and none undoes another. Use cases read their
// mapping on their own transaction's connection, so none waits for a
// connection that a queued writer holds.
func TestBusyFrontDesk(t *testing.T) {
	e := newEnv(t, envOptions{})
	b := newBurst(e, 0)
	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	took, errs := b.run(ctx)
	for _, err := range errs {
		t.Error(err)
	}
	b.check(t)
	t.Logf("%d actions and %d webhooks took %v", burstSize, burstSize, took)
}

// BenchmarkBusyFrontDesk reports how long one burst of 24 front-desk
// actions and 24 webhooks takes (burst_ms).
func BenchmarkBusyFrontDesk(b *testing.B) {
	e := newEnv(b, envOptions{})
	var total time.Duration
	for n := range b.N {
		b.StopTimer()
		bu := newBurst(e, n)
		b.StartTimer()
		took, errs := bu.run(context.Background())
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		total += took
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "burst_ms")
}
