package connector

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests must not depend on the host's zoneinfo

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/mappings"
)

// received is one event as latchkey received it.
type received struct {
	ev Event
	at time.Time
}

// utc is a shorthand for a UTC time on 2026-05-04 (a Monday).
func utc(hour, minute int) time.Time {
	return time.Date(2026, 5, 4, hour, minute, 0, 0, time.UTC)
}

func newFacts(evs ...received) Facts {
	var f Facts
	for _, r := range evs {
		f.Apply(r.ev, r.at)
	}
	return f
}

// newMapping returns a valid mapping for flow 359435 (240 minutes of access,
// 30 minutes in advance, revoked on sign-out), changed by opts.
func newMapping(opts ...func(*mappings.Mapping)) *mappings.Mapping {
	m := &mappings.Mapping{
		ID: 1, LocationID: "177837", FlowID: "359435", GroupIDs: []int64{1},
		DurationMinutes: 240, AdvanceMinutes: 30, RevokeOnSignOut: true,
		Delivery: mappings.DeliveryLatchkey,
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func mustLoad(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load location %s: %v", name, err)
	}
	return loc
}

func invite(kind EventKind, arrival time.Time) Event {
	return Event{Kind: kind, InviteID: "43116507", FlowID: "359435", FullName: "Jane Visitor",
		Email: "visitor@example.com", ExpectedArrival: arrival}
}

func signIn(in time.Time, inviteID string) Event {
	return Event{Kind: EventSignIn, EntryID: "140873360", InviteID: inviteID, FlowID: "359435",
		FullName: "Jane Visitor", Email: "visitor@example.com", SignedInAt: in, ApprovalStatus: "approved"}
}

func signOut(in, out time.Time, inviteID string) Event {
	ev := signIn(in, inviteID)
	ev.Kind, ev.SignedOutAt = EventSignOut, out
	return ev
}

func entryEvent(kind EventKind, in time.Time, approval string) Event {
	ev := signIn(in, "")
	ev.Kind, ev.ApprovalStatus = kind, approval
	return ev
}

func TestStatus(t *testing.T) {
	tests := []struct {
		status         Status
		final, wantsIt bool
	}{
		{StatusHeld, false, false},
		{StatusScheduled, false, true},
		{StatusActive, false, true},
		{StatusRevoked, true, false},
		{StatusExpired, true, false},
		{StatusIgnored, true, false},
		{StatusFailed, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			if got := tt.status.Final(); got != tt.final {
				t.Errorf("Final() got %v, want %v", got, tt.final)
			}
			if got := tt.status.WantsLinks(); got != tt.wantsIt {
				t.Errorf("WantsLinks() got %v, want %v", got, tt.wantsIt)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	dhaka := mustLoad(t, "Asia/Dhaka")
	arrival := utc(10, 0)
	early := utc(8, 0) // invite received well before the window

	tests := []struct {
		name   string
		events []received
		m      *mappings.Mapping
		loc    *time.Location
		now    time.Time
		want   Decision
	}{
		{
			name:   "no mapping",
			events: []received{{signIn(utc(9, 0), ""), utc(9, 0)}},
			m:      nil,
			now:    utc(9, 5),
			want:   Decision{Status: StatusIgnored, Reason: "no mapping exists for flow 359435 at this location"},
		},
		{
			name:   "invite with advance access, before the window",
			events: []received{{invite(EventInviteCreated, arrival), early}},
			m:      newMapping(),
			now:    utc(9, 0),
			want: Decision{Status: StatusScheduled, ValidFrom: utc(9, 30), ValidUntil: utc(14, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
		{
			name:   "invite with advance access, inside the window",
			events: []received{{invite(EventInviteCreated, arrival), early}},
			m:      newMapping(),
			now:    utc(9, 45),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 30), ValidUntil: utc(14, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
		{
			name:   "invite without advance, after the window",
			events: []received{{invite(EventInviteCreated, arrival), early}},
			m:      newMapping(func(m *mappings.Mapping) { m.AdvanceMinutes = 0 }),
			now:    utc(14, 0),
			want: Decision{Status: StatusExpired, ValidFrom: utc(10, 0), ValidUntil: utc(14, 0),
				Reason: "the access window has ended"},
		},
		{
			name:   "invite received inside the advance period starts when it was received",
			events: []received{{invite(EventInviteCreated, arrival), utc(9, 50)}},
			m:      newMapping(),
			now:    utc(12, 0), // deciding again later keeps the same window
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 50), ValidUntil: utc(14, 0),
				Reason: "invited, access from when the invite was received until 4 hours after the expected arrival"},
		},
		{
			name:   "invite received after its window is expired with an empty window",
			events: []received{{invite(EventInviteCreated, arrival), utc(15, 0)}},
			m:      newMapping(),
			now:    utc(15, 0),
			want: Decision{Status: StatusExpired, ValidFrom: utc(15, 0), ValidUntil: utc(15, 0),
				Reason: "the access window ended before it started"},
		},
		{
			name:   "invite without arrival and no sign-in",
			events: []received{{invite(EventInviteCreated, time.Time{}), early}},
			m:      newMapping(),
			now:    utc(9, 0),
			want:   Decision{Status: StatusIgnored, Reason: "no expected arrival or sign-in time to base access on"},
		},
		{
			name:   "walk-in",
			events: []received{{signIn(utc(9, 0), ""), utc(9, 0)}},
			m:      newMapping(),
			now:    utc(9, 1),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "walk-in, access for 4 hours from sign-in"},
		},
		{
			name:   "walk-in after the window",
			events: []received{{signIn(utc(9, 0), ""), utc(9, 0)}},
			m:      newMapping(),
			now:    utc(13, 0),
			want: Decision{Status: StatusExpired, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "the access window has ended"},
		},
		{
			name: "late arrival extends the end",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{signIn(utc(12, 0), "43116507"), utc(12, 0)},
			},
			m:   newMapping(),
			now: utc(14, 30),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 30), ValidUntil: utc(16, 0),
				Reason: "invited visitor signed in late, access from 30 minutes before the expected arrival until 4 hours after sign-in"},
		},
		{
			name: "on-time arrival keeps the invite's end",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{signIn(utc(9, 55), "43116507"), utc(9, 55)},
			},
			m:   newMapping(),
			now: utc(10, 0),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 30), ValidUntil: utc(14, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
		{
			name: "early sign-in starts access at the sign-in",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{signIn(utc(8, 30), "43116507"), utc(8, 30)},
			},
			m:   newMapping(),
			now: utc(8, 31),
			want: Decision{Status: StatusActive, ValidFrom: utc(8, 30), ValidUntil: utc(14, 0),
				Reason: "invited and signed in early, access from sign-in until 4 hours after the expected arrival"},
		},
		{
			name: "early sign-out revokes",
			events: []received{
				{signIn(utc(9, 0), ""), utc(9, 0)},
				{signOut(utc(9, 0), utc(10, 0), ""), utc(10, 0)},
			},
			m:   newMapping(),
			now: utc(10, 0),
			want: Decision{Status: StatusRevoked, ValidFrom: utc(9, 0), ValidUntil: utc(10, 0),
				Reason: "signed out, access revoked"},
		},
		{
			name: "sign-out within the grace period keeps access",
			events: []received{
				{signIn(utc(9, 0), ""), utc(9, 0)},
				{signOut(utc(9, 0), utc(10, 0), ""), utc(10, 0)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.GraceMinutes = 15 }),
			now: utc(10, 14),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(10, 15),
				Reason: "signed out, access ends after a grace period of 15 minutes"},
		},
		{
			name: "sign-out after the grace period revokes",
			events: []received{
				{signIn(utc(9, 0), ""), utc(9, 0)},
				{signOut(utc(9, 0), utc(10, 0), ""), utc(10, 0)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.GraceMinutes = 15 }),
			now: utc(10, 15),
			want: Decision{Status: StatusRevoked, ValidFrom: utc(9, 0), ValidUntil: utc(10, 15),
				Reason: "signed out, access revoked"},
		},
		{
			name: "grace never extends the window",
			events: []received{
				{signIn(utc(9, 0), ""), utc(9, 0)},
				{signOut(utc(9, 0), utc(12, 50), ""), utc(12, 50)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.GraceMinutes = 30 }),
			now: utc(12, 55),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "walk-in, access for 4 hours from sign-in"},
		},
		{
			name: "sign-out without revoke changes nothing",
			events: []received{
				{signIn(utc(9, 0), ""), utc(9, 0)},
				{signOut(utc(9, 0), utc(10, 0), ""), utc(10, 0)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.RevokeOnSignOut = false }),
			now: utc(10, 30),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "walk-in, access for 4 hours from sign-in"},
		},
		{
			name: "sign-out before the invite's window starts revokes with an empty window",
			events: []received{
				{invite(EventInviteCreated, arrival), utc(7, 0)},
				{signOut(utc(7, 30), utc(7, 40), "43116507"), utc(7, 40)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.AdvanceMinutes = 0 }),
			now: utc(7, 45),
			want: Decision{Status: StatusRevoked, ValidFrom: utc(7, 30), ValidUntil: utc(7, 40),
				Reason: "signed out, access revoked"},
		},
		{
			name:   "sign-out processed before its sign-in",
			events: []received{{signOut(utc(9, 0), utc(10, 0), ""), utc(10, 0)}},
			m:      newMapping(),
			now:    utc(10, 0),
			want: Decision{Status: StatusRevoked, ValidFrom: utc(9, 0), ValidUntil: utc(10, 0),
				Reason: "signed out, access revoked"},
		},
		{
			// A sign-out is final for the visit: a later sign-in (a
			// replay, or a payload with a wrong time) cannot reopen it.
			name: "sign-in again after a sign-out",
			events: []received{
				{signOut(utc(9, 0), utc(9, 30), ""), utc(9, 30)},
				{signIn(utc(11, 0), ""), utc(11, 0)},
			},
			m:   newMapping(),
			now: utc(11, 5),
			want: Decision{Status: StatusRevoked, ValidFrom: utc(11, 0), ValidUntil: utc(11, 0),
				Reason: "signed out, access revoked"},
		},
		{
			name: "end of day in the location's zone",
			events: []received{
				{signIn(time.Date(2026, 5, 4, 9, 0, 0, 0, dhaka), ""), utc(3, 0)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true; m.DurationMinutes = 0 }),
			loc: dhaka,
			now: utc(4, 0),
			want: Decision{Status: StatusActive, ValidFrom: utc(3, 0),
				ValidUntil: time.Date(2026, 5, 4, 18, 0, 0, 0, time.UTC), // 00:00 +06
				Reason:     "walk-in, access from sign-in to the end of the day"},
		},
		{
			name: "end of day without a zone is UTC midnight",
			events: []received{
				{signIn(utc(9, 0), ""), utc(9, 0)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			now: utc(10, 0),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0),
				ValidUntil: time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC),
				Reason:     "walk-in, access from sign-in to the end of the day"},
		},
		{
			name: "end of day on the day DST starts (23-hour day)",
			events: []received{
				// 2026-03-08 09:00 EDT; clocks went forward at 02:00.
				{signIn(time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC), ""), time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			loc: ny,
			now: time.Date(2026, 3, 8, 14, 0, 0, 0, time.UTC),
			want: Decision{Status: StatusActive,
				ValidFrom:  time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC),
				ValidUntil: time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC), // 00:00 EDT
				Reason:     "walk-in, access from sign-in to the end of the day"},
		},
		{
			name: "end of day the evening before DST starts",
			events: []received{
				// 2026-03-07 20:00 EST; midnight is still EST.
				{signIn(time.Date(2026, 3, 8, 1, 0, 0, 0, time.UTC), ""), time.Date(2026, 3, 8, 1, 0, 0, 0, time.UTC)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			loc: ny,
			now: time.Date(2026, 3, 8, 1, 0, 0, 0, time.UTC),
			want: Decision{Status: StatusActive,
				ValidFrom:  time.Date(2026, 3, 8, 1, 0, 0, 0, time.UTC),
				ValidUntil: time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC), // 00:00 EST
				Reason:     "walk-in, access from sign-in to the end of the day"},
		},
		{
			name: "end of day on the day DST ends (25-hour day), invited",
			events: []received{
				// Arrival 2026-11-01 09:00 EST, 30 minutes advance.
				{invite(EventInviteCreated, time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC)), time.Date(2026, 10, 30, 12, 0, 0, 0, time.UTC)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			loc: ny,
			now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
			want: Decision{Status: StatusScheduled,
				ValidFrom:  time.Date(2026, 11, 1, 13, 30, 0, 0, time.UTC),
				ValidUntil: time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC), // 00:00 EST
				Reason:     "invited, access from 30 minutes before the expected arrival to the end of the day"},
		},
		{
			name: "end of day the evening before DST ends",
			events: []received{
				// 2026-10-31 20:00 EDT; midnight is still EDT.
				{signIn(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), ""), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			loc: ny,
			now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			want: Decision{Status: StatusActive,
				ValidFrom:  time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
				ValidUntil: time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), // 00:00 EDT
				Reason:     "walk-in, access from sign-in to the end of the day"},
		},
		{
			name: "end of day: advance crossing midnight still ends on the arrival day",
			events: []received{
				{invite(EventInviteCreated, time.Date(2026, 5, 5, 0, 15, 0, 0, time.UTC)), early},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			now: utc(23, 50),
			want: Decision{Status: StatusActive, ValidFrom: utc(23, 45),
				ValidUntil: time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC),
				Reason:     "invited, access from 30 minutes before the expected arrival to the end of the day"},
		},
		{
			name: "end of day: late sign-in on a later day extends to that day's end",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{signIn(time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC), "43116507"), time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC)},
			},
			m:   newMapping(func(m *mappings.Mapping) { m.UntilEndOfDay = true }),
			now: time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 30),
				ValidUntil: time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC),
				Reason:     "invited visitor signed in late, access from 30 minutes before the expected arrival to the end of the sign-in day"},
		},
		{
			name:   "only invited: walk-in ignored",
			events: []received{{signIn(utc(9, 0), ""), utc(9, 0)}},
			m:      newMapping(func(m *mappings.Mapping) { m.OnlyInvited = true }),
			now:    utc(9, 0),
			want:   Decision{Status: StatusIgnored, Reason: "walk-in, but this flow is for invited visitors only"},
		},
		{
			name:   "only invited: entry from an invite is let in",
			events: []received{{signIn(utc(9, 0), "43116507"), utc(9, 0)}},
			m:      newMapping(func(m *mappings.Mapping) { m.OnlyInvited = true }),
			now:    utc(9, 0),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "signed in, access for 4 hours from sign-in"},
		},
		{
			name:   "only invited: invite is let in",
			events: []received{{invite(EventInviteCreated, arrival), early}},
			m:      newMapping(func(m *mappings.Mapping) { m.OnlyInvited = true }),
			now:    utc(9, 0),
			want: Decision{Status: StatusScheduled, ValidFrom: utc(9, 30), ValidUntil: utc(14, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
		{
			name:   "block-list review holds",
			events: []received{{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)}},
			m:      newMapping(),
			now:    utc(9, 1),
			want:   Decision{Status: StatusHeld, Reason: "held for block-list review until the visitor is approved"},
		},
		{
			name: "block-list review then approval",
			events: []received{
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)},
				{entryEvent(EventSignIn, utc(9, 0), "approved"), utc(9, 10)},
			},
			m:   newMapping(),
			now: utc(9, 11),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "walk-in, access for 4 hours from sign-in"},
		},
		{
			name: "approval processed before the review",
			events: []received{
				{entryEvent(EventSignIn, utc(9, 0), "approved"), utc(9, 10)},
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)},
			},
			m:   newMapping(),
			now: utc(9, 11),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 0), ValidUntil: utc(13, 0),
				Reason: "walk-in, access for 4 hours from sign-in"},
		},
		{
			name: "a pending sign-in is no approval",
			events: []received{
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)},
				{entryEvent(EventSignIn, utc(9, 0), "pending"), utc(9, 1)},
			},
			m:    newMapping(),
			now:  utc(9, 2),
			want: Decision{Status: StatusHeld, Reason: "held for block-list review until the visitor is approved"},
		},
		{
			name: "block-list deny",
			events: []received{
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)},
				{entryEvent(EventBlocklistDeny, utc(9, 0), "denied"), utc(9, 5)},
			},
			m:    newMapping(),
			now:  utc(9, 6),
			want: Decision{Status: StatusRevoked, Reason: "denied by the block list"},
		},
		{
			name: "deny wins over an approval",
			events: []received{
				{entryEvent(EventBlocklistDeny, utc(9, 0), "denied"), utc(9, 5)},
				{entryEvent(EventSignIn, utc(9, 0), "approved"), utc(9, 6)},
			},
			m:    newMapping(),
			now:  utc(9, 6),
			want: Decision{Status: StatusRevoked, Reason: "denied by the block list"},
		},
		{
			name:   "denied approval status on a sign-in",
			events: []received{{entryEvent(EventSignIn, utc(9, 0), "denied"), utc(9, 0)}},
			m:      newMapping(),
			now:    utc(9, 1),
			want:   Decision{Status: StatusRevoked, Reason: "denied by the block list"},
		},
		{
			name: "invite updated: arrival moved later",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{invite(EventInviteUpdated, utc(15, 0)), early.Add(time.Minute)},
			},
			m:   newMapping(),
			now: utc(10, 0),
			want: Decision{Status: StatusScheduled, ValidFrom: utc(14, 30), ValidUntil: utc(19, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
		{
			name: "invite updated: update processed before the create",
			events: []received{
				{invite(EventInviteUpdated, utc(15, 0)), early.Add(time.Minute)},
				{invite(EventInviteCreated, arrival), early},
			},
			m:   newMapping(),
			now: utc(10, 0),
			want: Decision{Status: StatusScheduled, ValidFrom: utc(14, 30), ValidUntil: utc(19, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
		{
			name: "invite removed",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{invite(EventInviteRemoved, arrival), utc(9, 40)},
			},
			m:    newMapping(),
			now:  utc(9, 45),
			want: Decision{Status: StatusRevoked, Reason: "the invite was removed"},
		},
		{
			name: "duplicate events",
			events: []received{
				{invite(EventInviteCreated, arrival), early},
				{invite(EventInviteCreated, arrival), early},
				{signIn(utc(9, 55), "43116507"), utc(9, 55)},
				{signIn(utc(9, 55), "43116507"), utc(9, 56)},
			},
			m:   newMapping(),
			now: utc(10, 0),
			want: Decision{Status: StatusActive, ValidFrom: utc(9, 30), ValidUntil: utc(14, 0),
				Reason: "invited, access from 30 minutes before the expected arrival until 4 hours after the expected arrival"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFacts(tt.events...)
			got := Decide(f, tt.m, tt.loc, tt.now)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", d)
			}
			// Deciding again later, or with the same facts rebuilt, keeps
			// the window.
			if again := Decide(newFacts(tt.events...), tt.m, tt.loc, tt.now); !again.ValidFrom.Equal(got.ValidFrom) || !again.ValidUntil.Equal(got.ValidUntil) {
				t.Errorf("second Decide() got window [%v, %v], want [%v, %v]", again.ValidFrom, again.ValidUntil, got.ValidFrom, got.ValidUntil)
			}
		})
	}
}

func TestApplySignOutBeforeSignIn(t *testing.T) {
	in, out := utc(9, 0), utc(10, 0)
	want := newFacts(received{signIn(in, ""), in}, received{signOut(in, out, ""), out})
	got := newFacts(received{signOut(in, out, ""), out}, received{signIn(in, ""), in})
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("facts mismatch (-sign-in first +sign-out first):\n%s", d)
	}
	if !got.SignedInAt.Equal(in) || !got.SignedOutAt.Equal(out) {
		t.Errorf("got signed in %v, out %v, want %v, %v", got.SignedInAt, got.SignedOutAt, in, out)
	}
}

func TestApplyDuplicates(t *testing.T) {
	evs := []received{
		{invite(EventInviteCreated, utc(10, 0)), utc(8, 0)},
		{signIn(utc(10, 5), "43116507"), utc(10, 5)},
		{entryEvent(EventBlocklistReview, utc(10, 5), "pending"), utc(10, 5)},
	}
	once := newFacts(evs...)
	twice := newFacts(append(evs, evs...)...)
	if d := cmp.Diff(once, twice); d != "" {
		t.Errorf("facts mismatch (-once +twice):\n%s", d)
	}
}

func TestApplyUnknownKind(t *testing.T) {
	got := newFacts(received{Event{Kind: "employee_entry_sign_in", EntryID: "1", SignedInAt: utc(9, 0)}, utc(9, 0)})
	if d := cmp.Diff(Facts{}, got); d != "" {
		t.Errorf("unknown event changed facts (-want +got):\n%s", d)
	}
}

func TestApplyMergesProfile(t *testing.T) {
	created := invite(EventInviteCreated, utc(10, 0))
	updated := invite(EventInviteUpdated, utc(10, 0))
	updated.Email = "new@example.com"
	updated.FullName = ""
	got := newFacts(received{updated, utc(8, 30)}, received{created, utc(8, 0)})
	if got.Email != "new@example.com" {
		t.Errorf("got email %q, want %q", got.Email, "new@example.com")
	}
	if got.Name != "Jane Visitor" {
		t.Errorf("got name %q, want %q", got.Name, "Jane Visitor")
	}
	if !got.InviteSeenAt.Equal(utc(8, 0)) {
		t.Errorf("got invite seen at %v, want %v", got.InviteSeenAt, utc(8, 0))
	}
}

// TestApplyOrderIndependent applies each scenario's events in every order and
// checks that facts and decision never change.
func TestApplyOrderIndependent(t *testing.T) {
	m := newMapping(func(m *mappings.Mapping) { m.GraceMinutes = 10 })
	tests := []struct {
		name   string
		events []received
		now    time.Time
	}{
		{
			name: "invite, update, upcoming, late sign-in, sign-out",
			events: []received{
				{invite(EventInviteCreated, utc(10, 0)), utc(7, 0)},
				{invite(EventInviteUpdated, utc(11, 0)), utc(7, 30)},
				{invite(EventUpcomingVisit, utc(11, 0)), utc(7, 45)},
				{signIn(utc(12, 0), "43116507"), utc(12, 0)},
				{signOut(utc(12, 0), utc(15, 0), "43116507"), utc(15, 0)},
				{signIn(utc(12, 0), "43116507"), utc(12, 1)}, // redelivered
			},
			now: utc(15, 5),
		},
		{
			name: "review, approval, sign-out",
			events: []received{
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)},
				{entryEvent(EventSignIn, utc(9, 0), "approved"), utc(9, 20)},
				{signOut(utc(9, 0), utc(11, 0), ""), utc(11, 0)},
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 21)},
				{entryEvent(EventSignIn, utc(9, 0), "approved"), utc(9, 22)},
			},
			now: utc(10, 0),
		},
		{
			name: "invite removed amid updates",
			events: []received{
				{invite(EventInviteCreated, utc(10, 0)), utc(7, 0)},
				{invite(EventInviteUpdated, utc(12, 0)), utc(8, 0)},
				{invite(EventInviteRemoved, utc(12, 0)), utc(9, 0)},
				{invite(EventInviteUpdated, utc(13, 0)), utc(8, 0)}, // same receive time
			},
			now: utc(9, 30),
		},
		{
			name: "deny among approvals",
			events: []received{
				{entryEvent(EventBlocklistReview, utc(9, 0), "pending"), utc(9, 0)},
				{entryEvent(EventBlocklistDeny, utc(9, 0), "denied"), utc(9, 1)},
				{entryEvent(EventSignIn, utc(9, 0), "approved"), utc(9, 2)},
				{signOut(utc(9, 0), utc(9, 30), ""), utc(9, 30)},
			},
			now: utc(9, 10),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFacts := newFacts(tt.events...)
			want := Decide(wantFacts, m, time.UTC, tt.now)
			n := 0
			permute(tt.events, func(order []received) {
				n++
				got := newFacts(order...)
				if d := cmp.Diff(wantFacts, got); d != "" {
					t.Fatalf("facts depend on order %v (-want +got):\n%s", kinds(order), d)
				}
				if d := cmp.Diff(want, Decide(got, m, time.UTC, tt.now)); d != "" {
					t.Fatalf("decision depends on order %v (-want +got):\n%s", kinds(order), d)
				}
			})
			if wantN := factorial(len(tt.events)); n != wantN {
				t.Errorf("got %d orders, want %d", n, wantN)
			}
		})
	}
}

// permute calls fn with every permutation of evs (Heap's algorithm).
func permute(evs []received, fn func([]received)) {
	a := append([]received(nil), evs...)
	var gen func(k int)
	gen = func(k int) {
		if k <= 1 {
			fn(a)
			return
		}
		for i := 0; i < k; i++ {
			gen(k - 1)
			if k%2 == 0 {
				a[i], a[k-1] = a[k-1], a[i]
			} else {
				a[0], a[k-1] = a[k-1], a[0]
			}
		}
	}
	gen(len(a))
}

func factorial(n int) int {
	if n <= 1 {
		return 1
	}
	return n * factorial(n-1)
}

func kinds(evs []received) []string {
	out := make([]string, len(evs))
	for i, r := range evs {
		out[i] = fmt.Sprintf("%s@%s", r.ev.Kind, r.at.Format("15:04"))
	}
	return out
}

// FuzzDecide builds facts from arbitrary input and checks that Decide never
// panics, never returns a negative window, and never wants links outside
// the window.
func FuzzDecide(f *testing.F) {
	base := utc(9, 0).Unix()
	f.Add(uint16(0b11), base+3600, base-86400, base, base+7200, base+100, int32(240), int32(30), int32(0), uint8(0), base+60)
	f.Add(uint16(0), int64(0), int64(0), base, int64(0), int64(0), int32(60), int32(0), int32(15), uint8(1), base)
	f.Add(uint16(0xffff), base, base, base, base, base, int32(0), int32(0), int32(0), uint8(2), base)
	f.Add(uint16(0b1000000), time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC).Unix(), int64(0), int64(0), int64(0), int64(0), int32(0), int32(600), int32(0), uint8(1), base)
	f.Add(uint16(0b1), int64(-1<<62), int64(1<<62), int64(-1<<40), int64(1<<40), int64(0), int32(-5), int32(-5), int32(-5), uint8(7), int64(1<<62))

	zones := []string{"UTC", "America/New_York", "Asia/Dhaka", "Australia/Lord_Howe", "America/Santiago", "Pacific/Kiritimati"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		locs[i] = mustLoad(f, z)
	}
	f.Fuzz(func(t *testing.T, flags uint16, arrival, seen, in, out, reviewKey int64, duration, advance, grace int32, zone uint8, now int64) {
		unix := func(s int64) time.Time {
			if s == 0 {
				return time.Time{}
			}
			return time.Unix(s, 0).UTC()
		}
		facts := Facts{
			Invited:         flags&1 != 0,
			ExpectedArrival: unix(arrival),
			InviteSeenAt:    unix(seen),
			InviteRemoved:   flags&2 != 0,
			SignedInAt:      unix(in),
			SignedOutAt:     unix(out),
			ReviewPending:   flags&4 != 0,
			Denied:          flags&8 != 0,
			FlowID:          "359435",
		}
		facts.Stamps.Review = unix(reviewKey)
		var m *mappings.Mapping
		if flags&16 == 0 {
			m = newMapping(func(m *mappings.Mapping) {
				m.DurationMinutes = int(duration)
				m.AdvanceMinutes = int(advance)
				m.GraceMinutes = int(grace)
				m.OnlyInvited = flags&32 != 0
				m.UntilEndOfDay = flags&64 != 0
				m.RevokeOnSignOut = flags&128 != 0
			})
		}
		loc := locs[int(zone)%len(locs)]
		nowT := unix(now)
		d := Decide(facts, m, loc, nowT)

		if !d.ValidFrom.IsZero() || !d.ValidUntil.IsZero() {
			if d.ValidUntil.Before(d.ValidFrom) {
				t.Fatalf("got window [%v, %v], want ValidUntil not before ValidFrom", d.ValidFrom, d.ValidUntil)
			}
		}
		switch d.Status {
		case StatusHeld, StatusScheduled, StatusActive, StatusRevoked, StatusExpired, StatusIgnored:
		default:
			t.Fatalf("got status %q, want a status Decide returns", d.Status)
		}
		if d.Reason == "" {
			t.Fatalf("got an empty reason for status %q", d.Status)
		}
		if d.Status.WantsLinks() && !(d.ValidUntil.After(d.ValidFrom) && d.ValidUntil.After(nowT)) {
			t.Fatalf("got %q with window [%v, %v] at %v, want a window still open", d.Status, d.ValidFrom, d.ValidUntil, nowT)
		}
		if d.Status == StatusActive && nowT.Before(d.ValidFrom) {
			t.Fatalf("got active before the window starts: now %v, from %v", nowT, d.ValidFrom)
		}
		if again := Decide(facts, m, loc, nowT); again != d {
			t.Fatalf("got %+v on a second call, want %+v", again, d)
		}
	})
}
