package connector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/schema"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/webhooks"
)

const (
	adminKey   = "connector-test-admin-key-0123456789"
	publicURL  = "http://latchkey.test"
	locationID = "177837"
	flowID     = "359435"
	groupID    = int64(1) // "Visitors", the first group Seed creates
	guestEmail = "visitor@example.com"
	linkName   = "Jane Visitor (Visitor)"

	fixtureSignIn        = "envoy-plugin-event-entry_sign_in.json"
	fixtureSignInInvited = "envoy-plugin-event-entry_sign_in-invited.json"
	fixtureSignOut       = "envoy-plugin-event-entry_sign_out.json"
	fixtureInvite        = "envoy-plugin-event-invite_created.json"

	signInEntryID = "141649852" // payload id of fixtureSignIn
	inviteID      = "43116507"  // payload id of fixtureInvite
)

// start is the test clock's initial time, a Monday morning.
var start = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

// clock is the settable clock shared by the service and the controller.
type clock = stacktest.Clock

// envOptions changes how newEnv builds the environment.
type envOptions struct {
	// realKisi makes the client behave as against real Kisi: no PATCH of
	// links, so a changed window deletes and recreates the link.
	realKisi bool
	// mapping changes the default mapping before it is stored.
	mapping func(*mappings.Mapping)
	// controller changes the bundled controller's options.
	controller func(*lockctl.Options)
	// sender, when set, is the guest mailer instead of the outbox.
	sender mail.Sender
	// wallClock makes the service use the wall clock, not e.clock.
	wallClock bool
	// publicURL replaces publicURL.
	publicURL string
	// idempotentCreates has the client send an Idempotency-Key with each
	// create, as serve does for the bundled controller.
	idempotentCreates bool
}

// env is one connector service wired to a bundled controller served over
// HTTP, on a fresh database, with the outbox as its mailer.
type env struct {
	t       testing.TB
	ctx     context.Context
	db      *gorm.DB
	clock   *clock
	lc      *lockctl.Controller
	srv     *httptest.Server
	client  *kisi.Client
	outbox  *mail.Outbox
	mapping mappings.Mapping
	store   *connector.Store
	box     *secretbox.Box
	svc     *connector.Service
	queue   *queue
	// sender, now and publicURL are what serviceWith gives a Service.
	sender    mail.Sender
	now       func() time.Time
	publicURL string
}

// queue records what the service queues; it runs nothing.
type queue struct {
	mu     sync.Mutex
	syncs  []connector.VisitRef
	emails []string // window keys
}

func (q *queue) EnqueueVisitSync(_ context.Context, id, version int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.syncs = append(q.syncs, connector.VisitRef{ID: id, Version: version})
	return nil
}

func (q *queue) EnqueueEmail(_ context.Context, _ int64, _, key string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.emails = append(q.emails, key)
	return nil
}

func (q *queue) EnqueueMappingChanged(context.Context, string, string) error { return nil }
func (q *queue) EnqueueEnvoyReport(context.Context, int64) error             { return nil }

// lastEmail returns the window key of the email queued last.
func (q *queue) lastEmail(t testing.TB) string {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.emails) == 0 {
		t.Fatal("no email was queued")
	}
	return q.emails[len(q.emails)-1]
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	if err := schema.Migrate(ctx, db, testenv.Postgres()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	clk := stacktest.NewClock(start)
	log := testenv.Logger(t)
	outbox := mail.NewOutbox(db)

	sim := lockctl.NewSimDriver(nil)
	t.Cleanup(sim.Close)
	// Doors stay open for an hour, so no relay timer fires during a test.
	lo := lockctl.Options{AdminAPIKey: adminKey, Now: clk.Now, SimUnlockDuration: time.Hour, SecretKey: bytes.Repeat([]byte{5}, 32)}
	if o.wallClock {
		lo.Now = time.Now
	}
	if o.controller != nil {
		o.controller(&lo)
	}
	lc := lockctl.New(log, db, sim, outbox, lo)
	if err := lc.Seed(ctx); err != nil {
		t.Fatalf("seed controller: %v", err)
	}
	srv := httptest.NewServer(lc.Handler())
	t.Cleanup(srv.Close)
	client := newClient(t, srv.URL, !o.realKisi)
	if o.idempotentCreates {
		c, err := kisi.New(srv.URL, kisi.Options{APIKey: adminKey, SupportsUpdate: !o.realKisi, IdempotentCreates: true,
			RatePerSecond: math.Inf(1), MaxRetries: -1})
		if err != nil {
			t.Fatalf("kisi client: %v", err)
		}
		client = c
	}

	m := mappings.Mapping{LocationID: locationID, FlowID: flowID, GroupIDs: []int64{groupID},
		DurationMinutes: 240, AdvanceMinutes: 30, RevokeOnSignOut: true, Delivery: mappings.DeliveryLatchkey}
	if o.mapping != nil {
		o.mapping(&m)
	}
	maps := mappings.NewStore(db)
	m, err := maps.Create(ctx, m)
	if err != nil {
		t.Fatalf("create mapping: %v", err)
	}
	box, err := secretbox.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatalf("secretbox: %v", err)
	}
	store := connector.NewStore(db)
	e := &env{t: t, ctx: ctx, db: db, clock: clk, lc: lc, srv: srv, client: client, outbox: outbox,
		mapping: m, store: store, box: box, queue: &queue{}, sender: outbox, now: clk.Now, publicURL: publicURL}
	if o.sender != nil {
		e.sender = o.sender
	}
	if o.wallClock {
		e.now = time.Now
	}
	if o.publicURL != "" {
		e.publicURL = o.publicURL
	}
	e.svc = e.service(client)
	return e
}

// newClient returns a Kisi client for the controller at baseURL, without a
// rate limit and without retries, so a failing controller fails at once.
func newClient(t testing.TB, baseURL string, supportsUpdate bool) *kisi.Client {
	t.Helper()
	c, err := kisi.New(baseURL, kisi.Options{APIKey: adminKey, SupportsUpdate: supportsUpdate,
		RatePerSecond: math.Inf(1), MaxRetries: -1})
	if err != nil {
		t.Fatalf("kisi client: %v", err)
	}
	return c
}

// service returns a Service on e's store and mappings that drives ac.
func (e *env) service(ac connector.AccessControl) *connector.Service {
	// Rows written moments before a drift repair are looked into: nothing
	// here races the repair.
	return e.serviceWith(ac, nil, connector.Options{DriftMargin: time.Nanosecond, Queue: e.queue})
}

// serviceWith returns a Service on e's store that drives ac and mails
// through sender (nil: e's sender), with opts; an unset PublicURL or Now
// is e's. Every test's Service is made here.
func (e *env) serviceWith(ac connector.AccessControl, sender mail.Sender, opts connector.Options) *connector.Service {
	if sender == nil {
		sender = e.sender
	}
	if opts.PublicURL == "" {
		opts.PublicURL = e.publicURL
	}
	if opts.Now == nil {
		opts.Now = e.now
	}
	return connector.NewService(testenv.Logger(e.t), e.store, ac, sender, e.box, opts)
}

// downService returns a Service whose controller cannot be reached.
func (e *env) downService() *connector.Service {
	e.t.Helper()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	return e.service(newClient(e.t, dead.URL, true))
}

// inbound parses body as the webhook receiver does.
func inbound(body []byte) (connector.Inbound, error) {
	d, err := webhooks.Parse(body)
	if err != nil {
		return connector.Inbound{}, err
	}
	return connector.Inbound{DedupeKey: d.DedupeKey, EventName: d.Kind, JobID: d.JobID, Known: d.Known, Event: d.Event}, nil
}

// ingest parses body as the webhook receiver does and ingests it.
func (e *env) ingest(svc *connector.Service, body []byte) connector.IngestResult {
	e.t.Helper()
	in, err := inbound(body)
	if err != nil {
		e.t.Fatalf("parse delivery: %v", err)
	}
	res, err := svc.Ingest(e.ctx, in)
	if err != nil {
		e.t.Fatalf("ingest %s: %v", in.EventName, err)
	}
	return res
}

// process handles one delivery as the receiver and the worker would:
// parse, ingest, sync the visit, send the email the sync asks for. The
// visit is synced even for a duplicate delivery, as a retried task would.
func (e *env) process(body []byte) connector.IngestResult {
	e.t.Helper()
	res := e.ingest(e.svc, body)
	if res.VisitID != 0 {
		e.sync(res.VisitID)
	}
	return res
}

// sync syncs visit id and sends the email it asks for; it returns the
// sync result.
func (e *env) sync(id int64) connector.SyncResult {
	e.t.Helper()
	res, err := e.svc.SyncVisit(e.ctx, id)
	if err != nil {
		e.t.Fatalf("sync visit %d: %v", id, err)
	}
	if res.EmailKind != "" {
		if err := e.svc.SendVisitEmail(e.ctx, id, res.EmailKind, res.WindowKey); err != nil {
			e.t.Fatalf("send %s email of visit %d: %v", res.EmailKind, id, err)
		}
	}
	return res
}

func (e *env) visit(id int64) connector.Visit {
	e.t.Helper()
	v, err := e.store.Visit(e.ctx, id)
	if err != nil {
		e.t.Fatalf("get visit %d: %v", id, err)
	}
	return v
}

// liveLinks returns the visit's stored links that are not removed.
func (e *env) liveLinks(id int64) []connector.VisitLink {
	e.t.Helper()
	ls, err := e.store.Links(e.ctx, id)
	if err != nil {
		e.t.Fatalf("links of visit %d: %v", id, err)
	}
	var out []connector.VisitLink
	for _, l := range ls {
		if !l.Removed && l.LinkID != 0 {
			out = append(out, l)
		}
	}
	return out
}

// onlyLink returns the single live link of visit id.
func (e *env) onlyLink(id int64) connector.VisitLink {
	e.t.Helper()
	ls := e.liveLinks(id)
	if len(ls) != 1 {
		e.t.Fatalf("visit %d has %d live links, want 1: %+v", id, len(ls), ls)
	}
	return ls[0]
}

func (e *env) timeline(id int64) []connector.TimelineEntry {
	e.t.Helper()
	tl, err := e.store.Timeline(e.ctx, id)
	if err != nil {
		e.t.Fatalf("timeline of visit %d: %v", id, err)
	}
	return tl
}

// ctlLink is the part of a controller link the tests compare.
type ctlLink struct {
	ID         int64
	GroupID    int64
	Name       string
	ValidFrom  time.Time
	ValidUntil time.Time
	Enabled    bool
}

// controllerLinks lists every link on the controller, by id.
func (e *env) controllerLinks() []ctlLink {
	e.t.Helper()
	ls, err := e.client.ListLinks(e.ctx)
	if err != nil {
		e.t.Fatalf("list controller links: %v", err)
	}
	out := make([]ctlLink, 0, len(ls))
	for _, l := range ls {
		c := ctlLink{ID: l.ID, GroupID: l.GroupID, Name: l.Name, Enabled: l.Enabled}
		if l.ValidFrom != nil {
			c.ValidFrom = l.ValidFrom.UTC()
		}
		if l.ValidUntil != nil {
			c.ValidUntil = l.ValidUntil.UTC()
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ctlEvent is the part of a controller audit event the tests read.
type ctlEvent struct {
	Type       string  `json:"type"`
	ActorType  *string `json:"actor_type"`
	ActorName  *string `json:"actor_name"`
	ObjectID   *int64  `json:"object_id"`
	ObjectName string  `json:"object_name"`
	Success    bool    `json:"success"`
	Code       *string `json:"code"`
}

// events returns the controller's events of the given types (all when
// none), oldest first, read from GET /events as an administrator.
func (e *env) events(types ...string) []ctlEvent {
	e.t.Helper()
	q := url.Values{"limit": {"250"}}
	if len(types) > 0 {
		q.Set("type", strings.Join(types, ","))
	}
	var evs []ctlEvent
	e.admin(http.MethodGet, "/events?"+q.Encode(), nil, http.StatusOK, &evs)
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// countEvents counts the controller's events of one type.
func (e *env) countEvents(typ string) int {
	e.t.Helper()
	return len(e.events(typ))
}

// admin makes an admin request to the controller and decodes the answer
// into out (when not nil), failing unless the status is want.
func (e *env) admin(method, path string, body any, want int, out any) {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			e.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "KISI-LOGIN "+adminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		e.t.Fatalf("read %s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: got status %d (%s), want %d", method, path, resp.StatusCode, buf.String(), want)
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			e.t.Fatalf("decode %s %s: %v (%s)", method, path, err, buf.String())
		}
	}
}

// mails returns the captured emails, oldest first.
func (e *env) mails() []mail.StoredMessage {
	e.t.Helper()
	ms, _, err := e.outbox.List(e.ctx, mail.OutboxFilter{Limit: mail.MaxListLimit})
	if err != nil {
		e.t.Fatalf("list outbox: %v", err)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	return ms
}

// subjects returns the subjects of the captured emails, oldest first.
func (e *env) subjects() []string {
	e.t.Helper()
	var out []string
	for _, m := range e.mails() {
		out = append(out, plainSubject(m.Subject))
	}
	return out
}

// placeAndDate is the place and date an English subject names.
var placeAndDate = regexp.MustCompile(` for .+ on \S+ \d{1,2} \S+ \d{4}`)

// plainSubject is subject without its place and date, so tests whose
// dates vary compare the kind of email alone (TestEmailContent checks
// the whole subject).
func plainSubject(subject string) string { return placeAndDate.ReplaceAllString(subject, "") }

// doors returns the lock ids the visit's pass opens, as its pass page
// lists them.
func (e *env) doors(token string) []int64 {
	e.t.Helper()
	p, err := e.svc.PassView(e.ctx, token)
	if err != nil {
		e.t.Fatalf("pass view: %v", err)
	}
	var ids []int64
	for _, d := range p.Doors {
		ids = append(ids, d.LockID)
	}
	return ids
}

// fixture returns an Envoy fixture body changed by mods.
func fixture(t testing.TB, name string, mods ...mod) []byte {
	t.Helper()
	return fixtures.EditEnvoy(name, func(doc map[string]any) {
		for _, m := range mods {
			m(t, doc)
		}
	})
}

// mod changes a decoded fixture.
type mod func(t testing.TB, doc map[string]any)

// obj returns doc's object at path, failing when it is not one.
func obj(t testing.TB, doc map[string]any, path ...string) map[string]any {
	t.Helper()
	cur := doc
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			t.Fatalf("fixture has no object at %s", strings.Join(path, "."))
		}
		cur = next
	}
	return cur
}

// eventName sets meta.event (and the job's name).
func eventName(name string) mod {
	return func(t testing.TB, doc map[string]any) {
		obj(t, doc, "meta")["event"] = name
		obj(t, doc, "meta", "job")["name"] = name
	}
}

// jobID sets meta.job.id, which is the delivery's dedupe key.
func jobID(id string) mod {
	return func(t testing.TB, doc map[string]any) { obj(t, doc, "meta", "job")["id"] = id }
}

// payloadID sets the entry or invite id.
func payloadID(id string) mod {
	return func(t testing.TB, doc map[string]any) { obj(t, doc, "payload")["id"] = id }
}

// attr sets payload.attributes[key].
func attr(key string, v any) mod {
	return func(t testing.TB, doc map[string]any) { obj(t, doc, "payload", "attributes")[key] = v }
}

// entryTime sets an entry timestamp in Envoy's entry form.
func entryTime(key string, at time.Time) mod {
	return attr(key, at.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// arrival sets an invite's expected arrival in Envoy's invite form.
func arrival(at time.Time) mod {
	return attr("expected-arrival-time", at.UTC().Format(time.RFC3339))
}

// invitedBy makes an entry come from invite id.
func invitedBy(id string) mod {
	return func(t testing.TB, doc map[string]any) {
		obj(t, doc, "payload", "relationships")["invite"] = map[string]any{"data": map[string]any{"type": "invites", "id": id}}
	}
}

// flow sets the payload's flow id.
func flow(id string) mod {
	return func(t testing.TB, doc map[string]any) {
		obj(t, doc, "payload", "relationships", "flow", "data")["id"] = id
		if a := obj(t, doc, "payload", "attributes"); a["flow-id"] != nil {
			a["flow-id"] = json.Number(id)
		}
	}
}

// walkIn is the sign-in fixture signed in at at.
func walkIn(t testing.TB, at time.Time, mods ...mod) []byte {
	t.Helper()
	return fixture(t, fixtureSignIn, append([]mod{entryTime("signed-in-at", at)}, mods...)...)
}

// signOut is the sign-out fixture for the walk-in entry, signed in at in
// and out at out.
func signOut(t testing.TB, in, out time.Time, mods ...mod) []byte {
	t.Helper()
	return fixture(t, fixtureSignOut, append([]mod{payloadID(signInEntryID),
		entryTime("signed-in-at", in), entryTime("signed-out-at", out)}, mods...)...)
}

// inviteEvent is the invite fixture as event name with an arrival and a
// job id of its own.
func inviteEvent(t testing.TB, name string, at time.Time, job string) []byte {
	t.Helper()
	return fixture(t, fixtureInvite, eventName(name), arrival(at), jobID(job))
}

// jobN returns a distinct job id.
func jobN(prefix string, n int) string { return fmt.Sprintf("%s-%04d", prefix, n) }
