package connector

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/batch"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/mappings"
)

// Options tunes the Service; the zero value works except for PublicURL,
// which links in emails need.
type Options struct {
	// PublicURL is the absolute base of guest pass links.
	PublicURL string
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// SyncLease is how long a reconciler's hold on a visit lasts without
	// renewal (default 6 s). The holder renews it every third of that
	// while it works, so a worker that dies mid-sync blocks the visit for
	// at most this long.
	SyncLease time.Duration
	// EmailClaim is how long one sender holds an email it hands to a mailer
	// that cannot tell repeats apart (SMTP); it must exceed the mailer's
	// own timeout. After a crash mid-send, the email goes out again (with
	// the same Message-ID) once the claim has run out.
	EmailClaim time.Duration
	// SyncTimeout bounds one sync, controller calls and retries included
	// (default 2 minutes).
	SyncTimeout time.Duration
	// CreateSettle is how long a link creation whose outcome is unknown (a
	// timeout, a lost answer, a worker that died) may still complete on the
	// controller (default 35 s, longer than one controller request may
	// take). Until then, and unless the link it made has appeared, the
	// link is neither created again nor given up.
	CreateSettle time.Duration
	// Queue takes the work a change leaves to be done (default: none; the
	// sweeps find it).
	Queue Queue
	// DriftMargin is how much older than the start of a drift repair's
	// listing a link row must be for the repair to look into a link the
	// listing lacks (default 5 s): a row written since was written after
	// the listing began (by a sync on this or another replica, whose clock
	// may differ a little) and is left for the next repair.
	DriftMargin time.Duration
	// Reporter reports the outcome of jobs answered 202 back to Envoy
	// (default none: nothing is reported, and no report is recorded).
	Reporter Reporter
	// Dialer opens clients on the controller accounts of Envoy installs
	// (default none: every install uses the process's controller, and
	// installs cannot be connected).
	Dialer Dialer
}

// Service applies visitor events to visits and makes the access controller
// match them. It is safe for concurrent use.
type Service struct {
	log   *slog.Logger
	store *Store
	ac    AccessControl
	mail  mail.Sender
	box   *secretbox.Box
	opts  Options
	queue Queue
	zones zoneCache
	// doorCache holds each install's group doors for the emails.
	doorCache doorCache
	// controllers resolves each visit's install to its controller; every
	// controller call goes through it.
	controllers Controllers
	dialer      Dialer
	// timeline writes the unlock path's timeline rows off the request path.
	timeline *timelineWriter
	// ingests group-commits the deliveries that arrive together.
	ingests *ingestBatcher
	// passes reads the facts of the passes unlocking together in one
	// statement.
	passes *batch.Reader[string, passUnlockFacts]
}

// passReaders is how many reads of pass facts run at once on PostgreSQL
// (one on SQLite, whose four connections the writers need too); the
// unlocks that arrive meanwhile share the next (see batch.Reader).
const (
	passReaders   = 4
	passReadMax   = 64
	passReadLimit = 10 * time.Second
)

// NewService returns a Service.
func NewService(log *slog.Logger, store *Store, ac AccessControl, sender mail.Sender, box *secretbox.Box, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SyncLease <= 0 {
		opts.SyncLease = 6 * time.Second
	}
	if opts.EmailClaim <= 0 {
		opts.EmailClaim = 2 * time.Minute
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 2 * time.Minute
	}
	if opts.CreateSettle <= 0 {
		opts.CreateSettle = 35 * time.Second
	}
	if opts.Queue == nil {
		opts.Queue = noQueue{}
	}
	if opts.DriftMargin <= 0 {
		opts.DriftMargin = 5 * time.Second
	}
	svc := &Service{log: log.With("component", "connector"), store: store, ac: ac, mail: sender, box: box, opts: opts, queue: opts.Queue, dialer: opts.Dialer}
	svc.timeline = newTimelineWriter(store, svc.log)
	writers, readers := 1, 1
	if store.db.Dialector.Name() == "postgres" {
		writers, readers = 8, passReaders
	}
	svc.ingests = newIngestBatcher(svc, writers)
	svc.passes = batch.NewReader(readers, passReadMax, passReadLimit, store.passUnlockFacts)
	svc.controllers = processOnly{ac}
	if opts.Dialer != nil {
		svc.controllers = &installControllers{store: store, dialer: opts.Dialer, def: ac, cache: map[string]cachedController{},
			open: func(sealed []byte, id string) ([]byte, error) { return box.Open(sealed, installAD(id)) }}
	}
	return svc
}

// Store returns the service's store, for read-only views.
func (s *Service) Store() *Store { return s.store }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Second) }

// Now returns the service's clock reading, for views that must agree with
// its decisions.
func (s *Service) Now() time.Time { return s.opts.Now().UTC() }

// Inbound is one received webhook delivery.
type Inbound struct {
	DedupeKey string
	// LegacyKey, when set, is the key an older release stored for the same
	// delivery; a delivery stored under it is a duplicate too.
	LegacyKey string
	EventName string
	JobID     string
	Known     bool
	// IgnoreReason, when set, records the delivery as ignored for this
	// reason (an Envoy Protect employee screening entry).
	IgnoreReason string
	// RefuseDisconnected refuses an event of an install whose controller
	// key was refused or removed: it stores nothing and reports
	// Disconnected.
	RefuseDisconnected bool
	Event              Event
}

// IngestResult says what a delivery did.
type IngestResult struct {
	VisitID   int64
	Version   int64
	Status    Status
	Reason    string
	Duplicate bool
	Ignored   bool
	// Disconnected reports an event refused because its install has no
	// accepted controller key (see Inbound.RefuseDisconnected).
	Disconnected bool
	// Changed reports whether the visit's desired state changed, so a
	// sync is needed.
	Changed bool
	// Also lists other visits the event changed, which need a sync too:
	// an event that links an entry's visit and its invite's applies to
	// both.
	Also []VisitRef
}

// Ingest records a delivery and applies its event to the visit, in one
// transaction, which deliveries that arrive together share (see
// ingestBatcher); it returns once that transaction has committed. A
// repeated delivery (same dedupe key) changes nothing and reports
// Duplicate. An unknown event is recorded as ignored. Once stored, the
// syncs the change needs are queued.
func (s *Service) Ingest(ctx context.Context, in Inbound) (IngestResult, error) {
	res, err := s.ingests.do(ctx, in)
	if err != nil {
		return IngestResult{}, err
	}
	if res.Changed || len(res.Also) > 0 {
		s.afterSync(ctx, append([]VisitRef{{ID: res.VisitID, Version: res.Version}}, res.Also...)...)
	}
	return res, nil
}

// ingestOne stores one delivery in a transaction of its own: the path of a
// delivery that arrives alone, and of one its batch could not take (see
// ingestBatcher).
func (s *Service) ingestOne(ctx context.Context, in Inbound) (IngestResult, error) {
	var res IngestResult
	apply := func(tx *Store) error {
		// A batch of one: the install and mapping read once, the
		// delivery and timeline rows written at the end.
		bt := tx.batched()
		var err error
		if res, err = s.applyInbound(ctx, bt, in); err != nil {
			return err
		}
		return bt.flushBatch(ctx)
	}
	err := s.store.InTx(ctx, apply)
	if errors.Is(err, errVisitExists) {
		// Another event of the same new visit created it first (Envoy
		// delivers in parallel): apply this one to that visit.
		err = s.store.InTx(ctx, apply)
	}
	if errors.Is(err, errDuplicateDelivery) {
		// A retry of a delivery already stored: report what it did.
		d, found, ferr := s.store.deliveryByKey(ctx, in.DedupeKey)
		if ferr == nil && !found && in.LegacyKey != "" {
			d, _, ferr = s.store.deliveryByKey(ctx, in.LegacyKey)
		}
		if ferr != nil {
			return IngestResult{}, ferr
		}
		return s.duplicate(ctx, d)
	}
	if latchkey.KindOf(err) == latchkey.Invalid {
		return IngestResult{}, err
	}
	if err != nil {
		return IngestResult{}, latchkey.Wrap(latchkey.Unavailable, "could not store the event", err)
	}
	return res, nil
}

// applyInbound records delivery in and applies its event to its visits, in
// tx. A delivery already stored is errDuplicateDelivery.
func (s *Service) applyInbound(ctx context.Context, tx *Store, in Inbound) (IngestResult, error) {
	now := s.now()
	ev := in.Event
	if in.RefuseDisconnected && in.Known && ev.InstallID != "" {
		inst, found, err := tx.Install(ctx, ev.InstallID)
		if err != nil {
			return IngestResult{}, err
		}
		if found && (!inst.HasKey || inst.KeyRefused) {
			return IngestResult{Disconnected: true}, nil
		}
	}
	d := Delivery{DedupeKey: in.DedupeKey, Event: in.EventName, JobID: in.JobID, SourceID: ev.SourceID(), ReceivedAt: now}
	if in.LegacyKey != "" && !tx.batch.checked(in.LegacyKey) {
		if _, found, err := tx.deliveryByKey(ctx, in.LegacyKey); err != nil || found {
			return IngestResult{}, cmp.Or(err, errDuplicateDelivery)
		}
	}
	if in.Known && ev.LocationID == "" {
		return IngestResult{}, latchkey.Errorf(latchkey.Invalid, "event %s has no location", in.EventName)
	}
	if !in.Known || in.IgnoreReason != "" {
		d.Outcome, d.Reason = "ignored", cmp.Or(in.IgnoreReason, fmt.Sprintf("event %q is not handled", in.EventName))
		return IngestResult{Ignored: true, Reason: d.Reason}, tx.createDelivery(ctx, &d)
	}

	// The visit is whichever shares the event's key, entry or invite:
	// either event of an entry and its invite may carry the link
	// between them. When the event links two visits made before the
	// link was known, both take the facts of both, so an event that
	// ends access ends it on each.
	// Two events that may each create one of two visits the other
	// should see (an invite, and a sign-out naming that invite) take
	// the same locks first, so neither misses the other's new row.
	if err := tx.lockIdentities(ctx, identityLocks(ev)...); err != nil {
		return IngestResult{}, err
	}
	vs, err := tx.visitsFor(ctx, ev.InstallID, ev.LocationID, ev.SourceID(), ev.EntryID, ev.InviteID)
	if err != nil {
		return IngestResult{}, err
	}
	found := len(vs) > 0
	if !found {
		salt := secretbox.RandomHex(16)
		vs = []Visit{{InstallID: ev.InstallID, LocationID: ev.LocationID, SourceID: ev.SourceID(),
			PassSalt: salt, PassHash: secretbox.Hash(s.box.Token(salt)), Version: 1, CreatedAt: now}}
	}
	var merged Facts
	for _, v := range vs {
		merged.Merge(v.Facts)
	}
	merged.Apply(ev, now)
	// The visit's flow is the latest one known, as its sync decides
	// by; an event without one (some sign-outs) uses it. The mapping
	// is read in this transaction, on its connection.
	note, err := s.adoptConfig(ctx, tx, ev.InstallID, ev.Config)
	if err != nil {
		return IngestResult{}, err
	}
	m, err := tx.Mapping(ctx, ev.InstallID, ev.LocationID, merged.FlowID)
	if err != nil {
		return IngestResult{}, err
	}
	var res IngestResult
	for i := range vs {
		v := &vs[i]
		r, err := s.applyTo(ctx, tx, v, ev, in.EventName, merged, m, now, found)
		if err != nil {
			return IngestResult{}, err
		}
		if i == 0 {
			// The delivery's unique key turns a retried delivery into
			// errDuplicateDelivery, which rolls all of this back.
			d.VisitID, d.Outcome, d.Reason = &v.ID, string(r.Status), r.Reason
			if err := tx.createDelivery(ctx, &d); err != nil {
				return IngestResult{}, err
			}
			if note != "" {
				if err := tx.AddTimeline(ctx, v.ID, now, KindAction, note); err != nil {
					return IngestResult{}, err
				}
			}
			res = r
			continue
		}
		if r.Changed {
			res.Also = append(res.Also, VisitRef{ID: r.VisitID, Version: r.Version})
		}
	}
	// A job answered 202 (work goes on in the queue) is reported to
	// Envoy once the sync it waits for settles; what is owed is
	// recorded with the delivery.
	if s.reporting() && in.JobID != "" && !res.Ignored && (res.Changed || len(res.Also) > 0) {
		wait := VisitRef{ID: res.VisitID, Version: res.Version}
		if !res.Changed {
			wait = res.Also[0]
		}
		return res, tx.oweReport(ctx, in.JobID, wait.ID, wait.Version, now)
	}
	return res, nil
}

// applyTo gives visit v the merged facts after ev was applied, decides it
// and stores it with its timeline, in tx. found says whether v existed.
func (s *Service) applyTo(ctx context.Context, tx *Store, v *Visit, ev Event, eventName string, merged Facts, m *mappings.Mapping, now time.Time, found bool) (IngestResult, error) {
	if ev.EntryID != "" {
		v.EntryID = ev.EntryID
	}
	if ev.InviteID != "" {
		v.InviteID = ev.InviteID
	}
	if ev.FlowName != "" {
		v.FlowName = ev.FlowName
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&v.HostName, ev.HostName}, {&v.HostEmail, ev.HostEmail}, {&v.LocationName, ev.LocationName},
		{&v.LocationAddress, ev.LocationAddress}, {&v.Locale, ev.Locale},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	var zoneNote string
	if ev.TimeZone != "" {
		if _, ok := s.zones.load(ev.TimeZone); ok {
			v.TimeZone, v.BadTimeZone = ev.TimeZone, ""
		} else if v.BadTimeZone != ev.TimeZone {
			v.BadTimeZone = ev.TimeZone
			zoneNote = fmt.Sprintf("unknown time zone %q: windows are computed in UTC", ev.TimeZone)
			if v.TimeZone != "" {
				zoneNote = fmt.Sprintf("unknown time zone %q: windows stay in %s", ev.TimeZone, v.TimeZone)
			}
		}
	}
	before := v.Facts
	v.setFacts(merged)
	prev := decisionOf(v)
	dec, ok := s.decideInRange(v, m, now)
	if !ok {
		return IngestResult{}, latchkey.Errorf(latchkey.Invalid, "%s: the access window would fall outside the years %d to %d", timeField(ev), MinYear, MaxYear)
	}
	// What an event changes is what the facts say, not when each was last
	// heard: the same event again later moves only stamps, which are
	// stored (they order later events) but need no sync.
	changed := !found || !factsEqual(before.withoutStamps(), merged.withoutStamps()) || !sameDecision(dec, prev)
	if changed && found {
		v.Version++
	}
	applyDecision(v, dec)
	v.UpdatedAt = now
	if err := tx.saveVisit(ctx, v); err != nil {
		return IngestResult{}, err
	}
	msg := fmt.Sprintf("%s received", eventName)
	if !changed {
		msg += "; nothing changed"
	}
	entries := []TimelineEntry{{VisitID: v.ID, At: now, Kind: KindEventReceived, Message: msg}}
	if zoneNote != "" {
		entries = append(entries, TimelineEntry{VisitID: v.ID, At: now, Kind: KindError, Message: zoneNote})
	}
	if out, sub := SignOutTime(ev, now); sub {
		what := "missing"
		switch {
		case ev.SignedOutAt.IsZero():
		case ev.SignedOutAt.After(out):
			what = "later than it arrived"
		default:
			what = "before the sign-in"
		}
		entries = append(entries, TimelineEntry{VisitID: v.ID, At: now, Kind: KindEventReceived,
			Message: fmt.Sprintf("the sign-out time is %s; using the time it was received (%s)", what, out.Format(time.RFC3339))})
	}
	if changed && !sameDecision(dec, prev) {
		entries = append(entries, TimelineEntry{VisitID: v.ID, At: now, Kind: KindDecision, Message: describe(dec, s.location(v.TimeZone))})
	}
	if err := tx.addTimeline(ctx, entries...); err != nil {
		return IngestResult{}, err
	}
	return IngestResult{VisitID: v.ID, Version: v.Version, Status: dec.Status, Reason: dec.Reason, Changed: changed, Ignored: dec.Status == StatusIgnored}, nil
}

// timeField names the wire field an event's window is anchored on, for an
// error about the window.
func timeField(ev Event) string {
	switch {
	case !ev.SignedInAt.IsZero():
		return "payload.attributes.signed-in-at"
	case !ev.ExpectedArrival.IsZero():
		return "payload.attributes.expected-arrival-time"
	}
	return "payload.attributes.signed-out-at"
}

func (s *Service) duplicate(ctx context.Context, d Delivery) (IngestResult, error) {
	res := IngestResult{Duplicate: true, Reason: d.Reason, Ignored: d.Outcome == "ignored"}
	if d.VisitID != nil {
		v, err := s.store.Visit(ctx, *d.VisitID)
		if err != nil {
			return IngestResult{}, err
		}
		res.VisitID, res.Version, res.Status, res.Reason = v.ID, v.Version, v.Status, v.Reason
	}
	return res, nil
}

// decide computes the visit's desired state: the rules, then the front
// desk's actions (revoke, extend). Times are whole seconds in UTC, and
// never outside the years MinYear to MaxYear (see decideInRange).
func (s *Service) decide(v *Visit, m *mappings.Mapping, now time.Time) Decision {
	d, _ := s.decideInRange(v, m, now)
	return d
}

// decideInRange is decide, reporting false when the window had to be
// clamped into the years MinYear to MaxYear: a change that leads there is
// refused as invalid where it comes in (an event, an extension), and the
// clamp keeps anything else (a mapping change) from storing a time no
// encoder can write. Clamping only ever shortens access.
func (s *Service) decideInRange(v *Visit, m *mappings.Mapping, now time.Time) (Decision, bool) {
	d := s.decideRaw(v, m, now)
	if TimeInRange(d.ValidFrom) && TimeInRange(d.ValidUntil) {
		return d, true
	}
	d.ValidFrom, d.ValidUntil = clampTime(d.ValidFrom), clampTime(d.ValidUntil)
	return d, false
}

func (s *Service) decideRaw(v *Visit, m *mappings.Mapping, now time.Time) Decision {
	d := Decide(v.Facts, m, s.location(v.TimeZone), now)
	if d.Status == StatusIgnored || d.Status == StatusHeld {
		return d
	}
	if v.ExtendMinutes > 0 && !d.ValidUntil.IsZero() && d.Status != StatusRevoked {
		d.ValidUntil = d.ValidUntil.Add(time.Duration(v.ExtendMinutes) * time.Minute)
		d.Status = statusAt(d.ValidFrom, d.ValidUntil, now)
		d.Reason += fmt.Sprintf("; extended by %s at the front desk", minutes(v.ExtendMinutes))
	}
	if v.ManuallyRevoked && d.Status != StatusRevoked {
		d.Status, d.Reason = StatusRevoked, "revoked at the front desk"
	}
	if v.ManuallyRevoked && v.RevokedAt != nil && !d.ValidUntil.IsZero() && v.RevokedAt.Before(d.ValidUntil) {
		// The window ends at the revoke; revoked before it opened, it
		// is empty.
		d.ValidUntil = *v.RevokedAt
		if d.ValidFrom.After(d.ValidUntil) {
			d.ValidFrom = d.ValidUntil
		}
	}
	d.ValidFrom = d.ValidFrom.UTC().Truncate(time.Second)
	d.ValidUntil = d.ValidUntil.UTC().Truncate(time.Second)
	return d
}

func statusAt(from, until, now time.Time) Status {
	switch {
	case now.Before(from):
		return StatusScheduled
	case now.Before(until):
		return StatusActive
	}
	return StatusExpired
}

func decisionOf(v *Visit) Decision {
	return Decision{Status: v.Status, Reason: v.Reason, ValidFrom: deref(v.ValidFrom), ValidUntil: deref(v.ValidUntil)}
}

func applyDecision(v *Visit, d Decision) {
	v.Status, v.Reason = d.Status, d.Reason
	v.ValidFrom, v.ValidUntil = ptr(d.ValidFrom), ptr(d.ValidUntil)
}

// factsEqual compares facts by their stored form, so time values that
// differ only in representation compare equal.
func factsEqual(a, b Facts) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

func sameDecision(a, b Decision) bool {
	return a.Status == b.Status && a.Reason == b.Reason && a.ValidFrom.Equal(b.ValidFrom) && a.ValidUntil.Equal(b.ValidUntil)
}

// location returns the IANA zone name's location, or UTC when the name is
// empty or not a zone.
func (s *Service) location(name string) *time.Location {
	loc, _ := s.zones.load(name)
	return loc
}

// describe renders a decision for the timeline, in the location's zone.
func describe(d Decision, loc *time.Location) string {
	if d.ValidFrom.IsZero() || d.Status == StatusIgnored {
		return fmt.Sprintf("%s: %s", d.Status, d.Reason)
	}
	return fmt.Sprintf("%s: %s; window %s – %s", d.Status, d.Reason,
		d.ValidFrom.In(loc).Format("Mon 2 Jan 15:04"), d.ValidUntil.In(loc).Format("Mon 2 Jan 15:04 MST"))
}

// accessKey identifies what a guest email tells: the access window, for
// "one email per change". The controller links behind the pass are not
// part of it: the pass URL the guest holds never changes, and the pass page
// shows the current links' codes, so a link replaced or recreated (on a
// controller that cannot update in place, or by the drift repair) is no
// news to the guest.
func accessKey(d Decision) string {
	h := sha256.Sum256([]byte(d.ValidFrom.UTC().Format(time.RFC3339) + "|" + d.ValidUntil.UTC().Format(time.RFC3339)))
	return hex.EncodeToString(h[:8])
}

// PassToken returns the guest pass token of v.
func (s *Service) PassToken(v Visit) string { return s.box.Token(v.PassSalt) }

// PassURL returns the absolute URL of v's guest pass.
func (s *Service) PassURL(v Visit) string { return s.opts.PublicURL + "/v/" + s.PassToken(v) }

// MarkFailed records that the sync of visit id at version failed for good.
// It changes nothing when that version is no longer the one owed (a later
// change superseded it, or another sync already applied it), so a stale
// task cannot overwrite a good state. A failed visit keeps no access (its
// links are removed by the drift repair), and the sweep for lost work keeps
// retrying it: the next sync that succeeds sets its status again.
func (s *Service) MarkFailed(ctx context.Context, id, version int64, reason string) error {
	now := s.now()
	var reports []int64
	err := s.store.InTx(ctx, func(tx *Store) error {
		if marked, err := tx.markFailed(ctx, id, version, reason, now); err != nil || !marked {
			return err
		}
		if s.reporting() {
			var err error
			if reports, err = tx.settleReports(ctx, id, version, JobFailed, reason, now); err != nil {
				return err
			}
		}
		return tx.AddTimeline(ctx, id, now, KindError, "failed: "+reason)
	})
	if err == nil {
		s.afterReports(ctx, reports...)
	}
	return err
}

// EmailFailed records that the guest email of visit id for key could not be
// sent for good: the timeline says so and the email is no longer owed (the
// front desk can resend it). The visit's access is left as it is.
func (s *Service) EmailFailed(ctx context.Context, id int64, key, reason string) error {
	return s.store.InTx(ctx, func(tx *Store) error {
		v, err := tx.Visit(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.moveEmailDue(ctx, id, key, v.EmailedWindow); err != nil {
			return err
		}
		return tx.AddTimeline(ctx, id, s.now(), KindEmailFailed, "email not sent, giving up: "+reason+"; correct the guest's address, or Resend once the mail server is fixed")
	})
}

// VisitsDue lists visits whose status changes by time alone as of now.
func (s *Service) VisitsDue(ctx context.Context, now time.Time) ([]VisitRef, error) {
	return s.store.due(ctx, now, 1000)
}

// Synced reports whether visit id's sync at version (or a later one) is
// done. A visit not found is not: its sync reports that.
func (s *Service) Synced(ctx context.Context, id, version int64) (bool, error) {
	synced, _, err := s.store.deliveredState(ctx, id)
	if errors.Is(err, ErrVisitNotFound) {
		return false, nil
	}
	return err == nil && synced >= version, err
}

// Emailed reports whether visit id's guest email for window key was sent.
func (s *Service) Emailed(ctx context.Context, id int64, key string) (bool, error) {
	_, emailed, err := s.store.deliveredState(ctx, id)
	if errors.Is(err, ErrVisitNotFound) {
		return false, nil
	}
	return err == nil && key != "" && emailed == key, err
}

// VisitsUnsynced lists visits changed before cutoff and not synced since.
func (s *Service) VisitsUnsynced(ctx context.Context, cutoff time.Time) ([]VisitRef, error) {
	return s.store.unsynced(ctx, cutoff, 1000)
}

// EmailsOwed lists the guest emails that synced visits, changed before
// cutoff, still owe: their task was lost, or is still retrying. Sending one
// needs no sync, so a visit whose sync lease is held by a dead worker still
// gets its email.
func (s *Service) EmailsOwed(ctx context.Context, cutoff time.Time) ([]EmailDue, error) {
	return s.store.emailsOwed(ctx, cutoff, 1000)
}
