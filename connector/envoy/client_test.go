package envoy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/envoy"
	"github.com/latchkey/latchkey/internal/fakeenvoy"
	"github.com/latchkey/latchkey/internal/stacktest"
)

const (
	clientID     = "client-0123"
	clientSecret = "client-secret-never-logged"
)

func newClient(t *testing.T, fe *fakeenvoy.Envoy, clk *stacktest.Clock) *envoy.Client {
	t.Helper()
	c, err := envoy.New(fe.URL, envoy.Options{ClientID: clientID, ClientSecret: clientSecret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func done(msg string) connector.JobReport {
	return connector.JobReport{Status: connector.JobDone, Message: msg, Attachments: []connector.Attachment{
		{Type: connector.AttachText, Label: "Door access", Value: "Front door · Tue 1 Dec 09:00 – 17:00 CET"},
		{Type: connector.AttachLink, Label: "Guest pass", Value: "Open the pass", URL: "https://latchkey.test/v/abc"},
	}}
}

func TestOneTokenServesConcurrentReports(t *testing.T) {
	fe := fakeenvoy.Start(t, clientID, clientSecret)
	c := newClient(t, fe, stacktest.NewClock(time.Now()))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.ReportJob(context.Background(), "job-"+string(rune('a'+i)), done("ready"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fe.TokensIssued(); n != 1 {
		t.Errorf("tokens issued = %d, want 1", n)
	}
	if p := fe.Problems(); len(p) > 0 {
		t.Errorf("problems: %v", p)
	}
	jobs := fe.Jobs()
	if len(jobs) != 20 {
		t.Fatalf("jobs = %d, want 20", len(jobs))
	}
	j := jobs[0]
	if j.Status != "done" || j.StatusMessage != "ready" || len(j.Attachments) != 2 ||
		j.Attachments[1].Type != "link" || j.Attachments[1].URL != "https://latchkey.test/v/abc" || j.Attachments[0].URL != "" {
		t.Errorf("job update = %+v", j)
	}
}

func TestTokenIsRenewedBeforeItRunsOut(t *testing.T) {
	fe := fakeenvoy.Start(t, clientID, clientSecret)
	fe.SetExpiresIn(3600)
	clk := stacktest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	c := newClient(t, fe, clk)
	ctx := context.Background()
	first, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(49 * time.Minute)
	if tok, _ := c.Token(ctx); tok != first || fe.TokensIssued() != 1 {
		t.Fatalf("49 minutes into an hour's token: fetched again (issued %d)", fe.TokensIssued())
	}
	clk.Advance(2 * time.Minute) // 9 minutes before it runs out
	second, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || fe.TokensIssued() != 2 {
		t.Errorf("10 minutes before expiry the token was not renewed (issued %d)", fe.TokensIssued())
	}

	// A short-lived token is renewed at half its life.
	fe.SetExpiresIn(60)
	clk.Advance(2 * time.Hour)
	short, _ := c.Token(ctx)
	clk.Advance(29 * time.Second)
	if tok, _ := c.Token(ctx); tok != short {
		t.Error("a 60 s token was renewed after 29 s")
	}
	clk.Advance(2 * time.Second)
	if tok, _ := c.Token(ctx); tok == short {
		t.Error("a 60 s token was not renewed after 31 s")
	}
}

func TestRefusedTokenIsReplacedOnce(t *testing.T) {
	fe := fakeenvoy.Start(t, clientID, clientSecret)
	c := newClient(t, fe, stacktest.NewClock(time.Now()))
	ctx := context.Background()
	if err := c.ReportJob(ctx, "job-1", done("one")); err != nil {
		t.Fatal(err)
	}
	fe.RevokeTokens()
	if err := c.ReportJob(ctx, "job-2", done("two")); err != nil {
		t.Fatalf("after Envoy dropped the token: %v", err)
	}
	if n := fe.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}

func TestAnswersBecomeErrorKinds(t *testing.T) {
	fe := fakeenvoy.Start(t, clientID, clientSecret)
	c := newClient(t, fe, stacktest.NewClock(time.Now()))
	ctx := context.Background()
	for _, tc := range []struct {
		code int
		want latchkey.Kind
	}{
		{http.StatusInternalServerError, latchkey.Unavailable},
		{http.StatusBadGateway, latchkey.Unavailable},
		{http.StatusTooManyRequests, latchkey.Unavailable},
		{http.StatusNotFound, latchkey.Invalid},
		{http.StatusUnprocessableEntity, latchkey.Invalid},
		{http.StatusForbidden, latchkey.Unauthorized},
	} {
		fe.FailJobs(1, tc.code)
		err := c.ReportJob(ctx, "job-x", done("x"))
		if latchkey.KindOf(err) != tc.want {
			t.Errorf("%d: kind %v (%v), want %v", tc.code, latchkey.KindOf(err), err, tc.want)
		}
	}
	wrong, _ := envoy.New(fe.URL, envoy.Options{ClientID: clientID, ClientSecret: "wrong-secret"})
	err := wrong.ReportJob(ctx, "job-y", done("y"))
	if latchkey.KindOf(err) != latchkey.Unauthorized {
		t.Errorf("bad credentials: kind %v (%v)", latchkey.KindOf(err), err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error shows the secret: %v", err)
	}
	if err := c.ReportJob(ctx, "job-z", connector.JobReport{Status: "finished", Message: "?"}); latchkey.KindOf(err) != latchkey.Invalid {
		t.Errorf("unknown status: %v", err)
	}
}

func TestJobUpdateIsBounded(t *testing.T) {
	fe := fakeenvoy.Start(t, clientID, clientSecret)
	c := newClient(t, fe, stacktest.NewClock(time.Now()))
	r := done(strings.Repeat("é", 5000))
	for range 30 {
		r.Attachments = append(r.Attachments, connector.Attachment{Type: connector.AttachText, Label: strings.Repeat("l", 500), Value: strings.Repeat("v", 9000)})
	}
	if err := c.ReportJob(context.Background(), "job/with slash", r); err != nil {
		t.Fatal(err)
	}
	j := fe.Jobs()[0]
	if j.JobID != "job%2Fwith%20slash" {
		t.Errorf("job id in path = %q", j.JobID)
	}
	if n := len([]rune(j.StatusMessage)); n > 500 || len(j.Attachments) > 10 || len([]rune(j.Attachments[5].Value)) > 2000 || len([]rune(j.Attachments[5].Label)) > 100 {
		t.Errorf("not bounded: message %d runes, %d attachments", n, len(j.Attachments))
	}
}

// A caller waiting for a token that Envoy is slow to give stops waiting
// when its own context ends, whatever the others do.
func TestSlowTokenDoesNotHoldACallerPastItsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "slow", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c, err := envoy.New(srv.URL, envoy.Options{ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	// A report task with time to spare asks first and waits on.
	first := make(chan error, 1)
	go func() { _, err := c.Token(context.Background()); first <- err }()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	if _, err := c.Token(ctx); err == nil || time.Since(began) > 2*time.Second {
		t.Fatalf("token from a stalled Envoy: %v after %v; want an error once the caller's 200 ms are up", err, time.Since(began))
	}
	select {
	case err := <-first:
		t.Fatalf("the first caller stopped waiting early: %v", err)
	default:
	}
}
