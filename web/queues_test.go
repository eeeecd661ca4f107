package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/web"
)

// newQueuesEnv is the front desk with the real queue dashboard (asynqmon,
// as `latchkey serve` mounts it) on Redis.
func newQueuesEnv(t *testing.T) uiEnv {
	t.Helper()
	opt, err := asynq.ParseRedisURI(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	mon := asynqmon.New(asynqmon.Options{RootPath: "/admin/queues", RedisConnOpt: opt})
	t.Cleanup(func() { _ = mon.Close() })
	return newUIEnv(t, web.UIOptions{Queues: mon})
}

var scriptTag = regexp.MustCompile(`<script[^>]*>`)

// TestQueuesDashboardSelfContained: the dashboard's page asks no other
// origin for anything (its web fonts are gone), runs its inline scripts by
// the nonce of a CSP that names no other origin, and links back to the
// front desk.
func TestQueuesDashboardSelfContained(t *testing.T) {
	e := newQueuesEnv(t)
	admin := e.signIn(t, "admin@example.com", web.RoleAdmin)
	for _, p := range []string{"/admin/queues", "/admin/queues/queues/default"} {
		rec := e.do(t, http.MethodGet, p, nil, admin.cookie)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200: %.200s", p, rec.Code, rec.Body)
		}
		body := rec.Body.String()
		if !strings.Contains(body, `id="root"`) {
			t.Fatalf("GET %s is not the dashboard's page: %.300s", p, body)
		}
		for _, foreign := range []string{"fonts.googleapis.com", "https://", "http://", `"//`} {
			if strings.Contains(body, foreign) {
				t.Errorf("GET %s: the page still refers to another origin (%s)", p, foreign)
			}
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "http") || strings.Contains(csp, "*") ||
			strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q, want one that allows only this origin and nonced inline code", p, csp)
		}
		nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(csp)
		if nonce == nil {
			t.Fatalf("GET %s: CSP %q has no nonce", p, csp)
		}
		for _, tag := range scriptTag.FindAllString(body, -1) {
			if !strings.Contains(tag, "src=") && !strings.Contains(tag, `nonce="`+nonce[1]+`"`) {
				t.Errorf("GET %s: inline script %s runs without the CSP's nonce", p, tag)
			}
		}
		if !strings.Contains(body, `<a href="/admin">`) {
			t.Errorf("GET %s: no link back to the front desk", p)
		}
	}
	// The dashboard's own API still answers its JSON.
	rec := e.do(t, http.MethodGet, "/admin/queues/api/queues", nil, admin.cookie)
	if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
		t.Errorf("GET the dashboard's API: got %d %.200s, want 200 JSON", rec.Code, rec.Body)
	}
}

// TestQueuesDashboardForbiddenPage: a front-desk (non-admin) user gets a
// page saying why, with a way back, not the API's JSON; the dashboard's
// script still gets JSON for its API calls.
func TestQueuesDashboardForbiddenPage(t *testing.T) {
	e := newQueuesEnv(t)
	desk := e.signIn(t, "desk@example.com", web.RoleFrontDesk)
	for _, p := range []string{"/admin/queues", "/admin/queues/queues/default"} {
		rec := e.do(t, http.MethodGet, p, nil, desk.cookie)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("front desk GET %s: got %d, want 403", p, rec.Code)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("front desk GET %s: Content-Type %q, want an HTML page", p, ct)
		}
		body := rec.Body.String()
		for _, want := range []string{"<html", "Forbidden", "only admins", `href="/admin"`, "/admin/static/ui.css"} {
			if !strings.Contains(body, want) {
				t.Errorf("front desk GET %s: the page lacks %q", p, want)
			}
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("front desk GET %s: CSP %q, want the front desk's", p, csp)
		}
	}
	rec := e.do(t, http.MethodGet, "/admin/queues/api/queues", nil, desk.cookie)
	if rec.Code != http.StatusForbidden || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("front desk GET the dashboard's API: got %d %q, want 403 JSON", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// TestBrowserQueuesDashboard opens the dashboard in Chromium as an admin:
// it renders, nothing is requested from another origin, the browser
// reports no CSP violation or error, and the banner leads back to the
// front desk.
func TestBrowserQueuesDashboard(t *testing.T) {
	bctx := newBrowser(t)
	e := newQueuesEnv(t)
	if _, err := e.accts.CreateUser(t.Context(), "admin@example.com", "a long enough password", web.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	var problems pageProblems
	problems.watch(t, bctx)
	var foreign []string
	if err := chromedp.Listen(bctx, func(ev any) {
		if r, ok := ev.(*network.EventRequestWillBeSent); ok && !strings.HasPrefix(r.Request.URL, ts.URL) && !strings.HasPrefix(r.Request.URL, "data:") {
			problems.mu.Lock()
			foreign = append(foreign, r.Request.URL)
			problems.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	step(t, bctx, "sign in", 15*time.Second,
		chromedp.Navigate(ts.URL+"/admin/login"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), "admin@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)),
	)
	problems.take()
	step(t, bctx, "open the queue dashboard", 20*time.Second,
		chromedp.Navigate(ts.URL+"/admin/queues"),
		chromedp.WaitVisible(chromedp.CSS(`#root header`)),
		chromedp.WaitVisible(chromedp.CSS(`.latchkey-back a[href="/admin"]`)),
		chromedp.Sleep(500*time.Millisecond),
	)
	screenshot(t, bctx, artifactsDir(t), "queues")
	for _, m := range problems.take() {
		t.Errorf("the dashboard: %s", m)
	}
	problems.mu.Lock()
	for _, u := range foreign {
		t.Errorf("the dashboard requested %s from another origin", u)
	}
	problems.mu.Unlock()
	step(t, bctx, "follow the way back", 15*time.Second,
		chromedp.Click(chromedp.CSS(`.latchkey-back a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)),
	)
}
