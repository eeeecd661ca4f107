package lockctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
)

// FuzzPeopleAPI sends arbitrary bodies to the person endpoints (users,
// guests, role assignments, shares, invites) and unlocks with a guest's
// access key. Whatever arrives, the controller must not answer 5xx, and
// every error must be a JSON body.
func FuzzPeopleAPI(f *testing.F) {
	e := newEnv(f, func(o *Options) { o.LinkRate = Rate{PerSecond: -1} })
	site := e.site()
	t0 := e.clock.Now()
	u := e.user(nil)
	ra := e.assign(groupRole("User", u, site.visitors, t0, t0.Add(3600e9)))
	inv := e.inviteGuest(site.visitors, "Fuzz Guest", t0, t0.Add(3600e9), nil)

	ops := []struct{ method, path, auth string }{
		{"POST", "/users", admin()},
		{"PATCH", fmt.Sprintf("/users/%d", u), admin()},
		{"POST", "/guests", admin()},
		{"POST", "/role_assignments", admin()},
		{"PATCH", fmt.Sprintf("/role_assignments/%d", ra), admin()},
		{"POST", "/shares", admin()},
		{"POST", "/invites", admin()},
		{"POST", "/members", admin()},
		{"POST", unlockPath(site.front), accessKey(inv.AccessKey.Secret)},
		{"POST", "/logins", admin()},
	}
	seeds := []string{
		`{"user":{"email":"a@example.com","metadata":{"k":[1]}}}`,
		`{"user":{"name":null,"metadata":null,"access_enabled":"no"}}`,
		`{"guest":{"name":"A","phone_number":12}}`,
		`{"role_assignment":{"assignee_type":"User","assignee_id":1,"applies_to_type":"Group","applies_to_id":1,"role_id":"group_basic","valid_until":"1969-12-31T23:59:59Z"}}`,
		`{"role_assignment":{"valid_from":"2026-03-02T08:00:00Z","valid_until":"2026-03-02T07:00:00Z","role_id":null}}`,
		`{"share":{"email":"a@example.com","group_id":-1,"role_id":"manager"}}`,
		`{"invite":{"invites_to_type":"Group","invites_to_id":1,"invitee":{"resource_type":"User","email":"b@example.com"},"role_assignment":{"role_id":"group_basic"}}}`,
		`{"invite":{"invites_to_type":"Place","invites_to_id":1,"invitee":{"resource_type":"Guest","name":"G"},"role_assignment":{"role_id":"place_observer","valid_until":"x"},"access_key":{"qr_code_enabled":true}}}`,
		`{"member":{"email":"c@example.com","metadata":{"a":"b"}}}`,
		`{"login":{"type":"device","email":"ada@example.com"}}`,
		`[]`, `null`, ``,
	}
	for i := range ops {
		for _, s := range seeds {
			f.Add(byte(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, op byte, body []byte) {
		o := ops[int(op)%len(ops)]
		hr := httptest.NewRequest(o.method, o.path, bytes.NewReader(body))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", o.auth)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, hr)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with body %q: status %d, body %s", o.method, o.path, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: error answer %d is not JSON: %q", o.method, o.path, rec.Code, rec.Body.String())
		}
	})
}
