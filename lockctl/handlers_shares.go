package lockctl

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

// Shares are Kisi's deprecated group access by email, which the Envoy–Kisi
// app still uses ("temporary permission shares"). A share is a user's group
// role assignment seen through /shares: the same record, the same id. Its
// role_id basic and manager are group_basic and group_manager.
var shareRoles = map[string]string{"basic": "group_basic", "manager": "group_manager"}

func shareRole(roleID string) string {
	for k, v := range shareRoles {
		if v == roleID {
			return k
		}
	}
	return roleID
}

type shareInput struct {
	Email      *string `json:"email"`
	GroupID    int64   `json:"group_id"`
	RoleID     string  `json:"role_id"`
	ValidFrom  *string `json:"valid_from"`
	ValidUntil *string `json:"valid_until"`
	Notify     *bool   `json:"notify"`
}

// createShare gives the user with the email (created when there is none)
// a role on the group.
func (c *Controller) createShare(ec echo.Context) error {
	var req struct {
		Share shareInput `json:"share"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	in := req.Share
	fe := fieldErrors{}
	email := ""
	if in.Email != nil {
		email = strings.ToLower(strings.TrimSpace(*in.Email))
	}
	if email == "" {
		fe.add("email", "can't be blank")
	}
	checkEmail(fe, "email", email)
	if in.RoleID == "" {
		in.RoleID = "basic"
	}
	role, ok := shareRoles[in.RoleID]
	if !ok {
		fe.add("role_id", "is not included in the list")
	}
	ctx := ec.Request().Context()
	if in.GroupID == 0 {
		fe.add("group_id", "can't be blank")
	} else if _, err := c.store.group(ctx, in.GroupID); latchkey.KindOf(err) == latchkey.NotFound {
		fe.add("group", "must exist")
	} else if err != nil {
		return err
	}
	ra := RoleAssignment{RoleID: role, AppliesToType: appliesGroup, AppliesToID: in.GroupID, AssigneeType: assigneeUser,
		Notify: in.Notify != nil && *in.Notify}
	parseWindow(fe, in.ValidFrom, in.ValidUntil, &ra.ValidFrom, &ra.ValidUntil)
	if err := fe.err(); err != nil {
		return err
	}
	err := c.store.tx(ctx, func(ts *store) error {
		u, err := c.userForEmail(ec, ts, email, "")
		if err != nil {
			return err
		}
		ra.AssigneeID = u.ID
		return c.assign(ec, ts, &ra, EventShareCreate)
	})
	if err != nil {
		return err
	}
	if ra.Notify {
		c.notifyAssignment(ec, ra, nil)
	}
	out, err := c.shareResponses(ctx, []RoleAssignment{ra})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

// userForEmail returns the user with email, creating one named name (with
// its user.create event) when there is none.
func (c *Controller) userForEmail(ec echo.Context, ts *store, email, name string) (User, error) {
	ctx := ec.Request().Context()
	u, found, err := ts.userByEmail(ctx, email)
	if err != nil || found {
		return u, err
	}
	u = User{Email: email, Name: name, AccessEnabled: true, SendEmails: true, Metadata: "{}"}
	if err := c.createUser(ec, ts, &u); err != nil {
		return u, err
	}
	return u, c.addPersonEvent(ec, ts, EventUserCreate, objectUser, u.ID, u.Name, nil)
}

// shareFilter narrows f to what /shares shows: users' group roles.
func shareFilter(f assignmentFilter) assignmentFilter {
	f.AssigneeType, f.AppliesToType = assigneeUser, appliesGroup
	if len(f.RoleIDs) == 0 {
		f.RoleIDs = []string{"group_basic", "group_manager"}
	}
	return f
}

// share loads role assignment id if it is a share.
func (c *Controller) share(ctx context.Context, id int64) (RoleAssignment, error) {
	list, _, err := c.store.listAssignments(ctx, shareFilter(assignmentFilter{IDs: []int64{id}}), page{Limit: 1})
	if err != nil {
		return RoleAssignment{}, err
	}
	if len(list) == 0 {
		return RoleAssignment{}, latchkey.Errorf(latchkey.NotFound, "share not found")
	}
	return list[0], nil
}

func (c *Controller) getShare(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	ra, err := c.share(ctx, id)
	if err != nil {
		return err
	}
	out, err := c.shareResponses(ctx, []RoleAssignment{ra})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

func (c *Controller) listShares(ec echo.Context) error {
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
	if f.AppliesToID, err = queryInt(ec, "group_id"); err != nil {
		return err
	}
	if f.PlaceID, err = queryInt(ec, "place_id"); err != nil {
		return err
	}
	for _, name := range []string{"member_id", "user_id"} {
		if f.AssigneeID, err = queryPerson(ec, name); err != nil {
			return err
		}
	}
	if r := ec.QueryParam("role_id"); r != "" {
		role, ok := shareRoles[r]
		if !ok {
			return badRequest("role_id must be basic or manager")
		}
		f.RoleIDs = []string{role}
	}
	ctx := ec.Request().Context()
	list, total, err := c.store.listAssignments(ctx, shareFilter(f), pg)
	if err != nil {
		return err
	}
	out, err := c.shareResponses(ctx, list)
	if err != nil {
		return err
	}
	return writeList(ec, pg, total, out)
}

// updateShare is PATCH (or PUT) /shares/{id}: notify, role_id (basic or
// manager), valid_from, valid_until; 204.
func (c *Controller) updateShare(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	var req struct {
		Share map[string]json.RawMessage `json:"share"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	ch, err := decodeAssignmentChange(req.Share)
	if err != nil {
		return err
	}
	if ch.RoleID != nil {
		role, ok := shareRoles[*ch.RoleID]
		if !ok {
			return fieldErrors{"role_id": {"is not included in the list"}}
		}
		ch.RoleID = &role
	}
	if _, err := c.share(ec.Request().Context(), id); err != nil {
		return err
	}
	return c.applyAssignmentChange(ec, id, ch, EventShareUpdate)
}

func (c *Controller) deleteShare(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	if _, err := c.share(ec.Request().Context(), id); err != nil {
		return err
	}
	return c.destroyAssignment(ec, EventShareDestroy)
}

func (c *Controller) shareResponses(ctx context.Context, list []RoleAssignment) ([]map[string]any, error) {
	p, err := c.loadPeople(ctx, list)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(list))
	for i, ra := range list {
		u, g := p.users[ra.AssigneeID], p.groups[ra.AppliesToID]
		pl := p.places[g.PlaceID]
		user := map[string]any{"id": u.ID, "resource_type": "User", "email": u.Email, "name": u.Name}
		member := map[string]any{"id": u.ID, "resource_type": "Member", "name": u.Name}
		out[i] = map[string]any{
			"id": ra.ID, "resource_type": "Share", "email": u.Email, "group_id": g.ID,
			"group":   map[string]any{"id": g.ID, "resource_type": "Group", "name": g.Name},
			"role_id": shareRole(ra.RoleID), "role": shareRole(ra.RoleID),
			"valid_from": jtp(ra.ValidFrom), "valid_until": jtp(ra.ValidUntil), "notify": ra.Notify,
			"created_at": jt(ra.CreatedAt), "updated_at": jt(ra.UpdatedAt),
			"member_id": u.ID, "member": member, "user_id": u.ID, "user": user,
			"place_id": g.PlaceID, "place": map[string]any{"id": pl.ID, "resource_type": "Place", "name": pl.Name},
			"created_by_type": "User", "created_by_id": ra.CreatedByID,
			"lock_id": nil, "apply_to_place": false, "issued_to_id": u.ID, "issued_to_email": u.Email,
			"issued_by_id": ra.CreatedByID,
		}
	}
	return out, nil
}
