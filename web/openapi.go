package web

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPIDoc is the OpenAPI 3.1 description of the HTTP interface: the
// admin API, the Envoy webhook and plugin routes and the guest pass. The
// tests validate real requests and answers against it, so it stays true.
//
//go:embed openapi/openapi.json
var openAPIDoc []byte

// OpenAPIPath is where the description is served, without authentication.
const OpenAPIPath = "/api/v1/openapi.json"

// registerOpenAPI serves the description on s. It is a route of its own,
// outside the /api/v1 group, so no API key is needed to read it.
func registerOpenAPI(s *Server) {
	s.e.GET(OpenAPIPath, func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Access-Control-Allow-Origin", "*")
		return c.Blob(http.StatusOK, "application/json", openAPIDoc)
	})
}
