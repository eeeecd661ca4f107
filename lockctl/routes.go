package lockctl

import (
	"github.com/labstack/echo/v4"
)

// Register mounts the whole Kisi-compatible API on g. Errors are rendered
// Kisi-style by a group middleware, whatever the HTTPErrorHandler of the
// echo instance g belongs to.
//
// Admin (KISI-LOGIN): places, locks, groups, group_locks, group_links,
// logins (create, list, delete), event_sets, events. Link holders (KISI-GROUP-LINK): GET /places,
// GET /locks (their group's locks) and POST /locks/{id}/unlock. GET
// /grouplinks is the holder's landing page (the secret in the URL fragment).
func (c *Controller) Register(g *echo.Group) {
	g.Use(c.kisiErrors, c.authenticate)

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

	g.POST("/event_sets", c.createEventSet, requireAdmin)
	g.GET("/event_sets/:id", c.getEventSet, requireAdmin)
	g.GET("/events", c.listEvents, requireAdmin)
}
