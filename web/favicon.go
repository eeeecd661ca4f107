package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// faviconPath is the icon every page links; browsers that ask for
// /favicon.ico anyway (on JSON answers, the queue dashboard's API) are
// sent there, so no page costs a 404.
const faviconPath = "/admin/static/favicon.svg"

func registerFavicon(s *Server) {
	s.e.GET("/favicon.ico", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=86400")
		return c.Redirect(http.StatusMovedPermanently, faviconPath)
	})
}
