package mail

import (
	"strings"
	"testing"
)

func TestInlinedHTML(t *testing.T) {
	m := Message{
		HTML: `<img src="cid:qr@latchkey" alt="QR"><img src="cid:other@x">`,
		Attachments: []Attachment{
			{Filename: "qr.png", ContentType: "image/png", Data: []byte{1, 2, 3}, Inline: true, ContentID: "qr@latchkey"},
			{Filename: "pass.ics", ContentType: "text/calendar", Data: []byte("BEGIN"), ContentID: "other@x"},
		},
	}
	got := m.InlinedHTML()
	if !strings.Contains(got, `src="data:image/png;base64,AQID"`) {
		t.Errorf("inline image not replaced: %s", got)
	}
	if !strings.Contains(got, `src="cid:other@x"`) {
		t.Errorf("a non-inline attachment was inlined: %s", got)
	}
	if (Message{Text: "only text"}).InlinedHTML() != "" {
		t.Errorf("a message without HTML gave HTML")
	}
}
