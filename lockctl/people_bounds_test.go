package lockctl

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPeopleBounds(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	long := func(n int) string { return strings.Repeat("é", n) }
	many := map[string]any{}
	for i := range maxMetadataKeys + 1 {
		many[fmt.Sprint("k", i)] = i
	}
	g := e.guest("Grace")
	invite := func(invitee map[string]any) map[string]any {
		return map[string]any{"invites_to_type": "Group", "invites_to_id": f.visitors, "invitee": invitee,
			"role_assignment": map[string]any{"role_id": "group_basic"}}
	}
	tests := []struct {
		name, path, wrap, field string
		fields                  map[string]any
	}{
		{"user email", "/users", "user", "email", map[string]any{"email": strings.Repeat("a", maxEmail) + "@example.com"}},
		{"user name", "/users", "user", "name", map[string]any{"email": "a@example.com", "name": long(maxPersonName + 1)}},
		{"user name NUL", "/users", "user", "name", map[string]any{"email": "a@example.com", "name": "A\x00"}},
		{"user notes", "/users", "user", "notes", map[string]any{"email": "a@example.com", "notes": long(maxNotes + 1)}},
		{"user image", "/users", "user", "image", map[string]any{"email": "a@example.com", "image": "https://x/" + long(maxImage)}},
		{"metadata keys", "/users", "user", "metadata", map[string]any{"email": "a@example.com", "metadata": many}},
		{"metadata key", "/users", "user", "metadata", map[string]any{"email": "a@example.com", "metadata": map[string]any{long(maxMetadataKey + 1): 1}}},
		{"member email", "/members", "member", "email", map[string]any{"email": "a\x00@example.com"}},
		{"guest name", "/guests", "guest", "name", map[string]any{"name": long(maxPersonName + 1)}},
		{"guest email", "/guests", "guest", "email", map[string]any{"name": "G", "email": strings.Repeat("a", maxEmail) + "@example.com"}},
		{"role id", "/role_assignments", "role_assignment", "role_id", map[string]any{"assignee_type": "Guest", "assignee_id": g,
			"applies_to_type": "Group", "applies_to_id": f.visitors, "role_id": long(1000)}},
		{"assignee type", "/role_assignments", "role_assignment", "assignee_type", map[string]any{"assignee_type": long(1000),
			"assignee_id": g, "applies_to_type": "Group", "applies_to_id": f.visitors, "role_id": "group_basic"}},
		{"share email", "/shares", "share", "email", map[string]any{"email": strings.Repeat("a", maxEmail) + "@example.com", "group_id": f.visitors}},
		{"share window", "/shares", "share", "valid_until", map[string]any{"email": "a@example.com", "group_id": f.visitors, "valid_until": "0000-01-01T00:00:00Z"}},
		{"invitee name", "/invites", "invite", "name", invite(map[string]any{"resource_type": "Guest", "name": long(maxPersonName + 1)})},
		{"invitee email", "/invites", "invite", "invitee.email", invite(map[string]any{"resource_type": "User", "email": "x\x00@example.com"})},
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
	u := e.user(map[string]any{"name": long(maxPersonName), "notes": long(maxNotes)})
	wantFieldError(t, e.do(req{method: "PATCH", path: fmt.Sprintf("/users/%d", u), auth: admin(),
		body: map[string]any{"user": map[string]any{"notes": long(maxNotes + 1)}}}), "notes")

	t.Run("role assignments per person", func(t *testing.T) {
		for i := range maxAssignmentsPerPerson {
			id := decode[idOnly](t, e.must(200, req{method: "POST", path: "/groups", auth: admin(),
				body: map[string]any{"group": map[string]any{"name": fmt.Sprint("G", i), "place_id": f.placeID}}})).ID
			e.assign(groupRole("User", u, id, t0, t0.Add(time.Hour)))
		}
		wantFieldError(t, e.do(req{method: "POST", path: "/role_assignments", auth: admin(), body: map[string]any{
			"role_assignment": groupRole("User", u, f.visitors, t0, t0.Add(time.Hour))}}), "assignee")
	})
}

// TestOneRolePerGroupUnderConcurrency sends the same role assignment many
// times at once: exactly one is created, the others are 422s, none a 5xx.
func TestOneRolePerGroupUnderConcurrency(t *testing.T) {
	e := newEnv(t, nil)
	f := e.site()
	g := e.guest("Grace")
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do(req{method: "POST", path: "/role_assignments", auth: admin(), body: map[string]any{"role_assignment": map[string]any{
				"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Group", "applies_to_id": f.visitors, "role_id": "group_basic"}}}).Code
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			created++
		case http.StatusUnprocessableEntity:
		default:
			t.Errorf("status %d, want 200 or 422", c)
		}
	}
	if created != 1 {
		t.Errorf("%d role assignments created, want 1 (statuses %v)", created, codes)
	}
}
