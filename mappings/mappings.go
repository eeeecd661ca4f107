// Package mappings owns flow mappings: which controller groups a visitor of a
// given (location, flow) gets, and the rules for the access window. It
// imports only the root package.
package mappings

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	latchkey "github.com/latchkey/latchkey"
)

// Delivery says who sends the guest their link.
type Delivery string

// Delivery modes.
const (
	// DeliveryLatchkey: latchkey emails one pass link per visit.
	DeliveryLatchkey Delivery = "latchkey"
	// DeliveryController: the controller mails its own link (email is
	// passed to it); latchkey sends nothing.
	DeliveryController Delivery = "controller"
)

// Credential says what a visitor of the mapping gets on the controller.
type Credential string

// Credentials.
const (
	// CredentialLink: one group link per mapped group (the default).
	CredentialLink Credential = "link"
	// CredentialGuest: a Kisi guest with a group role assignment per mapped
	// group bounded by the visit's window, and an access key.
	CredentialGuest Credential = "guest"
	// CredentialMember: a Kisi user with a group_basic role assignment per
	// mapped group bounded by the window.
	CredentialMember Credential = "member"
)

// Person reports whether c gives access to a person (a guest or a user)
// rather than through links.
func (c Credential) Person() bool { return c == CredentialGuest || c == CredentialMember }

// MaxGuestIndicator bounds the guest indicator, in characters.
const MaxGuestIndicator = 40

// Bounds on durations, in minutes.
const (
	MaxDurationMinutes = 14 * 24 * 60
	MaxAdvanceMinutes  = 7 * 24 * 60
	MaxGraceMinutes    = 24 * 60
)

// Mapping maps visitors of one flow at one location to controller groups,
// with the rules that shape their access window.
type Mapping struct {
	ID              int64
	LocationID      string
	FlowID          string
	GroupIDs        []int64
	DurationMinutes int
	AdvanceMinutes  int
	OnlyInvited     bool
	RevokeOnSignOut bool
	GraceMinutes    int
	UntilEndOfDay   bool
	Delivery        Delivery
	// Credential is what a visitor gets: links, a guest or a member.
	Credential Credential
	// AppAccess and GuestIndicator are as in the Envoy–Kisi integration:
	// GuestIndicator is appended in brackets to the person's name (and to
	// link names, after the flow); AppAccess asks Kisi to tell a member
	// how to sign in to its app (with delivery "controller").
	AppAccess      bool
	GuestIndicator string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Duration returns the access duration.
func (m Mapping) Duration() time.Duration { return time.Duration(m.DurationMinutes) * time.Minute }

// Advance returns how long before the expected arrival access starts.
func (m Mapping) Advance() time.Duration { return time.Duration(m.AdvanceMinutes) * time.Minute }

// Grace returns how long access lasts after a sign-out.
func (m Mapping) Grace() time.Duration { return time.Duration(m.GraceMinutes) * time.Minute }

// Normalize fills defaults (delivery "latchkey", credential "link") and
// trims the guest indicator, and the brackets it is shown in, if typed.
func (m *Mapping) Normalize() {
	m.LocationID = strings.TrimSpace(m.LocationID)
	m.FlowID = strings.TrimSpace(m.FlowID)
	if m.Delivery == "" {
		m.Delivery = DeliveryLatchkey
	}
	if m.Credential == "" {
		m.Credential = CredentialLink
	}
	m.GuestIndicator = NormalizeIndicator(m.GuestIndicator)
}

// NormalizeIndicator trims a guest indicator and the brackets around it:
// "(Envoy Guest)" and "Envoy Guest" are the same indicator, shown as
// "Ada Lovelace (Envoy Guest)".
func NormalizeIndicator(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// WithIndicator is name with the guest indicator appended in brackets
// ("Ada Lovelace (Envoy Guest)"), or name alone when there is none.
func (m Mapping) WithIndicator(name string) string {
	ind := NormalizeIndicator(m.GuestIndicator)
	if ind == "" {
		return name
	}
	return name + " (" + ind + ")"
}

// Validate checks the mapping's own fields (not whether its groups exist on
// the controller). It returns an Invalid *latchkey.Error naming the field.
func (m Mapping) Validate() error {
	switch {
	case m.LocationID == "":
		return latchkey.Errorf(latchkey.Invalid, "location_id is required")
	case m.FlowID == "":
		return latchkey.Errorf(latchkey.Invalid, "flow_id is required")
	case len(m.GroupIDs) == 0:
		return latchkey.Errorf(latchkey.Invalid, "group_ids needs at least one group")
	case m.DurationMinutes <= 0 && !m.UntilEndOfDay:
		return latchkey.Errorf(latchkey.Invalid, "duration_minutes must be positive")
	case m.DurationMinutes < 0 || m.DurationMinutes > MaxDurationMinutes:
		return latchkey.Errorf(latchkey.Invalid, "duration_minutes must be between 1 and %d", MaxDurationMinutes)
	case m.AdvanceMinutes < 0 || m.AdvanceMinutes > MaxAdvanceMinutes:
		return latchkey.Errorf(latchkey.Invalid, "advance_minutes must be between 0 and %d", MaxAdvanceMinutes)
	case m.GraceMinutes < 0 || m.GraceMinutes > MaxGraceMinutes:
		return latchkey.Errorf(latchkey.Invalid, "grace_minutes must be between 0 and %d", MaxGraceMinutes)
	case m.Delivery != DeliveryLatchkey && m.Delivery != DeliveryController:
		return latchkey.Errorf(latchkey.Invalid, "delivery must be %q or %q", DeliveryLatchkey, DeliveryController)
	case m.Credential != CredentialLink && m.Credential != CredentialGuest && m.Credential != CredentialMember:
		return latchkey.Errorf(latchkey.Invalid, "credential must be %q, %q or %q", CredentialLink, CredentialGuest, CredentialMember)
	}
	seen := map[int64]bool{}
	for _, g := range m.GroupIDs {
		if g <= 0 {
			return latchkey.Errorf(latchkey.Invalid, "group_ids: %d is not a group id", g)
		}
		if seen[g] {
			return latchkey.Errorf(latchkey.Invalid, "group_ids: %d is listed twice", g)
		}
		seen[g] = true
	}
	if utf8.RuneCountInString(m.GuestIndicator) > MaxGuestIndicator {
		return latchkey.Errorf(latchkey.Invalid, "guest_indicator is longer than %d characters", MaxGuestIndicator)
	}
	return nil
}

// String identifies the mapping in logs and timelines.
func (m Mapping) String() string {
	return fmt.Sprintf("mapping %d (location %s, flow %s)", m.ID, m.LocationID, m.FlowID)
}
