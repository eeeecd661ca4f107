package lockctl

import (
	"time"
)

// Event types recorded by lockctl. The first six are Kisi's own; the relay
// and connectivity types are lockctl's, reported by the lock driver.
const (
	EventLockUnlock        = "lock.unlock"
	EventLockLockDown      = "lock.lock_down"
	EventLockCancelLock    = "lock.cancel_lockdown"
	EventGroupLinkCreate   = "group_link.create"
	EventGroupLinkDestroy  = "group_link.destroy"
	EventGroupLinkUpdate   = "group_link.update"
	EventGroupLinkNotify   = "group_link.notify"
	EventLockUnlocked      = "lock.unlocked"
	EventLockLocked        = "lock.locked"
	EventLockOnline        = "lock.online"
	EventLockOffline       = "lock.offline"
	EventLoginCreate       = "login.create"
	EventLoginDestroy      = "login.destroy"
	actorGroupLink         = "GroupLink"
	actorUser              = "User"
	actorGuest             = "Guest"
	authByAccessKey        = "AccessKey"
	objectUser             = "User"
	objectGuest            = "Guest"
	objectRoleAssignment   = "RoleAssignment"
	objectInvite           = "Invite"
	EventUserCreate        = "user.create"
	EventUserUpdate        = "user.update"
	EventUserDestroy       = "user.destroy"
	EventMemberCreate      = "member.create"
	EventMemberUpdate      = "member.update"
	EventMemberDestroy     = "member.destroy"
	EventGuestCreate       = "guest.create"
	EventGuestDestroy      = "guest.destroy"
	EventAssignmentCreate  = "role_assignment.create"
	EventAssignmentUpdate  = "role_assignment.update"
	EventAssignmentDestroy = "role_assignment.destroy"
	EventShareCreate       = "share.create"
	EventShareUpdate       = "share.update"
	EventShareDestroy      = "share.destroy"
	EventInviteCreate      = "invite.create"
	EventGroupUpdate       = "group.update"
	objectGroup            = "Group"
	EventAccessKeyCreate   = "access_key.create"
	EventAccessKeyDestroy  = "access_key.destroy"
	objectAccessKey        = "AccessKey"
	EventAssignmentNotify  = "role_assignment.notify"
	authByGroupLink        = "GroupLink"
	authByLogin            = "Login"
	objectLock             = "Lock"
	objectGroupLink        = "GroupLink"
	objectLogin            = "Login"
	defaultEventsPageLimit = 50
)

// Event is one audit log entry, with Kisi's field names. Empty strings and
// nil pointers are rendered as JSON null.
type Event struct {
	ID                  int64     `gorm:"primaryKey"`
	UUID                string    `gorm:"size:36;not null;uniqueIndex:idx_lockctl_events_uuid"`
	Type                string    `gorm:"size:64;not null;index"`
	ActorType           string    `gorm:"size:32;not null;default:''"`
	ActorID             *int64    `gorm:"index"`
	ActorName           string    `gorm:"size:500;not null;default:''"`
	ActorEmail          string    `gorm:"size:320;not null;default:''"`
	AuthenticatedByType string    `gorm:"size:32;not null;default:''"`
	AuthenticatedByID   *int64    ``
	AuthorizedByType    string    `gorm:"size:32;not null;default:''"`
	AuthorizedByID      *int64    ``
	AuthorizedByRoleID  string    `gorm:"size:64;not null;default:''"`
	ObjectType          string    `gorm:"size:32;not null;default:''"`
	ObjectID            *int64    `gorm:"index"`
	ObjectName          string    `gorm:"size:500;not null;default:''"`
	Success             bool      `gorm:"not null"`
	Code                string    `gorm:"size:16;not null;default:''"`
	Message             string    `gorm:"size:500;not null;default:''"`
	PlaceID             *int64    `gorm:"index"`
	ClientIP            string    `gorm:"size:64;not null;default:''"`
	UserAgent           string    `gorm:"size:500;not null;default:''"`
	CreatedAt           time.Time `gorm:"not null;index;autoCreateTime:false"`
}

// TableName implements gorm's tabler.
func (Event) TableName() string { return "lockctl_events" }

// EventSet is a frozen query over the events, read page by page through a
// cursor, as Kisi's POST /event_sets. MaxEventID pins the snapshot: events
// recorded after the set was made are not part of it.
type EventSet struct {
	ID         int64     `gorm:"primaryKey"`
	Filter     string    `gorm:"type:text;not null"`
	MaxEventID int64     `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null;autoCreateTime:false"`
	ExpiresAt  time.Time `gorm:"not null"`
}

// TableName implements gorm's tabler.
func (EventSet) TableName() string { return "lockctl_event_sets" }

// EventFilter selects events. Zero fields do not filter. Since is
// inclusive, Until exclusive.
type EventFilter struct {
	Types      []string   `json:"types,omitempty"`
	ActorType  string     `json:"actor_type,omitempty"`
	ActorID    *int64     `json:"actor_id,omitempty"`
	ObjectType string     `json:"object_type,omitempty"`
	ObjectID   *int64     `json:"object_id,omitempty"`
	AuthType   string     `json:"authenticated_by_type,omitempty"`
	AuthID     *int64     `json:"authenticated_by_id,omitempty"`
	PlaceID    *int64     `json:"place_id,omitempty"`
	Success    *bool      `json:"success,omitempty"`
	UUID       string     `json:"uuid,omitempty"`
	Since      *time.Time `json:"since,omitempty"`
	Until      *time.Time `json:"until,omitempty"`
}
