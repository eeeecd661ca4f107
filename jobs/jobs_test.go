package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/testenv"
)

func openRedis(t *testing.T) *Redis {
	t.Helper()
	r, err := OpenRedis(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// recorder is a Domain that records calls; syncErr, when set, is returned
// by SyncVisit.
type recorder struct {
	mu      sync.Mutex
	syncs   []int64
	emails  []string
	failed  map[int64]string
	syncErr error
	// emailErr, when set, is returned by SendVisitEmail.
	emailErr    error
	emailFailed []string
	// mappingChanges lists the location/flow of each MappingChanged call.
	mappingChanges []string
	result         connector.SyncResult
	due            []connector.VisitRef
	owed           []connector.EmailDue
	unsynced       []connector.VisitRef
	calls          chan string
	// reports lists each SendEnvoyReport call; reportErr is its error.
	reports       []int64
	reportErr     error
	reportsFailed []string
	reportsOwed   []int64
	// synced and emailed are what succeeded, for Synced and Emailed.
	synced  map[int64]bool
	emailed map[string]bool
}

func newRecorder() *recorder {
	return &recorder{failed: map[int64]string{}, calls: make(chan string, 100), synced: map[int64]bool{}, emailed: map[string]bool{}}
}

func (r *recorder) SyncVisit(_ context.Context, id int64) (connector.SyncResult, error) {
	r.mu.Lock()
	r.syncs = append(r.syncs, id)
	err, res := r.syncErr, r.result
	if err == nil {
		r.synced[id] = true
	}
	r.mu.Unlock()
	r.calls <- "sync"
	return res, err
}

func (r *recorder) SendVisitEmail(_ context.Context, id int64, kind, key string) error {
	r.mu.Lock()
	r.emails = append(r.emails, kind+":"+key)
	err := r.emailErr
	if err == nil {
		r.emailed[fmt.Sprint(id, ":", key)] = true
	}
	r.mu.Unlock()
	r.calls <- "email"
	return err
}

func (r *recorder) MarkFailed(_ context.Context, id, version int64, reason string) error {
	r.mu.Lock()
	r.failed[id] = fmt.Sprintf("v%d: %s", version, reason)
	r.mu.Unlock()
	r.calls <- "failed"
	return nil
}

func (r *recorder) EmailFailed(_ context.Context, id int64, key, reason string) error {
	r.mu.Lock()
	r.emailFailed = append(r.emailFailed, fmt.Sprintf("%d:%s: %s", id, key, reason))
	r.mu.Unlock()
	r.calls <- "email_failed"
	return nil
}

func (r *recorder) VisitsDue(context.Context, time.Time) ([]connector.VisitRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.due, nil
}
func (r *recorder) VisitsUnsynced(context.Context, time.Time) ([]connector.VisitRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unsynced, nil
}
func (r *recorder) EmailsOwed(context.Context, time.Time) ([]connector.EmailDue, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owed, nil
}
func (r *recorder) MappingChanged(_ context.Context, location, flow string) ([]connector.VisitRef, error) {
	r.mu.Lock()
	r.mappingChanges = append(r.mappingChanges, location+"/"+flow)
	r.mu.Unlock()
	r.calls <- "mapping"
	return r.due, nil
}
func (r *recorder) SendEnvoyReport(_ context.Context, id int64) error {
	r.mu.Lock()
	r.reports = append(r.reports, id)
	err := r.reportErr
	r.mu.Unlock()
	r.calls <- "report"
	return err
}

func (r *recorder) ReportFailed(_ context.Context, id int64, reason string) error {
	r.mu.Lock()
	r.reportsFailed = append(r.reportsFailed, fmt.Sprintf("%d: %s", id, reason))
	r.mu.Unlock()
	r.calls <- "report_failed"
	return nil
}

func (r *recorder) ReportsOwed(context.Context, time.Time) ([]int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reportsOwed, nil
}

func (r *recorder) RepairDrift(context.Context) (connector.DriftReport, error) {
	return connector.DriftReport{}, nil
}
func (r *recorder) Synced(_ context.Context, id, _ int64) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced[id], nil
}
func (r *recorder) Emailed(_ context.Context, id int64, key string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.emailed[fmt.Sprint(id, ":", key)], nil
}

// waitFor waits for the named call, failing after a deadline.
func (r *recorder) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-r.calls:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %s call within 10s", want)
		}
	}
}

func startWorker(t *testing.T, r *Redis, d Domain) *Client {
	t.Helper()
	c := NewClient(r)
	w := NewWorker(testenv.Logger(t), r, d, c, WorkerOptions{PollInterval: 50 * time.Millisecond, ShutdownTimeout: 2 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return c
}

func TestWorkerSyncsOnceAndSendsEmail(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.result = connector.SyncResult{Version: 1, Status: connector.StatusActive, EmailKind: "access", WindowKey: "w1"}
	ctx := context.Background()
	// A repeated enqueue of the same visit version is one task (enqueued
	// before any worker runs, so the first cannot have finished already).
	c := NewClient(r)
	for range 3 {
		if err := c.EnqueueVisitSync(ctx, 7, 1); err != nil {
			t.Fatal(err)
		}
	}
	startWorker(t, r, d)
	d.waitFor(t, "sync")
	d.waitFor(t, "email")
	// A new version is new work.
	if err := c.EnqueueVisitSync(ctx, 7, 2); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "sync")
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.syncs) != 2 {
		t.Fatalf("got %d syncs %v, want 2 (versions 1 and 2, duplicates collapsed)", len(d.syncs), d.syncs)
	}
	if len(d.emails) != 1 || d.emails[0] != "access:w1" {
		t.Fatalf("got emails %v, want [access:w1] once", d.emails)
	}
}

// TestSweepResyncsAfterFinishedSync: a visit whose sync task already ran
// (its id retained by asynq) is synced again when the expiry sweep finds
// its window has moved on.
func TestSweepResyncsAfterFinishedSync(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.due = []connector.VisitRef{{ID: 5, Version: 1}}
	c := startWorker(t, r, d)
	ctx := context.Background()
	if err := c.EnqueueVisitSync(ctx, 5, 1); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "sync")
	task, id, err := NewSweepTask(TypeSweepExpire, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.enqueue(ctx, task, id); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "sync")
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.syncs) != 2 {
		t.Fatalf("got %d syncs, want 2 (the sweep's sync is not swallowed by the first task's id)", len(d.syncs))
	}
}

// TestLostSweepSendsOwedEmailWithoutSync: an email the database says is
// owed is enqueued by the lost-work sweep itself, under the email's own
// kind and key, not through a sync (whose lease a dead worker may hold).
func TestLostSweepSendsOwedEmailWithoutSync(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.owed = []connector.EmailDue{{VisitID: 9, Kind: connector.EmailUpdated, Key: "k2"}}
	c := startWorker(t, r, d)
	ctx := context.Background()
	task, id, err := NewSweepTask(TypeSweepLost, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.enqueue(ctx, task, id); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "email")
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := []string{"updated:k2"}; !slices.Equal(d.emails, want) {
		t.Errorf("emails sent = %q, want %q", d.emails, want)
	}
}

// TestSyncAtItsOwnMomentAgain: a window-edge sync that ran a moment early
// (another replica's clock is ahead) and asks for a sync at that same
// moment gets one, not swallowed by its own task id.
func TestSyncAtItsOwnMomentAgain(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	edge := time.Now().Truncate(time.Second)
	d.result = connector.SyncResult{Version: 1, Status: connector.StatusActive, NextAt: edge}
	c := startWorker(t, r, d)
	if err := c.EnqueueVisitSyncAt(context.Background(), 6, 1, edge); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "sync")
	d.mu.Lock()
	d.result = connector.SyncResult{Version: 1, Status: connector.StatusExpired}
	d.mu.Unlock()
	d.waitFor(t, "sync")
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := []int64{6, 6}; !slices.Equal(d.syncs, want) {
		t.Errorf("syncs = %v, want %v", d.syncs, want)
	}
}

func TestWorkerPermanentErrorMarksVisitFailed(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.syncErr = latchkey.Errorf(latchkey.Invalid, "controller refused the link: group 9 does not exist")
	c := startWorker(t, r, d)
	if err := c.EnqueueVisitSync(context.Background(), 3, 1); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "failed")
	d.mu.Lock()
	defer d.mu.Unlock()
	if got, want := d.failed[3], "v1: controller refused the link: group 9 does not exist"; got != want {
		t.Fatalf("failed reason %q, want %q", got, want)
	}
	if len(d.syncs) != 1 {
		t.Fatalf("got %d attempts, want 1 (a permanent error is not retried)", len(d.syncs))
	}
}

// TestEmailPermanentErrorKeepsAccess: an email that fails for good is
// recorded as not sent, and the visit is not marked failed (which would
// take the guest's access away).
func TestEmailPermanentErrorKeepsAccess(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.emailErr = latchkey.Errorf(latchkey.Invalid, "mail server refused the recipient")
	c := startWorker(t, r, d)
	if err := c.EnqueueEmail(context.Background(), 4, connector.EmailAccess, "k1"); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "email_failed")
	d.mu.Lock()
	if want := []string{"4:k1: mail server refused the recipient"}; !slices.Equal(d.emailFailed, want) {
		t.Errorf("failed emails recorded = %q, want %q", d.emailFailed, want)
	}
	if len(d.failed) != 0 {
		t.Errorf("visits marked failed = %v, want none: a failed email keeps the guest's access", d.failed)
	}
	d.emailErr = nil
	d.mu.Unlock()

	// The failed task stays archived under its id; asking for the same
	// email again (the fault was fixed) sends it, not swallowed by the id.
	insp := asynq.NewInspectorFromRedisClient(r.c)
	waitUntil(t, 10*time.Second, func() bool {
		info, err := insp.GetTaskInfo(QueueDefault, "email:4:access:k1")
		return err == nil && info.State == asynq.TaskStateArchived
	})
	if err := c.EnqueueEmail(context.Background(), 4, connector.EmailAccess, "k1"); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "email")
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := []string{"access:k1", "access:k1"}; !slices.Equal(d.emails, want) {
		t.Errorf("send attempts = %q, want %q", d.emails, want)
	}
}

// TestMappingChangeTask: a mapping change runs on the worker, and the
// visits it re-decided are synced.
func TestMappingChangeTask(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.due = []connector.VisitRef{{ID: 7, Version: 3}}
	c := startWorker(t, r, d)
	if err := c.EnqueueMappingChanged(context.Background(), "177837", "359435"); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "mapping")
	d.waitFor(t, "sync")
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := []string{"177837/359435"}; !slices.Equal(d.mappingChanges, want) {
		t.Errorf("mapping changes applied = %q, want %q", d.mappingChanges, want)
	}
	if want := []int64{7}; !slices.Equal(d.syncs, want) {
		t.Errorf("visits synced = %v, want %v", d.syncs, want)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		skipRetry bool
		failure   bool
	}{
		{"invalid is permanent", latchkey.Errorf(latchkey.Invalid, "bad"), true, true},
		{"forbidden is permanent", latchkey.Errorf(latchkey.Forbidden, "no"), true, true},
		{"unavailable is retried", latchkey.Errorf(latchkey.Unavailable, "down"), false, true},
		{"too many is retried", latchkey.Errorf(latchkey.TooMany, "slow down"), false, true},
		{"busy is retried without using the budget", connector.ErrBusy, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if skip := errors.Is(got, asynq.SkipRetry); skip != tt.skipRetry {
				t.Errorf("SkipRetry = %v, want %v", skip, tt.skipRetry)
			}
			if f := isFailure(got); f != tt.failure {
				t.Errorf("isFailure = %v, want %v", f, tt.failure)
			}
		})
	}
}

func TestRetryDelayGrowsAndIsBounded(t *testing.T) {
	prevMax := time.Duration(0)
	for n := range 15 {
		d := retryDelay(n, nil, nil)
		hi := min(time.Second<<min(n, 9), 5*time.Minute)
		if d < hi/2 || d > hi {
			t.Fatalf("retry %d: delay %v outside [%v, %v]", n, d, hi/2, hi)
		}
		prevMax = max(prevMax, d)
	}
	if prevMax > 5*time.Minute {
		t.Fatalf("delay %v above the 5 minute cap", prevMax)
	}
}

// TestSchedulerOneReplicaActs runs two scheduler replicas on one Redis: the
// sweep fires once per tick, from the replica holding the lease, and the
// other takes over when the leader stops.
func TestSchedulerOneReplicaActs(t *testing.T) {
	r := openRedis(t)
	opts := SchedulerOptions{ExpireEvery: time.Second, LostEvery: time.Hour, DriftEvery: time.Hour, LeaseTTL: 3 * time.Second}
	a := NewScheduler(testenv.Logger(t), r, opts)
	b := NewScheduler(testenv.Logger(t), r, opts)
	a.Start()
	b.Start()
	stopped := map[*Scheduler]bool{}
	t.Cleanup(func() {
		for _, s := range []*Scheduler{a, b} {
			if !stopped[s] {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				s.Stop(ctx)
				cancel()
			}
		}
	})
	if a.IsLeader() == b.IsLeader() {
		t.Fatalf("leaders: a=%v b=%v, want exactly one", a.IsLeader(), b.IsLeader())
	}
	leader, standby := a, b
	if b.IsLeader() {
		leader, standby = b, a
	}
	waitUntil(t, 10*time.Second, func() bool { return leader.Fired(TypeSweepExpire) >= 3 })
	if n := standby.Fired(TypeSweepExpire); n != 0 {
		t.Fatalf("standby fired %d ticks, want 0", n)
	}
	insp := asynq.NewInspectorFromRedisClient(r.c)
	tasks, err := insp.ListPendingTasks(QueueLow, asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ti := range tasks {
		if seen[ti.ID] {
			t.Fatalf("task %s enqueued twice", ti.ID)
		}
		seen[ti.ID] = true
	}
	if fired := leader.Fired(TypeSweepExpire); len(tasks) < fired || len(tasks) > fired+1 {
		t.Fatalf("%d sweep tasks queued, leader fired %d ticks: want one task per tick", len(tasks), fired)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	leader.Stop(ctx)
	stopped[leader] = true
	waitUntil(t, 2*opts.LeaseTTL, standby.IsLeader)
	waitUntil(t, 5*time.Second, func() bool { return standby.Fired(TypeSweepExpire) >= 1 })
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blockingEmails is a recorder whose emails never finish: a worker running
// one is as good as dead to that task.
type blockingEmails struct {
	*recorder
	entered chan struct{}
}

func (b blockingEmails) SendVisitEmail(ctx context.Context, id int64, kind, key string) error {
	b.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// TestLostSweepIsNotSwallowedByAStrandedEmail: the email's own task is
// stuck on a worker that died (here: one that never finishes it); the lost
// sweep's email must still reach a live worker, not be taken for that
// stranded task.
func TestLostSweepIsNotSwallowedByAStrandedEmail(t *testing.T) {
	r := openRedis(t)
	ctx := context.Background()
	stuck := blockingEmails{recorder: newRecorder(), entered: make(chan struct{}, 1)}
	c := NewClient(r)
	dead := NewWorker(testenv.Logger(t), r, stuck, c, WorkerOptions{PollInterval: 50 * time.Millisecond, ShutdownTimeout: time.Second, Concurrency: 1})
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Shutdown)
	if err := c.EnqueueEmail(ctx, 9, connector.EmailAccess, "k1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stuck.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first worker never took the email")
	}

	live := newRecorder()
	live.owed = []connector.EmailDue{{VisitID: 9, Kind: connector.EmailAccess, Key: "k1"}}
	startWorker(t, r, live)
	task, id, err := NewSweepTask(TypeSweepLost, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.enqueue(ctx, task, id); err != nil {
		t.Fatal(err)
	}
	live.waitFor(t, "email")
}

// TestSchedulerRecoversAnEmptiedQueue: when Redis loses its data, the
// leader notices within seconds and the visits the database says are
// unsynced are synced again, without waiting for LostAfter or a tick.
func TestSchedulerRecoversAnEmptiedQueue(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.unsynced = []connector.VisitRef{{ID: 4, Version: 2}}
	startWorker(t, r, d)
	s := NewScheduler(testenv.Logger(t), r, SchedulerOptions{ExpireEvery: time.Hour, LostEvery: time.Hour, DriftEvery: time.Hour})
	s.Start()
	t.Cleanup(func() { s.Stop(context.Background()) })
	d.waitFor(t, "sync") // a new queue: recovered once at start
	if err := r.c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	emptied := time.Now()
	d.waitFor(t, "sync")
	if took := time.Since(emptied); took > 5*time.Second {
		t.Errorf("recovered %s after the queue was emptied, want within 5 s", took)
	}
}

// TestEnvoyReportRefusedIsGivenUpAndRecorded: a report Envoy refuses for
// good is not retried, and is recorded as failed; no visit is marked.
func TestEnvoyReportRefusedIsGivenUpAndRecorded(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.reportErr = latchkey.Errorf(latchkey.Invalid, "envoy refused the job update (404)")
	c := startWorker(t, r, d)
	if err := c.EnqueueEnvoyReport(context.Background(), 12); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "report_failed")
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := []string{"12: envoy refused the job update (404)"}; !slices.Equal(d.reportsFailed, want) {
		t.Errorf("failed reports = %q, want %q", d.reportsFailed, want)
	}
	if len(d.reports) != 1 || len(d.failed) != 0 {
		t.Errorf("attempts = %v, visits failed = %v; want one attempt and no visit marked", d.reports, d.failed)
	}
}

// TestLostSweepSendsOwedReports: reports the database says are due go to
// the queue again from the sweep.
func TestLostSweepSendsOwedReports(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.reportsOwed = []int64{5}
	c := startWorker(t, r, d)
	task, id, err := NewSweepTask(TypeSweepLost, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.enqueue(context.Background(), task, id); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "report")
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Equal(d.reports, []int64{5}) {
		t.Errorf("reports sent = %v, want [5]", d.reports)
	}
}

// With RunLocally, an enqueued sync runs at once, long before the worker's
// next poll, and so does the email it asks for; the queued copies then
// find the work done and do not run it again.
func TestLocalRunDoesNotWaitForThePoll(t *testing.T) {
	r := openRedis(t)
	d := newRecorder()
	d.result = connector.SyncResult{Version: 1, Status: connector.StatusActive, EmailKind: "access", WindowKey: "w1"}
	c := NewClient(r)
	const poll = 3 * time.Second
	w := NewWorker(testenv.Logger(t), r, d, c, WorkerOptions{PollInterval: poll, ShutdownTimeout: 2 * time.Second})
	c.RunLocally(w, 4)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	// Let the worker's first poll find the queues empty: it sleeps a poll.
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	if err := c.EnqueueVisitSync(context.Background(), 9, 1); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "sync")
	d.waitFor(t, "email")
	if took := time.Since(began); took > poll/3 {
		t.Errorf("sync and email took %v; want them well before the poll of %v", took, poll)
	}
	// The queued copies, held back a while, then run and do nothing.
	waitUntil(t, backupAfter+3*poll, func() bool { n, err := queuedTasks(r); return err == nil && n == 0 })
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.syncs) != 1 || len(d.emails) != 1 {
		t.Errorf("syncs %v, emails %v; want one of each", d.syncs, d.emails)
	}
}

// queuedTasks counts the tasks pending, active, scheduled or retrying in
// every queue.
func queuedTasks(r *Redis) (int, error) {
	insp := asynq.NewInspectorFromRedisClient(r.c)
	qs, err := insp.Queues()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			return 0, err
		}
		n += info.Pending + info.Active + info.Scheduled + info.Retry
	}
	return n, nil
}
