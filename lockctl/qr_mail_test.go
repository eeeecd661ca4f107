package lockctl

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/qr/qrtest"
)

func TestQRCodeDecodesToToken(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	for _, typ := range []string{"online", "offline"} {
		t.Run(typ, func(t *testing.T) {
			l := e.link(f.visitors, map[string]any{"quick_response_code_type": typ})
			if l.QuickResponseCodeToken == nil || l.QuickResponseCodeImage == nil {
				t.Fatalf("no QR token or image in %+v", l)
			}
			raw, err := base64.StdEncoding.DecodeString(*l.QuickResponseCodeImage)
			if err != nil {
				t.Fatalf("image is not base64: %v", err)
			}
			if got := qrtest.Decode(t, raw); got != *l.QuickResponseCodeToken {
				t.Errorf("QR decodes to %q, want token %q", got, *l.QuickResponseCodeToken)
			}
			if *l.QuickResponseCodeToken == l.Secret {
				t.Error("QR token equals the link secret")
			}
			got := decodeStrict[kisiGroupLink](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin()}))
			if got.QuickResponseCodeType == nil || *got.QuickResponseCodeType != typ {
				t.Errorf("quick_response_code_type %v, want %s", got.QuickResponseCodeType, typ)
			}
		})
	}
}

func TestLinkEmail(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)
	l := e.link(f.visitors, map[string]any{"name": "Ada Lovelace (Visitor)", "email": "ada@example.com",
		"valid_from": rfc(t0), "valid_until": rfc(t0.Add(2 * time.Hour)), "quick_response_code_type": "online"})
	e.link(f.visitors, map[string]any{"name": "No mail"})

	msgs := e.outbox.all()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.To != "ada@example.com" || m.Subject != "Your access link for HQ" {
		t.Errorf("to %q subject %q", m.To, m.Subject)
	}
	url := "https://door.example.com/lockctl/grouplinks#" + l.Secret
	for _, want := range []string{url, "Front door, Lobby", "Valid Mon 2 Mar 2026, 14:00 – 16:00 CET."} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text, "Back door") {
		t.Errorf("text lists a door outside the group:\n%s", m.Text)
	}
	if !strings.Contains(m.HTML, "cid:access-qr") || len(m.Attachments) != 1 || !m.Attachments[0].Inline {
		t.Fatalf("no inline QR: html %q, attachments %d", m.HTML, len(m.Attachments))
	}
	if got := qrtest.Decode(t, m.Attachments[0].Data); got != *l.QuickResponseCodeToken {
		t.Errorf("mailed QR decodes to %q, want the token", got)
	}
	evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=group_link.notify", auth: admin()}))
	if len(evs) != 1 || !evs[0].Success || *evs[0].ObjectID != l.ID {
		t.Errorf("notify events %+v", evs)
	}
	page := e.must(200, req{method: "GET", path: "/grouplinks"})
	if !strings.Contains(page.Body.String(), "KISI-GROUP-LINK") || page.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("landing page: %s", page.Body)
	}
}
