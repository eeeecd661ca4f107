package lockctl

import (
	"github.com/labstack/echo/v4"
)

// Register mounts the whole Kisi-compatible API on g. Errors are rendered
// Kisi-style by a group middleware, whatever the HTTPErrorHandler of the
// echo instance g belongs to.
//
// Admin (KISI-LOGIN with an administrator's key): places, locks, groups,
// group_locks, group_links, logins (create, list, delete), users, members,
// guests, roles, role_assignments, shares, invites, event_sets, events.
// Link holders (KISI-GROUP-LINK), users signed in with a login of theirs
// (KISI-LOGIN) and guests holding an access key (KISI-ACCESS-KEY): GET
// /places, GET /locks (the locks they hold a role on) and POST
// /locks/{id}/unlock. GET /grouplinks is the holder's landing page (the
// secret in the URL fragment).
func (c *Controller) Register(g *echo.Group) {
	g.Use(c.kisiErrors, c.authenticate, c.flushBeforeWrites)

	g.GET("/places", c.listPlaces, requireAny)
	g.POST("/places", c.createPlace, requireAdmin)
	g.GET("/places/:id", c.getPlace, requireAdmin)

	g.GET("/locks", c.listLocks, requireAny)
	g.POST("/locks", c.createLock, requireAdmin)
	g.GET("/locks/:id", c.getLock, requireAdmin)
	g.PATCH("/locks/:id", c.updateLock, requireAdmin)
	g.POST("/locks/:id/lock_down", c.lockDown, requireAdmin)
	g.POST("/locks/:id/cancel_lockdown", c.cancelLockdown, requireAdmin)
	g.POST("/locks/:id/unlock", c.unlock)

	g.GET("/groups", c.listGroups, requireAdmin)
	g.POST("/groups", c.createGroup, requireAdmin)
	g.GET("/groups/:id", c.getGroup, requireAdmin)
	g.PATCH("/groups/:id", c.updateGroup, requireAdmin)
	g.PUT("/groups/:id", c.updateGroup, requireAdmin)

	g.GET("/group_locks", c.listGroupLocks, requireAdmin)
	g.POST("/group_locks", c.createGroupLock, requireAdmin)
	g.DELETE("/group_locks/:id", c.deleteGroupLock, requireAdmin)

	g.GET("/group_links", c.listLinks, requireAdmin)
	g.POST("/group_links", c.createLink, requireAdmin)
	g.POST("/group_links/void", c.voidLink, requireAdmin)
	g.GET("/group_links/:id", c.getLink, requireAdmin)
	g.PATCH("/group_links/:id", c.updateLink, requireAdmin)
	g.DELETE("/group_links/:id", c.deleteLink, requireAdmin)

	g.POST("/logins", c.createLogin, requireAdmin)
	g.GET("/logins", c.listLogins, requireAdmin)
	g.DELETE("/logins/:id", c.deleteLogin, requireAdmin)
	g.GET("/grouplinks", c.landing)

	users, members := usersAPI{c: c}, usersAPI{c: c, member: true}
	for prefix, a := range map[string]usersAPI{"/users": users, "/members": members} {
		g.GET(prefix, a.list, requireAdmin)
		g.POST(prefix, a.create, requireAdmin)
		g.GET(prefix+"/:id", a.get, requireAdmin)
		g.PATCH(prefix+"/:id", a.update, requireAdmin)
		g.PUT(prefix+"/:id", a.update, requireAdmin)
		g.DELETE(prefix+"/:id", a.delete, requireAdmin)
	}

	g.GET("/guests", c.listGuests, requireAdmin)
	g.POST("/guests", c.createGuest, requireAdmin)
	g.GET("/guests/:id", c.getGuest, requireAdmin)
	g.DELETE("/guests/:id", c.deleteGuest, requireAdmin)

	g.GET("/roles", c.listRoles, requireAdmin)
	g.GET("/roles/:id", c.getRole, requireAdmin)

	g.GET("/role_assignments", c.listAssignments, requireAdmin)
	g.POST("/role_assignments", c.createAssignment, requireAdmin)
	g.POST("/role_assignments/void", c.voidAssignment, requireAdmin)
	g.GET("/role_assignments/:id", c.getAssignment, requireAdmin)
	g.PATCH("/role_assignments/:id", c.updateAssignment, requireAdmin)
	g.PUT("/role_assignments/:id", c.updateAssignment, requireAdmin)
	g.DELETE("/role_assignments/:id", c.deleteAssignment, requireAdmin)

	g.GET("/shares", c.listShares, requireAdmin)
	g.POST("/shares", c.createShare, requireAdmin)
	g.GET("/shares/:id", c.getShare, requireAdmin)
	g.PATCH("/shares/:id", c.updateShare, requireAdmin)
	g.PUT("/shares/:id", c.updateShare, requireAdmin)
	g.DELETE("/shares/:id", c.deleteShare, requireAdmin)

	g.POST("/invites", c.createInvite, requireAdmin)

	g.POST("/event_sets", c.createEventSet, requireAdmin)
	g.GET("/event_sets/:id", c.getEventSet, requireAdmin)
	g.GET("/events", c.listEvents, requireAdmin)
	g.GET("/events/types", c.listEventTypes, requireAdmin)
}
