package lockctl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/mail"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

type createLinkRequest struct {
	GroupLink struct {
		GroupID     int64   `json:"group_id"`
		Name        string  `json:"name"`
		Email       *string `json:"email"`
		Phone       *string `json:"phone"`
		ValidFrom   *string `json:"valid_from"`
		ValidUntil  *string `json:"valid_until"`
		LinkEnabled *bool   `json:"link_enabled"`
		QRType      *string `json:"quick_response_code_type"`
	} `json:"group_link"`
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// linkFields checks the fields a create or update may set and stores the
// good ones into l.
func linkFields(fe fieldErrors, l *GroupLink, name, email, phone, from, until *string) {
	if name != nil {
		l.Name = strings.TrimSpace(*name)
		if l.Name == "" {
			fe.add("name", "can't be blank")
		}
		checkText(fe, "name", l.Name, maxLinkName)
	}
	if email != nil {
		l.Email = strings.TrimSpace(*email)
		checkEmail(fe, "email", l.Email)
	}
	if phone != nil {
		l.Phone = strings.TrimSpace(*phone)
		if l.Phone != "" && !e164.MatchString(l.Phone) {
			fe.add("phone", "is invalid (E.164, e.g. +11234567890)")
		}
	}
	parseWindow(fe, from, until, &l.ValidFrom, &l.ValidUntil)
}

// checkEmail adds an error on field unless s is empty or a bare, storable
// email address.
func checkEmail(fe fieldErrors, field, s string) {
	if s == "" || !checkText(fe, field, s, maxEmail) {
		return
	}
	if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
		fe.add(field, "is invalid")
	}
}

// createLink creates a group link. The answer carries the secret (shown
// this once), and for a QR type the QR token and its PNG image; when email
// is set the link is mailed.
func (c *Controller) createLink(ec echo.Context) error {
	var req createLinkRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.GroupLink
	ctx := ec.Request().Context()
	fe := fieldErrors{}
	var g Group
	if r.GroupID == 0 {
		fe.add("group_id", "can't be blank")
	} else {
		found, err := c.store.group(ctx, r.GroupID)
		switch {
		case latchkey.KindOf(err) == latchkey.NotFound:
			fe.add("group", "must exist")
		case err != nil:
			return err
		default:
			g = found
		}
	}
	l := GroupLink{GroupID: r.GroupID, LinkEnabled: r.LinkEnabled == nil || *r.LinkEnabled}
	linkFields(fe, &l, &r.Name, r.Email, r.Phone, r.ValidFrom, r.ValidUntil)
	if r.QRType != nil {
		l.QRType = *r.QRType
		if l.QRType != "" && l.QRType != "online" && l.QRType != "offline" {
			fe.add("quick_response_code_type", "is not included in the list")
		}
	}
	key := ec.Request().Header.Get(idempotencyHeader)
	if key != "" {
		c.checkIdempotencyKey(fe, key)
	}
	if err := fe.err(); err != nil {
		return err
	}
	p, _ := who(ec)
	if p.Login != nil {
		l.CreatedByID = &p.Login.ID
	}
	caller := callerOf(p)
	secret, qrToken, err := c.newLinkSecrets(caller, key)
	if err != nil {
		return err
	}
	l.SecretHash = hashSecret(secret)
	if l.QRType != "" {
		l.QRTokenHash = hashSecret(qrToken)
	}
	replayed := false
	if key != "" {
		// A key seen before is the same create again: the link it made,
		// whose secrets are the ones derived from the key again. Nothing
		// else of the request is taken. One lookup tells; the replay reads
		// the record again in a transaction.
		_, known, err := c.store.idempotency(ctx, key)
		if err != nil {
			return err
		}
		if known {
			err = c.store.tx(ctx, func(ts *store) error {
				r, found, err := ts.idempotency(ctx, key)
				if err != nil || !found {
					return err
				}
				prev, err := replayedLink(ctx, ts, r, caller, l.GroupID)
				if err != nil {
					return err
				}
				replayed, l = true, prev
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	if !replayed {
		// A new link: the link, its event and the key's record together.
		e := c.requestEvent(ec, EventGroupLinkCreate)
		e.ObjectType, e.ObjectName, e.Success, e.PlaceID = objectGroupLink, l.Name, true, ptr(g.PlaceID)
		var r *IdempotencyRecord
		if key != "" {
			r = &IdempotencyRecord{Key: key, Caller: caller, Kind: kindLink, GroupID: l.GroupID}
		}
		if err := c.store.createLinkWithEvent(ctx, &l, &e, r); err != nil {
			return err
		}
	}
	out, png, err := createdAnswer(l, secret, qrToken)
	if err != nil {
		return err
	}
	out.groupLinkResponse = newGroupLinkResponse(l, g, p.Login)
	if replayed {
		ec.Response().Header().Set(idempotentReplayedHeader, "true")
	} else if l.Email != "" && c.mailer != nil {
		c.mailLink(ec, l, g, out.Secret, png)
	}
	return ec.JSON(http.StatusOK, out)
}

// idempotencyHeader names a create so that sending it again (after a lost
// answer or a crash) returns the link it made instead of a second one;
// idempotentReplayedHeader marks such an answer. Both are extensions to
// Kisi's API, in the style of Stripe's.
const (
	idempotencyHeader        = "Idempotency-Key"
	idempotentReplayedHeader = "Idempotent-Replayed"
	maxIdempotencyKey        = 128
)

// newLinkSecrets returns a new link's secret and QR token: derived from
// the Idempotency-Key when the create carries one (so a replay hands out
// the same), random otherwise.
func (c *Controller) newLinkSecrets(caller, key string) (secret, qrToken string, err error) {
	if key != "" {
		return c.derivedSecret("link", caller, key), c.derivedSecret("qr", caller, key), nil
	}
	if secret, err = newSecret(); err != nil {
		return "", "", err
	}
	qrToken, err = newSecret()
	return secret, qrToken, err
}

// createdAnswer is the create answer for l with its secret, and its QR
// token and image when l has a QR type; it also returns the image.
func createdAnswer(l GroupLink, secret, qrToken string) (groupLinkCreatedResponse, []byte, error) {
	out := groupLinkCreatedResponse{Secret: secret}
	if l.QRType == "" {
		return out, nil, nil
	}
	png, err := qrPNG(qrToken)
	if err != nil {
		return out, nil, err
	}
	img := base64.StdEncoding.EncodeToString(png)
	out.QuickResponseCodeToken, out.QuickResponseCodeImage = &qrToken, &img
	return out, png, nil
}

func (c *Controller) getLink(ec echo.Context) error {
	c.audit.flush(ec.Request().Context()) // last_used_at of unlocks just answered
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	l, err := c.store.link(ec.Request().Context(), id)
	if err != nil {
		return err
	}
	out, err := c.linkResponses(ec.Request().Context(), []GroupLink{l})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

func (c *Controller) listLinks(ec echo.Context) error {
	c.audit.flush(ec.Request().Context()) // last_used_at of unlocks just answered
	pg, err := parsePage(ec, 10)
	if err != nil {
		return err
	}
	var f linkFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.GroupID, err = queryInt(ec, "group_id"); err != nil {
		return err
	}
	if f.Sort, err = querySort(ec, "name", "unlock", "valid_until", "group_name"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	links, total, err := c.store.listLinks(ctx, f, pg)
	if err != nil {
		return err
	}
	out, err := c.linkResponses(ctx, links)
	if err != nil {
		return err
	}
	return writeList(ec, pg, total, out)
}

// updateLink is the PATCH /group_links/{id} extension: it changes name,
// email, phone, window and link_enabled; the secret stays. A null
// valid_from or valid_until removes that bound.
func (c *Controller) updateLink(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	var req struct {
		GroupLink map[string]json.RawMessage `json:"group_link"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	fields := map[string]*string{}
	var enabled *bool
	for k, raw := range req.GroupLink {
		switch k {
		case "name", "email", "phone", "valid_from", "valid_until":
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fieldErrors{k: {"must be a string"}}
			}
			if s == nil {
				s = new(string)
			}
			fields[k] = s
		case "link_enabled":
			if err := json.Unmarshal(raw, &enabled); err != nil {
				return fieldErrors{k: {"must be true or false"}}
			}
		}
	}
	ctx := ec.Request().Context()
	var l GroupLink
	err = c.store.tx(ctx, func(ts *store) error {
		var err error
		l, err = ts.updateLink(ctx, id, func(l *GroupLink) error {
			fe := fieldErrors{}
			linkFields(fe, l, fields["name"], fields["email"], fields["phone"], fields["valid_from"], fields["valid_until"])
			if enabled != nil {
				l.LinkEnabled = *enabled
			}
			return fe.err()
		})
		if err != nil {
			return err
		}
		return c.addLinkEvent(ec, ts, EventGroupLinkUpdate, l)
	})
	if err != nil {
		return err
	}
	out, err := c.linkResponses(ctx, []GroupLink{l})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

func (c *Controller) deleteLink(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = c.store.tx(ctx, func(ts *store) error {
		l, err := ts.deleteLink(ctx, id)
		if err != nil {
			return err
		}
		// A late create under the key that made it must not bring it back.
		if err := ts.linkGone(ctx, l.ID); err != nil {
			return err
		}
		return c.addLinkEvent(ec, ts, EventGroupLinkDestroy, l)
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

// addLinkEvent stores, through ts (the change's transaction), the event of
// a change to link l by the requesting admin. (A create's event is stored
// with the link, by createLinkWithEvent.)
func (c *Controller) addLinkEvent(ec echo.Context, ts *store, typ string, l GroupLink) error {
	ctx := ec.Request().Context()
	e := c.requestEvent(ec, typ)
	e.ObjectType, e.ObjectID, e.ObjectName, e.Success = objectGroupLink, ptr(l.ID), l.Name, true
	g, err := ts.group(ctx, l.GroupID)
	switch {
	case err == nil:
		e.PlaceID = ptr(g.PlaceID)
	case latchkey.KindOf(err) != latchkey.NotFound:
		return err
	}
	return ts.addEvent(ctx, &e)
}

// linkResponses renders links with their groups and creators.
func (c *Controller) linkResponses(ctx context.Context, links []GroupLink) ([]groupLinkResponse, error) {
	var groupIDs, loginIDs []int64
	for _, l := range links {
		groupIDs = append(groupIDs, l.GroupID)
		if l.CreatedByID != nil {
			loginIDs = append(loginIDs, *l.CreatedByID)
		}
	}
	groups, err := c.store.groups(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	logins, err := c.store.logins(ctx, loginIDs)
	if err != nil {
		return nil, err
	}
	out := make([]groupLinkResponse, len(links))
	for i, l := range links {
		var by *Login
		if l.CreatedByID != nil {
			if lg, ok := logins[*l.CreatedByID]; ok {
				by = &lg
			}
		}
		out[i] = newGroupLinkResponse(l, groups[l.GroupID], by)
	}
	return out, nil
}
