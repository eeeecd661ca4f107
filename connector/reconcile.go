package connector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/mappings"
)

// SyncVisit makes the controller match visit id's desired state: one link per
// mapped group while the visit should have access, none otherwise. A changed
// window is updated in place where the controller can, and deleted and
// recreated where it cannot; the guest's pass URL stays the same. A link
// already gone counts as deleted. Running it twice changes nothing.
//
// It returns ErrBusy while another reconciler holds the visit, and an error
// of kind Unavailable when the controller could not be reached (retry).
func (s *Service) SyncVisit(ctx context.Context, id int64) (SyncResult, error) {
	var res SyncResult
	err := s.withLease(ctx, id, func(ctx context.Context, l *Lease) error {
		v, err := l.Visit(ctx)
		if err == nil {
			res, err = s.syncHeld(ctx, l, v)
		}
		return err
	})
	return res, err
}

// withLease runs fn while holding visit id's sync lease, renewed as fn
// works; fn's context ends if the lease is lost. It returns ErrBusy without
// running fn while another reconciler holds the visit.
func (s *Service) withLease(ctx context.Context, id int64, fn func(ctx context.Context, l *Lease) error) error {
	l, err := s.store.Acquire(ctx, id, secretbox.RandomHex(8), s.opts.Now(), s.opts.Now().Add(s.opts.SyncLease))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.SyncTimeout)
	defer cancel()
	stop := s.holdLease(ctx, cancel, l)
	defer func() {
		stop()
		if err := l.Release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("release visit", "visit_id", id, "err", err)
		}
	}()
	return fn(ctx, l)
}

// syncHeld is SyncVisit of v, read under the lease the caller holds.
func (s *Service) syncHeld(ctx context.Context, lease *Lease, v Visit) (SyncResult, error) {
	now := s.now()
	id := v.ID
	ctx, err := s.bindController(ctx, v.InstallID)
	if err != nil {
		return SyncResult{}, err
	}
	m, err := s.store.Mapping(ctx, v.InstallID, v.LocationID, v.FlowID)
	if err != nil {
		return SyncResult{}, err
	}
	d := s.decide(&v, m, now)
	links, err := s.store.Links(ctx, id)
	if err != nil {
		return SyncResult{}, err
	}
	byGroup := map[int64]*VisitLink{}
	for i := range links {
		byGroup[links[i].GroupID] = &links[i]
	}
	wanted := map[int64]bool{}
	var errs []error
	if d.Status.WantsLinks() && m != nil && !m.Credential.Person() {
		for _, g := range m.GroupIDs {
			if wanted[g] {
				continue
			}
			wanted[g] = true
			if byGroup[g] == nil {
				byGroup[g] = &VisitLink{VisitID: v.ID, GroupID: g}
			}
			if err := s.ensureLink(ctx, lease, &v, m, g, byGroup[g], d, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// A guest or member credential: the person and their role
	// assignments (person.go), made before the links of an earlier
	// credential go; while they cannot be made, the links stay.
	personErr := s.syncPerson(ctx, lease, &v, m, d, now)
	if personErr != nil {
		errs = append(errs, personErr)
	}
	for _, l := range links {
		if (l.Removed && l.Creating == "") || wanted[l.GroupID] || (personErr != nil && d.Status.WantsLinks()) {
			continue
		}
		if err := s.removeLink(ctx, lease, &v, &l, d, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if terr := s.store.AddTimeline(ctx, id, now, KindError, "controller: "+latchkey.Message(err)+"; will retry"); terr != nil {
			s.log.Warn("timeline", "visit_id", id, "err", terr)
		}
		return SyncResult{}, err
	}
	// The guest email this state owes is recorded in the same transaction
	// that marks the visit synced: a crash in between cannot leave a guest
	// with access and no email owed (the owed-email sweep finds it).
	var res SyncResult
	emailDue := ""
	if d.Status.WantsLinks() && m != nil && m.Delivery == mappings.DeliveryLatchkey && v.Email != "" {
		if k := accessKey(d); k != v.EmailedWindow {
			res.EmailKind, res.WindowKey = EmailAccess, k
			if v.EmailedWindow != "" {
				res.EmailKind = EmailUpdated
			}
			emailDue = k
		}
	}
	finished, reports, err := lease.finishSync(ctx, &v, d, emailDue, s.location(v.TimeZone), now, s.reporting())
	if err != nil {
		return SyncResult{}, err
	}
	if !finished {
		// The visit changed meanwhile (its newer version's sync owes what
		// it owes) or the lease was lost: this sync recorded no email due.
		res.EmailKind, res.WindowKey = "", ""
	}
	s.afterReports(ctx, reports...)
	res.Version, res.Status = v.Version, d.Status
	switch d.Status {
	case StatusScheduled:
		res.NextAt = d.ValidFrom
	case StatusActive:
		res.NextAt = d.ValidUntil
	}
	return res, nil
}

// holdLease renews owner's lease on visit id every third of the lease until
// stop is called. When the lease cannot be renewed in time (the database is
// unreachable, or another reconciler took the visit after a stall), it
// cancels the sync: two reconcilers must never work on one visit.
func (s *Service) holdLease(ctx context.Context, cancel context.CancelFunc, l *Lease) (stop func()) {
	id := l.visitID
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		every := s.opts.SyncLease / 3
		t := time.NewTicker(every)
		defer t.Stop()
		// held is when the lease last renewed runs out, on this process's
		// monotonic clock; the database holds the same on the service clock.
		held := time.Now().Add(s.opts.SyncLease)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if l.finishing.Load() || l.released.Load() {
				continue // being given up, or given up, with the visit marked synced
			}
			// Give up a third of the lease before it runs out, so a
			// cancelled sync stops before another reconciler may start.
			rctx, rcancel := context.WithDeadline(ctx, held.Add(-every))
			start := time.Now()
			ok, err := l.Renew(rctx, s.opts.Now().Add(s.opts.SyncLease))
			rcancel()
			switch {
			case err == nil && ok:
				held = start.Add(s.opts.SyncLease)
			case err == nil && (l.finishing.Load() || l.released.Load()):
				continue // given up by the finishing statement meanwhile
			case err == nil:
				s.log.Warn("sync lease lost; stopping this sync", "visit_id", id)
				cancel()
				return
			case time.Now().After(held.Add(-every)):
				s.log.Warn("sync lease could not be renewed; stopping this sync", "visit_id", id, "err", err)
				cancel()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// linkName names a link after the guest, then the flow in brackets, then
// the mapping's guest indicator in brackets, so the controller's audit log
// reads as the guest's own: "Ada Lovelace (Visitor) (Envoy Guest)".
func linkName(v *Visit, m *mappings.Mapping) string {
	flow := v.FlowName
	if flow == "" {
		flow = "flow " + v.FlowID
	}
	return truncateText(m.WithIndicator(visitorName(v)+" ("+flow+")"), MaxLinkNameLen)
}

// visitorName is the visitor's full name, or one made of the visit's
// source when the platform sent none.
func visitorName(v *Visit) string {
	if v.Name == "" {
		return "Visitor " + v.SourceID
	}
	return v.Name
}

func (s *Service) ensureLink(ctx context.Context, lease *Lease, v *Visit, m *mappings.Mapping, group int64, row *VisitLink, d Decision, now time.Time) error {
	spec := LinkSpec{GroupID: group, Name: linkName(v, m), ValidFrom: d.ValidFrom, ValidUntil: d.ValidUntil, Enabled: true, QRType: "online"}
	if m.Delivery == mappings.DeliveryController {
		spec.Email = v.Email
	}
	if err := s.retireLink(ctx, lease, v.ID, row); err != nil {
		return err
	}
	var old int64 // a link the new one replaces, deleted once the new one is recorded
	if row != nil && !row.Removed && row.LinkID != 0 {
		if row.ValidFrom.Equal(spec.ValidFrom) && row.ValidUntil.Equal(spec.ValidUntil) && row.Name == spec.Name {
			return nil
		}
		_, err := s.ctl(ctx).UpdateLink(ctx, row.LinkID, spec)
		switch {
		case err == nil:
			row.Name, row.ValidFrom, row.ValidUntil = spec.Name, spec.ValidFrom, spec.ValidUntil
			if err := lease.SaveLink(ctx, row); err != nil {
				return err
			}
			return s.store.AddTimeline(ctx, v.ID, now, KindLinkUpdated, fmt.Sprintf("link %d on group %d updated in place: %s", row.LinkID, group, spanText(spec, s.location(v.TimeZone))))
		case errors.Is(err, ErrUpdateUnsupported):
			// Make before break: the old link keeps the guest's access
			// until its replacement is made and recorded.
			old = row.LinkID
		case latchkey.KindOf(err) == latchkey.NotFound:
			// Gone on the controller: create it again below.
		default:
			return fmt.Errorf("update link %d: %w", row.LinkID, err)
		}
	}
	if row == nil {
		row = &VisitLink{VisitID: v.ID, GroupID: group}
	}
	var replaced int64
	if !row.Removed {
		replaced = row.LinkID
	}
	key := creationKey(spec.Name, &spec.ValidFrom, &spec.ValidUntil)
	// Each creation is named by the visit, group, link and the moment it was
	// first recorded, so a creation cut off half way is sent again under
	// its own name, and a later one never meets an earlier one's.
	at := s.opts.Now().UTC().Truncate(time.Microsecond)
	ic, idempotent := s.idempotentCreator(ctx)
	switch {
	case idempotent && row.Creating == key && row.CreatingAt != nil:
		at = *row.CreatingAt // the same creation again: the controller hands back its link
	case idempotent:
		if err := s.voidCreation(ctx, ic, v.ID, row, now); err != nil {
			return err
		}
	default:
		if err := s.settleCreation(ctx, v.ID, row, now); err != nil {
			return err
		}
	}
	if idempotent {
		spec.IdempotencyKey = idempotencyKey(v.ID, group, key, at)
	}
	row.Creating, row.CreatingAt = key, &at
	if err := lease.SaveLink(ctx, row); err != nil {
		return err
	}
	l, err := s.ctl(ctx).CreateLink(ctx, spec)
	if err != nil {
		if madeNothing(err) || errors.Is(err, ErrCreationGone) {
			row.Creating, row.CreatingAt = "", nil
			if serr := lease.SaveLink(ctx, row); serr != nil {
				return errors.Join(err, serr)
			}
		}
		// A link being replaced is still the recorded one, and still live.
		return fmt.Errorf("create link on group %d: %w", group, err)
	}
	row.LinkID, row.Name, row.ValidFrom, row.ValidUntil, row.Removed = l.ID, spec.Name, spec.ValidFrom, spec.ValidUntil, false
	row.Creating, row.CreatingAt = "", nil
	row.RetiredLinkID = old
	row.SecretEnc = s.box.Seal([]byte(l.Secret), linkAD(v.ID, group))
	row.QRToken, row.QRImage = nil, nil
	if l.QRToken != "" {
		row.QRToken = s.box.Seal([]byte(l.QRToken), linkAD(v.ID, group))
		if len(l.QRImagePNG) > 0 {
			row.QRImage = s.box.Seal(l.QRImagePNG, linkAD(v.ID, group))
		}
	}
	if err := lease.SaveLink(ctx, row); err != nil {
		if errors.Is(err, errLeaseLost) && !idempotent {
			// Another reconciler took the visit while this one stalled:
			// the link just made is nobody's; take it back. (Under an
			// idempotency key it is the one the reconciler that took over
			// gets back, with the same secret: it is left to that one.)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if derr := s.ctl(ctx).DeleteLink(dctx, l.ID); derr != nil && latchkey.KindOf(derr) != latchkey.NotFound {
				s.log.Warn("delete a link made after the sync lease was lost", "visit_id", v.ID, "link_id", l.ID, "err", derr)
			}
		}
		return err
	}
	msg := fmt.Sprintf("link %d created on group %d: %s", l.ID, group, spanText(spec, s.location(v.TimeZone)))
	kind := KindLinkCreated
	if replaced != 0 {
		kind, msg = KindLinkUpdated, fmt.Sprintf("link %d replaced by link %d on group %d (controller cannot update in place): %s", replaced, l.ID, group, spanText(spec, s.location(v.TimeZone)))
	}
	if err := s.store.AddTimeline(ctx, v.ID, now, kind, msg); err != nil {
		return err
	}
	return s.retireLink(ctx, lease, v.ID, row)
}

// retireLink deletes the link row's current one replaced (row.RetiredLinkID),
// now that the replacement is recorded, and clears the mark; a delete that
// fails is tried again by the visit's next sync.
func (s *Service) retireLink(ctx context.Context, lease *Lease, visitID int64, row *VisitLink) error {
	if row == nil || row.RetiredLinkID == 0 {
		return nil
	}
	if err := s.ctl(ctx).DeleteLink(ctx, row.RetiredLinkID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
		return fmt.Errorf("delete replaced link %d: %w", row.RetiredLinkID, err)
	}
	row.RetiredLinkID = 0
	return lease.SaveLink(ctx, row)
}

// idempotencyKey names the creation of link key for visit id on group,
// first recorded at, for a controller that recognises a create sent again.
func idempotencyKey(visitID, group int64, key string, at time.Time) string {
	h := sha256.Sum256([]byte(key))
	return fmt.Sprintf("latchkey-%d-%d-%d-%s", visitID, group, at.UnixMicro(), hex.EncodeToString(h[:12]))
}

// idempotentCreator returns the controller as an IdempotentCreator when it
// recognises creates sent again (lockctl does, Kisi does not).
func (s *Service) idempotentCreator(ctx context.Context) (IdempotentCreator, bool) {
	ic, ok := s.ctl(ctx).(IdempotentCreator)
	return ic, ok && ic.IdempotentCreates()
}

// voidCreation settles row's creation whose outcome is not known, at once:
// the controller deletes the link it made, if any, and makes none should
// the request still arrive. It clears row.Creating; the caller saves row.
func (s *Service) voidCreation(ctx context.Context, ic IdempotentCreator, visitID int64, row *VisitLink, now time.Time) error {
	if row.Creating == "" || row.CreatingAt == nil {
		row.Creating, row.CreatingAt = "", nil
		return nil
	}
	id, err := ic.VoidCreation(ctx, idempotencyKey(visitID, row.GroupID, row.Creating, *row.CreatingAt))
	if err != nil {
		return fmt.Errorf("settle an interrupted link creation on group %d: %w", row.GroupID, err)
	}
	if id != 0 && id != row.LinkID {
		if err := s.store.AddTimeline(ctx, visitID, now, KindLinkRevoked, fmt.Sprintf("link %d on group %d, left by an interrupted creation, deleted", id, row.GroupID)); err != nil {
			return err
		}
	}
	row.Creating, row.CreatingAt = "", nil
	return nil
}

// creationKey identifies the link a creation asked for by name and window.
func creationKey(name string, from, until *time.Time) string {
	key := name
	for _, t := range []*time.Time{from, until} {
		key += "|"
		if t != nil {
			key += t.UTC().Format(time.RFC3339)
		}
	}
	return key
}

// madeNothing reports whether a failed link creation certainly made no
// link: the request never reached the controller, or the controller
// answered with a refusal. A timeout or a lost answer may have made one.
func madeNothing(err error) bool {
	if errors.Is(err, ErrNotSent) {
		return true
	}
	switch latchkey.KindOf(err) {
	case latchkey.Invalid, latchkey.Unauthorized, latchkey.Forbidden, latchkey.NotFound, latchkey.Conflict, latchkey.TooMany:
		return true
	}
	return false
}

// settleCreation deals with a creation for row whose outcome is not known
// (row.Creating set): the link it made, if it shows on the controller, is
// deleted; if none shows and the creation may still complete, it fails as
// Unavailable, to be retried once it has settled. It clears row.Creating
// when done; the caller saves row.
func (s *Service) settleCreation(ctx context.Context, visitID int64, row *VisitLink, now time.Time) error {
	if row.Creating == "" {
		return nil
	}
	found, err := s.dropOrphans(ctx, visitID, row, now)
	if err != nil {
		return err
	}
	if found == 0 && row.CreatingAt != nil && s.opts.Now().Before(row.CreatingAt.Add(s.opts.CreateSettle)) {
		return latchkey.Errorf(latchkey.Unavailable, "a link creation on group %d was cut off and may still complete; retrying once it has settled", row.GroupID)
	}
	row.Creating, row.CreatingAt = "", nil
	return nil
}

// dropOrphans deletes the links an interrupted creation for row may have
// left: links of row's group that match row.Creating and that no visit
// records, and returns how many it found. A link that another visit's
// creation, under way now, may have made with the same name and window is
// left alone (and not counted): its own visit records it or settles it.
func (s *Service) dropOrphans(ctx context.Context, visitID int64, row *VisitLink, now time.Time) (int, error) {
	links, err := s.ctl(ctx).ListLinks(ctx, row.GroupID)
	if err != nil {
		return 0, fmt.Errorf("look for links left by an interrupted creation on group %d: %w", row.GroupID, err)
	}
	var ids []int64
	for _, l := range links {
		if creationKey(l.Name, l.ValidFrom, l.ValidUntil) == row.Creating {
			ids = append(ids, l.ID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	known, err := s.store.linksByControllerID(ctx, ids)
	if err != nil {
		return 0, err
	}
	if busy, err := s.store.creatingElsewhere(ctx, visitID, row.GroupID, row.Creating); err != nil || busy {
		return 0, err
	}
	found := 0
	for _, id := range ids {
		if _, ok := known[id]; ok {
			continue
		}
		found++
		if err := s.ctl(ctx).DeleteLink(ctx, id); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return found, fmt.Errorf("delete link %d left by an interrupted creation: %w", id, err)
		}
		if err := s.store.AddTimeline(ctx, visitID, now, KindLinkRevoked, fmt.Sprintf("link %d on group %d, left by an interrupted creation, deleted", id, row.GroupID)); err != nil {
			return found, err
		}
	}
	return found, nil
}

func (s *Service) removeLink(ctx context.Context, lease *Lease, v *Visit, row *VisitLink, d Decision, now time.Time) error {
	if err := s.retireLink(ctx, lease, v.ID, row); err != nil {
		return err
	}
	if row.LinkID != 0 {
		err := s.ctl(ctx).DeleteLink(ctx, row.LinkID)
		if err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("delete link %d: %w", row.LinkID, err)
		}
	}
	if ic, ok := s.idempotentCreator(ctx); ok {
		if err := s.voidCreation(ctx, ic, v.ID, row, now); err != nil {
			return err
		}
	} else if err := s.settleCreation(ctx, v.ID, row, now); err != nil {
		return err
	}
	row.Removed = true
	if err := lease.SaveLink(ctx, row); err != nil {
		return err
	}
	return s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("link %d on group %d deleted (%s)", row.LinkID, row.GroupID, d.Status))
}

// linkAD binds a sealed link secret to its visit and group.
func linkAD(visitID, group int64) []byte {
	return []byte("visit_link:" + strconv.FormatInt(visitID, 10) + ":" + strconv.FormatInt(group, 10))
}

func spanText(spec LinkSpec, loc *time.Location) string {
	return spec.ValidFrom.In(loc).Format("Mon 2 Jan 15:04") + " – " + spec.ValidUntil.In(loc).Format("Mon 2 Jan 15:04 MST")
}

// RepairDrift compares the controller's links with the stored visits: a
// link of ours that should not exist is deleted, and a link that should
// exist but is missing is created again. Links latchkey never made are left
// alone. Each visit is repaired under its sync lease, re-read after the
// lease is taken; a visit that a sync holds is left for the next repair.
func (s *Service) RepairDrift(ctx context.Context) (DriftReport, error) {
	installs, err := s.store.Installs(ctx, 1000)
	if err != nil {
		return DriftReport{}, err
	}
	ids := []string{""}
	for _, in := range installs {
		ids = append(ids, in.ID)
	}
	var rep DriftReport
	var errs []error
	for _, id := range ids {
		r, err := s.repairInstall(ctx, id)
		if err == nil {
			err = s.repairPersonRoles(ctx, id, &r) // person.go's role assignments
		}
		rep.Checked += r.Checked
		rep.Deleted += r.Deleted
		rep.Created += r.Created
		rep.Emails = append(rep.Emails, r.Emails...)
		if err != nil {
			errs = append(errs, fmt.Errorf("install %q: %w", id, err))
		}
	}
	return rep, errors.Join(errs...)
}

// repairInstall is RepairDrift for the visits of one install, against its
// own controller. The install "" also covers installs that never went
// through setup: they share the process's controller.
func (s *Service) repairInstall(ctx context.Context, install string) (DriftReport, error) {
	var rep DriftReport
	ctx, err := s.bindController(ctx, install)
	if err != nil {
		return rep, err
	}
	separate, err := s.store.Installs(ctx, 1000)
	if err != nil {
		return rep, err
	}
	own := map[string]bool{}
	for _, in := range separate {
		own[in.ID] = true
	}
	mine := func(visitInstall string) bool {
		if install == "" {
			return !own[visitInstall]
		}
		return visitInstall == install
	}
	// Link rows are stamped by this process's clock (gorm's update time),
	// so the margin is measured on the same clock.
	listed := time.Now()
	remote, err := s.ctl(ctx).ListLinks(ctx)
	if err != nil {
		return rep, fmt.Errorf("list controller links: %w", err)
	}
	rep.Checked = len(remote)
	ids := make([]int64, 0, len(remote))
	present := map[int64]bool{}
	for _, l := range remote {
		ids = append(ids, l.ID)
		present[l.ID] = true
	}
	all, err := s.store.linksByControllerID(ctx, ids)
	if err != nil {
		return rep, err
	}
	visitIDs := make([]int64, 0, len(all))
	for _, row := range all {
		visitIDs = append(visitIDs, row.VisitID)
	}
	active, err := s.store.activeLinks(ctx)
	if err != nil {
		return rep, err
	}
	for _, row := range active {
		visitIDs = append(visitIDs, row.VisitID)
	}
	installOf, err := s.store.installsOf(ctx, visitIDs)
	if err != nil {
		return rep, err
	}
	// Link ids are only unique on one controller: only this install's
	// visits are compared with its listing.
	ours := map[int64]VisitLink{}
	for id, row := range all {
		if mine(installOf[row.VisitID]) {
			ours[id] = row
		}
	}
	statuses, err := s.store.statuses(ctx, visitIDs)
	if err != nil {
		return rep, err
	}
	// Only visits that look wrong are taken (under their lease) and
	// looked at again: a live link of a visit that wants none, and a link
	// missing from a listing that began after the row was written.
	suspects := map[int64]bool{}
	for _, row := range ours {
		if row.Removed || !statuses[row.VisitID].WantsLinks() {
			suspects[row.VisitID] = true
		}
	}
	before := listed.Add(-s.opts.DriftMargin)
	for _, row := range active {
		if !mine(installOf[row.VisitID]) {
			continue
		}
		if (row.LinkID == 0 || !present[row.LinkID]) && row.UpdatedAt.Before(before) {
			suspects[row.VisitID] = true
		}
	}
	groups := map[int64]map[int64]bool{} // fresh listings of single groups, by group
	var errs []error
	for id := range suspects {
		err := s.withLease(ctx, id, func(ctx context.Context, l *Lease) error {
			return s.repairVisit(ctx, l, id, present, groups, &rep)
		})
		if err != nil && !errors.Is(err, ErrBusy) {
			errs = append(errs, fmt.Errorf("repair visit %d: %w", id, err))
		}
	}
	return rep, errors.Join(errs...)
}

// repairVisit is RepairDrift for one visit whose lease the caller holds;
// present holds the controller's link ids as listed. A link the listing
// missed is looked for again in its group (listed once per repair, in
// groups) before it is called missing: a sync may have created it while the
// listing was under way.
func (s *Service) repairVisit(ctx context.Context, lease *Lease, id int64, present map[int64]bool, groups map[int64]map[int64]bool, rep *DriftReport) error {
	v, err := lease.Visit(ctx)
	if err != nil {
		return err
	}
	links, err := s.store.Links(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	resync := false
	for _, row := range links {
		switch {
		case row.LinkID != 0 && present[row.LinkID] && (row.Removed || !v.Status.WantsLinks()):
			if err := s.ctl(ctx).DeleteLink(ctx, row.LinkID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
				return fmt.Errorf("delete stray link %d: %w", row.LinkID, err)
			}
			rep.Deleted++
			row.Removed = true
			if err := lease.SaveLink(ctx, &row); err != nil {
				return err
			}
			if err := s.store.AddTimeline(ctx, id, now, KindLinkRevoked, fmt.Sprintf("drift repair: link %d should not exist and was deleted", row.LinkID)); err != nil {
				return err
			}
		case !row.Removed && v.Status.WantsLinks() && (row.LinkID == 0 || !present[row.LinkID]):
			if row.LinkID != 0 {
				inGroup, ok := groups[row.GroupID]
				if !ok {
					fresh, err := s.ctl(ctx).ListLinks(ctx, row.GroupID)
					if err != nil {
						return fmt.Errorf("list links of group %d: %w", row.GroupID, err)
					}
					inGroup = map[int64]bool{}
					for _, l := range fresh {
						inGroup[l.ID] = true
					}
					groups[row.GroupID] = inGroup
				}
				if inGroup[row.LinkID] {
					continue
				}
			}
			row.LinkID, row.Removed = 0, true
			if err := lease.SaveLink(ctx, &row); err != nil {
				return err
			}
			if err := s.store.AddTimeline(ctx, id, now, KindError, fmt.Sprintf("drift repair: link on group %d is missing on the controller; creating it again", row.GroupID)); err != nil {
				return err
			}
			resync = true
		}
	}
	if !resync {
		return nil
	}
	return s.resyncRepaired(ctx, lease, id, rep)
}

// resyncRepaired syncs visit id again under lease after the drift repair
// found something of it to make again, and counts it in rep with the
// email the sync owes.
func (s *Service) resyncRepaired(ctx context.Context, lease *Lease, id int64, rep *DriftReport) error {
	// Read anew: a revoke may have come in during the repair's controller calls.
	v, err := s.store.Visit(ctx, id)
	if err != nil {
		return err
	}
	res, err := s.syncHeld(ctx, lease, v)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	rep.Created++
	if res.EmailKind != "" {
		rep.Emails = append(rep.Emails, EmailDue{VisitID: id, Kind: res.EmailKind, Key: res.WindowKey})
	}
	return nil
}
