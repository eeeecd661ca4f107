package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// localRunner runs a visit's sync or email at once in this process, beside
// the task queued for it. The queued task stays the durable record of the
// work: held back backupAfter, if this process died before the work was
// done, a worker runs it; otherwise it finds the work done and stops (it
// is marked a backup). asynq's workers poll idle queues every PollInterval, so without
// this a sign-in on a quiet day waits up to a poll for its link and again
// for its email.
type localRunner struct {
	w       *Worker
	slots   chan struct{}
	timeout time.Duration
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	// mu guards stopped, so no run starts once stop has begun.
	mu      sync.Mutex
	stopped bool
}

// RunLocally makes c run every sync and email it enqueues (not sweeps' or
// delayed ones) at once on w as well, at most slots at a time: when all
// are busy the work waits for the queue as before. Call it before the
// first enqueue; w.Shutdown waits for local runs.
func (c *Client) RunLocally(w *Worker, slots int) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &localRunner{w: w, slots: make(chan struct{}, max(slots, 1)), timeout: 3 * time.Minute, ctx: ctx, cancel: cancel}
	w.local = r
	c.local.Store(r)
}

// take claims a slot, or reports false when none is free or the worker
// is busy with other tasks (ctx's own task aside): a busy worker takes the
// next task from its queue without waiting for a poll, and work run beside
// it only competes with it for the database.
func (r *localRunner) take(ctx context.Context) bool {
	if r == nil {
		return false
	}
	others := r.w.busy.Load()
	if ctx.Value(inTaskKey{}) != nil {
		others--
	}
	if others > 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	select {
	case r.slots <- struct{}{}:
		r.wg.Add(1)
		return true
	default:
		return false
	}
}

// release gives back a slot take claimed without running.
func (r *localRunner) release() {
	<-r.slots
	r.wg.Done()
}

// run runs handle on t in the background and gives back its slot. A
// failure needs nothing here: the queued task retries the work.
func (r *localRunner) run(t *asynq.Task, handle func(context.Context, *asynq.Task) error) {
	go func() {
		defer r.wg.Done()
		defer func() { <-r.slots }()
		ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
		defer cancel()
		if err := handle(ctx, t); err != nil {
			r.w.log.Debug("local run failed; the queued task retries", "task_type", t.Type(), "err", err)
		}
	}()
}

// stop lets no new run start, waits for those running up to d, then
// cancels them and waits a moment more (their queued copies redo what
// they leave undone).
func (r *localRunner) stop(d time.Duration) {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		r.cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	r.cancel()
}

// inTaskKey marks the context of a task the worker's queue handed out.
type inTaskKey struct{}

// countBusy counts the syncs and emails the worker's queue handed out
// while they run (sweeps and reports to Envoy do not hold up a visit).
func (w *Worker) countBusy(h asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if t.Type() != TypeVisitSync && t.Type() != TypeEmailSend {
			return h.ProcessTask(ctx, t)
		}
		w.busy.Add(1)
		defer w.busy.Add(-1)
		return h.ProcessTask(context.WithValue(ctx, inTaskKey{}, true), t)
	})
}
