package lockctl

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// userFields is what a create or update of a user (or member) may set.
type userFields struct {
	Email               *string        `json:"email"`
	Name                *string        `json:"name"`
	Image               *string        `json:"image"`
	SendEmails          *bool          `json:"send_emails"`
	Confirm             *bool          `json:"confirm"`
	AccessEnabled       *bool          `json:"access_enabled"`
	PasswordFlowEnabled *bool          `json:"password_flow_enabled"`
	Metadata            map[string]any `json:"metadata"`
	Notes               *string        `json:"notes"`
}

// apply checks f and stores the good fields into u. Email is set only on
// create.
func (f userFields) apply(fe fieldErrors, u *User, creating bool) {
	if creating {
		email := ""
		if f.Email != nil {
			email = strings.ToLower(strings.TrimSpace(*f.Email))
		}
		if email == "" {
			fe.add("email", "can't be blank")
		}
		checkEmail(fe, "email", email)
		u.Email = email
	}
	if f.Name != nil {
		u.Name = strings.TrimSpace(*f.Name)
		checkText(fe, "name", u.Name, maxPersonName)
	}
	if f.Image != nil {
		u.Image = strings.TrimSpace(*f.Image)
		if checkText(fe, "image", u.Image, maxImage) && u.Image != "" {
			if p, err := url.Parse(u.Image); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
				fe.add("image", "is not a valid URL")
			}
		}
	}
	if f.Notes != nil {
		u.Notes = *f.Notes
		checkText(fe, "notes", u.Notes, maxNotes)
	}
	if f.Metadata != nil {
		if raw, ok := checkMetadata(fe, f.Metadata); ok {
			u.Metadata = raw
		}
	}
	for dst, src := range map[*bool]*bool{&u.AccessEnabled: f.AccessEnabled, &u.PasswordFlowEnabled: f.PasswordFlowEnabled,
		&u.SendEmails: f.SendEmails, &u.Confirmed: f.Confirm} {
		if src != nil {
			*dst = *src
		}
	}
}

// checkMetadata applies Kisi's metadata rule: flat basic values only, at
// most 50 keys of 50 characters, values of 500. It returns the JSON to
// store.
func checkMetadata(fe fieldErrors, m map[string]any) (string, bool) {
	if len(m) > maxMetadataKeys {
		fe.add("metadata", fmt.Sprintf("has too many keys (maximum is %d)", maxMetadataKeys))
		return "", false
	}
	ok := true
	for k, v := range m {
		if p := textProblem(k, maxMetadataKey); p != "" || k == "" {
			fe.add("metadata", fmt.Sprintf("keys must be 1 to %d characters of text", maxMetadataKey))
			ok = false
			continue
		}
		switch x := v.(type) {
		case nil, bool, float64:
		case string:
			if p := textProblem(x, maxMetadataValue); p != "" {
				fe.add("metadata", "value of "+strconv.Quote(k)+" "+p)
				ok = false
			}
		default:
			fe.add("metadata", "value of "+strconv.Quote(k)+" must be a string, number, boolean or null")
			ok = false
		}
	}
	if !ok {
		return "", false
	}
	raw, err := json.Marshal(m)
	if err != nil {
		fe.add("metadata", "is invalid")
		return "", false
	}
	return string(raw), true
}

type userResponse struct {
	ID                  int64          `json:"id"`
	ResourceType        string         `json:"resource_type"`
	Name                string         `json:"name"`
	Email               string         `json:"email"`
	CreatedAt           jsonTime       `json:"created_at"`
	UpdatedAt           jsonTime       `json:"updated_at"`
	Metadata            map[string]any `json:"metadata"`
	Image               *string        `json:"image"`
	OTPRequired         bool           `json:"otp_required_for_login"`
	PasswordFlowEnabled bool           `json:"password_flow_enabled"`
	AccessEnabled       bool           `json:"access_enabled"`
	LastAccessedAt      *jsonTime      `json:"last_accessed_at"`
	SCIMAccessEnabled   bool           `json:"scim_access_enabled"`
	Notes               *string        `json:"notes"`
	OrganizationID      int64          `json:"organization_id"`
	Confirmed           bool           `json:"confirmed"`
	GroupsCount         int            `json:"groups_count"`
}

func metadataOf(u User) map[string]any {
	m := map[string]any{}
	_ = json.Unmarshal([]byte(u.Metadata), &m) // stored by checkMetadata; a bad row reads as {}
	return m
}

func newUserResponse(u User, groups int) userResponse {
	return userResponse{ID: u.ID, ResourceType: "User", Name: u.Name, Email: u.Email, CreatedAt: jt(u.CreatedAt),
		UpdatedAt: jt(u.UpdatedAt), Metadata: metadataOf(u), Image: nullable(u.Image),
		PasswordFlowEnabled: u.PasswordFlowEnabled, AccessEnabled: u.AccessEnabled,
		LastAccessedAt: jtp(u.LastAccessedAt), SCIMAccessEnabled: true, Notes: nullable(u.Notes),
		OrganizationID: organizationID, Confirmed: u.Confirmed, GroupsCount: groups}
}

// memberResponse is Kisi's deprecated Member: a user seen through /members.
type memberResponse struct {
	ID                  int64          `json:"id"`
	ResourceType        string         `json:"resource_type"`
	Name                string         `json:"name"`
	Image               *string        `json:"image"`
	PasswordFlowEnabled bool           `json:"password_flow_enabled"`
	AccessEnabled       bool           `json:"access_enabled"`
	SCIMAccessEnabled   bool           `json:"scim_access_enabled"`
	LastAccessedAt      *jsonTime      `json:"last_accessed_at"`
	CreatedAt           jsonTime       `json:"created_at"`
	UpdatedAt           jsonTime       `json:"updated_at"`
	RoleID              *string        `json:"role_id"`
	Notes               *string        `json:"notes"`
	Metadata            map[string]any `json:"metadata"`
	OrganizationID      int64          `json:"organization_id"`
	UserID              int64          `json:"user_id"`
	User                memberUser     `json:"user"`
	PlaceID             *int64         `json:"place_id"`
	SharesCount         int            `json:"shares_count"`
	Confirmed           bool           `json:"confirmed"`
}

type memberUser struct {
	ID           int64  `json:"id"`
	ResourceType string `json:"resource_type"`
	Email        string `json:"email"`
	Name         string `json:"name"`
	OTPRequired  bool   `json:"otp_required_for_login"`
}

func newMemberResponse(u User, groups int) memberResponse {
	return memberResponse{ID: u.ID, ResourceType: "Member", Name: u.Name, Image: nullable(u.Image),
		PasswordFlowEnabled: u.PasswordFlowEnabled, AccessEnabled: u.AccessEnabled, SCIMAccessEnabled: true,
		LastAccessedAt: jtp(u.LastAccessedAt), CreatedAt: jt(u.CreatedAt), UpdatedAt: jt(u.UpdatedAt),
		Notes: nullable(u.Notes), Metadata: metadataOf(u), OrganizationID: organizationID, UserID: u.ID,
		User:        memberUser{ID: u.ID, ResourceType: "User", Email: u.Email, Name: u.Name},
		SharesCount: groups, Confirmed: u.Confirmed}
}

// usersAPI serves /users, or with member set the deprecated /members over
// the same records.
type usersAPI struct {
	c      *Controller
	member bool
}

func (a usersAPI) body(ec echo.Context) (userFields, error) {
	var req map[string]userFields
	if err := bindBody(ec, &req); err != nil {
		return userFields{}, err
	}
	return req[map[bool]string{false: "user", true: "member"}[a.member]], nil
}

func (a usersAPI) render(u User, groups int) any {
	if a.member {
		return newMemberResponse(u, groups)
	}
	return newUserResponse(u, groups)
}

// events are the event types of creates, updates and deletes, by API.
var events = map[bool][3]string{
	false: {EventUserCreate, EventUserUpdate, EventUserDestroy},
	true:  {EventMemberCreate, EventMemberUpdate, EventMemberDestroy},
}

func (a usersAPI) event(action int) string { return events[a.member][action] }

const (
	actionCreate = iota
	actionUpdate
	actionDestroy
)

func (a usersAPI) create(ec echo.Context) error {
	f, err := a.body(ec)
	if err != nil {
		return err
	}
	u := User{AccessEnabled: true, SendEmails: true, Metadata: "{}"}
	fe := fieldErrors{}
	f.apply(fe, &u, true)
	if err := fe.err(); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = a.c.store.tx(ctx, func(ts *store) error {
		if err := a.c.createUser(ec, ts, &u); err != nil {
			return err
		}
		return a.c.addPersonEvent(ec, ts, a.event(actionCreate), objectUser, u.ID, u.Name, nil)
	})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, a.render(u, 0))
}

// createUser stores u through ts unless the bound on users is reached or
// the email is taken (both 422).
func (c *Controller) createUser(ec echo.Context, ts *store, u *User) error {
	ctx := ec.Request().Context()
	n, err := count[User](ctx, ts, "user")
	if err != nil {
		return err
	}
	if n >= maxUsers {
		return fieldErrors{"user": {"limit of " + strconv.Itoa(maxUsers) + " users reached; delete one first"}}
	}
	return conflictAsField(ts.createUser(ctx, u), "email")
}

func (a usersAPI) get(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	u, err := a.c.store.user(ctx, id)
	if err != nil {
		return err
	}
	counts, err := a.c.store.countGroupsOf(ctx, []int64{id})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, a.render(u, counts[id]))
}

func (a usersAPI) list(ec echo.Context) error {
	pg, err := parsePage(ec, 50)
	if err != nil {
		return err
	}
	pg.Limit = min(pg.Limit, 100)
	var f userFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.Email, err = queryText(ec, "email"); err != nil {
		return err
	}
	f.Email = strings.ToLower(strings.TrimSpace(f.Email))
	for name, dst := range map[string]**int64{"place_id": &f.PlaceID, "group_id": &f.GroupID} {
		if *dst, err = queryInt(ec, name); err != nil {
			return err
		}
	}
	uid, err := queryPerson(ec, "user_id")
	if err != nil {
		return err
	}
	if uid != nil {
		// Both filters hold: the user, if listed in ids too.
		if len(f.IDs) > 0 && !slices.Contains(f.IDs, *uid) {
			*uid = 0
		}
		f.IDs = []int64{*uid}
	}
	if f.Sort, err = querySort(ec, "name", "unlock", "access_enabled"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	users, total, err := a.c.store.listUsers(ctx, f, pg)
	if err != nil {
		return err
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	counts, err := a.c.store.countGroupsOf(ctx, ids)
	if err != nil {
		return err
	}
	out := make([]any, len(users))
	for i, u := range users {
		out[i] = a.render(u, counts[u.ID])
	}
	return writeList(ec, pg, total, out)
}

// update is PATCH (or PUT) /users/{id}: name, image, access_enabled,
// password_flow_enabled, metadata, notes; 204. Suspending access
// (access_enabled false) refuses the user's next unlock.
func (a usersAPI) update(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	f, err := a.body(ec)
	if err != nil {
		return err
	}
	f.Email, f.SendEmails, f.Confirm = nil, nil, nil
	ctx := ec.Request().Context()
	err = a.c.store.tx(ctx, func(ts *store) error {
		u, err := ts.updateUser(ctx, id, func(u *User) error {
			fe := fieldErrors{}
			f.apply(fe, u, false)
			return fe.err()
		})
		if err != nil {
			return err
		}
		return a.c.addPersonEvent(ec, ts, a.event(actionUpdate), objectUser, u.ID, u.Name, nil)
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

// delete removes the user, their role assignments and logins: their access
// ends when the answer is sent.
func (a usersAPI) delete(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = a.c.store.tx(ctx, func(ts *store) error {
		u, err := ts.deleteUser(ctx, id)
		if err != nil {
			return err
		}
		return a.c.addPersonEvent(ec, ts, a.event(actionDestroy), objectUser, u.ID, u.Name, nil)
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

// addPersonEvent stores, through ts (the change's transaction), the event
// of an admin's change to a user, guest, role assignment or invite.
func (c *Controller) addPersonEvent(ec echo.Context, ts *store, typ, objType string, id int64, name string, placeID *int64) error {
	e := c.requestEvent(ec, typ)
	e.ObjectType, e.ObjectID, e.ObjectName, e.PlaceID, e.Success = objType, ptr(id), name, placeID, true
	return ts.addEvent(ec.Request().Context(), &e)
}
