package lockctl

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

type createPlaceRequest struct {
	Place struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Address     string   `json:"address"`
		Latitude    *float64 `json:"latitude"`
		Longitude   *float64 `json:"longitude"`
		TimeZone    string   `json:"time_zone"`
	} `json:"place"`
}

// holderPlaceResponse is the subset of a place a link holder sees.
type holderPlaceResponse struct {
	ID           int64    `json:"id"`
	ResourceType string   `json:"resource_type"`
	Name         string   `json:"name"`
	Description  *string  `json:"description"`
	Address      *string  `json:"address"`
	Latitude     *float64 `json:"latitude"`
	Longitude    *float64 `json:"longitude"`
	TimeZone     string   `json:"time_zone"`
}

// checkName adds an error on "name" unless name, trimmed, is a non-blank
// storable name of a place, lock or group.
func checkName(fe fieldErrors, name string) {
	if strings.TrimSpace(name) == "" {
		fe.add("name", "can't be blank")
	}
	checkText(fe, "name", strings.TrimSpace(name), maxName)
}

// conflictAsField turns a Conflict from the store into a 422 on field.
func conflictAsField(err error, field string) error {
	if latchkey.KindOf(err) == latchkey.Conflict {
		return fieldErrors{field: {"has already been taken"}}
	}
	return err
}

// existsOr422 turns a NotFound from a lookup into a 422 "must exist" on field.
func existsOr422(err error, field string) error {
	if latchkey.KindOf(err) == latchkey.NotFound {
		return fieldErrors{field: {"must exist"}}
	}
	return err
}

func (c *Controller) createPlace(ec echo.Context) error {
	var req createPlaceRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.Place
	fe := fieldErrors{}
	checkName(fe, r.Name)
	checkText(fe, "description", r.Description, maxDescription)
	checkText(fe, "address", r.Address, maxAddress)
	if r.TimeZone == "" {
		r.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(r.TimeZone); err != nil || r.TimeZone == "Local" {
		fe.add("time_zone", "is not a valid IANA time zone")
	}
	if err := fe.err(); err != nil {
		return err
	}
	p := Place{Name: strings.TrimSpace(r.Name), Description: r.Description, Address: r.Address,
		Latitude: r.Latitude, Longitude: r.Longitude, TimeZone: r.TimeZone}
	if err := c.store.createPlace(ec.Request().Context(), &p); err != nil {
		return conflictAsField(err, "name")
	}
	return ec.JSON(http.StatusOK, newPlaceResponse(p, 0))
}

func (c *Controller) getPlace(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	p, err := c.store.place(ctx, id)
	if err != nil {
		return err
	}
	counts, err := c.store.countLocks(ctx, "place_id", []int64{id})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, newPlaceResponse(p, counts[id]))
}

func (c *Controller) listPlaces(ec echo.Context) error {
	pg, err := parsePage(ec, 50)
	if err != nil {
		return err
	}
	var f placeFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	p, _ := who(ec)
	if p.Link != nil {
		g, err := c.store.group(ctx, p.Link.GroupID)
		if err != nil {
			return err
		}
		f.IDs = append(f.IDs[:0:0], g.PlaceID)
	}
	f.Person = p.person()
	holder := p.Link != nil || f.Person != nil
	places, total, err := c.store.listPlaces(ctx, f, pg)
	if err != nil {
		return err
	}
	if holder {
		out := make([]holderPlaceResponse, len(places))
		for i, pl := range places {
			out[i] = holderPlaceResponse{ID: pl.ID, ResourceType: "Place", Name: pl.Name,
				Description: nullable(pl.Description), Address: nullable(pl.Address),
				Latitude: pl.Latitude, Longitude: pl.Longitude, TimeZone: pl.TimeZone}
		}
		return writeList(ec, pg, total, out)
	}
	ids := make([]int64, len(places))
	for i, pl := range places {
		ids[i] = pl.ID
	}
	counts, err := c.store.countLocks(ctx, "place_id", ids)
	if err != nil {
		return err
	}
	out := make([]placeResponse, len(places))
	for i, pl := range places {
		out[i] = newPlaceResponse(pl, counts[pl.ID])
	}
	return writeList(ec, pg, total, out)
}

type createGroupRequest struct {
	Group struct {
		Name         string `json:"name"`
		Description  string `json:"description"`
		PlaceID      int64  `json:"place_id"`
		LoginEnabled bool   `json:"login_enabled"`
	} `json:"group"`
}

func (c *Controller) createGroup(ec echo.Context) error {
	var req createGroupRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.Group
	fe := fieldErrors{}
	checkName(fe, r.Name)
	checkText(fe, "description", r.Description, maxDescription)
	if r.PlaceID == 0 {
		fe.add("place_id", "can't be blank")
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	place, err := c.store.place(ctx, r.PlaceID)
	if err != nil {
		return existsOr422(err, "place")
	}
	g := Group{PlaceID: r.PlaceID, Name: strings.TrimSpace(r.Name), Description: r.Description, LoginEnabled: r.LoginEnabled}
	if err := c.store.createGroup(ctx, &g); err != nil {
		return conflictAsField(err, "name")
	}
	return ec.JSON(http.StatusOK, newGroupResponse(g, place, 0))
}

func (c *Controller) getGroup(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	g, err := c.store.group(ctx, id)
	if err != nil {
		return err
	}
	out, err := c.groupResponses(ec, []Group{g})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out[0])
}

func (c *Controller) listGroups(ec echo.Context) error {
	pg, err := parsePage(ec, 10)
	if err != nil {
		return err
	}
	var f groupFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.PlaceID, err = queryInt(ec, "place_id"); err != nil {
		return err
	}
	if f.LockID, err = queryInt(ec, "lock_id"); err != nil {
		return err
	}
	if f.Sort, err = querySort(ec, "name"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	groups, total, err := c.store.listGroups(ec.Request().Context(), f, pg)
	if err != nil {
		return err
	}
	out, err := c.groupResponses(ec, groups)
	if err != nil {
		return err
	}
	return writeList(ec, pg, total, out)
}

func (c *Controller) groupResponses(ec echo.Context, groups []Group) ([]groupResponse, error) {
	ctx := ec.Request().Context()
	ids, placeIDs := make([]int64, len(groups)), make([]int64, len(groups))
	for i, g := range groups {
		ids[i], placeIDs[i] = g.ID, g.PlaceID
	}
	counts, err := c.store.countLocks(ctx, "group_id", ids)
	if err != nil {
		return nil, err
	}
	places, err := c.store.places(ctx, placeIDs)
	if err != nil {
		return nil, err
	}
	out := make([]groupResponse, len(groups))
	for i, g := range groups {
		out[i] = newGroupResponse(g, places[g.PlaceID], counts[g.ID])
	}
	return out, nil
}

// updateGroup is PATCH (or PUT) /groups/{id}: name, description and
// login_enabled (app access: whether users' logins open the group's
// doors); 204, as Kisi.
func (c *Controller) updateGroup(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	var req struct {
		Group struct {
			Name         *string `json:"name"`
			Description  *string `json:"description"`
			LoginEnabled *bool   `json:"login_enabled"`
		} `json:"group"`
	}
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.Group
	fe := fieldErrors{}
	if r.Name != nil {
		checkName(fe, *r.Name)
	}
	if r.Description != nil {
		checkText(fe, "description", *r.Description, maxDescription)
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	err = c.store.tx(ctx, func(ts *store) error {
		g, err := ts.updateGroup(ctx, id, func(g *Group) {
			if r.Name != nil {
				g.Name = strings.TrimSpace(*r.Name)
			}
			if r.Description != nil {
				g.Description = *r.Description
			}
			if r.LoginEnabled != nil {
				g.LoginEnabled = *r.LoginEnabled
			}
		})
		if err != nil {
			return conflictAsField(err, "name")
		}
		return c.addPersonEvent(ec, ts, EventGroupUpdate, objectGroup, g.ID, g.Name, ptr(g.PlaceID))
	})
	if err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}
