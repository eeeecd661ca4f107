package connector

import "context"

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
