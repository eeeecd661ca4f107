package connector_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/mail"
)

// crashOnEmailDue makes every write that records a guest email as owed fail,
// as if the process died just before it: what was committed before it
// stays, what would have been committed with it does not.
func crashOnEmailDue(t *testing.T, db *gorm.DB) (stop func()) {
	t.Helper()
	on := true
	name := "test:crash-on-email-due"
	err := db.Callback().Update().Before("gorm:update").Register(name, func(tx *gorm.DB) {
		if !on || tx.Statement.Table != "visits" {
			return
		}
		if m, ok := tx.Statement.Dest.(map[string]any); ok {
			if _, ok := m["email_due_key"]; ok {
				_ = tx.AddError(errors.New("killed"))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() { on = false }
}

// A crash at the instant a sync records the email it owes must not leave
// a guest with working access and no email: either the sync did not count
// (the lost-sync sweep redoes it) or the email is owed (the owed-email
// sweep sends it).
func TestCrashBetweenSyncAndEmailOwedStrandsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.ingest(e.svc, walkIn(t, e.clock.Now()))
	stop := crashOnEmailDue(t, e.db)
	if _, err := e.svc.SyncVisit(e.ctx, res.VisitID); err == nil {
		t.Logf("the sync reported no error despite the crash")
	}
	stop()

	far := e.clock.Now().Add(time.Hour)
	unsynced, err := e.svc.VisitsUnsynced(e.ctx, far)
	if err != nil {
		t.Fatal(err)
	}
	owed, err := e.svc.EmailsOwed(e.ctx, far)
	if err != nil {
		t.Fatal(err)
	}
	redo := slices.ContainsFunc(unsynced, func(r connector.VisitRef) bool { return r.ID == res.VisitID })
	mail := slices.ContainsFunc(owed, func(d connector.EmailDue) bool { return d.VisitID == res.VisitID })
	v := e.visit(res.VisitID)
	if !redo && !mail {
		t.Fatalf("after the crash visit %d is %s, synced %d/%d, and neither sweep would touch it: a guest with access and no email",
			v.ID, v.Status, v.SyncedVersion, v.Version)
	}
	// What the sweeps do next ends with exactly one email.
	if redo {
		e.sync(res.VisitID)
	}
	for _, d := range owed {
		if err := e.svc.SendVisitEmail(e.ctx, d.VisitID, d.Kind, d.Key); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.mails()); n != 1 {
		t.Errorf("%d emails after recovery, want 1", n)
	}
}

// recordingSender is a mailer that, like SMTP, cannot tell repeats apart:
// it counts what it is handed, and holds each send until release.
type recordingSender struct {
	mu      sync.Mutex
	keys    []string
	entered chan struct{}
	release chan struct{}
}

func (r *recordingSender) Send(ctx context.Context, m mail.Message) error {
	r.mu.Lock()
	r.keys = append(r.keys, m.Key)
	r.mu.Unlock()
	r.entered <- struct{}{}
	select {
	case <-r.release:
		return nil
	case <-time.After(3 * time.Second):
		return errors.New("held too long")
	}
}

func (r *recordingSender) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// Two workers sending one guest email at once (a task and its sweep-made
// twin) hand it to an SMTP-like mailer once; after a crash mid-send the
// claim runs out and the same message, same key, goes out again.
func TestEmailSentOnceByConcurrentSenders(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := &recordingSender{entered: make(chan struct{}, 4), release: make(chan struct{})}
	svc := e.serviceWith(e.client, rec,
		connector.Options{Now: e.clock.Now, EmailClaim: time.Minute})
	res := e.ingest(svc, walkIn(t, e.clock.Now()))
	sr, err := svc.SyncVisit(e.ctx, res.VisitID)
	if err != nil || sr.EmailKind == "" {
		t.Fatalf("sync: %+v, %v; want an email owed", sr, err)
	}
	first := make(chan error, 1)
	go func() { first <- svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey) }()
	<-rec.entered
	if err := svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey); !errors.Is(err, connector.ErrBusy) {
		t.Errorf("second sender while the first is sending: %v, want ErrBusy", err)
	}
	// The first sender stalls past its claim (as if it had died): the
	// email is sent again, under the same key.
	e.clock.Advance(61 * time.Second)
	second := make(chan error, 1)
	go func() { second <- svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey) }()
	<-rec.entered
	close(rec.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if err := svc.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey); err != nil {
		t.Fatal(err)
	}
	keys := rec.sent()
	if len(keys) != 2 || keys[0] != keys[1] {
		t.Errorf("mailer handed %v, want the same message twice (once, then once after the claim ran out)", keys)
	}
}

// A worker whose own clock is 30 s fast, going by the database's clock, does
// not end a window early: 10 s before its end the guest still has the link.
func TestSkewedWorkerKeepsTheWindowByTheDatabaseClock(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.clock.Set(time.Now().UTC())
	fast := func() time.Time { return time.Now().Add(30 * time.Second) }
	clock := database.NewClock(e.db, fast)
	if _, err := clock.Measure(e.ctx); err != nil {
		t.Fatal(err)
	}
	svc := e.serviceWith(e.client, nil,
		connector.Options{Now: clock.Now})
	// Signed in 4 h minus 10 s ago: the 4-hour window ends in 10 s.
	res := e.ingest(svc, walkIn(t, time.Now().Add(-4*time.Hour+10*time.Second)))
	if _, err := svc.SyncVisit(e.ctx, res.VisitID); err != nil {
		t.Fatal(err)
	}
	if v := e.visit(res.VisitID); v.Status != connector.StatusActive || len(e.liveLinks(res.VisitID)) != 1 {
		t.Errorf("10 s before the window's end the visit is %s with %d links, want active with 1", v.Status, len(e.liveLinks(res.VisitID)))
	}
}

// lostAnswerIdem is lockctl, which honours Idempotency-Key, with the answers
// to link creation lost: the link is made, the caller hears an error.
type lostAnswerIdem struct{ *kisi.Client }

func (c lostAnswerIdem) CreateLink(ctx context.Context, spec connector.LinkSpec) (connector.Link, error) {
	if _, err := c.Client.CreateLink(ctx, spec); err != nil {
		return connector.Link{}, err
	}
	return connector.Link{}, errors.New("read tcp: connection reset by peer")
}

// With a controller that honours Idempotency-Key, a creation cut off half
// way (a lost answer, a worker killed mid-request) is sent again at once
// under its key: the guest gets the link it made, working, without the
// wait for a cut-off creation to settle, and no second link.
func TestCutOffCreationIsSentAgainUnderItsKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	idem := e.idempotentClient()
	svc := e.service(idem)
	id := e.ingest(svc, walkIn(t, e.clock.Now())).VisitID
	if _, err := e.service(lostAnswerIdem{idem}).SyncVisit(e.ctx, id); err == nil {
		t.Fatal("sync whose creation answer was lost: got nil, want an error")
	}
	made := e.controllerLinks()
	if len(made) != 1 {
		t.Fatalf("controller holds %d links after the lost answer, want 1", len(made))
	}
	// No time passes: nothing waits for the creation to settle.
	sr, err := svc.SyncVisit(e.ctx, id)
	if err != nil {
		t.Fatalf("sync right after the lost answer: %v, want it done at once", err)
	}
	got := e.controllerLinks()
	if len(got) != 1 || got[0].ID != made[0].ID || e.onlyLink(id).LinkID != made[0].ID {
		t.Fatalf("controller links %+v, visit's link %d; want the one link made first, recorded", got, e.onlyLink(id).LinkID)
	}
	if sr.EmailKind == "" {
		t.Fatal("no email owed after the sync")
	}
	if err := svc.SendVisitEmail(e.ctx, id, sr.EmailKind, sr.WindowKey); err != nil {
		t.Fatal(err)
	}
	if doors := e.doors(svc.PassToken(e.visit(id))); len(doors) == 0 {
		t.Errorf("the pass lists no doors")
	}
	v := e.visit(id)
	if err := svc.PassUnlock(e.ctx, svc.PassToken(v), e.doors(svc.PassToken(v))[0]); err != nil {
		t.Errorf("unlock through the pass: %v", err)
	}
}

// gatedLocks is the controller whose GroupDoors (which an email's
// rendering calls) waits for gate: a sender held between reading the visit
// and claiming its email.
type gatedLocks struct {
	connector.AccessControl
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedLocks) GroupDoors(ctx context.Context) (map[int64][]connector.Lock, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.AccessControl.GroupDoors(ctx)
}

// A sender that read the visit before another's send was recorded, and
// claims the email only after that one finished, does not send it again.
func TestEmailNotSentAgainByASenderThatReadBeforeTheFirstWasRecorded(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := &recordingSender{entered: make(chan struct{}, 4), release: make(chan struct{})}
	opts := connector.Options{Now: e.clock.Now, EmailClaim: time.Minute}
	first := e.serviceWith(e.client, rec, opts)
	gated := gatedLocks{AccessControl: e.client, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	late := e.serviceWith(gated, rec, opts)
	res := e.ingest(first, walkIn(t, e.clock.Now()))
	sr, err := first.SyncVisit(e.ctx, res.VisitID)
	if err != nil || sr.EmailKind == "" {
		t.Fatalf("sync: %+v, %v; want an email owed", sr, err)
	}
	lateDone := make(chan error, 1)
	go func() { lateDone <- late.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey) }()
	<-gated.entered // the late sender has read the visit: nothing sent yet
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.SendVisitEmail(e.ctx, res.VisitID, sr.EmailKind, sr.WindowKey) }()
	<-rec.entered
	close(rec.release)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	close(gated.gate) // now the late sender goes on to claim and send
	if err := <-lateDone; err != nil && !errors.Is(err, connector.ErrBusy) {
		t.Fatal(err)
	}
	if keys := rec.sent(); len(keys) != 1 {
		t.Errorf("mailer handed %d messages, want 1", len(keys))
	}
}

// stalledCreate is lockctl whose link creations stall before they are
// sent: the caller gives up not knowing whether a link was made; the
// request itself is kept, to be delivered late.
type stalledCreate struct {
	*kisi.Client
	held *connector.LinkSpec
}

func (c *stalledCreate) CreateLink(_ context.Context, spec connector.LinkSpec) (connector.Link, error) {
	c.held = &spec
	return connector.Link{}, latchkey.Wrap(latchkey.Unavailable, "controller unreachable", context.DeadlineExceeded)
}

// A creation cut off before it arrived, then the visitor signs out: the
// sign-out's sync settles the creation at once (no wait), and when the
// stalled request finally arrives it makes nothing: no door opens again.
func TestLateCreateAfterSignOutOpensNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	idem := e.idempotentClient()
	svc := e.service(idem)
	id := e.ingest(svc, walkIn(t, start)).VisitID
	stalled := &stalledCreate{Client: idem}
	if _, err := e.service(stalled).SyncVisit(e.ctx, id); err == nil || stalled.held == nil {
		t.Fatalf("stalled sync: %v, request held %v; want an error and a held request", err, stalled.held != nil)
	}
	e.ingest(svc, signOut(t, start, start.Add(time.Minute)))
	if _, err := svc.SyncVisit(e.ctx, id); err != nil {
		t.Fatalf("sign-out sync right after the stalled creation: %v, want it done at once", err)
	}
	// The stalled request arrives now.
	if _, err := idem.CreateLink(e.ctx, *stalled.held); !errors.Is(err, connector.ErrCreationGone) {
		t.Errorf("late create after the sign-out: %v, want ErrCreationGone", err)
	}
	if links := e.controllerLinks(); len(links) != 0 {
		t.Errorf("controller holds %d links after the sign-out, want none", len(links))
	}
	e.checkNoAccess(id, connector.StatusRevoked)
}

// idempotentClient is a client of the env's lockctl that sends creations
// under an Idempotency-Key, as serve's does.
func (e *env) idempotentClient() *kisi.Client {
	e.t.Helper()
	c, err := kisi.New(e.srv.URL, kisi.Options{APIKey: adminKey, SupportsUpdate: true, IdempotentCreates: true,
		RatePerSecond: math.Inf(1), MaxRetries: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// A sent email, through an SMTP-like mailer that needs a claim, records
// the window it mailed, drops the claim and says so on the timeline; a
// resend drops its claim and leaves the window as it was.
func TestSentEmailRecordsItsWindowAndDropsItsClaim(t *testing.T) {
	e := newEnv(t, envOptions{})
	rec := &recordingSender{entered: make(chan struct{}, 4), release: make(chan struct{})}
	close(rec.release)
	svc := e.serviceWith(e.client, rec, connector.Options{Now: e.clock.Now, EmailClaim: time.Minute})
	res := e.ingest(svc, walkIn(t, e.clock.Now()))
	sr, err := svc.SyncVisit(e.ctx, res.VisitID)
	if err != nil || sr.EmailKind == "" {
		t.Fatalf("sync: %+v, %v; want an email owed", sr, err)
	}
	state := func() (window, claim string, claimUntil *time.Time) {
		var row struct {
			EmailedWindow     string
			EmailSending      string
			EmailSendingUntil *time.Time
		}
		if err := e.db.Raw("SELECT emailed_window, email_sending, email_sending_until FROM visits WHERE id = ?", res.VisitID).Scan(&row).Error; err != nil {
			t.Fatal(err)
		}
		return row.EmailedWindow, row.EmailSending, row.EmailSendingUntil
	}
	sentLines := func() int {
		n := 0
		for _, en := range e.timeline(res.VisitID) {
			if en.Kind == connector.KindEmailSent {
				n++
			}
		}
		return n
	}
	for i, kind := range []string{sr.EmailKind, connector.EmailResend} {
		if err := svc.SendVisitEmail(e.ctx, res.VisitID, kind, sr.WindowKey); err != nil {
			t.Fatalf("%s email: %v", kind, err)
		}
		window, claim, until := state()
		if window != sr.WindowKey {
			t.Errorf("after the %s email: emailed window %q, want %q", kind, window, sr.WindowKey)
		}
		if claim != "" || until != nil {
			t.Errorf("after the %s email: claim %q until %v left behind", kind, claim, until)
		}
		if n := sentLines(); n != i+1 {
			t.Errorf("after the %s email: %d \"email sent\" timeline rows, want %d", kind, n, i+1)
		}
	}
	if keys := rec.sent(); len(keys) != 2 {
		t.Errorf("mailer handed %d messages, want 2 (the email and its resend)", len(keys))
	}
}
