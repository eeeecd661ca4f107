package lockctl

import (
	"fmt"
	"testing"
)

// A create sent again under its Idempotency-Key (its answer was lost, or the
// client died before reading it) gets the link it made, with fresh
// secrets, and no second link; the key is freed when the link is deleted.
func TestCreateLinkIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	create := func(group int64, key string) (createdLink, string) {
		t.Helper()
		rec := e.must(200, req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Idempotency-Key": key},
			body: map[string]any{"group_link": map[string]any{"group_id": group, "name": "Ada Lovelace (Visitor)", "quick_response_code_type": "online"}}})
		return decode[createdLink](t, rec), rec.Header().Get("Idempotent-Replayed")
	}
	first, replayed := create(f.visitors, "visit-1-group-1-a")
	if replayed != "" {
		t.Errorf("first create marked replayed")
	}
	again, replayed := create(f.visitors, "visit-1-group-1-a")
	if again.ID != first.ID || replayed != "true" {
		t.Fatalf("create again under the same key: link %d (replayed %q), want link %d replayed", again.ID, replayed, first.ID)
	}
	if again.Secret == first.Secret || again.QuickResponseCodeToken == nil || *again.QuickResponseCodeToken == *first.QuickResponseCodeToken {
		t.Errorf("the replay kept the first secrets; want fresh ones (the first were never delivered)")
	}
	// Only the secret handed out last opens the door.
	e.must(401, req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(first.Secret)})
	e.must(200, req{method: "POST", path: fmt.Sprintf("/locks/%d/unlock", f.front), auth: holder(again.Secret)})
	var links []idOnly
	links = decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/group_links", auth: admin()}))
	if len(links) != 1 {
		t.Errorf("%d links after the replay, want 1", len(links))
	}
	if evs := decode[[]idOnly](t, e.must(200, req{method: "GET", path: "/events?type=group_link.create", auth: admin()})); len(evs) != 1 {
		t.Errorf("%d group_link.create events, want 1", len(evs))
	}
	// The key belongs to its group.
	rec := e.do(req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Idempotency-Key": "visit-1-group-1-a"},
		body: map[string]any{"group_link": map[string]any{"group_id": f.staff, "name": "Ada Lovelace (Visitor)"}}})
	if rec.Code != 409 {
		t.Errorf("same key on another group: %d, want 409", rec.Code)
	}
	// Deleting the link frees the key.
	e.must(204, req{method: "DELETE", path: fmt.Sprintf("/group_links/%d", first.ID), auth: admin()})
	if again, _ := create(f.visitors, "visit-1-group-1-a"); again.ID == first.ID {
		t.Errorf("create after delete returned the deleted link")
	}
	// A key that cannot be stored is refused.
	rec = e.do(req{method: "POST", path: "/group_links", auth: admin(), header: map[string]string{"Idempotency-Key": string(make([]byte, 200))},
		body: map[string]any{"group_link": map[string]any{"group_id": f.visitors, "name": "x"}}})
	if rec.Code != 422 {
		t.Errorf("oversized key: %d, want 422", rec.Code)
	}
}
