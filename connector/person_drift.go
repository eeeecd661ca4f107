package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	latchkey "github.com/latchkey/latchkey"
)

// repairPersonRoles is RepairDrift for the role assignments of the people
// behind passes (guests and members) on install's controller: a role
// assignment of such a person that no visit wanting access records is
// deleted (for a member latchkey did not make, only those a visit
// recorded: the user's own access is theirs), and a recorded one missing
// on the controller is made again. Each visit is repaired under its sync
// lease; one whose creation is under way is left to its sync.
func (s *Service) repairPersonRoles(ctx context.Context, install string, rep *DriftReport) error {
	ctx, err := s.bindController(ctx, install)
	if err != nil {
		return err
	}
	pa, ok := s.ctl(ctx).(PersonAccess)
	if !ok {
		return nil
	}
	people, err := s.store.peopleRows(ctx)
	if err != nil || len(people) == 0 {
		return err
	}
	mine, err := s.installFilter(ctx, install)
	if err != nil {
		return err
	}
	visitIDs := make([]int64, 0, len(people))
	for _, p := range people {
		visitIDs = append(visitIDs, p.VisitID)
	}
	installOf, err := s.store.installsOf(ctx, visitIDs)
	if err != nil {
		return err
	}
	// The visits naming each person of this install.
	byPerson := map[PersonRef][]int64{}
	for _, p := range people {
		if !mine(installOf[p.VisitID]) {
			continue
		}
		for _, id := range []int64{p.PersonID, p.RetiredID} {
			if id != 0 {
				ref := PersonRef{Kind: p.Kind, ID: id}
				byPerson[ref] = append(byPerson[ref], p.VisitID)
			}
		}
	}
	if len(byPerson) == 0 {
		return nil
	}
	listed := time.Now()
	ras, err := pa.ListRoles(ctx, RoleFilter{})
	if err != nil {
		return fmt.Errorf("list controller role assignments: %w", err)
	}
	present := map[int64]RoleAssignment{}
	suspects := map[int64]bool{}
	for _, ra := range ras {
		if vs, ok := byPerson[ra.Person]; ok {
			present[ra.ID] = ra
			rep.Checked++
			for _, id := range vs {
				suspects[id] = true // looked at closer below, under its lease
			}
		}
	}
	statuses, err := s.store.statuses(ctx, visitIDs)
	if err != nil {
		return err
	}
	before := listed.Add(-s.opts.DriftMargin)
	var errs []error
	for id := range suspects {
		err := s.withLease(ctx, id, func(ctx context.Context, l *Lease) error {
			return s.repairPersonVisit(ctx, pa, l, id, present, before, rep)
		})
		if err != nil && !errors.Is(err, ErrBusy) {
			errs = append(errs, fmt.Errorf("repair the person access of visit %d: %w", id, err))
		}
	}
	// Visits that want access but whose person holds no listed role.
	for _, p := range people {
		if !p.live() || !statuses[p.VisitID].WantsLinks() || suspects[p.VisitID] || !mine(installOf[p.VisitID]) {
			continue
		}
		err := s.withLease(ctx, p.VisitID, func(ctx context.Context, l *Lease) error {
			return s.repairPersonVisit(ctx, pa, l, p.VisitID, present, before, rep)
		})
		if err != nil && !errors.Is(err, ErrBusy) {
			errs = append(errs, fmt.Errorf("repair the person access of visit %d: %w", p.VisitID, err))
		}
	}
	return errors.Join(errs...)
}

// installFilter says which visits' installs share install's controller.
func (s *Service) installFilter(ctx context.Context, install string) (func(string) bool, error) {
	separate, err := s.store.Installs(ctx, 1000)
	if err != nil {
		return nil, err
	}
	own := map[string]bool{}
	for _, in := range separate {
		own[in.ID] = true
	}
	return func(visitInstall string) bool {
		if install == "" {
			return !own[visitInstall]
		}
		return visitInstall == install
	}, nil
}

// repairPersonVisit is repairPersonRoles for visit id, whose lease the
// caller holds; present holds the listed role assignments of the people
// behind passes, and before is when a row must have been written by to
// be called missing.
func (s *Service) repairPersonVisit(ctx context.Context, pa PersonAccess, lease *Lease, id int64, present map[int64]RoleAssignment, before time.Time, rep *DriftReport) error {
	v, err := s.store.Visit(ctx, id)
	if err != nil {
		return err
	}
	p, err := s.store.visitPerson(ctx, id)
	if err != nil || p == nil || p.Creating != "" {
		return err
	}
	roles, err := s.store.Roles(ctx, id)
	if err != nil {
		return err
	}
	recorded := map[int64]*VisitRole{}
	for i := range roles {
		if roles[i].Creating != "" {
			return nil // a creation under way, or cut off: the visit's sync settles it
		}
		if roles[i].AssignmentID != 0 {
			recorded[roles[i].AssignmentID] = &roles[i]
		}
	}
	wants := v.Status.WantsLinks()
	now := s.now()
	ours := map[PersonRef]bool{{Kind: p.Kind, ID: p.PersonID}: p.Created, {Kind: PersonGuest, ID: p.RetiredID}: true}
	for raID, ra := range present {
		made, isOurs := ours[ra.Person]
		if !isOurs {
			continue
		}
		row := recorded[raID]
		if row != nil && !row.Removed && wants && row.PersonID == ra.Person.ID && (p.live() || p.RetiredID == ra.Person.ID) {
			continue // known and wanted
		}
		if row == nil && !made {
			continue // a member's own access, not the visit's
		}
		if ra.Person.Kind == PersonMember {
			// A member's one role per group is shared by their visits:
			// it is stray only when none of them wants it.
			if _, _, wanted, err := s.memberWindow(ctx, ra.Person.ID, ra.GroupID, s.opts.Now()); err != nil || wanted {
				if err != nil {
					return err
				}
				continue
			}
		}
		if row == nil {
			// Known to no row of this visit; another visit naming the
			// same person may record it.
			if other, err := s.store.rolesByAssignment(ctx, []int64{raID}); err != nil {
				return err
			} else if _, ok := other[raID]; ok {
				continue
			}
		}
		if err := pa.DeleteRole(ctx, raID); err != nil && latchkey.KindOf(err) != latchkey.NotFound {
			return fmt.Errorf("delete stray role assignment %d: %w", raID, err)
		}
		rep.Deleted++
		if row != nil {
			row.Removed = true
			if err := lease.saveRole(ctx, row); err != nil {
				return err
			}
		}
		if err := s.store.AddTimeline(ctx, id, now, KindLinkRevoked, fmt.Sprintf("drift repair: role assignment %d on group %d should not exist and was deleted", raID, ra.GroupID)); err != nil {
			return err
		}
	}
	if !wants || !p.live() {
		return nil
	}
	resync := false
	for i := range roles {
		r := &roles[i]
		if r.Removed || r.AssignmentID == 0 || r.PersonID != p.PersonID || r.UpdatedAt.After(before) {
			continue
		}
		if _, ok := present[r.AssignmentID]; ok {
			continue
		}
		if p.Kind == PersonMember && s.memberHoldsRole(present, p.PersonID, r.GroupID) {
			continue // made again under another id by another visit of theirs
		}
		if err := s.store.AddTimeline(ctx, id, now, KindError, fmt.Sprintf("drift repair: role assignment %d on group %d is missing on the controller; creating it again", r.AssignmentID, r.GroupID)); err != nil {
			return err
		}
		r.AssignmentID = 0
		if err := lease.saveRole(ctx, r); err != nil {
			return err
		}
		resync = true
	}
	if !resync {
		return nil
	}
	return s.resyncRepaired(ctx, lease, id, rep)
}

// memberHoldsRole reports whether the listing shows a role of the member
// on group.
func (s *Service) memberHoldsRole(present map[int64]RoleAssignment, personID, group int64) bool {
	for _, ra := range present {
		if ra.Person.Kind == PersonMember && ra.Person.ID == personID && ra.GroupID == group {
			return true
		}
	}
	return false
}
