package web_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// pageProblems collects what a page reports to the browser's console
// while it loads: console errors and warnings, uncaught exceptions, log
// entries (a CSP violation is one, at level error) and responses with an
// error status (a missing favicon is one).
type pageProblems struct {
	mu   sync.Mutex
	list []string
}

// watch subscribes to the tab of ctx. It must run before the pages load.
func (p *pageProblems) watch(t *testing.T, ctx context.Context) {
	t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				msg = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				msg = fmt.Sprintf("log %s/%s: %s (%s)", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL)
			}
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				msg = fmt.Sprintf("response %d for %s", e.Response.Status, e.Response.URL)
			}
		}
		if msg == "" {
			return
		}
		p.mu.Lock()
		p.list = append(p.list, msg)
		p.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("listen to the console: %v", err)
	}
}

// take returns what was collected since the last call, and forgets it.
func (p *pageProblems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.list
	p.list = nil
	return out
}

// deskPages returns every front-desk page of d worth loading, with data in
// it: the lists, each visit of each status and its QR, a mapping's form,
// the new-mapping form, the admin pages and an error page.
func deskPages(t *testing.T, bctx context.Context, d *dataDesk) []string {
	t.Helper()
	pages := []string{"/admin", "/admin/?range=all", "/admin/mappings", "/admin/mappings/new", "/admin/operations", "/admin/events",
		"/admin/outbox", "/admin/keys", "/admin/users", "/admin/visits/999999"}
	step(t, bctx, "open the mappings", 15*time.Second, chromedp.Navigate(d.url+"/admin/mappings"),
		chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	mapping := value(t, bctx, "a mapping's link", chromedp.Evaluate[string](
		`(document.querySelector('main tbody a[href^="/admin/mappings/"]') || {getAttribute: function () { return ''; }}).getAttribute('href')`))
	if mapping == "" {
		t.Fatal("the mappings page links no mapping")
	}
	pages = append(pages, mapping)
	for _, v := range d.visits {
		pages = append(pages, fmt.Sprintf("/admin/visits/%d", v.ID))
		if v.Status.WantsLinks() {
			pages = append(pages, fmt.Sprintf("/admin/visits/%d/qr", v.ID))
		}
	}
	return pages
}

// signIn signs the browser in to d's front desk as its admin.
func signIn(t *testing.T, bctx context.Context, d *dataDesk) {
	t.Helper()
	step(t, bctx, "sign in", 15*time.Second,
		chromedp.Navigate(d.url+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "desk@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "front desk password"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)),
	)
}

// settle waits until the page's stylesheet has applied and a moment more
// for late console reports (a blocked inline style is reported as the
// parser meets it, a missing favicon after load).
func settle(t *testing.T, bctx context.Context, what string) {
	t.Helper()
	step(t, bctx, "settle "+what, 10*time.Second,
		chromedp.WaitReady(chromedp.CSS(`body`)),
		chromedp.Sleep(300*time.Millisecond),
	)
}

// TestBrowserNoConsoleErrors loads every front-desk page, with data in
// it, and every guest pass, and fails on anything the browser reports:
// a CSP violation (an inline style or script), an exception, a console
// error or a failed request such as a missing favicon.
func TestBrowserNoConsoleErrors(t *testing.T) {
	bctx := newBrowser(t)
	d := newDataDesk(t)
	var problems pageProblems
	problems.watch(t, bctx)

	signIn(t, bctx, d)
	pages := deskPages(t, bctx, d)
	for status, v := range d.visits {
		pages = append(pages, "/v/"+d.svc.PassToken(v)+"#"+strings.ReplaceAll(status, " ", "-"))
	}
	pages = append(pages, "/v/not-a-pass-token-at-all")
	problems.take() // the sign-in's own requests are not under test
	for _, p := range pages {
		step(t, bctx, "open "+p, 15*time.Second, chromedp.Navigate(d.url+p))
		settle(t, bctx, p)
		for _, m := range problems.take() {
			notFound := strings.HasSuffix(p, "999999") || strings.Contains(p, "not-a-pass")
			if notFound && strings.Contains(m, "404") && strings.Contains(m, d.url+p+")") || strings.HasSuffix(m, "for "+d.url+p) {
				continue // the page itself is the 404 under test
			}
			t.Errorf("%s: %s", p, m)
		}
	}

	// The watcher does see a violation: markup with an inline style is
	// reported.
	step(t, bctx, "add markup with an inline style", 10*time.Second,
		chromedp.Navigate(d.url+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`main h1`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('main').insertAdjacentHTML('beforeend', '<p style="color:red">x</p>')`))
	settle(t, bctx, "inline style")
	if got := strings.Join(problems.take(), "\n"); !strings.Contains(got, "Content Security Policy") {
		t.Errorf("an inline style was not reported as a CSP violation; got:\n%s", got)
	}
}
