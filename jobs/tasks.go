package jobs

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task types, in noun:verb form.
const (
	TypeVisitSync   = "visit:sync"
	TypeEmailSend   = "email:send"
	TypeSweepExpire = "sweep:expire"
	TypeSweepLost   = "sweep:requeue"
	TypeSweepDrift  = "sweep:drift"
	// TypeMappingChanged re-decides the open visits of a location and flow
	// after their mapping changed.
	TypeMappingChanged = "mapping:changed"
	// TypeEnvoyReport sends a job's outcome back to Envoy.
	TypeEnvoyReport = "envoy:report"
)

// Queues and their weights: access changes first, mail next, sweeps last.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

var queueWeights = map[string]int{QueueCritical: 6, QueueDefault: 3, QueueLow: 1}

// queueOf is the queue of each task type.
var queueOf = map[string]string{
	TypeVisitSync: QueueCritical, TypeEmailSend: QueueDefault,
	TypeSweepExpire: QueueLow, TypeSweepLost: QueueLow, TypeSweepDrift: QueueLow,
	TypeMappingChanged: QueueCritical, TypeEnvoyReport: QueueDefault,
}

// VisitSyncPayload asks the worker to make the controller match visit
// VisitID's desired state as of its Version.
type VisitSyncPayload struct {
	VisitID int64 `json:"visit_id"`
	Version int64 `json:"version"`
	// Sweep marks a sync a sweep enqueued. The sweep enqueues another on
	// its next tick, so this one gives up after a few attempts (a long
	// controller outage does not pile up retrying tasks) and does not mark
	// the visit failed.
	Sweep bool `json:"sweep,omitempty"`
	// Backup marks the queued copy of a sync also started at once in the
	// process that enqueued it (Client.RunLocally): it does nothing when
	// that run already synced the version.
	Backup bool `json:"backup,omitempty"`
}

// EmailSendPayload asks the worker to send the guest email of kind Kind for
// the window identified by WindowKey.
type EmailSendPayload struct {
	VisitID   int64  `json:"visit_id"`
	Kind      string `json:"kind"`
	WindowKey string `json:"window_key"`
	// Backup marks the queued copy of an email also started at once (see
	// VisitSyncPayload.Backup): it does nothing once the window is emailed.
	Backup bool `json:"backup,omitempty"`
}

// MappingChangedPayload names the location and flow whose mapping changed.
type MappingChangedPayload struct {
	LocationID string `json:"location_id"`
	FlowID     string `json:"flow_id"`
}

// SweepPayload carries the scheduler tick that enqueued a sweep.
type SweepPayload struct {
	Tick time.Time `json:"tick"`
	// Recover marks the lost sweep run when the queue was found emptied
	// (Redis restarted without its data): everything unsynced or owed is
	// enqueued at once, not only what has waited LostAfter.
	Recover bool `json:"recover,omitempty"`
}

// NewVisitSyncTask returns a sync task and its deterministic id: one task per
// visit version, so duplicate events collapse and a later change runs again.
func NewVisitSyncTask(p VisitSyncPayload) (*asynq.Task, string, error) {
	id := fmt.Sprintf("visit:sync:%d:%d", p.VisitID, p.Version)
	retries := 12
	if p.Sweep {
		retries = 2
	}
	// The timeout is longer than the connector's own bound on a sync, so
	// a slow sync stops between controller calls, not inside one.
	t, err := newTask(TypeVisitSync, p, asynq.Queue(queueOf[TypeVisitSync]), asynq.MaxRetry(retries), asynq.Timeout(3*time.Minute))
	return t, id, err
}

// NewEmailSendTask returns an email task and its deterministic id: one email
// per visit, kind and window.
func NewEmailSendTask(p EmailSendPayload) (*asynq.Task, string, error) {
	id := fmt.Sprintf("email:%d:%s:%s", p.VisitID, p.Kind, p.WindowKey)
	t, err := newTask(TypeEmailSend, p, asynq.Queue(queueOf[TypeEmailSend]), asynq.MaxRetry(20), asynq.Timeout(60*time.Second))
	return t, id, err
}

// EnvoyReportPayload names a report owed to Envoy.
type EnvoyReportPayload struct {
	ReportID int64 `json:"report_id"`
}

// NewEnvoyReportTask returns the task that sends a report to Envoy and its
// deterministic id. Retries back off from 1 s to 5 minutes, about an hour
// in all, before the report is given up.
func NewEnvoyReportTask(p EnvoyReportPayload) (*asynq.Task, string, error) {
	id := fmt.Sprintf("envoy:report:%d", p.ReportID)
	t, err := newTask(TypeEnvoyReport, p, asynq.Queue(queueOf[TypeEnvoyReport]), asynq.MaxRetry(16), asynq.Timeout(60*time.Second))
	return t, id, err
}

// NewMappingChangedTask returns the task that re-decides the visits of a
// changed mapping's flow. Every change gets its own task (no fixed id): a
// change made while an earlier one's task runs must be applied again.
func NewMappingChangedTask(p MappingChangedPayload) (*asynq.Task, error) {
	return newTask(TypeMappingChanged, p, asynq.Queue(queueOf[TypeMappingChanged]), asynq.MaxRetry(12), asynq.Timeout(10*time.Minute))
}

// NewSweepTask returns a sweep task of type typ for a scheduler tick; its id
// comes from the tick, so several schedulers enqueue it once.
func NewSweepTask(typ string, tick time.Time) (*asynq.Task, string, error) {
	id := fmt.Sprintf("%s:%d", typ, tick.Unix())
	t, err := newTask(typ, SweepPayload{Tick: tick}, asynq.Queue(queueOf[typ]), asynq.MaxRetry(1), asynq.Timeout(5*time.Minute))
	return t, id, err
}

// NewRecoverSweepTask returns the lost sweep that follows finding the
// queue emptied, with an id of its own.
func NewRecoverSweepTask(tick time.Time) (*asynq.Task, string, error) {
	id := fmt.Sprintf("%s:recover:%d", TypeSweepLost, tick.UnixNano())
	t, err := newTask(TypeSweepLost, SweepPayload{Tick: tick, Recover: true}, asynq.Queue(queueOf[TypeSweepLost]), asynq.MaxRetry(3), asynq.Timeout(5*time.Minute))
	return t, id, err
}

func newTask(typ string, payload any, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	return asynq.NewTask(typ, b, opts...), nil
}

// decode reads a task payload; a payload that does not decode can never
// succeed, so it is wrapped with asynq.SkipRetry.
func decode[T any](t *asynq.Task) (T, error) {
	var p T
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("decode %s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return p, nil
}
