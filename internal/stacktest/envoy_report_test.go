package stacktest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/envoy"
	"github.com/latchkey/latchkey/internal/fakeenvoy"
	"github.com/latchkey/latchkey/internal/stacktest"
)

// TestEnvoyReportsBack runs an install through Envoy's setup steps against
// a fake Envoy, then signs visitors in: a job answered 202 is reported
// done with the doors, the window and the pass link once its sync
// settles; an unmapped walk-in is ignored (400) and reported by its answer
// alone; a refused key is 412; a configuration carried by an event is
// taken; a failing Envoy (500s) does not keep the visitor from the door,
// and the report is retried until Envoy takes it; an uninstall answers
// 200.
func TestEnvoyReportsBack(t *testing.T) {
	ctx := context.Background()
	fe := fakeenvoy.Start(t, "latchkey-client", stacktest.EnvoySecret)
	rep, err := envoy.New(fe.URL, envoy.Options{ClientID: "latchkey-client", ClientSecret: stacktest.EnvoySecret})
	if err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, stacktest.Options{Worker: true, Reporter: rep})

	// The four setup steps.
	code, body := route(s, "connect", "A", `{}`, `{}`, `{"api_key":"wrong-key-0123456789"}`)
	if code != http.StatusPreconditionFailed || message(t, body) == "" {
		t.Fatalf("connect with a refused key: %d %s", code, body)
	}
	if code, body = route(s, "connect", "A", `{}`, `{}`, `{"api_key":"`+stacktest.AdminKey+`"}`); code != http.StatusOK {
		t.Fatalf("connect: %d %s", code, body)
	}
	code, body = route(s, "places", "A", `{}`, `{"search":"","page":1}`, `null`)
	var places []connector.Option
	if code != http.StatusOK || json.Unmarshal([]byte(body), &places) != nil || len(places) == 0 {
		t.Fatalf("places: %d %s", code, body)
	}
	if places[0].Label != "HQ" {
		t.Errorf("place label = %q, want the controller's name for it, HQ", places[0].Label)
	}
	code, body = route(s, "groups", "A", `{"places":["`+places[0].Value+`"]}`, `{"parent_resource_id":"359435"}`, `null`)
	var groups []connector.Option
	if code != http.StatusOK || json.Unmarshal([]byte(body), &groups) != nil || len(groups) == 0 {
		t.Fatalf("groups: %d %s", code, body)
	}
	access := `{"visitor_access":{"359435":["` + groups[0].Value + `"]},"access_duration_minutes":60}`
	if code, body = route(s, "access", "A", `{}`, `{}`, access); code != http.StatusOK {
		t.Fatalf("access: %d %s", code, body)
	}

	signIn := func(entry, flow string, config map[string]any) (int, map[string]any) {
		t.Helper()
		rec := webhook(s, installEvent(t, "A", entry, flow, s.Clock.Now(), config))
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	jobOf := func(id string) (fakeenvoy.JobUpdate, bool) {
		for _, j := range fe.Jobs() {
			if j.JobID == id {
				return j, true
			}
		}
		return fakeenvoy.JobUpdate{}, false
	}
	waitJob := func(id string) fakeenvoy.JobUpdate {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if j, ok := jobOf(id); ok {
				return j
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no report of job %s; calls %+v", id, fe.Calls())
		return fakeenvoy.JobUpdate{}
	}
	checkDone := func(j fakeenvoy.JobUpdate) {
		t.Helper()
		if j.Status != "done" || len(j.Attachments) != 2 {
			t.Fatalf("report = %+v, want done with two attachments", j)
		}
		text, link := j.Attachments[0], j.Attachments[1]
		if text.Type != "text" || !strings.Contains(text.Value, " – ") || !strings.Contains(text.Value, "·") {
			t.Errorf("text attachment = %+v, want the doors and the window", text)
		}
		if link.Type != "link" || !strings.HasPrefix(link.URL, stacktest.PublicURL+"/v/") {
			t.Errorf("link attachment = %+v, want the pass URL", link)
		}
	}

	// A sign-in: 202, then done with the pass link.
	code, out := signIn("e1", "359435", nil)
	if code != http.StatusAccepted {
		t.Fatalf("sign-in: %d %v", code, out)
	}
	checkDone(waitJob("job-A-e1"))
	visit := int64(out["visit_id"].(float64))
	waitUntil(t, 5*time.Second, func() bool {
		d, err := s.Service.Detail(ctx, visit)
		return err == nil && strings.Contains(timelineText(d), "reported to Envoy: done")
	})

	// An unmapped walk-in: 400 with the reason, and no report.
	if code, out = signIn("walk-in", "424242", nil); code != http.StatusBadRequest || out["message"] == "" {
		t.Fatalf("unmapped walk-in: %d %v", code, out)
	}

	// Envoy's configuration, carried by an event, is taken: flow 777 is
	// mapped from now on.
	code, out = signIn("e2", "359435", map[string]any{"visitor_access": map[string]any{"359435": []any{groups[0].Value}, "777": []any{groups[0].Value}}, "access_duration_minutes": 30})
	if code != http.StatusAccepted {
		t.Fatalf("sign-in with config: %d %v", code, out)
	}
	checkDone(waitJob("job-A-e2"))
	if code, out = signIn("e3", "777", nil); code != http.StatusAccepted {
		t.Fatalf("flow mapped by Envoy's configuration: %d %v", code, out)
	}
	checkDone(waitJob("job-A-e3"))

	// A failing Envoy: the guest has access all the same, and the report
	// is retried until Envoy takes it.
	fe.SetFailing(true)
	code, out = signIn("e4", "359435", nil)
	if code != http.StatusAccepted {
		t.Fatalf("sign-in while Envoy fails: %d %v", code, out)
	}
	failing := int64(out["visit_id"].(float64))
	var status connector.Status
	began := time.Now()
	for status != connector.StatusActive || fe.JobAttempts("job-A-e4") < 2 {
		if time.Since(began) > 30*time.Second {
			d, _ := s.Service.Detail(ctx, failing)
			t.Fatalf("after 30 s: visit %s, %d report attempts; want active and at least 2; timeline:\n%s",
				status, fe.JobAttempts("job-A-e4"), timelineText(d))
		}
		time.Sleep(50 * time.Millisecond)
		if d, err := s.Service.Detail(ctx, failing); err == nil {
			status = d.Visit.Status
		}
	}
	t.Logf("active with %d report attempts %s after the sign-in", fe.JobAttempts("job-A-e4"), time.Since(began).Round(time.Millisecond))
	if links, err := s.Service.Store().Links(ctx, failing); err != nil || len(links) != 1 || links[0].LinkID == 0 {
		t.Fatalf("links while Envoy fails: %v %+v", err, links)
	}
	fe.SetFailing(false)
	checkDone(waitJob("job-A-e4"))

	// Uninstall.
	rec := webhook(s, []byte(`{"meta":{"event":"plugin_uninstalled","install_id":"A","job":{"id":"u1"}},"payload":null}`))
	if rec.Code != http.StatusOK {
		t.Fatalf("uninstall: %d %s", rec.Code, rec.Body)
	}

	if _, ok := jobOf("job-A-walk-in"); ok {
		t.Error("the ignored walk-in was reported by a PATCH; its 400 answer says it all")
	}
	if p := fe.Problems(); len(p) > 0 {
		t.Errorf("Envoy saw malformed calls: %v", p)
	}
	if n := fe.TokensIssued(); n != 1 {
		t.Errorf("tokens issued = %d, want 1 (cached)", n)
	}
}

func waitUntil(t *testing.T, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not so within %s", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEnvoyReportGivenUpShowsOnOperations: a report Envoy keeps refusing
// is given up; the operations panel counts it, and the guest's access is
// untouched.
func TestEnvoyReportGivenUpShowsOnOperations(t *testing.T) {
	ctx := context.Background()
	fe := fakeenvoy.Start(t, "latchkey-client", stacktest.EnvoySecret)
	fe.FailJobs(1000, http.StatusNotFound)
	rep, err := envoy.New(fe.URL, envoy.Options{ClientID: "latchkey-client", ClientSecret: stacktest.EnvoySecret})
	if err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, stacktest.Options{Queue: quietQueue{}, Reporter: rep})
	if code, body := route(s, "connect", "A", `{}`, `{}`, `{"api_key":"`+stacktest.AdminKey+`"}`); code != http.StatusOK {
		t.Fatalf("connect: %d %s", code, body)
	}
	groups, err := s.Service.InstallGroupOptions(ctx, "A", nil, "", 1)
	if err != nil || len(groups) == 0 {
		t.Fatalf("groups: %v", err)
	}
	if code, body := route(s, "access", "A", `{}`, `{}`, `{"visitor_access":{"359435":["`+groups[0].Value+`"]},"access_duration_minutes":60}`); code != http.StatusOK {
		t.Fatalf("access: %d %s", code, body)
	}
	rec := webhook(s, installEvent(t, "A", "e9", "359435", s.Clock.Now(), nil))
	var out struct {
		VisitID int64 `json:"visit_id"`
	}
	if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		t.Fatalf("sign-in: %d %s", rec.Code, rec.Body)
	}
	if _, err := s.Service.SyncVisit(ctx, out.VisitID); err != nil {
		t.Fatal(err)
	}
	owed, err := s.Service.ReportsOwed(ctx, s.Clock.Now().Add(time.Minute))
	if err != nil || len(owed) != 1 {
		t.Fatalf("owed = %v (%v)", owed, err)
	}
	err = s.Service.SendEnvoyReport(ctx, owed[0])
	if err == nil {
		t.Fatal("Envoy's 404 was taken for success")
	}
	if err := s.Service.ReportFailed(ctx, owed[0], err.Error()); err != nil {
		t.Fatal(err)
	}
	u, err := s.Accounts.CreateUser(ctx, "ops@example.com", "a long enough password", "admin")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Accounts.NewSession(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	req := httptestRequest(http.MethodGet, "/admin/operations", "latchkey_session="+tok)
	page := serve(s, req)
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `id="envoy-reports"`) || !strings.Contains(page.Body.String(), "1 in 7 days") {
		t.Fatalf("operations: %d, no count of the report given up", page.Code)
	}
	d, err := s.Service.Detail(ctx, out.VisitID)
	if err != nil || d.Visit.Status != connector.StatusActive || !strings.Contains(timelineText(d), "could not report the job to Envoy") {
		t.Fatalf("visit after a given-up report: %v %s\n%s", err, d.Visit.Status, timelineText(d))
	}
}

func httptestRequest(method, path, cookie string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Cookie", cookie)
	return req
}

func serve(s *stacktest.Stack, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Server.ServeHTTP(rec, req)
	return rec
}
