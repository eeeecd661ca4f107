package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/webhooks"
)

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarise(ds)
	want := Latency{P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if (summarise(nil) != Latency{}) {
		t.Fatalf("got %+v for no samples, want zero", summarise(nil))
	}
}

func TestEnvoyBodyIsSignedAndParses(t *testing.T) {
	b := New(Config{URL: "http://127.0.0.1:1", Secret: "s3cret", Location: "177837", Flow: "359435"})
	v := b.newVisitor()
	for _, ev := range []string{"entry_sign_in", "entry_sign_out"} {
		body := b.envoyBody(v, ev, time.Now())
		if !webhooks.Verify(body, webhooks.Sign(body, "s3cret"), []string{"s3cret"}) {
			t.Fatalf("%s: signature does not verify", ev)
		}
		d, err := webhooks.Parse(body)
		if err != nil {
			t.Fatalf("%s: parse: %v\n%s", ev, err, body)
		}
		if d.Kind != ev || d.Event.EntryID != v.entryID || d.Event.FlowID != "359435" || d.Event.LocationID != "177837" {
			t.Fatalf("%s: parsed %+v", ev, d.Event)
		}
		if ev == "entry_sign_out" && d.Event.SignedOutAt.IsZero() {
			t.Fatalf("sign-out without signed-out-at")
		}
	}
	if a, c := b.envoyBody(v, "entry_sign_in", time.Now()), b.envoyBody(v, "entry_sign_in", time.Now()); string(a) == string(c) {
		t.Fatalf("two deliveries share a job id: they would be de-duplicated")
	}
}

func TestDrivePacedKeepsRateAndStops(t *testing.T) {
	b := New(Config{URL: "http://127.0.0.1:1"})
	b.procs = newProcs(0, nil, nil)
	defer b.procs.close()
	var n atomic.Int64
	p := b.drive(context.Background(), "t", load{Rate: 200, Concurrency: 4, Duration: 500 * time.Millisecond},
		func(context.Context, int) (outcome, int, string) {
			n.Add(1)
			return outcomeOK, 200, ""
		})
	if p.Requests < 80 || p.Requests > 101 || p.OK != p.Requests || n.Load() != p.Requests {
		t.Fatalf("got %+v (ran %d), want about 100 requests in 0.5 s at 200/s", p, n.Load())
	}
	// A server slower than the rate: the phase still ends near its
	// deadline and the latency includes the wait for a free worker.
	p = b.drive(context.Background(), "slow", load{Rate: 1000, Concurrency: 2, Duration: 300 * time.Millisecond},
		func(context.Context, int) (outcome, int, string) {
			time.Sleep(20 * time.Millisecond)
			return outcomeOK, 200, ""
		})
	if p.Seconds > 0.5 || p.P99 < 20 {
		t.Fatalf("got %+v, want the phase to stop near 0.3 s with queueing in the latency", p)
	}
}

func TestFindPIDAndProc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := FindPID("http://" + ln.Addr().String())
	if err != nil {
		t.Skipf("cannot read /proc here: %v", err)
	}
	if pid != os.Getpid() {
		t.Fatalf("got pid %d, want this process %d", pid, os.Getpid())
	}
	s, err := readStat("self")
	if err != nil || s.rss <= 0 {
		t.Fatalf("readStat: %+v, %v", s, err)
	}
	if peakRSS("self") < s.rss/2 {
		t.Fatalf("VmHWM %d below RSS %d", peakRSS("self"), s.rss)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8080", "http://127.0.0.2"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://example.com", "127.0.0.1:8080", ""} {
		if err := CheckLoopback(u); err == nil {
			t.Errorf("%s accepted, want refused", u)
		}
	}
}

// TestRunAgainstFake drives the ingest phase against a fake receiver that
// checks each signature, and the report names the target.
func TestRunAgainstFake(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1<<16)
		n, _ := r.Body.Read(buf)
		if !webhooks.Verify(buf[:n], r.Header.Get("X-Envoy-Signature"), []string{"k"}) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		got.Add(1)
		w.Write([]byte(`{"status":"accepted","visit_id":1}`))
	}))
	defer srv.Close()
	var progress strings.Builder
	r, err := New(Config{URL: srv.URL, Secret: "k", Phases: []string{"ingest"}, Duration: 300 * time.Millisecond,
		Rate: 100, Concurrency: 4, Progress: &progress}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 2 || r.Phases[0].Name != "ingest-max" || r.Phases[0].OK == 0 || r.Phases[0].Errors != 0 || r.Phases[1].Mode != "paced" {
		t.Fatalf("got phases %+v", r.Phases)
	}
	if len(r.Targets) == 0 || r.Targets[0].Name != "ingest throughput" {
		t.Fatalf("got targets %+v", r.Targets)
	}
	var out strings.Builder
	Print(&out, r)
	if !strings.Contains(out.String(), "ingest-max") || !strings.Contains(out.String(), "targets:") {
		t.Fatalf("report:\n%s", out.String())
	}
}

func TestSumSeriesAddsEveryLabelSet(t *testing.T) {
	text := `# HELP latchkey_db_statements_total Database round trips by kind.
# TYPE latchkey_db_statements_total counter
latchkey_db_statements_total{kind="begin"} 12
latchkey_db_statements_total{kind="query"} 3.5e+02
latchkey_db_statements_total_other 1000
latchkey_http_requests_total{route="/x"} 7
`
	got, err := sumSeries(strings.NewReader(text), "latchkey_db_statements_total")
	if err != nil || got != 362 {
		t.Errorf("sumSeries = %v, %v; want 362", got, err)
	}
	if _, err := sumSeries(strings.NewReader("up 1\n"), "latchkey_db_statements_total"); err == nil {
		t.Error("sumSeries of a server without the metric: no error")
	}
}

// A 429 from lockctl's rate limiter is not an unlock decision: a phase
// that ran out of passes must not meet the unlock target on 429s.
func TestUnlockTargetLeavesRateLimitedOut(t *testing.T) {
	b := &Bench{cfg: Config{DatabaseURL: "postgres://bench"}}
	r := &Report{EchoRate: 40_000, Phases: []Phase{
		{Name: "unlock-max", Seconds: 5, Counts: Counts{OK: 9_000, Refused: 1_000, Limited: 36_000}, Rate: 9_200},
	}}
	b.finish(r)
	var got *Target
	for i := range r.Targets {
		if r.Targets[i].Name == "unlock decisions" {
			got = &r.Targets[i]
		}
	}
	if got == nil {
		t.Fatalf("no unlock target in %+v", r.Targets)
	}
	if got.Met || got.Got != "2000/s" {
		t.Errorf("unlock target %+v, want 2000/s (granted and refused only) and missed", *got)
	}
	found := false
	for _, ra := range r.Ratios {
		if ra.Name == "unlock-max / echo" {
			found = true
			if ra.Value != 0.05 {
				t.Errorf("unlock-max / echo = %v, want 0.05 (2,000 decisions/s over 40,000)", ra.Value)
			}
		}
	}
	if !found {
		t.Errorf("no unlock-max / echo ratio in %+v", r.Ratios)
	}
}
