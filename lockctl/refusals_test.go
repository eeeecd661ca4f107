package lockctl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// unlockEvents returns the stored lock.unlock events, newest first.
func (e *env) unlockEvents() []kisiEvent {
	e.t.Helper()
	return decodeStrict[[]kisiEvent](e.t, e.must(200, req{method: "GET", path: "/events?type=lock.unlock&limit=250", auth: admin()}))
}

func TestRefusedUnlocksAreSampledAndCounted(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.IPRate = Rate{PerSecond: -1} })
	f := e.site()
	const n = 200
	for i := range n {
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder("guess"),
			ip: fmt.Sprintf("198.51.100.%d", i%250), ua: "scanner"}), 401, CodeLinkInvalid)
	}
	if got := len(e.unlockEvents()); got != defaultRefusalSamples {
		t.Fatalf("%d refused attempts stored %d events, want %d (one minute's sample)", n, got, defaultRefusalSamples)
	}
	// Once the minute is over, the rest are summed up in one event.
	e.clock.Set(e.clock.Now().Add(time.Minute))
	if err := e.c.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	evs := e.unlockEvents()
	if len(evs) != defaultRefusalSamples+1 {
		t.Fatalf("got %d events after the sweep, want %d", len(evs), defaultRefusalSamples+1)
	}
	sum := evs[0]
	want := fmt.Sprintf("%d more refused unlock attempts", n-defaultRefusalSamples)
	if sum.Success || sum.Code == nil || *sum.Code != CodeLinkInvalid || sum.Message == nil || !strings.HasPrefix(*sum.Message, want) {
		t.Errorf("summary event %+v, want a refused %s saying %q", sum, CodeLinkInvalid, want)
	}
	// A new minute samples again.
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder("guess")}), 401, CodeLinkInvalid)
	if got := len(e.unlockEvents()); got != defaultRefusalSamples+2 {
		t.Errorf("got %d events, want %d", got, defaultRefusalSamples+2)
	}
}

func TestStrangersDoNotThrottleAGuestOnTheirAddress(t *testing.T) {
	e := newEnv(t, nil) // default limits
	f := e.site()
	l := e.link(f.visitors, nil)
	const shared = "203.0.113.9"
	codes := map[int]int{}
	for range 100 {
		codes[e.do(req{method: "POST", path: unlockPath(f.front), auth: holder("guess"), ip: shared}).Code]++
	}
	if codes[429] == 0 {
		t.Fatalf("anonymous attempts from one address were never throttled: %v", codes)
	}
	for i := range 8 {
		e.clock.Set(e.clock.Now().Add(time.Second))
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret), ip: shared})
		e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(fmt.Sprint("guess", i)), ip: shared})
	}
}

func TestEventRetentionSweep(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.EventRetention = 24 * time.Hour })
	f := e.site()
	l := e.link(f.visitors, nil)
	for range 5 {
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: admin()})
	}
	e.clock.Set(e.clock.Now().Add(25 * time.Hour))
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)})
	e.c.sweepBatch = 2
	if err := e.c.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events", auth: admin()}))
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if d := cmp.Diff([]string{"lock.unlock"}, types); d != "" {
		t.Errorf("events left after the sweep (-want +got):\n%s", d)
	}
	if len(evs) == 1 && (evs[0].ActorID == nil || *evs[0].ActorID != l.ID) {
		t.Errorf("the sweep kept %+v, want the link's recent unlock", evs[0])
	}
}

func TestUserAgentIsBounded(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	ua := strings.Repeat("é", 1000) // 2000 bytes
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: admin(), ua: ua})
	evs := e.unlockEvents()
	if len(evs) != 1 || evs[0].UserAgent == nil {
		t.Fatalf("events %+v", evs)
	}
	if got := *evs[0].UserAgent; len(got) > maxUserAgent || !strings.HasPrefix(ua, got) || got == "" {
		t.Errorf("stored user agent of %d bytes, want a prefix of at most %d", len(got), maxUserAgent)
	}
}

// A flood of anonymous guesses uses up the sample, but a known link's own
// refusals (a guest trying the door after their window ended) are each
// recorded: the link's rate limit bounds them, and they are the audit
// trail that matters.
func TestKnownCredentialRefusalsAreAllRecorded(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.IPRate = Rate{PerSecond: -1} })
	f := e.site()
	l := e.link(f.visitors, map[string]any{"valid_until": rfc(e.clock.Now().Add(-time.Hour)), "valid_from": rfc(e.clock.Now().Add(-2 * time.Hour))})
	for range 50 {
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder("guess")}), 401, CodeLinkInvalid)
	}
	const tries = defaultRefusalSamples + 5
	for range tries {
		e.clock.Set(e.clock.Now().Add(2 * time.Second)) // within the link's own limit
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: holder(l.Secret)}), 403, CodeNoLongerValid)
	}
	n := 0
	for _, ev := range e.unlockEvents() {
		if ev.Code != nil && *ev.Code == CodeNoLongerValid {
			n++
		}
	}
	if n != tries {
		t.Errorf("%d of the expired link's %d refusals recorded, want all", n, tries)
	}
}
