package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/web"
)

// TestUITimesCarryTheirZone: every time the front desk shows names its
// zone. Keys, users and door events are in the desk's zone (Asia/Tokyo
// here, JST); a visit's timeline is in its location's (Europe/Berlin, CET
// or CEST).
func TestUITimesCarryTheirZone(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	e := newUIEnv(t, web.UIOptions{Demo: true, TimeZone: "Asia/Tokyo"})
	admin := e.signIn(t, "admin@example.com", web.RoleAdmin)
	ctx := context.Background()
	_, key, err := e.accts.CreateAPIKey(ctx, "reporting script", "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}

	rec := e.do(t, http.MethodGet, "/admin/keys", nil, admin.cookie)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /admin/keys: %d", rec.Code)
	}
	if want := key.CreatedAt.In(tokyo).Format("Mon 2 Jan 2006 15:04 MST"); !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/admin/keys does not show the key's creation as %q (the desk's zone, named)", want)
	}
	if utc := key.CreatedAt.UTC().Format("2006-01-02 15:04"); strings.Contains(rec.Body.String(), utc) {
		t.Errorf("/admin/keys still shows the UTC time %q", utc)
	}
	users := e.do(t, http.MethodGet, "/admin/users", nil, admin.cookie).Body.String()
	if !regexp.MustCompile(`\d\d:\d\d JST`).MatchString(users) {
		t.Errorf("/admin/users shows no time in JST")
	}

	// A door event: the admin opens a door on the controller.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ctrl.URL+"/locks/1/unlock", nil)
	req.Header.Set("Authorization", "KISI-LOGIN "+uiAdminKey)
	resp, err := e.ctrl.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unlock on the controller: %d", resp.StatusCode)
	}
	events := e.do(t, http.MethodGet, "/admin/events", nil, admin.cookie).Body.String()
	if !regexp.MustCompile(`<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST</td>`).MatchString(events) {
		t.Errorf("door events show no time with the desk's zone:\n%.2000s", events[strings.Index(events, "<tbody>"):])
	}

	// A visit at a Berlin location: its timeline is in Berlin time.
	e.createDemoMapping(t)
	rec = e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {admin.csrf}, "kind": {"sign-in"}, "name": {"Ada Lovelace"},
		"email": {"ada@example.com"}, "flow": {"177837/359435"}, "time_zone": {"Europe/Berlin"}}, admin.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("simulate: got %d, want 303: %s", rec.Code, rec.Body)
	}
	zone := time.Now().In(berlin).Format("MST")
	visit := e.do(t, http.MethodGet, "/admin/visits/1", nil, admin.cookie).Body.String()
	stamps := regexp.MustCompile(`<time datetime="[^"]+">([^<]+)</time>`).FindAllStringSubmatch(visit, -1)
	if len(stamps) == 0 {
		t.Fatalf("the visit's timeline has no times:\n%s", visit)
	}
	for _, s := range stamps {
		if !strings.HasSuffix(s[1], " "+zone) {
			t.Errorf("timeline time %q does not name the location's zone (%s)", s[1], zone)
		}
	}
}

// TestUITimelineSpeaksPlainly: the visit's timeline names each entry's
// kind in words ("Envoy event", "Decision"), never the raw kind, which
// stays on the entry for scripts and styles.
func TestUITimelineSpeaksPlainly(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Demo: true})
	desk := e.signIn(t, "desk@example.com", web.RoleFrontDesk)
	e.createDemoMapping(t)
	rec := e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {desk.csrf}, "kind": {"sign-in"}, "name": {"Ada Lovelace"},
		"email": {"ada@example.com"}, "flow": {"177837/359435"}, "time_zone": {"Europe/Berlin"}}, desk.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("simulate: got %d, want 303", rec.Code)
	}
	page := e.do(t, http.MethodGet, "/admin/visits/1", nil, desk.cookie).Body.String()
	kinds := regexp.MustCompile(`<li data-kind="([a-z_]+)">.*?<span class="kind">([^<]*)</span>`).FindAllStringSubmatch(page, -1)
	if len(kinds) < 2 {
		t.Fatalf("the timeline has %d entries, want the event and the decision:\n%s", len(kinds), page)
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		if k[2] == k[1] || strings.Contains(k[2], "_") {
			t.Errorf("timeline entry of kind %s is labelled %q, want words", k[1], k[2])
		}
		seen[k[2]] = true
	}
	for _, want := range []string{"Envoy event", "Decision"} {
		if !seen[want] {
			t.Errorf("the timeline has no %q entry; labels: %v", want, seen)
		}
	}
}

// TestFavicon: the icon the pages link is served, and /favicon.ico leads
// to it, so a browser's own request for it is no 404.
func TestFavicon(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	rec := e.do(t, http.MethodGet, "/favicon.ico", nil, "")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/admin/static/favicon.svg" {
		t.Fatalf("GET /favicon.ico: %d to %q, want 301 to /admin/static/favicon.svg", rec.Code, rec.Header().Get("Location"))
	}
	rec = e.do(t, http.MethodGet, "/admin/static/favicon.svg", nil, "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "image/svg+xml") || !strings.Contains(rec.Body.String(), "<svg") {
		t.Errorf("GET the favicon: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}
