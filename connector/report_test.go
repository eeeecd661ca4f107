package connector_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/testenv"
)

// reporter records the job reports it is given, failing with err when set.
type reporter struct {
	mu    sync.Mutex
	jobs  []string
	reps  []connector.JobReport
	err   error
	calls int
}

func (r *reporter) ReportJob(_ context.Context, job string, rep connector.JobReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return r.err
	}
	r.jobs, r.reps = append(r.jobs, job), append(r.reps, rep)
	return nil
}

// reportQueue records the reports queued, besides what queue records.
type reportQueue struct {
	*queue
	mu      sync.Mutex
	reports []int64
}

func (q *reportQueue) EnqueueEnvoyReport(_ context.Context, id int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reports = append(q.reports, id)
	return nil
}

func (q *reportQueue) queued() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]int64(nil), q.reports...)
}

func reportingService(e *env, rep connector.Reporter) (*connector.Service, *reportQueue) {
	q := &reportQueue{queue: e.queue}
	return connector.NewService(testenv.Logger(e.t), e.store, e.client, e.outbox, e.box,
		connector.Options{PublicURL: publicURL, Now: e.clock.Now, Queue: q, Reporter: rep}), q
}

func timelineHas(e *env, id int64, text string) bool {
	for _, en := range e.timeline(id) {
		if strings.Contains(en.Message, text) {
			return true
		}
	}
	return false
}

// TestReportIsOwedWithTheDeliveryAndDueWithTheSync: a job answered 202 is
// owed a report from the delivery's transaction on, which its sync makes
// due and queues; sent, it is done with the doors, window and pass link,
// forgotten, and on the timeline. A repeat of the delivery owes nothing
// more.
func TestReportIsOwedWithTheDeliveryAndDueWithTheSync(t *testing.T) {
	e := newEnv(t, envOptions{})
	rep := &reporter{}
	svc, q := reportingService(e, rep)
	body := walkIn(t, start, jobID("job-r1"))
	res := e.ingest(svc, body)
	if !res.Changed {
		t.Fatalf("sign-in did not change the visit: %+v", res)
	}
	far := start.Add(time.Hour)
	if owed, err := svc.ReportsOwed(e.ctx, far); err != nil || len(owed) != 0 || len(q.queued()) != 0 {
		t.Fatalf("before the sync: owed %v (%v), queued %v; want nothing due yet", owed, err, q.queued())
	}
	if _, err := svc.SyncVisit(e.ctx, res.VisitID); err != nil {
		t.Fatal(err)
	}
	queued := q.queued()
	owed, err := svc.ReportsOwed(e.ctx, far)
	if err != nil || len(queued) != 1 || len(owed) != 1 || owed[0] != queued[0] {
		t.Fatalf("after the sync: queued %v, owed %v (%v); want the one report", queued, owed, err)
	}
	if err := svc.SendEnvoyReport(e.ctx, queued[0]); err != nil {
		t.Fatal(err)
	}
	if len(rep.reps) != 1 || rep.jobs[0] != "job-r1" {
		t.Fatalf("reports sent: %v", rep.jobs)
	}
	r := rep.reps[0]
	v := e.visit(res.VisitID)
	if r.Status != connector.JobDone || len(r.Attachments) != 2 || r.Attachments[1].Type != connector.AttachLink || r.Attachments[1].URL != svc.PassURL(v) {
		t.Fatalf("report = %+v", r)
	}
	if text := r.Attachments[0].Value; !strings.Contains(text, "Front door") || !strings.Contains(text, " – ") {
		t.Errorf("text attachment %q lacks the doors or the window", text)
	}
	if !timelineHas(e, res.VisitID, "reported to Envoy: done") {
		t.Error("the timeline does not say the job was reported")
	}
	if err := svc.SendEnvoyReport(e.ctx, queued[0]); err != nil || rep.calls != 1 {
		t.Errorf("a report already sent went again: %v, %d calls", err, rep.calls)
	}
	if owed, _ := svc.ReportsOwed(e.ctx, far); len(owed) != 0 {
		t.Errorf("a sent report is still owed: %v", owed)
	}
	// The same delivery again is a duplicate: nothing more is owed.
	if again := e.ingest(svc, body); !again.Duplicate {
		t.Fatalf("repeat: %+v", again)
	}
	if _, err := svc.SyncVisit(e.ctx, res.VisitID); err != nil {
		t.Fatal(err)
	}
	if len(q.queued()) != 1 {
		t.Errorf("queued after the repeat: %v", q.queued())
	}
}

// TestReportGivenUpKeepsAccess: a report Envoy refuses is given up onto the
// timeline and counted; the guest's access stays as it is.
func TestReportGivenUpKeepsAccess(t *testing.T) {
	e := newEnv(t, envOptions{})
	rep := &reporter{err: latchkey.Errorf(latchkey.Invalid, "envoy refused the job update (404)")}
	svc, q := reportingService(e, rep)
	res := e.ingest(svc, walkIn(t, start, jobID("job-r2")))
	if _, err := svc.SyncVisit(e.ctx, res.VisitID); err != nil {
		t.Fatal(err)
	}
	id := q.queued()[0]
	if err := svc.SendEnvoyReport(e.ctx, id); latchkey.KindOf(err) != latchkey.Invalid {
		t.Fatalf("send: %v, want the refusal", err)
	}
	if err := svc.ReportFailed(e.ctx, id, "envoy refused the job update (404)"); err != nil {
		t.Fatal(err)
	}
	if !timelineHas(e, res.VisitID, "could not report the job to Envoy, giving up: envoy refused the job update (404)") {
		t.Error("the timeline does not say the report was given up")
	}
	if n, err := e.store.ReportsGivenUp(e.ctx, start.Add(-time.Hour)); err != nil || n != 1 {
		t.Errorf("reports given up = %d (%v), want 1", n, err)
	}
	if v := e.visit(res.VisitID); v.Status != connector.StatusActive || len(e.liveLinks(res.VisitID)) != 1 {
		t.Errorf("visit %s with %d links after a failed report; want active with its link", v.Status, len(e.liveLinks(res.VisitID)))
	}
	if owed, _ := svc.ReportsOwed(e.ctx, start.Add(time.Hour)); len(owed) != 0 {
		t.Errorf("a report given up is still owed: %v", owed)
	}
	// A week on, it is pruned.
	e.clock.Advance(8 * 24 * time.Hour)
	if _, err := svc.ReportsOwed(e.ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.store.ReportsGivenUp(e.ctx, start.Add(-time.Hour)); n != 0 {
		t.Errorf("reports given up after a week = %d, want pruned", n)
	}
}

// TestSyncFailedForGoodIsReportedFailed: the transaction that marks a
// visit failed makes its job's report due as failed, with the reason.
func TestSyncFailedForGoodIsReportedFailed(t *testing.T) {
	e := newEnv(t, envOptions{})
	rep := &reporter{}
	svc, q := reportingService(e, rep)
	res := e.ingest(svc, walkIn(t, start, jobID("job-r3")))
	if err := svc.MarkFailed(e.ctx, res.VisitID, res.Version, "controller refused the key"); err != nil {
		t.Fatal(err)
	}
	if len(q.queued()) != 1 {
		t.Fatalf("queued = %v, want the failed job's report", q.queued())
	}
	if err := svc.SendEnvoyReport(e.ctx, q.queued()[0]); err != nil {
		t.Fatal(err)
	}
	if r := rep.reps[0]; r.Status != connector.JobFailed || r.FailureReason != "controller refused the key" || len(r.Attachments) != 0 {
		t.Errorf("report = %+v", r)
	}
}

// TestNoReportsWhenOff: without a Reporter, nothing is recorded.
func TestNoReportsWhenOff(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.process(walkIn(t, start, jobID("job-r4")))
	var n int64
	if err := e.db.Table("envoy_reports").Count(&n).Error; err != nil || n != 0 {
		t.Errorf("reports stored with reporting off: %d (%v)", n, err)
	}
}
