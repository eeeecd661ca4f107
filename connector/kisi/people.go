package kisi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// Person access (plugin-and-members.md part B): guests, users, group role
// assignments with validity, guest access keys through invites, user
// logins, and unlocks with a person's credential.

var _ connector.PersonAccess = (*Client)(nil)

// roleGroupBasic is Kisi's group role that unlocks the group's doors.
const roleGroupBasic = "group_basic"

// assigneeType is Kisi's name for a kind of person.
func assigneeType(k connector.PersonKind) string {
	if k == connector.PersonMember {
		return "User"
	}
	return "Guest"
}

// personKind reads Kisi's assignee type.
func personKind(t string) connector.PersonKind {
	if t == "User" {
		return connector.PersonMember
	}
	return connector.PersonGuest
}

// roleJSON is a RoleAssignment as Kisi sends it (current and deprecated
// field names).
type roleJSON struct {
	ID            int64  `json:"id"`
	AppliesToType string `json:"applies_to_type"`
	AppliesToID   int64  `json:"applies_to_id"`
	AssigneeType  string `json:"assignee_type"`
	AssigneeID    int64  `json:"assignee_id"`
	GroupID       *int64 `json:"group_id"`
	Assignee      *struct {
		Name string `json:"name"`
	} `json:"assignee"`
	ValidFrom  *time.Time `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
}

func (j roleJSON) toRole() connector.RoleAssignment {
	r := connector.RoleAssignment{ID: j.ID, GroupID: j.AppliesToID, ValidFrom: utc(j.ValidFrom), ValidUntil: utc(j.ValidUntil),
		Person: connector.PersonRef{Kind: personKind(j.AssigneeType), ID: j.AssigneeID}}
	if r.GroupID == 0 && j.GroupID != nil {
		r.GroupID = *j.GroupID
	}
	if j.Assignee != nil {
		r.PersonName = j.Assignee.Name
	}
	return r
}

type inviteRequest struct {
	Invite inviteJSON `json:"invite"`
}

type inviteJSON struct {
	InvitesToType  string            `json:"invites_to_type"`
	InvitesToID    int64             `json:"invites_to_id"`
	Invitee        inviteeJSON       `json:"invitee"`
	RoleAssignment inviteRoleJSON    `json:"role_assignment"`
	AccessKey      inviteAccessKeyJS `json:"access_key"`
	Notify         bool              `json:"notify"`
}

type inviteeJSON struct {
	ResourceType string  `json:"resource_type"`
	Name         string  `json:"name"`
	Email        *string `json:"email"`
	PhoneNumber  *string `json:"phone_number"`
}

type inviteRoleJSON struct {
	RoleID     string  `json:"role_id"`
	ValidFrom  *string `json:"valid_from"`
	ValidUntil *string `json:"valid_until"`
}

type inviteAccessKeyJS struct {
	LinkEnabled   bool `json:"link_enabled"`
	QRCodeEnabled bool `json:"qr_code_enabled"`
}

// InviteGuest creates a guest, their group_basic role on the group with
// the window and an access key in one call (POST /invites), under the
// spec's Idempotency-Key when the controller honours one. The access key's
// secret (and QR token and image) are read from the answer where the
// controller includes them (lockctl does; Kisi delivers them itself, when
// notify is set). Errors as on CreateLink; a create whose person or role
// was deleted, or whose key was voided, is a Conflict wrapping
// connector.ErrCreationGone.
func (cl *Client) InviteGuest(ctx context.Context, spec connector.GuestSpec) (connector.GuestGrant, error) {
	var email *string
	if spec.Email != "" {
		email = &spec.Email
	}
	gs := strconv.FormatInt(spec.Role.GroupID, 10)
	c := call{
		method: http.MethodPost,
		path:   []string{"invites"},
		body: inviteRequest{Invite: inviteJSON{
			InvitesToType: "Group", InvitesToID: spec.Role.GroupID,
			Invitee:        inviteeJSON{ResourceType: "Guest", Name: spec.Name, Email: email},
			RoleAssignment: inviteRoleJSON{RoleID: roleGroupBasic, ValidFrom: rfc3339(spec.Role.ValidFrom), ValidUntil: rfc3339(spec.Role.ValidUntil)},
			AccessKey:      inviteAccessKeyJS{LinkEnabled: true, QRCodeEnabled: spec.QR},
			Notify:         spec.Role.Notify,
		}},
		policy:  retryCreate,
		op:      "invite a guest to group " + gs,
		subject: "the guest invite",
	}
	cl.keyed(&c, spec.Role.IdempotencyKey)
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.GuestGrant{}, err
	}
	var out struct {
		InviteeID        int64    `json:"invitee_id"`
		RoleAssignmentID int64    `json:"role_assignment_id"`
		RoleAssignment   roleJSON `json:"role_assignment"`
		AccessKey        *struct {
			Secret  *string `json:"secret"`
			QRToken *string `json:"quick_response_code_token"`
			QRImage *string `json:"quick_response_code_image"`
		} `json:"access_key"`
	}
	if err := decode(c, resp, &out); err != nil {
		return connector.GuestGrant{}, err
	}
	g := connector.GuestGrant{Guest: connector.PersonRef{Kind: connector.PersonGuest, ID: out.InviteeID}}
	g.Role = out.RoleAssignment.toRole()
	g.Role.ID, g.Role.GroupID, g.Role.Person = out.RoleAssignmentID, spec.Role.GroupID, g.Guest
	if ak := out.AccessKey; ak != nil {
		g.Secret, g.QRToken, g.QRImagePNG = deref(ak.Secret), deref(ak.QRToken), decodePNG(deref(ak.QRImage))
	}
	if g.Guest.ID == 0 || g.Role.ID == 0 {
		return connector.GuestGrant{}, wrapOp(c, unreadable(c, fmt.Errorf("invite answer names no guest or role assignment")))
	}
	return g, nil
}

// keyed sends key as c's Idempotency-Key when the controller honours one,
// which makes the create safe to retry.
func (cl *Client) keyed(c *call, key string) {
	if cl.opts.IdempotentCreates && key != "" {
		c.idempotencyKey, c.policy = key, retryIdempotent
	}
}

type userJSON struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

func (j userJSON) toPerson() connector.Person {
	return connector.Person{PersonRef: connector.PersonRef{Kind: connector.PersonMember, ID: j.ID}, Name: j.Name, Email: j.Email}
}

// FindUser returns the user whose email is email (GET /users?email=),
// compared without regard to case. Errors as on ListLinks.
func (cl *Client) FindUser(ctx context.Context, email string) (connector.Person, bool, error) {
	js, err := listAll[userJSON](ctx, cl, call{method: http.MethodGet, path: []string{"users"}, policy: retryIdempotent,
		query: url.Values{"email": {email}}, op: "find a user by email", subject: "the user list"})
	if err != nil {
		return connector.Person{}, false, err
	}
	for _, j := range js {
		if strings.EqualFold(j.Email, email) {
			return j.toPerson(), true, nil
		}
	}
	return connector.Person{}, false, nil
}

// CreateUser creates a user (POST /users). It is not retried once sent:
// FindUser finds a user a lost answer made.
func (cl *Client) CreateUser(ctx context.Context, name, email string) (connector.Person, error) {
	c := call{method: http.MethodPost, path: []string{"users"}, policy: retryCreate,
		body: map[string]any{"user": map[string]any{"email": email, "name": name}},
		op:   "create a user", subject: "the user"}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.Person{}, err
	}
	var j userJSON
	if err := decode(c, resp, &j); err != nil {
		return connector.Person{}, err
	}
	return j.toPerson(), nil
}

// DeletePerson deletes a guest (DELETE /guests/{id}) or a user (DELETE
// /users/{id}); a missing one is a NotFound error.
func (cl *Client) DeletePerson(ctx context.Context, p connector.PersonRef) error {
	ids := strconv.FormatInt(p.ID, 10)
	res := "guests"
	if p.Kind == connector.PersonMember {
		res = "users"
	}
	_, err := cl.do(ctx, call{method: http.MethodDelete, path: []string{res, ids}, policy: retryIdempotent,
		op: "delete " + strings.TrimSuffix(res, "s") + " " + ids, subject: strings.TrimSuffix(res, "s") + " " + ids})
	return err
}

// CreateRole creates a group_basic role assignment on the group with the
// window (POST /role_assignments), under the spec's Idempotency-Key when
// the controller honours one. Errors as on InviteGuest.
func (cl *Client) CreateRole(ctx context.Context, spec connector.RoleSpec) (connector.RoleAssignment, error) {
	gs := strconv.FormatInt(spec.GroupID, 10)
	c := call{
		method: http.MethodPost,
		path:   []string{"role_assignments"},
		body: map[string]any{"role_assignment": map[string]any{
			"applies_to_type": "Group", "applies_to_id": spec.GroupID,
			"assignee_type": assigneeType(spec.Person.Kind), "assignee_id": spec.Person.ID,
			"role_id": roleGroupBasic, "valid_from": rfc3339(spec.ValidFrom), "valid_until": rfc3339(spec.ValidUntil),
			"notify": spec.Notify,
		}},
		policy:  retryCreate,
		op:      "create a role assignment on group " + gs,
		subject: "the role assignment",
	}
	cl.keyed(&c, spec.IdempotencyKey)
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.RoleAssignment{}, err
	}
	var j roleJSON
	if err := decode(c, resp, &j); err != nil {
		return connector.RoleAssignment{}, err
	}
	return j.toRole(), nil
}

// UpdateRole changes the window of role assignment id (PATCH
// /role_assignments/{id}, 204). Without Options.SupportsUpdate it returns
// connector.ErrUpdateUnsupported without a request, as for links.
func (cl *Client) UpdateRole(ctx context.Context, id int64, spec connector.RoleSpec) error {
	if !cl.opts.SupportsUpdate {
		return connector.ErrUpdateUnsupported
	}
	ids := strconv.FormatInt(id, 10)
	_, err := cl.do(ctx, call{method: http.MethodPatch, path: []string{"role_assignments", ids}, policy: retryIdempotent,
		body: map[string]any{"role_assignment": map[string]any{"valid_from": rfc3339(spec.ValidFrom), "valid_until": rfc3339(spec.ValidUntil)}},
		op:   "update role assignment " + ids, subject: "role assignment " + ids})
	return err
}

// DeleteRole deletes role assignment id (DELETE /role_assignments/{id}); a
// missing one is a NotFound error.
func (cl *Client) DeleteRole(ctx context.Context, id int64) error {
	ids := strconv.FormatInt(id, 10)
	_, err := cl.do(ctx, call{method: http.MethodDelete, path: []string{"role_assignments", ids}, policy: retryIdempotent,
		op: "delete role assignment " + ids, subject: "role assignment " + ids})
	return err
}

// ListRoles lists group role assignments (GET /role_assignments, all
// pages): of one person, of one group, or all.
func (cl *Client) ListRoles(ctx context.Context, f connector.RoleFilter) ([]connector.RoleAssignment, error) {
	q := url.Values{"applies_to_type": {"Group"}}
	if f.GroupID != 0 {
		q.Set("applies_to_id", strconv.FormatInt(f.GroupID, 10))
	}
	if f.Person != nil {
		q.Set("assignee_type", assigneeType(f.Person.Kind))
		q.Set("assignee_id", strconv.FormatInt(f.Person.ID, 10))
	}
	js, err := listAll[roleJSON](ctx, cl, call{method: http.MethodGet, path: []string{"role_assignments"}, policy: retryIdempotent,
		query: q, op: "list role assignments", subject: "the role assignment list"})
	if err != nil {
		return nil, err
	}
	out := make([]connector.RoleAssignment, 0, len(js))
	for _, j := range js {
		if j.AppliesToType == "" || j.AppliesToType == "Group" {
			out = append(out, j.toRole())
		}
	}
	return out, nil
}

// VoidRole settles a role assignment or invite creation made under key
// with POST /role_assignments/void (a lockctl extension): the role
// assignment it made, if any, is deleted and returned with its person, and
// a create under the key arriving later makes nothing.
func (cl *Client) VoidRole(ctx context.Context, key string) (connector.RoleAssignment, bool, error) {
	c := call{method: http.MethodPost, path: []string{"role_assignments", "void"}, policy: retryIdempotent,
		body: map[string]string{"idempotency_key": key}, op: "void a role assignment creation", subject: "the role assignment creation"}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.RoleAssignment{}, false, err
	}
	var out struct {
		RoleAssignmentID *int64  `json:"role_assignment_id"`
		AssigneeType     *string `json:"assignee_type"`
		AssigneeID       *int64  `json:"assignee_id"`
	}
	if err := decode(c, resp, &out); err != nil {
		return connector.RoleAssignment{}, false, err
	}
	if out.RoleAssignmentID == nil {
		return connector.RoleAssignment{}, false, nil
	}
	r := connector.RoleAssignment{ID: *out.RoleAssignmentID}
	if out.AssigneeType != nil && out.AssigneeID != nil {
		r.Person = connector.PersonRef{Kind: personKind(*out.AssigneeType), ID: *out.AssigneeID}
	}
	return r, true, nil
}

// CreateLogin makes a device login for the user with email (POST /logins
// with login.email, on the user's behalf) and returns its secret. It is
// not retried once sent.
func (cl *Client) CreateLogin(ctx context.Context, email, name string) (connector.PersonLogin, error) {
	c := call{method: http.MethodPost, path: []string{"logins"}, policy: retryCreate,
		body: map[string]any{"login": map[string]any{"type": "device", "name": name, "email": email}, "user": map[string]any{}},
		op:   "create a login for a user", subject: "the user's login"}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.PersonLogin{}, err
	}
	var out struct {
		ID     int64   `json:"id"`
		Secret *string `json:"secret"`
		Token  *string `json:"authentication_token"`
	}
	if err := decode(c, resp, &out); err != nil {
		return connector.PersonLogin{}, err
	}
	l := connector.PersonLogin{ID: out.ID, Secret: deref(out.Secret)}
	if l.Secret == "" {
		l.Secret = deref(out.Token)
	}
	if l.Secret == "" {
		return connector.PersonLogin{}, wrapOp(c, unreadable(c, fmt.Errorf("login answer carries no secret")))
	}
	return l, nil
}

// ListLogins lists the logins of user userID (GET /logins?user_id=, all
// pages), without their secrets. Errors as on ListLinks.
func (cl *Client) ListLogins(ctx context.Context, userID int64) ([]connector.PersonLogin, error) {
	js, err := listAll[Login](ctx, cl, call{method: http.MethodGet, path: []string{"logins"}, policy: retryIdempotent,
		query: url.Values{"user_id": {strconv.FormatInt(userID, 10)}}, op: "list the logins of a user", subject: "the user's logins"})
	if err != nil {
		return nil, err
	}
	out := make([]connector.PersonLogin, len(js))
	for i, j := range js {
		out[i] = connector.PersonLogin{ID: j.ID, Name: j.Name}
	}
	return out, nil
}

var errNoCredential = &latchkey.Error{Kind: latchkey.Invalid, Msg: "a person credential is required"}

// scheme is the Authorization scheme of a person credential.
func scheme(k connector.PersonKind) string {
	if k == connector.PersonMember {
		return "KISI-LOGIN"
	}
	return "KISI-ACCESS-KEY"
}

// PersonLocks lists the locks the person holding pc may open (GET /locks
// with "KISI-ACCESS-KEY <secret>" for a guest, "KISI-LOGIN <secret>" for a
// member). Errors as on LinkLocks.
func (cl *Client) PersonLocks(ctx context.Context, pc connector.PersonCredential) ([]connector.Lock, error) {
	if pc.Secret == "" {
		return nil, fmt.Errorf("kisi: list locks of a person: %w", errNoCredential)
	}
	js, err := listAll[lockJSON](ctx, cl, call{method: http.MethodGet, path: []string{"locks"}, policy: retryIdempotent,
		secret: pc.Secret, scheme: scheme(pc.Kind), op: "list locks of a person", subject: "the person's locks"})
	if err != nil {
		return nil, err
	}
	return toLocks(js), nil
}

// PersonUnlock unlocks lockID as the person holding pc
// (POST /locks/{id}/unlock), with the refusals and retries of Unlock.
func (cl *Client) PersonUnlock(ctx context.Context, pc connector.PersonCredential, lockID int64) error {
	ids := strconv.FormatInt(lockID, 10)
	if pc.Secret == "" {
		return fmt.Errorf("kisi: unlock lock %s: %w", ids, errNoCredential)
	}
	c := call{method: http.MethodPost, path: []string{"locks", ids, "unlock"}, policy: retryUnsent,
		secret: pc.Secret, scheme: scheme(pc.Kind), op: "unlock lock " + ids, subject: "the unlock of lock " + ids, notFound: "lock " + ids}
	if cl.opts.Local != nil {
		return cl.unlockLocal(ctx, c, lockID)
	}
	_, err := cl.do(ctx, c)
	return err
}
