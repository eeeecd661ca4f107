package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/mail"
)

type linkResponse struct {
	GroupID    int64     `json:"group_id"`
	LinkID     int64     `json:"link_id"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	Removed    bool      `json:"removed"`
}

// personResponse is the controller person behind a visit's pass
// (mapping credential guest or member) and its group role assignments.
type personResponse struct {
	Credential string         `json:"credential"`
	PersonID   int64          `json:"person_id"`
	Roles      []roleResponse `json:"roles"`
}

type roleResponse struct {
	GroupID          int64     `json:"group_id"`
	RoleAssignmentID int64     `json:"role_assignment_id"`
	ValidFrom        time.Time `json:"valid_from"`
	ValidUntil       time.Time `json:"valid_until"`
}

func newPersonResponse(p *connector.PersonDetail) *personResponse {
	if p == nil {
		return nil
	}
	r := &personResponse{Credential: string(p.Kind), PersonID: p.PersonID, Roles: []roleResponse{}}
	for _, ra := range p.Roles {
		r.Roles = append(r.Roles, roleResponse{GroupID: ra.GroupID, RoleAssignmentID: ra.AssignmentID, ValidFrom: ra.ValidFrom.UTC(), ValidUntil: ra.ValidUntil.UTC()})
	}
	return r
}

type timelineResponse struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

type visitResponse struct {
	ID         int64  `json:"id"`
	SourceID   string `json:"source_id"`
	LocationID string `json:"location_id"`
	FlowID     string `json:"flow_id"`
	FlowName   string `json:"flow_name"`
	// What the platform said of the place and the host.
	LocationName    string             `json:"location_name"`
	LocationAddress string             `json:"location_address"`
	HostName        string             `json:"host_name"`
	Name            string             `json:"name"`
	Email           string             `json:"email"`
	TimeZone        string             `json:"time_zone"`
	Status          connector.Status   `json:"status"`
	Reason          string             `json:"reason"`
	ValidFrom       *time.Time         `json:"valid_from"`
	ValidUntil      *time.Time         `json:"valid_until"`
	Synced          bool               `json:"synced"`
	Links           []linkResponse     `json:"links"`
	PassURL         string             `json:"pass_url,omitempty"`
	Person          *personResponse    `json:"person,omitempty"`
	Timeline        []timelineResponse `json:"timeline,omitempty"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
}

func newVisitResponse(v connector.Visit, links []connector.VisitLink) visitResponse {
	r := visitResponse{ID: v.ID, SourceID: v.SourceID, LocationID: v.LocationID, FlowID: v.FlowID, FlowName: v.FlowName,
		LocationName: v.LocationName, LocationAddress: v.LocationAddress, HostName: v.HostName, Name: v.Name, Email: v.Email, TimeZone: v.TimeZone, Status: v.Status, Reason: v.Reason,
		ValidFrom: v.ValidFrom, ValidUntil: v.ValidUntil, Synced: v.SyncedVersion >= v.Version,
		Links: []linkResponse{}, CreatedAt: v.CreatedAt.UTC(), UpdatedAt: v.UpdatedAt.UTC()}
	for _, l := range links {
		if l.Removed || l.LinkID == 0 {
			continue
		}
		r.Links = append(r.Links, linkResponse{GroupID: l.GroupID, LinkID: l.LinkID, ValidFrom: l.ValidFrom.UTC(), ValidUntil: l.ValidUntil.UTC()})
	}
	return r
}

func (a *API) listVisits(c echo.Context) error {
	limit, err := queryInt(c, "limit", 50, 500)
	if err != nil {
		return err
	}
	offset, err := queryInt(c, "offset", 0, 1<<30)
	if err != nil {
		return err
	}
	status := connector.Status(c.QueryParam("status"))
	switch status {
	case "", connector.StatusHeld, connector.StatusScheduled, connector.StatusActive, connector.StatusRevoked,
		connector.StatusExpired, connector.StatusIgnored, connector.StatusFailed:
	default:
		return latchkey.Errorf(latchkey.Invalid, "unknown status %q", status)
	}
	ctx := c.Request().Context()
	vs, total, err := a.svc.Store().List(ctx, connector.VisitFilter{
		Status: status, Email: c.QueryParam("email"), SourceID: c.QueryParam("source_id"),
		LocationID: c.QueryParam("location_id"), Query: c.QueryParam("q"), Limit: limit, Offset: offset,
	})
	if err != nil {
		return err
	}
	links, err := a.svc.Store().LinksOf(ctx, visitIDs(vs))
	if err != nil {
		return err
	}
	out := make([]visitResponse, len(vs))
	for i, v := range vs {
		out[i] = newVisitResponse(v, links[v.ID])
	}
	c.Response().Header().Set("X-Total-Count", strconv.FormatInt(total, 10))
	return c.JSON(http.StatusOK, out)
}

func visitIDs(vs []connector.Visit) []int64 {
	ids := make([]int64, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	return ids
}

func (a *API) visitDetail(c echo.Context, id int64) error {
	d, err := a.svc.Detail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	r := newVisitResponse(d.Visit, d.Links)
	r.PassURL = a.svc.PassURL(d.Visit)
	r.Person = newPersonResponse(d.Person)
	r.Timeline = make([]timelineResponse, len(d.Timeline))
	for i, e := range d.Timeline {
		r.Timeline[i] = timelineResponse{At: e.At.UTC(), Kind: e.Kind, Message: e.Message}
	}
	return c.JSON(http.StatusOK, r)
}

func (a *API) getVisit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return a.visitDetail(c, id)
}

func (a *API) revokeVisit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := a.svc.Revoke(c.Request().Context(), id); err != nil {
		return err
	}
	return a.visitDetail(c, id)
}

type extendRequest struct {
	Minutes int `json:"minutes"`
}

func (a *API) extendVisit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req extendRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if _, err := a.svc.Extend(c.Request().Context(), id, req.Minutes); err != nil {
		return err
	}
	return a.visitDetail(c, id)
}

func (a *API) resendVisit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := a.svc.Resend(c.Request().Context(), id); err != nil {
		return err
	}
	return a.visitDetail(c, id)
}

type emailRequest struct {
	Email string `json:"email"`
}

// correctVisitEmail sets the guest's address as the desk corrected it and
// sends the pass email to it: POST /api/v1/visits/{id}/email.
func (a *API) correctVisitEmail(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var req emailRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if _, err := a.svc.CorrectEmail(c.Request().Context(), id, req.Email); err != nil {
		return err
	}
	return a.visitDetail(c, id)
}

type outboxResponse struct {
	ID      int64     `json:"id"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	HTML    string    `json:"html"`
	SentAt  time.Time `json:"sent_at"`
}

func (a *API) listOutbox(c echo.Context) error {
	if a.outbox == nil {
		return latchkey.Errorf(latchkey.NotFound, "mail is sent over SMTP; there is no captured outbox")
	}
	limit, err := queryInt(c, "limit", 50, mail.MaxListLimit)
	if err != nil {
		return err
	}
	offset, err := queryInt(c, "offset", 0, 1<<30)
	if err != nil {
		return err
	}
	ms, total, err := a.outbox.List(c.Request().Context(), mail.OutboxFilter{To: c.QueryParam("to"), Limit: limit, Offset: offset})
	if err != nil {
		return err
	}
	out := make([]outboxResponse, len(ms))
	for i, m := range ms {
		out[i] = outboxResponse{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, SentAt: m.SentAt.UTC()}
	}
	c.Response().Header().Set("X-Total-Count", strconv.FormatInt(total, 10))
	return c.JSON(http.StatusOK, out)
}
