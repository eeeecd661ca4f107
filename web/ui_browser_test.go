package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/web"
)

const uiChromium = "/usr/bin/chromium"

// uiStack is the whole product in-process, listening on loopback: the web
// server (API, front desk, guest pass), the bundled controller, the
// connector and a jobs worker on Redis.
type uiStack struct {
	url   string
	accts *accounts.Store
}

func newUIStack(t *testing.T) uiStack {
	t.Helper()
	s := stacktest.Start(t, stacktest.Options{Worker: true, Listen: true, UI: web.UIOptions{Demo: true, TimeZone: "Europe/Berlin"}})
	return uiStack{url: s.URL, accts: s.Accounts}
}

// newBrowser starts headless Chromium for one test, or skips the test
// when it is not installed.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(uiChromium); err != nil {
		t.Skipf("browser test needs Chromium at %s (apt-get install chromium): %v", uiChromium, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(uiChromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Skipf("Chromium does not start: %v", err)
	}
	return bctx
}

// artifactsDir is where screenshots go: LATCHKEY_ARTIFACTS_DIR, else a
// temporary directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LATCHKEY_ARTIFACTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// step runs actions with a deadline, failing the test with name.
func step(t *testing.T, ctx context.Context, name string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// value runs one action that returns something, with a deadline.
func value[T any](t *testing.T, ctx context.Context, name string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := value(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, "ui-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUIBrowserFrontDesk walks the front desk in headless Chromium: sign
// in, map a flow, simulate a sign-in, watch the visitor appear with a
// timeline and links, open the guest's pass, revoke at the desk, and see
// the pass refuse to unlock.
func TestUIBrowserFrontDesk(t *testing.T) {
	bctx := newBrowser(t)
	s := newUIStack(t)
	dir := artifactsDir(t)
	if _, err := s.accts.CreateUser(context.Background(), "desk@example.com", "front desk password", accounts.RoleAdmin); err != nil {
		t.Fatal(err)
	}

	step(t, bctx, "open the front desk", 15*time.Second,
		chromedp.Navigate(s.url+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
	)
	screenshot(t, bctx, dir, "1-login")
	step(t, bctx, "sign in", 15*time.Second,
		chromedp.SendKeys(chromedp.CSS(`#email`), "desk@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "front desk password"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)),
	)

	step(t, bctx, "create a mapping", 15*time.Second,
		chromedp.Click(chromedp.CSS(`a[href="/admin/mappings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-mapping`)),
		chromedp.Click(chromedp.CSS(`#new-mapping`)),
		chromedp.WaitVisible(chromedp.CSS(`#mapping-form`)),
		chromedp.SendKeys(chromedp.CSS(`#location_id`), "177837"),
		chromedp.SendKeys(chromedp.CSS(`#flow_id`), "400100"),
		chromedp.Click(chromedp.CSS(`input[name="group_ids"][value="1"]`)),
		chromedp.Click(chromedp.CSS(`#preview-btn`)),
		chromedp.WaitVisible(chromedp.CSS(`#preview`)),
	)
	screenshot(t, bctx, dir, "2-mapping-preview")
	step(t, bctx, "save the mapping", 15*time.Second,
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.Search(`//td/a[contains(., "flow 400100")]`)),
	)
	screenshot(t, bctx, dir, "3-mappings")

	step(t, bctx, "simulate a sign-in", 15*time.Second,
		chromedp.Click(chromedp.CSS(`a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#simulate`)),
		chromedp.SetValue(chromedp.CSS(`#sim-flow`), "177837/400100"),
		chromedp.SetValue(chromedp.CSS(`#sim-name`), "Ada Lovelace"),
		chromedp.SetValue(chromedp.CSS(`#sim-email`), "ada@example.com"),
		chromedp.Submit(chromedp.CSS(`#sim-name`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline`)),
	)
	// The worker creates the link; the page picks it up by itself.
	step(t, bctx, "see the link created on the timeline", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="link_created"]`)),
		chromedp.WaitVisible(chromedp.Search(`//span[contains(@class,"badge") and text()="active"]`)),
	)
	screenshot(t, bctx, dir, "4-visit-active")

	step(t, bctx, "see the visitor in today's list", 15*time.Second,
		chromedp.Navigate(s.url+"/admin"),
		chromedp.WaitVisible(chromedp.Search(`//tbody[@id="visit-rows"]//a[text()="Ada Lovelace"]`)),
	)
	screenshot(t, bctx, dir, "5-visitors")
	step(t, bctx, "open the visit", 15*time.Second,
		chromedp.Click(chromedp.Search(`//tbody[@id="visit-rows"]//a[text()="Ada Lovelace"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#copy-link`)),
	)
	attr := value(t, bctx, "read the pass link", chromedp.AttributeValue(chromedp.CSS(`#copy-link`), "data-copy"))
	passURL := attr.Value
	if !strings.HasPrefix(passURL, s.url+"/v/") {
		t.Fatalf("pass link %q, want one under %s/v/", passURL, s.url)
	}
	step(t, bctx, "show the QR", 15*time.Second,
		chromedp.Click(chromedp.CSS(`#show-qr`)),
		chromedp.WaitVisible(chromedp.CSS(`#qr img`)),
	)
	screenshot(t, bctx, dir, "6-qr")

	// The guest opens their pass. (One tab does it all: this chromedp
	// cannot drive a second headless tab reliably.)
	step(t, bctx, "open the guest's pass", 15*time.Second,
		chromedp.Navigate(passURL),
		chromedp.WaitVisible(chromedp.Search(`//button[contains(., "Unlock Front door")]`)),
	)
	screenshot(t, bctx, dir, "7-pass")

	// Revoking asks for confirmation; accept it as a person would.
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	step(t, bctx, "revoke at the desk", 20*time.Second,
		chromedp.Navigate(s.url+"/admin"),
		chromedp.Click(chromedp.Search(`//tbody[@id="visit-rows"]//a[text()="Ada Lovelace"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#revoke`)),
		chromedp.Click(chromedp.CSS(`#revoke`)),
		chromedp.WaitVisible(chromedp.Search(`//span[contains(@class,"badge") and text()="revoked"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="link_revoked"]`)),
	)
	screenshot(t, bctx, dir, "8-visit-revoked")

	// The pass now offers no door, and an unlock from it is refused.
	step(t, bctx, "open the pass again", 15*time.Second,
		chromedp.Navigate(passURL),
		chromedp.WaitVisible(chromedp.CSS(`#state`)),
	)
	screenshot(t, bctx, dir, "9-pass-revoked")
	if n := value(t, bctx, "count unlock buttons", chromedp.Evaluate[int](`document.querySelectorAll('form[data-unlock] button:not([disabled])').length`)); n != 0 {
		t.Errorf("revoked pass offers %d unlock buttons, want none", n)
	}
	got := value(t, bctx, "unlock from the revoked pass", chromedp.Evaluate[string](
		`fetch(location.pathname + '/locks/1/unlock', {method: 'POST', headers: {'Accept': 'application/json'}})
			.then(function (r) { return r.text().then(function (b) { return r.status + ' ' + b; }); })`, chromedp.EvalAwaitPromise))
	if !strings.HasPrefix(got, "403 ") || !strings.Contains(got, "no longer opens doors") {
		t.Errorf("unlock from the revoked pass answered %q, want 403 saying it no longer opens doors", got)
	}
	t.Logf("screenshots in %s", dir)
}
