package lockctl

import (
	"strconv"
	"strings"
	"time"
)

// jsonTime renders a time as RFC 3339 in UTC, to the second, like Kisi.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(time.RFC3339) + `"`), nil
}

func jt(t time.Time) jsonTime { return jsonTime(t) }

func jtp(t *time.Time) *jsonTime {
	if t == nil {
		return nil
	}
	v := jsonTime(*t)
	return &v
}

// nullable renders an empty string as JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type placeRef struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

type placeResponse struct {
	ID           int64    `json:"id"`
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Description  *string  `json:"description"`
	Address      *string  `json:"address"`
	Latitude     *float64 `json:"latitude"`
	Longitude    *float64 `json:"longitude"`
	TimeZone     string   `json:"time_zone"`
	TZTimeZone   string   `json:"tz_time_zone"`
	LocksCount   int      `json:"locks_count"`
	LockedDown   bool     `json:"locked_down"`
	CreatedAt    jsonTime `json:"created_at"`
	UpdatedAt    jsonTime `json:"updated_at"`
}

func newPlaceResponse(p Place, locks int) placeResponse {
	return placeResponse{ID: p.ID, ResourceType: "Place", Name: p.Name, Description: nullable(p.Description),
		Address: nullable(p.Address), Latitude: p.Latitude, Longitude: p.Longitude, TimeZone: p.TimeZone,
		TZTimeZone: p.TimeZone, LocksCount: locks, CreatedAt: jt(p.CreatedAt), UpdatedAt: jt(p.UpdatedAt)}
}

// holderLockResponse is the reduced lock a group link holder sees.
type holderLockResponse struct {
	ID              int64     `json:"id"`
	Configured      bool      `json:"configured"`
	Description     *string   `json:"description"`
	LockedDownSince *jsonTime `json:"locked_down_since"`
	LockedDown      bool      `json:"locked_down"`
	Name            string    `json:"name"`
	Online          bool      `json:"online"`
	Open            bool      `json:"open"`
	UnlockedUntil   *jsonTime `json:"unlocked_until"`
	Unlocked        bool      `json:"unlocked"`
	PlaceID         int64     `json:"place_id"`
	Place           placeRef  `json:"place"`
}

// lockResponse is the full lock an administrator sees.
type lockResponse struct {
	holderLockResponse
	ResourceType string   `json:"resource_type"`
	Favorite     bool     `json:"favorite"`
	CreatedAt    jsonTime `json:"created_at"`
	UpdatedAt    jsonTime `json:"updated_at"`
}

func newHolderLockResponse(l Lock, p Place) holderLockResponse {
	return holderLockResponse{ID: l.ID, Configured: true, Description: nullable(l.Description),
		LockedDownSince: jtp(l.LockedDownSince), LockedDown: l.LockedDown, Name: l.Name, Online: l.Online,
		UnlockedUntil: jtp(l.UnlockedUntil), Unlocked: l.Unlocked, PlaceID: l.PlaceID,
		Place: placeRef{ID: p.ID, Name: p.Name, Latitude: p.Latitude, Longitude: p.Longitude}}
}

func newLockResponse(l Lock, p Place) lockResponse {
	return lockResponse{holderLockResponse: newHolderLockResponse(l, p), ResourceType: "Lock",
		CreatedAt: jt(l.CreatedAt), UpdatedAt: jt(l.UpdatedAt)}
}

type groupRef struct {
	ID           int64  `json:"id"`
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
}

type groupResponse struct {
	ID           int64    `json:"id"`
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Description  *string  `json:"description"`
	LoginEnabled bool     `json:"login_enabled"`
	LocksCount   int      `json:"locks_count"`
	UsersCount   int      `json:"users_count"`
	PlaceID      int64    `json:"place_id"`
	Place        groupRef `json:"place"`
	CreatedAt    jsonTime `json:"created_at"`
	UpdatedAt    jsonTime `json:"updated_at"`
}

func newGroupResponse(g Group, p Place, locks int) groupResponse {
	return groupResponse{ID: g.ID, ResourceType: "Group", Name: g.Name, Description: nullable(g.Description),
		LoginEnabled: g.LoginEnabled, LocksCount: locks, PlaceID: g.PlaceID,
		Place:     groupRef{ID: p.ID, ResourceType: "Place", Name: p.Name},
		CreatedAt: jt(g.CreatedAt), UpdatedAt: jt(g.UpdatedAt)}
}

type groupLockResponse struct {
	ID           int64    `json:"id"`
	ResourceType string   `json:"resource_type"`
	GroupID      int64    `json:"group_id"`
	LockID       int64    `json:"lock_id"`
	CreatedAt    jsonTime `json:"created_at"`
	UpdatedAt    jsonTime `json:"updated_at"`
}

func newGroupLockResponse(gl GroupLock) groupLockResponse {
	return groupLockResponse{ID: gl.ID, ResourceType: "GroupLock", GroupID: gl.GroupID, LockID: gl.LockID,
		CreatedAt: jt(gl.CreatedAt), UpdatedAt: jt(gl.UpdatedAt)}
}

type userRef struct {
	ID           *int64  `json:"id"`
	ResourceType string  `json:"resource_type"`
	Email        *string `json:"email"`
	Name         string  `json:"name"`
}

// groupLinkResponse is Kisi's GroupLink; the create response adds the three
// secret-bearing fields.
type groupLinkResponse struct {
	ID                    int64     `json:"id"`
	ResourceType          string    `json:"resource_type"`
	Name                  string    `json:"name"`
	Email                 *string   `json:"email"`
	Phone                 *string   `json:"phone"`
	LastUsedAt            *jsonTime `json:"last_used_at"`
	LinkEnabled           bool      `json:"link_enabled"`
	QuickResponseCodeType *string   `json:"quick_response_code_type"`
	ValidFrom             *jsonTime `json:"valid_from"`
	ValidUntil            *jsonTime `json:"valid_until"`
	CreatedAt             jsonTime  `json:"created_at"`
	UpdatedAt             jsonTime  `json:"updated_at"`
	GroupID               int64     `json:"group_id"`
	Group                 groupRef  `json:"group"`
	CreatedByType         string    `json:"created_by_type"`
	CreatedByID           *int64    `json:"created_by_id"`
	CreatedBy             userRef   `json:"created_by"`
	IssuedByID            *int64    `json:"issued_by_id"`
	IssuedBy              userRef   `json:"issued_by"`
}

type groupLinkCreatedResponse struct {
	groupLinkResponse
	Secret                 string  `json:"secret"`
	QuickResponseCodeToken *string `json:"quick_response_code_token"`
	QuickResponseCodeImage *string `json:"quick_response_code_image"`
}

// newGroupLinkResponse renders l; creator is the login that made it (nil
// for the bootstrap key).
func newGroupLinkResponse(l GroupLink, g Group, creator *Login) groupLinkResponse {
	by := userRef{ResourceType: "User", Name: "Administrator"}
	if creator != nil {
		by = userRef{ID: &creator.ID, ResourceType: "User", Email: nullable(creator.Email), Name: creator.displayName()}
	}
	return groupLinkResponse{ID: l.ID, ResourceType: "GroupLink", Name: l.Name, Email: nullable(l.Email),
		Phone: nullable(l.Phone), LastUsedAt: jtp(l.LastUsedAt), LinkEnabled: l.LinkEnabled,
		QuickResponseCodeType: nullable(l.QRType), ValidFrom: jtp(l.ValidFrom), ValidUntil: jtp(l.ValidUntil),
		CreatedAt: jt(l.CreatedAt), UpdatedAt: jt(l.UpdatedAt), GroupID: l.GroupID,
		Group:         groupRef{ID: g.ID, ResourceType: "Group", Name: g.Name},
		CreatedByType: "User", CreatedByID: l.CreatedByID, CreatedBy: by, IssuedByID: l.CreatedByID, IssuedBy: by}
}

// displayName is the name shown for a login: its name, its email, or
// "API key <id>".
func (l Login) displayName() string {
	if l.Name != "" {
		return l.Name
	}
	if l.Email != "" {
		return l.Email
	}
	return "API key " + itoa(l.ID)
}

type eventResponse struct {
	UUID                string   `json:"uuid"`
	ID                  int64    `json:"id"`
	Type                string   `json:"type"`
	Action              string   `json:"action"`
	ActorType           *string  `json:"actor_type"`
	ActorID             *int64   `json:"actor_id"`
	ActorName           *string  `json:"actor_name"`
	ActorEmail          *string  `json:"actor_email"`
	AuthenticatedByType *string  `json:"authenticated_by_type"`
	AuthenticatedByID   *int64   `json:"authenticated_by_id"`
	AuthorizedByType    *string  `json:"authorized_by_type"`
	AuthorizedByID      *int64   `json:"authorized_by_id"`
	AuthorizedByRoleID  *string  `json:"authorized_by_role_id"`
	ObjectType          string   `json:"object_type"`
	ObjectID            *int64   `json:"object_id"`
	ObjectName          string   `json:"object_name"`
	Success             bool     `json:"success"`
	Code                *string  `json:"code"`
	Message             *string  `json:"message"`
	ErrorCode           *string  `json:"error_code"`
	ErrorMessage        *string  `json:"error_message"`
	PlaceID             *int64   `json:"place_id"`
	ClientIP            *string  `json:"client_ip"`
	UserAgent           *string  `json:"user_agent"`
	CreatedAt           jsonTime `json:"created_at"`
}

func newEventResponse(e Event) eventResponse {
	r := eventResponse{UUID: e.UUID, ID: e.ID, Type: e.Type, ActorType: nullable(e.ActorType), ActorID: e.ActorID,
		ActorName: nullable(e.ActorName), ActorEmail: nullable(e.ActorEmail),
		AuthenticatedByType: nullable(e.AuthenticatedByType), AuthenticatedByID: e.AuthenticatedByID,
		AuthorizedByType: nullable(e.AuthorizedByType), AuthorizedByID: e.AuthorizedByID,
		AuthorizedByRoleID: nullable(e.AuthorizedByRoleID),
		ObjectType:         e.ObjectType, ObjectID: e.ObjectID, ObjectName: e.ObjectName, Success: e.Success,
		Code: nullable(e.Code), Message: nullable(e.Message), PlaceID: e.PlaceID,
		ClientIP: nullable(e.ClientIP), UserAgent: nullable(e.UserAgent), CreatedAt: jt(e.CreatedAt)}
	if _, action, ok := cutLast(e.Type, "."); ok {
		r.Action = action
	}
	if !e.Success {
		r.ErrorCode, r.ErrorMessage = r.Code, r.Message
	}
	return r
}

func newEventResponses(es []Event) []eventResponse {
	out := make([]eventResponse, len(es))
	for i, e := range es {
		out[i] = newEventResponse(e)
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
