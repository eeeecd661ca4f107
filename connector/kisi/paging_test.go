package kisi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	latchkey "github.com/latchkey/latchkey"
)

func TestParseRangeFixtures(t *testing.T) {
	var examples []string
	if err := json.Unmarshal(misc(t, "x_collection_range_examples"), &examples); err != nil {
		t.Fatal(err)
	}
	want := map[string]collectionRange{
		"0-9/200":  {start: 0, end: 9, total: 200},
		"10-19/15": {start: 10, end: 19, total: 15},
		"0-0/2":    {start: 0, end: 0, total: 2},
		"*/0":      {empty: true},
	}
	for _, ex := range examples {
		got, err := parseRange(ex)
		if err != nil {
			t.Errorf("parseRange(%q): %v", ex, err)
			continue
		}
		w, ok := want[ex]
		if !ok {
			t.Errorf("fixture example %q has no expectation", ex)
			continue
		}
		if got != w {
			t.Errorf("parseRange(%q) = %+v, want %+v", ex, got, w)
		}
	}
	for _, bad := range []string{"", "0-9", "a-b/3", "9-0/10", "0-9/x", "-1-2/3"} {
		if _, err := parseRange(bad); err == nil {
			t.Errorf("parseRange(%q) succeeded, want error", bad)
		}
	}
}

// linkPage returns n copies of the fixture list element with ids from first.
func linkPage(t testing.TB, first, n int) []byte {
	t.Helper()
	var items []map[string]any
	if err := json.Unmarshal(fixture(t, "kisi-group-links-list-response.json"), &items); err != nil {
		t.Fatal(err)
	}
	page := make([]map[string]any, n)
	for i := range page {
		item := make(map[string]any, len(items[0]))
		for k, v := range items[0] {
			item[k] = v
		}
		item["id"] = first + i
		page[i] = item
	}
	b, _ := json.Marshal(page)
	return b
}

// TestListLinksPaging reads 501 links in three pages, following
// X-Collection-Range, as Kisi answers limit=250.
func TestListLinksPaging(t *testing.T) {
	const total = 501
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		q := r.URL.Query()
		if q.Get("limit") != "250" {
			t.Errorf("limit = %q, want 250", q.Get("limit"))
		}
		off, _ := strconv.Atoi(q.Get("offset"))
		cnt := min(250, total-off)
		w.Header().Set("X-Collection-Range", fmt.Sprintf("%d-%d/%d", off, off+cnt-1, total))
		writeJSON(w, http.StatusOK, linkPage(t, off, cnt))
	})
	cl := newTestClient(t, srv.URL, Options{})
	got, err := cl.ListLinks(context.Background())
	if err != nil {
		t.Fatalf("ListLinks: %v", err)
	}
	if len(got) != total {
		t.Fatalf("got %d links, want %d", len(got), total)
	}
	for i, l := range got {
		if l.ID != int64(i) {
			t.Fatalf("link %d has id %d, want %d", i, l.ID, i)
		}
	}
	var offsets []string
	for _, r := range srv.requests() {
		offsets = append(offsets, r.Query)
	}
	want := []string{"limit=250&offset=0", "limit=250&offset=250", "limit=250&offset=500"}
	if d := cmp.Diff(want, offsets); d != "" {
		t.Errorf("queries (-want +got):\n%s", d)
	}
}

func TestListPagingEdges(t *testing.T) {
	tests := []struct {
		name     string
		handle   func(w http.ResponseWriter, r *http.Request, n int)
		wantLen  int
		wantReqs int
		wantKind latchkey.Kind // Internal means success
	}{
		{
			name: "empty */0",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("X-Collection-Range", "*/0")
				writeJSON(w, http.StatusOK, []byte(`[]`))
			},
			wantReqs: 1,
		},
		{
			name: "no header, short page",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, http.StatusOK, linkPage(t, 0, 3))
			},
			wantLen: 3, wantReqs: 1,
		},
		{
			name: "offset ignored",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("X-Collection-Range", "0-249/1000")
				writeJSON(w, http.StatusOK, linkPage(t, 0, 250))
			},
			wantReqs: 2, wantKind: latchkey.Unavailable,
		},
		{
			name: "no header, same full page again",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, http.StatusOK, linkPage(t, 0, 250))
			},
			wantReqs: 2, wantKind: latchkey.Unavailable,
		},
		{
			name: "claims more but sends nothing",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("X-Collection-Range", "0-249/1000")
				writeJSON(w, http.StatusOK, []byte(`[]`))
			},
			wantReqs: 1, wantKind: latchkey.Unavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.handle)
			cl := newTestClient(t, srv.URL, Options{})
			got, err := cl.ListLinks(context.Background())
			if tt.wantKind != latchkey.Internal {
				checkKind(t, err, tt.wantKind)
				if !strings.Contains(latchkey.Message(err), "paging") {
					t.Errorf("public message %q does not mention paging", latchkey.Message(err))
				}
			} else if err != nil {
				t.Fatalf("ListLinks: %v", err)
			}
			if len(got) != tt.wantLen {
				t.Errorf("got %d links, want %d", len(got), tt.wantLen)
			}
			if n := srv.count(); n != tt.wantReqs {
				t.Errorf("got %d requests, want %d", n, tt.wantReqs)
			}
		})
	}
}
