package connector_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/latchkey/latchkey/internal/qr/qrtest"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/guesttext"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/mappings"
)

// dlPart is one leaf part of a MIME message.
type dlPart struct {
	header textproto.MIMEHeader
	body   []byte // transfer-decoded
}

// dlMIME is a parsed email: its header, text and HTML bodies, and every
// leaf part.
type dlMIME struct {
	header     netmail.Header
	text, html string
	parts      []dlPart
}

// parseMIME parses a raw message as a mail client would.
func parseMIME(t *testing.T, raw []byte) dlMIME {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	out := dlMIME{header: msg.Header}
	var walk func(h textproto.MIMEHeader, body io.Reader)
	walk = func(h textproto.MIMEHeader, body io.Reader) {
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			t.Fatalf("content type %q: %v", h.Get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("next part: %v", err)
				}
				walk(p.Header, p)
			}
		}
		var r io.Reader = body
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s part: %v", mt, err)
		}
		switch {
		case mt == "text/plain" && out.text == "":
			out.text = string(b)
		case mt == "text/html" && out.html == "":
			out.html = string(b)
		}
		out.parts = append(out.parts, dlPart{header: h, body: b})
	}
	walk(textproto.MIMEHeader(msg.Header), msg.Body)
	return out
}

// readerToken checks that token is what the door reader accepts for the
// visit's link: the controller stores only SHA-256 of the link's
// quick_response_code_token.
func (e *dlEnv) checkReaderToken(visitID int64, token string) {
	e.t.Helper()
	links, err := e.store.Links(e.ctx, visitID)
	if err != nil || len(links) != 1 {
		e.t.Fatalf("links of visit %d: %v (%v)", visitID, links, err)
	}
	var stored string
	if err := e.db.Table("lockctl_group_links").Select("quick_response_code_token_hash").Where("id = ?", links[0].LinkID).Scan(&stored).Error; err != nil {
		e.t.Fatalf("read the controller's link: %v", err)
	}
	sum := sha256.Sum256([]byte(token))
	if stored == "" || hex.EncodeToString(sum[:]) != stored {
		e.t.Errorf("QR token %q is not the reader token of link %d", token, links[0].LinkID)
	}
	p, err := e.svc.PassView(e.ctx, e.svc.PassToken(e.visit(visitID)))
	if err != nil {
		e.t.Fatalf("pass view: %v", err)
	}
	if p.QRToken != token {
		e.t.Errorf("QR token %q differs from the pass's %q", token, p.QRToken)
	}
}

// TestEmailQRThroughSMTP sends the access email through SMTP to a real
// server and reads the inline QR code back out of the raw MIME message.
func TestEmailQRThroughSMTP(t *testing.T) {
	srv := newDLSMTP(t)
	srv.Start()
	e := newDLEnv(t, dlOptions{smtpURL: srv.URL()})
	v := e.deliver(dlSignIn(t, time.Now()))
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server holds %d messages, want 1", len(msgs))
	}
	m := parseMIME(t, msgs[0])
	if m.text == "" || m.html == "" {
		t.Fatalf("email lacks a text (%d bytes) or HTML (%d bytes) body", len(m.text), len(m.html))
	}
	if !strings.Contains(m.html, `src="cid:qr.png"`) {
		t.Errorf("HTML does not show the inline QR code:\n%s", m.html)
	}
	var qr *dlPart
	for i, p := range m.parts {
		if p.header.Get("Content-Id") == "<qr.png>" {
			qr = &m.parts[i]
		}
	}
	if qr == nil {
		t.Fatalf("no part with Content-ID <qr.png>; parts: %d", len(m.parts))
	}
	if ct := qr.header.Get("Content-Type"); !strings.HasPrefix(ct, "image/png") {
		t.Errorf("QR part Content-Type %q, want image/png", ct)
	}
	if cd := qr.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "inline") {
		t.Errorf("QR part Content-Disposition %q, want inline", cd)
	}
	e.checkReaderToken(v.ID, qrtest.Decode(t, qr.body))
}

// TestEmailContent checks both bodies of the access email: the doors, the
// window in the location's local time and zone, the pass link, the inline
// QR code, and an .ics with the window.
func TestEmailContent(t *testing.T) {
	dhaka, err := time.LoadLocation("Asia/Dhaka") // the fixtures' location
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		body    func(t *testing.T) []byte
		wantICS bool
	}{
		{"walk-in", func(t *testing.T) []byte { return dlSignIn(t, time.Now()) }, true},
		{"invite", func(t *testing.T) []byte {
			return dlInvite(t, "invite_created", time.Now().Add(3*time.Hour), "invite-1")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newDLEnv(t, dlOptions{})
			v := e.deliver(tt.body(t))
			ms := e.captured()
			if len(ms) != 1 {
				t.Fatalf("captured %d emails, want 1", len(ms))
			}
			m := ms[0]
			wantSubject := "Your door pass for Head Office on " + v.ValidFrom.In(dhaka).Format("Mon 2 Jan 2006")
			if m.To != dlGuest || m.Subject != wantSubject {
				t.Errorf("email to %q, subject %q; want to %q, subject %q", m.To, m.Subject, dlGuest, wantSubject)
			}
			until := v.ValidUntil.In(dhaka).Format("15:04") + " Asia/Dhaka"
			if !sameDay(*v.ValidFrom, *v.ValidUntil, dhaka) {
				until = v.ValidUntil.In(dhaka).Format("Mon 2 Jan 2006, ") + until
			}
			want := []string{"Front door", "Lobby", "Meeting room", e.svc.PassURL(v),
				"Head Office", "1 Example Street, Example City",
				v.ValidFrom.In(dhaka).Format("Mon 2 Jan 2006, 15:04") + " – " + until}
			if tt.name == "invite" {
				want = append(want, "Your host: Harry Host")
			}
			for _, body := range []struct{ name, s string }{{"text", m.Text}, {"HTML", html.UnescapeString(m.HTML)}} {
				for _, w := range want {
					if !strings.Contains(body.s, w) {
						t.Errorf("%s body lacks %q:\n%s", body.name, w, body.s)
					}
				}
			}
			if strings.Contains(m.HTML, "http://") && regexp.MustCompile(`src="https?:`).MatchString(m.HTML) {
				t.Errorf("HTML loads a remote image:\n%s", m.HTML)
			}

			var kinds []string
			var ics string
			for _, a := range m.Attachments {
				kinds = append(kinds, a.Filename+" "+a.ContentType+" inline="+strconv.FormatBool(a.Inline))
				switch a.Filename {
				case "qr.png":
					if a.ContentID != "qr.png" {
						t.Errorf("qr.png Content-ID %q, want qr.png", a.ContentID)
					}
					e.checkReaderToken(v.ID, qrtest.Decode(t, a.Data))
				case "visit.ics":
					ics = string(a.Data)
				}
			}
			wantKinds := []string{"qr.png image/png inline=true"}
			if tt.wantICS {
				wantKinds = append(wantKinds, "visit.ics text/calendar; method=PUBLISH; charset=utf-8 inline=false")
			}
			if d := cmp.Diff(wantKinds, kinds); d != "" {
				t.Errorf("attachments (-want +got):\n%s", d)
			}
			if tt.wantICS {
				checkICS(t, ics, v)
			}
		})
	}
}

// icsProps unfolds an iCalendar text and returns its properties by name
// (the first of each), checking line endings and lengths on the way.
func icsProps(t *testing.T, ics string) map[string]string {
	t.Helper()
	if !strings.HasSuffix(ics, "\r\n") || strings.Contains(strings.ReplaceAll(ics, "\r\n", ""), "\n") {
		t.Errorf(".ics lines must end in CRLF:\n%q", ics)
	}
	for _, l := range strings.Split(strings.TrimSuffix(ics, "\r\n"), "\r\n") {
		if len(l) > 75 {
			t.Errorf(".ics line longer than 75 octets: %q", l)
		}
	}
	props := map[string]string{}
	for _, l := range strings.Split(strings.ReplaceAll(ics, "\r\n ", ""), "\r\n") {
		name, value, ok := strings.Cut(l, ":")
		if _, seen := props[name]; ok && !seen {
			props[name] = value
		}
	}
	return props
}

// checkICS checks that an .ics holds one event for the visit's window.
func checkICS(t *testing.T, ics string, v connector.Visit) {
	t.Helper()
	const f = "20060102T150405Z"
	p := icsProps(t, ics)
	want := map[string]string{
		"BEGIN": "VCALENDAR", "METHOD": "PUBLISH",
		"DTSTART": v.ValidFrom.UTC().Format(f), "DTEND": v.ValidUntil.UTC().Format(f),
		"UID": "visit-" + strconv.FormatInt(v.ID, 10) + "@latchkey",
	}
	for k, w := range want {
		if p[k] != w {
			t.Errorf(".ics %s: got %q, want %q", k, p[k], w)
		}
	}
	if !strings.Contains(p["DESCRIPTION"], "/v/") || !strings.HasPrefix(p["URL"], dlPublic+"/v/") {
		t.Errorf(".ics lacks the pass link: DESCRIPTION %q, URL %q", p["DESCRIPTION"], p["URL"])
	}
}

// TestEmailOncePerChange: a duplicate event sends nothing; a changed window
// sends one "updated" email whose calendar entry replaces the first; an
// update that changes nothing sends nothing.
func TestEmailOncePerChange(t *testing.T) {
	e := newDLEnv(t, dlOptions{})
	arrival := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	created := dlInvite(t, "invite_created", arrival, "job-created")
	v := e.deliver(created)
	e.deliver(created) // Envoy retries the same delivery
	if n := len(e.captured()); n != 1 {
		t.Fatalf("emails after a duplicate event: %d, want 1", n)
	}
	first := e.captured()[0]

	later := arrival.Add(time.Hour)
	v2 := e.deliver(dlInvite(t, "invite_updated", later, "job-updated-1"))
	if !v2.ValidFrom.Equal(later.Add(-30 * time.Minute)) {
		t.Fatalf("window after the update starts %v, want %v", v2.ValidFrom, later.Add(-30*time.Minute))
	}
	e.deliver(dlInvite(t, "invite_updated", later, "job-updated-2")) // same content, new delivery
	ms := e.captured()
	var subjects []string
	for _, m := range ms {
		subjects = append(subjects, m.Subject)
	}
	for i := range subjects {
		subjects[i] = plainSubject(subjects[i])
	}
	if d := cmp.Diff([]string{"Your door pass", "Updated: your door pass"}, subjects); d != "" {
		t.Fatalf("email subjects (-want +got):\n%s", d)
	}
	upd := ms[1]
	dhaka, _ := time.LoadLocation("Asia/Dhaka")
	if !strings.Contains(upd.Text, v2.ValidFrom.In(dhaka).Format("Mon 2 Jan 2006, 15:04")) || !strings.Contains(upd.Text, "Your access has changed") {
		t.Errorf("updated email does not show the new window:\n%s", upd.Text)
	}
	if !strings.Contains(upd.Text, e.svc.PassURL(v)) {
		t.Errorf("updated email lacks the unchanged pass link %s", e.svc.PassURL(v))
	}
	seq := func(m mail.StoredMessage) int {
		for _, a := range m.Attachments {
			if a.Filename == "visit.ics" {
				n, err := strconv.Atoi(icsProps(t, string(a.Data))["SEQUENCE"])
				if err != nil {
					t.Fatalf("SEQUENCE: %v", err)
				}
				return n
			}
		}
		t.Fatalf("email %q has no .ics", m.Subject)
		return 0
	}
	if s1, s2 := seq(first), seq(upd); s2 <= s1 {
		t.Errorf(".ics SEQUENCE: first %d, updated %d; want the update higher so calendars replace the entry", s1, s2)
	}
}

// TestControllerDelivery: with delivery "controller" latchkey sends no
// email of its own, not even on a resend; the controller mails its link.
func TestControllerDelivery(t *testing.T) {
	e := newDLEnv(t, dlOptions{delivery: mappings.DeliveryController})
	res := e.ingest(dlSignIn(t, time.Now()))
	if sr := e.syncVisit(res.VisitID); sr.EmailKind != "" {
		t.Errorf("sync asks for a %q email, want none", sr.EmailKind)
	}
	if _, err := e.svc.Resend(e.ctx, res.VisitID); latchkey.KindOf(err) != latchkey.Conflict {
		t.Fatalf("resend of a controller-delivered visit: got %v, want a Conflict saying the controller mails it", err)
	}
	// A resend task queued before the mapping changed sends nothing either.
	if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, connector.EmailResend, "stale:r1"); err != nil {
		t.Fatalf("send resend: %v", err)
	}
	ms := e.captured()
	if len(ms) != 1 {
		t.Fatalf("captured %d emails, want 1 (the controller's)", len(ms))
	}
	if m := ms[0]; m.To != dlGuest || m.Subject != "Your access link for HQ" || !strings.HasPrefix(m.Key, "lockctl-group-link-") {
		t.Errorf("email: to %q, subject %q, key %q; want the controller's link email to %s", m.To, m.Subject, m.Key, dlGuest)
	}
	if !strings.Contains(ms[0].Text, dlLinkName) {
		t.Errorf("controller email does not name the guest's link %q:\n%s", dlLinkName, ms[0].Text)
	}
	if got := e.timelineKinds(res.VisitID); got[connector.KindEmailSent] != 0 {
		t.Errorf("timeline records %d emails sent by latchkey, want 0", got[connector.KindEmailSent])
	}
}

func sameDay(a, b time.Time, loc *time.Location) bool {
	ay, am, ad := a.In(loc).Date()
	by, bm, bd := b.In(loc).Date()
	return ay == by && am == bm && ad == bd
}

// TestEmailInTheLocationsLanguage: a German location gets a German email
// (subject with place and date, greeting, host, window in German with the
// date once, lang="de"); an empty name greets without a name, and a
// 200-character name is kept whole in both parts.
func TestEmailInTheLocationsLanguage(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	de := guesttext.For("de", "")
	german := func(name string) []byte {
		return dlFixture(t, "envoy-plugin-event-entry_sign_in-invited.json", func(doc map[string]any) {
			a := doc["meta"].(map[string]any)["location"].(map[string]any)["attributes"].(map[string]any)
			a["locale"], a["timezone"], a["time-zone"], a["name"], a["address"] = "de-DE", "Europe/Berlin", "Europe/Berlin", "Zentrale", "Hauptstraße 1, Berlin"
			pa := doc["payload"].(map[string]any)["attributes"].(map[string]any)
			pa["signed-in-at"] = at.Format("2006-01-02 15:04:05 UTC")
			pa["full-name"] = name
		})
	}
	t.Run("german", func(t *testing.T) {
		e := newDLEnv(t, dlOptions{})
		v := e.deliver(german("Jana Gast"))
		ms := e.captured()
		if len(ms) != 1 {
			t.Fatalf("captured %d emails, want 1", len(ms))
		}
		m := ms[0]
		if want := "Ihr Türpass für Zentrale am " + de.Date(*v.ValidFrom, berlin); m.Subject != want {
			t.Errorf("subject %q, want %q", m.Subject, want)
		}
		window := de.Window(*v.ValidFrom, *v.ValidUntil, berlin) // its form: guesttext.TestWindowNamesEachDateOnce
		for _, body := range []struct{ name, s string }{{"text", m.Text}, {"HTML", html.UnescapeString(m.HTML)}} {
			for _, w := range []string{"Hallo Jana Gast,", "Gastgeber: Harry Host", window, "Zentrale", "Hauptstraße 1, Berlin", "Türlesegerät", e.svc.PassURL(v)} {
				if !strings.Contains(body.s, w) {
					t.Errorf("%s body lacks %q:\n%s", body.name, w, body.s)
				}
			}
		}
		if !strings.Contains(m.HTML, `<html lang="de">`) {
			t.Errorf("HTML is not marked German:\n%.300s", m.HTML)
		}
	})
	t.Run("empty and long names", func(t *testing.T) {
		for _, name := range []string{"", strings.Repeat("Ö", connector.MaxNameLen)} {
			e := newDLEnv(t, dlOptions{})
			e.deliver(german(name))
			m := e.captured()[0]
			for _, body := range []string{m.Text, html.UnescapeString(m.HTML)} {
				if strings.Contains(body, "Hallo ,") || !strings.Contains(body, "Hallo"+map[bool]string{true: ",", false: " " + name + ","}[name == ""]) {
					t.Errorf("name %d characters: greeting wrong:\n%s", len([]rune(name)), body)
				}
			}
		}
	})
}
