package kisi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// testPNG is a small real PNG, as Kisi renders the QR token.
func testPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.White)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jsonValue(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return v
}

// TestCreateLink sends the documented request body and reads the documented
// create response, plus the QR fields of the current schema.
func TestCreateLink(t *testing.T) {
	reqFixture := fixture(t, "kisi-group-link-create-request.json")
	qr := testPNG(t)
	var created map[string]any
	if err := json.Unmarshal(fixture(t, "kisi-group-link-create-response-docs.json"), &created); err != nil {
		t.Fatal(err)
	}
	created["quick_response_code_token"] = "qr-token-1"
	created["quick_response_code_image"] = base64.StdEncoding.EncodeToString(qr)
	createdBody, _ := json.Marshal(created)

	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, createdBody)
	})
	cl := newTestClient(t, srv.URL, Options{})

	var fix struct {
		GroupLink struct {
			Name       string    `json:"name"`
			GroupID    int64     `json:"group_id"`
			Email      string    `json:"email"`
			ValidFrom  time.Time `json:"valid_from"`
			ValidUntil time.Time `json:"valid_until"`
		} `json:"group_link"`
	}
	if err := json.Unmarshal(reqFixture, &fix); err != nil {
		t.Fatal(err)
	}
	berlin := time.FixedZone("CEST", 2*60*60)
	spec := connector.LinkSpec{
		GroupID:    fix.GroupLink.GroupID,
		Name:       fix.GroupLink.Name,
		Email:      fix.GroupLink.Email,
		ValidFrom:  fix.GroupLink.ValidFrom.In(berlin), // sent as UTC
		ValidUntil: fix.GroupLink.ValidUntil,
		Enabled:    true,
	}
	got, err := cl.CreateLink(context.Background(), spec)
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}

	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/group_links" {
		t.Errorf("got %s %s, want POST /group_links", r.Method, r.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	want := jsonValue(t, reqFixture).(map[string]any)
	want["group_link"].(map[string]any)["link_enabled"] = true
	if d := cmp.Diff(want, jsonValue(t, r.Body)); d != "" {
		t.Errorf("request body (-want +got):\n%s", d)
	}

	wantLink := connector.Link{
		ID:         0,
		GroupID:    0,
		Name:       "string",
		Email:      "user@example.com",
		ValidFrom:  timeRef(mustTime(t, "2021-03-23T05:40:00Z")),
		ValidUntil: timeRef(mustTime(t, "2021-03-29T05:40:00Z")),
		Enabled:    true,
		Secret:     "0",
		QRToken:    "qr-token-1",
		QRImagePNG: qr,
	}
	if d := cmp.Diff(wantLink, got); d != "" {
		t.Errorf("link (-want +got):\n%s", d)
	}
	if _, err := png.Decode(bytes.NewReader(got.QRImagePNG)); err != nil {
		t.Errorf("QRImagePNG is not a PNG: %v", err)
	}
}

func TestCreateLinkOmitsEmptyFields(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, []byte(`{"id":9,"group_id":3,"name":"Ada","email":null,"link_enabled":false,
			"quick_response_code_type":"online","valid_from":null,"valid_until":null,"secret":"s3cr3t",
			"quick_response_code_token":null,"quick_response_code_image":null}`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	got, err := cl.CreateLink(context.Background(), connector.LinkSpec{GroupID: 3, Name: "Ada"})
	if err != nil {
		t.Fatalf("CreateLink: %v", err)
	}
	wantBody := map[string]any{"group_link": map[string]any{
		"group_id": 3.0, "name": "Ada", "link_enabled": false,
	}}
	if d := cmp.Diff(wantBody, jsonValue(t, srv.requests()[0].Body)); d != "" {
		t.Errorf("request body (-want +got):\n%s", d)
	}
	want := connector.Link{ID: 9, GroupID: 3, Name: "Ada", Secret: "s3cr3t"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("link (-want +got):\n%s", d)
	}
}

func TestCreateLinkRefused(t *testing.T) {
	body := misc(t, "validation_422_example")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusUnprocessableEntity, body)
	})
	cl := newTestClient(t, srv.URL, Options{})
	_, err := cl.CreateLink(context.Background(), connector.LinkSpec{GroupID: 12, Name: "Ada"})
	checkKind(t, err, latchkey.Invalid)
	ce := controllerErr(t, err)
	wantCE := &connector.ControllerError{
		Status:  422,
		Message: "email can't be blank or invalid; password can't be blank",
	}
	if d := cmp.Diff(wantCE, ce); d != "" {
		t.Errorf("controller error (-want +got):\n%s", d)
	}
	if got, want := latchkey.Message(err), "controller refused the link: email can't be blank or invalid; password can't be blank"; got != want {
		t.Errorf("public message = %q, want %q", got, want)
	}
	if !strings.Contains(err.Error(), "group 12") {
		t.Errorf("error %q does not name the group", err)
	}
	if strings.Contains(err.Error(), testAPIKey) {
		t.Errorf("error %q contains the API key", err)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("got %d requests, want 1 (422 is not retried)", n)
	}
}

func TestCreateLinkRetryPolicy(t *testing.T) {
	t.Run("429 retried", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				writeJSON(w, http.StatusTooManyRequests, misc(t, "error_schema_example"))
				return
			}
			writeJSON(w, http.StatusOK, []byte(`{"id":5,"group_id":1,"name":"Ada","secret":"x"}`))
		})
		cl := newTestClient(t, srv.URL, Options{})
		waits := recordSleeps(cl)
		got, err := cl.CreateLink(context.Background(), connector.LinkSpec{GroupID: 1, Name: "Ada"})
		if err != nil {
			t.Fatalf("CreateLink: %v", err)
		}
		if got.ID != 5 || srv.count() != 2 {
			t.Errorf("got link %d after %d requests, want link 5 after 2", got.ID, srv.count())
		}
		if d := cmp.Diff([]time.Duration{time.Second}, waits.all()); d != "" {
			t.Errorf("waits (-want +got):\n%s", d)
		}
	})
	t.Run("5xx not retried", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusServiceUnavailable, []byte(`{"error":"Controller unavailable","code":"fac001"}`))
		})
		cl := newTestClient(t, srv.URL, Options{})
		_, err := cl.CreateLink(context.Background(), connector.LinkSpec{GroupID: 1, Name: "Ada"})
		checkKind(t, err, latchkey.Unavailable)
		if n := srv.count(); n != 1 {
			t.Errorf("got %d requests, want 1", n)
		}
	})
	t.Run("connection lost after sending not retried", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		cl := newTestClient(t, srv.URL, Options{})
		_, err := cl.CreateLink(context.Background(), connector.LinkSpec{GroupID: 1, Name: "Ada"})
		checkKind(t, err, latchkey.Unavailable)
		if n := srv.count(); n != 1 {
			t.Errorf("got %d requests, want 1", n)
		}
	})
	t.Run("dial error retried", func(t *testing.T) {
		var dials atomic.Int32
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return nil, errors.New("connection refused")
			},
		}}
		cl := newTestClient(t, "http://controller.invalid", Options{HTTPClient: hc, MaxRetries: 2})
		_, err := cl.CreateLink(context.Background(), connector.LinkSpec{GroupID: 1, Name: "Ada"})
		checkKind(t, err, latchkey.Unavailable)
		if got := latchkey.Message(err); got != "controller unreachable" {
			t.Errorf("public message = %q, want %q", got, "controller unreachable")
		}
		if n := dials.Load(); n != 3 {
			t.Errorf("got %d dials, want 3 (1 + 2 retries)", n)
		}
	})
}

func TestListLinksFixture(t *testing.T) {
	body := fixture(t, "kisi-group-links-list-response.json")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-Collection-Range", "0-0/1")
		writeJSON(w, http.StatusOK, body)
	})
	cl := newTestClient(t, srv.URL, Options{})
	got, err := cl.ListLinks(context.Background())
	if err != nil {
		t.Fatalf("ListLinks: %v", err)
	}
	want := []connector.Link{{
		ID:         1,
		GroupID:    123,
		Name:       "TEST John Test Contractor test@example.com: 2024-01-01 - 2024-12-31",
		Email:      "test@example.com",
		ValidFrom:  timeRef(mustTime(t, "2024-01-01T00:00:00Z")),
		ValidUntil: timeRef(mustTime(t, "2024-12-31T23:59:59Z")),
		Enabled:    true,
		LastUsedAt: timeRef(mustTime(t, "2024-01-15T10:30:00Z")),
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("links (-want +got):\n%s", d)
	}
}

func TestListLinksByGroup(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		g := r.URL.Query().Get("group_id")
		w.Header().Set("X-Collection-Range", "0-0/1")
		writeJSON(w, http.StatusOK, []byte(`[{"id":`+g+`0,"group_id":`+g+`,"name":"n"}]`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	got, err := cl.ListLinks(context.Background(), 4, 5, 4)
	if err != nil {
		t.Fatalf("ListLinks: %v", err)
	}
	var ids []int64
	for _, l := range got {
		ids = append(ids, l.ID)
	}
	if d := cmp.Diff([]int64{40, 50}, ids); d != "" {
		t.Errorf("link ids (-want +got):\n%s", d)
	}
	var queries []string
	for _, r := range srv.requests() {
		queries = append(queries, r.Query)
	}
	wantQ := []string{"group_id=4&limit=250&offset=0", "group_id=5&limit=250&offset=0"}
	if d := cmp.Diff(wantQ, queries); d != "" {
		t.Errorf("queries (-want +got):\n%s", d)
	}
}

func TestUpdateLink(t *testing.T) {
	spec := connector.LinkSpec{
		GroupID:    3,
		Name:       "Ada Lovelace [Visitor]",
		ValidFrom:  mustTime(t, "2026-05-01T09:00:00Z"),
		ValidUntil: mustTime(t, "2026-05-01T17:00:00Z"),
		Enabled:    true,
	}
	t.Run("unsupported", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {})
		cl := newTestClient(t, srv.URL, Options{SupportsUpdate: false})
		_, err := cl.UpdateLink(context.Background(), 42, spec)
		if !errors.Is(err, connector.ErrUpdateUnsupported) {
			t.Fatalf("got %v, want ErrUpdateUnsupported", err)
		}
		if n := srv.count(); n != 0 {
			t.Errorf("got %d requests, want 0", n)
		}
	})
	t.Run("204", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.WriteHeader(http.StatusNoContent)
		})
		cl := newTestClient(t, srv.URL, Options{SupportsUpdate: true})
		got, err := cl.UpdateLink(context.Background(), 42, spec)
		if err != nil {
			t.Fatalf("UpdateLink: %v", err)
		}
		r := srv.requests()[0]
		if r.Method != http.MethodPatch || r.Path != "/group_links/42" {
			t.Errorf("got %s %s, want PATCH /group_links/42", r.Method, r.Path)
		}
		wantBody := map[string]any{"group_link": map[string]any{
			"name": "Ada Lovelace [Visitor]", "valid_from": "2026-05-01T09:00:00Z",
			"valid_until": "2026-05-01T17:00:00Z", "link_enabled": true,
		}}
		if d := cmp.Diff(wantBody, jsonValue(t, r.Body)); d != "" {
			t.Errorf("request body (-want +got):\n%s", d)
		}
		want := connector.Link{
			ID: 42, GroupID: 3, Name: spec.Name, Enabled: true,
			ValidFrom: timeRef(spec.ValidFrom), ValidUntil: timeRef(spec.ValidUntil),
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("link (-want +got):\n%s", d)
		}
	})
	t.Run("200 with link", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, http.StatusOK, []byte(`{"id":42,"group_id":3,"name":"Ada","link_enabled":false,
				"valid_from":"2026-05-01T11:00:00+02:00","valid_until":null}`))
		})
		cl := newTestClient(t, srv.URL, Options{SupportsUpdate: true})
		got, err := cl.UpdateLink(context.Background(), 42, connector.LinkSpec{Name: "Ada"})
		if err != nil {
			t.Fatalf("UpdateLink: %v", err)
		}
		want := connector.Link{ID: 42, GroupID: 3, Name: "Ada", ValidFrom: timeRef(spec.ValidFrom)}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("link (-want +got):\n%s", d)
		}
		wantBody := map[string]any{"group_link": map[string]any{
			"name": "Ada", "valid_from": nil, "valid_until": nil, "link_enabled": false,
		}}
		if d := cmp.Diff(wantBody, jsonValue(t, srv.requests()[0].Body)); d != "" {
			t.Errorf("request body (-want +got):\n%s", d)
		}
	})
}

func TestDeleteLink(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method != http.MethodDelete {
			t.Errorf("method = %s, want DELETE", r.Method)
		}
		if r.URL.Path == "/group_links/42" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusNotFound, []byte(`{"error":"Group link not found","code":"000000"}`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	if err := cl.DeleteLink(context.Background(), 42); err != nil {
		t.Fatalf("DeleteLink(42): %v", err)
	}
	err := cl.DeleteLink(context.Background(), 43)
	checkKind(t, err, latchkey.NotFound)
	if got, want := latchkey.Message(err), "link 43 not found on the controller"; got != want {
		t.Errorf("public message = %q, want %q", got, want)
	}
	if ce := controllerErr(t, err); ce.Status != 404 || ce.Message != "Group link not found" {
		t.Errorf("controller error = %+v, want 404 Group link not found", ce)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("got %d requests, want 2 (404 is not retried)", n)
	}
}
