package stacktest_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/lockctl"
	"github.com/latchkey/latchkey/webhooks"
)

type quietQueue struct{}

func (quietQueue) EnqueueVisitSync(context.Context, int64, int64) error        { return nil }
func (quietQueue) EnqueueEmail(context.Context, int64, string, string) error   { return nil }
func (quietQueue) EnqueueMappingChanged(context.Context, string, string) error { return nil }
func (quietQueue) EnqueueEnvoyReport(context.Context, int64) error             { return nil }

// route calls an Envoy setup route of install, signed as Envoy signs it.
func route(s *stacktest.Stack, name, install, config, params, payload string) (int, string) {
	body := []byte(`{"meta":{"route":"` + name + `","install_id":"` + install + `","config":` + config + `,"params":` + params + `},"payload":` + payload + `}`)
	rec := post(s, "/envoy/routes/"+name, body, http.Header{"X-Envoy-Signature": {webhooks.Sign(body, stacktest.EnvoySecret)}})
	return rec.Code, rec.Body.String()
}

func installEvent(t *testing.T, install, entry, flow string, at time.Time, config map[string]any) []byte {
	t.Helper()
	return fixtures.EditEnvoy("envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		m := doc["meta"].(map[string]any)
		m["install_id"] = install
		m["job"].(map[string]any)["id"] = "job-" + install + "-" + entry
		if config != nil {
			m["config"] = config
		}
		p := doc["payload"].(map[string]any)
		p["id"] = entry
		a := p["attributes"].(map[string]any)
		a["signed-in-at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
		a["flow-id"] = flow
		p["relationships"].(map[string]any)["flow"].(map[string]any)["data"].(map[string]any)["id"] = flow
	})
}

func message(t *testing.T, body string) string {
	t.Helper()
	var out struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return out.Message
}

// TestTwoEnvoyInstalls sets up two installs through Envoy's setup routes,
// A on the bundled controller and B on a second controller with its own
// admin key, and checks each visitor's link exists only on its own
// install's controller, that an unmapped walk-in is ignored with a
// message, that a refused key is 412, that a configuration carried by an
// event is taken, and that uninstalling B leaves A untouched.
func TestTwoEnvoyInstalls(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	s := stacktest.Start(t, stacktest.Options{Start: now, Queue: quietQueue{}})

	const keyB = "second-controller-admin-key-0123456789"
	dbB := testenv.DB(t)
	if err := lockctl.Migrate(ctx, dbB); err != nil {
		t.Fatal(err)
	}
	sim := lockctl.NewSimDriver(nil)
	t.Cleanup(sim.Close)
	ctlB := lockctl.New(slog.New(slog.DiscardHandler), dbB, sim, nil, lockctl.Options{AdminAPIKey: keyB, Now: s.Clock.Now, SimUnlockDuration: time.Hour})
	if err := ctlB.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	srvB := httptest.NewServer(ctlB.Handler())
	t.Cleanup(srvB.Close)
	kisiB, err := kisi.New(srvB.URL, kisi.Options{APIKey: keyB, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}

	// Unsigned setup calls are refused.
	if rec := post(s, "/envoy/routes/connect", []byte(`{"meta":{"install_id":"A"}}`), http.Header{}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("unsigned connect: %d", rec.Code)
	}
	// A refused key: 412 with a plain message, nothing stored.
	code, body := route(s, "connect", "A", `{}`, `{}`, `{"api_key":"wrong-key-0123456789"}`)
	if code != http.StatusPreconditionFailed || !strings.Contains(message(t, body), "refused") {
		t.Fatalf("connect with a wrong key: %d %s", code, body)
	}
	code, body = route(s, "connect", "A", `{}`, `{}`, `{"api_key":"`+stacktest.AdminKey+`"}`)
	if code != http.StatusOK || strings.Contains(body, stacktest.AdminKey) || !strings.Contains(body, `"controller_connected":true`) {
		t.Fatalf("connect A: %d %s", code, body)
	}
	code, body = route(s, "connect", "B", `{}`, `{}`, `{"api_key":"`+keyB+`","controller_url":"`+srvB.URL+`"}`)
	if code != http.StatusOK || strings.Contains(body, keyB) {
		t.Fatalf("connect B: %d %s", code, body)
	}
	code, body = route(s, "places", "A", `{}`, `{"search":"","page":1}`, `null`)
	var places []connector.Option
	if code != http.StatusOK || json.Unmarshal([]byte(body), &places) != nil || len(places) == 0 {
		t.Fatalf("places: %d %s", code, body)
	}
	code, body = route(s, "groups", "A", `{"places":["`+places[0].Value+`"]}`, `{"parent_resource_id":"359435"}`, `null`)
	var groups []connector.Option
	if code != http.StatusOK || json.Unmarshal([]byte(body), &groups) != nil || len(groups) == 0 {
		t.Fatalf("groups: %d %s", code, body)
	}
	code, body = route(s, "access", "A", `{}`, `{}`, `{"visitor_access":{"359435":["987654"]},"access_duration_minutes":60}`)
	if code != http.StatusPreconditionFailed || !strings.Contains(message(t, body), "987654") {
		t.Fatalf("access with an unknown group: %d %s", code, body)
	}
	access := `{"visitor_access":{"359435":["` + groups[0].Value + `"]},"access_duration_minutes":60,"guest_indicator":true}`
	for _, in := range []string{"A", "B"} {
		if code, body = route(s, "access", in, `{}`, `{}`, access); code != http.StatusOK {
			t.Fatalf("access %s: %d %s", in, code, body)
		}
	}

	signIn := func(install, entry, flow string, config map[string]any) (int, map[string]any) {
		rec := webhook(s, installEvent(t, install, entry, flow, now, config))
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	linksOn := func(k *kisi.Client) int {
		ls, err := k.ListLinks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(ls)
	}
	baseA, baseB := linksOn(s.Kisi), linksOn(kisiB)
	visits := map[string]int64{}
	for _, in := range []string{"A", "B"} {
		code, out := signIn(in, "e-"+in, "359435", nil)
		if code != http.StatusAccepted || out["message"] == "" {
			t.Fatalf("sign-in %s: %d %v", in, code, out)
		}
		visits[in] = int64(out["visit_id"].(float64))
		if _, err := s.Service.SyncVisit(ctx, visits[in]); err != nil {
			t.Fatalf("sync %s: %v", in, err)
		}
	}
	if a, b := linksOn(s.Kisi)-baseA, linksOn(kisiB)-baseB; a != 1 || b != 1 {
		t.Fatalf("new links: A %d, B %d; want one each on its own controller", a, b)
	}

	code, out := signIn("A", "walk-in", "424242", nil)
	if code != http.StatusBadRequest || out["message"] == "" {
		t.Fatalf("unmapped walk-in: %d %v", code, out)
	}

	// Envoy's configuration, carried by an event, wins.
	code, out = signIn("A", "e-A2", "359435", map[string]any{"visitor_access": map[string]any{"359435": []any{groups[0].Value}, "777": []any{groups[0].Value}}, "access_duration_minutes": 30})
	if code != http.StatusAccepted {
		t.Fatalf("sign-in with config: %d %v", code, out)
	}
	d, err := s.Service.Detail(ctx, int64(out["visit_id"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(timelineText(d), "configuration changed in Envoy") {
		t.Fatalf("timeline lacks the configuration change: %s", timelineText(d))
	}
	if code, out = signIn("A", "e-A3", "777", nil); code != http.StatusAccepted {
		t.Fatalf("flow mapped by Envoy's configuration: %d %v", code, out)
	}

	// Uninstalling B revokes B's access only and forgets its key. A worker
	// holding B's visit when the uninstall arrives delays it, and the
	// uninstall waits for it instead of refusing.
	held, err := s.Service.Store().Acquire(ctx, visits["B"], "another-worker", s.Clock.Now(), s.Clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	releasing := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		close(releasing) // before the release: the uninstall may finish the moment it commits
		_ = held.Release(ctx)
	}()
	rec := webhook(s, []byte(`{"meta":{"event":"plugin_uninstalled","install_id":"B","job":{"id":"u1"}},"payload":null}`))
	if rec.Code != http.StatusOK {
		t.Fatalf("uninstall: %d %s", rec.Code, rec.Body)
	}
	select {
	case <-releasing:
	default:
		t.Fatal("the uninstall answered before the worker holding B's visit let go")
	}
	if b := linksOn(kisiB) - baseB; b != 0 {
		t.Fatalf("B still has %d links after uninstall", b)
	}
	if a := linksOn(s.Kisi) - baseA; a != 1 {
		t.Fatalf("A has %d links after B's uninstall, want 1", a)
	}
	if code, out = signIn("B", "e-B2", "359435", nil); code != http.StatusPreconditionFailed || out["message"] == "" {
		t.Fatalf("event of an uninstalled install: %d %v", code, out)
	}
}

func timelineText(d connector.Detail) string {
	var b strings.Builder
	for _, e := range d.Timeline {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}
