package lockctl

import (
	"bytes"
	"fmt"
	"testing"
)

func withSecretKey(o *Options) { o.SecretKey = bytes.Repeat([]byte{7}, 32) }

// createUnder posts a link create under key and returns the answer and
// whether it was a replay.
func (e *env) createUnder(want int, group int64, key string) (createdLink, bool) {
	e.t.Helper()
	rec := e.must(want, req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Idempotency-Key": key},
		body: map[string]any{"group_link": map[string]any{"group_id": group, "name": "Ada Lovelace (Visitor)", "quick_response_code_type": "online"}}})
	if want != 200 {
		return createdLink{}, false
	}
	return decode[createdLink](e.t, rec), rec.Header().Get("Idempotent-Replayed") == "true"
}

// A create sent again under its Idempotency-Key (its answer was lost, or
// the client died before reading it) gets the very link it made, with the
// very same secrets, and no second link or event.
func TestCreateLinkIdempotencyKey(t *testing.T) {
	e := newEnv(t, withSecretKey)
	f := e.site()
	first, replayed := e.createUnder(200, f.visitors, "visit-1-group-1-a")
	if replayed {
		t.Errorf("first create marked replayed")
	}
	again, replayed := e.createUnder(200, f.visitors, "visit-1-group-1-a")
	if again.ID != first.ID || !replayed {
		t.Fatalf("create again under the same key: link %d (replayed %v), want link %d replayed", again.ID, replayed, first.ID)
	}
	if again.Secret != first.Secret || again.QuickResponseCodeToken == nil || *again.QuickResponseCodeToken != *first.QuickResponseCodeToken {
		t.Errorf("the replay handed out other secrets; want the same (whoever recorded the first keeps working)")
	}
	e.must(200, req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(first.Secret)})
	if links := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/group_links", auth: admin()})); len(links) != 1 {
		t.Errorf("%d links after the replay, want 1", len(links))
	}
	if evs := decode[[]kisiEvent](t, e.must(200, req{method: "GET", path: "/events?type=group_link.create", auth: admin()})); len(evs) != 1 ||
		evs[0].ObjectID == nil || *evs[0].ObjectID != first.ID {
		t.Errorf("group_link.create events %+v, want one, of link %d", evs, first.ID)
	}
	// The key belongs to its group.
	rec := e.do(req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Idempotency-Key": "visit-1-group-1-a"},
		body: map[string]any{"group_link": map[string]any{"group_id": f.staff, "name": "Ada Lovelace (Visitor)"}}})
	if rec.Code != 409 {
		t.Errorf("same key on another group: %d, want 409", rec.Code)
	}
	// A key that cannot be stored is refused.
	rec = e.do(req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Idempotency-Key": string(make([]byte, 200))},
		body: map[string]any{"group_link": map[string]any{"group_id": f.visitors, "name": "x"}}})
	if rec.Code != 422 {
		t.Errorf("oversized key: %d, want 422", rec.Code)
	}
}

// A key outlives its link: after the link is deleted, a create under the
// key that arrives late (cut off, then delivered) makes nothing.
func TestLateCreateAfterDeleteMakesNothing(t *testing.T) {
	e := newEnv(t, withSecretKey)
	f := e.site()
	l, _ := e.createUnder(200, f.visitors, "k-deleted")
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/group_links/%d", l.ID), auth: admin()})
	e.createUnder(410, f.visitors, "k-deleted")
	if links := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/group_links", auth: admin()})); len(links) != 0 {
		t.Errorf("%d links after a late create under a deleted link's key, want none", len(links))
	}
}

// Voiding a key settles a creation the client lost track of at once: the
// link it made is deleted, and one that has not arrived yet never will.
func TestVoidIdempotencyKey(t *testing.T) {
	e := newEnv(t, withSecretKey)
	f := e.site()
	void := func(key string) voidResponse {
		t.Helper()
		return decode[voidResponse](t, e.must(200, req{method: "POST", path: "/group_links/void", auth: admin(),
			body: map[string]any{"idempotency_key": key}}))
	}
	// Made, then voided: deleted, with its event; voiding again is a no-op.
	l, _ := e.createUnder(200, f.visitors, "k-made")
	if got := void("k-made"); got.LinkID == nil || *got.LinkID != l.ID {
		t.Errorf("void of a key that made link %d: %+v", l.ID, got)
	}
	if got := void("k-made"); got.LinkID != nil {
		t.Errorf("second void: %+v, want no link", got)
	}
	e.must(401, req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(l.Secret)})
	// Voided before its create arrived: the create makes nothing.
	if got := void("k-late"); got.LinkID != nil {
		t.Errorf("void of an unused key: %+v", got)
	}
	e.createUnder(410, f.visitors, "k-late")
	if links := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/group_links", auth: admin()})); len(links) != 0 {
		t.Errorf("%d links left, want none", len(links))
	}
}

// Without a secret key to derive secrets with, a controller refuses creates
// under a key rather than make links it could not hand back the same.
func TestIdempotencyKeyNeedsASecretKey(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	e.createUnder(422, f.visitors, "k")
}
