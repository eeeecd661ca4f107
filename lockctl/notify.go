package lockctl

import (
	"context"
	"fmt"
	"html"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/guesttext"
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
	txt := mailText(ec)
	loc := placeZone(place.TimeZone)
	url := c.linkURL(ec, secret)
	doors := make([]string, len(locks))
	for i, lk := range locks {
		doors[i] = lk.Name
	}
	window := windowText(txt, l.ValidFrom, l.ValidUntil, loc)
	greeting := greetingText(txt, l.Name)
	intro := txt.T("ctl.link.intro", map[string]any{"Place": place.Name})
	text := fmt.Sprintf("%s\n\n%s %s.\n%s\n\n%s\n\n%s\n",
		greeting, intro, strings.Join(doors, ", "), window, txt.T("ctl.open.text", map[string]any{"URL": url}), txt.T("ctl.keep", nil))
	var b strings.Builder
	fmt.Fprintf(&b, "<html lang=\"%s\"><body><p>%s</p><p>%s</p><ul>", txt.Lang(), html.EscapeString(greeting), html.EscapeString(intro))
	for _, d := range doors {
		fmt.Fprintf(&b, "<li>%s</li>", html.EscapeString(d))
	}
	fmt.Fprintf(&b, "</ul><p>%s</p><p><a href=\"%s\">%s</a></p><p>%s</p>", html.EscapeString(window), html.EscapeString(url),
		html.EscapeString(txt.T("ctl.open", nil)), html.EscapeString(txt.T("ctl.keep", nil)))
	m := mail.Message{To: l.Email, Subject: txt.T("ctl.subject.link", map[string]any{"Place": place.Name}), Text: text,
		Key: fmt.Sprintf("lockctl-group-link-%d", l.ID)}
	if len(qr) > 0 {
		b.WriteString(qrHTML(txt))
		m.Attachments = []mail.Attachment{{Filename: "access-qr.png", ContentType: "image/png", Data: qr,
			Inline: true, ContentID: "access-qr"}}
	}
	b.WriteString("</body></html>")
	m.HTML = b.String()
	return m, nil
}

// mailText is the language of an email the controller sends: the
// Accept-Language of the request that made the access (a place has no
// locale of its own), else English.
func mailText(ec echo.Context) guesttext.Text {
	al := ec.Request().Header.Get("Accept-Language")
	if len(al) > 200 {
		al = al[:200]
	}
	return guesttext.For("", al)
}

func greetingText(txt guesttext.Text, name string) string {
	if strings.TrimSpace(name) == "" {
		return txt.T("email.greeting.anonymous", nil)
	}
	return txt.T("email.greeting", map[string]any{"Name": name})
}

func qrHTML(txt guesttext.Text) string {
	return `<p>` + html.EscapeString(txt.T("ctl.qr", nil)) + `<br><img src="cid:access-qr" alt="` +
		html.EscapeString(txt.T("ctl.qr.alt", nil)) + `" width="256" height="256"></p>`
}

// windowText says when access in [from, until) works, in loc, naming
// each date once.
func windowText(txt guesttext.Text, from, until *time.Time, loc *time.Location) string {
	at := func(t time.Time) string {
		return txt.T("datetime", map[string]any{"Date": txt.Date(t, loc), "Time": txt.Clock(t, loc)}) + " " + t.In(loc).Format("MST")
	}
	switch {
	case from != nil && until != nil:
		return txt.T("ctl.window", map[string]any{"Window": txt.Window(*from, *until, loc)})
	case until != nil:
		return txt.T("ctl.window.until", map[string]any{"Time": at(*until)})
	case from != nil:
		return txt.T("ctl.window.from", map[string]any{"Time": at(*from)})
	}
	return txt.T("ctl.window.open", nil)
}

// maxZones bounds the zone cache.
const maxZones = 256

var zoneCache = struct {
	sync.Mutex
	m map[string]*time.Location
}{}

// placeZone is the location of a place's zone (UTC when unknown), loaded
// once per name rather than read from the zone files for every email.
func placeZone(name string) *time.Location {
	zoneCache.Lock()
	defer zoneCache.Unlock()
	if loc, ok := zoneCache.m[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		loc = time.UTC
	}
	if zoneCache.m == nil || len(zoneCache.m) >= maxZones {
		zoneCache.m = map[string]*time.Location{}
	}
	zoneCache.m[name] = loc
	return loc
}
