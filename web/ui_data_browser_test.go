package web_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
)

// dataDesk is a front desk over a stack that holds one visit of every
// status, a failed email, a very long name and captured mail.
type dataDesk struct {
	*ptStack
	url    string
	visits map[string]connector.Visit // by the status it was made to have
	long   string                     // the long visitor name
}

func newDataDesk(t *testing.T) *dataDesk {
	t.Helper()
	s := newPTStack(t, ptOptions{})
	d := &dataDesk{ptStack: s, visits: map[string]connector.Visit{}}
	now := s.clock.Now()
	guest := func(n int, name string) ptGuest {
		return ptGuest{ID: fmt.Sprint(880000 + n), Name: name, Email: fmt.Sprintf("guest%d@example.com", n)}
	}
	want := func(status string, v connector.Visit) {
		t.Helper()
		if string(v.Status) != status {
			t.Fatalf("made visit %d %q for %s, got status %s (%s)", v.ID, v.Name, status, v.Status, v.Reason)
		}
		d.visits[status] = v
	}

	v, _ := s.apply(ptSignInBody(t, guest(1, "Ada Lovelace"), now))
	want("active", v)
	d.long = strings.TrimSpace(strings.Repeat("Maximiliana Wilhelmina von Hohenzollern-Sigmaringen ", 4))[:200]
	v, _ = s.apply(ptSignInBody(t, guest(2, d.long), now))
	d.visits["long"] = v
	v, _ = s.apply(ptInviteBody(t, guest(3, "Grace Hopper"), now.Add(26*time.Hour)))
	want("scheduled", v)
	s.apply(ptSignInBody(t, guest(4, "Alan Turing"), now.Add(-time.Hour)))
	v, _ = s.apply(ptSignOutBody(t, guest(4, "Alan Turing"), now.Add(-time.Hour), now.Add(-time.Minute)))
	want("revoked", v)
	v, _ = s.apply(ptSignInBody(t, guest(5, "Katherine Johnson"), now.Add(-5*time.Hour)))
	want("expired", v)
	v, _ = s.apply(ptFixture(t, "envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		doc["meta"].(map[string]any)["job"].(map[string]any)["id"] = "sign-in-880006"
		p := doc["payload"].(map[string]any)
		p["id"] = "880006"
		p["relationships"].(map[string]any)["flow"] = map[string]any{"data": map[string]any{"type": "flows", "id": "999001"}}
		a := p["attributes"].(map[string]any)
		a["full-name"], a["email"] = "Margaret Hamilton", "guest6@example.com"
		a["signed-in-at"] = now.UTC().Format("2006-01-02 15:04:05 UTC")
	}))
	want("ignored", v)
	v, _ = s.apply(ptFixture(t, "envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		m := doc["meta"].(map[string]any)
		m["event"] = "entry_blacklist_review"
		m["job"].(map[string]any)["id"] = "review-880007"
		p := doc["payload"].(map[string]any)
		p["id"] = "880007"
		a := p["attributes"].(map[string]any)
		a["full-name"], a["email"] = "Hedy Lamarr", "guest7@example.com"
		a["signed-in-at"] = now.UTC().Format("2006-01-02 15:04:05 UTC")
	}))
	want("held", v)

	// A visitor whose email failed for good (the mail server refused it
	// every time): access works, the timeline says so.
	in, err := parseDelivery(ptSignInBody(t, guest(8, "Radia Perlman"), now))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.svc.Ingest(s.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := s.svc.SyncVisit(s.ctx, res.VisitID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.svc.EmailFailed(s.ctx, res.VisitID, sr.WindowKey, "550 mailbox unavailable"); err != nil {
		t.Fatal(err)
	}
	d.visits["email failed"], _ = s.store.Visit(s.ctx, res.VisitID)

	// A visit whose sync failed for good.
	if in, err = parseDelivery(ptSignInBody(t, guest(9, "Barbara Liskov"), now)); err != nil {
		t.Fatal(err)
	}
	if res, err = s.svc.Ingest(s.ctx, in); err != nil {
		t.Fatal(err)
	}
	v, _ = s.store.Visit(s.ctx, res.VisitID)
	if err := s.svc.MarkFailed(s.ctx, v.ID, v.Version, "controller refused the link: group not found"); err != nil {
		t.Fatal(err)
	}
	v, _ = s.store.Visit(s.ctx, v.ID)
	want("failed", v)

	// The front desk, served over loopback, with an admin and an API key.
	if err := accounts.Migrate(s.ctx, s.db); err != nil {
		t.Fatal(err)
	}
	accts := accounts.NewStore(s.db)
	if _, err := accts.CreateUser(s.ctx, "desk@example.com", "front desk password", accounts.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, _, err := accts.CreateAPIKey(s.ctx, "reception tablet", "desk@example.com"); err != nil {
		t.Fatal(err)
	}
	ui, err := web.NewUI(s.logger, accts, s.svc, mappings.NewStore(s.db), s.client, s.outbox, web.UIOptions{
		TimeZone: "Europe/Berlin", Controller: s.client})
	if err != nil {
		t.Fatal(err)
	}
	ui.Register(s.srv)
	ts := httptest.NewServer(s.srv)
	t.Cleanup(ts.Close)
	d.url = ts.URL
	return d
}

// TestBrowserFrontDeskPagesWithData loads every front-desk page with data
// in it — a visit of each status, a failed email, a 200-character name,
// captured mail — and checks each answers 200, shows what it holds, and
// does not run off the side of the screen.
func TestBrowserFrontDeskPagesWithData(t *testing.T) {
	bctx := newBrowser(t)
	d := newDataDesk(t)
	dir := artifactsDir(t)

	step(t, bctx, "sign in", 15*time.Second,
		chromedp.Navigate(d.url+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "desk@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "front desk password"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)),
	)

	type pageCheck struct {
		path string
		want []string // texts the page must show
	}
	pages := []pageCheck{
		{"/admin", []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "Hedy Lamarr", "Margaret Hamilton", "Radia Perlman", "Barbara Liskov", d.long}},
		{"/admin/mappings", []string{"359435"}},
		{"/admin/operations", nil},
		{"/admin/events", nil},
		{"/admin/outbox", []string{"guest1@example.com", "guest3@example.com"}},
		{"/admin/keys", []string{"reception tablet"}},
		{"/admin/users", []string{"desk@example.com"}},
	}
	for _, v := range d.visits {
		pages = append(pages, pageCheck{fmt.Sprintf("/admin/visits/%d", v.ID), []string{v.Name, string(v.Status)}})
	}
	for i, p := range pages {
		code := value(t, bctx, "status of "+p.path, chromedp.Evaluate[int](
			fmt.Sprintf(`fetch(%q, {credentials: 'same-origin'}).then(function (r) { return r.status; })`, p.path), chromedp.EvalAwaitPromise))
		if code != 200 {
			t.Errorf("GET %s: %d, want 200", p.path, code)
			continue
		}
		step(t, bctx, "open "+p.path, 15*time.Second,
			chromedp.Navigate(d.url+p.path),
			chromedp.WaitVisible(chromedp.CSS(`main h1`)),
		)
		text := value(t, bctx, "text of "+p.path, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
		for _, w := range p.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not show %q", p.path, w)
			}
		}
		if over := value(t, bctx, "overflow of "+p.path, chromedp.Evaluate[int](
			`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); over > 1 {
			t.Errorf("%s is %d px wider than the window", p.path, over)
		}
		screenshot(t, bctx, dir, fmt.Sprintf("data-%02d", i))
	}

	// The failed email is on its visit's timeline.
	failed := d.visits["email failed"]
	step(t, bctx, "open the visit whose email failed", 15*time.Second,
		chromedp.Navigate(fmt.Sprintf("%s/admin/visits/%d", d.url, failed.ID)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="email_failed"]`)),
	)

	// The outbox shows each message's HTML part, QR included, in a frame.
	step(t, bctx, "open the outbox", 15*time.Second,
		chromedp.Navigate(d.url+"/admin/outbox"),
		chromedp.WaitVisible(chromedp.CSS(`article.mail iframe.mail-html`)),
	)
	src := value(t, bctx, "frame source", chromedp.Evaluate[string](`document.querySelector('article.mail iframe.mail-html').getAttribute('src')`))
	sandbox := value(t, bctx, "frame sandbox", chromedp.Evaluate[string](`document.querySelector('article.mail iframe.mail-html').getAttribute('sandbox')`))
	if sandbox != "" {
		t.Errorf("mail frame sandbox=%q, want the empty (strictest) sandbox", sandbox)
	}
	screenshot(t, bctx, dir, "data-outbox")
	// Every message's frame answers with its HTML, images inlined.
	frames := value(t, bctx, "every frame's body", chromedp.Evaluate[[]string](
		`Promise.all(Array.from(document.querySelectorAll('iframe.mail-html')).map(function (f) {
			return fetch(f.getAttribute('src')).then(function (r) { return r.text().then(function (b) { return r.status + ' ' + b; }); });
		}))`, chromedp.EvalAwaitPromise))
	if len(frames) < 4 {
		t.Errorf("outbox shows %d HTML frames, want one per message (at least 4)", len(frames))
	}
	for i, f := range frames {
		if !strings.HasPrefix(f, "200 ") || !strings.Contains(f, `src="data:image/png;base64,`) {
			t.Errorf("frame %d answered %.120q, want 200 with the QR inlined", i, f)
		}
	}
	step(t, bctx, "open a message's HTML part", 15*time.Second,
		chromedp.Navigate(d.url+src),
		chromedp.WaitVisible(chromedp.CSS(`img`)),
	)
	loaded := value(t, bctx, "QR image loaded", chromedp.Evaluate[bool](
		`new Promise(function (ok) { var i = document.querySelector('img'); if (i.complete) { ok(i.naturalWidth > 0); } else { i.onload = function () { ok(i.naturalWidth > 0); }; i.onerror = function () { ok(false); }; } })`,
		chromedp.EvalAwaitPromise))
	if !loaded {
		t.Errorf("the QR image of %s does not load", src)
	}

	// The guest's pass of every one of those visits opens, narrow screen
	// included, and offers a door only while access is on.
	step(t, bctx, "narrow the window to a phone's", 5*time.Second, chromedp.EmulateViewport(390, 844))
	for status, v := range d.visits {
		path := "/v/" + d.svc.PassToken(v)
		step(t, bctx, "open the pass of the "+status+" visit", 15*time.Second,
			chromedp.Navigate(d.url+path),
			chromedp.WaitVisible(chromedp.CSS(`#state`)),
		)
		text := value(t, bctx, "pass text", chromedp.Evaluate[string](`document.body.innerText`))
		if !strings.Contains(text, v.Name) && status != "ignored" && status != "held" {
			t.Errorf("the %s visit's pass does not name %q", status, v.Name)
		}
		doors := value(t, bctx, "count unlock buttons", chromedp.Evaluate[int](`document.querySelectorAll('form[data-unlock] button:not([disabled])').length`))
		if open := status == "active" || status == "long" || status == "email failed"; open != (doors > 0) {
			t.Errorf("the %s visit's pass offers %d unlock buttons", status, doors)
		}
		if over := value(t, bctx, "overflow", chromedp.Evaluate[int](
			`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); over > 1 {
			t.Errorf("the %s visit's pass is %d px wider than a 390 px phone", status, over)
		}
		screenshot(t, bctx, dir, "data-pass-"+strings.ReplaceAll(status, " ", "-"))
	}
	t.Logf("screenshots in %s", dir)
}
