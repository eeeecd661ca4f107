package connector_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"gorm.io/gorm"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/jobs"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/webhooks"
)

// The delivery tests send guest email through the real paths: the outbox,
// and SMTP to a real in-process server (emersion/go-smtp) that can be
// stopped and started on the same port.

const (
	dlPublic   = "http://pass.latchkey.test"
	dlGuest    = "visitor@example.com"
	dlLinkName = "Jane Visitor (Visitor)"
)

// dlSMTP is a real SMTP server on a fixed loopback address that records
// the raw messages it accepts. It starts stopped.
type dlSMTP struct {
	t    testing.TB
	addr string

	mu   sync.Mutex
	msgs [][]byte
	srv  *smtp.Server
	done chan struct{}
}

// newDLSMTP reserves a loopback port for a server that is not running yet.
func newDLSMTP(t testing.TB) *dlSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("reserve a port: %v", err)
	}
	s := &dlSMTP{t: t, addr: l.Addr().String()}
	if err := l.Close(); err != nil {
		t.Fatalf("release the port: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is the SMTP_URL of the server (plain SMTP, no TLS, no AUTH).
func (s *dlSMTP) URL() string { return "smtp://" + s.addr + "?tls=none" }

// Start serves on the reserved address.
func (s *dlSMTP) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen on %s: %v", s.addr, err)
	}
	srv := smtp.NewServer(dlBackend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 10 << 20
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	s.srv, s.done = srv, done
}

// Stop closes the server; connections are then refused.
func (s *dlSMTP) Stop() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}

// Messages returns the raw messages accepted so far.
func (s *dlSMTP) Messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

type dlBackend struct{ s *dlSMTP }

func (b dlBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &dlSession{s: b.s}, nil }

type dlSession struct{ s *dlSMTP }

func (*dlSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*dlSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*dlSession) Reset()                               {}
func (*dlSession) Logout() error                        { return nil }

func (ss *dlSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, b)
	ss.s.mu.Unlock()
	return nil
}

// dlEnv is a connector service on the wall clock, driving a bundled
// controller over HTTP, sending guest email through sender.
type dlEnv struct {
	t      *testing.T
	ctx    context.Context
	db     *gorm.DB
	ctrl   *httptest.Server
	outbox *mail.Outbox
	store  *connector.Store
	svc    *connector.Service
}

// dlOptions changes how newDLEnv builds the environment.
type dlOptions struct {
	// smtpURL sends guest email over SMTP instead of into the outbox.
	smtpURL string
	// delivery is the mapping's delivery (default latchkey).
	delivery mappings.Delivery
}

func newDLEnv(t *testing.T, o dlOptions) *dlEnv {
	t.Helper()
	if o.delivery == "" {
		o.delivery = mappings.DeliveryLatchkey
	}
	eo := envOptions{wallClock: true, publicURL: dlPublic, mapping: func(m *mappings.Mapping) { m.Delivery = o.delivery }}
	if o.smtpURL != "" {
		// A short timeout keeps a refused connection quick.
		sender, err := mail.NewSMTP(o.smtpURL, "latchkey <access@latchkey.test>", mail.SMTPOptions{Timeout: 3 * time.Second, HELO: "latchkey.test"})
		if err != nil {
			t.Fatalf("smtp sender: %v", err)
		}
		eo.sender = sender
	}
	e := newEnv(t, eo)
	e.svc = e.serviceWith(e.client, nil, connector.Options{})
	return &dlEnv{t: t, ctx: e.ctx, db: e.db, ctrl: e.srv, outbox: e.outbox, store: e.store, svc: e.svc}
}

// dlFixture returns an Envoy fixture with changes applied to its document.
func dlFixture(t *testing.T, name string, change func(doc map[string]any)) []byte {
	t.Helper()
	return fixtures.EditEnvoy(name, change)
}

// dlSignIn is the captured walk-in sign-in, signed in at.
func dlSignIn(t *testing.T, at time.Time) []byte {
	t.Helper()
	return dlFixture(t, "envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		doc["payload"].(map[string]any)["attributes"].(map[string]any)["signed-in-at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
	})
}

// dlInvite is the captured invite as event name (invite_created or
// invite_updated), expected at arrival, delivered as job.
func dlInvite(t *testing.T, name string, arrival time.Time, job string) []byte {
	t.Helper()
	return dlFixture(t, "envoy-plugin-event-invite_created.json", func(doc map[string]any) {
		meta := doc["meta"].(map[string]any)
		meta["event"] = name
		meta["job"].(map[string]any)["name"] = name
		meta["job"].(map[string]any)["id"] = job
		doc["payload"].(map[string]any)["attributes"].(map[string]any)["expected-arrival-time"] = arrival.UTC().Format(time.RFC3339)
	})
}

// ingest records a webhook body as the receiver does.
func (e *dlEnv) ingest(body []byte) connector.IngestResult {
	e.t.Helper()
	res, err := e.tryIngest(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// tryIngest is ingest returning its error; it is safe to call from several
// goroutines.
func (e *dlEnv) tryIngest(body []byte) (connector.IngestResult, error) {
	d, err := webhooks.Parse(body)
	if err != nil {
		return connector.IngestResult{}, fmt.Errorf("parse delivery: %w", err)
	}
	res, err := e.svc.Ingest(e.ctx, connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event})
	if err != nil {
		return res, fmt.Errorf("ingest %s: %w", d.Kind, err)
	}
	return res, nil
}

// deliver ingests body, syncs its visit and sends the email the sync asks
// for, as the worker would; it returns the visit.
func (e *dlEnv) deliver(body []byte) connector.Visit {
	e.t.Helper()
	res := e.ingest(body)
	sr := e.syncVisit(res.VisitID)
	if sr.EmailKind != "" {
		if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey); err != nil {
			e.t.Fatalf("send %s email: %v", sr.EmailKind, err)
		}
	}
	return e.visit(res.VisitID)
}

func (e *dlEnv) syncVisit(id int64) connector.SyncResult {
	e.t.Helper()
	sr, err := e.svc.SyncVisit(e.ctx, id)
	if err != nil {
		e.t.Fatalf("sync visit %d: %v", id, err)
	}
	return sr
}

func (e *dlEnv) visit(id int64) connector.Visit {
	e.t.Helper()
	v, err := e.store.Visit(e.ctx, id)
	if err != nil {
		e.t.Fatalf("visit %d: %v", id, err)
	}
	return v
}

// timelineKinds counts the visit's timeline entries by kind.
func (e *dlEnv) timelineKinds(id int64) map[string]int {
	e.t.Helper()
	tl, err := e.store.Timeline(e.ctx, id)
	if err != nil {
		e.t.Fatalf("timeline of visit %d: %v", id, err)
	}
	n := map[string]int{}
	for _, te := range tl {
		n[te.Kind]++
	}
	return n
}

// captured returns the outbox's messages, oldest first.
func (e *dlEnv) captured() []mail.StoredMessage {
	e.t.Helper()
	ms, _, err := e.outbox.List(e.ctx, mail.OutboxFilter{Limit: mail.MaxListLimit})
	if err != nil {
		e.t.Fatalf("list outbox: %v", err)
	}
	for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
		ms[i], ms[j] = ms[j], ms[i]
	}
	return ms
}

// dlWait polls cond every 20 ms until it holds or timeout passes.
func dlWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// TestEmailSMTPOutage: while the SMTP server is down the email fails as
// retryable and lands on the timeline; once it is back, a retry delivers
// the email once, and further retries deliver nothing more.
func TestEmailSMTPOutage(t *testing.T) {
	srv := newDLSMTP(t) // not started: connections are refused
	e := newDLEnv(t, dlOptions{smtpURL: srv.URL()})
	res := e.ingest(dlSignIn(t, time.Now()))
	sr := e.syncVisit(res.VisitID)
	if sr.EmailKind != connector.EmailAccess {
		t.Fatalf("sync asks for email %q, want %q", sr.EmailKind, connector.EmailAccess)
	}

	err := e.svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey)
	if err == nil {
		t.Fatal("send with the SMTP server down: got nil, want an error")
	}
	if k := latchkey.KindOf(err); k != latchkey.Unavailable {
		t.Errorf("send with the SMTP server down: got kind %v (%v), want Unavailable so the task is retried", k, err)
	}
	if got := e.timelineKinds(res.VisitID); got[connector.KindEmailFailed] != 1 || got[connector.KindEmailSent] != 0 {
		t.Errorf("timeline after the failed send: %v, want one %s and no %s", got, connector.KindEmailFailed, connector.KindEmailSent)
	}
	if v := e.visit(res.VisitID); v.EmailedWindow != "" {
		t.Errorf("emailed window after a failed send: %q, want none", v.EmailedWindow)
	}

	srv.Start()
	for i := range 3 { // the retry, then retries of a task that already succeeded
		if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey); err != nil {
			t.Fatalf("send %d with the server up: %v", i, err)
		}
		if n := len(srv.Messages()); n != 1 {
			t.Fatalf("after send %d: the server holds %d messages, want 1", i, n)
		}
	}
	if got := e.timelineKinds(res.VisitID); got[connector.KindEmailSent] != 1 {
		t.Errorf("timeline: %d %s entries, want 1", got[connector.KindEmailSent], connector.KindEmailSent)
	}
	m := parseMIME(t, srv.Messages()[0])
	to, err := m.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != dlGuest {
		t.Errorf("delivered email: To %q (%v), want %s", m.header.Get("To"), err, dlGuest)
	}
	if !strings.Contains(m.text, e.svc.PassURL(e.visit(res.VisitID))) {
		t.Errorf("delivered email: text without the pass URL:\n%s", m.text)
	}
}

// TestEmailRetriedByWorker runs the outage through the real queue: the
// worker's email task fails while SMTP is down, asynq retries it, and the
// guest gets exactly one email once the server is back.
func TestEmailRetriedByWorker(t *testing.T) {
	srv := newDLSMTP(t)
	e := newDLEnv(t, dlOptions{smtpURL: srv.URL()})
	rdb, err := jobs.OpenRedis(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	q := jobs.NewClient(rdb)
	w := jobs.NewWorker(testenv.Logger(t), rdb, e.svc, q, jobs.WorkerOptions{PollInterval: 50 * time.Millisecond, ShutdownTimeout: 2 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Shutdown)

	res := e.ingest(dlSignIn(t, time.Now()))
	if err := q.EnqueueVisitSync(e.ctx, res.VisitID, res.Version); err != nil {
		t.Fatalf("enqueue sync: %v", err)
	}
	dlWait(t, 10*time.Second, "the first send to fail", func() bool {
		return e.timelineKinds(res.VisitID)[connector.KindEmailFailed] > 0
	})
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("server holds %d messages while it was down", n)
	}

	srv.Start()
	// asynq retries after 0.5–1 s, then 1–2 s, 2–4 s…
	dlWait(t, 15*time.Second, "the retried email", func() bool { return len(srv.Messages()) > 0 })
	dlWait(t, 5*time.Second, "the email_sent timeline entry", func() bool {
		return e.timelineKinds(res.VisitID)[connector.KindEmailSent] == 1
	})
	v := e.visit(res.VisitID)
	if v.Status != connector.StatusActive {
		t.Errorf("visit status %s, want active (a delayed email does not fail the visit)", v.Status)
	}

	// A duplicate of the task (same id) and a direct retry send nothing.
	if err := q.EnqueueEmail(e.ctx, res.VisitID, connector.EmailAccess, v.EmailedWindow); err != nil {
		t.Fatalf("enqueue duplicate email: %v", err)
	}
	if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, connector.EmailAccess, v.EmailedWindow); err != nil {
		t.Fatalf("direct retry: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("server holds %d messages, want exactly 1", n)
	}
	if got := e.timelineKinds(res.VisitID)[connector.KindEmailSent]; got != 1 {
		t.Errorf("%d %s entries, want 1", got, connector.KindEmailSent)
	}
}

// TestEmailsOwed: the database, not the queue, knows which guest emails are
// owed. A synced visit whose email was not sent is listed (and is not an
// unsynced visit); a stale task does not settle the current email; a sent
// email is owed no more.
func TestEmailsOwed(t *testing.T) {
	srv := newDLSMTP(t)
	srv.Start()
	e := newDLEnv(t, dlOptions{smtpURL: srv.URL()})
	res := e.ingest(dlSignIn(t, time.Now()))
	sr := e.syncVisit(res.VisitID)
	cutoff := time.Now().Add(time.Second)

	owed, err := e.svc.EmailsOwed(e.ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	want := []connector.EmailDue{{VisitID: res.VisitID, Kind: connector.EmailAccess, Key: sr.WindowKey}}
	if !slices.Equal(owed, want) {
		t.Fatalf("emails owed after the sync = %+v, want %+v", owed, want)
	}
	if refs, err := e.svc.VisitsUnsynced(e.ctx, cutoff); err != nil || len(refs) != 0 {
		t.Errorf("unsynced visits = %+v (%v), want none: the visit is synced, only its email is owed", refs, err)
	}
	if got, _ := e.svc.EmailsOwed(e.ctx, time.Now().Add(-time.Minute)); len(got) != 0 {
		t.Errorf("emails owed for changes before a minute ago = %+v, want none", got)
	}

	if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, connector.EmailAccess, "an-older-window"); err != nil {
		t.Fatalf("stale send: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("a stale email task sent %d messages", n)
	}
	if owed, _ := e.svc.EmailsOwed(e.ctx, cutoff); !slices.Equal(owed, want) {
		t.Fatalf("emails owed after a stale task = %+v, want still %+v", owed, want)
	}

	if err := e.svc.SendVisitEmail(e.ctx, res.VisitID, owed[0].Kind, owed[0].Key); err != nil {
		t.Fatalf("send: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("the server holds %d messages, want 1", n)
	}
	if owed, err := e.svc.EmailsOwed(e.ctx, cutoff); err != nil || len(owed) != 0 {
		t.Errorf("emails owed after the send = %+v (%v), want none", owed, err)
	}
}

// TestConcurrentChangesToOneVisitAreAllKept: webhooks and front-desk actions
// that change the same visit at once are applied one after the other, never
// one over the other (a lost update would drop a sign-out or an extension).
// It bites on PostgreSQL (TEST_DATABASE_URL, as CI runs it); SQLite runs
// one write transaction at a time.
func TestConcurrentChangesToOneVisitAreAllKept(t *testing.T) {
	e := newDLEnv(t, dlOptions{})
	now := time.Now().Add(-2 * time.Minute)
	for i := range 15 {
		entry := fmt.Sprint(950000 + i)
		signIn, signOut := dlEntryEvents(t, entry, now)
		id := e.ingest(signIn).VisitID

		var wg sync.WaitGroup
		errs := make([]error, 3)
		wg.Go(func() { _, errs[0] = e.svc.Extend(e.ctx, id, 15) })
		wg.Go(func() { _, errs[1] = e.svc.Extend(e.ctx, id, 15) })
		wg.Go(func() { _, errs[2] = e.tryIngest(signOut) })
		wg.Wait()
		if errs[2] != nil {
			t.Fatalf("visit %d: sign-out: %v", id, errs[2])
		}
		extended := 0
		for _, err := range errs[:2] {
			switch {
			case err == nil:
				extended += 15
			case latchkey.KindOf(err) != latchkey.Conflict: // extending after the sign-out is refused
				t.Fatalf("visit %d: extend: %v", id, err)
			}
		}
		v := e.visit(id)
		if v.Facts.SignedOutAt.IsZero() || v.Status != connector.StatusRevoked {
			t.Errorf("visit %d: status %s, signed out at %v: the sign-out was lost", id, v.Status, v.Facts.SignedOutAt)
		}
		if v.ExtendMinutes != extended {
			t.Errorf("visit %d: extended by %d minutes, want %d (from %d successful extensions)", id, v.ExtendMinutes, extended, extended/15)
		}
	}
}

// TestConcurrentFirstEventsMakeOneVisit: the first two events of a visit
// arriving at once (Envoy delivers in parallel) both succeed and make one
// visit holding both. Like the test above, it bites on PostgreSQL.
func TestConcurrentFirstEventsMakeOneVisit(t *testing.T) {
	e := newDLEnv(t, dlOptions{})
	now := time.Now().Add(-2 * time.Minute)
	for i := range 15 {
		signIn, signOut := dlEntryEvents(t, fmt.Sprint(960000+i), now)
		var wg sync.WaitGroup
		var in, out connector.IngestResult
		var inErr, outErr error
		wg.Go(func() { in, inErr = e.tryIngest(signIn) })
		wg.Go(func() { out, outErr = e.tryIngest(signOut) })
		wg.Wait()
		if inErr != nil || outErr != nil {
			t.Fatalf("entry %d: sign-in: %v; sign-out: %v; want both stored", i, inErr, outErr)
		}
		if in.VisitID != out.VisitID {
			t.Fatalf("entry %d: sign-in made visit %d, sign-out visit %d; want one visit", i, in.VisitID, out.VisitID)
		}
		if v := e.visit(in.VisitID); v.Status != connector.StatusRevoked {
			t.Errorf("visit %d: status %s, want revoked (signed out)", v.ID, v.Status)
		}
	}
}

// dlEntryEvents returns a sign-in and a sign-out of one walk-in entry, made
// from the captured sign-in: signed in at, out a minute later.
func dlEntryEvents(t *testing.T, entry string, at time.Time) (signIn, signOut []byte) {
	t.Helper()
	event := func(name string) []byte {
		return dlFixture(t, "envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
			meta := doc["meta"].(map[string]any)
			meta["event"] = name
			meta["job"].(map[string]any)["name"] = name
			meta["job"].(map[string]any)["id"] = name + "-" + entry
			p := doc["payload"].(map[string]any)
			p["id"] = entry
			attrs := p["attributes"].(map[string]any)
			attrs["signed-in-at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
			if name == "entry_sign_out" {
				attrs["signed-out-at"] = at.Add(time.Minute).UTC().Format("2006-01-02 15:04:05 UTC")
			}
		})
	}
	return event("entry_sign_in"), event("entry_sign_out")
}

// TestFailuresForGood: an email that fails for good is no longer owed and
// leaves the guest's access alone; a sync that fails for good marks the
// visit failed only while its version is still owed, and a later sync
// that succeeds sets the status again.
func TestFailuresForGood(t *testing.T) {
	e := newDLEnv(t, dlOptions{})
	res := e.ingest(dlSignIn(t, time.Now()))
	sr := e.syncVisit(res.VisitID)

	if err := e.svc.EmailFailed(e.ctx, res.VisitID, sr.WindowKey, "mailbox unavailable"); err != nil {
		t.Fatal(err)
	}
	v := e.visit(res.VisitID)
	if v.Status != connector.StatusActive {
		t.Errorf("status after a failed email: %s, want active", v.Status)
	}
	if owed, err := e.svc.EmailsOwed(e.ctx, time.Now().Add(time.Second)); err != nil || len(owed) != 0 {
		t.Errorf("emails owed after giving up on it = %+v (%v), want none", owed, err)
	}
	if n := e.timelineKinds(res.VisitID)[connector.KindEmailFailed]; n != 1 {
		t.Errorf("%d %s timeline entries, want 1", n, connector.KindEmailFailed)
	}

	// A stale sync task (its version already applied) fails for good.
	if err := e.svc.MarkFailed(e.ctx, res.VisitID, v.Version, "controller: too many requests"); err != nil {
		t.Fatal(err)
	}
	if got := e.visit(res.VisitID).Status; got != connector.StatusActive {
		t.Fatalf("status after a stale task failed: %s, want active", got)
	}

	ext, err := e.svc.Extend(e.ctx, res.VisitID, 30)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.MarkFailed(e.ctx, res.VisitID, ext.Version, "controller: refused"); err != nil {
		t.Fatal(err)
	}
	if got := e.visit(res.VisitID); got.Status != connector.StatusFailed || got.Reason != "controller: refused" {
		t.Fatalf("after the owed sync failed: status %s (%q), want failed", got.Status, got.Reason)
	}
	e.syncVisit(res.VisitID)
	if got := e.visit(res.VisitID).Status; got != connector.StatusActive {
		t.Errorf("after a later sync succeeded: status %s, want active", got)
	}
}
