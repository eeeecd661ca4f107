// Package mappings owns flow mappings: which controller groups a visitor of a
// given (location, flow) gets, and the rules for the access window. It
// imports only the root package.
package mappings

import (
	"fmt"
	"strings"
	"time"

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
	// AppAccess and GuestIndicator are carried as metadata, as in the
	// Envoy–Kisi integration; GuestIndicator is appended to link names.
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

// Normalize fills defaults: delivery "latchkey".
func (m *Mapping) Normalize() {
	m.LocationID = strings.TrimSpace(m.LocationID)
	m.FlowID = strings.TrimSpace(m.FlowID)
	if m.Delivery == "" {
		m.Delivery = DeliveryLatchkey
	}
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
	if len(m.GuestIndicator) > 40 {
		return latchkey.Errorf(latchkey.Invalid, "guest_indicator is longer than 40 characters")
	}
	return nil
}

// String identifies the mapping in logs and timelines.
func (m Mapping) String() string {
	return fmt.Sprintf("mapping %d (location %s, flow %s)", m.ID, m.LocationID, m.FlowID)
}
