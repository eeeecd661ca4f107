package connector

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"strings"
	"text/tabwriter"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/guesttext"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/qr"
	"github.com/latchkey/latchkey/mappings"
)

// Kinds of guest email.
const (
	EmailAccess  = "access"
	EmailUpdated = "updated"
	EmailResend  = "resend"
)

// SendVisitEmail sends the guest the email of kind for the access window
// identified by key (see accessKey), once: a message already sent for that
// key, or access that has changed since (a newer email follows), sends
// nothing. Nothing is sent either when the visit's mapping has the
// controller deliver the link (delivery "controller").
//
// The message key is derived from the visit, kind and key, so a retry after
// a send whose outcome was lost is recognised by the outbox (and carries
// the same Message-ID over SMTP). A failed send lands on the timeline
// (email_failed) and is returned with the sender's kind: Unavailable when a
// later attempt may succeed (the email task is retried), Invalid when the
// message was refused for good. It is safe for concurrent use.
func (s *Service) SendVisitEmail(ctx context.Context, id int64, kind, key string) error {
	now := s.now()
	v, err := s.store.Visit(ctx, id)
	if err != nil {
		return err
	}
	current := key
	if kind == EmailResend {
		current, _, _ = strings.Cut(key, ":")
	}
	links, err := s.store.Links(ctx, v.ID)
	if err != nil {
		return err
	}
	latest := accessKey(decisionOf(&v))
	switch {
	case !v.Status.WantsLinks():
		return nil // access ended before the mail went out
	case latest != current:
		// Stale: the window changed and its own email is owed instead.
		if kind == EmailResend {
			return nil
		}
		return s.store.moveEmailDue(ctx, id, key, latest)
	case kind != EmailResend && v.EmailedWindow == key:
		return nil // already sent
	case v.Email == "":
		return s.store.moveEmailDue(ctx, id, key, v.EmailedWindow)
	}
	m, err := s.store.Mapping(ctx, v.InstallID, v.LocationID, v.FlowID)
	if err != nil {
		return err
	}
	if m != nil && m.Delivery == mappings.DeliveryController {
		// The controller mailed its own link when it created it; a second
		// email from us would give the guest two different links.
		if kind == EmailResend {
			return s.store.AddTimeline(ctx, id, now, KindEmailFailed, "email not sent: this flow's links are mailed by the controller")
		}
		return s.store.moveEmailDue(ctx, id, key, v.EmailedWindow)
	}
	msg, err := s.renderEmail(ctx, &v, kind, links)
	if err != nil {
		return err
	}
	msg.Key = fmt.Sprintf("visit-%d-%s-%s", v.ID, kind, key)
	claimed := false
	if !dedupesByKey(s.mail) {
		// Only one sender at a time may hand this message to the mailer.
		window := key
		if kind == EmailResend {
			window = "" // a resend is sent even though the window was emailed
		}
		ok, err := s.store.claimEmail(ctx, id, msg.Key, window, s.opts.Now(), s.opts.Now().Add(s.opts.EmailClaim))
		if err != nil {
			return err
		}
		if !ok {
			if fresh, err := s.store.Visit(ctx, id); err == nil && window != "" && fresh.EmailedWindow == window {
				return nil // sent meanwhile by another sender
			}
			return fmt.Errorf("%s email of visit %d: %w", kind, id, ErrBusy)
		}
		claimed = true
	}
	if err := s.mail.Send(ctx, msg); err != nil {
		if claimed {
			if rerr := s.store.releaseEmail(context.WithoutCancel(ctx), id, msg.Key); rerr != nil {
				s.log.Warn("release email claim", "visit_id", id, "err", rerr)
			}
		}
		how := "failed"
		if latchkey.KindOf(err) == latchkey.Invalid {
			how = refusedForGood // sending it again to this address fails again
		}
		if terr := s.store.AddTimeline(ctx, id, now, KindEmailFailed, fmt.Sprintf("email to %s %s: %s", v.Email, how, latchkey.Message(err))); terr != nil {
			s.log.Warn("timeline", "visit_id", id, "err", terr)
		}
		return fmt.Errorf("send %s email for visit %d: %w", kind, id, err)
	}
	claimKey := ""
	if claimed {
		claimKey = msg.Key
	}
	return s.store.emailSent(ctx, id, key, kind != EmailResend, claimKey,
		TimelineEntry{VisitID: id, At: now, Kind: KindEmailSent, Message: fmt.Sprintf("%s email sent to %s", kind, v.Email)})
}

// dedupesByKey reports whether sender itself delivers a message at most
// once per Message.Key (the outbox does), so no claim is needed.
func dedupesByKey(sender mail.Sender) bool {
	d, ok := sender.(interface{ DedupesByKey() bool })
	return ok && d.DedupesByKey()
}

// Door is a door a visit's pass opens, as the controller reported it to the
// link holder.
type Door struct {
	LockID int64
	Name   string
	// Online is false while the door's controller cannot be reached.
	Online bool
	// LockedDown is true while the door refuses every unlock.
	LockedDown bool
	GroupID    int64
}

// Available reports whether the door can be opened right now, as far as the
// controller said when it listed it.
func (d Door) Available() bool { return d.Online && !d.LockedDown }

// doors lists the doors behind the visit's links, asking the controller as
// each link's holder: what the pass page shows, live.
func (s *Service) doors(ctx context.Context, v *Visit, links []VisitLink) ([]Door, error) {
	ctx, err := s.bindController(ctx, v.InstallID)
	if err != nil {
		return nil, err
	}
	if ds, ok, err := s.personDoors(ctx, v); ok || err != nil {
		return ds, err // a guest or member: their own credential's doors
	}
	var out []Door
	seen := map[int64]bool{}
	for _, l := range links {
		if l.Removed || l.LinkID == 0 {
			continue
		}
		secret, err := s.box.Open(l.SecretEnc, linkAD(v.ID, l.GroupID))
		if err != nil {
			return nil, fmt.Errorf("open link secret of visit %d: %w", v.ID, err)
		}
		locks, err := s.ctl(ctx).LinkLocks(ctx, string(secret))
		if err != nil {
			return nil, fmt.Errorf("doors of link %d: %w", l.LinkID, err)
		}
		for _, lk := range locks {
			if !seen[lk.ID] {
				seen[lk.ID] = true
				out = append(out, Door{LockID: lk.ID, Name: lk.Name, Online: lk.Online, LockedDown: lk.LockedDown, GroupID: l.GroupID})
			}
		}
	}
	return out, nil
}

// qrCode returns the reader QR token of the visit's first link, if any,
// and with image set its PNG: the controller's, kept from the link's
// creation, or one drawn here when the controller sent none.
func (s *Service) qrCode(v *Visit, links []VisitLink, image bool) (string, []byte, error) {
	for _, l := range links {
		if l.Removed || len(l.QRToken) == 0 {
			continue
		}
		ad := linkAD(v.ID, l.GroupID)
		tok, err := s.box.Open(l.QRToken, ad)
		if err != nil {
			return "", nil, fmt.Errorf("open QR token of visit %d: %w", v.ID, err)
		}
		if !image {
			return string(tok), nil, nil
		}
		if len(l.QRImage) > 0 {
			png, err := s.box.Open(l.QRImage, ad)
			if err != nil {
				return "", nil, fmt.Errorf("open QR image of visit %d: %w", v.ID, err)
			}
			return string(tok), png, nil
		}
		png, err := qr.PNG(string(tok), 256)
		if err != nil {
			return "", nil, err
		}
		return string(tok), png, nil
	}
	return "", nil, nil
}

// emailData is what the guest email shows; every string is already in
// the guest's language.
type emailData struct {
	Lang, Heading, Greeting, Intro, Host, PassURL        string
	WhenLabel, When, WhereLabel, Place, Address          string
	DoorsLabel, Open, QRNote, QRNoteText, Personal, Safe string
	Doors                                                []Door
	HasQR                                                bool
}

// The email's HTML works in clients that drop <style>: every style is
// inline. Long words (a 200-character name, the fallback URL) wrap, so
// the card holds at 390 px.
var emailHTML = template.Must(template.New("email").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{{.Heading}}</title></head>
<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111;background:#f6f6f6;margin:0;padding:16px">
<div style="max-width:520px;margin:0 auto;background:#fff;border-radius:12px;padding:20px;overflow-wrap:anywhere;word-break:break-word">
<h1 style="font-size:22px;margin:0 0 12px">{{.Heading}}</h1>
<p>{{.Greeting}}</p>
<p>{{.Intro}}</p>
{{if .Host}}<p>{{.Host}}</p>{{end}}
<p><strong>{{.WhenLabel}}:</strong> {{.When}}</p>
<p><strong>{{.WhereLabel}}:</strong> {{.Place}}{{if .Address}}<br>{{.Address}}{{end}}</p>
{{if .Doors}}<p><strong>{{.DoorsLabel}}:</strong></p><ul>{{range .Doors}}<li>{{.Name}}</li>{{end}}</ul>{{end}}
<p style="margin:24px 0"><a href="{{.PassURL}}" style="background:#0b57d0;color:#fff;padding:14px 22px;border-radius:8px;text-decoration:none;font-weight:600;display:inline-block">{{.Open}}</a></p>
{{if .HasQR}}<p><img src="cid:qr.png" alt="QR" width="220" height="220" style="max-width:100%;height:auto"></p><p style="font-size:14px">{{.QRNote}} <a href="{{.PassURL}}">{{.Open}}</a></p>{{end}}
<p style="color:#555;font-size:13px">{{.Personal}}</p>
<p style="color:#555;font-size:13px;overflow-wrap:anywhere;word-break:break-all"><a href="{{.PassURL}}" style="color:#0b57d0">{{.PassURL}}</a></p>
</div></body></html>`))

// renderEmail builds the guest email in the location's language: the
// place, its address and the host when known, the window in the
// location's zone with each date once, the doors, the pass link, the
// reader QR inline (explained as the door reader's), and an .ics with the
// window.
func (s *Service) renderEmail(ctx context.Context, v *Visit, kind string, links []VisitLink) (mail.Message, error) {
	doors, err := s.emailDoors(ctx, v, links)
	if err != nil {
		return mail.Message{}, err
	}
	loc := s.location(v.TimeZone)
	txt := guesttext.For(v.Locale, "")
	from, until := deref(v.ValidFrom), deref(v.ValidUntil)
	place := v.LocationName
	if place == "" {
		place = txt.T("email.place.fallback", nil)
	}
	url := s.PassURL(*v)
	data := emailData{
		Lang: txt.Lang(), PassURL: url, Doors: doors, Place: place, Address: v.LocationAddress,
		When: txt.Window(from, until, loc), WhenLabel: txt.T("email.when", nil), WhereLabel: txt.T("email.where", nil),
		DoorsLabel: txt.T("email.doors", nil), Open: txt.T("email.open", nil),
		Heading: txt.T("email.heading", nil), Intro: txt.T("email.intro", map[string]any{"Place": place}),
		Greeting: txt.T("email.greeting.anonymous", nil),
		QRNote:   txt.T("email.qr", nil), QRNoteText: txt.T("email.qr.text", nil),
		Personal: txt.T("email.personal", nil), Safe: txt.T("email.personal.text", nil),
	}
	if name := strings.TrimSpace(v.Name); name != "" {
		data.Greeting = txt.T("email.greeting", map[string]any{"Name": name})
	}
	if v.HostName != "" {
		data.Host = txt.T("email.host", map[string]any{"Host": v.HostName})
	}
	subjectID := "email.subject"
	switch kind {
	case EmailUpdated:
		subjectID, data.Heading = "email.subject.updated", txt.T("email.heading.updated", nil)
		data.Intro = txt.T("email.intro.updated", map[string]any{"Place": place})
	case EmailResend:
		subjectID = "email.subject.resend"
	}
	subject := txt.T(subjectID, map[string]any{"Place": place, "Date": txt.Date(from, loc)})
	msg := mail.Message{To: v.Email, Subject: subject}
	tok, png, err := s.qrCode(v, links, true)
	if err == nil && tok == "" {
		tok, png, _, err = s.personQR(ctx, v) // a guest's access key QR
	}
	if err != nil {
		return mail.Message{}, err
	}
	if tok != "" {
		data.HasQR = true
		msg.Attachments = append(msg.Attachments, mail.Attachment{Filename: "qr.png", ContentType: "image/png", Data: png, Inline: true, ContentID: "qr.png"})
	}
	var html bytes.Buffer
	if err := emailHTML.Execute(&html, data); err != nil {
		return mail.Message{}, fmt.Errorf("render email: %w", err)
	}
	msg.HTML = html.String()
	msg.Text = emailText(data)
	if !from.IsZero() && !until.IsZero() {
		msg.Attachments = append(msg.Attachments, mail.Attachment{
			Filename: "visit.ics", ContentType: "text/calendar; method=PUBLISH; charset=utf-8",
			Data: icsEvent(v, url, txt.T("ics.summary", map[string]any{"Place": place}),
				txt.T("ics.description", map[string]any{"URL": url}), s.now()),
		})
	}
	return msg, nil
}

// emailText is the plain-text part, complete on its own.
func emailText(d emailData) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n\n%s\n\n", d.Heading, d.Greeting, d.Intro)
	if d.Host != "" {
		fmt.Fprintf(&b, "%s\n\n", d.Host)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s:\t%s\n", d.WhenLabel, d.When)
	fmt.Fprintf(tw, "%s:\t%s\n", d.WhereLabel, d.Place)
	if d.Address != "" {
		fmt.Fprintf(tw, "\t%s\n", d.Address)
	}
	for i, door := range d.Doors {
		label := ""
		if i == 0 {
			label = d.DoorsLabel + ":"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, door.Name)
	}
	tw.Flush()
	fmt.Fprintf(&b, "\n%s: %s\n", d.Open, d.PassURL)
	if d.HasQR {
		fmt.Fprintf(&b, "\n%s\n", d.QRNoteText)
	}
	fmt.Fprintf(&b, "\n%s\n", d.Safe)
	return b.String()
}

// icsEvent is a calendar entry for the visit window (RFC 5545). Its UID is
// the visit's, and SEQUENCE grows with the visit's version, so the entry in
// an "updated" email replaces the earlier one in the guest's calendar.
func icsEvent(v *Visit, passURL, summary, description string, now time.Time) []byte {
	const f = "20060102T150405Z"
	esc := strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)
	lines := []string{
		"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//latchkey//visit pass//EN", "METHOD:PUBLISH",
		"BEGIN:VEVENT",
		fmt.Sprintf("UID:visit-%d@latchkey", v.ID),
		fmt.Sprintf("SEQUENCE:%d", max(v.Version-1, 0)),
		"DTSTAMP:" + now.UTC().Format(f),
		"DTSTART:" + deref(v.ValidFrom).UTC().Format(f),
		"DTEND:" + deref(v.ValidUntil).UTC().Format(f),
		"SUMMARY:" + esc.Replace(summary),
		"DESCRIPTION:" + esc.Replace(description),
		"URL:" + passURL,
		"LOCATION:" + esc.Replace(joinNonEmpty(", ", v.LocationName, v.LocationAddress)),
		"END:VEVENT", "END:VCALENDAR",
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(foldICS(l))
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// joinNonEmpty joins the parts that are not empty with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// foldICS folds a content line longer than 75 octets as RFC 5545 §3.1
// requires: CRLF and one space before each continuation. It never splits
// a UTF-8 sequence.
func foldICS(line string) string {
	const limit = 75
	if len(line) <= limit {
		return line
	}
	var b strings.Builder
	n := 0
	for _, r := range line {
		size := len(string(r))
		if n+size > limit {
			b.WriteString("\r\n ")
			n = 1
		}
		b.WriteRune(r)
		n += size
	}
	return b.String()
}
