package lockctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

// assignmentInput is a role assignment create, in Kisi's current shape
// (applies_to_*, assignee_*) or the older one the docs still show
// (user_id, group_id, place_id, organization_id, guest_id).
type assignmentInput struct {
	AppliesToType  string  `json:"applies_to_type"`
	AppliesToID    int64   `json:"applies_to_id"`
	AssigneeType   string  `json:"assignee_type"`
	AssigneeID     int64   `json:"assignee_id"`
	RoleID         string  `json:"role_id"`
	Notify         *bool   `json:"notify"`
	ValidFrom      *string `json:"valid_from"`
	ValidUntil     *string `json:"valid_until"`
	UserID         int64   `json:"user_id"`
	GuestID        int64   `json:"guest_id"`
	GroupID        int64   `json:"group_id"`
	PlaceID        int64   `json:"place_id"`
	OrganizationID int64   `json:"organization_id"`
}

// normalize fills the current fields from the older ones.
func (in *assignmentInput) normalize() {
	if in.AssigneeType == "" {
		switch {
		case in.UserID != 0:
			in.AssigneeType, in.AssigneeID = assigneeUser, in.UserID
		case in.GuestID != 0:
			in.AssigneeType, in.AssigneeID = assigneeGuest, in.GuestID
		}
	}
	if in.AppliesToType == "" {
		switch {
		case in.GroupID != 0:
			in.AppliesToType, in.AppliesToID = appliesGroup, in.GroupID
		case in.PlaceID != 0:
			in.AppliesToType, in.AppliesToID = appliesPlace, in.PlaceID
		case in.OrganizationID != 0:
			in.AppliesToType, in.AppliesToID = appliesOrganization, in.OrganizationID
		}
	}
}

// parseWindow reads valid_from and valid_until (RFC 3339, years 1970 to
// 9999; "" or null clears) into from and until, which it changes only for
// the keys given.
func parseWindow(fe fieldErrors, fromS, untilS *string, from, until **time.Time) {
	for field, src := range map[string]struct {
		s   *string
		dst **time.Time
	}{"valid_from": {fromS, from}, "valid_until": {untilS, until}} {
		if src.s == nil {
			continue
		}
		if *src.s == "" {
			*src.dst = nil
			continue
		}
		t, err := time.Parse(time.RFC3339, *src.s)
		switch {
		case err != nil:
			fe.add(field, "is not a valid RFC 3339 time")
		case !inTimeRange(t):
			fe.add(field, "must lie in the years 1970 to 9999 (UTC)")
		default:
			*src.dst = &t
		}
	}
	if *from != nil && *until != nil && !(*until).After(**from) {
		fe.add("valid_until", "must be after valid_from")
	}
}

// checkRole adds an error unless roleID names a role on appliesTo.
func checkRole(fe fieldErrors, roleID, appliesTo string) {
	r, ok := roleByID(roleID)
	switch {
	case roleID == "":
		fe.add("role_id", "can't be blank")
	case !ok:
		fe.add("role_id", "is not included in the list")
	case appliesTo != "" && r.AppliesTo != appliesTo:
		fe.add("role_id", "does not apply to a "+appliesTo)
	}
}

// assignment checks in (already normalized) and returns the role
// assignment it asks for; the assignee and target are looked up.
func (c *Controller) assignmentFrom(ctx context.Context, fe fieldErrors, in assignmentInput) (RoleAssignment, error) {
	ra := RoleAssignment{RoleID: in.RoleID, AppliesToType: in.AppliesToType, AppliesToID: in.AppliesToID,
		AssigneeType: in.AssigneeType, AssigneeID: in.AssigneeID, Notify: in.Notify != nil && *in.Notify}
	switch in.AssigneeType {
	case "":
		fe.add("assignee_type", "can't be blank")
	case assigneeUser, assigneeGuest:
		if err := c.personExists(ctx, in.AssigneeType, in.AssigneeID); latchkey.KindOf(err) == latchkey.NotFound {
			fe.add("assignee", "must exist")
		} else if err != nil {
			return ra, err
		}
	case "Team":
		fe.add("assignee_type", "Team is not supported by this controller")
	default:
		fe.add("assignee_type", "is not included in the list")
	}
	switch in.AppliesToType {
	case "":
		fe.add("applies_to_type", "can't be blank")
	case appliesOrganization, appliesPlace, appliesGroup:
		if err := c.targetExists(ctx, in.AppliesToType, in.AppliesToID); latchkey.KindOf(err) == latchkey.NotFound {
			fe.add("applies_to", "must exist")
		} else if err != nil {
			return ra, err
		}
	default:
		fe.add("applies_to_type", "is not included in the list")
	}
	checkRole(fe, in.RoleID, in.AppliesToType)
	if in.AppliesToType != appliesGroup {
		if (in.ValidFrom != nil && *in.ValidFrom != "") || (in.ValidUntil != nil && *in.ValidUntil != "") {
			fe.add("valid_until", "can only be set on group role assignments")
		}
		return ra, nil
	}
	parseWindow(fe, in.ValidFrom, in.ValidUntil, &ra.ValidFrom, &ra.ValidUntil)
	return ra, nil
}

// personExists returns NotFound unless the user or guest exists.
func (c *Controller) personExists(ctx context.Context, typ string, id int64) error {
	if typ == assigneeGuest {
		_, err := c.store.guest(ctx, id)
		return err
	}
	_, err := c.store.user(ctx, id)
	return err
}

// targetExists returns NotFound unless the organization, place or group
// exists.
func (c *Controller) targetExists(ctx context.Context, typ string, id int64) error {
	switch typ {
	case appliesGroup:
		_, err := c.store.group(ctx, id)
		return err
	case appliesPlace:
		_, err := c.store.place(ctx, id)
		return err
	}
	if id != organizationID {
		return latchkey.Errorf(latchkey.NotFound, "organization not found")
	}
	return nil
}

// sameTarget refuses (409) an Idempotency-Key sent again for a role on
// another target or of another kind of person than the one it made.
func sameTarget(key string, prev, ra RoleAssignment) error {
	if prev.AppliesToType != ra.AppliesToType || prev.AppliesToID != ra.AppliesToID || prev.AssigneeType != ra.AssigneeType {
		return latchkey.Errorf(latchkey.Conflict, "Idempotency-Key %q was used for a role assignment on another %s or person",
			key, strings.ToLower(prev.AppliesToType))
	}
	return nil
}

// assign stores ra through ts with its event of type typ: a person holds
// at most maxAssignmentsPerPerson assignments and one per organization,
// place or group (a second is a 422 naming the first).
func (c *Controller) assign(ec echo.Context, ts *store, ra *RoleAssignment, typ string) error {
	ctx := ec.Request().Context()
	n, err := ts.countAssignmentsOf(ctx, ra.AssigneeType, ra.AssigneeID)
	if err != nil {
		return err
	}
	if n >= maxAssignmentsPerPerson {
		return fieldErrors{"assignee": {"has the maximum of " + strconv.Itoa(maxAssignmentsPerPerson) + " role assignments"}}
	}
	if p, _ := who(ec); p != nil && p.Login != nil {
		ra.CreatedByID = &p.Login.ID
	}
	// Checked first to name the assignment in the answer; the unique index
	// decides between concurrent creates (and PostgreSQL allows no further
	// statement in a transaction after a violation).
	prev, found, err := ts.assignmentOn(ctx, ra.AssigneeType, ra.AssigneeID, ra.AppliesToType, ra.AppliesToID)
	if err != nil {
		return err
	}
	if found {
		return fieldErrors{"assignee": {fmt.Sprintf("already has a role on this %s (role assignment %d)",
			strings.ToLower(ra.AppliesToType), prev.ID)}}
	}
	if err := ts.createAssignment(ctx, ra); err != nil {
		if latchkey.KindOf(err) == latchkey.Conflict {
			return fieldErrors{"assignee": {"already has a role on this " + strings.ToLower(ra.AppliesToType)}}
		}
		return err
	}
	return c.addAssignmentEvent(ec, ts, typ, *ra)
}

// addAssignmentEvent stores the event of a change to ra through ts.
func (c *Controller) addAssignmentEvent(ec echo.Context, ts *store, typ string, ra RoleAssignment) error {
	ctx := ec.Request().Context()
	var placeID *int64
	switch ra.AppliesToType {
	case appliesGroup:
		if g, err := ts.group(ctx, ra.AppliesToID); err == nil {
			placeID = ptr(g.PlaceID)
		}
	case appliesPlace:
		placeID = ptr(ra.AppliesToID)
	}
	name := fmt.Sprintf("%s %s %d on %s %d", ra.RoleID, ra.AssigneeType, ra.AssigneeID, ra.AppliesToType, ra.AppliesToID)
	obj := objectRoleAssignment
	if typ == EventInviteCreate {
		obj = objectInvite
	}
	return c.addPersonEvent(ec, ts, typ, obj, ra.ID, name, placeID)
}

func (c *Controller) createAssignment(ec echo.Context) error {
	var req struct {
		RoleAssignment assignmentInput `json:"role_assignment"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	in := req.RoleAssignment
	in.normalize()
	ctx := ec.Request().Context()
	fe := fieldErrors{}
	ra, err := c.assignmentFrom(ctx, fe, in)
	if err != nil {
		return err
	}
	key := ec.Request().Header.Get(idempotencyHeader)
	if key != "" {
		checkText(fe, "idempotency_key", key, maxIdempotencyKey)
	}
	if err := fe.err(); err != nil {
		return err
	}
	p, _ := who(ec)
	caller := callerOf(p)
	replayed := false
	err = c.store.tx(ctx, func(ts *store) error {
		if key != "" {
			prev, found, err := keyedAssignment(ctx, ts, key, caller)
			if err != nil {
				return err
			}
			if found {
				if err := sameTarget(key, prev, ra); err != nil {
					return err
				}
				if prev.AssigneeID != ra.AssigneeID {
					return latchkey.Errorf(latchkey.Conflict, "Idempotency-Key %q was used for another person", key)
				}
				replayed, ra = true, prev
				return nil
			}
		}
		if err := c.assign(ec, ts, &ra, EventAssignmentCreate); err != nil {
			return err
		}
		if key == "" {
			return nil
		}
		return recordAssignmentKey(ctx, ts, key, caller, ra)
	})
	if err != nil {
		return err
	}
	if replayed {
		ec.Response().Header().Set(idempotentReplayedHeader, "true")
	} else if ra.Notify {
		c.notifyAssignment(ec, ra, nil)
	}
	out, err := c.assignmentResponses(ctx, []RoleAssignment{ra})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

func (c *Controller) getAssignment(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	ra, err := c.store.assignment(ctx, id)
	if err != nil {
		return err
	}
	out, err := c.assignmentResponses(ctx, []RoleAssignment{ra})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

// queryPerson reads a user id parameter that may also be "me": an
// administrator's key belongs to no user, so "me" selects nobody (id 0).
func queryPerson(ec echo.Context, name string) (*int64, error) {
	switch s := ec.QueryParam(name); s {
	case "":
		return nil, nil
	case "me":
		return new(int64), nil
	default:
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, badRequest("%s must be an integer or me", name)
		}
		return &id, nil
	}
}

var scopes = map[string]string{"organization": appliesOrganization, "place": appliesPlace, "group": appliesGroup}

func (c *Controller) listAssignments(ec echo.Context) error {
	pg, err := parsePage(ec, 10)
	if err != nil {
		return err
	}
	var f assignmentFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	role, err := queryText(ec, "role_id")
	if err != nil {
		return err
	}
	if role != "" {
		f.RoleIDs = []string{role}
	}
	if f.Sort, err = querySort(ec, "user.name"); err != nil {
		return err
	}
	if f, err = assignmentTargets(ec, f); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	list, total, err := c.store.listAssignments(ctx, f, pg)
	if err != nil {
		return err
	}
	out, err := c.assignmentResponses(ctx, list)
	if err != nil {
		return err
	}
	return writeList(ec, pg, total, out)
}

// assignmentTargets reads the assignee and applies-to filters of GET
// /role_assignments, with the deprecated scope, user_id, group_id and
// place_id. An id filter needs its type.
func assignmentTargets(ec echo.Context, f assignmentFilter) (assignmentFilter, error) {
	var err error
	for name, dst := range map[string]*string{"assignee_type": &f.AssigneeType, "applies_to_type": &f.AppliesToType} {
		if *dst, err = queryText(ec, name); err != nil {
			return f, err
		}
	}
	for name, dst := range map[string]**int64{"assignee_id": &f.AssigneeID, "applies_to_id": &f.AppliesToID, "place_id": &f.PlaceID} {
		if *dst, err = queryInt(ec, name); err != nil {
			return f, err
		}
	}
	if f.AssigneeID != nil && f.AssigneeType == "" {
		return f, badRequest("assignee_id needs assignee_type")
	}
	if f.AppliesToID != nil && f.AppliesToType == "" {
		return f, badRequest("applies_to_id needs applies_to_type")
	}
	if s := ec.QueryParam("scope"); s != "" {
		t, ok := scopes[s]
		if !ok {
			return f, badRequest("scope must be organization, place or group")
		}
		f.AppliesToType = t
	}
	uid, err := queryPerson(ec, "user_id")
	if err != nil {
		return f, err
	}
	if uid != nil {
		f.AssigneeType, f.AssigneeID = assigneeUser, uid
	}
	gid, err := queryInt(ec, "group_id")
	if err != nil {
		return f, err
	}
	if gid != nil {
		f.AppliesToType, f.AppliesToID = appliesGroup, gid
	}
	return f, nil
}

// updateAssignment is PATCH (or PUT) /role_assignments/{id}: role_id,
// notify and, on a group assignment, valid_from and valid_until (null or
// "" removes a bound); 204. The change takes effect for the next unlock.
func (c *Controller) updateAssignment(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	var req struct {
		RoleAssignment map[string]json.RawMessage `json:"role_assignment"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	ch, err := decodeAssignmentChange(req.RoleAssignment)
	if err != nil {
		return err
	}
	return c.applyAssignmentChange(ec, id, ch, EventAssignmentUpdate)
}

// applyAssignmentChange applies ch to assignment id with its event of type
// typ (a role assignment's or a share's) in one transaction, and mails the
// person when ch asks to; it answers 204.
func (c *Controller) applyAssignmentChange(ec echo.Context, id int64, ch assignmentChange, typ string) error {
	ctx := ec.Request().Context()
	var after RoleAssignment
	err := c.store.tx(ctx, func(ts *store) error {
		_, a, err := ts.updateAssignment(ctx, id, ch.apply)
		if err != nil {
			return err
		}
		after = a
		return c.addAssignmentEvent(ec, ts, typ, after)
	})
	if err != nil {
		return err
	}
	if ch.Notify != nil && *ch.Notify {
		c.notifyAssignment(ec, after, nil)
	}
	return ec.NoContent(http.StatusNoContent)
}

// assignmentChange is what an update of a role assignment (or share) asks.
type assignmentChange struct {
	RoleID                *string
	Notify                *bool
	ValidFrom, ValidUntil *string
}

func decodeAssignmentChange(m map[string]json.RawMessage) (assignmentChange, error) {
	var ch assignmentChange
	for k, raw := range m {
		switch k {
		case "role_id":
			if err := json.Unmarshal(raw, &ch.RoleID); err != nil {
				return ch, fieldErrors{k: {"must be a string"}}
			}
		case "notify":
			if err := json.Unmarshal(raw, &ch.Notify); err != nil {
				return ch, fieldErrors{k: {"must be true or false"}}
			}
		case "valid_from", "valid_until":
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return ch, fieldErrors{k: {"must be an RFC 3339 time or null"}}
			}
			if s == nil {
				s = new(string)
			}
			if k == "valid_from" {
				ch.ValidFrom = s
			} else {
				ch.ValidUntil = s
			}
		}
	}
	return ch, nil
}

func (ch assignmentChange) apply(ra *RoleAssignment) error {
	fe := fieldErrors{}
	if ch.RoleID != nil {
		checkRole(fe, *ch.RoleID, ra.AppliesToType)
		ra.RoleID = *ch.RoleID
	}
	if ch.Notify != nil {
		ra.Notify = *ch.Notify
	}
	if ch.ValidFrom != nil || ch.ValidUntil != nil {
		if ra.AppliesToType != appliesGroup {
			fe.add("valid_until", "can only be set on group role assignments")
		} else {
			parseWindow(fe, ch.ValidFrom, ch.ValidUntil, &ra.ValidFrom, &ra.ValidUntil)
		}
	}
	return fe.err()
}

// deleteAssignment removes the role assignment: the access it gave ends
// when the answer is sent.
func (c *Controller) deleteAssignment(ec echo.Context) error {
	return c.destroyAssignment(ec, EventAssignmentDestroy)
}

func (c *Controller) destroyAssignment(ec echo.Context, typ string) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = c.store.tx(ctx, func(ts *store) error {
		ra, err := ts.deleteAssignment(ctx, id)
		if err != nil {
			return err
		}
		return c.addAssignmentEvent(ec, ts, typ, ra)
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

// people holds the users, guests, groups and places role assignments refer
// to, loaded in one go for a page.
type people struct {
	users  map[int64]User
	guests map[int64]Guest
	groups map[int64]Group
	places map[int64]Place
}

func (c *Controller) loadPeople(ctx context.Context, list []RoleAssignment) (people, error) {
	var userIDs, guestIDs, groupIDs, placeIDs []int64
	for _, ra := range list {
		switch ra.AssigneeType {
		case assigneeUser:
			userIDs = append(userIDs, ra.AssigneeID)
		case assigneeGuest:
			guestIDs = append(guestIDs, ra.AssigneeID)
		}
		switch ra.AppliesToType {
		case appliesGroup:
			groupIDs = append(groupIDs, ra.AppliesToID)
		case appliesPlace:
			placeIDs = append(placeIDs, ra.AppliesToID)
		}
	}
	var p people
	var err error
	if p.users, err = byIDs[User](ctx, c.store, userIDs, "user", func(u User) int64 { return u.ID }); err != nil {
		return p, err
	}
	if p.guests, err = byIDs[Guest](ctx, c.store, guestIDs, "guest", func(g Guest) int64 { return g.ID }); err != nil {
		return p, err
	}
	if p.groups, err = c.store.groups(ctx, groupIDs); err != nil {
		return p, err
	}
	for _, g := range p.groups {
		placeIDs = append(placeIDs, g.PlaceID)
	}
	p.places, err = c.store.places(ctx, placeIDs)
	return p, err
}

func (c *Controller) assignmentResponses(ctx context.Context, list []RoleAssignment) ([]map[string]any, error) {
	p, err := c.loadPeople(ctx, list)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(list))
	for i, ra := range list {
		out[i] = newAssignmentResponse(ra, p)
	}
	return out, nil
}

func orgRef() map[string]any {
	return map[string]any{"id": organizationID, "resource_type": appliesOrganization, "name": "Organization", "domain": ""}
}

// newAssignmentResponse renders Kisi's RoleAssignment: the current fields,
// the deprecated ones its schema still requires, and for the group variant
// the validity window.
func newAssignmentResponse(ra RoleAssignment, p people) map[string]any {
	var assignee, user, guest, userID, guestID any
	switch ra.AssigneeType {
	case assigneeUser:
		u := p.users[ra.AssigneeID]
		ref := map[string]any{"id": ra.AssigneeID, "resource_type": assigneeUser, "email": u.Email, "name": u.Name}
		assignee, user, userID = ref, ref, ra.AssigneeID
	case assigneeGuest:
		g := p.guests[ra.AssigneeID]
		ref := map[string]any{"id": ra.AssigneeID, "resource_type": assigneeGuest, "name": g.Name,
			"email": nullable(g.Email), "phone_number": nullable(g.Phone)}
		assignee, guest, guestID = ref, ref, ra.AssigneeID
	}
	m := map[string]any{
		"id": ra.ID, "resource_type": "RoleAssignment", "created_at": jt(ra.CreatedAt), "updated_at": jt(ra.UpdatedAt),
		"role_id": ra.RoleID, "notify": ra.Notify,
		"applies_to_type": ra.AppliesToType, "applies_to_id": ra.AppliesToID,
		"assignee_type": ra.AssigneeType, "assignee_id": ra.AssigneeID, "assignee": assignee,
		"created_by_type": "User", "created_by_id": ra.CreatedByID,
		"user_id": userID, "assignee_team_id": nil, "guest_id": guestID, "issued_by_id": ra.CreatedByID,
		"type": strings.ToLower(ra.AppliesToType), "scope": strings.ToLower(ra.AppliesToType),
	}
	// user and guest are objects when present (never null) in Kisi's schema.
	if user != nil {
		m["user"] = user
	}
	if guest != nil {
		m["guest"] = guest
	}
	switch ra.AppliesToType {
	case appliesGroup:
		g := p.groups[ra.AppliesToID]
		ref := map[string]any{"id": ra.AppliesToID, "resource_type": appliesGroup, "name": g.Name}
		m["applies_to"], m["group_id"], m["group"] = ref, ra.AppliesToID, ref
		m["valid_from"], m["valid_until"] = jtp(ra.ValidFrom), jtp(ra.ValidUntil)
	case appliesPlace:
		pl := p.places[ra.AppliesToID]
		ref := map[string]any{"id": ra.AppliesToID, "resource_type": appliesPlace, "name": pl.Name}
		m["applies_to"], m["place_id"], m["place"] = ref, ra.AppliesToID, ref
	default:
		m["applies_to"], m["organization_id"], m["organization"] = orgRef(), organizationID, orgRef()
	}
	return m
}

// byIDs loads the rows of T with the given ids, keyed by key.
func byIDs[T any](ctx context.Context, s *store, ids []int64, what string, key func(T) int64) (map[int64]T, error) {
	out := map[int64]T{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []T
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err, "get "+what+"s", what)
	}
	for _, r := range rows {
		out[key(r)] = r
	}
	return out, nil
}
