package webhooks

import (
	"bytes"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/fixtures"
)

// fixtureSeeds returns every fixture body, plus the bare SDK payloads
// wrapped in a meta.
func fixtureSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, name := range fixtures.EnvoyNames() {
		b := fixtures.Envoy(name)
		seeds = append(seeds, b, wrapPayload("entry_sign_in", b), wrapPayload("invite_updated", b))
	}
	return seeds
}

// FuzzParse checks that Parse never panics, that failures are Invalid
// errors with a message, and that successes are consistent.
func FuzzParse(f *testing.F) {
	for _, s := range fixtureSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"event":"entry_sign_out","payload":{"id":"1","attributes":{"signed-out-at":"2024-01-15 10:30:00"}}}`))
	f.Add([]byte(`{"meta":{"event":"invite_created"},"payload":{"id":"1","attributes":{"flow-id":-0}}}`))
	f.Add([]byte(`{"meta":null,"payload":null,"event":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			if k := latchkey.KindOf(err); k != latchkey.Invalid {
				t.Fatalf("got error kind %v (%v), want invalid", k, err)
			}
			if latchkey.Message(err) == "" {
				t.Fatalf("got an error without a message: %v", err)
			}
			return
		}
		if d.Kind == "" || string(d.Event.Kind) != d.Kind {
			t.Fatalf("got kind %q and event kind %q, want the same non-empty name", d.Kind, d.Event.Kind)
		}
		if d.DedupeKey == "" {
			t.Fatalf("got an empty dedupe key")
		}
		if d.Known != d.Event.Kind.Known() {
			t.Fatalf("got known %v for %q", d.Known, d.Kind)
		}
		if d.Known && d.Event.EntryID == "" && d.Event.InviteID == "" {
			t.Fatalf("got a known event without an entry or invite id")
		}
		for _, ts := range []time.Time{d.Event.SignedInAt, d.Event.SignedOutAt, d.Event.ExpectedArrival} {
			if !ts.IsZero() && ts.Location() != time.UTC {
				t.Fatalf("got time %v, want UTC", ts)
			}
		}
		again, err := Parse(body)
		if err != nil || again != d {
			t.Fatalf("got %+v, %v on a second parse, want %+v", again, err, d)
		}
	})
}

// FuzzVerify checks that Verify never panics, accepts what Sign produces and
// rejects a signature for another body.
func FuzzVerify(f *testing.F) {
	for _, s := range fixtureSeeds(f) {
		f.Add(s, "secret", Sign(s, "secret"))
	}
	f.Add([]byte("{}"), "", "")
	f.Add([]byte{}, "k", "====")
	f.Fuzz(func(t *testing.T, body []byte, secret, header string) {
		Verify(body, header, []string{secret})
		Verify(body, header, []string{secret, "", secret})
		if secret == "" {
			if Verify(body, Sign(body, secret), []string{secret}) {
				t.Fatalf("got an empty secret verifying, want never")
			}
			return
		}
		sig := Sign(body, secret)
		if !Verify(body, sig, []string{"other-" + secret, secret}) {
			t.Fatalf("got Verify false for Sign's own signature, want true")
		}
		other := append(bytes.Clone(body), '!')
		if Verify(other, sig, []string{secret}) {
			t.Fatalf("got a signature verifying another body, want false")
		}
	})
}
