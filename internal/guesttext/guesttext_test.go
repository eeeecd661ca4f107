package guesttext

import (
	"encoding/json"
	"sort"
	"testing"
	"time"
)

// TestCataloguesHaveTheSameMessages: every language has every message of
// English, and nothing English lacks.
func TestCataloguesHaveTheSameMessages(t *testing.T) {
	keys := func(lang string) []string {
		b, err := catalogues.ReadFile("locales/" + lang + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		var out []string
		for k, v := range m {
			if v == "" {
				t.Errorf("%s: %s is empty", lang, k)
			}
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	en := keys("en")
	for _, tag := range Supported[1:] {
		got := keys(tag.String())
		if len(got) != len(en) {
			t.Errorf("%s has %d messages, English %d", tag, len(got), len(en))
		}
		have := map[string]bool{}
		for _, k := range got {
			have[k] = true
		}
		for _, k := range en {
			if !have[k] {
				t.Errorf("%s lacks %s", tag, k)
			}
		}
	}
}

func TestLanguageChoice(t *testing.T) {
	for _, tt := range []struct{ locale, accept, want string }{
		{"de", "fr", "de"},
		{"de-CH", "", "de"},
		{"fr-CA", "en", "fr"},
		{"es-MX", "", "es"},
		{"en", "de", "en"},
		{"", "de-DE,de;q=0.9,en;q=0.5", "de"},
		{"", "ja,es;q=0.8", "es"},
		{"ja", "fr", "fr"},       // the location's language is not offered: the browser's
		{"", "", "en"},           // nothing known: English
		{"not a tag!", "", "en"}, // junk: English
		{"", "ja", "en"},
	} {
		if got := For(tt.locale, tt.accept).Lang(); got != tt.want {
			t.Errorf("For(%q, %q) = %s, want %s", tt.locale, tt.accept, got, tt.want)
		}
	}
}

func TestWindowNamesEachDateOnce(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 1, 15, 31, 0, 0, time.UTC)
	sameDay, nextDay := from.Add(4*time.Hour), from.Add(18*time.Hour)
	for _, tt := range []struct {
		lang  string
		until time.Time
		want  string
	}{
		{"en", sameDay, "Tue 1 Dec 2026, 16:31 – 20:31 CET"},
		{"en", nextDay, "Tue 1 Dec 2026, 16:31 – Wed 2 Dec 2026, 10:31 CET"},
		{"de", sameDay, "Di., 1. Dez. 2026, 16:31 – 20:31 CET"},
		{"fr", sameDay, "mar. 1 déc. 2026, 16:31 – 20:31 CET"},
		{"es", nextDay, "mar, 1 dic 2026, 16:31 – mié, 2 dic 2026, 10:31 CET"},
	} {
		if got := For(tt.lang, "").Window(from, tt.until, berlin); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.lang, got, tt.want)
		}
	}
}

func TestMessagesAreFilled(t *testing.T) {
	got := For("de", "").T("email.subject", map[string]any{"Place": "Zentrale", "Date": "Di., 1. Dez. 2026"})
	if want := "Ihr Türpass für Zentrale am Di., 1. Dez. 2026"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
