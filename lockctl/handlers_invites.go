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
// with a fresh access key secret.
func (c *Controller) createInvite(ec echo.Context) error {
	var req struct {
		Invite inviteInput `json:"invite"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	in := req.Invite
	ctx := ec.Request().Context()
	fe := fieldErrors{}
	if in.InvitesToType == "Team" {
		fe.add("invites_to_type", "Team is not supported by this controller")
	} else if in.InvitesToType != appliesPlace && in.InvitesToType != appliesGroup {
		fe.add("invites_to_type", "is not included in the list")
	} else if err := c.targetExists(ctx, in.InvitesToType, in.InvitesToID); latchkey.KindOf(err) == latchkey.NotFound {
		fe.add("invites_to", "must exist")
	} else if err != nil {
		return err
	}
	ra := RoleAssignment{AppliesToType: in.InvitesToType, AppliesToID: in.InvitesToID}
	if in.RoleAssignment == nil {
		fe.add("role_assignment", "can't be blank")
	} else {
		ra.RoleID = in.RoleAssignment.RoleID
		checkRole(fe, ra.RoleID, in.InvitesToType)
		if in.InvitesToType == appliesGroup {
			parseWindow(fe, in.RoleAssignment.ValidFrom, in.RoleAssignment.ValidUntil, &ra.ValidFrom, &ra.ValidUntil)
		} else if in.RoleAssignment.ValidFrom != nil || in.RoleAssignment.ValidUntil != nil {
			fe.add("role_assignment.valid_until", "can only be set on group invites")
		}
	}
	var guest Guest
	email := ""
	if in.Invitee == nil {
		fe.add("invitee", "can't be blank")
	} else {
		ra.AssigneeType = in.Invitee.ResourceType
		switch ra.AssigneeType {
		case assigneeGuest:
			guest = guestInput{Name: in.Invitee.Name, Email: in.Invitee.Email, PhoneNumber: in.Invitee.PhoneNumber}.guest(fe)
		case assigneeUser:
			if in.Invitee.Email != nil {
				email = strings.ToLower(strings.TrimSpace(*in.Invitee.Email))
			}
			if email == "" {
				fe.add("invitee.email", "can't be blank")
			}
			checkEmail(fe, "invitee.email", email)
			if in.Invitee.Name != nil {
				checkText(fe, "invitee.name", strings.TrimSpace(*in.Invitee.Name), maxPersonName)
			}
		default:
			fe.add("invitee.resource_type", "must be User or Guest")
		}
	}
	link, qr := true, false
	if in.AccessKey != nil {
		if ra.AssigneeType == assigneeUser {
			fe.add("access_key", "is only for guests")
		}
		if in.AccessKey.LinkEnabled != nil {
			link = *in.AccessKey.LinkEnabled
		}
		if in.AccessKey.QRCodeEnabled != nil {
			qr = *in.AccessKey.QRCodeEnabled
		}
	}
	key := ec.Request().Header.Get(idempotencyHeader)
	if key != "" {
		checkText(fe, "idempotency_key", key, maxIdempotencyKey)
		ra.IdempotencyKey = &key
	}
	if err := fe.err(); err != nil {
		return err
	}
	notify := in.Notify == nil || *in.Notify
	ra.Notify = notify

	var ik *issuedKey
	replayed := false
	err := c.store.tx(ctx, func(ts *store) error {
		if key != "" {
			prev, found, err := ts.assignmentByIdempotencyKey(ctx, key)
			if err != nil {
				return err
			}
			if found {
				if err := sameTarget(key, prev, ra); err != nil {
					return err
				}
				replayed, ra = true, prev
				return c.rekeyInvite(ec, ts, ra, link, qr, &ik)
			}
		}
		switch ra.AssigneeType {
		case assigneeGuest:
			if err := c.storeGuest(ec, ts, &guest); err != nil {
				return err
			}
			if err := c.addPersonEvent(ec, ts, EventGuestCreate, objectGuest, guest.ID, guest.Name, nil); err != nil {
				return err
			}
			ra.AssigneeID = guest.ID
		default:
			name := ""
			if in.Invitee.Name != nil {
				name = strings.TrimSpace(*in.Invitee.Name)
			}
			u, err := c.userForEmail(ec, ts, email, name)
			if err != nil {
				return err
			}
			ra.AssigneeID = u.ID
		}
		if err := c.assign(ec, ts, &ra, EventAssignmentCreate); err != nil {
			return err
		}
		if ra.AssigneeType == assigneeGuest {
			k, err := newAccessKey(guest.ID, link, qr)
			if err != nil {
				return err
			}
			if err := c.storeAccessKey(ec, ts, &k, guest.Name); err != nil {
				return err
			}
			ik = &k
		}
		return c.addAssignmentEvent(ec, ts, EventInviteCreate, ra)
	})
	if err != nil {
		return err
	}
	if replayed {
		ec.Response().Header().Set(idempotentReplayedHeader, "true")
	}
	if notify && (!replayed || ik != nil) {
		c.notifyAssignment(ec, ra, ik)
	}
	out, err := c.inviteResponse(ctx, ra, ik)
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out)
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
