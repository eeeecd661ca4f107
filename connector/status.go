package connector

// Status is the state of a visit's access, as decided from its facts and
// then driven onto the controller by the reconciler.
type Status string

// The statuses of a visit.
const (
	// StatusHeld: the visitor awaits a block-list review; no usable access.
	StatusHeld Status = "held"
	// StatusScheduled: the access window has not started yet.
	StatusScheduled Status = "scheduled"
	// StatusActive: the access window is open.
	StatusActive Status = "active"
	// StatusRevoked: access was taken away (sign-out, removed invite,
	// block-list denial, or by staff).
	StatusRevoked Status = "revoked"
	// StatusExpired: the access window has ended.
	StatusExpired Status = "expired"
	// StatusIgnored: the visit gets no access by rule (unmapped flow,
	// walk-in on an invited-only flow, nothing to base a window on).
	StatusIgnored Status = "ignored"
	// StatusFailed: applying the decision to the controller failed; a
	// retry or the reconciler may still fix it.
	StatusFailed Status = "failed"
)

// Final reports whether s is an end state: revoked, expired or ignored.
// Failed is not final, since a retry or reconciliation may fix it.
func (s Status) Final() bool {
	switch s {
	case StatusRevoked, StatusExpired, StatusIgnored:
		return true
	}
	return false
}

// WantsLinks reports whether access links should exist on the controller
// for a visit in status s: scheduled and active.
func (s Status) WantsLinks() bool {
	return s == StatusScheduled || s == StatusActive
}

// StatusNames lists every visit status, in lifecycle order.
func StatusNames() []string {
	return []string{string(StatusHeld), string(StatusScheduled), string(StatusActive), string(StatusRevoked),
		string(StatusExpired), string(StatusIgnored), string(StatusFailed)}
}
