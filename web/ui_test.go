package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
)

const uiAdminKey = stacktest.AdminKey

// uiQueue records what the front desk enqueues.
type uiQueue struct {
	svc    *connector.Service
	mu     sync.Mutex
	syncs  []int64
	emails []string
}

func (q *uiQueue) EnqueueVisitSync(_ context.Context, id, _ int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.syncs = append(q.syncs, id)
	return nil
}

// EnqueueMappingChanged applies the change at once, as the worker would,
// recording the syncs it asks for.
func (q *uiQueue) EnqueueMappingChanged(ctx context.Context, locationID, flowID string) error {
	refs, err := q.svc.MappingChanged(ctx, locationID, flowID)
	for _, r := range refs {
		err = errors.Join(err, q.EnqueueVisitSync(ctx, r.ID, r.Version))
	}
	return err
}

func (q *uiQueue) EnqueueEnvoyReport(context.Context, int64) error { return nil }

func (q *uiQueue) EnqueueEmail(_ context.Context, _ int64, kind, _ string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.emails = append(q.emails, kind)
	return nil
}

// uiEnv is the web server with API and front desk on a fresh database and a
// seeded bundled controller.
type uiEnv struct {
	srv   *web.Server
	accts *accounts.Store
	maps  *mappings.Store
	svc   *connector.Service
	q     *uiQueue
	ctrl  *httptest.Server
}

func newUIEnv(t *testing.T, opts web.UIOptions) uiEnv {
	t.Helper()
	q := &uiQueue{}
	s := stacktest.Start(t, stacktest.Options{Queue: q, UI: opts})
	q.svc = s.Service
	ctrl := httptest.NewServer(s.Controller.Handler())
	t.Cleanup(ctrl.Close)
	return uiEnv{srv: s.Server, accts: s.Accounts, maps: s.Mappings, svc: s.Service, q: q, ctrl: ctrl}
}

// uiSession is a signed-in browser: its cookie and its form token.
type uiSession struct {
	cookie, csrf string
}

func (e uiEnv) signIn(t *testing.T, email string, role web.Role) uiSession {
	t.Helper()
	ctx := context.Background()
	u, err := e.accts.CreateUser(ctx, email, "a long enough password", role)
	if err != nil {
		t.Fatal(err)
	}
	tok, s, err := e.accts.NewSession(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	return uiSession{cookie: "latchkey_session=" + tok, csrf: s.CSRFToken}
}

// TestUISetupNeedsToken: the first-run page and form answer 403 without
// the one-time token (or with a wrong one, or when none was configured);
// with it an admin is made, the token's owner is told, and the token is
// refused from then on.
func TestUISetupNeedsToken(t *testing.T) {
	done := make(chan struct{}, 2)
	e := newUIEnv(t, web.UIOptions{SetupToken: uiSetupToken, SetupDone: func() { done <- struct{}{} }})
	for _, p := range []string{"/admin/setup", "/admin/setup?token=", "/admin/setup?token=wrong", "/admin/setup?token=" + uiSetupToken + "x"} {
		if rec := e.do(t, http.MethodGet, p, nil, ""); rec.Code != http.StatusForbidden {
			t.Errorf("GET %s: got %d, want 403", p, rec.Code)
		}
	}
	csrf, cookies := formToken(t, e, "/admin/setup?token="+uiSetupToken, "")
	form := url.Values{"csrf": {csrf}, "email": {"boss@example.com"}, "password": {"correct horse battery"}, "password_confirm": {"correct horse battery"}}
	for _, tok := range []string{"", "wrong", uiSetupToken[:len(uiSetupToken)-1]} {
		form.Set("token", tok)
		if rec := e.do(t, http.MethodPost, "/admin/setup", form, cookies); rec.Code != http.StatusForbidden {
			t.Errorf("POST setup with token %q: got %d, want 403", tok, rec.Code)
		}
	}
	if n, _ := e.accts.CountUsers(context.Background()); n != 0 {
		t.Fatalf("users after setups without the token: %d, want 0", n)
	}
	form.Set("token", uiSetupToken)
	if rec := e.do(t, http.MethodPost, "/admin/setup", form, cookies); rec.Code != http.StatusSeeOther {
		t.Fatalf("setup with the token: got %d, want 303: %s", rec.Code, rec.Body)
	}
	select {
	case <-done:
	default:
		t.Error("SetupDone was not called after the first admin was made")
	}
	form.Set("email", "intruder@example.com")
	if rec := e.do(t, http.MethodPost, "/admin/setup", form, cookies); rec.Code != http.StatusForbidden {
		t.Errorf("setup again with the used token: got %d, want 403", rec.Code)
	}
	if n, _ := e.accts.CountUsers(context.Background()); n != 1 {
		t.Errorf("users: %d, want 1", n)
	}

	// No token configured: setup is closed.
	e = newUIEnv(t, web.UIOptions{})
	if rec := e.do(t, http.MethodGet, "/admin/setup?token=", nil, ""); rec.Code != http.StatusForbidden {
		t.Errorf("GET setup with no token configured: got %d, want 403", rec.Code)
	}
}

func (e uiEnv) do(t *testing.T, method, path string, form url.Values, cookie string) *httptest.ResponseRecorder {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec
}

func (e uiEnv) createDemoMapping(t *testing.T) mappings.Mapping {
	t.Helper()
	m, err := e.maps.Create(context.Background(), mappings.Mapping{LocationID: "177837", FlowID: "359435", GroupIDs: []int64{1},
		DurationMinutes: 240, AdvanceMinutes: 30, RevokeOnSignOut: true, Delivery: mappings.DeliveryLatchkey})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// uiPages are the front desk's GET pages.
var uiPages = []string{"/admin", "/admin/", "/admin/visits/rows", "/admin/visits/1", "/admin/visits/1/live", "/admin/visits/1/qr",
	"/admin/mappings", "/admin/mappings/new", "/admin/mappings/1", "/admin/operations", "/admin/events", "/admin/events.csv",
	"/admin/outbox", "/admin/keys", "/admin/users", "/admin/queues", "/admin/queues/api/queues"}

func TestUIPagesRedirectToLoginWithoutSession(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Queues: http.NotFoundHandler()})
	for _, p := range uiPages {
		for _, cookie := range []string{"", "latchkey_session=not-a-real-session-token-0123456789"} {
			t.Run(p+" "+cookie, func(t *testing.T) {
				rec := e.do(t, http.MethodGet, p, nil, cookie)
				if rec.Code != http.StatusSeeOther {
					t.Fatalf("GET %s: got %d, want 303", p, rec.Code)
				}
				if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "/admin/login") {
					t.Errorf("GET %s: redirected to %q, want /admin/login", p, loc)
				}
			})
		}
	}
}

func TestUIPagesRender(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Demo: true, Queues: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("queues dashboard"))
	})})
	admin := e.signIn(t, "admin@example.com", accounts.RoleAdmin)
	e.createDemoMapping(t)
	rec := e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {admin.csrf}, "kind": {"sign-in"}, "name": {"Ada Lovelace"},
		"email": {"ada@example.com"}, "flow": {"177837/359435"}, "time_zone": {"Europe/Berlin"}}, admin.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("simulate: got %d, want 303: %s", rec.Code, rec.Body)
	}
	for _, p := range uiPages {
		t.Run(p, func(t *testing.T) {
			rec := e.do(t, http.MethodGet, p, nil, admin.cookie)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: got %d, want 200: %.300s", p, rec.Code, rec.Body)
			}
			if strings.HasPrefix(p, "/admin/queues") || p == "/admin/events.csv" {
				return
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" {
				t.Errorf("GET %s: X-Frame-Options %q, want DENY", p, rec.Header().Get("X-Frame-Options"))
			}
		})
	}
	if rec := e.do(t, http.MethodGet, "/admin/nonexistent", nil, admin.cookie); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "<html") {
		t.Errorf("unknown page: got %d %q, want an HTML 404", rec.Code, rec.Body.String())
	}
}

// uiForms are every front-desk POST route.
var uiForms = []string{"/admin/login", "/admin/setup", "/admin/logout", "/admin/simulate", "/admin/visits/1/revoke",
	"/admin/visits/1/extend", "/admin/visits/1/resend", "/admin/mappings", "/admin/mappings/1", "/admin/mappings/1/delete",
	"/admin/keys", "/admin/keys/1/revoke", "/admin/keys/controller/1/revoke", "/admin/users", "/admin/users/2/delete"}

func TestUIFormsRejectMissingOrWrongCSRF(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Demo: true})
	admin := e.signIn(t, "admin@example.com", accounts.RoleAdmin)
	// The login and setup forms are checked against the pre-session
	// cookie; give them one so only the form field is wrong.
	cookie := admin.cookie + "; latchkey_csrf=" + strings.Repeat("c", 43)
	for _, p := range uiForms {
		for _, tc := range []struct {
			name  string
			token []string
		}{{"missing", nil}, {"empty", []string{""}}, {"wrong", []string{"wrong-token-0123456789abcdefghijklmnopq"}}} {
			t.Run(p+" "+tc.name, func(t *testing.T) {
				form := url.Values{"email": {"x@example.com"}, "password": {"a long enough password"}, "name": {"k"}, "minutes": {"60"}}
				if tc.token != nil {
					form["csrf"] = tc.token
				}
				rec := e.do(t, http.MethodPost, p, form, cookie)
				if rec.Code != http.StatusForbidden {
					t.Fatalf("POST %s with %s token: got %d, want 403", p, tc.name, rec.Code)
				}
				if !strings.Contains(rec.Body.String(), "security token") {
					t.Errorf("POST %s: body does not explain the refusal: %.200s", p, rec.Body)
				}
			})
		}
	}
	// A token of another session is as wrong as a made-up one.
	other := e.signIn(t, "other@example.com", accounts.RoleAdmin)
	rec := e.do(t, http.MethodPost, "/admin/keys", url.Values{"csrf": {other.csrf}, "name": {"k"}}, admin.cookie)
	if rec.Code != http.StatusForbidden {
		t.Errorf("POST with another session's token: got %d, want 403", rec.Code)
	}
	// The right token goes through.
	rec = e.do(t, http.MethodPost, "/admin/keys", url.Values{"csrf": {admin.csrf}, "name": {"k"}}, admin.cookie)
	if rec.Code != http.StatusOK {
		t.Errorf("POST with the right token: got %d, want 200", rec.Code)
	}
	// The queue dashboard's own calls need the same origin.
	req := httptest.NewRequest(http.MethodPost, "/admin/queues/api/queues/default:pause", nil)
	req.Header.Set("Cookie", admin.cookie)
	req.Header.Set("Origin", "https://evil.example")
	res := httptest.NewRecorder()
	e.srv.ServeHTTP(res, req)
	if res.Code != http.StatusForbidden {
		t.Errorf("cross-origin POST to the queue dashboard: got %d, want 403", res.Code)
	}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formToken fetches page with cookie and returns its form token and the
// cookies it set.
func formToken(t *testing.T, e uiEnv, page, cookie string) (string, string) {
	t.Helper()
	rec := e.do(t, http.MethodGet, page, nil, cookie)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: got %d", page, rec.Code)
	}
	m := csrfInput.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("GET %s: no csrf field", page)
	}
	var cookies []string
	if cookie != "" {
		cookies = append(cookies, cookie)
	}
	for _, c := range rec.Result().Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	return m[1], strings.Join(cookies, "; ")
}

func sessionCookie(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == "latchkey_session" && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie set; headers %v", rec.Header())
	return nil
}

// uiSetupToken is the first-run token the test UIs are given.
const uiSetupToken = "setup-token-for-tests-0123456789abcdef"

func TestUISetupLoginLogout(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{SecureCookies: true, SetupToken: uiSetupToken})
	if rec := e.do(t, http.MethodGet, "/admin/login", nil, ""); rec.Header().Get("Location") != "/admin/setup" {
		t.Fatalf("login with no user: redirected to %q, want /admin/setup", rec.Header().Get("Location"))
	}
	tok, cookies := formToken(t, e, "/admin/setup?token="+uiSetupToken, "")
	form := url.Values{"csrf": {tok}, "token": {uiSetupToken}, "email": {"Boss@Example.com"}, "password": {"short"}, "password_confirm": {"short"}}
	if rec := e.do(t, http.MethodPost, "/admin/setup", form, cookies); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "at least 10 characters") {
		t.Fatalf("setup with a short password: got %d, want 400 naming the rule", rec.Code)
	}
	form.Set("password", "correct horse battery")
	form.Set("password_confirm", "correct horse battery")
	rec := e.do(t, http.MethodPost, "/admin/setup", form, cookies)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin" {
		t.Fatalf("setup: got %d to %q, want 303 to /admin", rec.Code, rec.Header().Get("Location"))
	}
	c := sessionCookie(t, rec)
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || len(c.Value) < 40 {
		t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Lax and a long random value", c)
	}
	if rec := e.do(t, http.MethodGet, "/admin", nil, "latchkey_session="+c.Value); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "boss@example.com") {
		t.Fatalf("visitors page after setup: got %d", rec.Code)
	}
	// Setup is gone once a user exists.
	if rec := e.do(t, http.MethodGet, "/admin/setup", nil, ""); rec.Code != http.StatusSeeOther {
		t.Errorf("setup page after setup: got %d, want 303", rec.Code)
	}
	if rec := e.do(t, http.MethodPost, "/admin/setup", form, cookies); rec.Code != http.StatusForbidden {
		t.Errorf("second setup with the used token: got %d, want 403", rec.Code)
	}
	n, _ := e.accts.CountUsers(context.Background())
	if n != 1 {
		t.Errorf("users after a second setup: %d, want 1", n)
	}

	tok, cookies = formToken(t, e, "/admin/login?next=/admin/mappings", "")
	login := url.Values{"csrf": {tok}, "email": {"boss@example.com"}, "password": {"wrong password!"}, "next": {"/admin/mappings"}}
	if rec := e.do(t, http.MethodPost, "/admin/login", login, cookies); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong email or password") {
		t.Fatalf("wrong password: got %d, want 401", rec.Code)
	}
	login.Set("password", "correct horse battery")
	rec = e.do(t, http.MethodPost, "/admin/login", login, cookies)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/admin/mappings" {
		t.Fatalf("login: got %d to %q, want 303 to /admin/mappings", rec.Code, rec.Header().Get("Location"))
	}
	session := "latchkey_session=" + sessionCookie(t, rec).Value
	// An open redirect is not possible through next.
	login.Set("next", "//evil.example/")
	if rec := e.do(t, http.MethodPost, "/admin/login", login, cookies); rec.Header().Get("Location") != "/admin" {
		t.Errorf("login with an outside next: redirected to %q, want /admin", rec.Header().Get("Location"))
	}

	tok, _ = formToken(t, e, "/admin", session)
	if rec := e.do(t, http.MethodPost, "/admin/logout", url.Values{"csrf": {tok}}, session); rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: got %d, want 303", rec.Code)
	}
	if rec := e.do(t, http.MethodGet, "/admin", nil, session); rec.Code != http.StatusSeeOther {
		t.Errorf("visitors page after logout: got %d, want 303 to the login", rec.Code)
	}
}

func TestUILoginRateLimit(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	if _, err := e.accts.CreateUser(context.Background(), "desk@example.com", "the right password", accounts.RoleFrontDesk); err != nil {
		t.Fatal(err)
	}
	tok, cookies := formToken(t, e, "/admin/login", "")
	var got []int
	for range 7 {
		rec := e.do(t, http.MethodPost, "/admin/login", url.Values{"csrf": {tok}, "email": {"desk@example.com"}, "password": {"a wrong guess"}}, cookies)
		got = append(got, rec.Code)
	}
	want := []int{401, 401, 401, 401, 401, 429, 429}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("statuses of repeated wrong logins (-want +got):\n%s", d)
	}
	rec := e.do(t, http.MethodPost, "/admin/login", url.Values{"csrf": {tok}, "email": {"desk@example.com"}, "password": {"the right password"}}, cookies)
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("right password while limited: got %d, want 429", rec.Code)
	}
}

func TestUIAdminOnlyPages(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Queues: http.NotFoundHandler()})
	desk := e.signIn(t, "desk@example.com", accounts.RoleFrontDesk)
	for _, p := range []string{"/admin/keys", "/admin/users", "/admin/queues", "/admin/queues/api/queues"} {
		if rec := e.do(t, http.MethodGet, p, nil, desk.cookie); rec.Code != http.StatusForbidden {
			t.Errorf("front desk GET %s: got %d, want 403", p, rec.Code)
		}
	}
	e.createDemoMapping(t)
	rec := e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {desk.csrf}, "kind": {"sign-in"}, "name": {"A"}, "email": {"a@example.com"}, "flow": {"177837/359435"}}, desk.cookie)
	if rec.Code != http.StatusForbidden {
		t.Errorf("front desk simulates outside the demo: got %d, want 403", rec.Code)
	}
	if rec := e.do(t, http.MethodGet, "/admin/mappings", nil, desk.cookie); rec.Code != http.StatusOK {
		t.Errorf("front desk GET /admin/mappings: got %d, want 200", rec.Code)
	}
}

func TestUIMappingEditor(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	s := e.signIn(t, "desk@example.com", accounts.RoleFrontDesk)
	base := url.Values{"csrf": {s.csrf}, "location_id": {"177837"}, "flow_id": {"400001"}, "group_ids": {"2"},
		"duration_minutes": {"120"}, "advance_minutes": {"15"}, "grace_minutes": {"10"}, "revoke_on_sign_out": {"1"}, "delivery": {"latchkey"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range base {
			f[kk] = vv
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"no groups", with("group_ids", ""), 422, "needs at least one group"},
		{"unknown group", with("group_ids", "99"), 422, "group 99 does not exist on the controller"},
		{"negative duration", with("duration_minutes", "-5"), 422, "must be positive"},
		{"not a number", with("advance_minutes", "soon"), 422, "must be a whole number of minutes"},
		{"no flow", with("flow_id", ""), 422, `id="flow_id-err">is required`},
		{"preview", with("action", "preview"), 200, "Sun 8 Mar 09:45 EDT"},
		{"create", base, 303, ""},
		{"duplicate", base, 422, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.form
			if tt.name == "preview" {
				f.Set("preview_kind", "invite")
				f.Set("preview_at", "2026-03-08T10:00")
				f.Set("preview_tz", "America/New_York")
			}
			rec := e.do(t, http.MethodPost, "/admin/mappings", f, s.cookie)
			if rec.Code != tt.status {
				t.Fatalf("got %d, want %d: %.500s", rec.Code, tt.status, rec.Body)
			}
			if tt.want != "" && !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("page does not say %q", tt.want)
			}
		})
	}
	ms, err := e.maps.List(context.Background(), "177837")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].FlowID != "400001" || ms[0].GraceMinutes != 10 || !ms[0].RevokeOnSignOut || ms[0].DurationMinutes != 120 {
		t.Fatalf("stored mappings: %+v", ms)
	}
	// The preview shows the window in the location's zone.
	rec := e.do(t, http.MethodPost, "/admin/mappings/"+itoaUI(ms[0].ID), with("action", "preview"), s.cookie)
	if !strings.Contains(rec.Body.String(), "–") {
		t.Errorf("preview: no window shown")
	}

}

func itoaUI(n int64) string { return strconv.FormatInt(n, 10) }

// TestUIMappingWarnings: the editor warns about a mapped group without
// doors and about an offline door.
func TestUIMappingWarnings(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	s := e.signIn(t, "desk@example.com", accounts.RoleFrontDesk)
	// Warnings: a group without doors, and an offline door.
	ctrl := func(method, path, body string) {
		req, _ := http.NewRequest(method, e.ctrl.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "KISI-LOGIN "+uiAdminKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %s", method, path, res.Status)
		}
	}
	ctrl("POST", "/groups", `{"group":{"name":"Empty","place_id":1}}`)
	ctrl("PATCH", "/locks/1", `{"lock":{"online":false}}`)
	f := url.Values{"csrf": {s.csrf}, "location_id": {"177837"}, "flow_id": {"400002"}, "group_ids": {"1", "3"},
		"duration_minutes": {"60"}, "delivery": {"latchkey"}, "action": {"preview"}}
	rec := e.do(t, http.MethodPost, "/admin/mappings", f, s.cookie)
	body := rec.Body.String()
	for _, want := range []string{"Group &#34;Empty&#34; has no doors", "Door &#34;Front door&#34; of group &#34;Visitors&#34; is offline"} {
		if !strings.Contains(body, want) {
			t.Errorf("mapping warnings do not say %q", want)
		}
	}
}

func TestUIAPIKeys(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	admin := e.signIn(t, "admin@example.com", accounts.RoleAdmin)
	ctx := context.Background()
	rec := e.do(t, http.MethodPost, "/admin/keys", url.Values{"csrf": {admin.csrf}, "name": {"reporting"}}, admin.cookie)
	if rec.Code != http.StatusOK {
		t.Fatalf("create key: got %d", rec.Code)
	}
	m := regexp.MustCompile(`id="new-key">(lk_[A-Za-z0-9_-]+)<`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("the new key is not shown")
	}
	key := m[1]
	if !e.accts.ValidAPIKey(ctx, key) {
		t.Fatalf("ValidAPIKey(new key) = false")
	}
	if e.accts.ValidAPIKey(ctx, key+"x") || e.accts.ValidAPIKey(ctx, uiAdminKey) {
		t.Errorf("ValidAPIKey accepts a wrong key")
	}
	// The key is shown once: the list has its prefix only.
	list := e.do(t, http.MethodGet, "/admin/keys", nil, admin.cookie).Body.String()
	if strings.Contains(list, key) || !strings.Contains(list, key[:9]) {
		t.Errorf("key list shows the whole key or not its prefix")
	}
	ks, err := e.accts.APIKeys(ctx)
	if err != nil || len(ks) != 1 || ks[0].LastUsedAt == nil || ks[0].KeyHash == key {
		t.Fatalf("stored keys %+v, %v: want one hashed key with its last use", ks, err)
	}
	rec = e.do(t, http.MethodPost, "/admin/keys/"+itoaUI(ks[0].ID)+"/revoke", url.Values{"csrf": {admin.csrf}}, admin.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("revoke key: got %d", rec.Code)
	}
	if e.accts.ValidAPIKey(ctx, key) {
		t.Errorf("a revoked key is still valid")
	}
}

// controllerKeyWorks reports whether the controller accepts key.
func (e uiEnv) controllerKeyWorks(t *testing.T, key string) bool {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, e.ctrl.URL+"/places", nil)
	r.Header.Set("Authorization", "KISI-LOGIN "+key)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestUIControllerKeys(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	admin := e.signIn(t, "admin@example.com", accounts.RoleAdmin)
	r, _ := http.NewRequest(http.MethodPost, e.ctrl.URL+"/logins", strings.NewReader(`{"login":{"name":"door panel","expire":false}}`))
	r.Header.Set("Authorization", "KISI-LOGIN "+uiAdminKey)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var minted struct {
		User   struct{ ID int64 } `json:"user"`
		Secret string             `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&minted); err != nil || minted.Secret == "" {
		t.Fatalf("mint a controller key: %v", err)
	}
	resp.Body.Close()
	if !e.controllerKeyWorks(t, minted.Secret) {
		t.Fatalf("the minted key does not work")
	}

	page := e.do(t, http.MethodGet, "/admin/keys", nil, admin.cookie).Body.String()
	action := "/admin/keys/controller/" + itoaUI(minted.User.ID) + "/revoke"
	if !strings.Contains(page, "door panel") || !strings.Contains(page, action) {
		t.Fatalf("the keys page does not list controller key %q with a revoke form", "door panel")
	}
	if strings.Contains(page, minted.Secret) {
		t.Fatalf("the keys page shows a controller key's secret")
	}
	rec := e.do(t, http.MethodPost, action, url.Values{"csrf": {admin.csrf}}, admin.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("revoke controller key: got %d", rec.Code)
	}
	if e.controllerKeyWorks(t, minted.Secret) {
		t.Errorf("a revoked controller key still works")
	}
	if page := e.do(t, http.MethodGet, "/admin/keys", nil, admin.cookie).Body.String(); strings.Contains(page, "door panel") {
		t.Errorf("the keys page still lists the revoked controller key")
	}
}

func TestUISimulateAndVisitActions(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Demo: true, TimeZone: "Europe/Berlin"})
	desk := e.signIn(t, "desk@example.com", accounts.RoleFrontDesk)
	e.createDemoMapping(t)
	ctx := context.Background()
	rec := e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {desk.csrf}, "kind": {"sign-in"}, "name": {"Grace Hopper"},
		"email": {"grace@example.com"}, "flow": {"177837/359435"}, "flow_name": {"Visitor"}, "time_zone": {"Europe/Berlin"}}, desk.cookie)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("simulate: got %d: %.300s", rec.Code, rec.Body)
	}
	vs, _, err := e.svc.Store().List(ctx, connector.VisitFilter{Email: "grace@example.com"})
	if err != nil || len(vs) != 1 {
		t.Fatalf("visits after simulate: %v, %v", vs, err)
	}
	v := vs[0]
	if v.Status != connector.StatusActive || v.TimeZone != "Europe/Berlin" || !strings.HasPrefix(v.SourceID, "entry:") {
		t.Errorf("simulated visit: status %s, zone %s, source %s", v.Status, v.TimeZone, v.SourceID)
	}
	if loc := rec.Header().Get("Location"); loc != "/admin/visits/"+itoaUI(v.ID)+"?done=simulated" {
		t.Errorf("simulate redirected to %q", loc)
	}
	rows := e.do(t, http.MethodGet, "/admin/visits/rows?q=grace", nil, desk.cookie).Body.String()
	if !strings.Contains(rows, "Grace Hopper") || !strings.Contains(rows, `badge active`) || strings.Contains(rows, "<html") {
		t.Errorf("rows fragment: %.500s", rows)
	}
	if rows := e.do(t, http.MethodGet, "/admin/visits/rows?status=revoked", nil, desk.cookie).Body.String(); strings.Contains(rows, "Grace Hopper") {
		t.Errorf("status filter shows an active visit as revoked")
	}
	page := "/admin/visits/" + itoaUI(v.ID)
	if body := e.do(t, http.MethodGet, page, nil, desk.cookie).Body.String(); !strings.Contains(body, "entry_sign_in received") || !strings.Contains(body, `data-copy="http://latchkey.test/v/`) {
		t.Errorf("visit page lacks its timeline or pass link")
	}
	if rec := e.do(t, http.MethodGet, page+"/qr", nil, desk.cookie); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "data:image/png;base64,") {
		t.Errorf("QR page: got %d", rec.Code)
	}

	steps := []struct {
		action string
		form   url.Values
		status int
		want   string
	}{
		{"extend", url.Values{"minutes": {"60"}}, 303, ""},
		{"extend", url.Values{"minutes": {"0"}}, 400, "minutes must be between"},
		{"resend", nil, 303, ""},
		{"revoke", nil, 303, ""},
		{"revoke", nil, 409, "already revoked"},
		{"resend", nil, 409, "there is no access to send"},
	}
	for _, st := range steps {
		f := url.Values{"csrf": {desk.csrf}}
		for k, vv := range st.form {
			f[k] = vv
		}
		rec := e.do(t, http.MethodPost, page+"/"+st.action, f, desk.cookie)
		if rec.Code != st.status {
			t.Fatalf("%s %v: got %d, want %d: %.300s", st.action, st.form, rec.Code, st.status, rec.Body)
		}
		if st.want != "" && !strings.Contains(rec.Body.String(), st.want) {
			t.Errorf("%s: page does not say %q", st.action, st.want)
		}
	}
	got, err := e.svc.Store().Visit(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != connector.StatusRevoked || got.ExtendMinutes != 60 {
		t.Errorf("visit after actions: status %s, extended %d min; want revoked, 60", got.Status, got.ExtendMinutes)
	}
	e.q.mu.Lock()
	defer e.q.mu.Unlock()
	if d := cmp.Diff([]int64{v.ID, v.ID, v.ID}, e.q.syncs); d != "" {
		t.Errorf("syncs enqueued (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{connector.EmailResend}, e.q.emails); d != "" {
		t.Errorf("emails enqueued (-want +got):\n%s", d)
	}
}

func TestUIEventsCSVDefusesFormulas(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	desk := e.signIn(t, "desk@example.com", accounts.RoleFrontDesk)
	// An unlock attempt by a link named like a formula lands in the audit
	// log under that name.
	req, _ := http.NewRequest(http.MethodPost, e.ctrl.URL+"/group_links", strings.NewReader(`{"group_link":{"name":"=HYPERLINK(\"x\")","group_id":1}}`))
	req.Header.Set("Authorization", "KISI-LOGIN "+uiAdminKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var link struct {
		Secret string `json:"secret"`
	}
	if err := jsonDecode(res, &link); err != nil || link.Secret == "" {
		t.Fatalf("create link: %v", err)
	}
	req, _ = http.NewRequest(http.MethodPost, e.ctrl.URL+"/locks/1/unlock", nil)
	req.Header.Set("Authorization", "KISI-GROUP-LINK "+link.Secret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	rec := e.do(t, http.MethodGet, "/admin/events.csv?type=lock.unlock", nil, desk.cookie)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("events.csv: got %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	if !strings.Contains(body, `'=HYPERLINK`) || !strings.Contains(body, "Front door") {
		t.Errorf("events.csv does not list the unlock with its actor defused:\n%s", body)
	}
	page := e.do(t, http.MethodGet, "/admin/events?success=true", nil, desk.cookie).Body.String()
	if !strings.Contains(page, "lock.unlock") {
		t.Errorf("events page does not list the unlock")
	}
}

func jsonDecode(res *http.Response, v any) error {
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}

// TestUIWrongPasswordsElsewhereDoNotLockOutTheOwner: someone posting wrong
// passwords for the admin's email from another address is limited there,
// and the admin still signs in from theirs.
func TestUIWrongPasswordsElsewhereDoNotLockOutTheOwner(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	if _, err := e.accts.CreateUser(context.Background(), "boss@example.com", "correct horse battery", accounts.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	csrf, cookies := formToken(t, e, "/admin/login", "")
	login := func(addr, password string) int {
		form := url.Values{"csrf": {csrf}, "email": {"boss@example.com"}, "password": {password}, "next": {"/admin"}}
		req := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(form.Encode()))
		req.RemoteAddr = addr + ":4000"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", cookies)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec.Code
	}
	limited := false
	for i := 0; i < 8; i++ {
		if login("203.0.113.5", "wrong password!") == http.StatusTooManyRequests {
			limited = true
		}
	}
	if !limited {
		t.Error("8 quick wrong passwords from one address: never 429")
	}
	if code := login("198.51.100.7", "correct horse battery"); code != http.StatusSeeOther {
		t.Errorf("the owner signing in from their address: got %d, want 303", code)
	}
}

// The operations panel says loudly when this server's clock is off the
// database's, and quietly when it is in step.
func TestUIOperationsShowsClockSkew(t *testing.T) {
	for _, tc := range []struct {
		off  time.Duration
		want string
	}{
		{30 * time.Second, "off the database&#39;s"},
		{3 * time.Millisecond, "in step with the database"},
	} {
		off := tc.off
		e := newUIEnv(t, web.UIOptions{ClockOffset: func() time.Duration { return off }})
		s := e.signIn(t, "ops@example.com", accounts.RoleAdmin)
		rec := e.do(t, http.MethodGet, "/admin/operations", nil, s.cookie)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("offset %s: %d, body lacks %q", off, rec.Code, tc.want)
		}
		if bad := strings.Contains(rec.Body.String(), `class="stat bad" id="clock"`); bad != (off > 2*time.Second) {
			t.Errorf("offset %s: clock tile marked bad = %v", off, bad)
		}
	}
}

// The mappings page lists an Envoy install's mappings apart, marked as
// managed in Envoy, with no link to the front desk's editor.
func TestUIMappingsMarksEnvoyInstalls(t *testing.T) {
	ctx := context.Background()
	e := newUIEnv(t, web.UIOptions{})
	if _, err := e.svc.ConnectInstall(ctx, "inst-7", "", stacktest.AdminKey); err != nil {
		t.Fatal(err)
	}
	groups, err := e.svc.InstallGroupOptions(ctx, "inst-7", nil, "", 1)
	if err != nil || len(groups) == 0 {
		t.Fatalf("groups: %v %v", groups, err)
	}
	g, _ := strconv.ParseInt(groups[0].Value, 10, 64)
	if _, err := e.svc.ConfigureInstall(ctx, "inst-7", connector.InstallConfig{VisitorAccess: map[string][]int64{"424242": {g}}, AccessDurationMinutes: 45}); err != nil {
		t.Fatal(err)
	}
	s := e.signIn(t, "desk@example.com", accounts.RoleAdmin)
	rec := e.do(t, http.MethodGet, "/admin/mappings", nil, s.cookie)
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, `id="envoy-mappings"`) {
		t.Fatalf("mappings page: %d, no Envoy section", rec.Code)
	}
	start := strings.Index(body, `id="envoy-mappings"`)
	section := body[start:]
	if !strings.Contains(section, "inst-7") || !strings.Contains(section, "flow 424242") || !strings.Contains(section, "managed in Envoy") || !strings.Contains(section, "45 min") {
		t.Errorf("the install's mapping is not shown as managed in Envoy:\n%s", section)
	}
	if strings.Contains(section, `href="/admin/mappings/`) {
		t.Error("an install's mapping links to the front desk's editor")
	}
}
