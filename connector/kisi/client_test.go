package kisi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		opts    Options
		wantErr bool
	}{
		{name: "https", url: "https://api.kisi.io", opts: Options{APIKey: "k"}},
		{name: "path prefix", url: "http://127.0.0.1:8080/lockctl", opts: Options{APIKey: "k"}},
		{name: "empty key", url: "https://api.kisi.io", wantErr: true},
		{name: "relative", url: "/lockctl", opts: Options{APIKey: "k"}, wantErr: true},
		{name: "no scheme", url: "api.kisi.io", opts: Options{APIKey: "k"}, wantErr: true},
		{name: "ftp", url: "ftp://api.kisi.io", opts: Options{APIKey: "k"}, wantErr: true},
		{name: "credentials", url: "https://u:p@api.kisi.io", opts: Options{APIKey: "k"}, wantErr: true},
		{name: "query", url: "https://api.kisi.io/?x=1", opts: Options{APIKey: "k"}, wantErr: true},
		{name: "bad url", url: "http://[::1", opts: Options{APIKey: "k"}, wantErr: true},
		{name: "negative rate", url: "https://api.kisi.io", opts: Options{APIKey: "k", RatePerSecond: -1}, wantErr: true},
		{name: "min above max backoff", url: "https://api.kisi.io", opts: Options{APIKey: "k", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.url, tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%q) error = %v, want error %v", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	cl, err := New("https://api.kisi.io", Options{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		APIKey: "k", RatePerSecond: 5, Burst: 1, MaxRetries: 4,
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second,
		IntegrationIdentifier: "latchkey",
	}
	if d := cmp.Diff(want, cl.opts); d != "" {
		t.Errorf("options (-want +got):\n%s", d)
	}
	if got := cl.admin.Limit(); got != 5 {
		t.Errorf("admin rate = %v, want 5", got)
	}
}

// TestHeaders checks the auth, content and partner headers of admin and
// holder calls, and that the base URL's path prefix is kept.
func TestHeaders(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/lockctl/group_links":
			w.Header().Set("X-Collection-Range", "*/0")
			writeJSON(w, http.StatusOK, []byte(`[]`))
		case "/lockctl/locks/7/unlock":
			writeJSON(w, http.StatusOK, []byte(`{"message":"Unlocked!"}`))
		default:
			http.NotFound(w, r)
		}
	})
	cl := newTestClient(t, srv.URL+"/lockctl", Options{IntegrationContact: "ops@example.com"})
	ctx := context.Background()
	if _, err := cl.ListLinks(ctx); err != nil {
		t.Fatalf("ListLinks: %v", err)
	}
	if err := cl.Unlock(ctx, testSecret, 7); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	pick := func(h http.Header) map[string]string {
		m := map[string]string{}
		for _, k := range []string{"Authorization", "Accept", "X-Kisi-Integration-Identifier", "X-Kisi-Integration-Contact"} {
			m[k] = h.Get(k)
		}
		return m
	}
	wantAdmin := map[string]string{
		"Authorization":                 "KISI-LOGIN " + testAPIKey,
		"Accept":                        "application/json",
		"X-Kisi-Integration-Identifier": "latchkey",
		"X-Kisi-Integration-Contact":    "ops@example.com",
	}
	if d := cmp.Diff(wantAdmin, pick(reqs[0].Header)); d != "" {
		t.Errorf("admin headers (-want +got):\n%s", d)
	}
	wantHolder := map[string]string{
		"Authorization":                 "KISI-GROUP-LINK " + testSecret,
		"Accept":                        "application/json",
		"X-Kisi-Integration-Identifier": "latchkey",
		"X-Kisi-Integration-Contact":    "ops@example.com",
	}
	if d := cmp.Diff(wantHolder, pick(reqs[1].Header)); d != "" {
		t.Errorf("holder headers (-want +got):\n%s", d)
	}
	for _, r := range reqs {
		if r.Header.Get("User-Agent") == "" {
			t.Errorf("%s %s: no User-Agent", r.Method, r.Path)
		}
	}
	if got := reqs[0].Query; got != "limit=250&offset=0" {
		t.Errorf("list query = %q, want limit=250&offset=0", got)
	}
}
