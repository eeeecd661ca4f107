package lockctl

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGroupLinkCreateMatchesKisi(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	from := e.clock.Now()
	until := from.Add(4 * time.Hour)

	reqFixture := loadFixture(t, "kisi-group-link-create-request.json")
	body := fixtureKey(t, reqFixture, "group_link").(map[string]any)
	body["group_id"], body["valid_from"], body["valid_until"] = f.visitors, rfc(from), rfc(until)
	rec := e.must(200, req{method: "POST", path: "/group_links", auth: admin(), body: map[string]any{"group_link": body}})

	checkShape(t, loadFixture(t, "kisi-group-link-create-response-docs.json"), rec.Body.Bytes())
	got := decodeStrict[kisiGroupLinkCreated](t, rec)
	if got.Secret == nil || len(*got.Secret) < 43 {
		t.Fatalf("secret %v, want 32 random bytes", got.Secret)
	}
	if got.QuickResponseCodeToken != nil || got.QuickResponseCodeImage != nil {
		t.Errorf("QR fields set without a QR type: %v %v", got.QuickResponseCodeToken, got.QuickResponseCodeImage)
	}
	want := kisiGroupLink{ID: got.ID, ResourceType: "GroupLink", Name: "string", Email: ptr("user@example.com"),
		LinkEnabled: true, ValidFrom: ptr(rfc(from)), ValidUntil: ptr(rfc(until)),
		CreatedAt: rfc(from), UpdatedAt: rfc(from), GroupID: f.visitors,
		Group:         kisiRef{ID: f.visitors, ResourceType: "Group", Name: "Visitors"},
		CreatedByType: ptr("User"), CreatedBy: kisiUser{ResourceType: "User", Name: "Administrator"},
		IssuedBy: kisiUser{ResourceType: "User", Name: "Administrator"}}
	if d := cmp.Diff(want, got.kisiGroupLink); d != "" {
		t.Errorf("created link (-want +got):\n%s", d)
	}

	list := e.must(200, req{method: "GET", path: "/group_links", auth: admin()})
	checkShape(t, loadFixture(t, "kisi-group-links-list-response.json"), list.Body.Bytes())
	links := decodeStrict[[]kisiGroupLink](t, list)
	if d := cmp.Diff([]kisiGroupLink{want}, links); d != "" {
		t.Errorf("listed links (-want +got):\n%s", d)
	}
	if r := list.Header().Get("X-Collection-Range"); r != "0-9/1" {
		t.Errorf("X-Collection-Range %q, want 0-9/1", r)
	}
}

func TestGroupLinkValidation(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	now := e.clock.Now()
	tests := []struct {
		name string
		link map[string]any
		want map[string][]string
	}{
		{"missing group", map[string]any{"name": "A"}, map[string][]string{"group_id": {"can't be blank"}}},
		{"unknown group", map[string]any{"name": "A", "group_id": 999}, map[string][]string{"group": {"must exist"}}},
		{"missing name", map[string]any{"group_id": f.visitors}, map[string][]string{"name": {"can't be blank"}}},
		{"blank name", map[string]any{"group_id": f.visitors, "name": "  "}, map[string][]string{"name": {"can't be blank"}}},
		{"until equals from", map[string]any{"group_id": f.visitors, "name": "A", "valid_from": rfc(now), "valid_until": rfc(now)},
			map[string][]string{"valid_until": {"must be after valid_from"}}},
		{"until before from", map[string]any{"group_id": f.visitors, "name": "A", "valid_from": rfc(now), "valid_until": rfc(now.Add(-time.Hour))},
			map[string][]string{"valid_until": {"must be after valid_from"}}},
		{"bad time", map[string]any{"group_id": f.visitors, "name": "A", "valid_from": "tomorrow"},
			map[string][]string{"valid_from": {"is not a valid RFC 3339 time"}}},
		{"bad email", map[string]any{"group_id": f.visitors, "name": "A", "email": "not-an-email"},
			map[string][]string{"email": {"is invalid"}}},
		{"bad phone", map[string]any{"group_id": f.visitors, "name": "A", "phone": "12345"},
			map[string][]string{"phone": {"is invalid (E.164, e.g. +11234567890)"}}},
		{"bad qr type", map[string]any{"group_id": f.visitors, "name": "A", "quick_response_code_type": "paper"},
			map[string][]string{"quick_response_code_type": {"is not included in the list"}}},
		{"everything", map[string]any{"valid_from": rfc(now), "valid_until": rfc(now)},
			map[string][]string{"group_id": {"can't be blank"}, "name": {"can't be blank"}, "valid_until": {"must be after valid_from"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.must(422, req{method: "POST", path: "/group_links", auth: admin(), body: map[string]any{"group_link": tt.link}})
			got := decodeStrict[struct {
				Errors map[string][]string `json:"errors"`
			}](t, rec)
			if d := cmp.Diff(tt.want, got.Errors); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
	t.Run("malformed JSON", func(t *testing.T) {
		wantError(t, e.do(req{method: "POST", path: "/group_links", auth: admin(), body: "{"}), 400, CodeBadRequest)
	})
}

func TestGroupLinkGetPatchDelete(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	now := e.clock.Now()
	l := e.link(f.visitors, map[string]any{"valid_from": rfc(now), "valid_until": rfc(now.Add(time.Hour))})
	path := fmt.Sprintf("/group_links/%d", l.ID)

	got := decodeStrict[kisiGroupLink](t, e.must(200, req{method: "GET", path: path, auth: admin()}))
	if got.ID != l.ID || got.Name != "Ada Lovelace (Visitor)" {
		t.Fatalf("GET %s = %+v", path, got)
	}

	later := now.Add(3 * time.Hour)
	e.clock.Set(now.Add(time.Minute))
	rec := e.must(200, req{method: "PATCH", path: path, auth: admin(), body: map[string]any{"group_link": map[string]any{
		"name": "Ada L. (Visitor)", "valid_until": rfc(later), "link_enabled": false}}})
	got = decodeStrict[kisiGroupLink](t, rec)
	if got.Name != "Ada L. (Visitor)" || *got.ValidUntil != rfc(later) || *got.ValidFrom != rfc(now) ||
		got.LinkEnabled || got.UpdatedAt != rfc(now.Add(time.Minute)) {
		t.Errorf("after PATCH: %+v", got)
	}
	// The secret is unchanged: the holder is refused for the disabled link,
	// not for an unknown secret.
	wantError(t, e.do(req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(l.Secret)}), 403, CodeLinkInvalid)
	e.must(200, req{method: "PATCH", path: path, auth: admin(), body: map[string]any{"group_link": map[string]any{"link_enabled": true, "valid_from": nil}}})
	e.must(200, req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(l.Secret)})
	got = decodeStrict[kisiGroupLink](t, e.must(200, req{method: "GET", path: path, auth: admin()}))
	if got.ValidFrom != nil || got.LastUsedAt == nil || *got.LastUsedAt != rfc(now.Add(time.Minute)) {
		t.Errorf("valid_from %v (want null), last_used_at %v (want %s)", got.ValidFrom, got.LastUsedAt, rfc(now.Add(time.Minute)))
	}

	rec = e.do(req{method: "PATCH", path: path, auth: admin(), body: map[string]any{"group_link": map[string]any{"valid_until": rfc(now.Add(-time.Hour)), "valid_from": rfc(now)}}})
	if rec.Code != 422 {
		t.Errorf("PATCH with until before from: %d %s", rec.Code, rec.Body)
	}

	if rec := e.must(204, req{method: "DELETE", path: path, auth: admin()}); rec.Body.Len() != 0 {
		t.Errorf("DELETE body %q, want none", rec.Body)
	}
	wantError(t, e.do(req{method: "GET", path: path, auth: admin()}), 404, CodeNotFound)
	wantError(t, e.do(req{method: "DELETE", path: path, auth: admin()}), 404, CodeNotFound)
	wantError(t, e.do(req{method: "PATCH", path: path, auth: admin(), body: map[string]any{"group_link": map[string]any{}}}), 404, CodeNotFound)
	wantError(t, e.do(req{method: "GET", path: "/group_links/abc", auth: admin()}), 404, CodeNotFound)
	// A deleted link's secret is unknown.
	wantError(t, e.do(req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(l.Secret)}), 401, CodeLinkInvalid)
}

func TestGroupLinkListFilters(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	now := e.clock.Now()
	a := e.link(f.visitors, map[string]any{"name": "Charlie", "email": "charlie@example.com", "valid_until": rfc(now.Add(3 * time.Hour))})
	b := e.link(f.staff, map[string]any{"name": "alice", "phone": "+11234567890", "valid_until": rfc(now.Add(1 * time.Hour))})
	c := e.link(f.visitors, map[string]any{"name": "Bob_100%", "valid_until": rfc(now.Add(2 * time.Hour))})
	d := e.link(f.visitors, map[string]any{"name": "Dora"})

	tests := []struct {
		query string
		want  []int64
	}{
		{"", []int64{a.ID, b.ID, c.ID, d.ID}},
		{fmt.Sprintf("ids=%d,%d", c.ID, a.ID), []int64{a.ID, c.ID}},
		{fmt.Sprintf("group_id=%d", f.staff), []int64{b.ID}},
		{"query=ALI", []int64{b.ID}},
		{"query=charlie@example", []int64{a.ID}},
		{"query=%2B1123", []int64{b.ID}},
		{"query=staff", []int64{b.ID}},
		{"query=_100%25", []int64{c.ID}},
		{"query=%25", []int64{c.ID}},
		{"sort=name", []int64{c.ID, a.ID, d.ID, b.ID}},
		{"sort=-name", []int64{b.ID, d.ID, a.ID, c.ID}},
		{"sort=valid_until", []int64{b.ID, c.ID, a.ID, d.ID}},
		{"sort=-valid_until", []int64{a.ID, c.ID, b.ID, d.ID}},
		{"sort=group_name", []int64{b.ID, a.ID, c.ID, d.ID}},
		{"sort=-group_name", []int64{d.ID, c.ID, a.ID, b.ID}},
		{fmt.Sprintf("group_id=%d&sort=name&limit=2&offset=1", f.visitors), []int64{a.ID, d.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			links := decodeStrict[[]kisiGroupLink](t, e.must(200, req{method: "GET", path: "/group_links?" + tt.query, auth: admin()}))
			var got []int64
			for _, l := range links {
				got = append(got, l.ID)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
		})
	}
	for _, bad := range []string{"sort=color", "group_id=x", "ids=1,x"} {
		wantError(t, e.do(req{method: "GET", path: "/group_links?" + bad, auth: admin()}), 400, CodeBadRequest)
	}
}
