package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/schema"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/jobs"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
	"github.com/latchkey/latchkey/webhooks"
)

// The pass and browser tests run the whole stack in-process: a fresh
// database, the bundled controller (seeded: place "HQ", doors "Front door",
// "Lobby", "Meeting room" and "Workshop", group 1 "Visitors" opening the
// first three), the connector, and the web server.

const (
	ptAdminKey    = "pass-test-admin-key-0123456789"
	ptEnvoySecret = "pass-test-envoy-secret"
	ptLocation    = "177837"
	ptFlow        = "359435"
	ptGroup       = int64(1)
	ptFrontDoor   = int64(1) // the seed's first lock
	ptWorkshop    = int64(4) // a door the "Visitors" group does not open
)

// ptClock is the settable clock for the connector and the controller.
type ptClock = stacktest.Clock

// ptLog collects log output, to check that no secret reaches a log line.
type ptLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *ptLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *ptLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// ptOptions changes how newPTStack builds the stack.
type ptOptions struct {
	// live serves the web server on a real port and runs the webhook
	// receiver and a jobs worker on Redis, as `latchkey serve` does; the
	// clock is then the wall clock.
	live bool
	// credential is the credential of the stack's mapping (default link).
	credential mappings.Credential
	// control, when set, wraps the controller client the service drives
	// (not live).
	control func(*kisi.Client) connector.AccessControl
}

// ptStack is one latchkey with its controller.
type ptStack struct {
	t      *testing.T
	ctx    context.Context
	db     *gorm.DB
	log    *ptLog
	logger *slog.Logger
	clock  *ptClock
	lc     *lockctl.Controller
	ctrl   *httptest.Server
	client *kisi.Client
	outbox *mail.Outbox
	store  *connector.Store
	svc    *connector.Service
	srv    *web.Server
	// url is the base URL of the web server when live, else a placeholder.
	url string
}

func newPTStack(t *testing.T, o ptOptions) *ptStack {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	if err := schema.Migrate(ctx, db, testenv.Postgres()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	logs := &ptLog{}
	var logw io.Writer = logs
	if os.Getenv("TEST_LOG") != "" {
		logw = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := stacktest.NewClock(time.Now().UTC())
	now := clk.Now
	if o.live {
		now = time.Now
	}
	outbox := sealedOutbox(t, db)
	sim := lockctl.NewSimDriver(nil)
	t.Cleanup(sim.Close)
	lc := lockctl.New(log, db, sim, outbox, lockctl.Options{AdminAPIKey: ptAdminKey, Now: now, SimUnlockDuration: time.Hour})
	if err := lc.Seed(ctx); err != nil {
		t.Fatalf("seed controller: %v", err)
	}
	ctrl := httptest.NewServer(lc.Handler())
	t.Cleanup(ctrl.Close)
	client, err := kisi.New(ctrl.URL, kisi.Options{APIKey: ptAdminKey, SupportsUpdate: true, RatePerSecond: math.Inf(1), MaxRetries: -1})
	if err != nil {
		t.Fatalf("kisi client: %v", err)
	}
	maps := mappings.NewStore(db)
	if _, err := maps.Create(ctx, mappings.Mapping{LocationID: ptLocation, FlowID: ptFlow, GroupIDs: []int64{ptGroup},
		DurationMinutes: 240, AdvanceMinutes: 30, RevokeOnSignOut: true, Delivery: mappings.DeliveryLatchkey, Credential: o.credential}); err != nil {
		t.Fatalf("create mapping: %v", err)
	}
	box, err := secretbox.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatalf("secretbox: %v", err)
	}
	s := &ptStack{t: t, ctx: ctx, db: db, log: logs, logger: log, clock: clk, lc: lc, ctrl: ctrl, client: client, outbox: outbox,
		store: connector.NewStore(db), url: "http://latchkey.test"}

	var ts *httptest.Server
	if o.live {
		// The pass links in emails need the server's URL before the
		// service is built, so listen first and serve later.
		ts = httptest.NewUnstartedServer(nil)
		s.url = "http://" + ts.Listener.Addr().String()
	}
	s.srv = web.New(log, nil, web.Options{})
	if !o.live {
		var ac connector.AccessControl = client
		if o.control != nil {
			ac = o.control(client)
		}
		s.svc = connector.NewService(log, s.store, ac, outbox, box, connector.Options{PublicURL: s.url, Now: now,
			Dialer: kisi.Dialer{URL: ctrl.URL, Options: kisi.Options{SupportsUpdate: true, RatePerSecond: math.Inf(1), MaxRetries: -1}}})
		web.NewAPI(log, s.svc, maps, client, outbox, ptAdminKey).Register(s.srv)
		return s
	}
	rdb, err := jobs.OpenRedis(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("open redis: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	q := jobs.NewClient(rdb)
	s.svc = connector.NewService(log, s.store, client, outbox, box, connector.Options{PublicURL: s.url, Now: now, Queue: q})
	webhooks.NewHandler(log, s.svc, []string{ptEnvoySecret}, prometheus.NewRegistry()).Register(s.srv.Group("/webhooks"))
	web.NewAPI(log, s.svc, maps, client, outbox, ptAdminKey).Register(s.srv)
	w := jobs.NewWorker(log, rdb, s.svc, q, jobs.WorkerOptions{PollInterval: 50 * time.Millisecond, ShutdownTimeout: 2 * time.Second})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Shutdown)
	ts.Config.Handler = s.srv
	ts.Start()
	t.Cleanup(ts.Close)
	return s
}

// ptGuest is one visitor of the tests.
type ptGuest struct {
	ID, Name, Email string
}

// linkName is what the controller's audit log calls the guest.
func (g ptGuest) linkName() string { return g.Name + " (Visitor)" }

// ptFixture returns an Envoy fixture with changes applied to its document.
func ptFixture(t *testing.T, name string, change func(doc map[string]any)) []byte {
	t.Helper()
	return fixtures.EditEnvoy(name, change)
}

// ptSignInBody is the captured sign-in of g, signed in at.
func ptSignInBody(t *testing.T, g ptGuest, at time.Time) []byte {
	t.Helper()
	return ptFixture(t, "envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		doc["meta"].(map[string]any)["job"].(map[string]any)["id"] = "sign-in-" + g.ID
		p := doc["payload"].(map[string]any)
		p["id"] = g.ID
		a := p["attributes"].(map[string]any)
		a["full-name"], a["email"] = g.Name, g.Email
		a["signed-in-at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
	})
}

// ptSignOutBody is the captured sign-out of g, signed in at in and out at
// out.
func ptSignOutBody(t *testing.T, g ptGuest, in, out time.Time) []byte {
	t.Helper()
	return ptFixture(t, "envoy-plugin-event-entry_sign_out.json", func(doc map[string]any) {
		doc["meta"].(map[string]any)["job"].(map[string]any)["id"] = "sign-out-" + g.ID
		p := doc["payload"].(map[string]any)
		p["id"] = g.ID
		delete(p["relationships"].(map[string]any), "invite")
		a := p["attributes"].(map[string]any)
		a["full-name"], a["email"] = g.Name, g.Email
		a["signed-in-at"] = in.UTC().Format("2006-01-02 15:04:05 UTC")
		a["signed-out-at"] = out.UTC().Format("2006-01-02 15:04:05 UTC")
	})
}

// ptInviteBody is the captured invite of g, expected at arrival.
func ptInviteBody(t *testing.T, g ptGuest, arrival time.Time) []byte {
	t.Helper()
	return ptFixture(t, "envoy-plugin-event-invite_created.json", func(doc map[string]any) {
		doc["meta"].(map[string]any)["job"].(map[string]any)["id"] = "invite-" + g.ID
		p := doc["payload"].(map[string]any)
		p["id"] = g.ID
		a := p["attributes"].(map[string]any)
		a["full-name"], a["email"] = g.Name, g.Email
		a["expected-arrival-time"] = arrival.UTC().Format(time.RFC3339)
	})
}

// apply ingests a webhook body, syncs its visit and sends the email it asks
// for, as the receiver and the worker would; it returns the visit and its
// pass token.
func (s *ptStack) apply(body []byte) (connector.Visit, string) {
	s.t.Helper()
	in, err := parseDelivery(body)
	if err != nil {
		s.t.Fatalf("parse delivery: %v", err)
	}
	res, err := s.svc.Ingest(s.ctx, in)
	if err != nil {
		s.t.Fatalf("ingest %s: %v", in.EventName, err)
	}
	return s.resync(res.VisitID)
}

// parseDelivery parses a webhook body into what the receiver hands Ingest.
func parseDelivery(body []byte) (connector.Inbound, error) {
	d, err := webhooks.Parse(body)
	if err != nil {
		return connector.Inbound{}, err
	}
	return connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event}, nil
}

// resync syncs visit id and sends the email it asks for.
func (s *ptStack) resync(id int64) (connector.Visit, string) {
	s.t.Helper()
	sr, err := s.svc.SyncVisit(s.ctx, id)
	if err != nil {
		s.t.Fatalf("sync visit %d: %v", id, err)
	}
	if sr.EmailKind != "" {
		if err := s.svc.SendVisitEmail(s.ctx, id, sr.EmailKind, sr.WindowKey); err != nil {
			s.t.Fatalf("send email of visit %d: %v", id, err)
		}
	}
	v, err := s.store.Visit(s.ctx, id)
	if err != nil {
		s.t.Fatalf("get visit %d: %v", id, err)
	}
	return v, s.svc.PassToken(v)
}

// controller makes an admin request to the controller and fails unless it
// answers 2xx; it returns the body.
func (s *ptStack) controller(method, path, body string) []byte {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.ctx, method, s.ctrl.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "KISI-LOGIN "+ptAdminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.ctrl.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read %s %s: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s %s: got status %d (%s), want 2xx", method, path, resp.StatusCode, out)
	}
	return out
}

// ptEvent is the part of a controller audit event the tests read.
type ptEvent struct {
	Type      string  `json:"type"`
	ActorType *string `json:"actor_type"`
	ActorName *string `json:"actor_name"`
	ObjectID  *int64  `json:"object_id"`
	Success   bool    `json:"success"`
	Code      *string `json:"code"`
}

// unlockEvents returns the controller's lock.unlock events, newest first.
func (s *ptStack) unlockEvents() []ptEvent {
	s.t.Helper()
	var evs []ptEvent
	if err := json.Unmarshal(s.controller(http.MethodGet, "/events?type=lock.unlock&limit=100", ""), &evs); err != nil {
		s.t.Fatalf("decode events: %v", err)
	}
	return evs
}

// mailsTo returns the captured emails to addr, oldest first.
func (s *ptStack) mailsTo(addr string) []mail.StoredMessage {
	s.t.Helper()
	ms, _, err := s.outbox.List(s.ctx, mail.OutboxFilter{To: addr, Limit: mail.MaxListLimit})
	if err != nil {
		s.t.Fatalf("list outbox: %v", err)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms
}

var ptPassURL = regexp.MustCompile(`https?://\S+/v/[A-Za-z0-9_-]{43}`)

// passURLIn returns the pass URL in an email's text.
func ptPassURLIn(t *testing.T, text string) string {
	t.Helper()
	u := ptPassURL.FindString(text)
	if u == "" {
		t.Fatalf("no pass URL in the email text:\n%s", text)
	}
	return u
}

// checkNoSecretsLogged fails when any of secrets appears in the logs.
func (s *ptStack) checkNoSecretsLogged(secrets ...string) {
	s.t.Helper()
	logs := s.log.String()
	if logs == "" {
		s.t.Fatal("no log output captured: the check would prove nothing")
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logs, sec) {
			s.t.Errorf("a secret (%s…) appears in the logs", sec[:4])
		}
	}
}
