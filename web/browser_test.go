package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/webhooks"
)

// The browser tests open guest passes in headless Chromium, as a guest's
// phone would, against the whole stack: signed webhook, worker, controller,
// email, pass page.

const btChromium = "/usr/bin/chromium"

// btStepTimeout bounds every browser step.
const btStepTimeout = 20 * time.Second

// newBrowser starts a headless Chromium with a fresh profile and returns
// its context; tabs are opened with newTab. It skips the test when Chromium
// is not installed.
func btBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(btChromium); err != nil {
		t.Skipf("browser tests need Chromium at %s (Debian package chromium; CI installs it): %v", btChromium, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(btChromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel)
	btStart(t, ctx, cancel, "start Chromium")
	return ctx
}

// start runs the first action on a chromedp context, which binds the
// browser or tab to the context it is given: so it gets ctx itself, and a
// watchdog cancels ctx when the start takes longer than btStepTimeout.
func btStart(t *testing.T, ctx context.Context, cancel context.CancelFunc, what string) {
	t.Helper()
	watchdog := time.AfterFunc(btStepTimeout, cancel)
	defer watchdog.Stop()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newTab opens a tab of browser sized as a phone (390 × 844).
func btTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	btStart(t, ctx, cancel, "open a tab")
	btDo(t, ctx, "size the tab as a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	return ctx
}

// do runs steps within btStepTimeout and fails the test naming what on error.
func btDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, btStepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// run runs one action within btStepTimeout and returns its value.
func btRun[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, btStepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot saves the tab's viewport as name in the artifacts directory
// (LATCHKEY_ARTIFACTS_DIR, else a temporary one) and logs the path.
func btScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := btRun(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	dir := os.Getenv("LATCHKEY_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// waitFor polls cond every 25 ms until it holds or timeout passes.
func btWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// postWebhook posts body to the live stack's receiver, signed as Envoy signs.
func (s *ptStack) postWebhook(body []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url+"/webhooks/envoy", bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Envoy-Signature", webhooks.Sign(body, ptEnvoySecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("post webhook: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("post webhook: got %d %s, want 2xx", resp.StatusCode, out)
	}
}

// api calls the admin API of the live stack and decodes the answer.
func (s *ptStack) api(method, path string, out any) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.ctx, method, s.url+path, nil)
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+ptAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s %s: got %d %s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			s.t.Fatalf("decode %s %s: %v (%s)", method, path, err, body)
		}
	}
}

// passFromEmail waits for the guest's email and returns the pass URL in
// its text.
func (s *ptStack) passFromEmail(g ptGuest) string {
	s.t.Helper()
	btWaitFor(s.t, 15*time.Second, "the email to "+g.Email, func() bool { return len(s.mailsTo(g.Email)) > 0 })
	ms := s.mailsTo(g.Email)
	if len(ms) != 1 {
		s.t.Fatalf("emails to %s: got %d, want 1", g.Email, len(ms))
	}
	u := ptPassURLIn(s.t, ms[0].Text)
	if !strings.HasPrefix(u, s.url+"/v/") {
		s.t.Fatalf("pass URL %s is not on the server %s", u, s.url)
	}
	return u
}

func btQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// btEnabledButtons counts the page's enabled door buttons.
const btEnabledButtons = `document.querySelectorAll('form[data-unlock] button:not([disabled])').length`

func TestBrowserGuestPass(t *testing.T) {
	browser := btBrowser(t)
	s := newPTStack(t, ptOptions{live: true})
	var tokens []string

	t.Run("from a signed sign-in to a door unlocked by a click", func(t *testing.T) {
		s.postWebhook(ptSignInBody(t, ptJane, time.Now()))
		passURL := s.passFromEmail(ptJane)
		tokens = append(tokens, passURL[strings.LastIndex(passURL, "/")+1:])

		tab := btTab(t, browser)
		btDo(t, tab, "open the pass", chromedp.Navigate(passURL), chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "Hello Jane Visitor")]`)))
		if got := btRun(t, tab, "read the referrer policy", chromedp.Evaluate[string](`document.querySelector('meta[name=referrer]').content`)); got != "no-referrer" {
			t.Errorf("referrer policy %q, want no-referrer", got)
		}
		btScreenshot(t, tab, "pass-active.png")
		btDo(t, tab, "unlock the front door",
			chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Unlock Front door"]`)),
			chromedp.WaitVisible(chromedp.Search(`//div[@id="msg"]/p[contains(., "Unlocked!")]`)))
		btScreenshot(t, tab, "pass-unlocked.png")

		evs := s.unlockEvents()
		if len(evs) == 0 {
			t.Fatal("the controller recorded no lock.unlock event")
		}
		e := evs[0]
		if !e.Success || ptDeref(e.ActorName) != ptJane.linkName() || e.ObjectID == nil || *e.ObjectID != ptFrontDoor {
			t.Errorf("unlock event: got success %v, actor %q, lock %v; want success on lock %d by %q",
				e.Success, ptDeref(e.ActorName), e.ObjectID, ptFrontDoor, ptJane.linkName())
		}

		// At 320 px wide nothing overflows sideways.
		btDo(t, tab, "narrow the tab to 320 px", chromedp.EmulateViewport(320, 640, chromedp.EmulateMobile))
		if w := btRun(t, tab, "measure the page", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 320 {
			t.Errorf("page is %d px wide at a 320 px viewport, want ≤ 320", w)
		}
		btScreenshot(t, tab, "pass-320px.png")
	})

	t.Run("unlock without JavaScript", func(t *testing.T) {
		if len(tokens) == 0 {
			t.Skip("needs the pass of the first subtest")
		}
		tab := btTab(t, browser)
		btDo(t, tab, "turn JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
		btDo(t, tab, "open the pass and unlock the lobby",
			chromedp.Navigate(s.url+"/v/"+tokens[0]),
			chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Unlock Lobby"]`)),
			chromedp.WaitVisible(chromedp.Search(`//div[@id="msg"]/p[contains(., "Unlocked!")]`)))
		btScreenshot(t, tab, "pass-unlocked-no-js.png")
	})

	t.Run("before the window: a live countdown, greyed-out doors that open on time", func(t *testing.T) {
		bob := ptGuest{ID: "43116507", Name: "Bob Guest", Email: "bob@example.com"}
		// Invites get access 30 minutes before the expected arrival, so
		// this window opens a few seconds from now.
		s.postWebhook(ptInviteBody(t, bob, time.Now().Add(30*time.Minute+8*time.Second)))
		passURL := s.passFromEmail(bob)
		tokens = append(tokens, passURL[strings.LastIndex(passURL, "/")+1:])

		tab := btTab(t, browser)
		btDo(t, tab, "open the pass", chromedp.Navigate(passURL), chromedp.WaitVisible(chromedp.ID("countdown")))
		first := btRun(t, tab, "read the countdown", chromedp.Text(chromedp.ID("countdown")))
		if n := btRun(t, tab, "count the door buttons", chromedp.Evaluate[int](`document.querySelectorAll('form[data-unlock] button').length`)); n != 3 {
			t.Errorf("door buttons: got %d, want 3", n)
		}
		if n := btRun(t, tab, "count enabled buttons", chromedp.Evaluate[int](btEnabledButtons)); n != 0 {
			t.Errorf("enabled door buttons before the window: got %d, want 0 (countdown %q)", n, first)
		}
		btScreenshot(t, tab, "pass-scheduled.png")
		btRun(t, tab, "watch the countdown tick", chromedp.Poll[chromedp.Void](
			`document.getElementById('countdown').textContent !== `+btQuote(first), chromedp.WithPollingTimeout(3*time.Second)))

		btRun(t, tab, "wait for the window to open", chromedp.Poll[chromedp.Void](btEnabledButtons+` === 3`, chromedp.WithPollingTimeout(15*time.Second)))
		if st := btRun(t, tab, "read the state", chromedp.Text(chromedp.ID("state"))); !strings.HasPrefix(st, "Your access is open until") {
			t.Errorf("state once the window opened: %q", st)
		}
		btDo(t, tab, "unlock the front door as soon as the window opens",
			chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Unlock Front door"]`)),
			chromedp.WaitVisible(chromedp.Search(`//div[@id="msg"]/p[contains(., "Unlocked!")]`)))
		btScreenshot(t, tab, "pass-opened-on-time.png")
	})

	t.Run("a revoked pass is refused", func(t *testing.T) {
		carol := ptGuest{ID: "141649999", Name: "Carol Caller", Email: "carol@example.com"}
		s.postWebhook(ptSignInBody(t, carol, time.Now()))
		passURL := s.passFromEmail(carol)
		tokens = append(tokens, passURL[strings.LastIndex(passURL, "/")+1:])

		var visits []struct {
			ID     int64            `json:"id"`
			Status connector.Status `json:"status"`
		}
		s.api(http.MethodGet, "/api/v1/visits?email="+url.QueryEscape(carol.Email), &visits)
		if len(visits) != 1 {
			t.Fatalf("visits of %s: got %d, want 1", carol.Email, len(visits))
		}
		id := visits[0].ID
		s.api(http.MethodPost, "/api/v1/visits/"+ptItoa(id)+"/revoke", nil)
		btWaitFor(t, 15*time.Second, "the worker to delete the revoked visit's link", func() bool {
			links, err := s.store.Links(s.ctx, id)
			if err != nil {
				t.Fatalf("links: %v", err)
			}
			for _, l := range links {
				if !l.Removed {
					return false
				}
			}
			return len(links) > 0
		})

		tab := btTab(t, browser)
		btDo(t, tab, "open the revoked pass", chromedp.Navigate(passURL),
			chromedp.WaitVisible(chromedp.Search(`//p[@id="state" and contains(., "revoked")]`)))
		if n := btRun(t, tab, "count enabled buttons", chromedp.Evaluate[int](btEnabledButtons)); n != 0 {
			t.Errorf("enabled door buttons on a revoked pass: got %d, want 0", n)
		}
		// A script holding the old page still cannot open a door.
		msg := btRun(t, tab, "unlock anyway", chromedp.Evaluate[string](
			`fetch(location.pathname+'/locks/1/unlock',{method:'POST',headers:{Accept:'application/json'}}).then(r=>r.json()).then(j=>j.message)`,
			chromedp.EvalAwaitPromise))
		if msg != "This pass no longer opens doors." {
			t.Errorf("unlock of a revoked pass: got %q, want the refusal", msg)
		}
		btScreenshot(t, tab, "pass-revoked.png")
	})

	s.checkNoSecretsLogged(tokens...)
}
