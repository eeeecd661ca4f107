package lockctl

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGuestUnlockValidityToTheSecond(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	from, until := t0.Add(time.Minute), t0.Add(time.Hour)
	inv := e.inviteGuest(f.visitors, "Ada Lovelace (Envoy Guest)", from, until, nil)
	key := accessKey(inv.AccessKey.Secret)

	steps := []struct {
		at     time.Time
		status int
		code   string
	}{
		{from.Add(-time.Second), 403, CodeNotYetValid},
		{from, 200, ""},
		{until.Add(-time.Second), 200, ""},
		{until, 403, CodeNoLongerValid},
		{until.Add(time.Second), 403, CodeNoLongerValid},
	}
	for _, s := range steps {
		e.clock.Set(s.at)
		rec := e.do(req{method: "POST", path: unlockPath(f.front), auth: key})
		if s.status == 200 {
			if rec.Code != 200 {
				t.Errorf("at %s: %d %s, want 200", rfc(s.at), rec.Code, rec.Body)
			}
			continue
		}
		wantError(t, rec, s.status, s.code)
	}

	// Extending the window in place opens the door again at once.
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/role_assignments/%d", inv.RoleAssignmentID), auth: admin(),
		body: map[string]any{"role_assignment": map[string]any{"valid_until": rfc(until.Add(time.Hour))}}})
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: key})
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.back), auth: key}), 404, CodeNotFound)
}

func TestPersonAccessRevokedAtOnce(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LinkRate = Rate{PerSecond: -1} })
	f := e.site()
	t0 := e.clock.Now()

	t.Run("delete role assignment", func(t *testing.T) {
		inv := e.inviteGuest(f.visitors, "Grace", t0, t0.Add(time.Hour), nil)
		key := accessKey(inv.AccessKey.Secret)
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: key})
		e.must(204, req{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", inv.RoleAssignmentID), auth: admin()})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: key}), 404, CodeNotFound)
	})
	t.Run("delete guest", func(t *testing.T) {
		inv := e.inviteGuest(f.visitors, "Hedy", t0, t0.Add(time.Hour), nil)
		key := accessKey(inv.AccessKey.Secret)
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: key})
		e.must(204, req{method: "DELETE", path: fmt.Sprintf("/guests/%d", inv.InviteeID), auth: admin()})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: key}), 401, CodeLinkInvalid)
		wantError(t, e.do(req{method: "GET", path: "/locks", auth: key}), 401, CodeLinkInvalid)
	})
	t.Run("user: delete, suspend, app access", func(t *testing.T) {
		e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin(),
			body: map[string]any{"group": map[string]any{"login_enabled": true}}})
		u := e.user(map[string]any{"email": "ada@example.com"})
		ra := e.assign(groupRole("User", u, f.visitors, t0, t0.Add(time.Hour)))
		login := e.userLogin("ada@example.com")
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: login})

		e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin(),
			body: map[string]any{"group": map[string]any{"login_enabled": false}}})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: login}), 403, CodeNoAppAccess)
		e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin(),
			body: map[string]any{"group": map[string]any{"login_enabled": true}}})
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: login})

		e.must(204, req{method: "PATCH", path: fmt.Sprintf("/users/%d", u), auth: admin(),
			body: map[string]any{"user": map[string]any{"access_enabled": false}}})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: login}), 403, CodeAccessDisabled)
		e.must(204, req{method: "PATCH", path: fmt.Sprintf("/users/%d", u), auth: admin(),
			body: map[string]any{"user": map[string]any{"access_enabled": true}}})
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: login})

		e.must(204, req{method: "DELETE", path: fmt.Sprintf("/role_assignments/%d", ra), auth: admin()})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: login}), 404, CodeNotFound)
		e.assign(groupRole("User", u, f.visitors, t0, t0.Add(time.Hour)))
		e.must(200, req{method: "POST", path: unlockPath(f.front), auth: login})
		e.must(204, req{method: "DELETE", path: fmt.Sprintf("/users/%d", u), auth: admin()})
		wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: login}), 401, CodeNotAuthorized)
	})
}

func TestPersonCredentials(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LinkRate = Rate{PerSecond: -1} })
	f := e.site()
	t0 := e.clock.Now()
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.staff), auth: admin(),
		body: map[string]any{"group": map[string]any{"login_enabled": true}}})
	u := e.user(nil)
	e.assign(groupRole("User", u, f.staff, t0, t0.Add(time.Hour)))
	login := e.userLogin("ADA@example.com")
	inv := e.inviteGuest(f.visitors, "Grace", t0, t0.Add(time.Hour), map[string]any{
		"access_key": map[string]any{"link_enabled": false, "qr_code_enabled": true}})
	qrInv := decode[struct {
		AccessKey struct {
			Token string `json:"quick_response_code_token"`
		} `json:"access_key"`
	}](t, e.must(200, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": map[string]any{
		"invites_to_type": "Group", "invites_to_id": f.visitors, "notify": false,
		"invitee":         map[string]any{"resource_type": "Guest", "name": "Quinn", "email": nil, "phone_number": nil},
		"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": nil, "valid_until": nil},
		"access_key":      map[string]any{"link_enabled": false, "qr_code_enabled": true}}}}))

	tests := []struct {
		name   string
		method string
		path   string
		auth   string
		status int
		code   string
	}{
		{"login lists its doors", "GET", "/locks", login, 200, ""},
		{"login is no admin", "GET", "/users", login, 403, CodeAccessDenied},
		{"login cannot mint logins", "POST", "/logins", login, 403, CodeAccessDenied},
		{"login opens its group's door", "POST", unlockPath(f.back), login, 200, ""},
		{"login, other group's door", "POST", unlockPath(f.front), login, 404, CodeNotFound},
		{"access key is no admin", "GET", "/role_assignments", accessKey(inv.AccessKey.Secret), 403, CodeAccessDenied},
		{"link disabled key", "POST", unlockPath(f.front), accessKey(inv.AccessKey.Secret), 403, CodeAccessDisabled},
		{"QR token opens", "POST", unlockPath(f.front), accessKey(qrInv.AccessKey.Token), 200, ""},
		{"unknown access key", "POST", unlockPath(f.front), accessKey("nope"), 401, CodeLinkInvalid},
		{"access key is not a login", "POST", unlockPath(f.front), "KISI-LOGIN " + inv.AccessKey.Secret, 401, CodeNotAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.do(req{method: tt.method, path: tt.path, auth: tt.auth})
			if tt.status == 200 {
				if rec.Code != 200 {
					t.Fatalf("%d %s, want 200", rec.Code, rec.Body)
				}
				return
			}
			wantError(t, rec, tt.status, tt.code)
		})
	}
	locks := decodeStrict[[]kisiHolderLock](t, e.must(200, req{method: "GET", path: "/locks", auth: login}))
	if len(locks) != 1 || locks[0].ID != f.back {
		t.Errorf("user sees locks %+v, want only the back door", locks)
	}
	locks = decodeStrict[[]kisiHolderLock](t, e.must(200, req{method: "GET", path: "/locks", auth: accessKey(qrInv.AccessKey.Token)}))
	if len(locks) != 2 {
		t.Errorf("guest sees %d locks, want the 2 of Visitors", len(locks))
	}
	if got := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/places", auth: login})); len(got) != 1 || got[0].ID != f.placeID {
		t.Errorf("user sees places %v, want HQ", got)
	}

	logins := decode[[]kisiLoginItem](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/logins?user_id=%d", u), auth: admin()}))
	if len(logins) != 1 {
		t.Fatalf("user logins %+v, want one", logins)
	}
	if n := len(decode[[]kisiLoginItem](t, e.must(200, req{method: "GET", path: "/logins", auth: admin()}))); n != 0 {
		t.Errorf("%d admin keys listed, want 0: user logins are not API keys", n)
	}
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/logins/%d", logins[0].ID), auth: admin()})
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.back), auth: login}), 401, CodeNotAuthorized)

	t.Run("a user keeps at most 40 logins", func(t *testing.T) {
		first := e.userLogin("ada@example.com")
		for range maxUserLogins {
			e.clock.Set(e.clock.Now().Add(time.Second))
			e.userLogin("ada@example.com")
		}
		wantError(t, e.do(req{method: "GET", path: "/locks", auth: first}), 401, CodeNotAuthorized)
		if n := len(decode[[]kisiLoginItem](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/logins?user_id=%d", u), auth: admin()}))); n != maxUserLogins {
			t.Errorf("%d logins, want %d", n, maxUserLogins)
		}
	})
}

func TestPersonUnlockEvents(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin(),
		body: map[string]any{"group": map[string]any{"login_enabled": true}}})
	u := e.user(nil)
	ra := e.assign(groupRole("User", u, f.visitors, t0, t0.Add(time.Hour)))
	login := e.userLogin("ada@example.com")
	inv := e.inviteGuest(f.visitors, "Grace", t0, t0.Add(time.Second), nil)
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: login})
	e.must(200, req{method: "POST", path: unlockPath(f.lobby), auth: accessKey(inv.AccessKey.Secret)})
	e.clock.Set(t0.Add(time.Second))
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.lobby), auth: accessKey(inv.AccessKey.Secret)}), 403, CodeNoLongerValid)

	set := decodeStrict[kisiEventSet](t, e.must(200, req{method: "POST", path: "/event_sets", auth: admin(), body: map[string]any{
		"event_set": map[string]any{"event_type": "lock.unlock", "event_actor_type": "Guest", "event_authenticated_by_type": "AccessKey"}}}))
	if len(set.Events) != 2 {
		t.Fatalf("guest unlock events %+v, want the refusal and the unlock", set.Events)
	}
	refused, granted := set.Events[0], set.Events[1]
	if refused.Success || *refused.Code != CodeNoLongerValid || !granted.Success {
		t.Errorf("events %+v, %+v: want a refused then a granted unlock (newest first)", refused, granted)
	}
	if *granted.ActorID != inv.InviteeID || *granted.ActorName != "Grace" || *granted.AuthenticatedByID != inv.AccessKey.ID ||
		*granted.AuthorizedByType != "RoleAssignment" || *granted.AuthorizedByID != inv.RoleAssignmentID || *granted.AuthorizedByRoleID != "group_basic" {
		t.Errorf("guest unlock event %+v", granted)
	}
	set = decodeStrict[kisiEventSet](t, e.must(200, req{method: "POST", path: "/event_sets", auth: admin(), body: map[string]any{
		"event_set": map[string]any{"event_type": "lock.unlock", "event_actor_type": "User", "event_authenticated_by_type": "Login"}}}))
	if len(set.Events) != 1 || *set.Events[0].ActorID != u || *set.Events[0].ActorEmail != "ada@example.com" || *set.Events[0].AuthorizedByID != ra {
		t.Errorf("user unlock events %+v", set.Events)
	}
	set = decodeStrict[kisiEventSet](t, e.must(200, req{method: "POST", path: "/event_sets", auth: admin(), body: map[string]any{
		"event_set": map[string]any{"event_type": "invite.create,guest.create,role_assignment.create,user.create,access_key.create"}}}))
	var types []string
	for _, ev := range set.Events {
		types = append(types, ev.Type)
	}
	want := []string{"invite.create", "access_key.create", "role_assignment.create", "guest.create", "role_assignment.create", "user.create"}
	if d := cmp.Diff(want, types); d != "" {
		t.Errorf("admin events (-want +got):\n%s", d)
	}
	user := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/users/%d", u), auth: admin()}))
	if user["last_accessed_at"] != rfc(t0) {
		t.Errorf("last_accessed_at %v, want %s", user["last_accessed_at"], rfc(t0))
	}
	var keyUsed *time.Time
	if err := e.c.store.db.Raw("SELECT last_used_at FROM lockctl_access_keys WHERE id = ?", inv.AccessKey.ID).Scan(&keyUsed).Error; err != nil {
		t.Fatal(err)
	}
	if keyUsed == nil || !keyUsed.Equal(t0) {
		t.Errorf("the guest's access key last used %v, want %s (its granted unlock)", keyUsed, rfc(t0))
	}
}

func TestCheckPersonUnlock(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	lock := Lock{ID: 1, PlaceID: 1, Online: true}
	grp := func(role string, from, until *time.Time, login bool) PersonUnlock {
		return PersonUnlock{Assignment: RoleAssignment{ID: 7, RoleID: role, AppliesToType: appliesGroup, ValidFrom: from, ValidUntil: until}, LoginEnabled: login}
	}
	on := person{Enabled: true}
	tests := []struct {
		name     string
		p        person
		cands    []PersonUnlock
		viaLogin bool
		code     string
	}{
		{"basic role, in window", on, []PersonUnlock{grp("group_basic", at(-time.Hour), at(time.Second), false)}, false, ""},
		{"ends now", on, []PersonUnlock{grp("group_basic", nil, at(0), false)}, false, CodeNoLongerValid},
		{"starts in a second", on, []PersonUnlock{grp("group_basic", at(time.Second), nil, false)}, false, CodeNotYetValid},
		{"observer opens nothing", on, []PersonUnlock{{Assignment: RoleAssignment{RoleID: "place_observer", AppliesToType: appliesPlace}}}, false, CodeNotFound},
		{"place administrator", on, []PersonUnlock{{Assignment: RoleAssignment{RoleID: "place_administrator", AppliesToType: appliesPlace}}}, true, ""},
		{"unknown role", on, []PersonUnlock{grp("owner", nil, nil, true)}, false, CodeNotFound},
		{"no candidates", on, nil, false, CodeNotFound},
		{"disabled person", person{}, []PersonUnlock{grp("group_basic", nil, nil, true)}, false, CodeAccessDisabled},
		{"login without app access", on, []PersonUnlock{grp("group_basic", nil, nil, false)}, true, CodeNoAppAccess},
		{"access key ignores app access", on, []PersonUnlock{grp("group_basic", nil, nil, false)}, false, ""},
		{"any permitting group suffices", on, []PersonUnlock{grp("group_basic", nil, at(-time.Second), true), grp("group_manager", nil, nil, true)}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra, d := CheckPersonUnlock(tt.p, tt.cands, lock, tt.viaLogin, now)
			switch {
			case tt.code == "" && (d != nil || ra == nil):
				t.Errorf("denied %+v, want allowed", d)
			case tt.code != "" && (d == nil || d.Code != tt.code):
				t.Errorf("got %+v, want code %s", d, tt.code)
			}
		})
	}
	if _, d := CheckPersonUnlock(on, []PersonUnlock{grp("group_basic", nil, nil, true)}, Lock{}, true, now); d == nil || d.Code != CodeLockOffline {
		t.Errorf("offline lock: %+v, want %s", d, CodeLockOffline)
	}
}
