package lockctl

import (
	"context"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/mail"
)

// linkURL is where the holder opens the link: the landing page, with the
// secret in the URL fragment so that it never reaches a server log.
func (c *Controller) linkURL(ec echo.Context, secret string) string {
	base := strings.TrimSuffix(c.opts.PublicURL, "/")
	if base == "" {
		base = ec.Scheme() + "://" + ec.Request().Host + strings.TrimSuffix(ec.Request().URL.Path, "/group_links")
	}
	return base + "/grouplinks#" + secret
}

// mailLink emails a new link to its holder with the doors and the window in
// the place's time zone, and the QR code when there is one. The outcome is
// recorded as a group_link.notify event; the message itself, which holds the
// secret, is never logged.
func (c *Controller) mailLink(ec echo.Context, l GroupLink, g Group, secret string, qr []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ec.Request().Context()), 30*time.Second)
	defer cancel()
	e := c.requestEvent(ec, EventGroupLinkNotify)
	e.ObjectType, e.ObjectID, e.ObjectName, e.PlaceID = objectGroupLink, ptr(l.ID), l.Name, ptr(g.PlaceID)
	msg, err := c.linkMessage(ctx, ec, l, g, secret, qr)
	if err == nil {
		err = c.mailer.Send(ctx, msg)
	}
	e.Success = err == nil
	if err != nil {
		e.Code, e.Message = CodeUnexpected, "email could not be sent"
		c.log.Warn("mail group link", "link_id", l.ID, "err", err)
	}
	c.record(ec, e)
}

func (c *Controller) linkMessage(ctx context.Context, ec echo.Context, l GroupLink, g Group, secret string, qr []byte) (mail.Message, error) {
	place, err := c.store.place(ctx, g.PlaceID)
	if err != nil {
		return mail.Message{}, err
	}
	locks, _, err := c.store.listLocks(ctx, lockFilter{GroupID: &g.ID, Sort: "name"}, page{Limit: maxLimit})
	if err != nil {
		return mail.Message{}, err
	}
	loc, err := time.LoadLocation(place.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	url := c.linkURL(ec, secret)
	doors := make([]string, len(locks))
	for i, lk := range locks {
		doors[i] = lk.Name
	}
	window := windowText(l.ValidFrom, l.ValidUntil, loc)
	text := fmt.Sprintf("Hello %s,\n\nyour access link for %s opens: %s.\n%s\n\nOpen it here: %s\n\nKeep this link to yourself: anyone holding it can open these doors.\n",
		l.Name, place.Name, strings.Join(doors, ", "), window, url)
	var b strings.Builder
	fmt.Fprintf(&b, "<p>Hello %s,</p><p>your access link for %s opens:</p><ul>", html.EscapeString(l.Name), html.EscapeString(place.Name))
	for _, d := range doors {
		fmt.Fprintf(&b, "<li>%s</li>", html.EscapeString(d))
	}
	fmt.Fprintf(&b, "</ul><p>%s</p><p><a href=\"%s\">Open your access link</a></p>", html.EscapeString(window), html.EscapeString(url))
	m := mail.Message{To: l.Email, Subject: "Your access link for " + place.Name, Text: text,
		Key: fmt.Sprintf("lockctl-group-link-%d", l.ID)}
	if len(qr) > 0 {
		b.WriteString(`<p>Or show this code at the reader:<br><img src="cid:access-qr" alt="QR code" width="256" height="256"></p>`)
		m.Attachments = []mail.Attachment{{Filename: "access-qr.png", ContentType: "image/png", Data: qr,
			Inline: true, ContentID: "access-qr"}}
	}
	m.HTML = b.String()
	return m, nil
}

// windowText says when access in [from, until) works, in loc.
func windowText(from, until *time.Time, loc *time.Location) string {
	const layout = "Mon 2 Jan 2006 15:04 MST"
	switch {
	case from != nil && until != nil:
		return fmt.Sprintf("Valid from %s until %s.", from.In(loc).Format(layout), until.In(loc).Format(layout))
	case until != nil:
		return fmt.Sprintf("Valid until %s.", until.In(loc).Format(layout))
	case from != nil:
		return fmt.Sprintf("Valid from %s.", from.In(loc).Format(layout))
	}
	return "Valid until revoked."
}
