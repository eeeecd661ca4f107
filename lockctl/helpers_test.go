package lockctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/testenv"
)

const adminKey = "test-admin-key-0123456789"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// outbox is a mail.Sender that keeps what it is given.
type outbox struct {
	mu   sync.Mutex
	msgs []mail.Message
}

func (o *outbox) Send(_ context.Context, m mail.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return nil
}

func (o *outbox) all() []mail.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]mail.Message(nil), o.msgs...)
}

// env is a controller over a fresh database, with a simulated driver, a
// captured mailbox and (unless realClock) a settable clock.
type env struct {
	t      testing.TB
	c      *Controller
	h      http.Handler
	sim    *SimDriver
	clock  *clock
	outbox *outbox
}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	db := testenv.DB(t)
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	opts := Options{AdminAPIKey: adminKey, Now: clk.Now, SimUnlockDuration: time.Hour,
		PublicURL: "https://door.example.com/lockctl"}
	if mod != nil {
		mod(&opts)
	}
	sim := NewSimDriver(opts.Now)
	t.Cleanup(sim.Close)
	ob := &outbox{}
	c := New(testenv.Logger(t), db, sim, ob, opts)
	return &env{t: t, c: c, h: c.Handler(), sim: sim, clock: clk, outbox: ob}
}

// req is one HTTP request to the controller.
type req struct {
	method, path, auth string
	body               any
	ip, ua             string
	header             map[string]string
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("encode body: %v", err)
		}
		body = bytes.NewReader(raw)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.auth != "" {
		hr.Header.Set("Authorization", r.auth)
	}
	if r.ip != "" {
		hr.RemoteAddr = r.ip + ":40000"
	}
	if r.ua != "" {
		hr.Header.Set("User-Agent", r.ua)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	return rec
}

func admin() string               { return "KISI-LOGIN " + adminKey }
func holder(secret string) string { return "KISI-GROUP-LINK " + secret }

// must sends r and fails the test unless the status is want; it returns
// the recorder.
func (e *env) must(want int, r req) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := e.do(r)
	if rec.Code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", r.method, r.path, rec.Code, want, rec.Body.String())
	}
	return rec
}

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, rec.Body.String(), err)
	}
	return v
}

// decodeStrict decodes like decode but fails on fields T does not know.
func decodeStrict[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %T strictly from %s: %v", v, rec.Body.String(), err)
	}
	return v
}

// kisiError is Kisi's Error schema.
type kisiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// wantError checks a Kisi error answer.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
	got := decodeStrict[kisiError](t, rec)
	if got.Code != code || got.Error == "" {
		t.Fatalf("error %+v, want code %s and a message", got, code)
	}
}

// fixture is a small site: place HQ, three locks, group "Visitors" opening
// the first two, group "Staff" opening the third.
type fixture struct {
	placeID            int64
	front, lobby, back int64
	visitors, staff    int64
}

type idOnly struct {
	ID int64 `json:"id"`
}

func (e *env) site() fixture {
	e.t.Helper()
	var f fixture
	f.placeID = decode[idOnly](e.t, e.must(200, req{method: "POST", path: "/places", auth: admin(),
		body: map[string]any{"place": map[string]any{"name": "HQ", "time_zone": "Europe/Berlin"}}})).ID
	lock := func(name string) int64 {
		return decode[idOnly](e.t, e.must(200, req{method: "POST", path: "/locks", auth: admin(),
			body: map[string]any{"lock": map[string]any{"name": name, "place_id": f.placeID}}})).ID
	}
	f.front, f.lobby, f.back = lock("Front door"), lock("Lobby"), lock("Back door")
	group := func(name string) int64 {
		return decode[idOnly](e.t, e.must(200, req{method: "POST", path: "/groups", auth: admin(),
			body: map[string]any{"group": map[string]any{"name": name, "place_id": f.placeID}}})).ID
	}
	f.visitors, f.staff = group("Visitors"), group("Staff")
	for _, gl := range [][2]int64{{f.visitors, f.front}, {f.visitors, f.lobby}, {f.staff, f.back}} {
		e.must(200, req{method: "POST", path: "/group_locks", auth: admin(),
			body: map[string]any{"group_lock": map[string]any{"group_id": gl[0], "lock_id": gl[1]}}})
	}
	return f
}

// createdLink is the part of the create answer tests use.
type createdLink struct {
	ID                     int64   `json:"id"`
	Secret                 string  `json:"secret"`
	QuickResponseCodeToken *string `json:"quick_response_code_token"`
	QuickResponseCodeImage *string `json:"quick_response_code_image"`
}

// link creates a group link with the given fields merged over a name and
// group.
func (e *env) link(groupID int64, fields map[string]any) createdLink {
	e.t.Helper()
	gl := map[string]any{"group_id": groupID, "name": "Ada Lovelace (Visitor)"}
	for k, v := range fields {
		gl[k] = v
	}
	return decode[createdLink](e.t, e.must(200, req{method: "POST", path: "/group_links", auth: admin(),
		body: map[string]any{"group_link": gl}}))
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }
