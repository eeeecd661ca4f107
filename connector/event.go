package connector

import "time"

// EventKind names a visitor event, with Envoy's event names as values.
type EventKind string

// The visitor events latchkey acts on.
const (
	EventInviteCreated   EventKind = "invite_created"
	EventInviteUpdated   EventKind = "invite_updated"
	EventInviteRemoved   EventKind = "invite_removed"
	EventUpcomingVisit   EventKind = "upcoming_visit"
	EventSignIn          EventKind = "entry_sign_in"
	EventSignOut         EventKind = "entry_sign_out"
	EventBlocklistReview EventKind = "entry_blacklist_review"
	EventBlocklistDeny   EventKind = "entry_blacklist_deny"
)

// Known reports whether k is an event latchkey acts on.
func (k EventKind) Known() bool {
	switch k {
	case EventInviteCreated, EventInviteUpdated, EventInviteRemoved, EventUpcomingVisit,
		EventSignIn, EventSignOut, EventBlocklistReview, EventBlocklistDeny:
		return true
	}
	return false
}

// IsInvite reports whether the event's payload is an invite (else an entry).
func (k EventKind) IsInvite() bool {
	switch k {
	case EventInviteCreated, EventInviteUpdated, EventInviteRemoved, EventUpcomingVisit:
		return true
	}
	return false
}

// Event is one visitor event, normalized from the platform's wire format.
// Times are UTC; zero means absent.
type Event struct {
	Kind       EventKind
	InstallID  string
	LocationID string
	// TimeZone is the location's IANA zone, "" when the platform sent none.
	TimeZone string
	FlowID   string
	FlowName string
	// EntryID is set for entry events and for invites whose visitor has
	// arrived (relationships.entry); InviteID for invite events and for
	// entries that came from an invite (relationships.invite). Either
	// joins the event to a visit that recorded the same id.
	EntryID  string
	InviteID string
	FullName string
	Email    string
	Phone    string
	// ExpectedArrival is the invite's expected arrival time.
	ExpectedArrival time.Time
	SignedInAt      time.Time
	SignedOutAt     time.Time
	// ApprovalStatus is the entry's approval-status.status ("approved",
	// "pending", "denied", …), "" when absent.
	ApprovalStatus string

	// What the guest is told about the visit, "" when the platform sent
	// nothing: the host (an entry's host, an invite's inviter), and the
	// location's name, address and locale (a BCP 47 tag such as "de" or
	// "fr-CA"). They never change access, so they are not part of a
	// delivery's dedupe key.
	HostName        string
	HostEmail       string
	LocationName    string
	LocationAddress string
	Locale          string

	// Config is the install's configuration as Envoy sent it with the
	// event (meta.config), nil when it sent none that configures access.
	Config *InstallConfig `json:"-"`
}

// SourceID returns the key of the visit the event belongs to: "invite:<id>"
// when the event concerns an invite (or an entry that came from one), else
// "entry:<id>".
func (e Event) SourceID() string {
	if e.InviteID != "" {
		return "invite:" + e.InviteID
	}
	return "entry:" + e.EntryID
}
