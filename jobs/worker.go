package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/metrics"
)

// Domain is what the worker needs from the connector.
type Domain interface {
	// SyncVisit makes the controller match the visit's desired state.
	SyncVisit(ctx context.Context, visitID int64) (connector.SyncResult, error)
	// SendVisitEmail sends the guest email of kind for windowKey, once.
	SendVisitEmail(ctx context.Context, visitID int64, kind, windowKey string) error
	// MarkFailed records that the visit's sync at version failed for good.
	MarkFailed(ctx context.Context, visitID, version int64, reason string) error
	// EmailFailed records that the guest email for windowKey failed for
	// good; the visit's access is not affected.
	EmailFailed(ctx context.Context, visitID int64, windowKey, reason string) error
	// VisitsDue lists visits whose status changes by time alone by now.
	VisitsDue(ctx context.Context, now time.Time) ([]connector.VisitRef, error)
	// VisitsUnsynced lists visits changed before cutoff and not synced since.
	VisitsUnsynced(ctx context.Context, cutoff time.Time) ([]connector.VisitRef, error)
	// EmailsOwed lists guest emails of synced visits changed before cutoff
	// that were never sent.
	EmailsOwed(ctx context.Context, cutoff time.Time) ([]connector.EmailDue, error)
	// MappingChanged re-decides the open visits of a location and flow
	// whose mapping changed, and returns those to sync.
	MappingChanged(ctx context.Context, locationID, flowID string) ([]connector.VisitRef, error)
	// RepairDrift makes the controller's links match the stored visits.
	RepairDrift(ctx context.Context) (connector.DriftReport, error)
	// SendEnvoyReport sends a job's outcome to Envoy.
	SendEnvoyReport(ctx context.Context, id int64) error
	// ReportFailed records that a report could not be sent for good.
	ReportFailed(ctx context.Context, id int64, reason string) error
	// ReportsOwed lists reports due before cutoff and not sent.
	ReportsOwed(ctx context.Context, cutoff time.Time) ([]int64, error)
	// Synced reports whether the visit's sync at version (or later) is
	// done.
	Synced(ctx context.Context, visitID, version int64) (bool, error)
	// Emailed reports whether the guest email for windowKey was sent.
	Emailed(ctx context.Context, visitID int64, windowKey string) (bool, error)
}

// WorkerOptions tunes the worker; the zero value works.
type WorkerOptions struct {
	// Concurrency is the number of tasks processed at once (default 10).
	Concurrency int
	// PollInterval is how often idle queues and delayed tasks are checked
	// (default 1s; tests use less).
	PollInterval time.Duration
	// LostAfter is how long a changed visit may wait for its sync before
	// the sweep enqueues it again (default 30s).
	LostAfter time.Duration
	// ShutdownTimeout bounds how long in-flight tasks may finish on stop
	// (default 8s).
	ShutdownTimeout time.Duration
	// Now is the clock sweeps and window edges are judged by: the
	// database's, shared by every replica (default time.Now).
	Now func() time.Time
	// ToLocal converts a time on Now's clock to this process's own clock,
	// which asynq fires delayed tasks by (default: unchanged).
	ToLocal func(time.Time) time.Time
	// Metrics counts sync and email outcomes (nil: not counted).
	Metrics *metrics.Metrics
}

// Worker processes tasks. Build it with NewWorker, then Start and Shutdown.
type Worker struct {
	log    *slog.Logger
	d      Domain
	client *Client
	srv    *asynq.Server
	opts   WorkerOptions
	// local runs work at once beside its queued copy (Client.RunLocally).
	local *localRunner
	// busy counts the tasks from the queue running now.
	busy atomic.Int64
}

// NewWorker returns a worker on r that calls d and enqueues follow-up work
// through client.
func NewWorker(log *slog.Logger, r *Redis, d Domain, client *Client, opts WorkerOptions) *Worker {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 10
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.LostAfter <= 0 {
		opts.LostAfter = 30 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 8 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ToLocal == nil {
		opts.ToLocal = func(t time.Time) time.Time { return t }
	}
	w := &Worker{log: log.With("component", "worker"), d: d, client: client, opts: opts}
	w.srv = asynq.NewServerFromRedisClient(r.c, asynq.Config{
		Concurrency:              opts.Concurrency,
		Queues:                   queueWeights,
		TaskCheckInterval:        opts.PollInterval,
		DelayedTaskCheckInterval: opts.PollInterval,
		ShutdownTimeout:          opts.ShutdownTimeout,
		RetryDelayFunc:           retryDelay,
		IsFailure:                isFailure,
		ErrorHandler:             asynq.ErrorHandlerFunc(w.handleError),
		Logger:                   asynqLogger{w.log},
		LogLevel:                 asynq.WarnLevel,
	})
	return w
}

// Start begins processing in the background.
func (w *Worker) Start() error {
	mux := asynq.NewServeMux()
	w.Register(mux)
	mux.Use(w.countBusy)
	if err := w.srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	return nil
}

// Stop stops taking new tasks; Shutdown then waits for tasks in flight.
func (w *Worker) Stop() { w.srv.Stop() }

// Shutdown stops the worker, letting tasks in flight finish within the
// shutdown timeout; unfinished ones go back to the queue.
func (w *Worker) Shutdown() {
	w.srv.Shutdown()
	if w.local != nil {
		w.local.stop(w.opts.ShutdownTimeout)
	}
}

// Register adds every task handler to mux.
func (w *Worker) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeVisitSync, w.handleVisitSync)
	mux.HandleFunc(TypeEmailSend, w.handleEmailSend)
	mux.HandleFunc(TypeSweepExpire, w.handleSweepExpire)
	mux.HandleFunc(TypeSweepLost, w.handleSweepLost)
	mux.HandleFunc(TypeSweepDrift, w.handleSweepDrift)
	mux.HandleFunc(TypeMappingChanged, w.handleMappingChanged)
	mux.HandleFunc(TypeEnvoyReport, w.handleEnvoyReport)
}

func (w *Worker) handleEnvoyReport(ctx context.Context, t *asynq.Task) error {
	p, err := decode[EnvoyReportPayload](t)
	if err != nil {
		return err
	}
	if err := w.d.SendEnvoyReport(ctx, p.ReportID); err != nil {
		return classify(err)
	}
	w.opts.Metrics.Report(metrics.OK)
	return nil
}

func (w *Worker) handleMappingChanged(ctx context.Context, t *asynq.Task) error {
	p, err := decode[MappingChangedPayload](t)
	if err != nil {
		return err
	}
	refs, err := w.d.MappingChanged(ctx, p.LocationID, p.FlowID)
	for _, r := range refs {
		err = errors.Join(err, w.client.EnqueueVisitSync(ctx, r.ID, r.Version))
	}
	if err == nil && len(refs) > 0 {
		w.log.Info("mapping change applied", "location_id", p.LocationID, "flow_id", p.FlowID, "visits", len(refs))
	}
	return err
}

func (w *Worker) handleVisitSync(ctx context.Context, t *asynq.Task) error {
	p, err := decode[VisitSyncPayload](t)
	if err != nil {
		return err
	}
	if p.Backup {
		if done, err := w.d.Synced(ctx, p.VisitID, p.Version); err != nil || done {
			return err
		}
	}
	res, err := w.d.SyncVisit(ctx, p.VisitID)
	if err != nil {
		return classify(err)
	}
	w.opts.Metrics.Sync(metrics.OK)
	if res.EmailKind != "" {
		if err := w.client.EnqueueEmail(ctx, p.VisitID, res.EmailKind, res.WindowKey); err != nil {
			return err
		}
	}
	if !res.NextAt.IsZero() {
		running, _ := asynq.GetTaskID(ctx)
		if err := w.client.enqueueVisitSyncAt(ctx, p.VisitID, res.Version, res.NextAt, w.opts.ToLocal(res.NextAt), running); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) handleEmailSend(ctx context.Context, t *asynq.Task) error {
	p, err := decode[EmailSendPayload](t)
	if err != nil {
		return err
	}
	if p.Backup {
		if done, err := w.d.Emailed(ctx, p.VisitID, p.WindowKey); err != nil || done {
			return err
		}
	}
	if err := w.d.SendVisitEmail(ctx, p.VisitID, p.Kind, p.WindowKey); err != nil {
		return classify(err)
	}
	w.opts.Metrics.Email(metrics.OK)
	return nil
}

func (w *Worker) handleSweepExpire(ctx context.Context, t *asynq.Task) error {
	p, err := decode[SweepPayload](t)
	if err != nil {
		return err
	}
	refs, err := w.d.VisitsDue(ctx, w.opts.Now().UTC())
	if err != nil {
		return err
	}
	return w.enqueueSyncs(ctx, refs, fmt.Sprintf("due:%d", p.Tick.Unix()))
}

func (w *Worker) handleSweepLost(ctx context.Context, t *asynq.Task) error {
	p, err := decode[SweepPayload](t)
	if err != nil {
		return err
	}
	cutoff := w.opts.Now().UTC().Add(-w.opts.LostAfter)
	tag := fmt.Sprintf("lost:%d", p.Tick.Unix())
	if p.Recover {
		// The queue was emptied: nothing that is owed is queued any more.
		cutoff, tag = w.opts.Now().UTC().Add(time.Second), fmt.Sprintf("recover:%d", p.Tick.UnixNano())
	}
	refs, err := w.d.VisitsUnsynced(ctx, cutoff)
	if err != nil {
		return err
	}
	err = w.enqueueSyncs(ctx, refs, tag)
	// An owed email goes straight to the queue, so a sync lease left by a
	// dead worker does not hold it back, under an id of this sweep's: the
	// email's own task may be stranded on that dead worker.
	emails, eerr := w.d.EmailsOwed(ctx, cutoff)
	err = errors.Join(err, eerr)
	for _, e := range emails {
		err = errors.Join(err, w.client.EnqueueEmailTagged(ctx, e.VisitID, e.Kind, e.Key, tag))
	}
	reports, rerr := w.d.ReportsOwed(ctx, cutoff)
	err = errors.Join(err, rerr)
	for _, id := range reports {
		err = errors.Join(err, w.client.EnqueueEnvoyReportTagged(ctx, id, tag))
	}
	return err
}

func (w *Worker) handleSweepDrift(ctx context.Context, _ *asynq.Task) error {
	rep, err := w.d.RepairDrift(ctx)
	for _, e := range rep.Emails {
		if qerr := w.client.EnqueueEmail(ctx, e.VisitID, e.Kind, e.Key); qerr != nil {
			err = errors.Join(err, qerr)
		}
	}
	if err != nil {
		return err
	}
	if rep.Deleted+rep.Created > 0 {
		w.log.Info("drift repaired", "checked", rep.Checked, "deleted", rep.Deleted, "created", rep.Created)
	}
	return nil
}

// enqueueSyncs enqueues a sync of each visit, tagged with the sweep tick.
func (w *Worker) enqueueSyncs(ctx context.Context, refs []connector.VisitRef, tag string) error {
	var errs []error
	for _, r := range refs {
		if err := w.client.EnqueueVisitSyncTagged(ctx, r.ID, r.Version, tag); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// classify marks permanent errors (bad input, a refused request) so asynq
// does not retry them.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, connector.ErrBusy) {
		return fmt.Errorf("%w: %w", err, errNotReady)
	}
	switch latchkey.KindOf(err) {
	case latchkey.Invalid, latchkey.Forbidden, latchkey.Unauthorized:
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// errNotReady may be returned by a handler whose input is not there yet; it
// is retried without using up the retry budget.
var errNotReady = errors.New("not ready")

func isFailure(err error) bool { return !errors.Is(err, errNotReady) }

// retryDelay backs off exponentially from 1s to 5 minutes, with jitter.
func retryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := time.Second << min(n, 9)
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d/2 + rand.N(d/2+1)
}

// handleError logs each failure once. When no retry is left, a sync marks
// its visit failed and an email is recorded as not sent; a failed email
// never takes away the guest's access.
func (w *Worker) handleError(ctx context.Context, t *asynq.Task, err error) {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	id, _ := asynq.GetTaskID(ctx)
	final := retried >= maxRetry || errors.Is(err, asynq.SkipRetry)
	log := w.log.With("task_type", t.Type(), "task_id", id, "retry", retried, "max_retry", maxRetry, "err", err)
	outcome := metrics.Retry
	if final {
		outcome = metrics.Failed
	}
	switch t.Type() {
	case TypeVisitSync:
		w.opts.Metrics.Sync(outcome)
	case TypeEmailSend:
		w.opts.Metrics.Email(outcome)
	case TypeEnvoyReport:
		w.opts.Metrics.Report(outcome)
	}
	if !final {
		log.Warn("task failed, will retry")
		return
	}
	log.Error("task failed for good")
	ctx = context.WithoutCancel(ctx)
	switch t.Type() {
	case TypeVisitSync:
		p, derr := decode[VisitSyncPayload](t)
		if derr != nil || p.Sweep {
			return
		}
		if merr := w.d.MarkFailed(ctx, p.VisitID, p.Version, latchkey.Message(err)); merr != nil {
			log.Error("mark visit failed", "visit_id", p.VisitID, "mark_err", merr)
		}
	case TypeEmailSend:
		p, derr := decode[EmailSendPayload](t)
		if derr != nil {
			return
		}
		if merr := w.d.EmailFailed(ctx, p.VisitID, p.WindowKey, latchkey.Message(err)); merr != nil {
			log.Error("record failed email", "visit_id", p.VisitID, "mark_err", merr)
		}
	case TypeEnvoyReport:
		p, derr := decode[EnvoyReportPayload](t)
		if derr != nil {
			return
		}
		if merr := w.d.ReportFailed(ctx, p.ReportID, latchkey.Message(err)); merr != nil {
			log.Error("record failed envoy report", "report_id", p.ReportID, "mark_err", merr)
		}
	}
}
