package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// ptSignInWith is the captured sign-in of g with the location's locale set
// to locale ("" removes it) and the approval status set to approval.
func ptSignInWith(t *testing.T, g ptGuest, at time.Time, locale, approval string) []byte {
	t.Helper()
	return ptFixture(t, "envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		m := doc["meta"].(map[string]any)
		m["job"].(map[string]any)["id"] = "sign-in-" + g.ID
		la := m["location"].(map[string]any)["attributes"].(map[string]any)
		la["locale"] = locale
		p := doc["payload"].(map[string]any)
		p["id"] = g.ID
		a := p["attributes"].(map[string]any)
		a["full-name"], a["email"] = g.Name, g.Email
		a["signed-in-at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
		if approval != "" {
			a["approval-status"].(map[string]any)["status"] = approval
		}
	})
}

func (s *ptStack) getLang(path, acceptLanguage string) *httptest.ResponseRecorder {
	s.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	return rec
}

// TestPassPageLanguage: the page speaks the location's language, else the
// browser's, else English, and says so in its lang attribute.
func TestPassPageLanguage(t *testing.T) {
	tests := []struct {
		name, locale, accept, wantLang string
		wantText                       []string
	}{
		{"location locale wins over the browser", "de", "fr-FR,fr;q=0.9", "de",
			[]string{"Hallo Jane Visitor", "Ihr Zugang gilt bis", "Ihre Türen", "Front door öffnen", "Zeiten in Asia/Dhaka"}},
		{"no locale: the browser's language", "", "es-MX,es;q=0.9,en;q=0.5", "es",
			[]string{"Hola, Jane Visitor", "Su acceso está abierto hasta el", "Abrir Front door"}},
		{"an unsupported locale: the browser's language", "ja", "fr-CH, fr;q=0.9", "fr",
			[]string{"Bonjour Jane Visitor", "Votre accès est ouvert jusqu’au", "Ouvrir Front door"}},
		{"nothing known: English", "", "", "en",
			[]string{"Hello Jane Visitor", "Your access is open until", "Unlock Front door"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newPTStack(t, ptOptions{})
			_, tok := s.apply(ptSignInWith(t, ptJane, s.clock.Now(), tt.locale, ""))
			rec := s.getLang("/v/"+tok, tt.accept)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d:\n%s", rec.Code, rec.Body.String())
			}
			page := rec.Body.String()
			if want := `<html lang="` + tt.wantLang + `">`; !strings.Contains(page, want) {
				t.Errorf("page lacks %s", want)
			}
			got := ptText(page)
			for _, w := range tt.wantText {
				if !strings.Contains(got, w) {
					t.Errorf("page text lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestPassPageDenied: a visitor the block list or the desk denied is told
// plainly that access was not approved, not thanked.
func TestPassPageDenied(t *testing.T) {
	s := newPTStack(t, ptOptions{})
	_, tok := s.apply(ptSignInWith(t, ptJane, s.clock.Now(), "en", "denied"))
	got := ptText(s.get("/v/" + tok).Body.String())
	if !strings.Contains(got, "Your access was not approved") || strings.Contains(got, "Thank you") {
		t.Errorf("denied pass page:\n%s", got)
	}
}

// TestPassUnlockLanguage: the unlock answer follows the language the page
// names in Accept-Language.
func TestPassUnlockLanguage(t *testing.T) {
	s := newPTStack(t, ptOptions{})
	_, tok := s.apply(ptSignInWith(t, ptJane, s.clock.Now(), "de", ""))
	req := httptest.NewRequest(http.MethodPost, "/v/"+tok+"/locks/1/unlock", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Language", "de")
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Geöffnet!") {
		t.Errorf("unlock: %d %s", rec.Code, rec.Body.String())
	}
}
