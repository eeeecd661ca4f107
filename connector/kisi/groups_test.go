package kisi

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/connector"
)

func TestListGroups(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/groups" {
			t.Errorf("path = %s, want /groups", r.URL.Path)
		}
		switch r.URL.Query().Get("offset") {
		case "0":
			w.Header().Set("X-Collection-Range", "0-0/2")
			writeJSON(w, http.StatusOK, []byte(`[{"id":1,"resource_type":"Group","name":"Visitors",
				"place_id":10,"place":{"id":10,"name":"HQ"},"locks_count":3,"login_enabled":false}]`))
		default:
			w.Header().Set("X-Collection-Range", "1-1/2")
			writeJSON(w, http.StatusOK, []byte(`[{"id":2,"name":"Org-wide","place_id":null,"locks_count":0}]`))
		}
	})
	cl := newTestClient(t, srv.URL, Options{})
	got, err := cl.ListGroups(context.Background())
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	want := []connector.Group{
		{ID: 1, Name: "Visitors", PlaceID: 10, LocksCount: 3},
		{ID: 2, Name: "Org-wide"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
}
