package connector

import (
	"context"
	"errors"
	"time"
)

// LinkSpec is the desired shape of one access link on the controller.
type LinkSpec struct {
	GroupID int64
	// Name is shown in the controller's audit log: the guest's full name,
	// then the flow in brackets.
	Name string
	// Email, when set, makes the controller mail the link itself.
	Email      string
	ValidFrom  time.Time
	ValidUntil time.Time
	Enabled    bool
	// QRType asks for a QR code ("online"); "" for none.
	QRType string
	// IdempotencyKey names this creation, for a controller that recognises
	// a create sent again (see IdempotentCreator).
	IdempotencyKey string
}

// IdempotentCreator is an AccessControl whose CreateLink, sent again with
// the same LinkSpec.IdempotencyKey, returns the link the first call made
// (with the same secret) instead of making a second one.
type IdempotentCreator interface {
	IdempotentCreates() bool
	// VoidCreation makes sure nothing created under key is or will be
	// live: the link it made is deleted (its id returned, 0 if none), and
	// a create under key arriving later makes nothing (ErrCreationGone).
	VoidCreation(ctx context.Context, key string) (int64, error)
}

// ErrCreationGone marks a create under an idempotency key whose link was
// deleted, or whose key was voided: it made nothing.
var ErrCreationGone = errors.New("the link made under this idempotency key is gone")

// Link is an access link as the controller reports it. Secret, QRToken and
// QRImagePNG are only known from the create response.
type Link struct {
	ID         int64
	GroupID    int64
	Name       string
	Email      string
	ValidFrom  *time.Time
	ValidUntil *time.Time
	Enabled    bool
	LastUsedAt *time.Time
	Secret     string
	QRToken    string
	QRImagePNG []byte
}

// Group is an access group on the controller; a link opens its locks.
type Group struct {
	ID         int64
	Name       string
	PlaceID    int64
	LocksCount int
}

// Place is a site of the controller's (a building, an office).
type Place struct {
	ID   int64
	Name string
}

// PlaceLister is an AccessControl that lists its places with their names.
type PlaceLister interface {
	ListPlaces(ctx context.Context) ([]Place, error)
}

// Lock is a door as a link holder sees it.
type Lock struct {
	ID         int64
	Name       string
	Online     bool
	LockedDown bool
	PlaceID    int64
	PlaceName  string
}

// ErrUpdateUnsupported is returned by AccessControl.UpdateLink when the
// controller has no update call (real Kisi); callers delete and recreate.
var ErrUpdateUnsupported = errors.New("controller cannot update links in place")

// ErrNotSent marks a failed call whose request never reached the
// controller (the connection was refused, or it failed before the request
// was written): a link creation that failed so made no link.
var ErrNotSent = errors.New("request not sent")

// ControllerError is an error answer from the controller, with the
// controller's own error code when it sent one, and what that code means
// to the domain (Refusal; empty when it means nothing known).
type ControllerError struct {
	Status  int
	Code    string
	Message string
	Refusal Refusal
}

// Refusal is why the controller refused a guest's unlock, in the domain's
// words; the controller client translates its wire codes into these.
type Refusal string

// The refusals a guest is told about.
const (
	RefusedNotStarted         Refusal = "not_started"
	RefusedEnded              Refusal = "ended"
	RefusedRevoked            Refusal = "revoked"
	RefusedDoorOffline        Refusal = "door_offline"
	RefusedNoAnswer           Refusal = "no_answer"
	RefusedDoorLockedDown     Refusal = "door_locked_down"
	RefusedBuildingLockedDown Refusal = "building_locked_down"
	RefusedTooMany            Refusal = "too_many"
)

func (e *ControllerError) Error() string {
	if e.Code != "" {
		return "controller: " + e.Message + " (" + e.Code + ")"
	}
	return "controller: " + e.Message
}

// AccessControl is a Kisi-compatible access controller. Implementations are
// safe for concurrent use. Errors carry a latchkey Kind: NotFound for a
// missing link, Unavailable for a controller that cannot be reached or
// answers 5xx, TooMany for 429 (both transient), Invalid for a refused
// request (permanent);
// the cause is a *ControllerError when the controller answered.
type AccessControl interface {
	// CreateLink creates a link and returns it with its secret and QR.
	CreateLink(ctx context.Context, spec LinkSpec) (Link, error)
	// UpdateLink changes name, window and enabled flag of link id, keeping
	// its secret. It returns ErrUpdateUnsupported where the controller
	// cannot (real Kisi).
	UpdateLink(ctx context.Context, id int64, spec LinkSpec) (Link, error)
	// DeleteLink deletes link id; a missing link is a NotFound error.
	DeleteLink(ctx context.Context, id int64) error
	// ListLinks returns every link of the given groups (all groups when
	// none are given), following the controller's paging.
	ListLinks(ctx context.Context, groupIDs ...int64) ([]Link, error)
	// ListGroups returns every group, following the controller's paging.
	ListGroups(ctx context.Context) ([]Group, error)
	// LinkLocks lists the locks a link holder with secret may open.
	LinkLocks(ctx context.Context, secret string) ([]Lock, error)
	// GroupDoors returns the doors (locks) of every group, as the
	// controller's admin sees them: the doors each group's links open.
	GroupDoors(ctx context.Context) (map[int64][]Lock, error)
	// Unlock unlocks lock id as the holder of secret. A refusal is an
	// error whose cause is a *ControllerError with the controller's code.
	Unlock(ctx context.Context, secret string, lockID int64) error
}

// ClientInfo identifies the person behind a holder call (a guest unlocking
// from the pass page), so the controller's audit log records their address
// and browser rather than latchkey's.
type ClientInfo struct {
	IP        string
	UserAgent string
}

type clientInfoKey struct{}

// WithClientInfo returns ctx carrying ci.
func WithClientInfo(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, ci)
}

// ClientInfoFrom returns the ClientInfo in ctx, if any.
func ClientInfoFrom(ctx context.Context) (ClientInfo, bool) {
	ci, ok := ctx.Value(clientInfoKey{}).(ClientInfo)
	return ci, ok
}
