package lockctl

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	l := e.link(f.visitors, nil)
	tests := []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"missing", "", 401, CodeNotAuthorized},
		{"empty key", "KISI-LOGIN ", 401, CodeNotAuthorized},
		{"wrong key", "KISI-LOGIN " + adminKey + "x", 401, CodeNotAuthorized},
		{"prefix of key", "KISI-LOGIN " + adminKey[:5], 401, CodeNotAuthorized},
		{"bearer", "Bearer " + adminKey, 401, CodeNotAuthorized},
		{"unknown link", holder("x"), 401, CodeLinkInvalid},
		{"link on admin call", holder(l.Secret), 403, CodeAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do(req{method: "GET", path: "/group_links", auth: tt.auth}), tt.status, tt.code)
		})
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		e.must(200, req{method: "GET", path: "/group_links", auth: "Kisi-Login " + adminKey})
	})

	t.Run("created login", func(t *testing.T) {
		loginReq := loadFixture(t, "kisi-misc-responses.json")
		body := fixtureKey(t, loginReq, "login_create_request")
		// Kisi's example creates a login on behalf of a managed user: with
		// no such user there is nothing to sign in as.
		e.must(422, req{method: "POST", path: "/logins", auth: admin(), body: body})
		e.must(200, req{method: "POST", path: "/users", auth: admin(),
			body: map[string]any{"user": map[string]any{"email": "user@example.com"}}})
		rec := e.must(200, req{method: "POST", path: "/logins", auth: admin(), body: body})
		checkShape(t, fixtureKey(t, loginReq, "login_create_response"), rec.Body.Bytes())
		created := decode[struct {
			User struct {
				Email string `json:"email"`
			} `json:"user"`
			Secret string `json:"secret"`
		}](t, rec)
		if created.Secret == "" || created.User.Email != "user@example.com" {
			t.Fatalf("login %+v", created)
		}
		userKey := "KISI-LOGIN " + created.Secret
		wantError(t, e.do(req{method: "GET", path: "/group_links", auth: userKey}), 403, CodeAccessDenied)
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: userKey}), 404, CodeNotFound)

		id, secret := e.mint(map[string]any{"name": "desk"})
		key := "KISI-LOGIN " + secret
		link := decodeStrict[kisiGroupLinkCreated](t, e.must(200, req{method: "POST", path: "/group_links", auth: key,
			body: map[string]any{"group_link": map[string]any{"group_id": f.visitors, "name": "By key"}}}))
		want := kisiUser{ID: &id, ResourceType: "User", Name: "desk"}
		if d := cmp.Diff(want, link.CreatedBy); d != "" {
			t.Errorf("created_by (-want +got):\n%s", d)
		}
		if link.CreatedByID == nil || *link.CreatedByID != id {
			t.Errorf("created_by_id %v, want %d", link.CreatedByID, id)
		}
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: key})
		e.must(422, req{method: "POST", path: "/logins", auth: admin(),
			body: map[string]any{"login": map[string]any{"email": "nope"}}})
	})
}

func TestNoBootstrapKey(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AdminAPIKey = "" })
	wantError(t, e.do(req{method: "GET", path: "/places", auth: "KISI-LOGIN "}), 401, CodeNotAuthorized)
	wantError(t, e.do(req{method: "GET", path: "/places", auth: "KISI-LOGIN x"}), 401, CodeNotAuthorized)
}

func TestAdminResources(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()

	places := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/places", auth: admin()}))
	if len(places) != 1 || places[0]["time_zone"] != "Europe/Berlin" || places[0]["locks_count"] != 3.0 ||
		places[0]["resource_type"] != "Place" {
		t.Errorf("places %v", places)
	}
	e.must(200, req{method: "GET", path: fmt.Sprintf("/places/%d", f.placeID), auth: admin()})
	wantError(t, e.do(req{method: "GET", path: "/places/99", auth: admin()}), 404, CodeNotFound)

	groups := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/groups?sort=name", auth: admin()}))
	var names []string
	for _, g := range groups {
		names = append(names, g["name"].(string))
	}
	if d := cmp.Diff([]string{"Staff", "Visitors"}, names); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	g := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin()}))
	if g["locks_count"] != 2.0 || g["place_id"] != float64(f.placeID) || g["resource_type"] != "Group" {
		t.Errorf("group %v", g)
	}
	byLock := decode[[]idOnly](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/groups?lock_id=%d", f.back), auth: admin()}))
	if d := cmp.Diff([]idOnly{{f.staff}}, byLock); d != "" {
		t.Errorf("groups opening the back door (-want +got):\n%s", d)
	}

	gls := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/group_locks?group_id=%d", f.visitors), auth: admin()}))
	if len(gls) != 2 {
		t.Fatalf("group_locks %v", gls)
	}
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/group_locks/%v", gls[0]["id"]), auth: admin()})
	wantError(t, e.do(req{method: "DELETE", path: fmt.Sprintf("/group_locks/%v", gls[0]["id"]), auth: admin()}), 404, CodeNotFound)

	locks := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/locks?sort=-name&online=true", auth: admin()}))
	if len(locks) != 3 || locks[0]["name"] != "Lobby" || locks[0]["resource_type"] != "Lock" {
		t.Errorf("locks %v", locks)
	}
	rec := e.must(200, req{method: "PATCH", path: fmt.Sprintf("/locks/%d", f.front), auth: admin(),
		body: map[string]any{"lock": map[string]any{"online": false, "locked_down": true, "description": "Main entrance"}}})
	lk := decode[map[string]any](t, rec)
	if lk["online"] != false || lk["locked_down"] != true || lk["locked_down_since"] != rfc(e.clock.Now()) || lk["description"] != "Main entrance" {
		t.Errorf("patched lock %v", lk)
	}
	offline := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/locks?online=false", auth: admin()}))
	if d := cmp.Diff([]idOnly{{f.front}}, offline); d != "" {
		t.Errorf("offline locks (-want +got):\n%s", d)
	}
	evs := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/events?object_type=Lock&object_id=%d", f.front), auth: admin()}))
	var types []string
	for _, ev := range evs {
		types = append(types, ev["type"].(string))
	}
	if d := cmp.Diff([]string{EventLockOffline, EventLockLockDown}, types, sortStrings); d != "" {
		t.Errorf("lock events (-want +got):\n%s", d)
	}
	wantError(t, e.do(req{method: "PATCH", path: "/locks/99", auth: admin(), body: map[string]any{"lock": map[string]any{}}}), 404, CodeNotFound)
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestAdminValidation(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	other := decode[idOnly](t, e.must(200, req{method: "POST", path: "/places", auth: admin(),
		body: map[string]any{"place": map[string]any{"name": "Annex", "time_zone": "America/New_York"}}})).ID
	otherLock := decode[idOnly](t, e.must(200, req{method: "POST", path: "/locks", auth: admin(),
		body: map[string]any{"lock": map[string]any{"name": "Gate", "place_id": other}}})).ID
	tests := []struct {
		name string
		path string
		body map[string]any
		want map[string][]string
	}{
		{"place without name", "/places", map[string]any{"place": map[string]any{}}, map[string][]string{"name": {"can't be blank"}}},
		{"place with bad zone", "/places", map[string]any{"place": map[string]any{"name": "X", "time_zone": "Mars/Olympus"}},
			map[string][]string{"time_zone": {"is not a valid IANA time zone"}}},
		{"duplicate place", "/places", map[string]any{"place": map[string]any{"name": "HQ"}}, map[string][]string{"name": {"has already been taken"}}},
		{"lock without place", "/locks", map[string]any{"lock": map[string]any{"name": "X"}}, map[string][]string{"place_id": {"can't be blank"}}},
		{"lock at unknown place", "/locks", map[string]any{"lock": map[string]any{"name": "X", "place_id": 99}}, map[string][]string{"place": {"must exist"}}},
		{"duplicate lock", "/locks", map[string]any{"lock": map[string]any{"name": "Lobby", "place_id": f.placeID}}, map[string][]string{"name": {"has already been taken"}}},
		{"group without name", "/groups", map[string]any{"group": map[string]any{"place_id": f.placeID}}, map[string][]string{"name": {"can't be blank"}}},
		{"group at unknown place", "/groups", map[string]any{"group": map[string]any{"name": "X", "place_id": 99}}, map[string][]string{"place": {"must exist"}}},
		{"group lock, unknown lock", "/group_locks", map[string]any{"group_lock": map[string]any{"group_id": f.visitors, "lock_id": 99}}, map[string][]string{"lock": {"must exist"}}},
		{"group lock, other place", "/group_locks", map[string]any{"group_lock": map[string]any{"group_id": f.visitors, "lock_id": otherLock}}, map[string][]string{"lock": {"must belong to the group's place"}}},
		{"group lock twice", "/group_locks", map[string]any{"group_lock": map[string]any{"group_id": f.visitors, "lock_id": f.front}}, map[string][]string{"lock": {"has already been taken"}}},
		{"group lock, nothing", "/group_locks", map[string]any{}, map[string][]string{"group_id": {"can't be blank"}, "lock_id": {"can't be blank"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.must(422, req{method: "POST", path: tt.path, auth: admin(), body: tt.body})
			got := decodeStrict[struct {
				Errors map[string][]string `json:"errors"`
			}](t, rec)
			if d := cmp.Diff(tt.want, got.Errors); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	for i := range 15 {
		e.link(f.visitors, map[string]any{"name": fmt.Sprintf("Guest %02d", i)})
	}
	tests := []struct {
		query     string
		wantRange string
		wantN     int
	}{
		{"", "0-9/15", 10},
		{"offset=10", "10-19/15", 5},
		{"limit=10&offset=10", "10-19/15", 5},
		{"limit=1", "0-0/15", 1},
		{"limit=5&offset=14", "14-18/15", 1},
		{"offset=15", "*/15", 0},
		{"offset=20000", "*/15", 0},
		{"limit=1000", "0-249/15", 15},
		{"group_id=999", "*/0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := e.must(200, req{method: "GET", path: "/group_links?" + tt.query, auth: admin()})
			if got := rec.Header().Get("X-Collection-Range"); got != tt.wantRange {
				t.Errorf("X-Collection-Range %q, want %q", got, tt.wantRange)
			}
			if rec.Body.String()[0] != '[' {
				t.Errorf("body is not a bare array: %s", rec.Body)
			}
			if n := len(decode[[]idOnly](t, rec)); n != tt.wantN {
				t.Errorf("%d items, want %d", n, tt.wantN)
			}
		})
	}
	for _, bad := range []string{"limit=0", "limit=-1", "limit=x", "offset=-1", "offset=20001", "offset=x"} {
		t.Run(bad, func(t *testing.T) {
			wantError(t, e.do(req{method: "GET", path: "/group_links?" + bad, auth: admin()}), 400, CodeBadRequest)
		})
	}
	t.Run("empty list is [] with */0", func(t *testing.T) {
		rec := e.must(200, req{method: "GET", path: "/locks?place_id=99", auth: admin()})
		if rec.Body.String() != "[]\n" || rec.Header().Get("X-Collection-Range") != "*/0" {
			t.Errorf("body %q range %q", rec.Body, rec.Header().Get("X-Collection-Range"))
		}
	})
}

func TestUnknownRoutesAreKisiErrors(t *testing.T) {
	e := newEnv(t, nil)
	wantError(t, e.do(req{method: "GET", path: "/nope", auth: admin()}), 404, CodeNotFound)
	wantError(t, e.do(req{method: "PUT", path: "/group_links", auth: admin()}), 404, CodeNotFound)
}
