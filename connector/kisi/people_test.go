package kisi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// A person unlocks with their own credential: a guest's access key as
// KISI-ACCESS-KEY, a member's login as KISI-LOGIN; a refusal of a
// suspended person is the domain's "revoked", and the secret appears in
// no error.
func TestPersonUnlockSchemes(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 3 {
			writeJSON(w, http.StatusForbidden, []byte(`{"error":"Access is disabled `+testSecret+`","code":"fcd8ff"}`))
			return
		}
		writeJSON(w, http.StatusOK, []byte(`{"message":"Unlocked!"}`))
	})
	cl := newTestClient(t, srv.URL, Options{})
	ctx := context.Background()
	if err := cl.PersonUnlock(ctx, connector.PersonCredential{Kind: connector.PersonGuest, Secret: testSecret}, 7); err != nil {
		t.Fatalf("guest unlock: %v", err)
	}
	if err := cl.PersonUnlock(ctx, connector.PersonCredential{Kind: connector.PersonMember, Secret: testSecret}, 7); err != nil {
		t.Fatalf("member unlock: %v", err)
	}
	err := cl.PersonUnlock(ctx, connector.PersonCredential{Kind: connector.PersonGuest, Secret: testSecret}, 7)
	checkKind(t, err, latchkey.Forbidden)
	if ce := controllerErr(t, err); ce.Refusal != connector.RefusedRevoked {
		t.Errorf("refusal %q, want revoked", ce.Refusal)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Errorf("error carries the secret: %v", err)
	}
	reqs := srv.requests()
	for i, want := range []string{"KISI-ACCESS-KEY ", "KISI-LOGIN "} {
		if got := reqs[i].Header.Get("Authorization"); got != want+testSecret || reqs[i].Path != "/locks/7/unlock" {
			t.Errorf("request %d: %s %s, want %s%s on /locks/7/unlock", i, got, reqs[i].Path, want, "<secret>")
		}
	}
	if err := cl.PersonUnlock(ctx, connector.PersonCredential{Kind: connector.PersonGuest}, 7); latchkey.KindOf(err) != latchkey.Invalid || srv.count() != 3 {
		t.Errorf("unlock without a secret: %v after %d requests, want Invalid without a request", err, srv.count())
	}
}

// InviteGuest sends Kisi's invite shape (a Group invite, group_basic with
// the window, a guest access key, notify) under the Idempotency-Key when
// the controller honours one, and reads the person, role and secret back.
func TestInviteGuestWire(t *testing.T) {
	from, until := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC), time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusOK, []byte(`{"id":9,"resource_type":"Invite","invitee_type":"Guest","invitee_id":5,
			"role_assignment_id":9,"role_assignment":{"id":9,"resource_type":"RoleAssignment","role_id":"group_basic",
			"valid_from":"2026-05-04T08:00:00Z","valid_until":"2026-05-04T12:00:00Z"},
			"access_key":{"id":3,"resource_type":"AccessKey","link_enabled":true,"qr_code_enabled":true,"secret":"ak-secret"}}`))
	})
	cl := newTestClient(t, srv.URL, Options{IdempotentCreates: true})
	g, err := cl.InviteGuest(context.Background(), connector.GuestSpec{Name: "Ada Lovelace (Envoy Guest)", Email: "ada@example.com", QR: true,
		Role: connector.RoleSpec{GroupID: 2, ValidFrom: from, ValidUntil: until, IdempotencyKey: "k-1"}})
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	if g.Guest != (connector.PersonRef{Kind: connector.PersonGuest, ID: 5}) || g.Role.ID != 9 || g.Role.GroupID != 2 || g.Secret != "ak-secret" ||
		!g.Role.ValidUntil.Equal(until) {
		t.Errorf("grant %+v", g)
	}
	req := srv.requests()[0]
	if req.Method != http.MethodPost || req.Path != "/invites" || req.Header.Get("Idempotency-Key") != "k-1" {
		t.Errorf("request %s %s key %q", req.Method, req.Path, req.Header.Get("Idempotency-Key"))
	}
	var body struct {
		Invite map[string]any `json:"invite"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body.Invite)
	for _, want := range []string{`"invites_to_type":"Group"`, `"invites_to_id":2`, `"resource_type":"Guest"`, `"role_id":"group_basic"`,
		`"valid_from":"2026-05-04T08:00:00Z"`, `"valid_until":"2026-05-04T12:00:00Z"`, `"link_enabled":true`, `"qr_code_enabled":true`, `"notify":false`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("invite body %s lacks %s", b, want)
		}
	}
}

// Without update support (real Kisi), UpdateRole says so without a request,
// as UpdateLink does; a 410 on a keyed create is the domain's "creation
// gone".
func TestRoleUpdateUnsupportedAndCreationGone(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, http.StatusGone, []byte(`{"error":"The role assignment made under this Idempotency-Key was deleted","code":"f41000"}`))
	})
	cl := newTestClient(t, srv.URL, Options{IdempotentCreates: true})
	if err := cl.UpdateRole(context.Background(), 1, connector.RoleSpec{}); !errors.Is(err, connector.ErrUpdateUnsupported) || srv.count() != 0 {
		t.Errorf("update: %v after %d requests, want ErrUpdateUnsupported without a request", err, srv.count())
	}
	_, err := cl.CreateRole(context.Background(), connector.RoleSpec{GroupID: 1, Person: connector.PersonRef{Kind: connector.PersonMember, ID: 4}, IdempotencyKey: "k"})
	if !errors.Is(err, connector.ErrCreationGone) {
		t.Errorf("create under a spent key: %v, want ErrCreationGone", err)
	}
}
