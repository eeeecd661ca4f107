package connector

import (
	"time"
)

// Visit is one visitor's access, keyed by (install, location, source id).
// The facts columns hold everything learned from its events; status, reason
// and window are the last decision the reconciler applied.
type Visit struct {
	ID         int64  `gorm:"primaryKey"`
	InstallID  string `gorm:"size:64;not null;uniqueIndex:visits_by_source,priority:2;index:visits_by_entry,priority:2;index:visits_by_invite,priority:2"`
	LocationID string `gorm:"size:64;not null;uniqueIndex:visits_by_source,priority:3;index:visits_by_entry,priority:3;index:visits_by_invite,priority:3"`
	// SourceID leads the unique key visits_by_source, so the key also
	// serves the admin API's filter by source id alone.
	SourceID string `gorm:"size:96;not null;uniqueIndex:visits_by_source,priority:1"`
	// EntryID is the Envoy entry of the visitor's sign-in, also for a visit
	// keyed by its invite, so a later entry event that lacks the invite
	// relationship still finds the visit. It leads its index (as the
	// invite leads visits_by_invite and the source visits_by_source), so
	// no plan can read the index for the install and location alone,
	// every visit there: PostgreSQL's generic plan for the event's lookup
	// did, on tables it had no statistics for.
	EntryID string `gorm:"size:64;not null;default:'';index:visits_by_entry,priority:1"`
	// InviteID is the Envoy invite the visit belongs to, also for a visit
	// keyed by its entry, so an invite event (or an entry event naming the
	// invite) that arrives after the entry's finds it.
	InviteID string `gorm:"size:64;not null;default:'';index:visits_by_invite,priority:1"`
	FlowID   string `gorm:"size:64;not null"`
	FlowName string `gorm:"size:200;not null"`
	Name     string `gorm:"size:200;not null"`
	Email    string `gorm:"size:320;not null;index"`
	Phone    string `gorm:"size:64;not null"`
	TimeZone string `gorm:"size:64;not null"`
	// BadTimeZone is the zone the platform last sent for the visit when
	// it is not a known IANA zone ("" otherwise); the window is then
	// computed in TimeZone, or UTC. The operations view lists them.
	BadTimeZone string `gorm:"size:64;not null;default:''"`
	// What the guest is told, the latest non-empty values the platform
	// sent: the host, and the location's name, address and locale.
	HostName        string `gorm:"size:200;not null;default:''"`
	HostEmail       string `gorm:"size:320;not null;default:''"`
	LocationName    string `gorm:"size:200;not null;default:''"`
	LocationAddress string `gorm:"size:300;not null;default:''"`
	Locale          string `gorm:"size:35;not null;default:''"`

	// Status and the window are indexed only where a visit is live (see
	// visitIndexes): history needs no index of them.
	Status     Status `gorm:"size:16;not null"`
	Reason     string `gorm:"size:500;not null"`
	ValidFrom  *time.Time
	ValidUntil *time.Time

	// Facts merged from every event of the visit, stored as JSON; Name,
	// Email, Phone and FlowID above are copies kept for queries.
	Facts Facts `gorm:"serializer:json;type:text;not null"`
	// ExpectedAt is the later of the expected arrival and the sign-in (nil
	// when neither is known), kept for finding the visits a mapping change
	// may concern: an invite sent days ahead is about its arrival.
	ExpectedAt *time.Time

	// Front-desk actions.
	ManuallyRevoked bool
	// RevokedAt is when the front desk (or an uninstall) revoked the
	// visit; the window ends then.
	RevokedAt     *time.Time
	ExtendMinutes int
	ResendCount   int
	// EmailCorrected is the guest's address as the front desk corrected
	// it ("" when never); it wins over the address the platform sends.
	EmailCorrected string `gorm:"size:320;not null;default:''"`

	// Version counts changes to the desired state; SyncedVersion is the
	// last version the reconciler applied.
	Version       int64 `gorm:"not null;default:1"`
	SyncedVersion int64 `gorm:"not null;default:0"`
	// SyncLeaseUntil and SyncLeaseOwner keep two reconcilers off the same
	// visit: the holder renews the lease while it works, so a reconciler
	// that died frees the visit when its short lease runs out.
	SyncLeaseUntil *time.Time
	SyncLeaseOwner string `gorm:"size:32;not null;default:''"`
	// PassHash is the SHA-256 of the guest's pass token; PassSalt derives
	// the token with the secret key (see Passes).
	PassHash      string `gorm:"size:64;not null;uniqueIndex"`
	PassSalt      string `gorm:"size:64;not null"`
	EmailedWindow string `gorm:"size:64;not null"`
	// EmailDueKey is the access key of the guest email the last sync made
	// due; while it differs from EmailedWindow the email is still owed, and
	// the sweep for lost work finds it even when the queue lost the task.
	EmailDueKey string `gorm:"size:64;not null;default:''"`
	// EmailSending is the message key a sender has claimed until
	// EmailSendingUntil, so two workers never hand one email to a mailer
	// that cannot tell repeats apart (SMTP); after a crash mid-send the
	// claim runs out and the same message (same Message-ID) is sent again.
	EmailSending      string `gorm:"size:160;not null;default:''"`
	EmailSendingUntil *time.Time
	FirstViewedAt     *time.Time

	CreatedAt time.Time `gorm:"not null;index"`
	UpdatedAt time.Time `gorm:"not null;index"`
}

// TableName is the visits table.
func (Visit) TableName() string { return "visits" }

// setFacts stores f on the visit and copies its searchable fields.
func (v *Visit) setFacts(f Facts) {
	v.Facts = f
	v.FlowID = f.FlowID
	v.Name = f.Name
	v.Email = f.Email
	if v.EmailCorrected != "" {
		v.Email = v.EmailCorrected
	}
	v.Phone = f.Phone
	v.ExpectedAt = nil
	if at := f.ExpectedArrival; !at.IsZero() || !f.SignedInAt.IsZero() {
		if f.SignedInAt.After(at) {
			at = f.SignedInAt
		}
		at = at.UTC()
		v.ExpectedAt = &at
	}
}

// VisitLink is one controller link behind a visit's pass: one per mapped
// group. LinkID 0 means no link exists on the controller now.
type VisitLink struct {
	ID         int64     `gorm:"primaryKey"`
	VisitID    int64     `gorm:"not null;uniqueIndex:visit_links_group,priority:1"`
	GroupID    int64     `gorm:"not null;uniqueIndex:visit_links_group,priority:2"`
	LinkID     int64     `gorm:"not null;index"`
	Name       string    `gorm:"size:300;not null"`
	ValidFrom  time.Time `gorm:"not null"`
	ValidUntil time.Time `gorm:"not null"`
	// SecretEnc is the link secret, sealed with the secret key.
	SecretEnc []byte
	QRToken   []byte
	// QRImage is the controller's PNG of the reader QR code, sealed; the
	// email and the pass page show it instead of drawing their own.
	QRImage []byte
	// Removed is set once the link was deleted on the controller.
	Removed bool `gorm:"not null;default:false"`
	// Creating describes (creationKey) a link creation whose outcome is not
	// known yet: set before the controller is asked, cleared once the new
	// link is recorded. When a sync finds it set, the creation was cut off
	// (a crash, a timeout whose answer was lost) and may have left a link
	// nobody knows; the next creation deletes such links first.
	// RetiredLinkID is a link this row's current one replaced (on a
	// controller that cannot update links in place), set when the new link
	// is recorded and cleared once the old one is deleted: the old link
	// keeps the guest's access until its replacement exists.
	RetiredLinkID int64  `gorm:"not null;default:0"`
	Creating      string `gorm:"size:400;not null;default:''"`
	CreatingAt    *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName is the visit links table.
func (VisitLink) TableName() string { return "visit_links" }

// TimelineEntry is one step in a visit's history.
type TimelineEntry struct {
	ID      int64     `gorm:"primaryKey"`
	VisitID int64     `gorm:"not null;index:timeline_visit,priority:1"`
	At      time.Time `gorm:"not null;index:timeline_visit,priority:2"`
	Kind    string    `gorm:"size:32;not null"`
	Message string    `gorm:"size:1000;not null"`
}

// TableName is the timeline table.
func (TimelineEntry) TableName() string { return "visit_timeline" }

// Timeline kinds.
const (
	KindEventReceived = "event"
	KindDecision      = "decision"
	KindLinkCreated   = "link_created"
	KindLinkUpdated   = "link_updated"
	KindLinkRevoked   = "link_revoked"
	KindEmailSent     = "email_sent"
	KindEmailFailed   = "email_failed"
	KindPassViewed    = "pass_viewed"
	KindUnlock        = "unlock"
	KindError         = "error"
	KindAction        = "action"
)

// Delivery is one webhook delivery as received, for de-duplication.
type Delivery struct {
	ID         int64     `gorm:"primaryKey"`
	DedupeKey  string    `gorm:"size:200;not null;uniqueIndex"`
	Event      string    `gorm:"size:64;not null"`
	JobID      string    `gorm:"size:64;not null"`
	SourceID   string    `gorm:"size:96;not null"`
	VisitID    *int64    `gorm:"index"`
	Outcome    string    `gorm:"size:16;not null"`
	Reason     string    `gorm:"size:500;not null"`
	ReceivedAt time.Time `gorm:"not null;index"`
}

// TableName is the deliveries table.
func (Delivery) TableName() string { return "webhook_deliveries" }

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
