package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/latchkey/latchkey/webhooks"
)

// The demo mapping: Envoy location 177837, flow 359435 -> "Visitors".
const (
	demoLocation = "177837"
	demoFlow     = "359435"
)

var client = &http.Client{Timeout: 10 * time.Second}

// entryBody returns a signed-webhook body for an entry event of guest n.
// jobID makes a delivery distinct; the same jobID is a retry.
func entryBody(event, entryID, jobID string, n int, at time.Time) []byte {
	sql := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }
	attrs := map[string]any{"full-name": fmt.Sprintf("Guest %d", n), "email": fmt.Sprintf("guest%d-%s@faults.example", n, entryID),
		"signed-in-at": sql(at), "flow-name": "Visitor", "approval-status": map[string]any{"status": "approved"}}
	if event == "entry_sign_out" {
		// Signed out at at, so access is revoked at once (no grace).
		attrs["signed-in-at"], attrs["signed-out-at"] = sql(at.Add(-time.Minute)), sql(at)
	}
	body := map[string]any{
		"meta": map[string]any{"event": event, "plugin_id": "00000000-0000-0000-0000-000000000000", "install_id": "1",
			"job":      map[string]any{"id": jobID, "name": event, "identifier": "vr:entry:" + entryID},
			"location": map[string]any{"id": demoLocation, "type": "locations", "attributes": map[string]any{"name": "HQ", "timezone": "Europe/Berlin"}},
			"config":   map[string]any{}},
		"payload": map[string]any{"id": entryID, "type": "entries", "attributes": attrs, "relationships": map[string]any{
			"location": map[string]any{"data": map[string]any{"type": "locations", "id": demoLocation}},
			"flow":     map[string]any{"data": map[string]any{"type": "flows", "id": demoFlow}}}},
	}
	b, _ := json.Marshal(body)
	return b
}

// post sends a signed webhook; it returns the status and the visit id of
// an accepted delivery. A transport error is status 0.
func (s *server) post(body []byte) (int, int64) {
	req, _ := http.NewRequest(http.MethodPost, s.base+"/webhooks/envoy", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Envoy-Signature", webhooks.Sign(body, s.secret))
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var a struct {
		VisitID int64 `json:"visit_id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a.VisitID
}

type visit struct {
	ID       int64  `json:"id"`
	SourceID string `json:"source_id"`
	Email    string `json:"email"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Synced   bool   `json:"synced"`
	Links    []struct {
		GroupID int64 `json:"group_id"`
		LinkID  int64 `json:"link_id"`
		Removed bool  `json:"removed"`
	} `json:"links"`
}

// liveLinks counts the visit's links that exist on the controller.
func (v visit) liveLinks() int {
	n := 0
	for _, l := range v.Links {
		if l.LinkID != 0 && !l.Removed {
			n++
		}
	}
	return n
}

func (s *server) getJSON(t *testing.T, path, auth string, dst any) (http.Header, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	req.Header.Set("Authorization", auth)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, raw)
	}
	return resp.Header, json.NewDecoder(resp.Body).Decode(dst)
}

func (s *server) visit(t *testing.T, id int64) (visit, error) {
	var v visit
	_, err := s.getJSON(t, "/api/v1/visits/"+strconv.FormatInt(id, 10), "Bearer "+s.apiKey, &v)
	return v, err
}

// waitVisits polls every visit in want until its check passes, or fails
// the test after d naming the first visit still wrong.
func (s *server) waitVisits(t *testing.T, want map[int64]func(visit) bool, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	pending := map[int64]bool{}
	for id := range want {
		pending[id] = true
	}
	var last visit
	for time.Since(start) < d {
		for id := range pending {
			v, err := s.visit(t, id)
			if err == nil && want[id](v) {
				delete(pending, id)
				continue
			}
			last = v
		}
		if len(pending) == 0 {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%d of %d visits not in their final state after %s; e.g. %+v", len(pending), len(want), d, last)
	return 0
}

func activeWithLink(v visit) bool { return v.Synced && v.Status == "active" && v.liveLinks() == 1 }

func revokedWithoutLink(v visit) bool {
	return v.Synced && v.Status == "revoked" && v.liveLinks() == 0
}

// outboxCount returns how many captured emails went to addr.
func (s *server) outboxCount(t *testing.T, addr string) int {
	t.Helper()
	var msgs []json.RawMessage
	h, err := s.getJSON(t, "/api/v1/outbox?limit=1&to="+addr, "Bearer "+s.apiKey, &msgs)
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	n, _ := strconv.Atoi(h.Get("X-Total-Count"))
	return n
}

// controllerLinks counts the group links on a Kisi-compatible controller
// at base (paged with limit/offset and X-Collection-Range).
func controllerLinks(t *testing.T, base, key string) int {
	t.Helper()
	s := &server{base: base}
	total := 0
	for offset := 0; ; offset += 100 {
		var page []json.RawMessage
		if _, err := s.getJSON(t, fmt.Sprintf("/group_links?limit=100&offset=%d", offset), "KISI-LOGIN "+key, &page); err != nil {
			t.Fatalf("controller links: %v", err)
		}
		total += len(page)
		if len(page) < 100 {
			return total
		}
	}
}
