package connector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/mappings"
)

// MaxExtendMinutes bounds one extension.
const MaxExtendMinutes = 7 * 24 * 60

// change applies fn to visit id and its decision in one transaction, bumps
// the version, queues the visit's sync once committed, and returns the
// visit.
func (s *Service) change(ctx context.Context, id int64, what string, fn func(v *Visit, m *mappings.Mapping) error) (Visit, error) {
	v, _, err := s.changeUnless(ctx, id, what, fn, nil)
	if err != nil {
		return v, err
	}
	s.afterSync(ctx, VisitRef{ID: v.ID, Version: v.Version})
	return v, nil
}

// changeUnless is change, except that nothing is written (and changed is
// false) when skip reports true for the visit and its new decision.
func (s *Service) changeUnless(ctx context.Context, id int64, what string, fn func(v *Visit, m *mappings.Mapping) error, skip func(v *Visit, d Decision) bool) (out Visit, changed bool, err error) {
	now := s.now()
	err = s.store.InTx(ctx, func(tx *Store) error {
		v, err := tx.Visit(ctx, id)
		if err != nil {
			return err
		}
		m, err := tx.Mapping(ctx, v.InstallID, v.LocationID, v.FlowID)
		if err != nil {
			return err
		}
		if err := fn(&v, m); err != nil {
			return err
		}
		d := s.decide(&v, m, now)
		if skip != nil && skip(&v, d) {
			out = v
			return nil
		}
		changed = true
		v.Version++
		applyDecision(&v, d)
		v.UpdatedAt = now
		if err := tx.saveVisit(ctx, &v); err != nil {
			return err
		}
		if err := tx.AddTimeline(ctx, id, now, KindAction, what); err != nil {
			return err
		}
		out = v
		return tx.AddTimeline(ctx, id, now, KindDecision, describe(d, s.location(v.TimeZone)))
	})
	return out, changed, err
}

// Revoke takes access away from visit id now.
func (s *Service) Revoke(ctx context.Context, id int64) (Visit, error) {
	return s.change(ctx, id, "revoked at the front desk", func(v *Visit, _ *mappings.Mapping) error {
		if v.Status == StatusRevoked {
			return latchkey.Errorf(latchkey.Conflict, "visit %d is already revoked", id)
		}
		v.ManuallyRevoked = true
		at := s.now().UTC().Truncate(time.Second)
		v.RevokedAt = &at
		return nil
	})
}

// Extend lengthens visit id's window by minutes.
func (s *Service) Extend(ctx context.Context, id int64, mins int) (Visit, error) {
	if mins < 1 || mins > MaxExtendMinutes {
		return Visit{}, latchkey.Errorf(latchkey.Invalid, "minutes must be between 1 and %d", MaxExtendMinutes)
	}
	return s.change(ctx, id, fmt.Sprintf("extended by %s at the front desk", minutes(mins)), func(v *Visit, m *mappings.Mapping) error {
		switch v.Status {
		case StatusRevoked, StatusIgnored, StatusHeld:
			return latchkey.Errorf(latchkey.Conflict, "visit %d is %s and cannot be extended", id, v.Status)
		}
		v.ExtendMinutes += mins
		if _, ok := s.decideInRange(v, m, s.now()); !ok {
			return latchkey.Errorf(latchkey.Invalid, "minutes: the window would end after the year %d", MaxYear)
		}
		return nil
	})
}

// Resend has the guest email sent again and returns the visit. It fails
// with kind Unavailable when the email could not be queued (the desk may
// try again).
func (s *Service) Resend(ctx context.Context, id int64) (Visit, error) {
	now := s.now()
	var (
		out Visit
		key string
	)
	err := s.store.InTx(ctx, func(tx *Store) error {
		v, err := tx.Visit(ctx, id)
		if err != nil {
			return err
		}
		if !v.Status.WantsLinks() {
			return latchkey.Errorf(latchkey.Conflict, "visit %d is %s: there is no access to send", id, v.Status)
		}
		if v.Email == "" {
			return latchkey.Errorf(latchkey.Invalid, "visit %d has no email address", id)
		}
		m, err := tx.Mapping(ctx, v.InstallID, v.LocationID, v.FlowID)
		if err != nil {
			return err
		}
		if m != nil && m.Delivery == mappings.DeliveryController {
			return latchkey.Errorf(latchkey.Conflict, "this flow's links are mailed by the controller, not by latchkey")
		}
		if err := resendWouldFail(ctx, tx, v); err != nil {
			return err
		}
		v.ResendCount++
		if err := tx.setResendCount(ctx, id, v.ResendCount); err != nil {
			return err
		}
		key = accessKey(decisionOf(&v)) + ":r" + strconv.Itoa(v.ResendCount)
		out = v
		return tx.AddTimeline(ctx, id, now, KindAction, "email resend requested at the front desk")
	})
	if err != nil {
		return out, err
	}
	return out, s.afterResend(ctx, id, key)
}

// Detail is a visit with its links and timeline.
type Detail struct {
	Visit    Visit
	Links    []VisitLink
	Timeline []TimelineEntry
	// Person is the controller person behind the pass of a visit whose
	// mapping gives a guest or a member; nil when it never had one.
	Person *PersonDetail
}

// PersonDetail is what the desk sees of a visit's person: its kind, the
// controller's id for it (0 once removed) and the group role assignments
// that exist for the visit now, each with the visit's own window.
type PersonDetail struct {
	Kind     PersonKind
	PersonID int64
	Roles    []VisitRole
}

// Detail returns visit id with its links, person and timeline.
func (s *Service) Detail(ctx context.Context, id int64) (Detail, error) {
	v, err := s.store.Visit(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	links, err := s.store.Links(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	s.timeline.flush(ctx) // the unlocks answered so far
	tl, err := s.store.Timeline(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{Visit: v, Links: links, Timeline: tl}
	p, err := s.store.visitPerson(ctx, id)
	if err != nil || p == nil {
		return d, err
	}
	d.Person = &PersonDetail{Kind: p.Kind}
	if p.live() {
		d.Person.PersonID = p.PersonID
	}
	roles, err := s.store.Roles(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	for _, r := range roles {
		if !r.Removed && r.AssignmentID != 0 {
			d.Person.Roles = append(d.Person.Roles, r)
		}
	}
	return d, nil
}

// Pass is what a guest's pass page shows.
type Pass struct {
	Visit Visit
	Doors []Door
	// QRToken is what the door reader needs ("" when none), and QRImage
	// its QR code as a PNG.
	QRToken string
	QRImage []byte
	// KeyWithGuest says the controller sent the guest their own access
	// key and kept it from latchkey: the doors are listed, and only that
	// key opens them (see ErrKeyWithGuest).
	KeyWithGuest bool
}

// ErrPassNotFound is returned for an unknown pass token.
var ErrPassNotFound = &latchkey.Error{Kind: latchkey.NotFound, Msg: "this pass does not exist"}

// PassByToken returns the visit of a pass token.
func (s *Service) PassByToken(ctx context.Context, token string) (Visit, error) {
	if len(token) < 20 || len(token) > 100 {
		return Visit{}, ErrPassNotFound
	}
	v, err := s.store.VisitByPassHash(ctx, secretbox.Hash(token))
	if errors.Is(err, ErrVisitNotFound) {
		return Visit{}, ErrPassNotFound
	}
	return v, err
}

// PassView returns the pass behind token with its doors; the first view is
// recorded on the timeline. Doors are listed only while links exist.
func (s *Service) PassView(ctx context.Context, token string) (Pass, error) {
	v, err := s.PassByToken(ctx, token)
	if err != nil {
		return Pass{}, err
	}
	if v.FirstViewedAt == nil {
		now := s.now()
		if first, err := s.store.markFirstViewed(ctx, v.ID, now); err == nil && first {
			if err := s.store.AddTimeline(ctx, v.ID, now, KindPassViewed, "guest opened the pass"); err != nil {
				s.log.Warn("timeline", "visit_id", v.ID, "err", err)
			}
		}
	}
	p := Pass{Visit: v}
	if !v.Status.WantsLinks() {
		return p, nil
	}
	links, err := s.store.Links(ctx, v.ID)
	if err != nil {
		return p, err
	}
	if p.Doors, err = s.doors(ctx, &v, links); err != nil {
		return p, err
	}
	if p.QRToken, p.QRImage, err = s.qrCode(&v, links, true); err != nil {
		return p, err
	}
	if p.QRToken == "" {
		if p.QRToken, p.QRImage, _, err = s.personQR(ctx, &v); err != nil {
			return p, err
		}
	}
	if p.KeyWithGuest, err = s.keyWithGuest(ctx, &v); err != nil {
		return p, err
	}
	return p, nil
}

// ErrPassEnded is returned when a pass no longer gives access.
var ErrPassEnded = &latchkey.Error{Kind: latchkey.Forbidden, Msg: "this pass no longer opens doors"}

// ErrPassSettingUp is the answer to an unlock of a visit whose access is
// open but not yet made on the controller (its sync is still to run): the
// guest may try again in a moment.
var ErrPassSettingUp = &latchkey.Error{Kind: latchkey.Conflict, Msg: "this pass's access is still being set up"}

// PassUnlock unlocks lockID with the link behind token that opens it: with
// one link, that link; with several, the one whose group holds the door
// (see linkFor), so no other link is tried and refused. A refusal carries the controller's reason (a
// *ControllerError cause with its Refusal).
func (s *Service) PassUnlock(ctx context.Context, token string, lockID int64) error {
	if len(token) < 20 || len(token) > 100 {
		return ErrPassNotFound
	}
	// One read gives the visit's status, its links and whether it has a
	// person credential; the unlocks arriving together share it.
	f, found, err := s.passes.Get(ctx, secretbox.Hash(token))
	if err != nil {
		return err
	}
	if !found {
		return ErrPassNotFound
	}
	if !f.Status.WantsLinks() {
		return ErrPassEnded
	}
	var live []VisitLink
	for _, l := range f.Links {
		if !l.Removed && l.LinkID != 0 {
			live = append(live, l)
		}
	}
	if len(live) == 0 && !f.HasPerson && f.Status == StatusActive {
		return ErrPassSettingUp
	}
	if ctx, err = s.bindUnlockController(ctx, f.InstallID); err != nil {
		return err
	}
	v := Visit{ID: f.VisitID, Status: f.Status, InstallID: f.InstallID}
	handled := false
	if f.HasPerson {
		// A guest or member unlocks with their own credential (person.go).
		if handled, err = s.personUnlock(ctx, &v, lockID); err != nil {
			return err
		}
	}
	if !handled {
		secret, err := s.linkFor(ctx, &v, live, lockID)
		if err != nil {
			return err
		}
		if err := s.ctl(ctx).Unlock(ctx, secret, lockID); err != nil {
			return err
		}
	}
	s.timeline.add(ctx, TimelineEntry{VisitID: v.ID, At: s.now(), Kind: KindUnlock, Message: fmt.Sprintf("door %d unlocked", lockID)})
	return nil
}

// linkFor returns the secret of the link among live that opens lockID, or
// a NotFound error when none does: with one link, that link; with several,
// the one whose group holds the door, by the install's group doors.
func (s *Service) linkFor(ctx context.Context, v *Visit, live []VisitLink, lockID int64) (string, error) {
	open := func(l VisitLink) (string, error) {
		secret, err := s.box.Open(l.SecretEnc, linkAD(v.ID, l.GroupID))
		if err != nil {
			return "", fmt.Errorf("open link secret of visit %d: %w", v.ID, err)
		}
		return string(secret), nil
	}
	if len(live) == 1 {
		return open(live[0])
	}
	for _, age := range []time.Duration{doorsTTL, doorsRecheck} {
		byGroup, err := s.groupDoors(ctx, v.InstallID, age)
		if err != nil {
			return "", err
		}
		for _, l := range live {
			for _, lk := range byGroup[l.GroupID] {
				if lk.ID == lockID {
					return open(l)
				}
			}
		}
	}
	return "", latchkey.Errorf(latchkey.NotFound, "this pass does not open door %d", lockID)
}

// ignoredRecheck is how far back a mapping change looks for ignored visits
// it may now grant access, by their creation, expected arrival or sign-in:
// longer than any window a mapping gives.
const ignoredRecheck = 48 * time.Hour

// MappingChanged re-decides every open visit of a location and flow after
// its mapping was created, changed or deleted, and returns the visits whose
// sync is now due, newest first. Closed visits (revoked, expired, ignored)
// stay as they are, except ignored ones that are recent or expected (made,
// due to arrive or signed in within the last two days, or later), which a
// new mapping may now grant access.
func (s *Service) MappingChanged(ctx context.Context, locationID, flowID string) ([]VisitRef, error) {
	ids, err := s.store.openVisitIDs(ctx, locationID, flowID, s.now().Add(-ignoredRecheck))
	if err != nil {
		return nil, err
	}
	refs := make([]VisitRef, 0, len(ids))
	// A visit whose sync is still owed and not under way, and whose
	// decision the new mapping does not change, needs nothing: that sync
	// will read the mapping as it is now (this is every visit that arrived
	// since the change). One under way may have read the old mapping.
	pending := func(v *Visit, d Decision) bool {
		idle := v.SyncLeaseUntil == nil || v.SyncLeaseUntil.Before(s.opts.Now())
		return idle && v.SyncedVersion < v.Version && sameDecision(d, decisionOf(v))
	}
	for _, id := range ids {
		v, changed, err := s.changeUnless(ctx, id, "flow mapping changed", func(*Visit, *mappings.Mapping) error { return nil }, pending)
		if err != nil {
			return refs, err
		}
		if changed {
			refs = append(refs, VisitRef{ID: v.ID, Version: v.Version})
		}
	}
	return refs, nil
}
