// Package guesttext is the text latchkey shows guests (the access email
// and the pass page), in the guest's language: message catalogues per
// language (locales/*.json, read by go-i18n), the language chosen by
// golang.org/x/text/language from the location's locale, else the
// browser's Accept-Language, else English, and dates and times written
// the way that language writes them.
package guesttext

import (
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed locales/*.json
var catalogues embed.FS

// Supported are the languages guests are addressed in; the first is the
// fallback.
var Supported = []language.Tag{language.English, language.German, language.French, language.Spanish}

var (
	once    sync.Once
	bundle  *i18n.Bundle
	matcher language.Matcher
)

func load() {
	bundle = i18n.NewBundle(language.English)
	bundle.RegisterUnmarshalFunc("json", json.Unmarshal)
	for _, t := range Supported {
		if _, err := bundle.LoadMessageFileFS(catalogues, "locales/"+t.String()+".json"); err != nil {
			panic(fmt.Sprintf("guesttext: catalogue %s: %v", t, err)) // embedded: a build error
		}
	}
	matcher = language.NewMatcher(Supported)
}

// Text is guest text in one language.
type Text struct {
	tag language.Tag
	loc *i18n.Localizer
}

// For returns the text for a location's locale (a BCP 47 tag such as "de"
// or "fr-CA", "" when unknown), else the first supported language of an
// Accept-Language header, else English.
func For(locale, acceptLanguage string) Text {
	once.Do(load)
	var prefs []language.Tag
	if t, err := language.Parse(locale); err == nil && locale != "" {
		prefs = append(prefs, t)
	}
	if len(prefs) == 0 || !supported(prefs[0]) {
		if tags, _, err := language.ParseAcceptLanguage(acceptLanguage); err == nil {
			prefs = append(prefs, tags...)
		}
	}
	tag := language.English
	if len(prefs) > 0 {
		_, i, conf := matcher.Match(prefs...)
		if conf != language.No {
			tag = Supported[i]
		}
	}
	return Text{tag: tag, loc: i18n.NewLocalizer(bundle, tag.String())}
}

func supported(t language.Tag) bool {
	_, _, conf := matcher.Match(t)
	return conf != language.No
}

// Lang is the language's tag, for an HTML lang attribute ("de").
func (t Text) Lang() string { return t.tag.String() }

// T returns message id filled with data (a template's fields).
func (t Text) T(id string, data map[string]any) string {
	s, err := t.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id // a missing id is caught by the catalogue test
	}
	return s
}

// Date writes the day of at, in loc: "Tue 1 Dec 2026", "Di., 1. Dez. 2026".
func (t Text) Date(at time.Time, loc *time.Location) string {
	at = at.In(loc)
	return t.T("date", map[string]any{
		"Weekday": t.T("weekday."+strconv.Itoa(int(at.Weekday())), nil),
		"Day":     at.Day(), "Month": t.T("month."+strconv.Itoa(int(at.Month())), nil), "Year": at.Year(),
	})
}

// Clock writes the time of day of at, in loc, on the 24-hour clock.
func (t Text) Clock(at time.Time, loc *time.Location) string { return at.In(loc).Format("15:04") }

// Window writes [from, until) in loc, naming each date once and the zone
// at the end: "Tue 1 Dec 2026, 16:31 – 20:31 CET" on one day, "Tue 1 Dec
// 2026, 16:31 – Wed 2 Dec 2026, 09:00 CET" across days.
func (t Text) Window(from, until time.Time, loc *time.Location) string {
	from, until = from.In(loc), until.In(loc)
	zone := until.Format("MST")
	if zone != "" && (zone[0] == '+' || zone[0] == '-') {
		zone = loc.String() // no abbreviation for the zone: its name says more than "+06"
	}
	start := t.T("datetime", map[string]any{"Date": t.Date(from, loc), "Time": t.Clock(from, loc)})
	end := t.Clock(until, loc)
	fy, fm, fd := from.Date()
	if uy, um, ud := until.Date(); fy != uy || fm != um || fd != ud {
		end = t.T("datetime", map[string]any{"Date": t.Date(until, loc), "Time": end})
	}
	return start + " – " + end + " " + zone
}
