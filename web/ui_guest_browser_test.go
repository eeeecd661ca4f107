package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/connector"
)

// TestBrowserGuestEmailsAndPasses, in Chromium on a 390 px phone, with
// data in the desk: the guest email of a German and of an English location
// reads in its language without running off the screen; the pass page
// says how access ended in each ending state, in the page's language; the
// visitors list flags the failed email and Operations counts it the same;
// and none of these pages reports a console problem (a CSP violation
// included).
func TestBrowserGuestEmailsAndPasses(t *testing.T) {
	bctx := newBrowser(t)
	d := newDataDesk(t)
	dir := artifactsDir(t)
	var problems pageProblems
	problems.watch(t, bctx)
	now := d.clock.Now()

	de := ptGuest{ID: "890001", Name: "Dora Deutsch", Email: "dora@example.com"}
	en := ptGuest{ID: "890002", Name: "Eve English", Email: "eve@example.com"}
	deVisit, _ := d.apply(ptSignInWith(t, de, now, "de", ""))
	d.apply(ptSignInWith(t, en, now, "en", ""))

	// The ending states, besides those of the data desk.
	desk := ptGuest{ID: "890003", Name: "Rita Revoked", Email: "rita@example.com"}
	rv, _ := d.apply(ptSignInWith(t, desk, now, "en", ""))
	if _, err := d.svc.Revoke(d.ctx, rv.ID); err != nil {
		t.Fatal(err)
	}
	d.resync(rv.ID)
	denied, _ := d.apply(ptSignInWith(t, ptGuest{ID: "890004", Name: "Dan Denied", Email: "dan@example.com"}, now, "en", "denied"))
	bob := ptGuest{ID: "890005", Name: "Carl Cancelled", Email: "carl@example.com"}
	cancelled, _ := d.apply(ptInviteBody(t, bob, now.Add(2*time.Hour)))
	d.apply(ptFixture(t, "envoy-plugin-event-invite_created.json", func(doc map[string]any) {
		m := doc["meta"].(map[string]any)
		m["event"] = "invite_removed"
		m["job"].(map[string]any)["id"] = "invite-removed-" + bob.ID
		doc["payload"].(map[string]any)["id"] = bob.ID
	}))
	deDesk, _ := d.apply(ptSignInWith(t, ptGuest{ID: "890006", Name: "Dieter Widerruf", Email: "dieter@example.com"}, now, "de", ""))
	if _, err := d.svc.Revoke(d.ctx, deDesk.ID); err != nil {
		t.Fatal(err)
	}
	d.resync(deDesk.ID)

	signIn(t, bctx, d)
	problems.take()
	step(t, bctx, "narrow the window to a phone's", 5*time.Second, chromedp.EmulateViewport(390, 844))
	check := func(what string) {
		t.Helper()
		if over := value(t, bctx, "overflow of "+what, chromedp.Evaluate[int](
			`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); over > 1 {
			t.Errorf("%s is %d px wider than a 390 px phone", what, over)
		}
		for _, m := range problems.take() {
			t.Errorf("%s: %s", what, m)
		}
	}

	// The emails, as the outbox shows their HTML part.
	for _, c := range []struct {
		g    ptGuest
		lang string
		want []string
	}{
		{de, "de", []string{"Hallo Dora Deutsch,", "Head Office", "Pass öffnen", "Türlesegerät"}},
		{en, "en", []string{"Hello Eve English,", "Head Office", "Open your pass", "door reader"}},
	} {
		step(t, bctx, "open the outbox", 15*time.Second, chromedp.Navigate(d.url+"/admin/outbox"), chromedp.WaitVisible(chromedp.CSS(`article.mail`)))
		settle(t, bctx, "outbox")
		check("the outbox")
		src := value(t, bctx, "frame of "+c.g.Email, chromedp.Evaluate[string](fmt.Sprintf(`(function () {
			var a = Array.from(document.querySelectorAll('article.mail')).find(function (a) { return a.querySelector('.mail-to').textContent === %q; });
			return a ? a.querySelector('iframe.mail-html').getAttribute('src') : ''; })()`, c.g.Email)))
		if src == "" {
			t.Fatalf("the outbox shows no email to %s", c.g.Email)
		}
		step(t, bctx, "open the email to "+c.g.Email, 15*time.Second, chromedp.Navigate(d.url+src), chromedp.WaitVisible(chromedp.CSS(`img`)))
		settle(t, bctx, "email")
		text := value(t, bctx, "email text", chromedp.Evaluate[string](`document.body.innerText`))
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("the email to %s lacks %q:\n%s", c.g.Email, w, text)
			}
		}
		if lang := value(t, bctx, "email lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != c.lang {
			t.Errorf("the email to %s has lang %q, want %s", c.g.Email, lang, c.lang)
		}
		check("the email to " + c.g.Email)
		screenshot(t, bctx, dir, "email-"+c.lang)
	}

	// The pass in each ending state.
	for _, c := range []struct {
		name     string
		v        connector.Visit
		lang     string
		want     string
		notWants []string
	}{
		{"signed out", d.visits["revoked"], "en", "You have signed out, so this pass no longer opens doors. Thank you for visiting.", []string{"revoked"}},
		{"window ended", d.visits["expired"], "en", "Your access has ended. Thank you for visiting.", []string{"revoked"}},
		{"revoked at the desk", rv, "en", "This pass has been revoked", []string{"Thank you"}},
		{"revoked at the desk, German location", deDesk, "de", "Dieser Pass wurde widerrufen", []string{"Vielen Dank"}},
		{"denied", denied, "en", "Your access was not approved", []string{"Thank you"}},
		{"invitation cancelled", cancelled, "en", "Your invitation was cancelled", []string{"Thank you", "revoked"}},
		{"active, German location", deVisit, "de", "Ihr Zugang gilt bis", nil},
	} {
		step(t, bctx, "open the pass: "+c.name, 15*time.Second,
			chromedp.Navigate(d.url+"/v/"+d.svc.PassToken(c.v)), chromedp.WaitVisible(chromedp.CSS(`#state`)))
		settle(t, bctx, "pass")
		state := value(t, bctx, "pass state", chromedp.Evaluate[string](`document.getElementById('state').innerText`))
		if !strings.Contains(state, c.want) {
			t.Errorf("pass %s says %q, want %q", c.name, state, c.want)
		}
		for _, n := range c.notWants {
			if strings.Contains(state, n) {
				t.Errorf("pass %s says %q", c.name, state)
			}
		}
		if lang := value(t, bctx, "pass lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != c.lang {
			t.Errorf("pass %s has lang %q, want %s", c.name, lang, c.lang)
		}
		if c.v.Status == connector.StatusRevoked || c.v.Status == connector.StatusExpired {
			if n := value(t, bctx, "enabled buttons", chromedp.Evaluate[int](`document.querySelectorAll('form[data-unlock] button:not([disabled])').length`)); n != 0 {
				t.Errorf("pass %s offers %d doors", c.name, n)
			}
		}
		check("the pass " + c.name)
		screenshot(t, bctx, dir, "pass-"+strings.ReplaceAll(c.name, " ", "-"))
	}

	// The failed email: flagged in the list, counted alike on Operations.
	failed := d.visits["email failed"]
	step(t, bctx, "open the visitors", 15*time.Second, chromedp.Navigate(d.url+"/admin?range=all"), chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)))
	settle(t, bctx, "visitors")
	flagged := value(t, bctx, "flagged rows", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#visit-rows tr')).filter(function (tr) { return tr.querySelector('.email-failed'); }).map(function (tr) { return tr.dataset.visit; })`))
	if len(flagged) != 1 || flagged[0] != fmt.Sprint(failed.ID) {
		t.Errorf("rows flagged email failed: %v, want only visit %d", flagged, failed.ID)
	}
	long := value(t, bctx, "the long name shown", chromedp.Evaluate[bool](fmt.Sprintf(`document.getElementById('visit-rows').innerText.indexOf(%q) >= 0`, d.long)))
	if !long {
		t.Errorf("the 200-character name is not shown in full")
	}
	check("the visitors list")
	screenshot(t, bctx, dir, "visitors-email-failed")
	step(t, bctx, "open operations", 15*time.Second, chromedp.Navigate(d.url+"/admin/operations"), chromedp.WaitVisible(chromedp.CSS(`#failed-emails`)))
	settle(t, bctx, "operations")
	ops := value(t, bctx, "failed emails stat", chromedp.Evaluate[string](`document.getElementById('failed-emails').innerText`))
	if !strings.Contains(ops, fmt.Sprintf("%d guest with access whose last email failed", len(flagged))) {
		t.Errorf("operations says %q; the list flags %d", ops, len(flagged))
	}
	check("operations")
	step(t, bctx, "follow to the failed emails", 15*time.Second, chromedp.Click(chromedp.CSS(`#failed-emails a`)), chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)))
	n := value(t, bctx, "rows listed", chromedp.Evaluate[int](`document.querySelectorAll('#visit-rows tr[data-visit]').length`))
	if n != len(flagged) {
		t.Errorf("the failed-email list holds %d visits; operations and the flag say %d", n, len(flagged))
	}

	// The visit: the flag and the address form, which corrects and resends.
	step(t, bctx, "correct the address", 15*time.Second,
		chromedp.Navigate(fmt.Sprintf("%s/admin/visits/%d", d.url, failed.ID)),
		chromedp.WaitVisible(chromedp.CSS(`#correct-email`)),
		chromedp.WaitVisible(chromedp.CSS(`#email-failed`)),
	)
	settle(t, bctx, "visit")
	check("the visit whose email failed")
	screenshot(t, bctx, dir, "visit-email-failed")
	step(t, bctx, "submit the corrected address", 15*time.Second,
		chromedp.SetValue(chromedp.CSS(`#guest-email`), "radia.perlman@example.com"),
		chromedp.Submit(chromedp.CSS(`#guest-email`)),
		chromedp.WaitVisible(chromedp.CSS(`main h1`)),
	)
	text := value(t, bctx, "after the correction", chromedp.Evaluate[string](`document.querySelector('main').innerText`))
	if !strings.Contains(text, "Address corrected") {
		t.Errorf("after the correction the page says:\n%s", text)
	}
	if v, _ := d.store.Visit(d.ctx, failed.ID); v.Email != "radia.perlman@example.com" {
		t.Errorf("address after the correction: %q", v.Email)
	}
	t.Logf("screenshots in %s", dir)
}
