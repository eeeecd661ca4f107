package connector

import "time"

// VisitRef names a visit at one version of its desired state.
type VisitRef struct {
	ID      int64
	Version int64
}

// SyncResult tells the caller of Service.SyncVisit what to do next: send an
// email of EmailKind for WindowKey (when EmailKind is set), and sync again at
// NextAt (when the window opens or closes; zero for never).
type SyncResult struct {
	Version   int64
	Status    Status
	EmailKind string
	WindowKey string
	NextAt    time.Time
}

// DriftReport counts what a drift repair changed on the controller, and
// lists the guest emails its resyncs made due (a recreated link has a new
// reader QR code).
type DriftReport struct {
	Checked int
	Deleted int
	Created int
	Emails  []EmailDue
}

// EmailDue is a guest email to send: SendVisitEmail(VisitID, Kind, Key).
type EmailDue struct {
	VisitID int64
	Kind    string
	Key     string
}
