package connector_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/webhooks"
)

// Property test settings. LATCHKEY_PROPERTY_SEED replaces the seed (it is
// printed when the test fails), LATCHKEY_PROPERTY_SEQUENCES the count.
const (
	propertySequences = 10000
	// propertyFullEvery: every this many sequences also go through the
	// whole service: ingest into the database, sync against the bundled
	// controller, and real unlocks after every step.
	propertyFullEvery = 100
	propertySeed      = 20260504
)

// TestPropertyRevocation generates random event sequences for one visit
// (each kind of event, with and without the relationships that join an
// entry and its invite, optional fields present, null, blank or absent,
// duplicated deliveries, shuffled order, sub-second and whole-second
// times, reviews, approvals, holds and denials), and after every step
// checks the visit against a small reference model of product.md's rules
// written here independently of Decide.
//
// To stay within about a minute under -race on two cores, every sequence
// runs cheaply: webhooks.Parse, then Facts.Apply/Merge and Decide, compared
// with the model (status and window). Every propertyFullEvery-th sequence
// also runs through the real Service.Ingest on the database, SyncVisit
// against the bundled lockctl, and real unlocks through the guest's pass
// and through each controller link's own secret (and, taking turns, a guest's or a member's own credential); there, after every step,
// an unlock succeeds exactly when the model says the visit is active, no
// unlock succeeds once an acknowledged event ended access (sign-out plus
// grace, removal, denial), and no visit is ever failed.
func TestPropertyRevocation(t *testing.T) {
	seed := uint64(propertySeed)
	if s := os.Getenv("LATCHKEY_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LATCHKEY_PROPERTY_SEED=%q: %v", s, err)
		}
		seed = v
	}
	n := propertySequences
	if s := os.Getenv("LATCHKEY_PROPERTY_SEQUENCES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("LATCHKEY_PROPERTY_SEQUENCES=%q: want a positive number", s)
		}
		n = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with LATCHKEY_PROPERTY_SEED=%d", seed)
		}
	})

	// The sequences that run through the whole service take turns over
	// the three credentials: links, a guest, a member.
	var fullEnvs []*env
	for _, cred := range []mappings.Credential{mappings.CredentialLink, mappings.CredentialGuest, mappings.CredentialMember} {
		e := newEnv(t, envOptions{
			mapping:    func(m *mappings.Mapping) { m.GraceMinutes, m.Credential = 5, cred },
			controller: func(o *lockctl.Options) { o.LinkRate.PerSecond, o.IPRate.PerSecond = -1, -1 },
		})
		// A member's login opens the group's doors only with app access.
		e.admin(http.MethodPatch, "/groups/1", map[string]any{"group": map[string]any{"login_enabled": true}}, http.StatusNoContent, nil)
		fullEnvs = append(fullEnvs, e)
	}
	began := time.Now()
	fulls := 0
	statuses := map[connector.Status]int{}
	for i := range n {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		seq := generate(rng, i)
		m := randomMapping(rng)
		full := fullEnvs[(i/propertyFullEvery)%len(fullEnvs)]
		if i%propertyFullEvery == 0 {
			m = full.mapping
		}
		if !runCheap(t, seq, &m, seed, i, statuses) {
			return
		}
		if i%propertyFullEvery == 0 {
			fulls++
			if !runFull(t, full, seq, seed, i) {
				return
			}
		}
	}
	t.Logf("%d sequences (%d through the whole service) in %v, seed %d; statuses checked: %v",
		n, fulls, time.Since(began).Round(time.Millisecond), seed, statuses)
	// The generator must reach every status the rules give, or the
	// property says little.
	for _, st := range []connector.Status{connector.StatusHeld, connector.StatusScheduled, connector.StatusActive,
		connector.StatusRevoked, connector.StatusExpired, connector.StatusIgnored} {
		if n >= 1000 && statuses[st] == 0 {
			t.Errorf("no step of %d sequences reached status %s", n, st)
		}
	}
}

// genEvent is one generated delivery, with what the model needs to know
// of it.
type genEvent struct {
	kind      connector.EventKind
	job       string
	entryID   string // entry events, or an invite's relationships.entry
	inviteID  string // invite events, or an entry's relationships.invite
	signedIn  time.Time
	signedOut time.Time
	outForm   string // "", "absent", "null": how a missing sign-out is sent
	arrival   time.Time
	approval  string // "" = no approval-status
	name      string
	// advance is how long the clock moves before the delivery.
	advance time.Duration
}

// links reports whether the event carries both the entry and the invite.
func (g genEvent) links() bool { return g.entryID != "" && g.inviteID != "" }

// group is "I" for events that only name the invite, "E" for those that
// only name the entry; linking events belong to both.
func (g genEvent) group() string {
	if g.kind.IsInvite() && g.entryID == "" {
		return "I"
	}
	return "E"
}

// sequence is one generated run of events for one visitor.
type sequence struct {
	entryID, inviteID string
	events            []genEvent
}

func (s sequence) String() string {
	var b strings.Builder
	for i, e := range s.events {
		fmt.Fprintf(&b, "\n  %d: +%v %s job=%s entry=%q invite=%q in=%v out=%v(%s) arrival=%v approval=%q",
			i, e.advance, e.kind, e.job, e.entryID, e.inviteID, e.signedIn, e.signedOut, e.outForm, e.arrival, e.approval)
	}
	return b.String()
}

func randomMapping(rng *rand.Rand) mappings.Mapping {
	m := mappings.Mapping{LocationID: locationID, FlowID: flowID, GroupIDs: []int64{groupID},
		DurationMinutes: []int{30, 60, 240, 480}[rng.IntN(4)],
		AdvanceMinutes:  []int{0, 15, 30, 60}[rng.IntN(4)],
		GraceMinutes:    []int{0, 5, 10}[rng.IntN(3)],
		RevokeOnSignOut: rng.IntN(10) != 0,
		OnlyInvited:     rng.IntN(5) == 0,
		UntilEndOfDay:   rng.IntN(5) == 0,
		Delivery:        mappings.DeliveryLatchkey}
	return m
}

// generate makes sequence i: a visitor's events, some duplicated, shuffled.
// Times are relative to the moment the sequence starts (offsets from 0);
// run functions add the clock's start.
func generate(rng *rand.Rand, i int) sequence {
	s := sequence{entryID: strconv.Itoa(1_000_000 + i), inviteID: strconv.Itoa(5_000_000 + i)}
	ms := func() time.Duration {
		if rng.IntN(2) == 0 {
			return time.Duration(rng.IntN(1000)) * time.Millisecond
		}
		return 0
	}
	signedIn := time.Duration(rng.IntN(120)-30)*time.Minute + ms()
	arrival := time.Duration(rng.IntN(180)-60) * time.Minute
	kinds := []connector.EventKind{connector.EventSignIn, connector.EventSignOut, connector.EventInviteCreated,
		connector.EventInviteUpdated, connector.EventInviteRemoved, connector.EventBlocklistReview, connector.EventBlocklistDeny}
	weights := []int{30, 25, 15, 10, 5, 10, 5}
	pick := func() connector.EventKind {
		r := rng.IntN(100)
		for k, w := range weights {
			if r < w {
				return kinds[k]
			}
			r -= w
		}
		return kinds[0]
	}
	count := 1 + rng.IntN(6)
	var evs []genEvent
	for j := range count {
		e := genEvent{kind: pick(), job: fmt.Sprintf("prop-%d-%d", i, j)}
		if rng.IntN(4) != 0 {
			e.name = "Jane Visitor"
		} else {
			e.name = []string{"", "  ", "absent", "null"}[rng.IntN(4)]
		}
		if e.kind.IsInvite() {
			e.inviteID = s.inviteID
			if rng.IntN(4) == 0 {
				e.entryID = s.entryID
			}
			e.arrival = time.Unix(0, 0).Add(arrival)
			if e.kind == connector.EventInviteUpdated {
				e.arrival = e.arrival.Add(time.Duration(rng.IntN(120)-60) * time.Minute)
			}
		} else {
			e.entryID = s.entryID
			if rng.IntN(3) == 0 {
				e.inviteID = s.inviteID
			}
			e.signedIn = time.Unix(0, 0).Add(signedIn)
			switch e.kind {
			case connector.EventSignIn:
				e.approval = []string{"", "approved", "approved", "pending", "rejected", "denied"}[rng.IntN(6)]
				if e.approval == "denied" && rng.IntN(3) != 0 {
					e.approval = "approved"
				}
			case connector.EventSignOut:
				switch rng.IntN(6) {
				case 0:
					e.outForm = "absent"
				case 1:
					e.outForm = "null"
				case 2:
					e.signedOut = e.signedIn.Add(-time.Duration(1+rng.IntN(30)) * time.Minute)
				default:
					e.signedOut = e.signedIn.Add(time.Duration(rng.IntN(180))*time.Minute + ms())
				}
				e.approval = []string{"", "approved"}[rng.IntN(2)]
			case connector.EventBlocklistReview:
				e.approval = "pending"
				if rng.IntN(3) == 0 {
					e.signedIn = time.Time{}
				}
			case connector.EventBlocklistDeny:
				e.approval = []string{"", "denied"}[rng.IntN(2)]
			}
		}
		evs = append(evs, e)
	}
	// Duplicated deliveries: the same body again, later.
	for range rng.IntN(3) {
		evs = append(evs, evs[rng.IntN(len(evs))])
	}
	rng.Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
	for k := range evs {
		evs[k].advance = time.Duration(1+rng.IntN(40*60))*time.Second + time.Duration(rng.IntN(1000))*time.Millisecond
		if rng.IntN(4) == 0 {
			evs[k].advance = time.Second + time.Duration(rng.IntN(1000))*time.Millisecond
		}
	}
	s.events = evs
	return s
}

// at places a generated offset (counted from the Unix epoch) at base.
func at(base, offset time.Time) time.Time {
	if offset.IsZero() {
		return time.Time{}
	}
	return base.Add(offset.Sub(time.Unix(0, 0)))
}

// placed returns e with its times placed at base.
func placed(e genEvent, base time.Time) genEvent {
	e.signedIn, e.signedOut, e.arrival = at(base, e.signedIn), at(base, e.signedOut), at(base, e.arrival)
	return e
}

// encode builds e's Envoy delivery, its times placed at base.
func encode(e genEvent, base time.Time, rng *rand.Rand) []byte {
	entryTime := func(t time.Time) string {
		if rng.IntN(2) == 0 {
			return t.UTC().Format(time.RFC3339Nano)
		}
		return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
	}
	attrs := map[string]any{"email": guestEmail}
	switch e.name {
	case "absent":
	case "null":
		attrs["full-name"] = nil
	default:
		attrs["full-name"] = e.name
	}
	rels := map[string]any{
		"location": map[string]any{"data": map[string]any{"type": "locations", "id": locationID}},
		"flow":     map[string]any{"data": map[string]any{"type": "flows", "id": flowID}},
	}
	payload := map[string]any{"attributes": attrs, "relationships": rels}
	if e.kind.IsInvite() {
		payload["id"], payload["type"] = e.inviteID, "invites"
		attrs["expected-arrival-time"] = at(base, e.arrival).UTC().Format(time.RFC3339)
		var entry any
		if e.entryID != "" {
			entry = map[string]any{"type": "entries", "id": e.entryID}
		}
		rels["entry"] = map[string]any{"data": entry}
	} else {
		payload["id"], payload["type"] = e.entryID, "entries"
		if e.inviteID != "" {
			rels["invite"] = map[string]any{"data": map[string]any{"type": "invites", "id": e.inviteID}}
		}
		if !e.signedIn.IsZero() {
			attrs["signed-in-at"] = entryTime(at(base, e.signedIn))
		}
		switch {
		case e.outForm == "null":
			attrs["signed-out-at"] = nil
		case !e.signedOut.IsZero():
			attrs["signed-out-at"] = entryTime(at(base, e.signedOut))
		}
		if e.approval != "" {
			attrs["approval-status"] = map[string]any{"status": e.approval}
		}
	}
	body, err := json.Marshal(map[string]any{
		"meta": map[string]any{"event": string(e.kind), "job": map[string]any{"id": e.job},
			"location": map[string]any{"id": locationID, "attributes": map[string]any{"timezone": "UTC"}}},
		"payload": payload,
	})
	if err != nil {
		panic(err)
	}
	return body
}

// received is one acknowledged (first, not duplicate) delivery as the
// model sees it: the generated event with its times placed, and when it
// was received (whole seconds).
type modelEvent struct {
	genEvent
	at time.Time
}

// model is the reference: the state product.md's rules give a visit that
// received evs, at now, under mapping m. It returns the status and, for
// statuses with a window, the window.
func model(evs []modelEvent, m *mappings.Mapping, now time.Time) (connector.Status, time.Time, time.Time) {
	sec := func(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
	now = sec(now)
	var (
		invited, removed, denied bool
		signedIn, inviteSeen     time.Time
		arrival, arrivalAt       time.Time
		arrivalUpdated           bool
		review, approval, hold   time.Time
		reviewed, approved, held bool
		signedOut                time.Time
		anySignOut               bool
	)
	for _, e := range evs {
		in := sec(e.signedIn)
		if e.kind.IsInvite() || e.inviteID != "" {
			invited = true
		}
		if e.kind == connector.EventInviteRemoved {
			removed = true
		}
		if !e.kind.IsInvite() && (e.kind == connector.EventBlocklistDeny || e.approval == "denied") {
			denied = true
		}
		if in.After(signedIn) {
			signedIn = in
		}
		if e.kind.IsInvite() {
			if inviteSeen.IsZero() || e.at.Before(inviteSeen) {
				inviteSeen = e.at
			}
			// An update outranks a create; within a rank the last received
			// wins (no two deliveries share a second here).
			upd := e.kind != connector.EventInviteCreated
			if arrival.IsZero() || (upd && !arrivalUpdated) || (upd == arrivalUpdated && e.at.After(arrivalAt)) {
				arrival, arrivalAt, arrivalUpdated = sec(e.arrival), e.at, upd
			}
		}
		key := in
		if key.IsZero() {
			key = e.at
		}
		latest := func(t *time.Time, flag *bool) {
			if !*flag || key.After(*t) {
				*t = key
			}
			*flag = true
		}
		switch {
		case e.kind == connector.EventBlocklistReview:
			latest(&review, &reviewed)
		case e.kind == connector.EventSignIn && e.approval == "approved":
			latest(&approval, &approved)
		case e.kind == connector.EventSignIn && e.approval != "" && e.approval != "denied":
			latest(&hold, &held)
		}
		if e.kind == connector.EventSignOut {
			out := sec(e.signedOut)
			if out.IsZero() || out.Before(in) || out.After(e.at) {
				out = e.at // missing, before the sign-in, or not yet come
			}
			if !anySignOut || out.Before(signedOut) {
				signedOut = out
			}
			anySignOut = true
		}
	}
	waiting := func(flag bool, t time.Time) bool { return flag && (!approved || approval.Before(t)) }
	switch {
	case denied, removed:
		return connector.StatusRevoked, time.Time{}, time.Time{}
	case m.OnlyInvited && !invited:
		return connector.StatusIgnored, time.Time{}, time.Time{}
	case waiting(reviewed, review), waiting(held, hold):
		return connector.StatusHeld, time.Time{}, time.Time{}
	}
	dur := time.Duration(m.DurationMinutes) * time.Minute
	end := func(anchor time.Time) time.Time {
		if m.UntilEndOfDay {
			return anchor.Truncate(24 * time.Hour).Add(24 * time.Hour) // UTC midnight
		}
		return anchor.Add(dur)
	}
	var from, until time.Time
	switch {
	case invited && !arrival.IsZero():
		from = arrival.Add(-time.Duration(m.AdvanceMinutes) * time.Minute)
		if from.Before(inviteSeen) {
			from = inviteSeen
		}
		anchor := arrival
		if from.After(anchor) {
			anchor = from
		}
		until = end(anchor)
		if !m.UntilEndOfDay {
			until = arrival.Add(dur)
		}
		if !signedIn.IsZero() {
			if signedIn.Before(from) {
				from = signedIn
			}
			if e := end(signedIn); e.After(until) {
				until = e
			}
		}
	case !signedIn.IsZero():
		from, until = signedIn, end(signedIn)
	default:
		return connector.StatusIgnored, time.Time{}, time.Time{}
	}
	revoke := time.Time{}
	if anySignOut && m.RevokeOnSignOut {
		revoke = signedOut.Add(time.Duration(m.GraceMinutes) * time.Minute)
		if revoke.Before(until) {
			until = revoke
		}
	}
	if !until.After(from) {
		until = from
	}
	switch {
	case !revoke.IsZero() && (!now.Before(revoke) || until.Equal(from)):
		return connector.StatusRevoked, from, until
	case until.Equal(from):
		return connector.StatusExpired, from, until
	case now.Before(from):
		return connector.StatusScheduled, from, until
	case now.Before(until):
		return connector.StatusActive, from, until
	}
	return connector.StatusExpired, from, until
}

// accessEnd is when the acknowledged events ended access for good (zero
// when none did): a sign-out plus grace on a revoking mapping, a removed
// invite, a denial.
func accessEnd(evs []modelEvent, m *mappings.Mapping) time.Time {
	var end time.Time
	for _, e := range evs {
		var t time.Time
		switch {
		case e.kind == connector.EventInviteRemoved, e.kind == connector.EventBlocklistDeny,
			!e.kind.IsInvite() && e.approval == "denied":
			t = e.at
		case e.kind == connector.EventSignOut && m.RevokeOnSignOut:
			t = e.signedOut.UTC().Truncate(time.Second)
			if t.IsZero() || t.Before(e.signedIn.UTC().Truncate(time.Second)) {
				t = e.at
			}
			t = t.Add(time.Duration(m.GraceMinutes) * time.Minute)
		default:
			continue
		}
		if end.IsZero() || t.Before(end) {
			end = t
		}
	}
	return end
}

// routing follows which acknowledged events reached which visit: until
// an event carries both the entry and the invite, events naming only the
// invite reach the invite's visit and the others the entry's; from then
// on both visits share everything.
type routing struct {
	linked bool
	groups map[string][]modelEvent
}

func (r *routing) add(e modelEvent) {
	if r.groups == nil {
		r.groups = map[string][]modelEvent{}
	}
	if e.links() && !r.linked {
		r.linked = true
		all := append(append([]modelEvent{}, r.groups["I"]...), r.groups["E"]...)
		r.groups = map[string][]modelEvent{"I": all, "E": append([]modelEvent{}, all...)}
	}
	if r.linked {
		r.groups["I"] = append(r.groups["I"], e)
		r.groups["E"] = append(r.groups["E"], e)
		return
	}
	r.groups[e.group()] = append(r.groups[e.group()], e)
}

// events returns the events the visit with source id reached.
func (r *routing) events(source string) []modelEvent {
	if strings.HasPrefix(source, "invite:") {
		return r.groups["I"]
	}
	return r.groups["E"]
}

// runCheap runs seq through the parser and the pure rules: one Facts per
// visit as the service keeps them, merged when an event links them.
func runCheap(t *testing.T, seq sequence, m *mappings.Mapping, seed uint64, i int, statuses map[connector.Status]int) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(i)))
	base := start
	now := base
	seen := map[string]bool{}
	var r routing
	facts := map[string]*connector.Facts{}
	var linked *connector.Facts
	for step, e := range seq.events {
		now = now.Add(e.advance)
		d, err := webhooks.Parse(encode(e, base, rng))
		if err != nil {
			t.Errorf("sequence %d step %d: parse: %v%s", i, step, err, seq)
			return false
		}
		if seen[d.DedupeKey] {
			continue
		}
		seen[d.DedupeKey] = true
		recv := now.Truncate(time.Second)
		r.add(modelEvent{genEvent: placed(e, base), at: recv})
		// As the service does: until an event names both the entry and
		// the invite, each has a visit of its own; from then on one set
		// of facts, merged from both, is every visit's.
		if linked == nil && d.Event.InviteID != "" && d.Event.EntryID != "" {
			linked = &connector.Facts{}
			for _, f := range facts {
				linked.Merge(*f)
			}
		}
		if linked != nil {
			linked.Apply(d.Event, recv)
			facts = map[string]*connector.Facts{"I": linked}
		} else {
			key := e.group()
			if facts[key] == nil {
				facts[key] = &connector.Facts{}
			}
			facts[key].Apply(d.Event, recv)
		}
		for key, f := range facts {
			if len(r.groups[key]) == 0 {
				continue
			}
			got := connector.Decide(*f, m, time.UTC, now)
			status, from, until := model(r.groups[key], m, now)
			statuses[status]++
			if got.Status != status || !got.ValidFrom.Equal(from) || !got.ValidUntil.Equal(until) {
				t.Errorf("sequence %d step %d visit %s at %v: Decide gave %s [%v, %v] (%s), the model %s [%v, %v]\nmapping %+v%s",
					i, step, key, now, got.Status, got.ValidFrom, got.ValidUntil, got.Reason, status, from, until, *m, seq)
				return false
			}
		}
	}
	return true
}

// runFull runs seq through the whole service against the bundled
// controller, checking every visit of the sequence after every step.
func runFull(t *testing.T, e *env, seq sequence, seed uint64, i int) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(i)))
	base := e.clock.Now()
	seen := map[string]bool{}
	var r routing
	const door = int64(1) // a door of the Visitors group
	// Every person credential a visit was ever given, tried directly on
	// the controller after every step.
	creds := map[int64][]connector.PersonCredential{}
	member := e.mapping.Credential == mappings.CredentialMember
	// A member's credentials are the person's, whichever visit gave them.
	credKey := func(visitID int64) int64 {
		if member {
			return 0
		}
		return visitID
	}
	for step, ev := range seq.events {
		e.clock.Advance(ev.advance)
		now := e.clock.Now()
		body := encode(ev, base, rng)
		if member {
			// A member is one user per email, whose access is the union of
			// their visits': each sequence is a visitor of their own.
			body = bytes.ReplaceAll(body, []byte(guestEmail), []byte(fmt.Sprintf("visitor+%d@example.com", i)))
		}
		d, err := webhooks.Parse(body)
		if err != nil {
			t.Errorf("sequence %d step %d: parse: %v%s", i, step, err, seq)
			return false
		}
		res, err := e.svc.Ingest(e.ctx, connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event})
		if err != nil {
			t.Errorf("sequence %d step %d: ingest: %v%s", i, step, err, seq)
			return false
		}
		if res.Duplicate != seen[d.DedupeKey] {
			t.Errorf("sequence %d step %d: duplicate %v, want %v%s", i, step, res.Duplicate, seen[d.DedupeKey], seq)
			return false
		}
		if !seen[d.DedupeKey] {
			seen[d.DedupeKey] = true
			r.add(modelEvent{genEvent: placed(ev, base), at: now.Truncate(time.Second)})
		}
		var visits []connector.Visit
		for _, src := range []string{"entry:" + seq.entryID, "invite:" + seq.inviteID} {
			vs, _, err := e.store.List(e.ctx, connector.VisitFilter{SourceID: src})
			if err != nil {
				t.Fatalf("list visits: %v", err)
			}
			visits = append(visits, vs...)
		}
		for _, v := range visits {
			if _, err := e.svc.SyncVisit(e.ctx, v.ID); err != nil {
				t.Errorf("sequence %d step %d: sync visit %d: %v%s", i, step, v.ID, err, seq)
				return false
			}
			if c, ok, err := e.svc.PersonCredentialOf(e.ctx, e.visit(v.ID)); err != nil {
				t.Fatalf("person credential of visit %d: %v", v.ID, err)
			} else if k := credKey(v.ID); ok && !slices.Contains(creds[k], c) {
				creds[k] = append(creds[k], c)
			}
		}
		// A member's doors open while any visit of theirs is active, and
		// stay shut once every one has ended.
		anyActive, allEnded := false, true
		for _, v := range visits {
			evs := r.events(v.SourceID)
			if st, _, _ := model(evs, &e.mapping, now); st == connector.StatusActive {
				anyActive = true
			}
			if end := accessEnd(evs, &e.mapping); end.IsZero() || now.Before(end) {
				allEnded = false
			}
		}
		for _, v := range visits {
			v = e.visit(v.ID)
			evs := r.events(v.SourceID)
			status, from, until := model(evs, &e.mapping, now)
			got := stateOf(v)
			if v.Status == connector.StatusFailed || got.Status != status || !got.ValidFrom.Equal(from) || !got.ValidUntil.Equal(until) {
				t.Errorf("sequence %d step %d visit %s at %v: got %s [%v, %v] (%s), the model %s [%v, %v]%s",
					i, step, v.SourceID, now, got.Status, got.ValidFrom, got.ValidUntil, v.Reason, status, from, until, seq)
				return false
			}
			wantName := ""
			for _, me := range evs {
				if me.name == "Jane Visitor" {
					wantName = me.name
				}
			}
			if v.Name != wantName {
				t.Errorf("sequence %d step %d visit %s: name %q, want %q%s", i, step, v.SourceID, v.Name, wantName, seq)
				return false
			}
			opened := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), door) == nil
			for _, secret := range e.linkSecrets(v.ID) {
				opened = e.client.Unlock(e.ctx, secret, door) == nil || opened
			}
			for _, c := range creds[credKey(v.ID)] {
				opened = e.client.PersonUnlock(e.ctx, c, door) == nil || opened
			}
			ended := accessEnd(evs, &e.mapping)
			active := status == connector.StatusActive
			if member {
				active = anyActive
				if !allEnded {
					ended = time.Time{}
				}
			}
			switch {
			case opened && !ended.IsZero() && !now.Before(ended):
				t.Errorf("sequence %d step %d visit %s at %v: a door opened after access ended at %v%s", i, step, v.SourceID, now, ended, seq)
				return false
			case opened != active:
				t.Errorf("sequence %d step %d visit %s at %v: door opened %v, want %v (model %s)%s", i, step, v.SourceID, now, opened, active, status, seq)
				return false
			}
		}
	}
	return true
}
