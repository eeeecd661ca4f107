package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/web"
)

// TestUIFailedEmail: a guest email that failed for good is flagged in the
// visitors list and on the visit, counted the same on Operations, Resend
// says why it would fail again instead of "on its way", and the address
// corrected at the desk (form and API) gets the email.
func TestUIFailedEmail(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{Demo: true, TimeZone: "Europe/Berlin"})
	desk := e.signIn(t, "desk@example.com", accounts.RoleFrontDesk)
	e.createDemoMapping(t)
	ctx := context.Background()
	simulate := func(name, email string) connector.Visit {
		t.Helper()
		rec := e.do(t, http.MethodPost, "/admin/simulate", url.Values{"csrf": {desk.csrf}, "kind": {"sign-in"}, "name": {name},
			"email": {email}, "flow": {"177837/359435"}, "flow_name": {"Visitor"}, "time_zone": {"Europe/Berlin"}}, desk.cookie)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("simulate: %d %.300s", rec.Code, rec.Body)
		}
		vs, _, err := e.svc.Store().List(ctx, connector.VisitFilter{Email: email})
		if err != nil || len(vs) != 1 {
			t.Fatalf("visit: %v %v", vs, err)
		}
		return vs[0]
	}
	bad := simulate("Grace Hopper", "grace@@example.com")
	simulate("Ada Lovelace", "ada@example.com")
	// What the sender records when the mailer refuses the address (the
	// sending itself is connector's TestCorrectEmail; this controller
	// cannot make links, so the email is recorded here).
	if err := e.svc.Store().AddTimeline(ctx, bad.ID, bad.CreatedAt, connector.KindEmailFailed,
		"email to grace@@example.com refused for good: mail recipient is invalid"); err != nil {
		t.Fatal(err)
	}

	rows := e.do(t, http.MethodGet, "/admin/visits/rows", nil, desk.cookie).Body.String()
	if n := strings.Count(rows, "email-failed"); n != 1 {
		t.Errorf("rows flag %d visits email failed, want 1:\n%s", n, rows)
	}
	only := e.do(t, http.MethodGet, "/admin/visits/rows?status=email_failed&range=all", nil, desk.cookie).Body.String()
	if !strings.Contains(only, "Grace Hopper") || strings.Contains(only, "Ada Lovelace") {
		t.Errorf("email_failed filter:\n%s", only)
	}
	ops := e.do(t, http.MethodGet, "/admin/operations", nil, desk.cookie).Body.String()
	if !strings.Contains(ops, "1 guest with access whose last email failed") {
		t.Errorf("operations does not count the failed email:\n%s", ops)
	}
	page := "/admin/visits/" + itoaUI(bad.ID)
	if body := e.do(t, http.MethodGet, page, nil, desk.cookie).Body.String(); !strings.Contains(body, `id="email-failed"`) || !strings.Contains(body, `id="correct-email"`) {
		t.Errorf("visit page lacks the flag or the correction form")
	}
	rec := e.do(t, http.MethodPost, page+"/resend", url.Values{"csrf": {desk.csrf}}, desk.cookie)
	if rec.Code == http.StatusSeeOther || !strings.Contains(rec.Body.String(), "not valid") {
		t.Errorf("resend to the bad address: %d %.300s", rec.Code, rec.Body)
	}
	rec = e.do(t, http.MethodPost, page+"/email", url.Values{"csrf": {desk.csrf}, "email": {"grace@"}}, desk.cookie)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("correct to a bad address: %d", rec.Code)
	}
	rec = e.do(t, http.MethodPost, page+"/email", url.Values{"csrf": {desk.csrf}, "email": {"grace@example.com"}}, desk.cookie)
	if rec.Code != http.StatusSeeOther || !strings.HasSuffix(rec.Header().Get("Location"), "done=email_corrected") {
		t.Fatalf("correct: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if v, _ := e.svc.Store().Visit(ctx, bad.ID); v.Email != "grace@example.com" {
		t.Errorf("address after correction: %q", v.Email)
	}
	e.q.mu.Lock()
	emails := append([]string(nil), e.q.emails...)
	e.q.mu.Unlock()
	if len(emails) != 1 || emails[0] != connector.EmailResend {
		t.Errorf("emails queued: %v, want one resend", emails)
	}

	// The API: POST /api/v1/visits/{id}/email.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/visits/"+itoaUI(bad.ID)+"/email", strings.NewReader(`{"email":"g.hopper@example.com"}`))
	req.Header.Set("Authorization", "Bearer "+uiAdminKey)
	req.Header.Set("Content-Type", "application/json")
	res := httptest.NewRecorder()
	e.srv.ServeHTTP(res, req)
	if res.Code != http.StatusOK || !strings.Contains(res.Body.String(), `"email":"g.hopper@example.com"`) {
		t.Errorf("API correct: %d %.300s", res.Code, res.Body)
	}
}
