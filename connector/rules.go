package connector

import (
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/mappings"
)

// Facts is everything known about one visit, merged from its events by
// Apply. The visit's decision is recomputed from Facts alone, so Facts must
// not depend on the order events were processed in.
//
// Times are UTC, whole seconds (see Precision); zero means unknown.
type Facts struct {
	// Invited is set once an invite event, or an entry that came from an
	// invite, was seen.
	Invited bool
	// ExpectedArrival is the arrival of the most recently received invite
	// event that carried one (see Stamps.Arrival).
	ExpectedArrival time.Time
	// InviteSeenAt is the earliest time latchkey received an invite event
	// for this visit. An invite's window never starts before it, which
	// clamps the start to "now" in a way that stays stable when the visit
	// is decided again later.
	InviteSeenAt  time.Time
	InviteRemoved bool
	// SignedInAt is the latest sign-in time carried by any event (a
	// sign-out payload carries signed-in-at too). SignedOutAt is the
	// earliest sign-out: the first end of access latchkey learned of is
	// never moved later. A sign-out whose time is missing or before its
	// sign-in counts at the time it was received (see SignOutTime).
	SignedInAt  time.Time
	SignedOutAt time.Time
	// ReviewPending is set while a block-list review has been seen and no
	// explicitly approved sign-in for the same or a later entry has.
	ReviewPending bool
	// PendingApproval is the approval status ("pending", "rejected", …) of
	// a sign-in that was not approved, while no explicitly approved
	// sign-in for the same or a later entry has been seen; "" otherwise.
	PendingApproval string
	// Denied is set once the block list denied the visitor; it wins over
	// every other fact.
	Denied bool
	FlowID string
	// Name, Email and Phone are the latest non-empty values seen.
	Name  string
	Email string
	Phone string
	// Stamps records what decided each "latest wins" fact above.
	Stamps FactStamps
}

// Precision is the precision of every time latchkey compares: the
// controller's (Kisi's validity times are whole seconds).
const Precision = time.Second

// FactStamps holds the version of each Facts field merged by "latest wins",
// which is what makes Apply independent of the order of events: a value
// replaces another only when its stamp is later (ties broken by value).
type FactStamps struct {
	// Arrival is the receive time of the event that set ExpectedArrival,
	// and ArrivalRank its kind: an update (or upcoming-visit reminder)
	// outranks a create, so a retried invite_created that arrives after
	// an invite_updated cannot bring the old arrival back.
	Arrival     time.Time
	ArrivalRank int
	// Review, Approval and Hold are the latest block-list review, the
	// latest explicitly approved sign-in and the latest sign-in with an
	// approval status other than approved, keyed by the entry's
	// signed-in-at (the receive time when the event has none). An
	// approval of the same entry as a review or a hold wins over it
	// whichever arrives first. HoldStatus is the status of that hold.
	Reviewed   bool
	Review     time.Time
	Approved   bool
	Approval   time.Time
	Held       bool
	Hold       time.Time
	HoldStatus string
	// FlowID, Name, Email and Phone are the receive times of the events
	// that set those fields.
	FlowID time.Time
	Name   time.Time
	Email  time.Time
	Phone  time.Time
}

// Approval statuses with a meaning of their own; any other non-empty
// status on a sign-in holds the visit.
const (
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
)

// Apply merges ev, received by latchkey at receivedAt, into f. Applying the
// same events in any order gives the same Facts, and applying an event
// twice changes nothing. Events of unknown kinds are ignored. Apply is pure;
// it is not safe for concurrent use on the same Facts.
func (f *Facts) Apply(ev Event, receivedAt time.Time) {
	if !ev.Kind.Known() {
		return
	}
	f.Merge(factsOf(ev, receivedAt))
}

// SignOutTime returns the time a sign-out event ends access: its
// signed-out-at, or receivedAt (substituted true) when that is missing,
// before the event's own signed-in-at, or later than receivedAt (a visitor
// who has left never keeps access for a time still to come, whatever zone
// or clock the sender's time was in). For other events it returns their
// signed-out-at, if any. Times are truncated to Precision.
func SignOutTime(ev Event, receivedAt time.Time) (at time.Time, substituted bool) {
	out := trunc(ev.SignedOutAt)
	if ev.Kind != EventSignOut {
		return out, false
	}
	if rec := trunc(receivedAt); out.IsZero() || out.Before(trunc(ev.SignedInAt)) || out.After(rec) {
		return rec, true
	}
	return out, false
}

// factsOf returns the facts a single known event establishes.
func factsOf(ev Event, receivedAt time.Time) Facts {
	at := trunc(receivedAt)
	var f Facts
	f.Invited = ev.Kind.IsInvite() || ev.InviteID != ""
	if ev.Kind.IsInvite() {
		f.InviteSeenAt = at
		if arr := trunc(ev.ExpectedArrival); !arr.IsZero() {
			f.ExpectedArrival, f.Stamps.Arrival, f.Stamps.ArrivalRank = arr, at, 1
			if ev.Kind == EventInviteCreated {
				f.Stamps.ArrivalRank = 0
			}
		}
	}
	f.InviteRemoved = ev.Kind == EventInviteRemoved
	f.SignedInAt = trunc(ev.SignedInAt)
	f.SignedOutAt, _ = SignOutTime(ev, at)

	// Review and approval are ordered by the entry they concern rather than
	// by arrival, so a sign-in approving an entry beats that entry's review
	// even when the review is processed last.
	entryKey := trunc(ev.SignedInAt)
	if entryKey.IsZero() {
		entryKey = at
	}
	status := strings.ToLower(strings.TrimSpace(ev.ApprovalStatus))
	switch ev.Kind {
	case EventBlocklistDeny:
		f.Denied = true
	case EventBlocklistReview:
		f.Stamps.Reviewed, f.Stamps.Review = true, entryKey
	case EventSignIn:
		switch status {
		case "", ApprovalDenied:
		case ApprovalApproved:
			f.Stamps.Approved, f.Stamps.Approval = true, entryKey
		default:
			f.Stamps.Held, f.Stamps.Hold, f.Stamps.HoldStatus = true, entryKey, status
		}
	}
	if !ev.Kind.IsInvite() && status == ApprovalDenied {
		f.Denied = true
	}
	set := func(v *string, stamp *time.Time, nv string) {
		if nv = strings.TrimSpace(nv); nv != "" {
			*v, *stamp = nv, at
		}
	}
	set(&f.FlowID, &f.Stamps.FlowID, ev.FlowID)
	set(&f.Name, &f.Stamps.Name, ev.FullName)
	set(&f.Email, &f.Stamps.Email, ev.Email)
	set(&f.Phone, &f.Stamps.Phone, ev.Phone)
	f.derive()
	return f
}

// Merge merges g, the facts of other events of the same visit, into f.
// Merging is commutative, associative and idempotent, which is what makes
// Apply independent of the order of events, and lets two visits found to
// be one (an entry and its invite) share the facts of both. Merge is pure.
func (f *Facts) Merge(g Facts) {
	f.Invited = f.Invited || g.Invited
	if !g.ExpectedArrival.IsZero() {
		a, b := f.Stamps, g.Stamps
		if f.ExpectedArrival.IsZero() || b.ArrivalRank > a.ArrivalRank ||
			(b.ArrivalRank == a.ArrivalRank && (b.Arrival.After(a.Arrival) || (b.Arrival.Equal(a.Arrival) && g.ExpectedArrival.After(f.ExpectedArrival)))) {
			f.ExpectedArrival, f.Stamps.Arrival, f.Stamps.ArrivalRank = g.ExpectedArrival, b.Arrival, b.ArrivalRank
		}
	}
	f.InviteSeenAt = earlier(f.InviteSeenAt, g.InviteSeenAt)
	f.InviteRemoved = f.InviteRemoved || g.InviteRemoved
	f.SignedInAt = later(f.SignedInAt, g.SignedInAt)
	f.SignedOutAt = earlier(f.SignedOutAt, g.SignedOutAt)
	f.Denied = f.Denied || g.Denied

	f.Stamps.Reviewed = f.Stamps.Reviewed || g.Stamps.Reviewed
	f.Stamps.Review = later(f.Stamps.Review, g.Stamps.Review)
	f.Stamps.Approved = f.Stamps.Approved || g.Stamps.Approved
	f.Stamps.Approval = later(f.Stamps.Approval, g.Stamps.Approval)
	if g.Stamps.Held {
		if !f.Stamps.Held || g.Stamps.Hold.After(f.Stamps.Hold) ||
			(g.Stamps.Hold.Equal(f.Stamps.Hold) && g.Stamps.HoldStatus > f.Stamps.HoldStatus) {
			f.Stamps.Hold, f.Stamps.HoldStatus = g.Stamps.Hold, g.Stamps.HoldStatus
		}
		f.Stamps.Held = true
	}

	mergeString(&f.FlowID, &f.Stamps.FlowID, g.FlowID, g.Stamps.FlowID)
	mergeString(&f.Name, &f.Stamps.Name, g.Name, g.Stamps.Name)
	mergeString(&f.Email, &f.Stamps.Email, g.Email, g.Stamps.Email)
	mergeString(&f.Phone, &f.Stamps.Phone, g.Phone, g.Stamps.Phone)
	f.derive()
}

// derive recomputes the facts that follow from the stamps.
func (f *Facts) derive() {
	approvedSince := func(t time.Time) bool { return f.Stamps.Approved && !f.Stamps.Approval.Before(t) }
	f.ReviewPending = f.Stamps.Reviewed && !approvedSince(f.Stamps.Review)
	f.PendingApproval = ""
	if f.Stamps.Held && !approvedSince(f.Stamps.Hold) {
		f.PendingApproval = f.Stamps.HoldStatus
	}
}

// trunc returns t in UTC at Precision.
func trunc(t time.Time) time.Time { return t.UTC().Truncate(Precision) }

// later returns the later of a and b (in UTC), ignoring zero values.
func later(a, b time.Time) time.Time {
	b = b.UTC()
	if b.After(a) {
		return b
	}
	return a
}

// earlier returns the earlier of a and b (in UTC), ignoring zero values.
func earlier(a, b time.Time) time.Time {
	b = b.UTC()
	if b.IsZero() || (!a.IsZero() && !b.Before(a)) {
		return a
	}
	return b
}

// mergeString sets *v to nv when nv is not empty and (stamp, value) is the
// largest seen so far.
func mergeString(v *string, stamp *time.Time, nv string, at time.Time) {
	if nv == "" {
		return
	}
	if *v == "" || at.After(*stamp) || (at.Equal(*stamp) && nv > *v) {
		*v, *stamp = nv, at
	}
}

// Decision is the desired state of a visit: its status, why, and its access
// window. Times are UTC and zero when there is no window; when set,
// ValidUntil is never before ValidFrom.
type Decision struct {
	Status     Status
	Reason     string
	ValidFrom  time.Time
	ValidUntil time.Time
}

// Decide computes the desired state of a visit from its facts, the mapping
// of its flow (nil when none exists), the location's time zone (nil means
// UTC) and the current time. It is pure: the same arguments always give the
// same Decision, and for a fixed Facts only the status depends on now.
//
// The rules, in order of precedence:
//   - no mapping: ignored;
//   - block-list denial, removed invite: revoked;
//   - walk-in on an only-invited flow: ignored;
//   - block-list review, or a sign-in whose approval status is neither
//     approved nor absent, not yet followed by an explicit approval of
//     that entry or a later one: held, no window;
//   - invite with an expected arrival: [arrival − advance, arrival +
//     duration], the start clamped to InviteSeenAt and moved earlier to a
//     sign-in that happened before it; a late sign-in extends the end to
//     signed-in-at + duration;
//   - otherwise a sign-in: [signed-in-at, signed-in-at + duration];
//   - until_end_of_day replaces the duration by the local midnight after
//     the anchor (the arrival, or the start when clamped past it; the
//     sign-in for walk-ins and late sign-ins);
//   - a sign-out on a revoke_on_sign_out mapping ends the window at
//     signed-out-at + grace (it never extends it; a later sign-in does
//     not reopen it) and revokes once that time has come;
//   - then scheduled before the window, active inside it, expired after
//     it; an empty window is expired (revoked when a sign-out emptied it).
func Decide(f Facts, m *mappings.Mapping, loc *time.Location, now time.Time) Decision {
	if loc == nil {
		loc = time.UTC
	}
	now = trunc(now)
	f = f.truncated()
	switch {
	case m == nil:
		if f.FlowID == "" {
			return Decision{Status: StatusIgnored, Reason: "no flow mapping exists for this visit's flow"}
		}
		return Decision{Status: StatusIgnored, Reason: fmt.Sprintf("no mapping exists for flow %s at this location", f.FlowID)}
	case f.Denied:
		return Decision{Status: StatusRevoked, Reason: "denied by the block list"}
	case f.InviteRemoved:
		return Decision{Status: StatusRevoked, Reason: "the invite was removed"}
	case m.OnlyInvited && !f.Invited:
		return Decision{Status: StatusIgnored, Reason: "walk-in, but this flow is for invited visitors only"}
	case f.ReviewPending:
		return Decision{Status: StatusHeld, Reason: "held for block-list review until the visitor is approved"}
	case f.PendingApproval != "":
		return Decision{Status: StatusHeld, Reason: fmt.Sprintf("held: the sign-in's approval status is %q; access waits for an approval", f.PendingApproval)}
	}

	from, until, reason, ok := window(f, m, loc)
	if !ok {
		return Decision{Status: StatusIgnored, Reason: "no expected arrival or sign-in time to base access on"}
	}

	// Any sign-out ends access: one before the sign-in empties the window.
	revokeAt := time.Time{}
	if !f.SignedOutAt.IsZero() && m.RevokeOnSignOut {
		revokeAt = f.SignedOutAt.UTC().Add(m.Grace())
		if revokeAt.Before(until) {
			until = revokeAt
			if m.GraceMinutes > 0 {
				reason = fmt.Sprintf("signed out, access ends after a grace period of %s", minutes(m.GraceMinutes))
			}
		}
	}

	d := Decision{ValidFrom: from, ValidUntil: until, Reason: reason}
	if !until.After(from) {
		d.ValidUntil = from
	}
	switch {
	case !revokeAt.IsZero() && (!revokeAt.After(now) || !until.After(from)):
		d.Status, d.Reason = StatusRevoked, "signed out, access revoked"
	case !until.After(from):
		d.Status, d.Reason = StatusExpired, "the access window ended before it started"
	case now.Before(from):
		d.Status = StatusScheduled
	case now.Before(until):
		d.Status = StatusActive
	default:
		d.Status, d.Reason = StatusExpired, "the access window has ended"
	}
	return d
}

// withoutStamps returns f without the stamps that order its merges: the
// facts themselves, which alone decide a visit.
func (f Facts) withoutStamps() Facts {
	f.Stamps = FactStamps{}
	return f
}

// truncated returns f with its times at Precision, for facts stored
// before every time was truncated when applied.
func (f Facts) truncated() Facts {
	f.ExpectedArrival, f.InviteSeenAt = trunc(f.ExpectedArrival), trunc(f.InviteSeenAt)
	f.SignedInAt, f.SignedOutAt = trunc(f.SignedInAt), trunc(f.SignedOutAt)
	return f
}

// window computes the access window before any sign-out, with a reason
// describing the rule that produced it. ok is false when there is nothing
// to base a window on.
func window(f Facts, m *mappings.Mapping, loc *time.Location) (from, until time.Time, reason string, ok bool) {
	endAfter := func(anchor time.Time) time.Time {
		if m.UntilEndOfDay {
			return nextMidnight(anchor, loc)
		}
		return anchor.Add(m.Duration())
	}
	signedIn := f.SignedInAt.UTC()

	if !f.Invited || f.ExpectedArrival.IsZero() {
		if signedIn.IsZero() {
			return time.Time{}, time.Time{}, "", false
		}
		what := "walk-in"
		if f.Invited {
			what = "signed in"
		}
		if m.UntilEndOfDay {
			return signedIn, endAfter(signedIn), what + ", access from sign-in to the end of the day", true
		}
		return signedIn, endAfter(signedIn), fmt.Sprintf("%s, access for %s from sign-in", what, minutes(m.DurationMinutes)), true
	}

	arrival := f.ExpectedArrival.UTC()
	from = arrival.Add(-m.Advance())
	startDesc := "from the expected arrival"
	if m.AdvanceMinutes > 0 {
		startDesc = fmt.Sprintf("from %s before the expected arrival", minutes(m.AdvanceMinutes))
	}
	if seen := f.InviteSeenAt.UTC(); !seen.IsZero() && from.Before(seen) {
		from = seen
		startDesc = "from when the invite was received"
	}
	until = arrival.Add(m.Duration())
	endDesc := fmt.Sprintf("until %s after the expected arrival", minutes(m.DurationMinutes))
	if m.UntilEndOfDay {
		// The day is the arrival's, or the start's when the invite came
		// in after the arrival; not the day the advance period starts on.
		anchor := arrival
		if from.After(anchor) {
			anchor = from
		}
		until = nextMidnight(anchor, loc)
		endDesc = "to the end of the day"
	}
	who := "invited"
	if !signedIn.IsZero() && signedIn.Before(from) {
		// The visitor is already on site: access starts at the sign-in.
		from = signedIn
		who, startDesc = "invited and signed in early", "from sign-in"
	}
	if !signedIn.IsZero() {
		if e := endAfter(signedIn); e.After(until) {
			until = e
			who = "invited visitor signed in late"
			endDesc = fmt.Sprintf("until %s after sign-in", minutes(m.DurationMinutes))
			if m.UntilEndOfDay {
				endDesc = "to the end of the sign-in day"
			}
		}
	}
	return from, until, fmt.Sprintf("%s, access %s %s", who, startDesc, endDesc), true
}

// nextMidnight returns the first local midnight in loc after t, in UTC. It
// is computed on the calendar, so days that are 23 or 25 hours long across
// a daylight-saving change end at the right instant.
func nextMidnight(t time.Time, loc *time.Location) time.Time {
	y, mo, d := t.In(loc).Date()
	return time.Date(y, mo, d+1, 0, 0, 0, 0, loc).UTC()
}

// minutes formats a number of minutes for a reason: "90 minutes", "4 hours".
func minutes(n int) string {
	switch {
	case n == 1:
		return "1 minute"
	case n == 60:
		return "1 hour"
	case n != 0 && n%60 == 0:
		return fmt.Sprintf("%d hours", n/60)
	}
	return fmt.Sprintf("%d minutes", n)
}
