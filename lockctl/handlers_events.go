package lockctl

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// maxEventInterval is the longest interval an event set may cover, and its
// default length, as in Kisi.
const maxEventInterval = 90 * 24 * time.Hour

// listEvents is the GET /events extension: events newest first, filtered by
// type (comma list), actor_type, actor_id, authenticated_by_type,
// object_type, object_id,
// place_id, success, since and until, paged with limit/offset.
func (c *Controller) listEvents(ec echo.Context) error {
	c.audit.flush(ec.Request().Context())
	pg, err := parsePage(ec, defaultEventsPageLimit)
	if err != nil {
		return err
	}
	var f EventFilter
	t, err := queryText(ec, "type")
	if err != nil {
		return err
	}
	f.Types = splitList(t)
	if f.ActorType, err = queryText(ec, "actor_type"); err != nil {
		return err
	}
	if f.ObjectType, err = queryText(ec, "object_type"); err != nil {
		return err
	}
	if f.AuthType, err = queryText(ec, "authenticated_by_type"); err != nil {
		return err
	}
	for name, dst := range map[string]**int64{"actor_id": &f.ActorID, "object_id": &f.ObjectID, "place_id": &f.PlaceID} {
		if *dst, err = queryInt(ec, name); err != nil {
			return err
		}
	}
	if f.Success, err = queryBool(ec, "success"); err != nil {
		return err
	}
	if f.Since, err = queryTime(ec, "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(ec, "until"); err != nil {
		return err
	}
	events, total, err := c.store.listEvents(ec.Request().Context(), f, pg)
	if err != nil {
		return err
	}
	return writeList(ec, pg, total, newEventResponses(events))
}

type createEventSetRequest struct {
	EventSet struct {
		Interval                 string  `json:"interval"`
		EventActorID             *int64  `json:"event_actor_id"`
		EventActorType           *string `json:"event_actor_type"`
		EventAuthenticatedByID   *int64  `json:"event_authenticated_by_id"`
		EventAuthenticatedByType *string `json:"event_authenticated_by_type"`
		EventObjectID            *int64  `json:"event_object_id"`
		EventObjectType          *string `json:"event_object_type"`
		EventPlaceID             *int64  `json:"event_place_id"`
		EventSuccess             *bool   `json:"event_success"`
		EventType                *string `json:"event_type"`
		EventUUID                *string `json:"event_uuid"`
		PlaceID                  *int64  `json:"place_id"`
	} `json:"event_set"`
}

type eventSetResponse struct {
	ID        int64           `json:"id"`
	CreatedAt jsonTime        `json:"created_at"`
	Status    string          `json:"status"`
	Events    []eventResponse `json:"events"`
	Cursor    *string         `json:"cursor"`
}

// createEventSet freezes a query over the events. lockctl answers it at
// once, so the set is "finished" and its first page is in the answer.
func (c *Controller) createEventSet(ec echo.Context) error {
	c.audit.flush(ec.Request().Context())
	var req createEventSetRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.EventSet
	now := c.now()
	since, until, err := parseInterval(r.Interval, now)
	if err != nil {
		return fieldErrors{"interval": {err.Error()}}
	}
	f := EventFilter{Since: &since, Until: &until, ActorID: r.EventActorID, AuthID: r.EventAuthenticatedByID,
		ObjectID: r.EventObjectID, PlaceID: r.EventPlaceID, Success: r.EventSuccess}
	if r.Interval == "" {
		// The default interval ends now; the set's snapshot already ends
		// there, and an open end keeps events stamped "now" in it.
		f.Until = nil
	}
	if r.PlaceID != nil {
		f.PlaceID = r.PlaceID
	}
	fe := fieldErrors{}
	for field, v := range map[string]struct{ dst, src *string }{
		"event_actor_type":            {&f.ActorType, r.EventActorType},
		"event_authenticated_by_type": {&f.AuthType, r.EventAuthenticatedByType},
		"event_object_type":           {&f.ObjectType, r.EventObjectType},
		"event_uuid":                  {&f.UUID, r.EventUUID},
	} {
		if v.src != nil && checkText(fe, field, *v.src, maxFilterText) {
			*v.dst = *v.src
		}
	}
	if r.EventType != nil && checkText(fe, "event_type", *r.EventType, maxQuery) {
		f.Types = splitList(*r.EventType)
	}
	if err := fe.err(); err != nil {
		return err
	}
	set, err := c.store.createEventSet(ec.Request().Context(), f, c.opts.EventSetTTL)
	if err != nil {
		return err
	}
	return c.eventSetPage(ec, set, f, 0, defaultEventsPageLimit)
}

// getEventSet reads one page of an event set: limit (default 50, max 250)
// events after cursor, newest first; cursor is null on the last page.
func (c *Controller) getEventSet(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	pg, err := parsePage(ec, defaultEventsPageLimit)
	if err != nil {
		return err
	}
	var before int64
	if s := ec.QueryParam("cursor"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			return badRequest("cursor is invalid")
		}
	}
	set, f, err := c.store.eventSet(ec.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.eventSetPage(ec, set, f, before, pg.Limit)
}

func (c *Controller) eventSetPage(ec echo.Context, set EventSet, f EventFilter, before int64, limit int) error {
	c.audit.flush(ec.Request().Context())
	events, more, err := c.store.eventSetPage(ec.Request().Context(), set, f, before, limit)
	if err != nil {
		return err
	}
	out := eventSetResponse{ID: set.ID, CreatedAt: jt(set.CreatedAt), Status: "finished", Events: newEventResponses(events)}
	if more {
		out.Cursor = ptr(strconv.FormatInt(events[len(events)-1].ID, 10))
	}
	return ec.JSON(http.StatusOK, out)
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// kisiEventTypes are the event types lockctl records that Kisi also
// defines, sorted, as GET /events/types lists them. lockctl's own types
// (relay and connectivity reports, notify outcomes) are not among them.
var kisiEventTypes = []string{
	EventAccessKeyCreate, EventAccessKeyDestroy, EventGroupUpdate, EventGroupLinkCreate, EventGroupLinkDestroy, EventGuestCreate,
	EventGuestDestroy, EventInviteCreate, EventLockCancelLock, EventLockLockDown, EventLockLocked, EventLockUnlock,
	EventLoginCreate, EventLoginDestroy, EventMemberCreate, EventMemberDestroy, EventMemberUpdate,
	EventAssignmentCreate, EventAssignmentDestroy, EventAssignmentUpdate, EventShareCreate, EventShareDestroy,
	EventShareUpdate, EventUserCreate, EventUserDestroy, EventUserUpdate,
}

// listEventTypes is GET /events/types: a bare array of type names.
func (c *Controller) listEventTypes(ec echo.Context) error {
	return ec.JSON(http.StatusOK, kisiEventTypes)
}
