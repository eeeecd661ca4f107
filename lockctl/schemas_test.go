package lockctl

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"testing"
	"time"
)

// kisiSchema is one entry of testdata/kisi-schemas/required.json.
type kisiSchema struct {
	Required []string `json:"required"`
	Optional []string `json:"optional"`
	Closed   bool     `json:"closed"`
}

func loadSchemas(t *testing.T) map[string]kisiSchema {
	t.Helper()
	raw, err := os.ReadFile("testdata/kisi-schemas/required.json")
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]kisiSchema
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode schemas: %v", err)
	}
	return out
}

// schemaProblems lists how obj fails schema: required keys it lacks and,
// for a closed schema, keys it has that the schema does not know.
func schemaProblems(s kisiSchema, obj map[string]any) []string {
	var out []string
	for _, k := range s.Required {
		if _, ok := obj[k]; !ok {
			out = append(out, "missing "+k)
		}
	}
	if s.Closed {
		for k := range obj {
			if !slices.Contains(s.Required, k) && !slices.Contains(s.Optional, k) {
				out = append(out, "unknown "+k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestResponsesMatchKisiSchemas(t *testing.T) {
	schemas := loadSchemas(t)
	e := newEnv(t, nil)
	f := e.site()
	t0 := e.clock.Now()
	u := e.user(nil)
	groupRA := e.assign(groupRole("User", u, f.visitors, t0, t0.Add(time.Hour)))
	g := e.guest("Grace")
	placeRA := e.assign(map[string]any{"assignee_type": "Guest", "assignee_id": g, "applies_to_type": "Place",
		"applies_to_id": f.placeID, "role_id": "place_observer"})
	orgRA := e.assign(map[string]any{"assignee_type": "User", "assignee_id": u, "applies_to_type": "Organization",
		"applies_to_id": 1, "role_id": "organization_observer"})
	share := decode[idOnly](t, e.must(200, req{method: "POST", path: "/shares", auth: admin(), body: map[string]any{
		"share": map[string]any{"email": "bob@example.com", "group_id": f.staff}}}))
	invite := e.do(req{method: "POST", path: "/invites", auth: admin(), body: map[string]any{"invite": map[string]any{
		"invites_to_type": "Group", "invites_to_id": f.visitors, "notify": false,
		"invitee":         map[string]any{"resource_type": "Guest", "name": "Ada", "email": nil, "phone_number": nil},
		"role_assignment": map[string]any{"role_id": "group_basic", "valid_from": rfc(t0), "valid_until": rfc(t0.Add(time.Hour))}}}})

	objects := map[string]struct {
		schema string
		body   []byte
	}{
		"GET /users/{id}":               {"User", e.must(200, req{method: "GET", path: fmt.Sprintf("/users/%d", u), auth: admin()}).Body.Bytes()},
		"GET /guests/{id}":              {"Guest", e.must(200, req{method: "GET", path: fmt.Sprintf("/guests/%d", g), auth: admin()}).Body.Bytes()},
		"GET /role_assignments/{group}": {"RoleAssignment.Group", e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", groupRA), auth: admin()}).Body.Bytes()},
		"GET /role_assignments/{place}": {"RoleAssignment.Place", e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", placeRA), auth: admin()}).Body.Bytes()},
		"GET /role_assignments/{org}":   {"RoleAssignment.Organization", e.must(200, req{method: "GET", path: fmt.Sprintf("/role_assignments/%d", orgRA), auth: admin()}).Body.Bytes()},
		"GET /roles/group_basic":        {"Role", e.must(200, req{method: "GET", path: "/roles/group_basic", auth: admin()}).Body.Bytes()},
		"POST /invites":                 {"Invite", invite.Body.Bytes()},
		"GET /shares/{id}":              {"Share", e.must(200, req{method: "GET", path: fmt.Sprintf("/shares/%d", share.ID), auth: admin()}).Body.Bytes()},
		"GET /members/{id}":             {"Member", e.must(200, req{method: "GET", path: fmt.Sprintf("/members/%d", u), auth: admin()}).Body.Bytes()},
		"GET /users (first)":            {"User", firstOf(t, e, "/users")},
		"GET /guests (first)":           {"Guest", firstOf(t, e, "/guests")},
		"GET /role_assignments (first)": {"RoleAssignment.Group", firstOf(t, e, "/role_assignments")},
		"GET /shares (first)":           {"Share", firstOf(t, e, "/shares")},
		"GET /roles (first)":            {"Role", firstOf(t, e, "/roles")},
	}
	for name, o := range objects {
		t.Run(name, func(t *testing.T) {
			var obj map[string]any
			if err := json.Unmarshal(o.body, &obj); err != nil {
				t.Fatalf("decode %s: %v", o.body, err)
			}
			if p := schemaProblems(schemas[o.schema], obj); len(p) > 0 {
				t.Errorf("%s as %s: %v", name, o.schema, p)
			}
		})
	}
}

// firstOf returns the first item of a list, as JSON.
func firstOf(t *testing.T, e *env, path string) []byte {
	t.Helper()
	items := decode[[]json.RawMessage](t, e.must(200, req{method: "GET", path: path, auth: admin()}))
	if len(items) == 0 {
		t.Fatalf("GET %s: empty", path)
	}
	return items[0]
}
