package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestBenchRefusesBadFlags(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--url", "http://192.0.2.1:8080"}, "only to loopback"},
		{[]string{"bench", "--url", "http://127.0.0.1:1", "--phases", "ingest,nap"}, `unknown phase "nap"`},
		{[]string{"bench", "--url", "http://127.0.0.1:1", "extra"}, "unexpected argument"},
	} {
		err := run(context.Background(), tc.args, getenv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// `latchkey bench` against a fresh `serve --demo` runs every phase that
// drives the server without a failed request: a sign-in answered 202
// (its links are made in the queue) is a success.
func TestBenchRunsAgainstServe(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, false)
	p := d.serve(t, "serve", nil, "--demo")
	getenv := func(string) string { return "" }
	var out strings.Builder
	args := []string{"bench", "--url", p.URL, "--secret", d.EnvoySecret, "--api-key", d.AdminKey, "--data-dir", d.DataDir,
		"--database-url", d.DatabaseURL, "--phases", "quiet,ingest,signin,unlock,signout,burst", "--duration", "1s", "--count", "24",
		"--rate", "100", "--event-rate", "10", "--concurrency", "8", "--json"}
	if err := run(context.Background(), args, getenv, &out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var rep struct {
		Phases []struct {
			Name       string  `json:"name"`
			Requests   int64   `json:"requests"`
			Errors     int64   `json:"errors"`
			First      string  `json:"first_error"`
			Statements float64 `json:"statements_per_op"`
			Email      *struct {
				P50 float64 `json:"p50_ms"`
			} `json:"email_latency"`
		} `json:"phases"`
	}
	raw := out.String()
	if i := strings.Index(raw, "{"); i >= 0 {
		raw = raw[i:]
	}
	if err := json.Unmarshal([]byte(raw), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out.String())
	}
	seen := map[string]bool{}
	for _, ph := range rep.Phases {
		seen[strings.TrimSuffix(ph.Name, "-max")] = true
		if ph.Requests == 0 || ph.Errors > 0 {
			t.Errorf("phase %s: %d requests, %d errors (first: %s)", ph.Name, ph.Requests, ph.Errors, ph.First)
		}
		// Every webhook is at least one transaction.
		if ph.Name == "ingest-max" && ph.Statements < 3 {
			t.Errorf("ingest-max: %v statements per webhook, want the server's count (at least 3)", ph.Statements)
		}
		if ph.Name == "quiet" && (ph.Email == nil || ph.Email.P50 <= 0) {
			t.Errorf("quiet: no email latency measured: %s", out.String())
		}
	}
	for _, want := range []string{"quiet", "ingest", "signin", "unlock", "signout", "burst"} {
		if !seen[want] {
			t.Errorf("no %s phase in the report: %s", want, out.String())
		}
	}
}
