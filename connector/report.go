package connector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reporter tells the platform an event came from (Envoy) how its job ended,
// after the answer to the event said the work goes on in the background.
// connector/envoy implements it. An error of kind Invalid, Forbidden or
// Unauthorized is final (the platform refused the report); any other is
// worth retrying.
type Reporter interface {
	ReportJob(ctx context.Context, jobID string, r JobReport) error
}

// Job outcomes a report can give.
const (
	JobDone    = "done"
	JobIgnored = "ignored"
	JobFailed  = "failed"
)

// JobReport is a job's outcome: its status (JobDone, JobIgnored, JobFailed),
// the message the platform shows its user, the reason of a failure, and
// what to show beside the visitor.
type JobReport struct {
	Status        string
	Message       string
	FailureReason string
	Attachments   []Attachment
}

// Attachment is one item shown beside the visitor in the platform's
// dashboard: a text (Label, Value) or a link (Label, Value, URL).
type Attachment struct {
	Type  string // AttachText or AttachLink
	Label string
	Value string
	URL   string
}

// Attachment types.
const (
	AttachText = "text"
	AttachLink = "link"
)

// reportKeep is how long a report given up (or one whose sync never
// settled) is kept before it is pruned.
const reportKeep = 7 * 24 * time.Hour

func (s *Service) reporting() bool { return s.opts.Reporter != nil }

// Reporting reports whether job outcomes are reported back to Envoy.
func (s *Service) Reporting() bool { return s.reporting() }

// SendEnvoyReport sends report id to Envoy: the job's status, a message,
// and for access that is set up the doors and window (in the location's
// zone) and the guest's pass link. A report already sent, or never owed,
// is nothing to do. The visit's access does not wait for it and does not
// depend on it.
func (s *Service) SendEnvoyReport(ctx context.Context, id int64) error {
	if !s.reporting() {
		return nil
	}
	r, found, err := s.store.report(ctx, id)
	if err != nil || !found || r.State != reportDue {
		return err
	}
	v, err := s.store.Visit(ctx, r.VisitID)
	if errors.Is(err, ErrVisitNotFound) {
		return s.store.deleteReport(ctx, id)
	}
	if err != nil {
		return err
	}
	rep := s.jobReport(ctx, r, &v)
	if err := s.opts.Reporter.ReportJob(ctx, r.JobID, rep); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *Store) error {
		if err := tx.deleteReport(ctx, id); err != nil {
			return err
		}
		return tx.AddTimeline(ctx, v.ID, s.now(), KindAction, fmt.Sprintf("reported to Envoy: %s (%s)", rep.Status, rep.Message))
	})
}

// jobReport is what report r tells Envoy about visit v.
func (s *Service) jobReport(ctx context.Context, r reportRow, v *Visit) JobReport {
	if r.Status == JobFailed {
		return JobReport{Status: JobFailed, Message: "door access could not be set up: " + r.Reason, FailureReason: r.Reason}
	}
	if !v.Status.WantsLinks() || v.ValidFrom == nil || v.ValidUntil == nil {
		return JobReport{Status: JobDone, Message: fmt.Sprintf("no door access (%s): %s", v.Status, v.Reason)}
	}
	loc := s.location(v.TimeZone)
	window := v.ValidFrom.In(loc).Format("Mon 2 Jan 15:04") + " – " + v.ValidUntil.In(loc).Format("Mon 2 Jan 15:04 MST")
	text := window
	if links, err := s.store.Links(ctx, v.ID); err == nil {
		// The doors are a courtesy: a controller that cannot list them
		// now does not hold the report back.
		if doors, err := s.emailDoors(ctx, v, links); err == nil && len(doors) > 0 {
			names := make([]string, len(doors))
			for i, d := range doors {
				names[i] = d.Name
			}
			text = strings.Join(names, ", ") + " · " + window
		} else if err != nil {
			s.log.Warn("doors for an envoy report", "visit_id", v.ID, "err", err)
		}
	}
	msg := "door access is ready"
	if v.Status == StatusScheduled {
		msg = "door access is scheduled"
	}
	return JobReport{Status: JobDone, Message: msg, Attachments: []Attachment{
		{Type: AttachText, Label: "Door access", Value: text},
		{Type: AttachLink, Label: "Guest pass", Value: "Open the guest pass", URL: s.PassURL(*v)},
	}}
}

// ReportFailed records that report id could not be sent for good: the
// visit's timeline says so and the operations panel counts it. The visit's
// access is not affected.
func (s *Service) ReportFailed(ctx context.Context, id int64, reason string) error {
	r, found, err := s.store.report(ctx, id)
	if err != nil || !found {
		return err
	}
	return s.store.InTx(ctx, func(tx *Store) error {
		if marked, err := tx.giveUpReport(ctx, id, reason); err != nil || !marked {
			return err
		}
		return tx.AddTimeline(ctx, r.VisitID, s.now(), KindError, "could not report the job to Envoy, giving up: "+reason+"; access is not affected")
	})
}

// ReportsOwed lists the reports to Envoy that became due before cutoff and
// were not sent: their task was lost, or is still retrying. It first
// forgets reports older than a week that were given up or never settled.
func (s *Service) ReportsOwed(ctx context.Context, cutoff time.Time) ([]int64, error) {
	// Pruned even with reporting off: rows left from when it was on.
	if err := s.store.pruneReports(ctx, s.now().Add(-reportKeep)); err != nil {
		return nil, err
	}
	if !s.reporting() {
		return nil, nil
	}
	return s.store.reportsOwed(ctx, cutoff, 1000)
}
