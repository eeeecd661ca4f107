package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// Installer is what the Envoy setup routes and lifecycle events need of the
// Service.
type Installer interface {
	ConnectInstall(ctx context.Context, id, controllerURL, apiKey string) (connector.Install, error)
	InstallPlaces(ctx context.Context, id, search string, page int) ([]connector.Option, error)
	InstallGroupOptions(ctx context.Context, id string, places []string, search string, page int) ([]connector.Option, error)
	ConfigureInstall(ctx context.Context, id string, c connector.InstallConfig) (connector.InstallConfig, error)
	Uninstall(ctx context.Context, id string) error
}

// RegisterRoutes mounts the Envoy setup routes POST
// /connect|places|groups|access on g (cmd mounts g at /envoy/routes).
func (h *Handler) RegisterRoutes(g *echo.Group) {
	g.POST("/connect", h.route(h.connect))
	g.POST("/places", h.route(h.places))
	g.POST("/groups", h.route(h.groups))
	g.POST("/access", h.route(h.access))
}

type routeMeta struct {
	InstallID string          `json:"install_id"`
	Config    json.RawMessage `json:"config"`
	Params    struct {
		Search           string          `json:"search"`
		Page             json.RawMessage `json:"page"`
		ParentResourceID string          `json:"parent_resource_id"`
	} `json:"params"`
}

type routeBody struct {
	Meta    routeMeta       `json:"meta"`
	Payload json.RawMessage `json:"payload"`
}

// route reads and verifies a setup call, then answers with fn's value; a
// refusal is 412 and any error has a top-level message, as Envoy's
// validation routes expect.
func (h *Handler) route(fn func(ctx context.Context, b routeBody) (any, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxBody+1))
		if err != nil || len(body) > MaxBody {
			return answer(c, http.StatusRequestEntityTooLarge, "request body is larger than 1MB")
		}
		if !Verify(body, c.Request().Header.Get("X-Envoy-Signature"), h.secrets) {
			return answer(c, http.StatusUnauthorized, "missing or invalid X-Envoy-Signature")
		}
		if h.inst == nil {
			return answer(c, http.StatusNotFound, "setup routes are not enabled")
		}
		var b routeBody
		if err := json.Unmarshal(body, &b); err != nil {
			return answer(c, http.StatusBadRequest, latchkey.Message(jsonError("", err)))
		}
		if b.Meta.InstallID == "" || len(b.Meta.InstallID) > connector.MaxIDLen {
			return answer(c, http.StatusBadRequest, "meta.install_id is required")
		}
		out, err := fn(c.Request().Context(), b)
		if err != nil {
			return h.fail(c, err)
		}
		return c.JSON(http.StatusOK, out)
	}
}

// fail answers err: a refusal 412, a bad request 400, else 503 (transient).
func (h *Handler) fail(c echo.Context, err error) error {
	var r *connector.SetupRefusal
	switch {
	case errors.As(err, &r):
		return answer(c, http.StatusPreconditionFailed, r.Msg)
	case latchkey.KindOf(err) == latchkey.Invalid:
		return answer(c, http.StatusBadRequest, latchkey.Message(err))
	}
	h.log.Warn("envoy call failed", "err", err)
	return answer(c, http.StatusServiceUnavailable, "temporarily unavailable; try again")
}

func answer(c echo.Context, status int, msg string) error {
	return c.JSON(status, map[string]any{"message": msg})
}

func (h *Handler) connect(ctx context.Context, b routeBody) (any, error) {
	var p struct {
		APIKey        string `json:"api_key"`
		ControllerURL string `json:"controller_url"`
	}
	if err := json.Unmarshal(orEmpty(b.Payload), &p); err != nil {
		return nil, jsonError("payload", err)
	}
	in, err := h.inst.ConnectInstall(ctx, b.Meta.InstallID, p.ControllerURL, p.APIKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"controller_connected": true, "controller_organization": in.Organization}, nil
}

func page(raw json.RawMessage) int {
	n, _ := strconv.Atoi(strings.Trim(string(raw), `"`))
	return n
}

func (h *Handler) places(ctx context.Context, b routeBody) (any, error) {
	return h.inst.InstallPlaces(ctx, b.Meta.InstallID, b.Meta.Params.Search, page(b.Meta.Params.Page))
}

func (h *Handler) groups(ctx context.Context, b routeBody) (any, error) {
	var cfg struct {
		Places []json.RawMessage `json:"places"`
	}
	_ = json.Unmarshal(orEmpty(b.Meta.Config), &cfg) // best effort: no places lists all groups
	places := make([]string, 0, len(cfg.Places))
	for _, p := range cfg.Places {
		places = append(places, strings.Trim(string(p), `"`))
	}
	return h.inst.InstallGroupOptions(ctx, b.Meta.InstallID, places, b.Meta.Params.Search, page(b.Meta.Params.Page))
}

func (h *Handler) access(ctx context.Context, b routeBody) (any, error) {
	c, err := parseConfig(b.Payload)
	if err != nil {
		return nil, err
	}
	var cur struct {
		Places []json.RawMessage `json:"places"`
	}
	_ = json.Unmarshal(orEmpty(b.Meta.Config), &cur)
	for _, p := range cur.Places {
		c.Places = append(c.Places, strings.Trim(string(p), `"`))
	}
	return h.inst.ConfigureInstall(ctx, b.Meta.InstallID, c)
}

// parseConfig reads the visitor access and customisation keys, as the
// access step sends them and as meta.config carries them. Group ids may be
// strings (option values) or numbers.
func parseConfig(raw json.RawMessage) (connector.InstallConfig, error) {
	var p struct {
		VisitorAccess         map[string][]json.RawMessage `json:"visitor_access"`
		OnlyInvited           bool                         `json:"only_invited"`
		AccessDurationMinutes int                          `json:"access_duration_minutes"`
		AdvanceAccessMinutes  int                          `json:"advance_access_minutes"`
		RevokeOnSignOut       bool                         `json:"revoke_on_sign_out"`
		AppAccess             bool                         `json:"app_access"`
		GuestIndicator        bool                         `json:"guest_indicator"`
	}
	if err := json.Unmarshal(orEmpty(raw), &p); err != nil {
		return connector.InstallConfig{}, &connector.SetupRefusal{Msg: latchkey.Message(jsonError("payload", err))}
	}
	c := connector.InstallConfig{VisitorAccess: map[string][]int64{}, OnlyInvited: p.OnlyInvited,
		AccessDurationMinutes: p.AccessDurationMinutes, AdvanceAccessMinutes: p.AdvanceAccessMinutes,
		RevokeOnSignOut: p.RevokeOnSignOut, AppAccess: p.AppAccess, GuestIndicator: p.GuestIndicator}
	if len(p.VisitorAccess) > connector.MaxInstallFlows {
		return c, &connector.SetupRefusal{Msg: "visitor_access maps too many flows"}
	}
	for flow, gs := range p.VisitorAccess {
		if len(gs) > connector.MaxInstallFlowGroups {
			return c, &connector.SetupRefusal{Msg: "visitor_access: flow " + flow + " lists too many groups"}
		}
		for _, g := range gs {
			id, err := strconv.ParseInt(strings.Trim(string(g), `"`), 10, 64)
			if err != nil || id <= 0 {
				return c, &connector.SetupRefusal{Msg: "visitor_access: " + string(g) + " of flow " + flow + " is not a group id"}
			}
			c.VisitorAccess[flow] = append(c.VisitorAccess[flow], id)
		}
	}
	return c, nil
}

func orEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}
