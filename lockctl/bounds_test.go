package lockctl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wantFieldError checks a 422 Kisi Errors answer naming field.
func wantFieldError(t testing.TB, rec *httptest.ResponseRecorder, field string) {
	t.Helper()
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422; body %s", rec.Code, rec.Body.String())
	}
	got := decodeStrict[struct {
		Errors map[string][]string `json:"errors"`
	}](t, rec)
	if len(got.Errors[field]) == 0 {
		t.Fatalf("errors %v, want one on %q", got.Errors, field)
	}
}

func TestLinkWindowYearBounds(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	tests := []struct {
		name, field, value string
	}{
		{"until after 9999", "valid_until", "9999-12-31T23:00:00-05:00"},
		{"until in year 0", "valid_until", "0000-01-01T00:00:00Z"},
		{"from before 1970", "valid_from", "1969-12-31T23:59:59Z"},
		{"from after 9999", "valid_from", "9999-12-31T23:59:59-01:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(req{method: "POST", path: "/group_links", auth: admin(), body: map[string]any{"group_link": map[string]any{
				"group_id": f.visitors, "name": "Out of range", tt.field: tt.value}}})
			wantFieldError(t, rec, tt.field)
		})
	}
	l := e.link(f.visitors, map[string]any{"valid_until": "9999-12-31T23:59:59Z"})
	wantFieldError(t, e.do(req{method: "PATCH", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin(),
		body: map[string]any{"group_link": map[string]any{"valid_until": "9999-12-31T23:59:59-05:00"}}}), "valid_until")
	links := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/group_links", auth: admin()}))
	if len(links) != 1 || links[0]["valid_until"] != "9999-12-31T23:59:59Z" {
		t.Fatalf("links %v, want the one valid until 9999-12-31T23:59:59Z", links)
	}
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin()})

	// An event set whose interval ends past 9999 is refused, not a 500.
	wantFieldError(t, e.do(req{method: "POST", path: "/event_sets", auth: admin(), body: map[string]any{
		"event_set": map[string]any{"interval": "9999-12-31T23:00:00Z/PT2H"}}}), "interval")
}

func TestStoredTextBounds(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	long := func(n int) string { return strings.Repeat("é", n) }
	tests := []struct {
		name, path, wrap, field string
		fields                  map[string]any
	}{
		{"link name", "/group_links", "group_link", "name", map[string]any{"group_id": f.visitors, "name": long(maxLinkName + 1)}},
		{"link name NUL", "/group_links", "group_link", "name", map[string]any{"group_id": f.visitors, "name": "a\x00b"}},
		{"link email", "/group_links", "group_link", "email", map[string]any{"group_id": f.visitors, "name": "x", "email": strings.Repeat("a", maxEmail) + "@example.com"}},
		{"link email NUL", "/group_links", "group_link", "email", map[string]any{"group_id": f.visitors, "name": "x", "email": "a\x00@example.com"}},
		{"place name", "/places", "place", "name", map[string]any{"name": long(maxName + 1)}},
		{"place name NUL", "/places", "place", "name", map[string]any{"name": "H\x00Q"}},
		{"place description", "/places", "place", "description", map[string]any{"name": "P", "description": long(maxDescription + 1)}},
		{"place address", "/places", "place", "address", map[string]any{"name": "P", "address": long(maxAddress + 1)}},
		{"lock name", "/locks", "lock", "name", map[string]any{"place_id": f.placeID, "name": long(maxName + 1)}},
		{"lock description NUL", "/locks", "lock", "description", map[string]any{"place_id": f.placeID, "name": "L", "description": "\x00"}},
		{"group name", "/groups", "group", "name", map[string]any{"place_id": f.placeID, "name": long(maxName + 1)}},
		{"group description", "/groups", "group", "description", map[string]any{"place_id": f.placeID, "name": "G", "description": long(maxDescription + 1)}},
		{"login email", "/logins", "login", "email", map[string]any{"email": strings.Repeat("a", maxEmail) + "@example.com"}},
		{"login device", "/logins", "login", "device_brand", map[string]any{"device_brand": long(maxDevice + 1)}},
		{"login os NUL", "/logins", "login", "os_name", map[string]any{"os_name": "x\x00"}},
		{"event set actor type", "/event_sets", "event_set", "event_actor_type", map[string]any{"event_actor_type": "x\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.counts()
			wantFieldError(t, e.do(req{method: "POST", path: tt.path, auth: admin(), body: map[string]any{tt.wrap: tt.fields}}), tt.field)
			if d := cmp.Diff(before, e.counts()); d != "" {
				t.Errorf("rows stored by a refused write (-before +after):\n%s", d)
			}
		})
	}
	// At the bound exactly, it is stored.
	e.link(f.visitors, map[string]any{"name": long(maxLinkName)})
	e.must(200, req{method: "POST", path: "/places", auth: admin(), body: map[string]any{"place": map[string]any{"name": long(maxName)}}})

	// Updates are bounded too.
	e.must(200, req{method: "PATCH", path: fmt.Sprintf("/locks/%d", f.front), auth: admin(),
		body: map[string]any{"lock": map[string]any{"description": "ok"}}})
	wantFieldError(t, e.do(req{method: "PATCH", path: fmt.Sprintf("/locks/%d", f.front), auth: admin(),
		body: map[string]any{"lock": map[string]any{"name": long(maxName + 1)}}}), "name")
	wantFieldError(t, e.do(req{method: "PATCH", path: fmt.Sprintf("/locks/%d", f.front), auth: admin(),
		body: map[string]any{"lock": map[string]any{"description": "a\x00"}}}), "description")
}

// counts returns the number of rows in each of lockctl's tables.
func (e *env) counts() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for _, m := range []any{&Place{}, &Lock{}, &Group{}, &GroupLock{}, &GroupLink{}, &Login{}, &Event{}, &EventSet{},
		&User{}, &Guest{}, &AccessKey{}, &RoleAssignment{}} {
		var n int64
		if err := e.c.store.db.Model(m).Count(&n).Error; err != nil {
			e.t.Fatalf("count %T: %v", m, err)
		}
		out[fmt.Sprintf("%T", m)] = n
	}
	return out
}

func TestQueryBounds(t *testing.T) {
	e := newEnv(t, nil)
	e.site()
	ids := make([]string, maxIDs+1)
	for i := range ids {
		ids[i] = fmt.Sprint(i + 1)
	}
	for _, path := range []string{"/group_links", "/places", "/locks", "/groups", "/users", "/members", "/guests",
		"/role_assignments", "/shares"} {
		t.Run(path, func(t *testing.T) {
			e.must(200, req{method: "GET", path: path + "?ids=" + strings.Join(ids[:maxIDs], ","), auth: admin()})
			wantError(t, e.do(req{method: "GET", path: path + "?ids=" + strings.Join(ids, ","), auth: admin()}), 400, CodeBadRequest)
			wantError(t, e.do(req{method: "GET", path: path + "?query=a%00b", auth: admin()}), 400, CodeBadRequest)
			wantError(t, e.do(req{method: "GET", path: path + "?query=%ff", auth: admin()}), 400, CodeBadRequest)
			wantError(t, e.do(req{method: "GET", path: path + "?query=" + strings.Repeat("q", maxQuery+1), auth: admin()}), 400, CodeBadRequest)
		})
	}
	for _, q := range []string{"type=a%00", "actor_type=%ff", "object_type=" + strings.Repeat("t", maxQuery+1)} {
		wantError(t, e.do(req{method: "GET", path: "/events?" + q, auth: admin()}), 400, CodeBadRequest)
	}
}

func TestOversizedBodyIsKisi413(t *testing.T) {
	e := newEnv(t, nil)
	big := `{"place":{"name":"` + strings.Repeat("x", 2<<20) + `"}}`
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			hr := httptest.NewRequest("POST", "/places", strings.NewReader(big))
			hr.Header.Set("Authorization", admin())
			if chunked {
				hr.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, hr)
			wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)
		})
	}
}
