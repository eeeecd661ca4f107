package mappings_test

import (
	"strings"
	"testing"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mappings"
)

func validMapping() mappings.Mapping {
	return mappings.Mapping{LocationID: "1", FlowID: "2", GroupIDs: []int64{1}, DurationMinutes: 60}
}

func TestCredentialDefaultsToLinkAndIsChecked(t *testing.T) {
	m := validMapping()
	m.Normalize()
	if m.Credential != mappings.CredentialLink {
		t.Fatalf("default credential %q, want link", m.Credential)
	}
	for _, c := range []mappings.Credential{"link", "guest", "member"} {
		m.Credential = c
		if err := m.Validate(); err != nil {
			t.Errorf("credential %q: %v", c, err)
		}
	}
	m.Credential = "badge"
	err := m.Validate()
	if latchkey.KindOf(err) != latchkey.Invalid || !strings.HasPrefix(latchkey.Message(err), "credential") {
		t.Fatalf("credential badge: %v, want an Invalid error naming credential", err)
	}
}

func TestGuestIndicatorInBrackets(t *testing.T) {
	for _, typed := range []string{"Envoy Guest", " (Envoy Guest) ", "(Envoy Guest)"} {
		m := validMapping()
		m.GuestIndicator = typed
		m.Normalize()
		if got := m.WithIndicator("Ada Lovelace"); got != "Ada Lovelace (Envoy Guest)" {
			t.Errorf("indicator %q: name %q, want \"Ada Lovelace (Envoy Guest)\"", typed, got)
		}
	}
	if got := validMapping().WithIndicator("Ada Lovelace"); got != "Ada Lovelace" {
		t.Errorf("no indicator: %q", got)
	}
	m := validMapping()
	m.GuestIndicator = strings.Repeat("é", 40)
	m.Normalize()
	if err := m.Validate(); err != nil {
		t.Errorf("40 characters: %v", err)
	}
	m.GuestIndicator = strings.Repeat("g", 41)
	m.Normalize()
	if err := m.Validate(); latchkey.KindOf(err) != latchkey.Invalid {
		t.Errorf("41 characters: %v, want Invalid", err)
	}
}
