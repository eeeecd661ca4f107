package mail

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey"
)

const testFrom = "Latchkey <no-reply@latchkey.test>"

func newTestSMTP(tb testing.TB, rawURL string) *SMTPSender {
	tb.Helper()
	s, err := NewSMTP(rawURL, testFrom, SMTPOptions{Timeout: 5 * time.Second, HELO: "latchkey.test"})
	if err != nil {
		tb.Fatalf("NewSMTP: %v", err)
	}
	return s
}

// smtpURL builds a URL for addr with optional credentials and query.
func smtpURL(scheme, addr, user, pass, query string) string {
	u := url.URL{Scheme: scheme, Host: addr, RawQuery: query}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

func testPNG(tb testing.TB) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.Black)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		tb.Fatalf("encode png: %v", err)
	}
	return b.Bytes()
}

const testICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//latchkey//test//EN\r\nMETHOD:REQUEST\r\n" +
	"BEGIN:VEVENT\r\nUID:visit-42@latchkey.test\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T130000Z\r\n" +
	"SUMMARY:Visit HQ\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// mimePart is one leaf of a parsed MIME tree.
type mimePart struct {
	Path        string // enclosing multipart types, outermost first
	ContentType string
	Params      map[string]string
	ContentID   string
	Disposition string
	Filename    string
	Body        string
}

// leaves flattens a MIME entity into its leaf parts, decoding bodies.
func leaves(tb testing.TB, path string, header func(string) string, body io.Reader) []mimePart {
	tb.Helper()
	mt, params, err := mime.ParseMediaType(header("Content-Type"))
	if err != nil {
		tb.Fatalf("parse Content-Type %q: %v", header("Content-Type"), err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		sub := strings.TrimPrefix(path+" > "+mt, " > ")
		mr := multipart.NewReader(body, params["boundary"])
		var out []mimePart
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return out
			}
			if err != nil {
				tb.Fatalf("next part of %s: %v", mt, err)
			}
			out = append(out, leaves(tb, sub, p.Header.Get, p)...)
		}
	}
	switch strings.ToLower(header("Content-Transfer-Encoding")) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		tb.Fatalf("read %s body: %v", mt, err)
	}
	p := mimePart{Path: path, ContentType: mt, Params: params, ContentID: header("Content-ID"), Body: string(b)}
	if cd := header("Content-Disposition"); cd != "" {
		d, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			tb.Fatalf("parse Content-Disposition %q: %v", cd, err)
		}
		p.Disposition, p.Filename = d, dp["filename"]
	}
	return p.normalize()
}

// normalize makes text bodies comparable: line breaks on the wire are CRLF.
func (p mimePart) normalize() []mimePart {
	if strings.HasPrefix(p.ContentType, "text/") && p.ContentType != "text/calendar" {
		p.Body = strings.ReplaceAll(p.Body, "\r\n", "\n")
	}
	return []mimePart{p}
}

func TestSMTPSendMultipart(t *testing.T) {
	ts := newTestServer(t, nil)
	s := newTestSMTP(t, smtpURL("smtp", ts.Addr, "", "", ""))
	qr := testPNG(t)
	m := Message{
		To:      "ada@example.com",
		Subject: "Your access to HQ — today",
		Text:    "Hello Ada,\nopen the doors here: https://latchkey.test/v/abc\n",
		HTML:    `<p>Hello Ada,</p><p><img src="cid:qr@latchkey" alt="QR"></p>`,
		Key:     "visit-42:invite",
		Attachments: []Attachment{
			{Filename: "qr.png", ContentType: "image/png", Data: qr, Inline: true, ContentID: "qr@latchkey"},
			{Filename: "invite.ics", ContentType: "text/calendar; charset=utf-8; method=REQUEST", Data: []byte(testICS)},
		},
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := ts.messages()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	env := got[0]
	if d := cmp.Diff([]string{"ada@example.com"}, env.To); d != "" {
		t.Errorf("envelope recipients (-want +got):\n%s", d)
	}
	if env.From != "no-reply@latchkey.test" {
		t.Errorf("envelope from = %q, want no-reply@latchkey.test", env.From)
	}

	raw, err := netmail.ReadMessage(bytes.NewReader(env.Data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, env.Data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(raw.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	headers := map[string]string{
		"From":       raw.Header.Get("From"),
		"To":         raw.Header.Get("To"),
		"Subject":    subject,
		"Message-ID": raw.Header.Get("Message-ID"),
	}
	wantHeaders := map[string]string{
		"From":       `"Latchkey" <no-reply@latchkey.test>`,
		"To":         "<ada@example.com>",
		"Subject":    m.Subject,
		"Message-ID": "<" + messageID(m.Key, "latchkey.test") + ">",
	}
	if d := cmp.Diff(wantHeaders, headers); d != "" {
		t.Errorf("headers (-want +got):\n%s", d)
	}
	if _, err := raw.Header.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}

	const (
		mixed   = "multipart/mixed"
		related = "multipart/mixed > multipart/related"
		alt     = "multipart/mixed > multipart/related > multipart/alternative"
	)
	want := []mimePart{
		{Path: alt, ContentType: "text/plain", Params: map[string]string{"charset": "UTF-8"}, Body: strings.ReplaceAll(m.Text, "\r\n", "\n")},
		{Path: alt, ContentType: "text/html", Params: map[string]string{"charset": "UTF-8"}, Body: m.HTML},
		{
			Path: related, ContentType: "image/png", Params: map[string]string{"name": "qr.png"},
			ContentID: "<qr@latchkey>", Disposition: "inline", Filename: "qr.png", Body: string(qr),
		},
		{
			Path: mixed, ContentType: "text/calendar",
			Params:      map[string]string{"charset": "utf-8", "method": "REQUEST", "name": "invite.ics"},
			Disposition: "attachment", Filename: "invite.ics", Body: testICS,
		},
	}
	if d := cmp.Diff(want, leaves(t, "", raw.Header.Get, raw.Body)); d != "" {
		t.Errorf("MIME parts (-want +got):\n%s", d)
	}
}

func TestSMTPSendTextOnly(t *testing.T) {
	ts := newTestServer(t, nil)
	s := newTestSMTP(t, smtpURL("smtp", ts.Addr, "", "", ""))
	if err := s.Send(context.Background(), Message{To: "bob@example.com", Subject: "Hi", Text: "plain only"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	raw, err := netmail.ReadMessage(bytes.NewReader(ts.messages()[0].Data))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	// A single-part body ends with the line break that closes the message.
	want := []mimePart{{ContentType: "text/plain", Params: map[string]string{"charset": "UTF-8"}, Body: "plain only\n"}}
	if d := cmp.Diff(want, leaves(t, "", raw.Header.Get, raw.Body)); d != "" {
		t.Errorf("MIME parts (-want +got):\n%s", d)
	}
}

func TestSMTPMessageIDFromKey(t *testing.T) {
	ts := newTestServer(t, nil)
	s := newTestSMTP(t, smtpURL("smtp", ts.Addr, "", "", ""))
	for _, key := range []string{"k1", "k1", "k2", "", ""} {
		if err := s.Send(context.Background(), Message{To: "ada@example.com", Text: "x", Key: key}); err != nil {
			t.Fatalf("Send(key %q): %v", key, err)
		}
	}
	var ids []string
	for _, env := range ts.messages() {
		raw, err := netmail.ReadMessage(bytes.NewReader(env.Data))
		if err != nil {
			t.Fatalf("parse message: %v", err)
		}
		ids = append(ids, raw.Header.Get("Message-ID"))
	}
	if len(ids) != 5 {
		t.Fatalf("server received %d messages, want 5", len(ids))
	}
	if ids[0] != ids[1] {
		t.Errorf("same key gave Message-IDs %q and %q, want equal", ids[0], ids[1])
	}
	if ids[0] == ids[2] {
		t.Errorf("keys k1 and k2 share Message-ID %q", ids[0])
	}
	if ids[3] == ids[4] || ids[3] == "" {
		t.Errorf("unkeyed messages got Message-IDs %q and %q, want distinct non-empty", ids[3], ids[4])
	}
	if want := "<" + messageID("k1", "latchkey.test") + ">"; ids[0] != want {
		t.Errorf("Message-ID = %q, want %q", ids[0], want)
	}
}

func TestSMTPAuth(t *testing.T) {
	const user, pass = "ada", "s3cr3t/p@ss:word"
	tests := []struct {
		name     string
		pass     string
		query    string
		wantKind latchkey.Kind // -1: success
	}{
		{name: "plain default", pass: pass, wantKind: -1},
		{name: "plain explicit", pass: pass, query: "auth=plain", wantKind: -1},
		{name: "login", pass: pass, query: "auth=login", wantKind: -1},
		{name: "cram-md5", pass: pass, query: "auth=crammd5", wantKind: -1},
		{name: "plain wrong password", pass: "wrong-Passw0rd", wantKind: latchkey.Invalid},
		{name: "login wrong password", pass: "wrong-Passw0rd", query: "auth=login", wantKind: latchkey.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, &serverOptions{User: user, Pass: pass})
			s := newTestSMTP(t, smtpURL("smtp", ts.Addr, user, tt.pass, tt.query))
			err := s.Send(context.Background(), Message{To: "ada@example.com", Text: "hi"})
			if tt.wantKind < 0 {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				got := ts.messages()
				if len(got) != 1 || got[0].User != user {
					t.Fatalf("server got %+v, want one message from user %q", got, user)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded, want error")
			}
			t.Logf("Send: %v", err)
			if k := latchkey.KindOf(err); k != tt.wantKind {
				t.Errorf("KindOf(%v) = %v, want %v", err, k, tt.wantKind)
			}
			for _, secret := range []string{tt.pass, url.QueryEscape(tt.pass), base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + tt.pass))} {
				if strings.Contains(err.Error(), secret) || strings.Contains(latchkey.Message(err), secret) {
					t.Errorf("error %q contains the password", err)
				}
			}
			if n := len(ts.messages()); n != 0 {
				t.Errorf("server accepted %d messages, want 0", n)
			}
		})
	}
}

func TestSMTPReplyClassification(t *testing.T) {
	tests := []struct {
		name string
		opts serverOptions
		want latchkey.Kind
	}{
		{
			name: "550 mailbox unavailable",
			opts: serverOptions{RcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}},
			want: latchkey.Invalid,
		},
		{
			name: "552 message too big",
			opts: serverOptions{DataErr: &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "too big"}},
			want: latchkey.Invalid,
		},
		{
			name: "450 mailbox busy",
			opts: serverOptions{RcptErr: &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "try later"}},
			want: latchkey.Unavailable,
		},
		{
			name: "451 local error",
			opts: serverOptions{DataErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}},
			want: latchkey.Unavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, &tt.opts)
			s := newTestSMTP(t, smtpURL("smtp", ts.Addr, "", "", ""))
			err := s.Send(context.Background(), Message{To: "ada@example.com", Text: "hi"})
			if err == nil {
				t.Fatal("Send succeeded, want error")
			}
			t.Logf("Send: %v", err)
			if k := latchkey.KindOf(err); k != tt.want {
				t.Errorf("KindOf(%v) = %v, want %v", err, k, tt.want)
			}
		})
	}
}

func TestSMTPServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	s := newTestSMTP(t, smtpURL("smtp", addr, "ada", "s3cr3t-pw", ""))
	err = s.Send(context.Background(), Message{To: "ada@example.com", Text: "hi"})
	if k := latchkey.KindOf(err); k != latchkey.Unavailable {
		t.Fatalf("KindOf(%v) = %v, want unavailable", err, k)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("error %q contains the password", err)
	}
}

func TestSMTPServerSilent(t *testing.T) {
	// A server that accepts the connection and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	s, err := NewSMTP(smtpURL("smtp", l.Addr().String(), "", "", ""), testFrom, SMTPOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	err = s.Send(context.Background(), Message{To: "ada@example.com", Text: "hi"})
	if k := latchkey.KindOf(err); k != latchkey.Unavailable {
		t.Fatalf("KindOf(%v) = %v, want unavailable", err, k)
	}
}

func TestSMTPTLS(t *testing.T) {
	tests := []struct {
		name    string
		server  serverOptions
		scheme  string
		query   string
		wantErr bool
		wantTLS bool
	}{
		{name: "opportunistic upgrades", server: serverOptions{StartTLS: true}, scheme: "smtp", query: "insecure_skip_verify=1", wantTLS: true},
		{name: "opportunistic without offer", scheme: "smtp", wantTLS: false},
		{name: "required", server: serverOptions{StartTLS: true}, scheme: "smtp", query: "tls=required&insecure_skip_verify=1", wantTLS: true},
		{name: "required without offer", scheme: "smtp", query: "tls=required", wantErr: true},
		{name: "none stays plain", server: serverOptions{StartTLS: true}, scheme: "smtp", query: "tls=none", wantTLS: false},
		{name: "untrusted certificate", server: serverOptions{StartTLS: true}, scheme: "smtp", query: "tls=required", wantErr: true},
		{name: "implicit", server: serverOptions{ImplicitTLS: true}, scheme: "smtps", query: "insecure_skip_verify=1", wantTLS: true},
		{name: "implicit with auth", server: serverOptions{ImplicitTLS: true, User: "ada", Pass: "pw", Mechs: []string{"LOGIN"}}, scheme: "smtps", query: "insecure_skip_verify=1&auth=login", wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, &tt.server)
			s := newTestSMTP(t, smtpURL(tt.scheme, ts.Addr, tt.server.User, tt.server.Pass, tt.query))
			err := s.Send(context.Background(), Message{To: "ada@example.com", Text: "hi"})
			if tt.wantErr {
				t.Logf("Send: %v", err)
				if k := latchkey.KindOf(err); k != latchkey.Unavailable {
					t.Fatalf("KindOf(%v) = %v, want unavailable", err, k)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := ts.messages()
			if len(got) != 1 {
				t.Fatalf("server received %d messages, want 1", len(got))
			}
			if got[0].TLS != tt.wantTLS {
				t.Errorf("session TLS = %v, want %v", got[0].TLS, tt.wantTLS)
			}
		})
	}
}

func TestSMTPSendInvalidMessage(t *testing.T) {
	ts := newTestServer(t, nil)
	s := newTestSMTP(t, smtpURL("smtp", ts.Addr, "", "", ""))
	for _, m := range []Message{
		{Text: "no recipient"},
		{To: "not an address", Text: "x"},
		{To: "ada@example.com"},
		{To: "ada@example.com", Text: "x", Attachments: []Attachment{{Data: []byte("x")}}},
	} {
		if err := s.Send(context.Background(), m); latchkey.KindOf(err) != latchkey.Invalid {
			t.Errorf("Send(%+v) = %v, want an invalid error", m, err)
		}
	}
	if n := len(ts.messages()); n != 0 {
		t.Errorf("server received %d messages, want 0", n)
	}
}

func TestNewSMTPInvalidFrom(t *testing.T) {
	_, err := NewSMTP("smtp://mail.example.com", "not an address", SMTPOptions{})
	if k := latchkey.KindOf(err); k != latchkey.Invalid {
		t.Fatalf("KindOf(%v) = %v, want invalid", err, k)
	}
}

func TestValidateURL(t *testing.T) {
	tests := []struct {
		raw     string
		wantErr string // substring of the message; empty means valid
	}{
		{raw: "smtp://mail.example.com"},
		{raw: "smtp://mail.example.com:25"},
		{raw: "smtp://user:pass@mail.example.com:587?tls=required"},
		{raw: "smtp://user:p%40ss@mail.example.com?auth=login"},
		{raw: "smtp://user@mail.example.com?auth=crammd5"},
		{raw: "smtps://user:pass@mail.example.com"},
		{raw: "smtp://127.0.0.1:2525?tls=none"},
		{raw: "smtps://[::1]:465?insecure_skip_verify=1"},
		{raw: "smtp://mail.example.com/"},
		{raw: "", wantErr: "empty"},
		{raw: "mail.example.com:25", wantErr: "scheme"},
		{raw: "mail.example.com", wantErr: "missing scheme"},
		{raw: "http://mail.example.com", wantErr: `scheme must be smtp or smtps, got "http"`},
		{raw: "smtp://", wantErr: "missing host"},
		{raw: "smtp://user:pass@:25", wantErr: "missing host"},
		{raw: "smtp:mail.example.com", wantErr: "no host"},
		{raw: "smtp://mail.example.com:0", wantErr: "port"},
		{raw: "smtp://mail.example.com:99999", wantErr: "port"},
		{raw: "smtp://mail.example.com:abc", wantErr: "port"},
		{raw: "smtp://mail.example.com/inbox", wantErr: "path"},
		{raw: "smtp://mail.example.com?tls=maybe", wantErr: "tls must be"},
		{raw: "smtps://mail.example.com?tls=none", wantErr: "tls=none"},
		{raw: "smtp://mail.example.com?insecure_skip_verify=yes", wantErr: "insecure_skip_verify"},
		{raw: "smtp://mail.example.com?auth=xoauth2", wantErr: "auth must be"},
		{raw: "smtp://mail.example.com?auth=plain", wantErr: "needs a user name"},
		{raw: "smtp://mail.example.com?starttls=1", wantErr: "unknown parameter"},
		{raw: "smtp://user:hunter2%zz@mail.example.com", wantErr: "percent-escape"},
		{raw: "smtp://user:hunter2 x@mail.example.com", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			err := ValidateURL(tt.raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateURL: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateURL = nil, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ValidateURL = %q, want it to contain %q", err, tt.wantErr)
			}
			if k := latchkey.KindOf(err); k != latchkey.Invalid {
				t.Errorf("KindOf = %v, want invalid", k)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("ValidateURL = %q, leaks the password", err)
			}
		})
	}
}
