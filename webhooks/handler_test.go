package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/database"
	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
	"github.com/latchkey/latchkey/webhooks"
)

// queue records enqueued syncs: the queue is the seam here.
type queue struct {
	mu    sync.Mutex
	syncs []int64
}

func (q *queue) EnqueueVisitSync(_ context.Context, id, version int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.syncs = append(q.syncs, id)
	return nil
}

func (q *queue) EnqueueEmail(context.Context, int64, string, string) error   { return nil }
func (q *queue) EnqueueMappingChanged(context.Context, string, string) error { return nil }
func (q *queue) EnqueueEnvoyReport(context.Context, int64) error             { return nil }

func (q *queue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.syncs)
}

type env struct {
	srv *web.Server
	db  *gorm.DB
	q   *queue
	svc *connector.Service
}

const secret = "whsec-test"

func newEnv(t testing.TB) env {
	t.Helper()
	q := &queue{}
	s := stacktest.Start(t, stacktest.Options{Queue: q, EnvoySecrets: []string{"old-secret", secret}})
	if _, err := s.Mappings.Create(context.Background(), mappings.Mapping{LocationID: "177837", FlowID: "359435", GroupIDs: []int64{1}, DurationMinutes: 240}); err != nil {
		t.Fatal(err)
	}
	return env{srv: s.Server, db: s.DB, q: q, svc: s.Service}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	return fixtures.Envoy(name)
}

func (e env) post(t *testing.T, body []byte, sig string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/envoy", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Envoy-Signature", sig)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestWebhookAcceptsAndDeduplicates(t *testing.T) {
	e := newEnv(t)
	body := fixture(t, "envoy-plugin-event-entry_sign_in.json")
	code, out := e.post(t, body, webhooks.Sign(body, secret))
	if code != http.StatusAccepted || out["status"] != "accepted" || out["message"] == "" {
		t.Fatalf("first delivery: got %d %v, want 202 accepted with a message", code, out)
	}
	if e.q.count() != 1 {
		t.Fatalf("got %d syncs enqueued, want 1", e.q.count())
	}
	for range 4 {
		code, out = e.post(t, body, webhooks.Sign(body, secret))
		if code != http.StatusOK || out["status"] != "duplicate" {
			t.Fatalf("retry: got %d %v, want 200 duplicate", code, out)
		}
	}
	if e.q.count() != 1 {
		t.Fatalf("after retries got %d syncs enqueued, want 1", e.q.count())
	}
	var n int64
	e.db.Model(&connector.Visit{}).Count(&n)
	if n != 1 {
		t.Fatalf("got %d visits, want 1", n)
	}
	// A rotated-out secret still verifies. The delivery is a new job for
	// the same entry: 200 when it changes nothing, 202 when it moves the
	// window (a sign-in time taken from the receive time, a second later).
	body2 := bytes.Replace(body, []byte(`292bed38`), []byte(`392bed38`), 1)
	if code, out := e.post(t, body2, webhooks.Sign(body2, "old-secret")); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("old secret: got %d %v, want 200 or 202", code, out)
	}
}

func TestWebhookRejections(t *testing.T) {
	e := newEnv(t)
	body := fixture(t, "envoy-plugin-event-entry_sign_in.json")
	big := append([]byte(`{"meta":{"event":"entry_sign_in"},"pad":"`), bytes.Repeat([]byte("x"), webhooks.MaxBody)...)
	big = append(big, `"}`...)
	malformed := []byte(`{"meta":{"event":"entry_sign_in"},"payload":`)
	unknown := []byte(`{"meta":{"event":"desk_sign_in","job":{"id":"j-1"}},"payload":{"id":"5","type":"desks"}}`)
	tests := []struct {
		name     string
		body     []byte
		sig      string
		want     int
		contains string
	}{
		{"missing signature", body, "", http.StatusUnauthorized, "X-Envoy-Signature"},
		{"wrong secret", body, webhooks.Sign(body, "nope"), http.StatusUnauthorized, "X-Envoy-Signature"},
		{"tampered body", append([]byte(" "), body...), webhooks.Sign(body, secret), http.StatusUnauthorized, "X-Envoy-Signature"},
		{"over 1 MiB", big, webhooks.Sign(big, secret), http.StatusRequestEntityTooLarge, "larger than 1MB"},
		{"malformed JSON", malformed, webhooks.Sign(malformed, secret), http.StatusBadRequest, ""},
		{"unknown event", unknown, webhooks.Sign(unknown, secret), http.StatusBadRequest, `"message":"event`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.post(t, tt.body, tt.sig)
			if code != tt.want {
				t.Fatalf("got %d %v, want %d", code, out, tt.want)
			}
			if b, _ := json.Marshal(out); !strings.Contains(string(b), tt.contains) {
				t.Fatalf("body %s does not mention %q", b, tt.contains)
			}
		})
	}
	if e.q.count() != 0 {
		t.Fatalf("rejected deliveries enqueued %d syncs, want 0", e.q.count())
	}
	var n int64
	e.db.Model(&connector.Visit{}).Count(&n)
	if n != 0 {
		t.Fatalf("rejected deliveries made %d visits, want 0", n)
	}
}

// TestWebhookDatabaseDown: an event that cannot be stored is never
// acknowledged with a 2xx, so Envoy retries it.
func TestWebhookDatabaseDown(t *testing.T) {
	e := newEnv(t)
	if err := database.Close(e.db); err != nil {
		t.Fatal(err)
	}
	body := fixture(t, "envoy-plugin-event-entry_sign_in.json")
	code, out := e.post(t, body, webhooks.Sign(body, secret))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("got %d %v, want 503", code, out)
	}
	if e.q.count() != 0 {
		t.Fatalf("enqueued %d syncs for an unstored event", e.q.count())
	}
}

// TestWebhookPoisonInput: input latchkey cannot store, or whose window
// falls outside the years 1970 to 9999, answers 400 with a message naming
// the field (never a 5xx, which Envoy would retry for ever) and stores
// nothing.
func TestWebhookPoisonInput(t *testing.T) {
	e := newEnv(t)
	edit := func(change func(attrs, meta map[string]any)) []byte {
		return fixtures.EditEnvoy("envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
			change(doc["payload"].(map[string]any)["attributes"].(map[string]any), doc["meta"].(map[string]any))
		})
	}
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"window ending in year 10000", edit(func(a, _ map[string]any) { a["signed-in-at"] = "9999-12-31 23:00:00 UTC" }), "payload.attributes.signed-in-at"},
		{"time in year 10000 after zone conversion", edit(func(a, _ map[string]any) { a["signed-in-at"] = "9999-12-31T23:00:00-05:00" }), "payload.attributes.signed-in-at"},
		{"NUL in a name", edit(func(a, _ map[string]any) { a["full-name"] = "\x00" }), "payload.attributes.full-name"},
		{"name of 100,000 characters", edit(func(a, _ map[string]any) { a["full-name"] = strings.Repeat("x", 100000) }), "payload.attributes.full-name"},
		{"job id of 65 characters", edit(func(_, m map[string]any) { m["job"].(map[string]any)["id"] = strings.Repeat("j", 65) }), "meta.job.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := e.post(t, tt.body, webhooks.Sign(tt.body, secret))
			if code != http.StatusBadRequest {
				t.Fatalf("got %d %v, want 400", code, out)
			}
			msg, _ := out["message"].(string)
			if !strings.Contains(msg, tt.field) {
				t.Errorf("message %q does not name %s (body %v)", msg, tt.field, out)
			}
		})
	}
	var visits, deliveries int64
	e.db.Model(&connector.Visit{}).Count(&visits)
	e.db.Model(&connector.Delivery{}).Count(&deliveries)
	if visits != 0 || deliveries != 0 {
		t.Errorf("refused deliveries stored %d visits and %d deliveries, want none", visits, deliveries)
	}
	if e.q.count() != 0 {
		t.Errorf("refused deliveries enqueued %d syncs, want 0", e.q.count())
	}
}

// TestWebhookUnknownTimeZone: an unknown zone is no reason to refuse a
// visitor: the visit runs in UTC and says why.
func TestWebhookUnknownTimeZone(t *testing.T) {
	e := newEnv(t)
	body := fixtures.EditEnvoy("envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		doc["meta"].(map[string]any)["location"].(map[string]any)["attributes"].(map[string]any)["timezone"] = "Mars/Olympus"
	})
	code, out := e.post(t, body, webhooks.Sign(body, secret))
	if code != http.StatusAccepted {
		t.Fatalf("got %d %v, want 202", code, out)
	}
	id := int64(out["visit_id"].(float64))
	v, err := e.svc.Store().Visit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if v.TimeZone != "" || v.BadTimeZone != "Mars/Olympus" {
		t.Errorf("got zone %q, bad zone %q; want none and Mars/Olympus", v.TimeZone, v.BadTimeZone)
	}
	tl, err := e.svc.Store().Timeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, te := range tl {
		found = found || strings.Contains(te.Message, `unknown time zone "Mars/Olympus"`)
	}
	if !found {
		t.Errorf("timeline does not name the unknown zone: %+v", tl)
	}
}
