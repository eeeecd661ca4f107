package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
)

type mappingRequest struct {
	LocationID      string  `json:"location_id"`
	FlowID          string  `json:"flow_id"`
	GroupIDs        []int64 `json:"group_ids"`
	DurationMinutes int     `json:"duration_minutes"`
	AdvanceMinutes  int     `json:"advance_minutes"`
	OnlyInvited     bool    `json:"only_invited"`
	RevokeOnSignOut bool    `json:"revoke_on_sign_out"`
	GraceMinutes    int     `json:"grace_minutes"`
	UntilEndOfDay   bool    `json:"until_end_of_day"`
	Delivery        string  `json:"delivery"`
	Credential      string  `json:"credential"`
	AppAccess       bool    `json:"app_access"`
	GuestIndicator  string  `json:"guest_indicator"`
}

func (r mappingRequest) toDomain() mappings.Mapping {
	return mappings.Mapping{LocationID: r.LocationID, FlowID: r.FlowID, GroupIDs: r.GroupIDs,
		DurationMinutes: r.DurationMinutes, AdvanceMinutes: r.AdvanceMinutes, OnlyInvited: r.OnlyInvited,
		RevokeOnSignOut: r.RevokeOnSignOut, GraceMinutes: r.GraceMinutes, UntilEndOfDay: r.UntilEndOfDay,
		Delivery: mappings.Delivery(r.Delivery), Credential: mappings.Credential(r.Credential), AppAccess: r.AppAccess, GuestIndicator: r.GuestIndicator}
}

type mappingResponse struct {
	ID int64 `json:"id"`
	mappingRequest
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func newMappingResponse(m mappings.Mapping) mappingResponse {
	return mappingResponse{ID: m.ID, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, mappingRequest: mappingRequest{
		LocationID: m.LocationID, FlowID: m.FlowID, GroupIDs: m.GroupIDs, DurationMinutes: m.DurationMinutes,
		AdvanceMinutes: m.AdvanceMinutes, OnlyInvited: m.OnlyInvited, RevokeOnSignOut: m.RevokeOnSignOut,
		GraceMinutes: m.GraceMinutes, UntilEndOfDay: m.UntilEndOfDay, Delivery: string(m.Delivery),
		Credential: string(m.Credential), AppAccess: m.AppAccess, GuestIndicator: m.GuestIndicator}}
}

func (a *API) listMappings(c echo.Context) error {
	ms, err := a.maps.List(c.Request().Context(), c.QueryParam("location_id"))
	if err != nil {
		return err
	}
	out := make([]mappingResponse, len(ms))
	for i, m := range ms {
		out[i] = newMappingResponse(m)
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getMapping(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, err := a.maps.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, newMappingResponse(m))
}

// checkGroups makes sure every group of m exists on the controller.
func (a *API) checkGroups(c echo.Context, m mappings.Mapping) error {
	m.Normalize()
	if err := m.Validate(); err != nil {
		return err
	}
	groups, err := a.groups.ListGroups(c.Request().Context())
	if err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "could not list the controller's groups to check the mapping", err)
	}
	known := map[int64]bool{}
	for _, g := range groups {
		known[g.ID] = true
	}
	for _, id := range m.GroupIDs {
		if !known[id] {
			return latchkey.Errorf(latchkey.Invalid, "group_ids: group %d does not exist on the controller", id)
		}
	}
	return nil
}

func (a *API) createMapping(c echo.Context) error {
	var req mappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	m := req.toDomain()
	if err := a.checkGroups(c, m); err != nil {
		return err
	}
	m, err := a.maps.Create(c.Request().Context(), m)
	if err != nil {
		return err
	}
	a.resync(c, m.LocationID, m.FlowID)
	return c.JSON(http.StatusCreated, newMappingResponse(m))
}

func (a *API) updateMapping(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req mappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	m := req.toDomain()
	m.ID = id
	if err := a.checkGroups(c, m); err != nil {
		return err
	}
	// old is what this update replaced (read under the update's row
	// lock): the flow it moved the mapping away from is re-decided too.
	old, m, err := a.maps.Update(c.Request().Context(), m)
	if err != nil {
		return err
	}
	a.resync(c, old.LocationID, old.FlowID)
	if old.LocationID != m.LocationID || old.FlowID != m.FlowID {
		a.resync(c, m.LocationID, m.FlowID)
	}
	return c.JSON(http.StatusOK, newMappingResponse(m))
}

func (a *API) deleteMapping(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	old, err := a.maps.Remove(c.Request().Context(), id)
	if err != nil {
		return err
	}
	a.resync(c, old.LocationID, old.FlowID)
	return c.NoContent(http.StatusNoContent)
}

// resync re-decides the open visits of a location and flow after their
// mapping changed, and queues their syncs.
func (a *API) resync(c echo.Context, locationID, flowID string) {
	a.svc.FlowMappingChanged(c.Request().Context(), locationID, flowID)
}

type previewRequest struct {
	MappingID int64           `json:"mapping_id"`
	Mapping   *mappingRequest `json:"mapping"`
	// Kind is "invite" or "walk-in".
	Kind     string    `json:"kind"`
	Arrival  time.Time `json:"arrival"`
	TimeZone string    `json:"time_zone"`
}

type previewResponse struct {
	Status          connector.Status `json:"status"`
	Reason          string           `json:"reason"`
	ValidFrom       *time.Time       `json:"valid_from"`
	ValidUntil      *time.Time       `json:"valid_until"`
	TimeZone        string           `json:"time_zone"`
	ValidFromLocal  string           `json:"valid_from_local,omitempty"`
	ValidUntilLocal string           `json:"valid_until_local,omitempty"`
}

// previewMapping shows the exact window a visitor would get from a mapping
// (stored, or given inline) for a sample arrival.
func (a *API) previewMapping(c echo.Context) error {
	var req previewRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	var m mappings.Mapping
	switch {
	case req.Mapping != nil:
		m = req.Mapping.toDomain()
		m.Normalize()
		if err := m.Validate(); err != nil {
			return err
		}
	case req.MappingID > 0:
		var err error
		if m, err = a.maps.Get(c.Request().Context(), req.MappingID); err != nil {
			return err
		}
	default:
		return latchkey.Errorf(latchkey.Invalid, "give mapping_id or mapping")
	}
	if req.Arrival.IsZero() {
		return latchkey.Errorf(latchkey.Invalid, "arrival is required (RFC 3339)")
	}
	loc := time.UTC
	if req.TimeZone != "" {
		var err error
		if loc, err = time.LoadLocation(req.TimeZone); err != nil {
			return latchkey.Errorf(latchkey.Invalid, "time_zone %q is not an IANA zone", req.TimeZone)
		}
	}
	arrival := req.Arrival.UTC()
	var f connector.Facts
	switch req.Kind {
	case "invite", "":
		f = connector.Facts{Invited: true, ExpectedArrival: arrival, InviteSeenAt: arrival.Add(-24 * time.Hour)}
	case "walk-in":
		f = connector.Facts{SignedInAt: arrival}
	default:
		return latchkey.Errorf(latchkey.Invalid, `kind must be "invite" or "walk-in"`)
	}
	d := connector.Decide(f, &m, loc, arrival)
	out := previewResponse{Status: d.Status, Reason: d.Reason, TimeZone: loc.String()}
	if !d.ValidFrom.IsZero() {
		from, until := d.ValidFrom.UTC(), d.ValidUntil.UTC()
		out.ValidFrom, out.ValidUntil = &from, &until
		out.ValidFromLocal = from.In(loc).Format("2006-01-02 15:04 MST")
		out.ValidUntilLocal = until.In(loc).Format("2006-01-02 15:04 MST")
	}
	return c.JSON(http.StatusOK, out)
}

type groupResponse struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PlaceID    int64  `json:"place_id"`
	LocksCount int    `json:"locks_count"`
}

func (a *API) listGroups(c echo.Context) error {
	gs, err := a.groups.ListGroups(c.Request().Context())
	if err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "could not list the controller's groups", err)
	}
	out := make([]groupResponse, len(gs))
	for i, g := range gs {
		out[i] = groupResponse{ID: g.ID, Name: g.Name, PlaceID: g.PlaceID, LocksCount: g.LocksCount}
	}
	return c.JSON(http.StatusOK, out)
}
