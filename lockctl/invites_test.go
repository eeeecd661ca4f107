package lockctl

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var fragment = regexp.MustCompile(`/grouplinks#(key|login):([A-Za-z0-9_-]+)`)

// emailedCredential finds the credential in the text of a notify email and
// returns it as an Authorization header.
func emailedCredential(t *testing.T, text string) string {
	t.Helper()
	m := fragment.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no access link in %q", text)
	}
	if m[1] == "key" {
		return accessKey(m[2])
	}
	return "KISI-LOGIN " + m[2]
}

func TestInviteGuestNotified(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	rec := e.must(200, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": map[string]any{
		"invites_to_type": "Group", "invites_to_id": f.visitors,
		"invitee":         map[string]any{"resource_type": "Guest", "name": "Ada Lovelace (Envoy Guest)", "email": "ada@example.com", "phone_number": nil},
		"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": rfc(t0), "valid_until": rfc(t0.Add(2 * time.Hour))},
		"access_key":      map[string]any{"qr_code_enabled": true}}}})
	got := decode[map[string]any](t, rec)
	ak := got["access_key"].(map[string]any)
	for k, v := range map[string]any{"resource_type": "Invite", "notify": true, "invites_to_type": "Group",
		"invitee_type": "Guest"} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if ak["link_enabled"] != true || ak["qr_code_enabled"] != true || ak["resource_type"] != "AccessKey" {
		t.Errorf("access_key %v, want link and QR enabled", ak)
	}
	msgs := e.outbox.all()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want 1", len(msgs))
	}
	m := msgs[0]
	if m.To != "ada@example.com" || m.Subject != "Your access to HQ" || len(m.Attachments) != 1 {
		t.Errorf("email to %s, subject %q, %d attachments; want ada@example.com, Your access to HQ, the QR code", m.To, m.Subject, len(m.Attachments))
	}
	for _, want := range []string{"Front door", "Lobby", "Valid Mon 2 Mar 2026, 10:00 – 12:00 CET."} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("email text lacks %q:\n%s", want, m.Text)
		}
	}
	if cred := emailedCredential(t, m.Text); cred != accessKey(ak["secret"].(string)) {
		t.Errorf("emailed credential differs from the invite's access key")
	}
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: emailedCredential(t, m.Text)})

	e.inviteGuest(f.visitors, "Quiet", t0, t0.Add(time.Hour), nil) // notify false
	if n := len(e.outbox.all()); n != 1 {
		t.Errorf("%d emails after an invite with notify false, want still 1", n)
	}
}

func TestInviteUserNotified(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin(),
		body: map[string]any{"group": map[string]any{"login_enabled": true}}})
	invite := map[string]any{"invites_to_type": "Group", "invites_to_id": f.visitors,
		"invitee":         map[string]any{"resource_type": "User", "name": "Ada", "email": "ada@example.com"},
		"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": rfc(t0), "valid_until": rfc(t0.Add(time.Hour))}}
	got := decode[map[string]any](t, e.must(200, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": invite}}))
	if _, ok := got["access_key"]; ok || got["invitee_type"] != "User" {
		t.Errorf("user invite %v, want invitee_type User and no access key", got)
	}
	users := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/users?email=ada@example.com", auth: admin()}))
	if len(users) != 1 || users[0]["name"] != "Ada" || users[0]["id"] != got["invitee_id"] {
		t.Fatalf("users %v, want Ada created by the invite", users)
	}
	msgs := e.outbox.all()
	if len(msgs) != 1 || msgs[0].To != "ada@example.com" || !strings.Contains(msgs[0].Text, "Sign in here") {
		t.Fatalf("emails %+v, want one sign-in email to ada@example.com", msgs)
	}
	login := emailedCredential(t, msgs[0].Text)
	if !strings.HasPrefix(login, "KISI-LOGIN ") {
		t.Fatalf("emailed %q, want a login", login)
	}
	e.must(200, req{method: "POST", path: unlockPath(f.lobby), auth: login})
	wantError(t, e.do(req{method: "GET", path: "/users", auth: login}), 403, CodeAccessDenied)

	// The same user on the same group again: one role per person per group.
	e.must(422, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": invite}})
	// An existing user with send_emails off gets access and no email.
	e.user(map[string]any{"email": "bob@example.com", "send_emails": false})
	invite["invitee"] = map[string]any{"resource_type": "User", "name": "Bob", "email": "bob@example.com"}
	e.must(200, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": invite}})
	if n := len(e.outbox.all()); n != 1 {
		t.Errorf("%d emails, want still 1", n)
	}
}

func TestInviteValidationAndIdempotency(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LinkRate = Rate{PerSecond: -1} })
	f := e.site()
	t0 := e.clock.Now()
	base := func() map[string]any {
		return map[string]any{"invites_to_type": "Group", "invites_to_id": f.visitors, "notify": false,
			"invitee":         map[string]any{"resource_type": "Guest", "name": "Ada", "email": nil, "phone_number": nil},
			"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": rfc(t0), "valid_until": rfc(t0.Add(time.Hour))}}
	}
	for name, mod := range map[string]func(m map[string]any){
		"team":          func(m map[string]any) { m["invites_to_type"] = "Team" },
		"no such group": func(m map[string]any) { m["invites_to_id"] = 999 },
		"no invitee":    func(m map[string]any) { delete(m, "invitee") },
		"no role":       func(m map[string]any) { delete(m, "role_assignment") },
		"place role":    func(m map[string]any) { m["role_assignment"] = map[string]any{"role_id": "place_observer"} },
		"guest, bad phone": func(m map[string]any) {
			m["invitee"] = map[string]any{"resource_type": "Guest", "name": "Ada", "phone_number": "+44123"}
		},
		"user, no email": func(m map[string]any) { m["invitee"] = map[string]any{"resource_type": "User", "name": "Ada"} },
		"user with key": func(m map[string]any) {
			m["invitee"] = map[string]any{"resource_type": "User", "email": "a@example.com"}
			m["access_key"] = map[string]any{"link_enabled": true}
		},
	} {
		t.Run(name, func(t *testing.T) {
			body := base()
			mod(body)
			e.must(422, req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": body}})
		})
	}
	if n := len(decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/guests", auth: admin()}))); n != 0 {
		t.Fatalf("%d guests after refused invites, want 0", n)
	}

	key := map[string]string{"Idempotency-Key": "visit-42"}
	first := decode[invited](t, e.must(200, req{method: "POST", path: "/invites", auth: admin(), header: key, body: map[string]any{"invite": base()}}))
	rec := e.must(200, req{method: "POST", path: "/invites", auth: admin(), header: key, body: map[string]any{"invite": base()}})
	again := decode[invited](t, rec)
	if rec.Header().Get("Idempotent-Replayed") != "true" || again.ID != first.ID || again.InviteeID != first.InviteeID {
		t.Errorf("repeat %+v (replayed %q), want invite %d again", again, rec.Header().Get("Idempotent-Replayed"), first.ID)
	}
	if n := len(decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/guests", auth: admin()}))); n != 1 {
		t.Errorf("%d guests after a repeated invite, want 1", n)
	}
	wantError(t, e.do(req{method: "POST", path: unlockPath(f.front), auth: accessKey(first.AccessKey.Secret)}), 401, CodeLinkInvalid)
	e.must(200, req{method: "POST", path: unlockPath(f.front), auth: accessKey(again.AccessKey.Secret)})

	other := base()
	other["invites_to_id"] = f.staff
	wantError(t, e.do(req{method: "POST", path: "/invites", auth: admin(), header: key, body: map[string]any{"invite": other}}), 409, "f40900")

	t.Run("role assignment", func(t *testing.T) {
		g := e.guest("Key")
		body := map[string]any{"role_assignment": groupRole("Guest", g, f.staff, t0, t0.Add(time.Hour))}
		h := map[string]string{"Idempotency-Key": "ra-1"}
		id := decode[idOnly](t, e.must(200, req{method: "POST", path: "/role_assignments", auth: admin(), header: h, body: body})).ID
		rec := e.must(200, req{method: "POST", path: "/role_assignments", auth: admin(), header: h, body: body})
		if got := decode[idOnly](t, rec).ID; got != id || rec.Header().Get("Idempotent-Replayed") != "true" {
			t.Errorf("repeat gave %d (replayed %q), want %d", got, rec.Header().Get("Idempotent-Replayed"), id)
		}
		body = map[string]any{"role_assignment": groupRole("Guest", e.guest("Other"), f.staff, t0, t0.Add(time.Hour))}
		wantError(t, e.do(req{method: "POST", path: "/role_assignments", auth: admin(), header: h, body: body}), 409, "f40900")
	})
}

func TestNotifyLinkWithoutPublicURL(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PublicURL = "" })
	f := e.site()
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/groups/%d", f.visitors), auth: admin(),
		body: map[string]any{"group": map[string]any{"login_enabled": true}}})
	share := decode[idOnly](t, e.must(200, req{method: "POST", path: "/shares", auth: admin(), body: map[string]any{
		"share": map[string]any{"email": "ada@example.com", "group_id": f.visitors}}}))
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/shares/%d", share.ID), auth: admin(), body: map[string]any{
		"share": map[string]any{"notify": true}}})
	msgs := e.outbox.all()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "http://example.com/grouplinks#login:") {
		t.Fatalf("emails %+v, want one sign-in link at the controller's root", msgs)
	}
	e.must(200, req{method: "GET", path: "/locks", auth: emailedCredential(t, msgs[0].Text)})
}

func TestShares(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	share := decode[map[string]any](t, e.must(200, req{method: "POST", path: "/shares", auth: admin(), body: map[string]any{
		"share": map[string]any{"email": "Ada@example.com", "group_id": f.visitors, "valid_from": rfc(t0), "valid_until": rfc(t0.Add(time.Hour))}}}))
	id := int64(share["id"].(float64))
	for k, v := range map[string]any{"resource_type": "Share", "email": "ada@example.com", "role_id": "basic",
		"group_id": float64(f.visitors), "valid_until": rfc(t0.Add(time.Hour)), "apply_to_place": false} {
		if share[k] != v {
			t.Errorf("share %s = %v, want %v", k, share[k], v)
		}
	}
	ra := decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", id), auth: admin()}))
	if ra["role_id"] != "group_basic" || ra["assignee_id"] != share["user_id"] {
		t.Errorf("the share's role assignment %v, want group_basic for user %v", ra, share["user_id"])
	}
	members := decode[[]map[string]any](t, e.must(200, req{method: "GET", path: "/members?query=ada", auth: admin()}))
	if len(members) != 1 || members[0]["id"] != share["user_id"] {
		t.Errorf("members %v, want the share's user", members)
	}
	e.inviteGuest(f.visitors, "Guest", t0, t0.Add(time.Hour), nil)
	list := decode[[]idOnly](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/shares?group_id=%d", f.visitors), auth: admin()}))
	if d := cmp.Diff([]idOnly{{ID: id}}, list); d != "" {
		t.Errorf("shares of Visitors (-want +got):\n%s", d)
	}
	e.must(204, req{method: "PATCH", path: fmt.Sprintf("/shares/%d", id), auth: admin(), body: map[string]any{
		"share": map[string]any{"role_id": "manager", "valid_until": rfc(t0.Add(3 * time.Hour))}}})
	share = decode[map[string]any](t, e.must(200, req{method: "GET", path: fmt.Sprintf("/shares/%d", id), auth: admin()}))
	if share["role_id"] != "manager" || share["valid_until"] != rfc(t0.Add(3*time.Hour)) {
		t.Errorf("after PATCH %v", share)
	}
	e.must(422, req{method: "POST", path: "/shares", auth: admin(), body: map[string]any{
		"share": map[string]any{"email": "ada@example.com", "group_id": f.visitors}}})
	e.must(422, req{method: "POST", path: "/shares", auth: admin(), body: map[string]any{
		"share": map[string]any{"email": "x@example.com", "group_id": f.visitors, "role_id": "owner"}}})
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/shares/%d", id), auth: admin()})
	e.must(404, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", id), auth: admin()})
	if d := cmp.Diff([]string{"share.destroy", "share.update", "share.create"}, eventTypes(t, e, "share.create,share.update,share.destroy")); d != "" {
		t.Errorf("share events (-want +got):\n%s", d)
	}
}
