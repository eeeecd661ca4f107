package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/accounts"
	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secretbox"
	"github.com/latchkey/latchkey/internal/stacktest"
	"github.com/latchkey/latchkey/mappings"
	"github.com/latchkey/latchkey/web"
)

const adminKey = stacktest.AdminKey

type apiEnv struct {
	srv      *web.Server
	maps     *mappings.Store
	q        *uiQueue
	accounts *accounts.Store
	db       *gorm.DB
	outbox   *mail.Outbox
}

// sealedOutbox is the embedded mailer as serve builds it: bodies sealed.
func sealedOutbox(t testing.TB, db *gorm.DB) *mail.Outbox {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return mail.NewOutbox(db).WithSealer(box)
}

func newAPIEnv(t *testing.T) apiEnv {
	t.Helper()
	q := &uiQueue{}
	s := stacktest.Start(t, stacktest.Options{Queue: q})
	q.svc = s.Service
	return apiEnv{srv: s.Server, maps: s.Mappings, q: q, accounts: s.Accounts, db: s.DB, outbox: s.Outbox}
}

func (e apiEnv) do(t *testing.T, method, path, body, key string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

const demoMapping = `{"location_id":"177837","flow_id":"359435","group_ids":[1],"duration_minutes":240,"advance_minutes":30,"only_invited":false,"revoke_on_sign_out":true,"grace_minutes":0,"until_end_of_day":false,"delivery":"latchkey"}`

// TestMappingsAPI: each row starts from a fresh stack, with the demo
// mapping stored (id 1) when seeded, and sends first what first names.
func TestMappingsAPI(t *testing.T) {
	const key = stacktest.AdminKey
	tests := []struct {
		name         string
		seeded       bool
		first        string // "METHOD path" sent before the request
		method, path string
		body, key    string
		want         int
		contains     string
	}{
		{"no key", false, "", "GET", "/api/v1/mappings", "", "", http.StatusUnauthorized, "missing or invalid API key"},
		{"wrong key", false, "", "GET", "/api/v1/mappings", "", "nope", http.StatusUnauthorized, "missing or invalid API key"},
		{"empty list", false, "", "GET", "/api/v1/mappings", "", key, http.StatusOK, "[]"},
		{"create", false, "", "POST", "/api/v1/mappings", demoMapping, key, http.StatusCreated, `"id":1`},
		{"duplicate flow", true, "", "POST", "/api/v1/mappings", demoMapping, key, http.StatusConflict, "already exists"},
		{"unknown group", false, "", "POST", "/api/v1/mappings", strings.Replace(demoMapping, `[1]`, `[99]`, 1), key, http.StatusBadRequest, "group 99 does not exist on the controller"},
		{"negative duration", false, "", "POST", "/api/v1/mappings", strings.Replace(demoMapping, `240`, `-5`, 1), key, http.StatusBadRequest, "duration_minutes"},
		{"bad json", false, "", "POST", "/api/v1/mappings", `{"location_id":`, key, http.StatusBadRequest, ""},
		{"get", true, "", "GET", "/api/v1/mappings/1", "", key, http.StatusOK, `"flow_id":"359435"`},
		{"get missing", true, "", "GET", "/api/v1/mappings/42", "", key, http.StatusNotFound, "mapping not found"},
		{"bad id", false, "", "GET", "/api/v1/mappings/x", "", key, http.StatusBadRequest, "id must be a positive number"},
		{"update", true, "", "PUT", "/api/v1/mappings/1", strings.Replace(demoMapping, `240`, `60`, 1), key, http.StatusOK, `"duration_minutes":60`},
		{"groups", false, "", "GET", "/api/v1/groups", "", key, http.StatusOK, `"name":"Visitors"`},
		{"preview invite", true, "", "POST", "/api/v1/mappings/preview", `{"mapping_id":1,"kind":"invite","arrival":"2026-03-08T15:00:00Z","time_zone":"America/New_York"}`, key, http.StatusOK, `"valid_from":"2026-03-08T14:30:00Z","valid_until":"2026-03-08T19:00:00Z"`},
		{"preview local time", true, "", "POST", "/api/v1/mappings/preview", `{"mapping_id":1,"kind":"walk-in","arrival":"2026-03-08T15:00:00Z","time_zone":"America/New_York"}`, key, http.StatusOK, `"valid_from_local":"2026-03-08 11:00 EDT"`},
		{"preview bad zone", true, "", "POST", "/api/v1/mappings/preview", `{"mapping_id":1,"arrival":"2026-03-08T15:00:00Z","time_zone":"Mars/Base"}`, key, http.StatusBadRequest, "not an IANA zone"},
		{"preview without arrival", true, "", "POST", "/api/v1/mappings/preview", `{"mapping_id":1}`, key, http.StatusBadRequest, "arrival is required"},
		{"delete", true, "", "DELETE", "/api/v1/mappings/1", "", key, http.StatusNoContent, ""},
		{"delete again", true, "DELETE /api/v1/mappings/1", "DELETE", "/api/v1/mappings/1", "", key, http.StatusNotFound, "mapping not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := stacktest.Start(t, stacktest.Options{})
			if tt.seeded {
				if code, body := serve(s, "POST", "/api/v1/mappings", demoMapping, key); code != http.StatusCreated {
					t.Fatalf("seed mapping: %d %s", code, body)
				}
			}
			if method, path, ok := strings.Cut(tt.first, " "); ok {
				if code, body := serve(s, method, path, "", key); code >= 400 {
					t.Fatalf("%s: %d %s", tt.first, code, body)
				}
			}
			code, body := serve(s, tt.method, tt.path, tt.body, tt.key)
			if code != tt.want || !strings.Contains(body, tt.contains) {
				t.Errorf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, code, body, tt.want, tt.contains)
			}
		})
	}
}

// serve sends one request through the stack's public server.
func serve(s *stacktest.Stack, method, path, body, key string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	s.Server.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestVisitsAPIValidation(t *testing.T) {
	e := newAPIEnv(t)
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"list empty", "GET", "/api/v1/visits", "", http.StatusOK},
		{"bad status", "GET", "/api/v1/visits?status=party", "", http.StatusBadRequest},
		{"bad limit", "GET", "/api/v1/visits?limit=-1", "", http.StatusBadRequest},
		{"missing visit", "GET", "/api/v1/visits/9", "", http.StatusNotFound},
		{"revoke missing", "POST", "/api/v1/visits/9/revoke", "", http.StatusNotFound},
		{"extend zero", "POST", "/api/v1/visits/9/extend", `{"minutes":0}`, http.StatusBadRequest},
		{"outbox", "GET", "/api/v1/outbox", "", http.StatusOK},
	}
	for _, tt := range tests {
		code, body := e.do(t, tt.method, tt.path, tt.body, adminKey)
		if code != tt.want {
			t.Errorf("%s: %s %s = %d %s; want %d", tt.name, tt.method, tt.path, code, body, tt.want)
		}
		if code >= 400 {
			var errBody struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &errBody); err != nil || errBody.Error.Message == "" {
				t.Errorf("%s: error body %s is not {\"error\":{\"code\",\"message\"}}", tt.name, body)
			}
		}
	}
}

func TestPassUnknownAndHeaders(t *testing.T) {
	e := newAPIEnv(t)
	req := httptest.NewRequest("GET", "/v/"+strings.Repeat("x", 43), nil)
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown pass: got %d, want 404", rec.Code)
	}
	if got := rec.Header().Get("Referrer-Policy"); got != "no-referrer" {
		t.Fatalf("Referrer-Policy %q, want no-referrer", got)
	}
	req = httptest.NewRequest("POST", "/v/"+strings.Repeat("x", 43)+"/locks/1/unlock", nil)
	req.Header.Set("Accept", "application/json")
	rec = httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"message"`) {
		t.Fatalf("unlock with unknown pass: got %d %s, want 404 with a message", rec.Code, rec.Body.String())
	}
}

// TestAPIKeysFromTheUI: a key an admin created works on /api/v1 until it is
// revoked.
func TestAPIKeysFromTheUI(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	key, k, err := e.accounts.CreateAPIKey(ctx, "reception tablet", "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.do(t, "GET", "/api/v1/visits", "", key); code != http.StatusOK {
		t.Fatalf("with a created key: got %d %s, want 200", code, body)
	}
	if err := e.accounts.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.do(t, "GET", "/api/v1/visits", "", key); code != http.StatusUnauthorized {
		t.Fatalf("with a revoked key: got %d, want 401", code)
	}
}

// TestOutboxAPIOpensSealedMail: the outbox table holds no pass URL, and GET
// /api/v1/outbox answers with the message as it was sent.
func TestOutboxAPIOpensSealedMail(t *testing.T) {
	e := newAPIEnv(t)
	const token = "Zm9vYmFyLXBhc3MtdG9rZW4tMDEyMzQ1Njc4OWFiY2RlZg"
	pass := "http://latchkey.test/v/" + token
	m := mail.Message{To: "ada@example.com", Subject: "Your access", Text: "Open " + pass, HTML: `<a href="` + pass + `">Open</a>`, Key: "v1:access"}
	if err := e.outbox.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Text, HTML, Attachments string }
	if err := e.db.Raw(`SELECT text, html, attachments FROM outbox_messages`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d outbox rows, want 1", len(rows))
	}
	if r := rows[0]; strings.Contains(r.Text+r.HTML+r.Attachments, token) {
		t.Errorf("the stored row holds the pass token: %+v", r)
	}
	code, body := e.do(t, http.MethodGet, "/api/v1/outbox", "", adminKey)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/outbox: %d %s", code, body)
	}
	var got []struct{ To, Subject, Text, HTML string }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("outbox answer %s: %v", body, err)
	}
	want := []struct{ To, Subject, Text, HTML string }{{m.To, m.Subject, m.Text, m.HTML}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("outbox answer (-want +got):\n%s", d)
	}
}

// TestWrongAPIKeysAreThrottled: failed bearer attempts from one address
// meet a 429 with a JSON message, while valid keys go on, from that
// address too, and other addresses are not affected.
func TestWrongAPIKeysAreThrottled(t *testing.T) {
	e := newAPIEnv(t)
	call := func(addr, key string) (int, string, http.Header) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/mappings", nil)
		req.RemoteAddr = addr + ":4000"
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String(), rec.Header()
	}
	for i := 0; i < 50; i++ {
		if code, body, _ := call("198.51.100.7", adminKey); code != http.StatusOK {
			t.Fatalf("valid key, request %d: %d %s", i, code, body)
		}
	}
	var throttled int
	var last string
	var hdr http.Header
	for i := 0; i < 40; i++ {
		code, body, h := call("203.0.113.5", fmt.Sprintf("guess-%d", i))
		switch code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			throttled++
			last, hdr = body, h
		default:
			t.Fatalf("guess %d: %d %s", i, code, body)
		}
	}
	if throttled < 25 {
		t.Fatalf("40 wrong keys at once: %d throttled, want most", throttled)
	}
	var msg struct{ Message string }
	if err := json.Unmarshal([]byte(last), &msg); err != nil || msg.Message == "" || hdr.Get("Retry-After") == "" {
		t.Errorf("429 answer %q (Retry-After %q): want JSON with a message and Retry-After", last, hdr.Get("Retry-After"))
	}
	if code, _, _ := call("203.0.113.5", adminKey); code != http.StatusOK {
		t.Errorf("throttled address with the right key: %d, want 200 (wrong guesses from there must not lock the desk out)", code)
	}
	if code, _, _ := call("203.0.113.5", "yet another guess"); code != http.StatusTooManyRequests {
		t.Errorf("throttled address, wrong key: %d, want 429", code)
	}
	if code, _, _ := call("198.51.100.7", adminKey); code != http.StatusOK {
		t.Errorf("valid key from another address while one is throttled: %d, want 200", code)
	}
	if code, _, _ := call("192.0.2.44", "one wrong guess"); code != http.StatusUnauthorized {
		t.Errorf("first wrong key from a fresh address: %d, want 401", code)
	}
}
