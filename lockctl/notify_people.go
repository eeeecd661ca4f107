package lockctl

import (
	"context"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/guesttext"
	"github.com/latchkey/latchkey/internal/mail"
)

// accessURL is the landing page opening with a person credential: fragment
// "key:<secret>" for a guest's access key, "login:<secret>" for a user's
// login. The secret stays in the fragment, out of every server log.
func (c *Controller) accessURL(ec echo.Context, kind, secret string) string {
	base := strings.TrimSuffix(c.opts.PublicURL, "/")
	if base == "" {
		// The controller's own root: the request path up to the resource
		// the notifying call went to.
		path := ec.Request().URL.Path
		for _, r := range []string{"/role_assignments", "/shares", "/invites"} {
			if i := strings.Index(path, r); i >= 0 {
				path = path[:i]
				break
			}
		}
		base = ec.Scheme() + "://" + ec.Request().Host + path
	}
	return base + "/grouplinks#" + kind + ":" + secret
}

// notifyAssignment mails the person of ra their access, in the style of
// the link email: a guest gets their access key's link and QR code (ik,
// from an invite; without one, only what they may open and when), a user
// how to sign in (a link with a login minted for them). The outcome is
// recorded as a role_assignment.notify event; the message, which holds a
// secret, is never logged. Users with send_emails off and people without
// an email address get nothing.
func (c *Controller) notifyAssignment(ec echo.Context, ra RoleAssignment, ik *issuedKey) {
	if c.mailer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ec.Request().Context()), 30*time.Second)
	defer cancel()
	e := c.requestEvent(ec, EventAssignmentNotify)
	e.ObjectType, e.ObjectID, e.ObjectName = objectRoleAssignment, ptr(ra.ID), ra.RoleID
	msg, ok, err := c.personMessage(ctx, ec, ra, ik)
	if err == nil && !ok {
		return
	}
	if err == nil {
		err = c.mailer.Send(ctx, msg)
	}
	e.Success = err == nil
	if err != nil {
		e.Code, e.Message = CodeUnexpected, "email could not be sent"
		c.log.Warn("mail person access", "role_assignment_id", ra.ID, "err", err)
	}
	c.record(ec, e)
}

// personMessage builds the email for ra; ok is false when there is nobody
// to write to.
func (c *Controller) personMessage(ctx context.Context, ec echo.Context, ra RoleAssignment, ik *issuedKey) (mail.Message, bool, error) {
	var m mail.Message
	var name, to, url, how string
	txt := mailText(ec)
	switch ra.AssigneeType {
	case assigneeGuest:
		g, err := c.store.guest(ctx, ra.AssigneeID)
		if err != nil {
			return m, false, err
		}
		name, to = g.Name, g.Email
		if ik != nil && ik.Key.LinkEnabled {
			url, how = c.accessURL(ec, "key", ik.Secret), txt.T("ctl.open", nil)
		}
	default:
		u, err := c.store.user(ctx, ra.AssigneeID)
		if err != nil {
			return m, false, err
		}
		if !u.SendEmails || u.Email == "" {
			return m, false, nil
		}
		name, to = u.Name, u.Email
		secret, err := c.mintSignIn(ec, u)
		if err != nil {
			return m, false, err
		}
		url, how = c.accessURL(ec, "login", secret), txt.T("ctl.signin", nil)
	}
	if to == "" {
		return m, false, nil
	}
	if name == "" {
		name = to
	}
	place, doors, appAccess, err := c.accessScope(ctx, ra, txt)
	if err != nil {
		return m, false, err
	}
	loc := placeZone(place.TimeZone)
	window := windowText(txt, ra.ValidFrom, ra.ValidUntil, loc)
	greeting := greetingText(txt, name)
	intro := txt.T("ctl.access.intro", map[string]any{"Place": place.Name})
	var text, b strings.Builder
	fmt.Fprintf(&text, "%s\n\n%s %s.\n%s\n", greeting, intro, strings.Join(doors, ", "), window)
	fmt.Fprintf(&b, "<html lang=\"%s\"><body><p>%s</p><p>%s</p><ul>", txt.Lang(), html.EscapeString(greeting), html.EscapeString(intro))
	for _, d := range doors {
		fmt.Fprintf(&b, "<li>%s</li>", html.EscapeString(d))
	}
	fmt.Fprintf(&b, "</ul><p>%s</p>", html.EscapeString(window))
	switch {
	case ra.AssigneeType == assigneeUser:
		fmt.Fprintf(&text, "\n%s\n", txt.T("ctl.signin.text", map[string]any{"Email": to, "URL": url}))
		fmt.Fprintf(&b, "<p><a href=\"%s\">%s</a> %s</p>",
			html.EscapeString(url), html.EscapeString(how), html.EscapeString(txt.T("ctl.signin.note", map[string]any{"Email": to})))
		if !appAccess {
			noapp := txt.T("ctl.noapp", nil)
			text.WriteString(noapp + "\n")
			b.WriteString("<p>" + html.EscapeString(noapp) + "</p>")
		}
	case url != "":
		fmt.Fprintf(&text, "\n%s\n\n%s\n", txt.T("ctl.open.text", map[string]any{"URL": url}), txt.T("ctl.keep", nil))
		fmt.Fprintf(&b, "<p><a href=\"%s\">%s</a></p><p>%s</p>", html.EscapeString(url), html.EscapeString(how), html.EscapeString(txt.T("ctl.keep", nil)))
	}
	m = mail.Message{To: to, Subject: txt.T("ctl.subject.access", map[string]any{"Place": place.Name}),
		Key: fmt.Sprintf("lockctl-role-assignment-%d-%d", ra.ID, c.now().UnixNano())}
	if ik != nil && ik.Key.QRCodeEnabled && len(ik.QRPNG) > 0 {
		b.WriteString(qrHTML(txt))
		m.Attachments = []mail.Attachment{{Filename: "access-qr.png", ContentType: "image/png", Data: ik.QRPNG,
			Inline: true, ContentID: "access-qr"}}
	}
	b.WriteString("</body></html>")
	m.Text, m.HTML = text.String(), b.String()
	return m, true, nil
}

// mintSignIn makes a device login for u and returns its secret.
func (c *Controller) mintSignIn(ec echo.Context, u User) (string, error) {
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	p, _ := who(ec)
	l := Login{Name: "Emailed sign-in link", Type: "device", Expire: true, SecretHash: hashSecret(secret),
		MintedBy: c.mintedBy(p), UserID: &u.ID, Email: u.Email}
	err = c.store.tx(ec.Request().Context(), func(ts *store) error {
		if err := c.addUserLogin(ec, ts, &l); err != nil {
			return err
		}
		return c.addLoginEvent(ec, ts, EventLoginCreate, l)
	})
	return secret, err
}

// accessScope returns the place ra gives access at, the names of the doors
// and whether app access is on (always, except for a group without
// login_enabled).
func (c *Controller) accessScope(ctx context.Context, ra RoleAssignment, txt guesttext.Text) (Place, []string, bool, error) {
	f := lockFilter{Sort: "name"}
	placeID, appAccess := ra.AppliesToID, true
	switch ra.AppliesToType {
	case appliesGroup:
		g, err := c.store.group(ctx, ra.AppliesToID)
		if err != nil {
			return Place{}, nil, false, err
		}
		f.GroupID, placeID, appAccess = &g.ID, g.PlaceID, g.LoginEnabled
	case appliesPlace:
		f.PlaceID = &ra.AppliesToID
	default:
		return Place{Name: txt.T("ctl.org", nil), TimeZone: "UTC"}, []string{txt.T("ctl.everydoor", nil)}, true, nil
	}
	place, err := c.store.place(ctx, placeID)
	if err != nil {
		return Place{}, nil, false, err
	}
	locks, _, err := c.store.listLocks(ctx, f, page{Limit: maxLimit})
	if err != nil {
		return Place{}, nil, false, err
	}
	doors := make([]string, len(locks))
	for i, l := range locks {
		doors[i] = l.Name
	}
	return place, doors, appAccess, nil
}
