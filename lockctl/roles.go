package lockctl

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Role is one of lockctl's built-in roles (Kisi's Role): what it applies to
// and which permissions it grants. lockctl has no custom roles.
type Role struct {
	ID          string
	AppliesTo   string
	Name        string
	Description string
	Permissions map[string]bool
}

// permissionKeys are the permissions every role lists, true or false.
var permissionKeys = []string{
	"locks_read", "locks_unlock", "group_links_read", "group_links_write",
	"guests_read", "guests_write", "users_read", "users_write",
	"role_assignments_read", "role_assignments_write", "shares_read", "shares_write",
	"invites_write", "logins_read", "logins_write", "events_read",
	"groups_read", "groups_write", "places_read", "places_write",
}

func permissions(granted ...string) map[string]bool {
	m := make(map[string]bool, len(permissionKeys))
	for _, k := range permissionKeys {
		m[k] = false
	}
	for _, k := range granted {
		m[k] = true
	}
	return m
}

var managerPermissions = []string{"locks_read", "locks_unlock", "group_links_read", "group_links_write",
	"guests_read", "guests_write", "users_read", "role_assignments_read", "role_assignments_write",
	"shares_read", "shares_write", "invites_write", "events_read", "groups_read"}

// roles is the catalogue, in the order GET /roles lists it.
var roles = []Role{
	{ID: "group_basic", AppliesTo: appliesGroup, Name: "Door access",
		Description: "Unlocks the group's doors", Permissions: permissions("locks_read", "locks_unlock")},
	{ID: "group_manager", AppliesTo: appliesGroup, Name: "Group manager",
		Description: "Unlocks the group's doors and manages who has access to them", Permissions: permissions(managerPermissions...)},
	{ID: "place_observer", AppliesTo: appliesPlace, Name: "Observer",
		Description: "Sees the place, its doors and events; opens nothing", Permissions: permissions("locks_read", "events_read", "groups_read", "places_read")},
	{ID: "place_administrator", AppliesTo: appliesPlace, Name: "Place administrator",
		Description: "Unlocks every door of the place and manages it", Permissions: permissions(append(managerPermissions, "users_write", "groups_write", "places_read", "places_write")...)},
	{ID: "organization_observer", AppliesTo: appliesOrganization, Name: "Observer",
		Description: "Sees every place, door and event; opens nothing", Permissions: permissions("locks_read", "events_read", "groups_read", "places_read")},
	{ID: "organization_administrator", AppliesTo: appliesOrganization, Name: "Organization administrator",
		Description: "Unlocks every door and manages the organization", Permissions: permissions(permissionKeys...)},
}

// roleByID finds a built-in role.
func roleByID(id string) (Role, bool) {
	for _, r := range roles {
		if r.ID == id {
			return r, true
		}
	}
	return Role{}, false
}

type roleResponse struct {
	ID           string          `json:"id"`
	ResourceType string          `json:"resource_type"`
	AppliesTo    string          `json:"applies_to"`
	Name         string          `json:"name"`
	Description  *string         `json:"description"`
	Custom       bool            `json:"custom"`
	Permissions  map[string]bool `json:"permissions"`
	CustomRoleID *int64          `json:"custom_role_id"`
}

func newRoleResponse(r Role) roleResponse {
	return roleResponse{ID: r.ID, ResourceType: "Role", AppliesTo: r.AppliesTo, Name: r.Name,
		Description: nullable(r.Description), Permissions: r.Permissions}
}

// listRoles is GET /roles: the whole catalogue (Kisi has no filters here).
func (c *Controller) listRoles(ec echo.Context) error {
	out := make([]roleResponse, len(roles))
	for i, r := range roles {
		out[i] = newRoleResponse(r)
	}
	return writeList(ec, page{Limit: len(roles)}, int64(len(roles)), out)
}

func (c *Controller) getRole(ec echo.Context) error {
	r, ok := roleByID(ec.Param("id"))
	if !ok {
		return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Role not found"}
	}
	return ec.JSON(http.StatusOK, newRoleResponse(r))
}
