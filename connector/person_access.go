package connector

import (
	"context"
	"time"
)

// PersonKind is who a person credential belongs to: a controller guest or
// a controller user (a member).
type PersonKind string

// Kinds of person.
const (
	PersonGuest  PersonKind = "guest"
	PersonMember PersonKind = "member"
)

// PersonRef names a person on the controller.
type PersonRef struct {
	Kind PersonKind
	ID   int64
}

// Person is a controller guest or user.
type Person struct {
	PersonRef
	Name  string
	Email string
}

// RoleSpec is the desired shape of one group role assignment: the person
// may open the group's doors from ValidFrom until ValidUntil.
type RoleSpec struct {
	GroupID    int64
	Person     PersonRef
	ValidFrom  time.Time
	ValidUntil time.Time
	// Notify makes the controller tell the person about their access.
	Notify bool
	// IdempotencyKey names this creation, for a controller that
	// recognises a create sent again (IdempotentCreator).
	IdempotencyKey string
}

// RoleAssignment is a group role assignment as the controller reports it.
type RoleAssignment struct {
	ID      int64
	GroupID int64
	Person  PersonRef
	// PersonName is the assignee's name, where the controller lists it.
	PersonName string
	ValidFrom  *time.Time
	ValidUntil *time.Time
}

// GuestSpec asks for a new guest, their role on Role.GroupID and an
// access key, in one call.
type GuestSpec struct {
	Name  string
	Email string
	Role  RoleSpec
	// QR asks for a reader QR code on the access key.
	QR bool
}

// GuestGrant is what inviting a guest made. Secret, QRToken and
// QRImagePNG are only known from this answer; Secret is "" when the
// controller keeps the access key to itself (it then delivers it).
type GuestGrant struct {
	Guest      PersonRef
	Role       RoleAssignment
	Secret     string
	QRToken    string
	QRImagePNG []byte
}

// PersonLogin is a login made for a user, with its secret (known only
// from the create answer; "" in a listing).
type PersonLogin struct {
	ID     int64
	Name   string
	Secret string
}

// PersonCredential is what a person opens doors with: a guest's access
// key secret or a member's login secret.
type PersonCredential struct {
	Kind   PersonKind
	Secret string
}

// RoleFilter selects role assignments: those of one person, or of one
// group, or (zero) every group role assignment.
type RoleFilter struct {
	Person  *PersonRef
	GroupID int64
}

// PersonAccess is an AccessControl that also gives access to people:
// guests and users with group role assignments bounded in time. Errors
// are as on AccessControl (NotFound for a missing person or role
// assignment).
type PersonAccess interface {
	// InviteGuest creates a guest with a role on spec.Role.GroupID and an
	// access key.
	InviteGuest(ctx context.Context, spec GuestSpec) (GuestGrant, error)
	// FindUser returns the user with email, if any.
	FindUser(ctx context.Context, email string) (Person, bool, error)
	// CreateUser creates a user.
	CreateUser(ctx context.Context, name, email string) (Person, error)
	// DeletePerson deletes a guest or user with their role assignments.
	DeletePerson(ctx context.Context, p PersonRef) error
	// CreateRole creates a group role assignment.
	CreateRole(ctx context.Context, spec RoleSpec) (RoleAssignment, error)
	// UpdateRole changes the window of role assignment id; it returns
	// ErrUpdateUnsupported where the controller cannot.
	UpdateRole(ctx context.Context, id int64, spec RoleSpec) error
	// DeleteRole deletes role assignment id.
	DeleteRole(ctx context.Context, id int64) error
	// ListRoles lists the group role assignments f selects.
	ListRoles(ctx context.Context, f RoleFilter) ([]RoleAssignment, error)
	// VoidRole makes sure nothing created under key (a role assignment or
	// an invite) is or will be live, and returns the role assignment it
	// deleted (found false when none had been made).
	VoidRole(ctx context.Context, key string) (RoleAssignment, bool, error)
	// CreateLogin makes a login for the user with email.
	CreateLogin(ctx context.Context, email, name string) (PersonLogin, error)
	// ListLogins lists the logins of user userID (without secrets).
	ListLogins(ctx context.Context, userID int64) ([]PersonLogin, error)
	// DeleteLogin deletes login id; one already gone counts as deleted.
	DeleteLogin(ctx context.Context, id int64) error
	// PersonLocks lists the locks the person holding c may open now.
	PersonLocks(ctx context.Context, c PersonCredential) ([]Lock, error)
	// PersonUnlock unlocks lockID as the person holding c; a refusal is an
	// error whose cause is a *ControllerError with its Refusal.
	PersonUnlock(ctx context.Context, c PersonCredential, lockID int64) error
}
