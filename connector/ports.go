package connector

import (
	"context"
	"time"

	latchkey "github.com/latchkey/latchkey"
)

// Queue takes the work a change leaves to be done in the background. jobs
// implements it; the Service calls it after a change commits, in after and
// nowhere else.
type Queue interface {
	// EnqueueVisitSync asks for visit id's version to be synced.
	EnqueueVisitSync(ctx context.Context, visitID, version int64) error
	// EnqueueEmail asks for a guest email of kind to be sent for the
	// access window windowKey.
	EnqueueEmail(ctx context.Context, visitID int64, kind, windowKey string) error
	// EnqueueMappingChanged asks for the open visits of a location and
	// flow to be re-decided.
	EnqueueMappingChanged(ctx context.Context, locationID, flowID string) error
	// EnqueueEnvoyReport asks for report id (a job's outcome) to be sent
	// to Envoy.
	EnqueueEnvoyReport(ctx context.Context, id int64) error
}

// noQueue is the Queue of a Service given none: nothing is queued, and the
// sweeps, if any run, find the work owed.
type noQueue struct{}

func (noQueue) EnqueueVisitSync(context.Context, int64, int64) error        { return nil }
func (noQueue) EnqueueEmail(context.Context, int64, string, string) error   { return nil }
func (noQueue) EnqueueMappingChanged(context.Context, string, string) error { return nil }
func (noQueue) EnqueueEnvoyReport(context.Context, int64) error             { return nil }

// afterSync queues the syncs of refs, once their change has committed. The
// failure policy is the same everywhere: the change is stored and the
// database says a sync is owed, so a queue that cannot take the task is
// logged and the sweep for lost work enqueues the sync again.
func (s *Service) afterSync(ctx context.Context, refs ...VisitRef) {
	for _, r := range refs {
		if err := s.queue.EnqueueVisitSync(ctx, r.ID, r.Version); err != nil {
			s.log.Warn("enqueue visit sync; the sweep for lost work will", "visit_id", r.ID, "err", err)
		}
	}
}

// afterReports queues the reports to Envoy that a change made due, once it
// has committed. They are recorded as due, so the policy is afterSync's: a
// queue that cannot take one is logged, and the sweep for lost work
// enqueues it again.
func (s *Service) afterReports(ctx context.Context, ids ...int64) {
	for _, id := range ids {
		if err := s.queue.EnqueueEnvoyReport(ctx, id); err != nil {
			s.log.Warn("enqueue envoy report; the sweep for lost work will", "report_id", id, "err", err)
		}
	}
}

// afterResend queues a resent email. A resend is the one piece of work the
// database does not record as owed, so no sweep would find it: a queue
// that cannot take it is an error the front desk sees and can retry.
func (s *Service) afterResend(ctx context.Context, id int64, key string) error {
	if err := s.queue.EnqueueEmail(ctx, id, EmailResend, key); err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "could not queue the email; try again", err)
	}
	return nil
}

// FlowMappingChanged has the open visits of a location and flow re-decided
// after their mapping was created, changed or deleted. A worker does it (a
// flow may have many visits, and the task is retried until done); when the
// queue cannot take the task, it is done here, on a context of its own so
// that a caller hanging up does not stop it half way, and the visits'
// syncs are queued. The mapping change itself has succeeded either way; a
// failure is logged and the visits' syncs are left to the sweeps.
func (s *Service) FlowMappingChanged(ctx context.Context, locationID, flowID string) {
	err := s.queue.EnqueueMappingChanged(ctx, locationID, flowID)
	if err == nil {
		return
	}
	s.log.Warn("queue the re-decision of a changed mapping's visits; doing it now", "location_id", locationID, "flow_id", flowID, "err", err)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	refs, err := s.MappingChanged(ctx, locationID, flowID)
	if err != nil {
		s.log.Warn("re-decide visits after a mapping change", "location_id", locationID, "flow_id", flowID, "err", err)
	}
	s.afterSync(ctx, refs...)
}
