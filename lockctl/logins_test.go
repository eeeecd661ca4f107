package lockctl

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/internal/testenv"
)

// kisiLoginItem is one entry of GET /logins: exactly these fields.
type kisiLoginItem struct {
	ID         int64   `json:"id"`
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
}

// mint creates a login with the given fields and returns its id and secret.
func (e *env) mint(fields map[string]any) (int64, string) {
	e.t.Helper()
	got := decode[struct {
		User struct {
			ID int64 `json:"id"`
		} `json:"user"`
		Secret string `json:"secret"`
	}](e.t, e.must(200, req{method: "POST", path: "/logins", auth: admin(), body: map[string]any{"login": fields}}))
	return got.User.ID, got.Secret
}

func TestMintedLoginsListAndRevoke(t *testing.T) {
	e := newEnv(t, nil)
	t0 := e.clock.Now()
	id, secret := e.mint(map[string]any{"name": "door panel", "expire": false})
	list := decodeStrict[[]kisiLoginItem](t, e.must(200, req{method: "GET", path: "/logins", auth: admin()}))
	want := []kisiLoginItem{{ID: id, Name: "door panel", Type: "device", CreatedAt: rfc(t0)}}
	if d := cmp.Diff(want, list); d != "" {
		t.Errorf("logins (-want +got):\n%s", d)
	}

	e.clock.Set(t0.Add(time.Hour))
	e.must(200, req{method: "GET", path: "/places", auth: "KISI-LOGIN " + secret})
	list = decodeStrict[[]kisiLoginItem](t, e.must(200, req{method: "GET", path: "/logins", auth: admin()}))
	if len(list) != 1 || list[0].LastUsedAt == nil || *list[0].LastUsedAt != rfc(t0.Add(time.Hour)) {
		t.Errorf("logins after use %+v, want last_used_at %s", list, rfc(t0.Add(time.Hour)))
	}

	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/logins/%d", id), auth: admin()})
	wantError(t, e.do(req{method: "GET", path: "/places", auth: "KISI-LOGIN " + secret}), 401, CodeNotAuthorized)
	wantError(t, e.do(req{method: "DELETE", path: fmt.Sprintf("/logins/%d", id), auth: admin()}), 404, CodeNotFound)
	if got := decodeStrict[[]kisiLoginItem](t, e.must(200, req{method: "GET", path: "/logins", auth: admin()})); len(got) != 0 {
		t.Errorf("logins after revoke %+v, want none", got)
	}
	evs := decodeStrict[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=login.create,login.destroy", auth: admin()}))
	if len(evs) != 2 || evs[0].Type != EventLoginDestroy || evs[0].ObjectID == nil || *evs[0].ObjectID != id {
		t.Errorf("login events %+v, want the destroy of %d first", evs, id)
	}
}

func TestMintedLoginsEndWithTheirMintingKey(t *testing.T) {
	e := newEnv(t, nil)
	_, secret := e.mint(map[string]any{"expire": false})
	e.must(200, req{method: "GET", path: "/places", auth: "KISI-LOGIN " + secret})

	// The bootstrap key is rotated: the same database, a new key.
	const rotated = "rotated-admin-key-9876543210"
	c2 := New(testenv.Logger(t), e.c.store.db, nil, nil, Options{AdminAPIKey: rotated, Now: e.clock.Now})
	e2 := &env{t: t, c: c2, h: c2.Handler(), clock: e.clock}
	wantError(t, e2.do(req{method: "GET", path: "/places", auth: "KISI-LOGIN " + secret}), 401, CodeNotAuthorized)
	if got := decodeStrict[[]kisiLoginItem](t, e2.must(200, req{method: "GET", path: "/logins", auth: "KISI-LOGIN " + rotated})); len(got) != 0 {
		t.Errorf("logins under the new key %+v, want none", got)
	}
	// The sweep removes them once they have been unused for a day.
	if err := c2.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if n := e.counts()["*lockctl.Login"]; n != 1 {
		t.Errorf("%d logins left after an early sweep, want the old key's one kept", n)
	}
	e.clock.Set(e.clock.Now().Add(staleLoginGrace + time.Second))
	if err := c2.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if n := e.counts()["*lockctl.Login"]; n != 0 {
		t.Errorf("%d logins of the old key left after the sweep", n)
	}

	// Without a bootstrap key no minted key works.
	_, secret = e.mint(nil)
	c3 := New(testenv.Logger(t), e.c.store.db, nil, nil, Options{Now: e.clock.Now})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/places", nil)
	r.Header.Set("Authorization", "KISI-LOGIN "+secret)
	c3.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("minted key without a bootstrap key: %d, want 401", rec.Code)
	}
}

func TestMintedLoginsExpireUnlessAskedNotTo(t *testing.T) {
	e := newEnv(t, nil)
	_, expiring := e.mint(nil)
	_, lasting := e.mint(map[string]any{"expire": "false"})
	e.clock.Set(e.clock.Now().Add(loginIdleExpiry - time.Minute))
	e.must(200, req{method: "GET", path: "/places", auth: "KISI-LOGIN " + expiring})
	e.clock.Set(e.clock.Now().Add(loginIdleExpiry))
	wantError(t, e.do(req{method: "GET", path: "/places", auth: "KISI-LOGIN " + expiring}), 401, CodeNotAuthorized)
	e.must(200, req{method: "GET", path: "/places", auth: "KISI-LOGIN " + lasting})
}

func TestMintedLoginsAreBounded(t *testing.T) {
	e := newEnv(t, nil)
	for range maxLogins {
		e.mint(nil)
	}
	wantFieldError(t, e.do(req{method: "POST", path: "/logins", auth: admin(), body: map[string]any{"login": map[string]any{}}}), "login")
	wantFieldError(t, e.do(req{method: "POST", path: "/logins", auth: admin(), body: map[string]any{"login": map[string]any{"name": "a\x00"}}}), "name")
}
