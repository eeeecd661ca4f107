package lockctl

import (
	"strings"
	"testing"
	"time"
)

// TestLinkEmailLanguage: the controller writes a link's email in the
// language the creating request asks for, dates included, each once.
func TestLinkEmailLanguage(t *testing.T) {
	for _, tt := range []struct {
		accept, subject string
		want            []string
	}{
		{"de-DE,de;q=0.9", "Ihr Zugangslink für HQ", []string{"Hallo Ada Lovelace (Visitor),", "Ihr Zugangslink für HQ öffnet: Front door, Lobby.",
			"Gültig Mo., 2. März 2026, 14:00 – 16:00 CET.", "Hier öffnen: "}},
		{"fr", "Votre lien d’accès pour HQ", []string{"Bonjour Ada Lovelace (Visitor),", "Valable lun. 2 mars 2026, 14:00 – 16:00 CET."}},
		{"es", "Su enlace de acceso para HQ", []string{"Hola, Ada Lovelace (Visitor):", "Válido "}},
		{"", "Your access link for HQ", []string{"Hello Ada Lovelace (Visitor),", "Valid Mon 2 Mar 2026, 14:00 – 16:00 CET."}},
	} {
		name := tt.accept
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			f := e.site()
			t0 := time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)
			e.must(200, req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Accept-Language": tt.accept},
				body: map[string]any{"group_link": map[string]any{"group_id": f.visitors, "name": "Ada Lovelace (Visitor)", "email": "ada@example.com",
					"valid_from": rfc(t0), "valid_until": rfc(t0.Add(2 * time.Hour)), "quick_response_code_type": "online"}}})
			msgs := e.outbox.all()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			for _, w := range tt.want {
				if !strings.Contains(m.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, m.Text)
				}
			}
			lang := "en"
			if tt.accept != "" {
				lang = tt.accept[:2]
			}
			if !strings.Contains(m.HTML, `<html lang="`+lang+`">`) {
				t.Errorf("html lacks lang %s:\n%s", lang, m.HTML)
			}
		})
	}
}
