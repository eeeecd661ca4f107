package lockctl

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

type inviteInput struct {
	InvitesToType string `json:"invites_to_type"`
	InvitesToID   int64  `json:"invites_to_id"`
	Invitee       *struct {
		ResourceType string  `json:"resource_type"`
		Email        *string `json:"email"`
		Name         *string `json:"name"`
		PhoneNumber  *string `json:"phone_number"`
	} `json:"invitee"`
	RoleAssignment *struct {
		RoleID     string  `json:"role_id"`
		ValidFrom  *string `json:"valid_from"`
		ValidUntil *string `json:"valid_until"`
	} `json:"role_assignment"`
	AccessKey *struct {
		LinkEnabled   *bool `json:"link_enabled"`
		QRCodeEnabled *bool `json:"qr_code_enabled"`
	} `json:"access_key"`
	Notify *bool `json:"notify"`
}

// issuedKey is an access key with the secrets made for it, which exist
// only in the answer (and the email) of the call that made them.
type issuedKey struct {
	Key     AccessKey
	Secret  string
	QRToken string
	QRPNG   []byte
}

// newAccessKey makes an access key for guest with fresh secrets.
func newAccessKey(guestID int64, link, qr bool) (issuedKey, error) {
	secret, err := newSecret()
	if err != nil {
		return issuedKey{}, err
	}
	token, err := newSecret()
	if err != nil {
		return issuedKey{}, err
	}
	ik := issuedKey{Key: AccessKey{GuestID: guestID, LinkEnabled: link, QRCodeEnabled: qr,
		SecretHash: hashSecret(secret), QRTokenHash: hashSecret(token)}, Secret: secret, QRToken: token}
	if qr {
		if ik.QRPNG, err = qrPNG(token); err != nil {
			return issuedKey{}, err
		}
	}
	return ik, nil
}

// storeAccessKey stores ik through ts with its event, first removing the
// guest's oldest keys beyond maxAccessKeysPerGuest-1.
func (c *Controller) storeAccessKey(ec echo.Context, ts *store, ik *issuedKey, guestName string) error {
	ctx := ec.Request().Context()
	keys, err := ts.accessKeysOf(ctx, ik.Key.GuestID)
	if err != nil {
		return err
	}
	for i := 0; i+maxAccessKeysPerGuest-1 < len(keys); i++ {
		if err := c.destroyAccessKey(ec, ts, keys[i], guestName); err != nil {
			return err
		}
	}
	if err := ts.createAccessKey(ctx, &ik.Key); err != nil {
		return err
	}
	return c.addPersonEvent(ec, ts, EventAccessKeyCreate, objectAccessKey, ik.Key.ID, guestName, nil)
}

// destroyAccessKey deletes k through ts with its event.
func (c *Controller) destroyAccessKey(ec echo.Context, ts *store, k AccessKey, guestName string) error {
	if err := ts.deleteAccessKey(ec.Request().Context(), k.ID); err != nil {
		return err
	}
	return c.addPersonEvent(ec, ts, EventAccessKeyDestroy, objectAccessKey, k.ID, guestName, nil)
}

// createInvite is POST /invites: a person (a new guest, or the user with the
// email, created when there is none), their role assignment on the place
// or group, and for a guest an access key, in one transaction. notify
// (default true) mails the person their access. As an extension, the
// access key in the answer carries its secret (and QR token when
// qr_code_enabled), which opens the guest's doors as "KISI-ACCESS-KEY
// <secret>"; Idempotency-Key makes a repeated invite return the first one,
// with a fresh access key secret, and one sent after the invite's role
// assignment was deleted or its key voided answers 410 and makes nothing.
func (c *Controller) createInvite(ec echo.Context) error {
	var req struct {
		Invite inviteInput `json:"invite"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	inv, err := c.parseInvite(ctx, req.Invite, ec.Request().Header.Get(idempotencyHeader))
	if err != nil {
		return err
	}
	var ik *issuedKey
	replayed := false
	p, _ := who(ec)
	caller := callerOf(p)
	err = c.store.tx(ctx, func(ts *store) error {
		if inv.key != "" {
			prev, found, err := keyedAssignment(ctx, ts, inv.key, caller)
			if err != nil {
				return err
			}
			if found {
				if err := sameTarget(inv.key, prev, inv.ra); err != nil {
					return err
				}
				replayed, inv.ra = true, prev
				return c.rekeyInvite(ec, ts, prev, inv.link, inv.qr, &ik)
			}
		}
		var err error
		if ik, err = c.storeInvite(ec, ts, &inv); err != nil || inv.key == "" {
			return err
		}
		return recordAssignmentKey(ctx, ts, inv.key, caller, inv.ra)
	})
	if err != nil {
		return err
	}
	if replayed {
		ec.Response().Header().Set(idempotentReplayedHeader, "true")
	}
	if inv.ra.Notify && (!replayed || ik != nil) {
		c.notifyAssignment(ec, inv.ra, ik)
	}
	out, err := c.inviteResponse(ctx, inv.ra, ik)
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out)
}

// invite is a checked POST /invites: the role assignment to make (its
// assignee still to be found or created), the guest or the user's email
// and name, the access key's switches and the Idempotency-Key.
type invite struct {
	ra          RoleAssignment
	guest       Guest
	email, name string
	link, qr    bool
	key         string
}

// parseInvite checks in; every problem is a 422 naming its field.
func (c *Controller) parseInvite(ctx context.Context, in inviteInput, key string) (invite, error) {
	fe := fieldErrors{}
	inv := invite{ra: RoleAssignment{AppliesToType: in.InvitesToType, AppliesToID: in.InvitesToID,
		Notify: in.Notify == nil || *in.Notify}, link: true, key: key}
	switch err := c.targetExists(ctx, in.InvitesToType, in.InvitesToID); {
	case in.InvitesToType == "Team":
		fe.add("invites_to_type", "Team is not supported by this controller")
	case in.InvitesToType != appliesPlace && in.InvitesToType != appliesGroup:
		fe.add("invites_to_type", "is not included in the list")
	case latchkey.KindOf(err) == latchkey.NotFound:
		fe.add("invites_to", "must exist")
	case err != nil:
		return inv, err
	}
	if r := in.RoleAssignment; r == nil {
		fe.add("role_assignment", "can't be blank")
	} else {
		inv.ra.RoleID = r.RoleID
		checkRole(fe, r.RoleID, in.InvitesToType)
		if in.InvitesToType == appliesGroup {
			parseWindow(fe, r.ValidFrom, r.ValidUntil, &inv.ra.ValidFrom, &inv.ra.ValidUntil)
		} else if r.ValidFrom != nil || r.ValidUntil != nil {
			fe.add("role_assignment.valid_until", "can only be set on group invites")
		}
	}
	if p := in.Invitee; p == nil {
		fe.add("invitee", "can't be blank")
	} else {
		inv.ra.AssigneeType = p.ResourceType
		switch p.ResourceType {
		case assigneeGuest:
			inv.guest = guestInput{Name: p.Name, Email: p.Email, PhoneNumber: p.PhoneNumber}.guest(fe)
		case assigneeUser:
			if p.Email != nil {
				inv.email = strings.ToLower(strings.TrimSpace(*p.Email))
			}
			if inv.email == "" {
				fe.add("invitee.email", "can't be blank")
			}
			checkEmail(fe, "invitee.email", inv.email)
			if p.Name != nil {
				inv.name = strings.TrimSpace(*p.Name)
				checkText(fe, "invitee.name", inv.name, maxPersonName)
			}
		default:
			fe.add("invitee.resource_type", "must be User or Guest")
		}
	}
	if k := in.AccessKey; k != nil {
		if inv.ra.AssigneeType == assigneeUser {
			fe.add("access_key", "is only for guests")
		}
		if k.LinkEnabled != nil {
			inv.link = *k.LinkEnabled
		}
		if k.QRCodeEnabled != nil {
			inv.qr = *k.QRCodeEnabled
		}
	}
	if key != "" {
		checkText(fe, "idempotency_key", key, maxIdempotencyKey)
	}
	return inv, fe.err()
}

// storeInvite creates, through ts, the guest (or finds or creates the
// user), the role assignment and a guest's access key, each with its
// event, and the invite.create event.
func (c *Controller) storeInvite(ec echo.Context, ts *store, inv *invite) (*issuedKey, error) {
	if inv.ra.AssigneeType == assigneeGuest {
		if err := c.storeGuest(ec, ts, &inv.guest); err != nil {
			return nil, err
		}
		if err := c.addPersonEvent(ec, ts, EventGuestCreate, objectGuest, inv.guest.ID, inv.guest.Name, nil); err != nil {
			return nil, err
		}
		inv.ra.AssigneeID = inv.guest.ID
	} else {
		u, err := c.userForEmail(ec, ts, inv.email, inv.name)
		if err != nil {
			return nil, err
		}
		inv.ra.AssigneeID = u.ID
	}
	if err := c.assign(ec, ts, &inv.ra, EventAssignmentCreate); err != nil {
		return nil, err
	}
	var ik *issuedKey
	if inv.ra.AssigneeType == assigneeGuest {
		k, err := newAccessKey(inv.guest.ID, inv.link, inv.qr)
		if err != nil {
			return nil, err
		}
		if err := c.storeAccessKey(ec, ts, &k, inv.guest.Name); err != nil {
			return nil, err
		}
		ik = &k
	}
	return ik, c.addAssignmentEvent(ec, ts, EventInviteCreate, inv.ra)
}

// rekeyInvite answers a repeated invite: a guest's earlier access keys are
// replaced by a fresh one, since their secrets were never delivered.
func (c *Controller) rekeyInvite(ec echo.Context, ts *store, ra RoleAssignment, link, qr bool, ik **issuedKey) error {
	if ra.AssigneeType != assigneeGuest {
		return nil
	}
	ctx := ec.Request().Context()
	g, err := ts.guest(ctx, ra.AssigneeID)
	if err != nil {
		return err
	}
	keys, err := ts.accessKeysOf(ctx, g.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.destroyAccessKey(ec, ts, k, g.Name); err != nil {
			return err
		}
		link, qr = k.LinkEnabled, k.QRCodeEnabled
	}
	k, err := newAccessKey(g.ID, link, qr)
	if err != nil {
		return err
	}
	if err := c.storeAccessKey(ec, ts, &k, g.Name); err != nil {
		return err
	}
	*ik = &k
	return nil
}

func (c *Controller) inviteResponse(ctx context.Context, ra RoleAssignment, ik *issuedKey) (map[string]any, error) {
	p, err := c.loadPeople(ctx, []RoleAssignment{ra})
	if err != nil {
		return nil, err
	}
	full := newAssignmentResponse(ra, p)
	raOut := map[string]any{"id": ra.ID, "resource_type": "RoleAssignment", "role_id": ra.RoleID}
	if ra.AppliesToType == appliesGroup {
		raOut["valid_from"], raOut["valid_until"] = jtp(ra.ValidFrom), jtp(ra.ValidUntil)
	}
	out := map[string]any{
		"id": ra.ID, "resource_type": "Invite", "notify": ra.Notify,
		"created_at": jt(ra.CreatedAt), "updated_at": jt(ra.UpdatedAt),
		"invites_to_type": ra.AppliesToType, "invites_to_id": ra.AppliesToID,
		"invitee_type": ra.AssigneeType, "invitee_id": ra.AssigneeID, "invitee": full["assignee"],
		"role_assignment_id": ra.ID, "role_assignment": raOut,
	}
	if ik != nil {
		ak := map[string]any{"id": ik.Key.ID, "resource_type": "AccessKey", "link_enabled": ik.Key.LinkEnabled,
			"qr_code_enabled": ik.Key.QRCodeEnabled, "secret": ik.Secret}
		if ik.Key.QRCodeEnabled {
			ak["quick_response_code_token"] = ik.QRToken
			ak["quick_response_code_image"] = base64.StdEncoding.EncodeToString(ik.QRPNG)
		}
		out["access_key"] = ak
	}
	return out, nil
}
