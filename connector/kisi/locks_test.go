package kisi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

func TestLinkLocks(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-Collection-Range", "0-1/2")
		writeJSON(w, http.StatusOK, []byte(`[
			{"id":7,"configured":true,"description":null,"locked_down_since":null,"locked_down":false,
			 "name":"Front door","online":true,"open":false,"unlocked_until":null,"unlocked":false,
			 "place_id":10,"place":{"id":10,"name":"HQ","latitude":null,"longitude":null}},
			{"id":8,"configured":true,"description":"side","locked_down_since":"2026-01-01T00:00:00Z",
			 "locked_down":true,"name":"Side door","online":null,"open":false,"unlocked_until":null,
			 "unlocked":false,"place_id":10,"place":{"id":10,"name":"HQ"}}]`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	got, err := cl.LinkLocks(context.Background(), testSecret)
	if err != nil {
		t.Fatalf("LinkLocks: %v", err)
	}
	want := []connector.Lock{
		{ID: 7, Name: "Front door", Online: true, PlaceID: 10, PlaceName: "HQ"},
		{ID: 8, Name: "Side door", LockedDown: true, PlaceID: 10, PlaceName: "HQ"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("locks (-want +got):\n%s", d)
	}
	r := srv.requests()[0]
	if r.Path != "/locks" || r.Header.Get("Authorization") != "KISI-GROUP-LINK "+testSecret {
		t.Errorf("got %s with Authorization %q, want /locks as the link holder", r.Path, r.Header.Get("Authorization"))
	}
}

func TestLinkLocksUnauthorized(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusUnauthorized, misc(t, "error_401_example"))
	})
	cl := newTestClient(t, srv.URL, Options{})
	_, err := cl.LinkLocks(context.Background(), testSecret)
	checkKind(t, err, latchkey.Unauthorized)
	if got, want := controllerErr(t, err).Code, "abc123"; got != want {
		t.Errorf("code = %q, want %q", got, want)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error %q contains the link secret", err)
	}
	if got, want := latchkey.Message(err), "controller rejected the link secret"; got != want {
		t.Errorf("public message = %q, want %q", got, want)
	}
}

func TestUnlock(t *testing.T) {
	t.Run("200", func(t *testing.T) {
		body := misc(t, "unlock_200")
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, body)
		})
		cl := newTestClient(t, srv.URL, Options{})
		if err := cl.Unlock(context.Background(), testSecret, 7); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		r := srv.requests()[0]
		if r.Method != http.MethodPost || r.Path != "/locks/7/unlock" {
			t.Errorf("got %s %s, want POST /locks/7/unlock", r.Method, r.Path)
		}
		if got := r.Header.Get("Authorization"); got != "KISI-GROUP-LINK "+testSecret {
			t.Errorf("Authorization = %q, want the group link scheme", got)
		}
	})
	t.Run("403 with code", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusForbidden, []byte(`{"error":"Your access is not yet valid.","code":"f358de"}`))
		})
		cl := newTestClient(t, srv.URL, Options{})
		err := cl.Unlock(context.Background(), testSecret, 7)
		checkKind(t, err, latchkey.Forbidden)
		want := &connector.ControllerError{Status: 403, Code: "f358de", Message: "Your access is not yet valid.", Refusal: connector.RefusedNotStarted}
		if d := cmp.Diff(want, controllerErr(t, err)); d != "" {
			t.Errorf("controller error (-want +got):\n%s", d)
		}
		if got, want := latchkey.Message(err), "controller denied the unlock of lock 7: Your access is not yet valid."; got != want {
			t.Errorf("public message = %q, want %q", got, want)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("error %q contains the link secret", err)
		}
	})
	t.Run("429 not retried", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, []byte(`{"error":"Too many requests","code":"ffffff"}`))
		})
		cl := newTestClient(t, srv.URL, Options{})
		waits := recordSleeps(cl)
		err := cl.Unlock(context.Background(), testSecret, 7)
		checkKind(t, err, latchkey.TooMany)
		if n := srv.count(); n != 1 {
			t.Errorf("got %d requests, want 1", n)
		}
		if w := waits.all(); len(w) != 0 {
			t.Errorf("waited %v, want no wait", w)
		}
	})
	t.Run("503 not retried", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"Controller unavailable","code":"fac001"}`))
		})
		cl := newTestClient(t, srv.URL, Options{})
		err := cl.Unlock(context.Background(), testSecret, 7)
		checkKind(t, err, latchkey.Unavailable)
		if n := srv.count(); n != 1 {
			t.Errorf("got %d requests, want 1", n)
		}
	})
	t.Run("empty secret", func(t *testing.T) {
		cl := newTestClient(t, "http://controller.invalid", Options{})
		err := cl.Unlock(context.Background(), "", 7)
		checkKind(t, err, latchkey.Invalid)
		var le *latchkey.Error
		if !errors.As(err, &le) {
			t.Fatalf("error %v is not a *latchkey.Error", err)
		}
	})
}
