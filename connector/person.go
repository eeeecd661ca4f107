package connector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/qr"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/mappings"
)

// Person credentials (mapping credential "guest" or "member"): behind a
// visit's pass sits one controller person (a guest made for the visit, or
// the user with the visitor's email) with one group role assignment per
// mapped group bounded by the visit's window. The sync keeps them as the
// decision wants, with the guarantees links have: a creation is recorded
// before it is asked for, so one cut off is voided (or found and deleted)
// on the next sync; a changed window is updated in place where the
// controller can, and otherwise made before the old access is broken; a
// visit that wants no access loses its role assignments at once, and its
// person once no access of theirs remains.

// personKindOf is the person a mapping's credential gives.
func personKindOf(c mappings.Credential) PersonKind {
	if c == mappings.CredentialMember {
		return PersonMember
	}
	return PersonGuest
}

// personAccess returns the visit's controller as a PersonAccess.
func (s *Service) personAccess(ctx context.Context) (PersonAccess, error) {
	pa, ok := s.ctl(ctx).(PersonAccess)
	if !ok {
		return nil, latchkey.Errorf(latchkey.Unavailable, "this controller cannot give access to people")
	}
	return pa, nil
}

// personAD binds a sealed person credential to its visit.
func personAD(visitID int64) []byte {
	return []byte("visit_person:" + strconv.FormatInt(visitID, 10))
}

// personKey names a person or role creation for a controller that
// recognises a create sent again.
func personKey(visitID int64, what, key string, at time.Time) string {
	return idempotencyKey(visitID, 0, what+"|"+key, at)
}

// syncPerson makes the controller's person access for visit v match
// decision d under mapping m: wanted, the person and a role assignment per
// mapped group with d's window; not wanted, none. Visits whose mapping
// gives links and that never had a person cost one read.
func (s *Service) syncPerson(ctx context.Context, lease *Lease, v *Visit, m *mappings.Mapping, d Decision, now time.Time) error {
	want := d.Status.WantsLinks() && m != nil && m.Credential.Person()
	p, err := s.store.visitPerson(ctx, v.ID)
	if err != nil {
		return err
	}
	if !want && (p == nil || (p.Removed && p.Creating == "" && p.RetiredID == 0)) {
		return nil
	}
	pa, err := s.personAccess(ctx)
	if err != nil {
		return err
	}
	roles, err := s.store.Roles(ctx, v.ID)
	if err != nil {
		return err
	}
	byGroup := map[int64]*VisitRole{}
	for i := range roles {
		byGroup[roles[i].GroupID] = &roles[i]
	}
	if p != nil && p.live() && want && p.Kind != personKindOf(m.Credential) {
		// The mapping's credential changed: the old person goes first.
		if err := s.removePersonAccess(ctx, pa, lease, v, p, byGroup, nil, true, d, now); err != nil {
			return err
		}
	}
	if !want {
		return s.removePersonAccess(ctx, pa, lease, v, p, byGroup, nil, true, d, now)
	}
	if p == nil {
		p = &VisitPerson{VisitID: v.ID}
	}
	kind := personKindOf(m.Credential)
	if kind == PersonMember && v.Email == "" {
		return latchkey.Errorf(latchkey.Invalid, "a member needs an email, and this visitor has none")
	}
	wanted := map[int64]bool{}
	var groups []int64
	for _, g := range m.GroupIDs {
		if !wanted[g] {
			wanted[g] = true
			groups = append(groups, g)
		}
	}
	spec := func(g int64) RoleSpec {
		return RoleSpec{GroupID: g, ValidFrom: d.ValidFrom, ValidUntil: d.ValidUntil, Notify: m.Delivery == mappings.DeliveryController}
	}
	// A window the controller cannot change in place: a guest is replaced
	// by a new one holding the new window (made before the old one is
	// deleted); a member, who is one user per email and holds one role per
	// group, has the role deleted and made again.
	if p.live() && p.RetiredID == 0 {
		for _, g := range groups {
			r := byGroup[g]
			if kind == PersonMember || r == nil || r.Removed || r.AssignmentID == 0 || r.PersonID != p.PersonID || sameWindow(r, d) {
				continue // a member's role is shared by their visits: ensureMemberRole
			}
			err := pa.UpdateRole(ctx, r.AssignmentID, spec(g))
			switch {
			case err == nil:
				r.ValidFrom, r.ValidUntil = d.ValidFrom, d.ValidUntil
				if err := lease.saveRole(ctx, r); err != nil {
					return err
				}
				if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkUpdated, fmt.Sprintf("role assignment %d on group %d updated in place: %s", r.AssignmentID, g, s.windowText(v, d))); err != nil {
					return err
				}
			case errors.Is(err, ErrUpdateUnsupported) && kind == PersonGuest:
				// The old guest's access key stays the pass's credential
				// until the new guest's is recorded.
				p.RetiredID, p.PersonID = p.PersonID, 0
				if err := lease.savePerson(ctx, p); err != nil {
					return err
				}
			case errors.Is(err, ErrUpdateUnsupported):
				if err := pa.DeleteRole(ctx, r.AssignmentID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
					return fmt.Errorf("delete role assignment %d to replace it: %w", r.AssignmentID, err)
				}
				if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkUpdated, fmt.Sprintf("role assignment %d on group %d deleted to be made again with the new window (controller cannot update in place)", r.AssignmentID, g)); err != nil {
					return err
				}
				r.AssignmentID = 0
				if err := lease.saveRole(ctx, r); err != nil {
					return err
				}
			case latchkey.KindOf(err) == latchkey.NotFound:
				r.AssignmentID = 0
				if err := lease.saveRole(ctx, r); err != nil {
					return err
				}
			default:
				return fmt.Errorf("update role assignment %d: %w", r.AssignmentID, err)
			}
			if p.RetiredID != 0 {
				break
			}
		}
	}
	if !p.live() || p.Kind != kind {
		if err := s.ensurePerson(ctx, pa, lease, v, m, p, kind, groups[0], spec(groups[0]), byGroup, now); err != nil {
			return err
		}
	}
	if kind == PersonMember && (p.LoginID == 0 || len(p.SecretEnc) == 0) {
		if err := s.ensureLogin(ctx, pa, lease, v, p, now); err != nil {
			return err
		}
	}
	var errs []error
	for _, g := range groups {
		if byGroup[g] == nil {
			byGroup[g] = &VisitRole{VisitID: v.ID, GroupID: g}
		}
		ensure := s.ensureRole
		if kind == PersonMember {
			ensure = s.ensureMemberRole
		}
		if err := ensure(ctx, pa, lease, v, p, byGroup[g], spec(g), d, now); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.removePersonAccess(ctx, pa, lease, v, p, byGroup, wanted, false, d, now); err != nil {
		return err
	}
	if p.RetiredID != 0 {
		// The replacement holds every role: the old guest goes.
		if err := pa.DeletePerson(ctx, PersonRef{Kind: PersonGuest, ID: p.RetiredID}); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("delete replaced guest %d: %w", p.RetiredID, err)
		}
		if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkUpdated, fmt.Sprintf("guest %d replaced by guest %d (controller cannot update role assignments in place): %s", p.RetiredID, p.PersonID, s.windowText(v, d))); err != nil {
			return err
		}
		p.RetiredID = 0
		return lease.savePerson(ctx, p)
	}
	return nil
}

func sameWindow(r *VisitRole, d Decision) bool {
	return r.ValidFrom.Equal(d.ValidFrom) && r.ValidUntil.Equal(d.ValidUntil)
}

func (s *Service) windowText(v *Visit, d Decision) string {
	return spanText(LinkSpec{ValidFrom: d.ValidFrom, ValidUntil: d.ValidUntil}, s.location(v.TimeZone))
}

// ensurePerson makes the visit's person: a guest invited onto the first
// group (its role row recorded with it), or the user with the visitor's
// email, found or created.
func (s *Service) ensurePerson(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, m *mappings.Mapping, p *VisitPerson, kind PersonKind, first int64, spec RoleSpec, byGroup map[int64]*VisitRole, now time.Time) error {
	name := truncateText(m.WithIndicator(visitorName(v)), MaxLinkNameLen)
	if err := s.settlePerson(ctx, pa, lease, v, p, now); err != nil {
		return err
	}
	at := s.opts.Now().UTC().Truncate(time.Microsecond)
	if kind == PersonMember {
		u, found, err := pa.FindUser(ctx, v.Email)
		if err != nil {
			return fmt.Errorf("find the user %s: %w", v.Email, err)
		}
		created := false
		if found {
			// A user latchkey made for another visit of theirs is latchkey's
			// to remove, with the last visit that needs them.
			if created, err = s.store.memberMadeByUs(ctx, u.ID); err != nil {
				return err
			}
		} else {
			p.Creating, p.CreatingAt = "user", &at
			if err := lease.savePerson(ctx, p); err != nil {
				return err
			}
			if u, err = pa.CreateUser(ctx, name, v.Email); err != nil {
				return fmt.Errorf("create the user: %w", err)
			}
			created = true
		}
		*p = VisitPerson{ID: p.ID, VisitID: v.ID, Kind: PersonMember, PersonID: u.ID, Created: created, Email: v.Email, CreatedAt: p.CreatedAt}
		if err := lease.savePerson(ctx, p); err != nil {
			return err
		}
		what := "user %d (%s) found"
		if created {
			what = "user %d (%s) created"
		}
		return s.store.AddTimeline(ctx, v.ID, now, KindLinkCreated, fmt.Sprintf(what, u.ID, v.Email))
	}
	// The nonce keeps a later creation of the same guest and window (after
	// a deletion) from meeting this one's spent idempotency key.
	key := creationKey(name, &spec.ValidFrom, &spec.ValidUntil) + "|" + secretbox.RandomHex(4)
	p.Kind, p.Creating, p.CreatingAt, p.CreatingGroup = PersonGuest, key, &at, first
	if err := lease.savePerson(ctx, p); err != nil {
		return err
	}
	spec.IdempotencyKey = personKey(v.ID, "guest", key, at)
	grant, err := pa.InviteGuest(ctx, GuestSpec{Name: name, Email: v.Email, Role: spec, QR: true})
	if err != nil {
		if madeNothing(err) || errors.Is(err, ErrCreationGone) {
			p.Creating, p.CreatingAt, p.CreatingGroup = "", nil, 0
			if serr := lease.savePerson(ctx, p); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return fmt.Errorf("invite the guest to group %d: %w", first, err)
	}
	p.PersonID, p.Created, p.Removed, p.Email = grant.Guest.ID, true, false, v.Email
	p.Creating, p.CreatingAt, p.CreatingGroup = "", nil, 0
	p.SecretEnc, p.QRToken, p.QRImage = nil, nil, nil
	if grant.Secret != "" {
		p.SecretEnc = s.box.Seal([]byte(grant.Secret), personAD(v.ID))
	}
	if grant.QRToken != "" {
		p.QRToken = s.box.Seal([]byte(grant.QRToken), personAD(v.ID))
		if len(grant.QRImagePNG) > 0 {
			p.QRImage = s.box.Seal(grant.QRImagePNG, personAD(v.ID))
		}
	}
	if err := lease.savePerson(ctx, p); err != nil {
		return err
	}
	if grant.Secret == "" {
		// Real Kisi keeps the access key to itself: the guest's key is
		// the one Kisi sends them, if it was asked to.
		kind, msg := KindLinkCreated, fmt.Sprintf("the controller keeps guest %d's access key and sends it to the guest itself; the pass lists the doors but cannot open them", grant.Guest.ID)
		if !spec.Notify {
			kind, msg = KindError, fmt.Sprintf("the controller keeps guest %d's access key and was not asked to send it (the mapping's delivery is latchkey): the guest holds no key and the pass cannot open doors; set the mapping's delivery to controller", grant.Guest.ID)
		}
		if err := s.store.AddTimeline(ctx, v.ID, now, kind, msg); err != nil {
			return err
		}
	}
	r := byGroup[first]
	if r == nil {
		r = &VisitRole{VisitID: v.ID, GroupID: first}
		byGroup[first] = r
	}
	r.AssignmentID, r.PersonID, r.ValidFrom, r.ValidUntil, r.Removed = grant.Role.ID, grant.Guest.ID, spec.ValidFrom, spec.ValidUntil, false
	r.Creating, r.CreatingAt = "", nil
	if err := lease.saveRole(ctx, r); err != nil {
		return err
	}
	return s.store.AddTimeline(ctx, v.ID, now, KindLinkCreated, fmt.Sprintf("guest %d (%s) created with role assignment %d on group %d: %s", grant.Guest.ID, name, grant.Role.ID, first, s.windowText(v, Decision{ValidFrom: spec.ValidFrom, ValidUntil: spec.ValidUntil})))
}

// loginCreating starts a member row's Creating while a login for the
// pass is being made; the rest is the login's name, unique to the
// creation.
const loginCreating = "login|"

// creatingLogin reports whether p records a login creation under way.
func (p *VisitPerson) creatingLogin() bool {
	return p.Kind == PersonMember && strings.HasPrefix(p.Creating, loginCreating)
}

// ensureLogin makes the login whose secret is the member's pass
// credential. The creation is recorded before it is asked for, under a
// name of its own, so a login a cut-off creation made is found by that
// name and deleted (settleLogin) instead of living on unknown.
func (s *Service) ensureLogin(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, now time.Time) error {
	if err := s.settleLogin(ctx, pa, lease, v, p, now); err != nil {
		return err
	}
	if p.LoginID != 0 {
		// A login whose secret was not kept opens nothing for the pass.
		if err := pa.DeleteLogin(ctx, p.LoginID); err != nil {
			return fmt.Errorf("delete login %d of user %d: %w", p.LoginID, p.PersonID, err)
		}
		p.LoginID = 0
	}
	at := s.opts.Now().UTC().Truncate(time.Microsecond)
	name := truncateText(fmt.Sprintf("latchkey pass, visit %d (%s)", v.ID, secretbox.RandomHex(4)), 100)
	p.Creating, p.CreatingAt = loginCreating+name, &at
	if err := lease.savePerson(ctx, p); err != nil {
		return err
	}
	l, err := pa.CreateLogin(ctx, p.Email, name)
	if err != nil {
		if madeNothing(err) {
			p.Creating, p.CreatingAt = "", nil
			if serr := lease.savePerson(ctx, p); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return fmt.Errorf("create a login for user %d: %w", p.PersonID, err)
	}
	p.LoginID, p.SecretEnc = l.ID, s.box.Seal([]byte(l.Secret), personAD(v.ID))
	p.Creating, p.CreatingAt = "", nil
	return lease.savePerson(ctx, p)
}

// settleLogin deals with a login creation for member p whose outcome is
// not known: the user's logins of the creation's name are deleted; when
// none shows and the creation may still complete, it fails as
// Unavailable, to be retried once it has settled.
func (s *Service) settleLogin(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, now time.Time) error {
	if !p.creatingLogin() || p.CreatingAt == nil {
		return nil
	}
	name := strings.TrimPrefix(p.Creating, loginCreating)
	ls, err := pa.ListLogins(ctx, p.PersonID)
	if err != nil {
		return fmt.Errorf("look for a login left by an interrupted creation for user %d: %w", p.PersonID, err)
	}
	found := 0
	for _, l := range ls {
		if l.Name != name || l.ID == p.LoginID {
			continue
		}
		found++
		if err := pa.DeleteLogin(ctx, l.ID); err != nil {
			return fmt.Errorf("delete login %d left by an interrupted creation: %w", l.ID, err)
		}
		if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("login %d of user %d, left by an interrupted creation, deleted", l.ID, p.PersonID)); err != nil {
			return err
		}
	}
	if found == 0 && s.opts.Now().Before(p.CreatingAt.Add(s.opts.CreateSettle)) {
		return latchkey.Errorf(latchkey.Unavailable, "a login creation for user %d was cut off and may still complete; retrying once it has settled", p.PersonID)
	}
	p.Creating, p.CreatingAt = "", nil
	return lease.savePerson(ctx, p)
}

// settlePerson deals with a person creation whose outcome is not known
// (p.Creating set): a guest invite under its idempotency key is voided and
// the guest it made deleted; a user whose creation was cut off is taken
// as made by latchkey when it shows. Without idempotency keys a guest
// invite may have left a guest nobody knows; the drift repair removes its
// role assignments once the creation has settled.
func (s *Service) settlePerson(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, now time.Time) error {
	if p.Creating == "" || p.CreatingAt == nil {
		return nil
	}
	if p.creatingLogin() {
		return s.settleLogin(ctx, pa, lease, v, p, now)
	}
	if p.Creating == "user" {
		u, found, err := pa.FindUser(ctx, v.Email)
		if err != nil {
			return fmt.Errorf("find the user %s: %w", v.Email, err)
		}
		if found {
			*p = VisitPerson{ID: p.ID, VisitID: v.ID, Kind: PersonMember, PersonID: u.ID, Created: true, Email: v.Email, CreatedAt: p.CreatedAt}
		}
		p.Creating, p.CreatingAt = "", nil
		return lease.savePerson(ctx, p)
	}
	if _, ok := s.idempotentCreator(ctx); ok {
		ra, found, err := pa.VoidRole(ctx, personKey(v.ID, "guest", p.Creating, *p.CreatingAt))
		if err != nil {
			return fmt.Errorf("settle an interrupted guest invite: %w", err)
		}
		if found && ra.Person.ID != 0 {
			if err := pa.DeletePerson(ctx, ra.Person); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
				return fmt.Errorf("delete guest %d left by an interrupted invite: %w", ra.Person.ID, err)
			}
			if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("guest %d, left by an interrupted invite, deleted", ra.Person.ID)); err != nil {
				return err
			}
		}
	} else {
		found, err := s.dropOrphanGuests(ctx, pa, v, p, now)
		if err != nil {
			return err
		}
		if found == 0 && s.opts.Now().Before(p.CreatingAt.Add(s.opts.CreateSettle)) {
			return latchkey.Errorf(latchkey.Unavailable, "a guest invite was cut off and may still complete; retrying once it has settled")
		}
	}
	p.Creating, p.CreatingAt, p.CreatingGroup = "", nil, 0
	return lease.savePerson(ctx, p)
}

// dropOrphanGuests deletes the guests an interrupted invite for p may have
// left, on a controller without idempotency keys: guests holding a role on
// the invite's group whose name and window match p.Creating and that no
// visit records. One another visit's invite, under way now, may have made
// is left to that visit.
func (s *Service) dropOrphanGuests(ctx context.Context, pa PersonAccess, v *Visit, p *VisitPerson, now time.Time) (int, error) {
	if p.CreatingGroup == 0 {
		return 0, nil
	}
	ras, err := pa.ListRoles(ctx, RoleFilter{GroupID: p.CreatingGroup})
	if err != nil {
		return 0, fmt.Errorf("look for a guest left by an interrupted invite on group %d: %w", p.CreatingGroup, err)
	}
	if busy, err := s.store.guestCreatingElsewhere(ctx, v.ID, p.Creating); err != nil || busy {
		return 0, err
	}
	found := 0
	for _, ra := range ras {
		if ra.Person.Kind != PersonGuest || !strings.HasPrefix(p.Creating, creationKey(ra.PersonName, ra.ValidFrom, ra.ValidUntil)+"|") {
			continue
		}
		if known, err := s.store.personKnown(ctx, ra.Person); err != nil || known {
			if err != nil {
				return found, err
			}
			continue
		}
		found++
		if err := pa.DeletePerson(ctx, ra.Person); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return found, fmt.Errorf("delete guest %d left by an interrupted invite: %w", ra.Person.ID, err)
		}
		if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("guest %d, left by an interrupted invite, deleted", ra.Person.ID)); err != nil {
			return found, err
		}
	}
	return found, nil
}

// ensureRole makes row's group role assignment for the visit's person
// with spec's window (its window is already right, or was updated, when
// the row holds one of this person).
func (s *Service) ensureRole(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, row *VisitRole, spec RoleSpec, d Decision, now time.Time) error {
	if !row.Removed && row.AssignmentID != 0 && row.PersonID == p.PersonID && row.Creating == "" {
		if sameWindow(row, d) {
			return nil
		}
	}
	spec.Person = p.ref()
	base := creationKey("role "+strconv.FormatInt(p.PersonID, 10), &spec.ValidFrom, &spec.ValidUntil) + "|"
	key := base + secretbox.RandomHex(4) // a nonce, as for a guest invite
	at := s.opts.Now().UTC().Truncate(time.Microsecond)
	_, idempotent := s.idempotentCreator(ctx)
	switch {
	case idempotent && strings.HasPrefix(row.Creating, base) && row.CreatingAt != nil:
		// The same creation again: the controller hands back its role
		// assignment.
		key, at = row.Creating, *row.CreatingAt
	default:
		if err := s.settleRole(ctx, pa, v, p, row, now); err != nil {
			return err
		}
	}
	if row.AssignmentID != 0 && !row.Removed && row.PersonID == p.PersonID {
		if err := pa.UpdateRole(ctx, row.AssignmentID, spec); err == nil {
			row.ValidFrom, row.ValidUntil = spec.ValidFrom, spec.ValidUntil
			return lease.saveRole(ctx, row)
		} else if latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("update role assignment %d: %w", row.AssignmentID, err)
		}
	}
	if idempotent {
		spec.IdempotencyKey = personKey(v.ID, "role "+strconv.FormatInt(row.GroupID, 10), key, at)
	}
	row.Creating, row.CreatingAt = key, &at
	if err := lease.saveRole(ctx, row); err != nil {
		return err
	}
	ra, err := pa.CreateRole(ctx, spec)
	if err != nil {
		if madeNothing(err) || errors.Is(err, ErrCreationGone) {
			row.Creating, row.CreatingAt = "", nil
			if serr := lease.saveRole(ctx, row); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return fmt.Errorf("create a role assignment on group %d: %w", row.GroupID, err)
	}
	row.AssignmentID, row.PersonID, row.ValidFrom, row.ValidUntil, row.Removed = ra.ID, p.PersonID, spec.ValidFrom, spec.ValidUntil, false
	row.Creating, row.CreatingAt = "", nil
	if err := lease.saveRole(ctx, row); err != nil {
		return err
	}
	return s.store.AddTimeline(ctx, v.ID, now, KindLinkCreated, fmt.Sprintf("role assignment %d created on group %d for %s %d: %s", ra.ID, row.GroupID, p.Kind, p.PersonID, s.windowText(v, d)))
}

// settleRole deals with a role creation for row whose outcome is not
// known: voided under its idempotency key, or, without keys, any role of
// the person on the group that the row does not record is deleted (the
// person holds one role per group, and it is the visit's).
func (s *Service) settleRole(ctx context.Context, pa PersonAccess, v *Visit, p *VisitPerson, row *VisitRole, now time.Time) error {
	if row.Creating == "" || row.CreatingAt == nil {
		row.Creating, row.CreatingAt = "", nil
		return nil
	}
	var left []int64
	if _, ok := s.idempotentCreator(ctx); ok {
		ra, found, err := pa.VoidRole(ctx, personKey(v.ID, "role "+strconv.FormatInt(row.GroupID, 10), row.Creating, *row.CreatingAt))
		if err != nil {
			return fmt.Errorf("settle an interrupted role assignment creation on group %d: %w", row.GroupID, err)
		}
		if found && ra.ID != row.AssignmentID {
			left = append(left, ra.ID)
		}
	} else {
		ref := p.ref()
		ras, err := pa.ListRoles(ctx, RoleFilter{Person: &ref, GroupID: row.GroupID})
		if err != nil {
			return fmt.Errorf("look for a role assignment left by an interrupted creation on group %d: %w", row.GroupID, err)
		}
		for _, ra := range ras {
			if ra.ID == row.AssignmentID {
				continue
			}
			if err := pa.DeleteRole(ctx, ra.ID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
				return fmt.Errorf("delete role assignment %d left by an interrupted creation: %w", ra.ID, err)
			}
			left = append(left, ra.ID)
		}
		if len(left) == 0 && s.opts.Now().Before(row.CreatingAt.Add(s.opts.CreateSettle)) {
			return latchkey.Errorf(latchkey.Unavailable, "a role assignment creation on group %d was cut off and may still complete; retrying once it has settled", row.GroupID)
		}
	}
	for _, id := range left {
		if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("role assignment %d on group %d, left by an interrupted creation, deleted", id, row.GroupID)); err != nil {
			return err
		}
	}
	row.Creating, row.CreatingAt = "", nil
	return nil
}

// removePersonAccess deletes the visit's role assignments on groups not in
// keep and, with person set, the person: a guest at once, a member's
// login, and the member once no access of theirs remains and no other
// visit names them, if latchkey made them. A member's role on a group
// that another visit of theirs still wants is narrowed to that visit's
// window instead of deleted.
func (s *Service) removePersonAccess(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, byGroup map[int64]*VisitRole, keep map[int64]bool, person bool, d Decision, now time.Time) error {
	for _, r := range byGroup {
		if keep[r.GroupID] || (r.Removed && r.Creating == "") {
			continue
		}
		if p != nil && p.Kind == PersonMember && r.PersonID != 0 {
			r.Removed = true
			if err := lease.saveRole(ctx, r); err != nil {
				return err
			}
			if err := s.applyMemberRole(ctx, pa, lease, v, p, r, false, d, now); err != nil {
				return err
			}
			continue
		}
		if r.AssignmentID != 0 && !r.Removed {
			if err := pa.DeleteRole(ctx, r.AssignmentID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
				return fmt.Errorf("delete role assignment %d: %w", r.AssignmentID, err)
			}
		}
		if r.Creating != "" && p.live() {
			if err := s.settleRole(ctx, pa, v, p, r, now); err != nil {
				return err
			}
		}
		r.Creating, r.CreatingAt, r.Removed = "", nil, true
		if err := lease.saveRole(ctx, r); err != nil {
			return err
		}
		if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("role assignment %d on group %d deleted (%s)", r.AssignmentID, r.GroupID, d.Status)); err != nil {
			return err
		}
	}
	if p == nil || !person {
		return nil
	}
	if err := s.settlePerson(ctx, pa, lease, v, p, now); err != nil {
		return err
	}
	if p.RetiredID != 0 {
		if err := pa.DeletePerson(ctx, PersonRef{Kind: PersonGuest, ID: p.RetiredID}); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("delete replaced guest %d: %w", p.RetiredID, err)
		}
		p.RetiredID = 0
	}
	if p.live() {
		if err := s.removePerson(ctx, pa, v, p, now); err != nil {
			return err
		}
	}
	p.Removed, p.SecretEnc, p.QRToken, p.QRImage, p.LoginID = true, nil, nil, nil, 0
	return lease.savePerson(ctx, p)
}

// removePerson deletes the visit's person on the controller, as far as it
// is the visit's to delete.
func (s *Service) removePerson(ctx context.Context, pa PersonAccess, v *Visit, p *VisitPerson, now time.Time) error {
	if p.Kind == PersonMember && p.LoginID != 0 {
		if err := pa.DeleteLogin(ctx, p.LoginID); err != nil {
			return fmt.Errorf("delete login %d of user %d: %w", p.LoginID, p.PersonID, err)
		}
	}
	if p.Kind == PersonMember {
		if !p.Created {
			return nil // the user was there before the visit: only its access goes
		}
		shared, err := s.store.personShared(ctx, v.ID, p.ref())
		if err != nil || shared {
			return err
		}
		ref := p.ref()
		left, err := pa.ListRoles(ctx, RoleFilter{Person: &ref})
		if err != nil {
			return fmt.Errorf("role assignments of user %d: %w", p.PersonID, err)
		}
		if len(left) > 0 {
			return nil // access of theirs remains
		}
	}
	if err := pa.DeletePerson(ctx, p.ref()); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
		return fmt.Errorf("delete %s %d: %w", p.Kind, p.PersonID, err)
	}
	return s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("%s %d deleted", p.Kind, p.PersonID))
}

// personCredential returns the credential of visit v's person, found false
// when the visit has no live person with one.
func (s *Service) personCredential(ctx context.Context, v *Visit) (PersonCredential, bool, error) {
	c, ok, _, err := s.personHolds(ctx, v)
	return c, ok, err
}

// personHolds reads visit v's person once and returns its credential
// (found false when it has no live one) and, when it has none, whether it
// is a guest whose key the controller kept (see ErrKeyWithGuest).
func (s *Service) personHolds(ctx context.Context, v *Visit) (c PersonCredential, found, keyWithGuest bool, err error) {
	p, err := s.store.visitPerson(ctx, v.ID)
	if err != nil {
		return PersonCredential{}, false, false, err
	}
	if p == nil || p.Removed || len(p.SecretEnc) == 0 || (p.PersonID == 0 && p.RetiredID == 0) {
		return PersonCredential{}, false, guestKeptKey(p), nil // (a guest being replaced: the old one's)
	}
	secret, err := s.box.Open(p.SecretEnc, personAD(v.ID))
	if err != nil {
		return PersonCredential{}, false, false, fmt.Errorf("open the person credential of visit %d: %w", v.ID, err)
	}
	return PersonCredential{Kind: p.Kind, Secret: string(secret)}, true, false, nil
}

// ErrKeyWithGuest refuses an unlock through the pass of a guest whose
// access key the controller keeps to itself: Kisi's invite answer carries
// no access key secret (plugin-and-members.md B6), and Kisi sends the key
// to the guest (delivery controller), so only that key opens the doors.
var ErrKeyWithGuest = &latchkey.Error{Kind: latchkey.Forbidden, Msg: "the door system sent this guest their own key; this pass cannot open doors"}

// keyWithGuest reports whether visit v's person is a guest whose access
// key the controller did not hand to latchkey (see ErrKeyWithGuest).
func (s *Service) keyWithGuest(ctx context.Context, v *Visit) (bool, error) {
	p, err := s.store.visitPerson(ctx, v.ID)
	if err != nil {
		return false, err
	}
	return guestKeptKey(p), nil
}

// guestKeptKey reports whether p is a live guest whose access key the
// controller did not hand to latchkey.
func guestKeptKey(p *VisitPerson) bool {
	return p.live() && p.Kind == PersonGuest && p.RetiredID == 0 && len(p.SecretEnc) == 0
}

// personDoors lists the doors visit v's person may open, asked of the
// controller with the person's own credential; handled false when the
// visit has no person. A guest whose key the controller kept has no
// credential here: their doors are those of the groups the visit holds a
// role on (the pass lists them and says the key was sent separately).
func (s *Service) personDoors(ctx context.Context, v *Visit) (doors []Door, handled bool, err error) {
	c, ok, held, err := s.personHolds(ctx, v)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		if !held {
			return nil, false, nil
		}
		return s.roleDoors(ctx, v)
	}
	pa, err := s.personAccess(ctx)
	if err != nil {
		return nil, true, err
	}
	locks, err := pa.PersonLocks(ctx, c)
	if err != nil {
		return nil, true, fmt.Errorf("doors of the visit's %s: %w", c.Kind, err)
	}
	mine, err := s.visitDoors(ctx, v, doorsTTL)
	if err != nil {
		return nil, true, err
	}
	for _, lk := range locks {
		if rs := mine[lk.ID]; len(rs) > 0 {
			doors = append(doors, Door{LockID: lk.ID, Name: lk.Name, Online: lk.Online, LockedDown: lk.LockedDown, GroupID: rs[0].GroupID})
		}
	}
	return doors, true, nil
}

// roleDoors lists the doors of the groups visit v holds a role on, from
// the install's group doors.
func (s *Service) roleDoors(ctx context.Context, v *Visit) ([]Door, bool, error) {
	roles, err := s.store.Roles(ctx, v.ID)
	if err != nil {
		return nil, true, err
	}
	byGroup, err := s.groupDoors(ctx, v.InstallID, doorsTTL)
	if err != nil {
		return nil, true, err
	}
	var doors []Door
	seen := map[int64]bool{}
	for _, r := range roles {
		if r.Removed || r.AssignmentID == 0 {
			continue
		}
		for _, lk := range byGroup[r.GroupID] {
			if !seen[lk.ID] {
				seen[lk.ID] = true
				doors = append(doors, Door{LockID: lk.ID, Name: lk.Name, Online: lk.Online, LockedDown: lk.LockedDown, GroupID: r.GroupID})
			}
		}
	}
	return doors, true, nil
}

// visitDoors returns the doors of the groups visit v holds a role on, each
// with the role (its group and the visit's own window), from a group-doors
// listing at most maxAge old. A person's credential may open more (a
// member's own roles, another visit's window): the pass opens only these.
func (s *Service) visitDoors(ctx context.Context, v *Visit, maxAge time.Duration) (map[int64][]VisitRole, error) {
	roles, err := s.store.Roles(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	byGroup, err := s.groupDoors(ctx, v.InstallID, maxAge)
	if err != nil {
		return nil, err
	}
	out := map[int64][]VisitRole{}
	for _, r := range roles {
		if r.Removed || r.AssignmentID == 0 {
			continue
		}
		for _, lk := range byGroup[r.GroupID] {
			out[lk.ID] = append(out[lk.ID], r)
		}
	}
	return out, nil
}

// personMayOpen refuses lockID unless a role of visit v on a group that
// holds the door is valid now by the visit's own window: what the
// controller checks for a link, latchkey checks for a person, whose role
// may be shared with the person's other visits or whose credential opens
// more.
func (s *Service) personMayOpen(ctx context.Context, v *Visit, lockID int64) error {
	now := s.opts.Now().UTC()
	for _, age := range []time.Duration{doorsTTL, doorsRecheck} {
		mine, err := s.visitDoors(ctx, v, age)
		if err != nil {
			return err
		}
		roles := mine[lockID]
		if len(roles) == 0 {
			continue
		}
		early := false
		for _, r := range roles {
			switch {
			case now.Before(r.ValidFrom):
				early = true
			case now.Before(r.ValidUntil):
				return nil
			}
		}
		if early {
			return latchkey.Wrap(latchkey.Forbidden, "access has not started yet",
				&ControllerError{Message: "access has not started yet", Refusal: RefusedNotStarted})
		}
		return latchkey.Wrap(latchkey.Forbidden, "access has ended",
			&ControllerError{Message: "access has ended", Refusal: RefusedEnded})
	}
	return latchkey.Errorf(latchkey.NotFound, "this pass does not open door %d", lockID)
}

// personUnlock unlocks lockID with visit v's person credential; handled
// false when the visit has no person.
func (s *Service) personUnlock(ctx context.Context, v *Visit, lockID int64) (handled bool, err error) {
	c, ok, held, err := s.personHolds(ctx, v)
	if err != nil {
		return false, err
	}
	if !ok {
		if !held {
			return false, nil
		}
		return true, ErrKeyWithGuest
	}
	if err := s.personMayOpen(ctx, v, lockID); err != nil {
		return true, err
	}
	pa, err := s.personAccess(ctx)
	if err != nil {
		return true, err
	}
	return true, pa.PersonUnlock(ctx, c, lockID)
}

// personQR returns the reader QR token (and PNG) of visit v's guest, if
// any.
func (s *Service) personQR(ctx context.Context, v *Visit) (string, []byte, bool, error) {
	p, err := s.store.visitPerson(ctx, v.ID)
	if err != nil || !p.live() || len(p.QRToken) == 0 {
		return "", nil, false, err
	}
	tok, err := s.box.Open(p.QRToken, personAD(v.ID))
	if err != nil {
		return "", nil, false, fmt.Errorf("open QR token of visit %d: %w", v.ID, err)
	}
	var png []byte
	if len(p.QRImage) > 0 {
		if png, err = s.box.Open(p.QRImage, personAD(v.ID)); err != nil {
			return "", nil, false, fmt.Errorf("open QR image of visit %d: %w", v.ID, err)
		}
	} else if png, err = qr.PNG(string(tok), 256); err != nil {
		return "", nil, false, err
	}
	return string(tok), png, true, nil
}

// ensureMemberRole gives the member the visit's window on row's group. A
// user holds one role per group, so the visits of one member share it
// (memberWindow); each row keeps its own visit's window.
func (s *Service) ensureMemberRole(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, row *VisitRole, spec RoleSpec, d Decision, now time.Time) error {
	if !row.Removed && row.PersonID == p.PersonID && row.AssignmentID != 0 && sameWindow(row, d) {
		return nil
	}
	row.PersonID, row.ValidFrom, row.ValidUntil, row.Removed = p.PersonID, d.ValidFrom, d.ValidUntil, false
	row.Creating, row.CreatingAt = "", nil
	if err := lease.saveRole(ctx, row); err != nil {
		return err
	}
	return s.applyMemberRole(ctx, pa, lease, v, p, row, spec.Notify, d, now)
}

// applyMemberRole makes the member's one role on row's group match
// memberWindow: made, its window changed (in place, or deleted and made
// again where the controller cannot), or deleted when no visit wants it.
// A role the user held before any visit recorded it is the user's own and
// is left as it is. The role's id is recorded on row.
func (s *Service) applyMemberRole(ctx context.Context, pa PersonAccess, lease *Lease, v *Visit, p *VisitPerson, row *VisitRole, notify bool, d Decision, now time.Time) error {
	g := row.GroupID
	var own [][2]time.Time
	if !row.Removed {
		own = append(own, [2]time.Time{row.ValidFrom, row.ValidUntil}) // whatever the visit's stored status says
	}
	from, until, want, err := s.memberWindow(ctx, p.PersonID, g, s.opts.Now(), own...)
	if err != nil {
		return err
	}
	ref := p.ref()
	ras, err := pa.ListRoles(ctx, RoleFilter{Person: &ref, GroupID: g})
	if err != nil {
		return fmt.Errorf("role assignments of user %d on group %d: %w", p.PersonID, g, err)
	}
	var cur *RoleAssignment
	for i := range ras {
		recorded, err := s.store.roleRecorded(ctx, ras[i].ID)
		if err != nil {
			return err
		}
		if !recorded && !p.Created {
			if want && !row.Removed {
				return s.store.AddTimeline(ctx, v.ID, now, KindError, fmt.Sprintf("user %d already holds role assignment %d on group %d of their own; it is left as it is", p.PersonID, ras[i].ID, g))
			}
			return nil
		}
		if cur == nil {
			cur = &ras[i]
			continue
		}
		if err := pa.DeleteRole(ctx, ras[i].ID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("delete extra role assignment %d: %w", ras[i].ID, err)
		}
	}
	sp := RoleSpec{GroupID: g, Person: ref, ValidFrom: from, ValidUntil: until, Notify: notify}
	win := s.windowText(v, Decision{ValidFrom: from, ValidUntil: until})
	switch {
	case !want && cur == nil:
		return nil
	case !want:
		if err := pa.DeleteRole(ctx, cur.ID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("delete role assignment %d: %w", cur.ID, err)
		}
		return s.store.AddTimeline(ctx, v.ID, now, KindLinkRevoked, fmt.Sprintf("role assignment %d on group %d deleted (%s)", cur.ID, g, d.Status))
	case cur != nil && cur.ValidFrom != nil && cur.ValidUntil != nil && cur.ValidFrom.Equal(from) && cur.ValidUntil.Equal(until):
	case cur != nil:
		err := pa.UpdateRole(ctx, cur.ID, sp)
		switch {
		case err == nil:
			if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkUpdated, fmt.Sprintf("role assignment %d on group %d updated in place: %s", cur.ID, g, win)); err != nil {
				return err
			}
		case errors.Is(err, ErrUpdateUnsupported):
			// One user, one role per group: the role is made again.
			if err := pa.DeleteRole(ctx, cur.ID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
				return fmt.Errorf("delete role assignment %d to make it again: %w", cur.ID, err)
			}
			cur = nil
		default:
			return fmt.Errorf("update role assignment %d: %w", cur.ID, err)
		}
	}
	if cur == nil {
		ra, err := pa.CreateRole(ctx, sp)
		if err != nil {
			return fmt.Errorf("create a role assignment on group %d: %w", g, err)
		}
		cur = &ra
		if err := s.store.AddTimeline(ctx, v.ID, now, KindLinkCreated, fmt.Sprintf("role assignment %d created on group %d for member %d: %s", ra.ID, g, p.PersonID, win)); err != nil {
			return err
		}
	}
	if row.AssignmentID == cur.ID {
		return nil
	}
	row.AssignmentID = cur.ID
	return lease.saveRole(ctx, row)
}

// memberWindow is the window a member's one role on group should have:
// of the windows of their visits that want it and have not ended, the
// earliest, joined with those that overlap it (never a gap between two
// visits; the next visit's window follows when the first ends).
func (s *Service) memberWindow(ctx context.Context, personID, group int64, now time.Time, extra ...[2]time.Time) (from, until time.Time, ok bool, err error) {
	ws, err := s.store.memberWindows(ctx, personID, group)
	if err != nil {
		return from, until, false, err
	}
	ws = append(ws, extra...)
	sort.Slice(ws, func(i, j int) bool { return ws[i][0].Before(ws[j][0]) })
	for _, w := range ws {
		if !w[1].After(now) {
			continue
		}
		switch {
		case !ok:
			from, until, ok = w[0], w[1], true
		case !w[0].After(until):
			if w[1].After(until) {
				until = w[1]
			}
		}
	}
	return from, until, ok, nil
}
