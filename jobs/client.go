package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/latchkey/latchkey/connector"
)

// Client enqueues tasks. It is safe for concurrent use.
type Client struct {
	c *asynq.Client
	i *asynq.Inspector
	// local, when set, also runs syncs and emails at once (RunLocally).
	local atomic.Pointer[localRunner]
}

// NewClient returns a Client on r.
func NewClient(r *Redis) *Client {
	return &Client{c: asynq.NewClientFromRedisClient(r.c), i: asynq.NewInspectorFromRedisClient(r.c)}
}

// enqueue adds t under id; a task already queued under that id counts as
// success. Finished tasks are not retained: every task is idempotent (a
// sync re-reads the visit, an email checks what was sent), so a duplicate
// after completion costs a little work, while retention would keep every
// finished task in Redis for its duration.
//
// A task that failed for good stays archived under its id; enqueueing that
// id again means the work is wanted again (an owed email found by the
// sweep, a sync asked for after the controller came back), so the archived
// task is deleted and the new one enqueued.
func (c *Client) enqueue(ctx context.Context, t *asynq.Task, id string, opts ...asynq.Option) error {
	opts = append(opts, asynq.TaskID(id))
	for attempt := 0; ; attempt++ {
		_, err := c.c.EnqueueContext(ctx, t, opts...)
		if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
			if attempt > 0 || !c.deleteArchived(t.Type(), id) {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("enqueue %s: %w", id, err)
		}
		return nil
	}
}

// backupAfter is how long the queued copy of work also run at once waits
// before a worker takes it (see RunLocally): long enough that it does not
// meet the local run still holding the visit, short enough that work a
// dying process started is done again within seconds.
const backupAfter = 5 * time.Second

// backupDelay returns the options that hold a backup copy back.
func backupDelay(backup bool) []asynq.Option {
	if !backup {
		return nil
	}
	return []asynq.Option{asynq.ProcessIn(backupAfter)}
}

// deleteArchived deletes the task id of type typ if it is archived, and
// reports whether it did.
func (c *Client) deleteArchived(typ, id string) bool {
	q := queueOf[typ]
	info, err := c.i.GetTaskInfo(q, id)
	if err != nil || info.State != asynq.TaskStateArchived {
		return false
	}
	return c.i.DeleteTask(q, id) == nil
}

// EnqueueVisitSync enqueues a sync of visit id at the given version.
// With RunLocally, the sync also starts at once here.
func (c *Client) EnqueueVisitSync(ctx context.Context, visitID, version int64) error {
	r := c.local.Load()
	now := r.take(ctx)
	t, id, err := NewVisitSyncTask(VisitSyncPayload{VisitID: visitID, Version: version, Backup: now})
	if err == nil {
		err = c.enqueue(ctx, t, id, backupDelay(now)...)
	}
	if !now {
		return err
	}
	if err != nil {
		r.release()
		return err
	}
	r.run(t, r.w.handleVisitSync)
	return nil
}

// EnqueueVisitSyncTagged enqueues a sync of visit id under an id that also
// carries tag, for sweeps: the plain id may still be taken by a finished or
// archived task of the same version.
func (c *Client) EnqueueVisitSyncTagged(ctx context.Context, visitID, version int64, tag string) error {
	t, id, err := NewVisitSyncTask(VisitSyncPayload{VisitID: visitID, Version: version, Sweep: true})
	if err != nil {
		return err
	}
	return c.enqueue(ctx, t, id+":"+tag)
}

// EnqueueVisitSyncAt enqueues a sync of visit id to run at when (used for
// the moment a window opens or closes).
func (c *Client) EnqueueVisitSyncAt(ctx context.Context, visitID, version int64, when time.Time) error {
	return c.enqueueVisitSyncAt(ctx, visitID, version, when, when, "")
}

// enqueueVisitSyncAt is EnqueueVisitSyncAt from within the task running
// under id running. when is the moment on the shared clock (it names the
// task); local is the same moment on this process's clock, which asynq
// fires by. A task that ran a moment early (a replica's clock is ahead of
// the database's) asks for a sync at its own moment again, and that must
// not be taken for itself.
func (c *Client) enqueueVisitSyncAt(ctx context.Context, visitID, version int64, when, local time.Time, running string) error {
	t, _, err := NewVisitSyncTask(VisitSyncPayload{VisitID: visitID, Version: version})
	if err != nil {
		return err
	}
	id := fmt.Sprintf("visit:sync:%d:%d:at:%d", visitID, version, when.Unix())
	if id == running {
		// Try again a second later, when this clock has passed the moment.
		id += ":again"
		if now := time.Now(); local.Before(now) {
			local = now
		}
		local = local.Add(time.Second)
	}
	return c.enqueue(ctx, t, id, asynq.ProcessAt(local))
}

// EnqueueEmail enqueues the email of kind for visit id's window windowKey.
// With RunLocally, the email also starts at once here.
func (c *Client) EnqueueEmail(ctx context.Context, visitID int64, kind, windowKey string) error {
	r := c.local.Load()
	// A resend's key is never recorded as the emailed window, so its
	// backup copy could not tell it was sent: resends wait for the queue.
	now := kind != connector.EmailResend && r.take(ctx)
	t, id, err := NewEmailSendTask(EmailSendPayload{VisitID: visitID, Kind: kind, WindowKey: windowKey, Backup: now})
	if err == nil {
		err = c.enqueue(ctx, t, id, backupDelay(now)...)
	}
	if !now {
		return err
	}
	if err != nil {
		r.release()
		return err
	}
	r.run(t, r.w.handleEmailSend)
	return nil
}

// EnqueueEmailTagged enqueues the email of kind for visit id's window
// windowKey under an id that also carries tag, for sweeps: the plain id may
// belong to a task stranded on a worker that died, which asynq would only
// give back much later. Sending twice is safe: an email checks what was
// sent, and a sender claims it before handing it to the mailer.
func (c *Client) EnqueueEmailTagged(ctx context.Context, visitID int64, kind, windowKey, tag string) error {
	t, id, err := NewEmailSendTask(EmailSendPayload{VisitID: visitID, Kind: kind, WindowKey: windowKey})
	if err != nil {
		return err
	}
	return c.enqueue(ctx, t, id+":"+tag)
}

// EnqueueEnvoyReport enqueues the sending of report id to Envoy.
func (c *Client) EnqueueEnvoyReport(ctx context.Context, id int64) error {
	t, tid, err := NewEnvoyReportTask(EnvoyReportPayload{ReportID: id})
	if err != nil {
		return err
	}
	return c.enqueue(ctx, t, tid)
}

// EnqueueEnvoyReportTagged is EnqueueEnvoyReport under an id that also
// carries a sweep's tag: the plain id may belong to a task stranded on a
// worker that died. Sending twice is safe: Envoy takes the same update
// again, and the report is deleted once sent.
func (c *Client) EnqueueEnvoyReportTagged(ctx context.Context, id int64, tag string) error {
	t, tid, err := NewEnvoyReportTask(EnvoyReportPayload{ReportID: id})
	if err != nil {
		return err
	}
	return c.enqueue(ctx, t, tid+":"+tag)
}

// EnqueueMappingChanged enqueues the re-decision of the open visits of a
// location and flow whose mapping changed.
func (c *Client) EnqueueMappingChanged(ctx context.Context, locationID, flowID string) error {
	t, err := NewMappingChangedTask(MappingChangedPayload{LocationID: locationID, FlowID: flowID})
	if err != nil {
		return err
	}
	if _, err := c.c.EnqueueContext(ctx, t); err != nil {
		return fmt.Errorf("enqueue mapping change of location %s flow %s: %w", locationID, flowID, err)
	}
	return nil
}

// QueueStats sums pending, active, scheduled, retry and archived tasks over
// every queue.
type QueueStats struct {
	Pending, Active, Scheduled, Retry, Archived int
}

// Stats returns the current queue depths.
func (c *Client) Stats(ctx context.Context) (QueueStats, error) {
	var s QueueStats
	queues, err := c.i.Queues()
	if err != nil {
		return s, fmt.Errorf("list queues: %w", err)
	}
	for _, q := range queues {
		info, err := c.i.GetQueueInfo(q)
		if err != nil {
			return s, fmt.Errorf("queue %s: %w", q, err)
		}
		s.Pending += info.Pending
		s.Active += info.Active
		s.Scheduled += info.Scheduled
		s.Retry += info.Retry
		s.Archived += info.Archived
	}
	return s, nil
}

// Close releases the client's resources (not the shared Redis pool).
func (c *Client) Close() error { return nil }
