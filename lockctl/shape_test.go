package lockctl

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/latchkey/latchkey/internal/fixtures"
)

// loadFixture decodes one captured Kisi payload.
func loadFixture(t *testing.T, name string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(fixtures.Kisi(name), &v); err != nil {
		t.Fatalf("decode fixture %s: %v", name, err)
	}
	return v
}

// sameShape reports every way got fails to have fixture's shape: a key of
// the fixture that got lacks, or a value of another JSON type. null matches
// anything, since Kisi's fields are nullable.
func sameShape(fixture, got any, path string) []string {
	if fixture == nil || got == nil {
		return nil
	}
	switch f := fixture.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want object", path, got)}
		}
		var out []string
		for k, fv := range f {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing", path, k))
				continue
			}
			out = append(out, sameShape(fv, gv, path+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %T, want array", path, got)}
		}
		if len(f) > 0 && len(g) > 0 {
			return sameShape(f[0], g[0], path+"[0]")
		}
		return nil
	default:
		if fmt.Sprintf("%T", fixture) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: got %T, want %T", path, got, fixture)}
		}
		return nil
	}
}

// checkShape fails t when body does not have the shape of fixture.
func checkShape(t *testing.T, fixture any, body []byte) {
	t.Helper()
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	for _, p := range sameShape(fixture, got, "$") {
		t.Error(p)
	}
}

// fixtureKey returns one member of an object fixture.
func fixtureKey(t *testing.T, fixture any, key string) any {
	t.Helper()
	m, ok := fixture.(map[string]any)
	if !ok || m[key] == nil {
		t.Fatalf("fixture has no %q", key)
	}
	return m[key]
}

// The typed mirrors below follow Kisi's OpenAPI schemas (additionalProperties
// false); decodeStrict fails on any field they do not list.

type kisiRef struct {
	ID           int64  `json:"id"`
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
}

type kisiUser struct {
	ID           *int64  `json:"id"`
	ResourceType string  `json:"resource_type"`
	Email        *string `json:"email"`
	Name         string  `json:"name"`
}

type kisiGroupLink struct {
	ID                    int64    `json:"id"`
	ResourceType          string   `json:"resource_type"`
	Name                  string   `json:"name"`
	Email                 *string  `json:"email"`
	Phone                 *string  `json:"phone"`
	LastUsedAt            *string  `json:"last_used_at"`
	LinkEnabled           bool     `json:"link_enabled"`
	QuickResponseCodeType *string  `json:"quick_response_code_type"`
	ValidFrom             *string  `json:"valid_from"`
	ValidUntil            *string  `json:"valid_until"`
	CreatedAt             string   `json:"created_at"`
	UpdatedAt             string   `json:"updated_at"`
	GroupID               int64    `json:"group_id"`
	Group                 kisiRef  `json:"group"`
	CreatedByType         *string  `json:"created_by_type"`
	CreatedByID           *int64   `json:"created_by_id"`
	CreatedBy             kisiUser `json:"created_by"`
	IssuedByID            *int64   `json:"issued_by_id"`
	IssuedBy              kisiUser `json:"issued_by"`
}

type kisiGroupLinkCreated struct {
	kisiGroupLink
	Secret                 *string `json:"secret"`
	QuickResponseCodeToken *string `json:"quick_response_code_token"`
	QuickResponseCodeImage *string `json:"quick_response_code_image"`
}

type kisiPlaceRef struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

// kisiHolderLock is the lock a group link holder gets.
type kisiHolderLock struct {
	ID              int64        `json:"id"`
	Configured      bool         `json:"configured"`
	Description     *string      `json:"description"`
	LockedDownSince *string      `json:"locked_down_since"`
	LockedDown      bool         `json:"locked_down"`
	Name            string       `json:"name"`
	Online          *bool        `json:"online"`
	Open            bool         `json:"open"`
	UnlockedUntil   *string      `json:"unlocked_until"`
	Unlocked        bool         `json:"unlocked"`
	PlaceID         int64        `json:"place_id"`
	Place           kisiPlaceRef `json:"place"`
}

// kisiEvent is Kisi's Event, plus lockctl's id, client_ip and user_agent.
type kisiEvent struct {
	UUID                string  `json:"uuid"`
	ID                  int64   `json:"id"`
	Type                string  `json:"type"`
	Action              string  `json:"action"`
	ActorType           *string `json:"actor_type"`
	ActorID             *int64  `json:"actor_id"`
	ActorName           *string `json:"actor_name"`
	ActorEmail          *string `json:"actor_email"`
	AuthenticatedByType *string `json:"authenticated_by_type"`
	AuthenticatedByID   *int64  `json:"authenticated_by_id"`
	AuthorizedByType    *string `json:"authorized_by_type"`
	AuthorizedByID      *int64  `json:"authorized_by_id"`
	AuthorizedByRoleID  *string `json:"authorized_by_role_id"`
	ObjectType          string  `json:"object_type"`
	ObjectID            *int64  `json:"object_id"`
	ObjectName          string  `json:"object_name"`
	Success             bool    `json:"success"`
	Code                *string `json:"code"`
	Message             *string `json:"message"`
	ErrorCode           *string `json:"error_code"`
	ErrorMessage        *string `json:"error_message"`
	PlaceID             *int64  `json:"place_id"`
	ClientIP            *string `json:"client_ip"`
	UserAgent           *string `json:"user_agent"`
	CreatedAt           string  `json:"created_at"`
}

type kisiEventSet struct {
	ID        int64       `json:"id"`
	CreatedAt string      `json:"created_at"`
	Status    string      `json:"status"`
	Events    []kisiEvent `json:"events"`
	Cursor    *string     `json:"cursor"`
}
