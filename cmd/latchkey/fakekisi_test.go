package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKisi imitates the part of Kisi's REST API latchkey uses: one group,
// group links (create, list, delete) and the locks a link holder sees.
type fakeKisi struct {
	URL string
	Key string

	// createDelay holds every POST /group_links this long before answering.
	createDelay time.Duration
	// created receives the name of every link once its POST arrived.
	created chan string

	mu       sync.Mutex
	links    map[int64]fakeLink
	nextID   int64
	answered []time.Time // when each POST /group_links was answered
	aborted  int         // POSTs whose client went away before the answer
	// locksBlock, while set, holds GET /locks until it is closed.
	locksBlock chan struct{}
	locksSeen  chan struct{}
}

type fakeLink struct {
	ID         int64  `json:"id"`
	GroupID    int64  `json:"group_id"`
	Name       string `json:"name"`
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	Enabled    bool   `json:"link_enabled"`
	secret     string
}

func newFakeKisi(t testing.TB, createDelay time.Duration) *fakeKisi {
	t.Helper()
	f := &fakeKisi{Key: "kisi-" + randomHex(t, 8), links: map[int64]fakeLink{}, nextID: 100, createDelay: createDelay,
		created: make(chan string, 16), locksSeen: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /groups", f.admin(f.groups))
	mux.HandleFunc("POST /group_links", f.admin(f.createLink))
	mux.HandleFunc("GET /group_links", f.admin(f.listLinks))
	mux.HandleFunc("DELETE /group_links/{id}", f.admin(f.deleteLink))
	mux.HandleFunc("GET /locks", f.locks)
	mux.HandleFunc("GET /group_locks", f.admin(f.groupLocks))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found: " + r.Method + " " + r.URL.Path, "code": "000404"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		f.mu.Lock()
		if f.locksBlock != nil {
			close(f.locksBlock)
			f.locksBlock = nil
		}
		f.mu.Unlock()
		srv.Close()
	})
	f.URL = srv.URL
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func collectionRange(n int) string {
	if n == 0 {
		return "*/0"
	}
	return fmt.Sprintf("0-%d/%d", n-1, n)
}

func (f *fakeKisi) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "KISI-LOGIN "+f.Key {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "not authenticated", "code": "000401"})
			return
		}
		h(w, r)
	}
}

func (f *fakeKisi) groups(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Collection-Range", "0-0/1")
	writeJSON(w, http.StatusOK, []map[string]any{{
		"id": 1, "name": "Visitors", "description": nil, "place_id": 1, "locks_count": 1,
		"members_count": 0, "managers_count": 0, "created_at": "2026-01-01T00:00:00.000Z",
		"updated_at": "2026-01-01T00:00:00.000Z",
	}})
}

func (f *fakeKisi) createLink(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GroupLink struct {
			GroupID     int64  `json:"group_id"`
			Name        string `json:"name"`
			ValidFrom   string `json:"valid_from"`
			ValidUntil  string `json:"valid_until"`
			LinkEnabled bool   `json:"link_enabled"`
		} `json:"group_link"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": map[string]any{"group_link": []string{err.Error()}}})
		return
	}
	f.created <- req.GroupLink.Name
	if f.createDelay > 0 {
		select {
		case <-time.After(f.createDelay):
		case <-r.Context().Done():
			f.mu.Lock()
			f.aborted++
			f.mu.Unlock()
			return
		}
	}
	f.mu.Lock()
	f.nextID++
	l := fakeLink{ID: f.nextID, GroupID: req.GroupLink.GroupID, Name: req.GroupLink.Name,
		ValidFrom: req.GroupLink.ValidFrom, ValidUntil: req.GroupLink.ValidUntil, Enabled: req.GroupLink.LinkEnabled,
		secret: fmt.Sprintf("secret-%d-%s", f.nextID, strings.Repeat("x", 8))}
	f.links[l.ID] = l
	// Stamped before the answer goes out: the client cannot have it earlier.
	f.answered = append(f.answered, time.Now())
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": l.ID, "group_id": l.GroupID, "name": l.Name, "email": nil,
		"valid_from": l.ValidFrom, "valid_until": l.ValidUntil, "link_enabled": l.Enabled,
		"secret": l.secret, "quick_response_code_token": "qr-" + l.secret,
		"created_at": time.Now().UTC().Format(time.RFC3339),
	})
}

func (f *fakeKisi) listLinks(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var out []fakeLink
	for _, l := range f.links {
		if g := r.URL.Query().Get("group_id"); g == "" || g == fmt.Sprint(l.GroupID) {
			out = append(out, l)
		}
	}
	f.mu.Unlock()
	if out == nil {
		out = []fakeLink{}
	}
	w.Header().Set("X-Collection-Range", collectionRange(len(out)))
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeKisi) deleteLink(w http.ResponseWriter, r *http.Request) {
	var id int64
	fmt.Sscan(r.PathValue("id"), &id)
	f.mu.Lock()
	_, ok := f.links[id]
	delete(f.links, id)
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found", "code": "000404"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// locks lists the one door, to the admin and to a link's holder alike.
func (f *fakeKisi) locks(w http.ResponseWriter, r *http.Request) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "KISI-GROUP-LINK ")
	f.mu.Lock()
	known := r.Header.Get("Authorization") == "KISI-LOGIN "+f.Key
	for _, l := range f.links {
		known = known || (ok && l.secret == secret)
	}
	block := f.locksBlock
	f.mu.Unlock()
	if !known {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "link invalid", "code": "ea8ae6"})
		return
	}
	select {
	case f.locksSeen <- struct{}{}:
	default:
	}
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-Collection-Range", "0-0/1")
	writeJSON(w, http.StatusOK, []map[string]any{{
		"id": 1, "name": "Front door", "online": true, "locked_down": false,
		"place_id": 1, "place": map[string]any{"id": 1, "name": "HQ"},
	}})
}

// groupLocks puts the one door in group 1.
func (f *fakeKisi) groupLocks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Collection-Range", "0-0/1")
	writeJSON(w, http.StatusOK, []map[string]any{{"id": 1, "group_id": 1, "lock_id": 1,
		"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}})
}

// answeredTimes returns when each create was answered.
func (f *fakeKisi) answeredTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.answered...)
}

func (f *fakeKisi) abortedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.aborted
}

// blockLocks makes GET /locks wait until the returned func is called.
func (f *fakeKisi) blockLocks() (release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.locksBlock = ch
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.locksBlock == ch {
			close(ch)
			f.locksBlock = nil
		}
	}
}
