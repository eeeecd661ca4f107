package stacktest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/webhooks"
)

const burstSize = 24

// signIn is the walk-in fixture for entry id, signed in at at, without a
// job id of its own (so its dedupe key is hashed from its fields).
func signIn(id string, at time.Time) []byte {
	return fixtures.EditEnvoy("envoy-plugin-event-entry_sign_in.json", func(doc map[string]any) {
		doc["payload"].(map[string]any)["id"] = id
		doc["payload"].(map[string]any)["attributes"].(map[string]any)["signed-in-at"] = at.UTC().Format("2006-01-02 15:04:05 UTC")
		doc["meta"].(map[string]any)["job"].(map[string]any)["id"] = "job-" + id
	})
}

// post sends a request through the public server, as a client would.
func post(s *stacktest.Stack, path string, body []byte, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.Server.ServeHTTP(rec, req)
	return rec
}

func webhook(s *stacktest.Stack, body []byte) *httptest.ResponseRecorder {
	return post(s, "/webhooks/envoy", body, http.Header{"X-Envoy-Signature": {webhooks.Sign(body, stacktest.EnvoySecret)}})
}

func api(s *stacktest.Stack, path, body string) *httptest.ResponseRecorder {
	return post(s, path, []byte(body), http.Header{"Authorization": {"Bearer " + stacktest.AdminKey}})
}

// TestBusyFrontDeskOverHTTP: 24 front-desk actions (extend, revoke) and 24
// webhooks sent at once through the public server all succeed, in time,
// and every effect is kept.
func TestBusyFrontDeskOverHTTP(t *testing.T) {
	now := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	s := stacktest.Start(t, stacktest.Options{Start: now})
	if _, err := s.Mappings.Create(context.Background(), mappings.Mapping{LocationID: "177837", FlowID: "359435", GroupIDs: []int64{1},
		DurationMinutes: 240, Delivery: mappings.DeliveryLatchkey}); err != nil {
		t.Fatal(err)
	}
	var visits []int64
	for i := range burstSize {
		rec := webhook(s, signIn(fmt.Sprint("seed-", i), now))
		var out struct {
			VisitID int64 `json:"visit_id"`
		}
		if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.VisitID == 0 {
			t.Fatalf("seed sign-in %d: %d %s", i, rec.Code, rec.Body)
		}
		visits = append(visits, out.VisitID)
	}

	var wg sync.WaitGroup
	codes := make([]int, 2*burstSize)
	began := time.Now()
	for i, id := range visits {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				codes[i] = api(s, fmt.Sprintf("/api/v1/visits/%d/extend", id), `{"minutes":30}`).Code
			} else {
				codes[i] = api(s, fmt.Sprintf("/api/v1/visits/%d/revoke", id), "").Code
			}
		}()
		go func() {
			defer wg.Done()
			codes[burstSize+i] = webhook(s, signIn(fmt.Sprint("new-", i), now)).Code
		}()
	}
	wg.Wait()
	took := time.Since(began)
	for i, c := range codes {
		want := http.StatusOK
		if i >= burstSize {
			want = http.StatusAccepted // a new sign-in: links are made in the queue
		}
		if c != want {
			t.Errorf("request %d: status %d, want %d", i, c, want)
		}
	}
	for i, id := range visits {
		v, err := s.Service.Store().Visit(context.Background(), id)
		switch {
		case err != nil:
			t.Fatal(err)
		case i%2 == 0 && (v.ExtendMinutes != 30 || v.ValidUntil == nil || !v.ValidUntil.Equal(now.Add(270*time.Minute))):
			t.Errorf("visit %d after extend: %d min, until %v", id, v.ExtendMinutes, v.ValidUntil)
		case i%2 == 1 && v.Status != connector.StatusRevoked:
			t.Errorf("visit %d after revoke: %s", id, v.Status)
		}
	}
	if _, n, err := s.Service.Store().List(context.Background(), connector.VisitFilter{}); err != nil || n != 2*burstSize {
		t.Errorf("%d visits stored (err %v), want %d", n, err, 2*burstSize)
	}
	t.Logf("%d actions and %d webhooks over HTTP took %v", burstSize, burstSize, took)
}
