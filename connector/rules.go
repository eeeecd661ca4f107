package connector

import (
	"fmt"
	"time"

	"github.com/latchkey/latchkey/mappings"
)

// Facts is everything known about one visit, merged from its events by
// Apply. The visit's decision is recomputed from Facts alone, so Facts must
// not depend on the order events were processed in.
//
// Times are UTC; zero means unknown.
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
	// SignedInAt and SignedOutAt are the latest sign-in and sign-out times
	// carried by any event (a sign-out payload carries signed-in-at too).
	SignedInAt  time.Time
	SignedOutAt time.Time
	// ReviewPending is set while a block-list review has been seen and no
	// approving sign-in for the same or a later entry has.
	ReviewPending bool
	// Denied is set once the block list denied the visitor; it wins over
	// every other fact.
	Denied bool
	FlowID string
	Name   string
	Email  string
	Phone  string
	// Stamps records what decided each "latest wins" fact above.
	Stamps FactStamps
}

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
	// Review and Approval are the latest block-list review and the latest
	// approving sign-in, keyed by the entry's signed-in-at (the receive
	// time when the event has none). An approval of the same entry as a
	// review wins over it whichever arrives first.
	Reviewed bool
	Review   time.Time
	Approved bool
	Approval time.Time
	// FlowID, Name, Email and Phone are the receive times of the events
	// that set those fields.
	FlowID time.Time
	Name   time.Time
	Email  time.Time
	Phone  time.Time
}

// Apply merges ev, received by latchkey at receivedAt, into f. Applying the
// same events in any order gives the same Facts, and applying an event
// twice changes nothing. Events of unknown kinds are ignored. Apply is pure;
// it is not safe for concurrent use on the same Facts.
func (f *Facts) Apply(ev Event, receivedAt time.Time) {
	if !ev.Kind.Known() {
		return
	}
	at := receivedAt.UTC()

	if ev.Kind.IsInvite() || ev.InviteID != "" {
		f.Invited = true
	}
	if ev.Kind.IsInvite() {
		if !at.IsZero() && (f.InviteSeenAt.IsZero() || at.Before(f.InviteSeenAt)) {
			f.InviteSeenAt = at
		}
		if !ev.ExpectedArrival.IsZero() {
			rank := 1
			if ev.Kind == EventInviteCreated {
				rank = 0
			}
			if f.ExpectedArrival.IsZero() || rank > f.Stamps.ArrivalRank ||
				(rank == f.Stamps.ArrivalRank && (at.After(f.Stamps.Arrival) || (at.Equal(f.Stamps.Arrival) && ev.ExpectedArrival.After(f.ExpectedArrival)))) {
				f.ExpectedArrival, f.Stamps.Arrival, f.Stamps.ArrivalRank = ev.ExpectedArrival.UTC(), at, rank
			}
		}
	}
	if ev.Kind == EventInviteRemoved {
		f.InviteRemoved = true
	}

	f.SignedInAt = later(f.SignedInAt, ev.SignedInAt)
	f.SignedOutAt = later(f.SignedOutAt, ev.SignedOutAt)

	// Review and approval are ordered by the entry they concern rather than
	// by arrival, so a sign-in approving an entry beats that entry's review
	// even when the review is processed last.
	entryKey := ev.SignedInAt.UTC()
	if entryKey.IsZero() {
		entryKey = at
	}
	switch ev.Kind {
	case EventBlocklistDeny:
		f.Denied = true
	case EventBlocklistReview:
		f.Stamps.Reviewed = true
		f.Stamps.Review = later(f.Stamps.Review, entryKey)
	case EventSignIn:
		if ev.ApprovalStatus == "" || ev.ApprovalStatus == "approved" {
			f.Stamps.Approved = true
			f.Stamps.Approval = later(f.Stamps.Approval, entryKey)
		}
	}
	if !ev.Kind.IsInvite() && ev.ApprovalStatus == "denied" {
		f.Denied = true
	}
	f.ReviewPending = f.Stamps.Reviewed &&
		(!f.Stamps.Approved || f.Stamps.Approval.Before(f.Stamps.Review))

	mergeString(&f.FlowID, &f.Stamps.FlowID, ev.FlowID, at)
	mergeString(&f.Name, &f.Stamps.Name, ev.FullName, at)
	mergeString(&f.Email, &f.Stamps.Email, ev.Email, at)
	mergeString(&f.Phone, &f.Stamps.Phone, ev.Phone, at)
}

// later returns the later of a and b (in UTC), ignoring zero values.
func later(a, b time.Time) time.Time {
	b = b.UTC()
	if b.After(a) {
		return b
	}
	return a
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
//   - block-list review not yet approved: held, no window;
//   - invite with an expected arrival: [arrival − advance, arrival +
//     duration], the start clamped to InviteSeenAt and moved earlier to a
//     sign-in that happened before it; a late sign-in extends the end to
//     signed-in-at + duration;
//   - otherwise a sign-in: [signed-in-at, signed-in-at + duration];
//   - until_end_of_day replaces the duration by the local midnight after
//     the anchor (the arrival, or the start when clamped past it; the
//     sign-in for walk-ins and late sign-ins);
//   - a sign-out on a revoke_on_sign_out mapping ends the window at
//     signed-out-at + grace (it never extends it) and revokes once that
//     time has come;
//   - then scheduled before the window, active inside it, expired after
//     it; an empty window is expired (revoked when a sign-out emptied it).
func Decide(f Facts, m *mappings.Mapping, loc *time.Location, now time.Time) Decision {
	if loc == nil {
		loc = time.UTC
	}
	now = now.UTC()
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
	}

	from, until, reason, ok := window(f, m, loc)
	if !ok {
		return Decision{Status: StatusIgnored, Reason: "no expected arrival or sign-in time to base access on"}
	}

	signedOut := !f.SignedOutAt.IsZero() && !f.SignedOutAt.Before(f.SignedInAt)
	revokeAt := time.Time{}
	if signedOut && m.RevokeOnSignOut {
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
