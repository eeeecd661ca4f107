package lockctl

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

type createLockRequest struct {
	Lock struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		PlaceID     int64  `json:"place_id"`
		Online      *bool  `json:"online"`
		LockedDown  bool   `json:"locked_down"`
	} `json:"lock"`
}

type updateLockRequest struct {
	Lock struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		Online      *bool   `json:"online"`
		LockedDown  *bool   `json:"locked_down"`
	} `json:"lock"`
}

func (c *Controller) createLock(ec echo.Context) error {
	var req createLockRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.Lock
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
	l := Lock{PlaceID: r.PlaceID, Name: strings.TrimSpace(r.Name), Description: r.Description,
		Online: r.Online == nil || *r.Online, LockedDown: r.LockedDown}
	if l.LockedDown {
		l.LockedDownSince = ptr(c.store.stamp())
	}
	if err := c.store.createLock(ctx, &l); err != nil {
		return conflictAsField(err, "name")
	}
	return ec.JSON(http.StatusOK, newLockResponse(l, place))
}

func (c *Controller) getLock(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	l, err := c.store.lock(ctx, id)
	if err != nil {
		return err
	}
	p, err := c.store.place(ctx, l.PlaceID)
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, newLockResponse(l, p))
}

// listLocks serves administrators the full lock list and link holders the
// reduced locks of their group.
func (c *Controller) listLocks(ec echo.Context) error {
	pg, err := parsePage(ec, 50)
	if err != nil {
		return err
	}
	var f lockFilter
	if f.IDs, err = queryIDs(ec, "ids"); err != nil {
		return err
	}
	if f.PlaceID, err = queryInt(ec, "place_id"); err != nil {
		return err
	}
	for name, dst := range map[string]**bool{"online": &f.Online, "locked_down": &f.LockedDown, "unlocked": &f.Unlocked} {
		if *dst, err = queryBool(ec, name); err != nil {
			return err
		}
	}
	if f.Sort, err = querySort(ec, "name"); err != nil {
		return err
	}
	if f.Query, err = queryText(ec, "query"); err != nil {
		return err
	}
	p, _ := who(ec)
	if p.Link != nil {
		f.GroupID = &p.Link.GroupID
	}
	f.Person = p.person()
	holder := p.Link != nil || f.Person != nil
	ctx := ec.Request().Context()
	locks, total, err := c.store.listLocks(ctx, f, pg)
	if err != nil {
		return err
	}
	placeIDs := make([]int64, len(locks))
	for i, l := range locks {
		placeIDs[i] = l.PlaceID
	}
	places, err := c.store.places(ctx, placeIDs)
	if err != nil {
		return err
	}
	if holder {
		out := make([]holderLockResponse, len(locks))
		for i, l := range locks {
			out[i] = newHolderLockResponse(l, places[l.PlaceID])
		}
		return writeList(ec, pg, total, out)
	}
	out := make([]lockResponse, len(locks))
	for i, l := range locks {
		out[i] = newLockResponse(l, places[l.PlaceID])
	}
	return writeList(ec, pg, total, out)
}

// updateLock changes a lock's name, description, online or locked_down and
// records an event for each state change. It answers 200 with the lock
// (Kisi answers 204; the body is an extension).
func (c *Controller) updateLock(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	var req updateLockRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.Lock
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
	after, err := c.changeLock(ec, id, func(l *Lock) {
		if r.Name != nil {
			l.Name = strings.TrimSpace(*r.Name)
		}
		if r.Description != nil {
			l.Description = *r.Description
		}
		if r.Online != nil {
			l.Online = *r.Online
		}
		if r.LockedDown != nil {
			l.LockedDown = *r.LockedDown
		}
	})
	if err != nil {
		return conflictAsField(err, "name")
	}
	p, err := c.store.place(ec.Request().Context(), after.PlaceID)
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, newLockResponse(after, p))
}

func (c *Controller) lockDown(ec echo.Context) error       { return c.setLockdown(ec, true) }
func (c *Controller) cancelLockdown(ec echo.Context) error { return c.setLockdown(ec, false) }

func (c *Controller) setLockdown(ec echo.Context, down bool) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	if _, err := c.changeLock(ec, id, func(l *Lock) { l.LockedDown = down }); err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}

// changeLock applies change to lock id, keeps locked_down_since in step and
// records lock.online/offline and lock.lock_down/cancel_lockdown events for
// what changed, with the request's actor, in the change's transaction.
func (c *Controller) changeLock(ec echo.Context, id int64, change func(*Lock)) (Lock, error) {
	ctx := ec.Request().Context()
	var after Lock
	err := c.store.tx(ctx, func(ts *store) error {
		before, a, err := ts.updateLock(ctx, id, func(l *Lock) error {
			was := l.LockedDown
			change(l)
			switch {
			case !l.LockedDown:
				l.LockedDownSince = nil
			case !was:
				l.LockedDownSince = ptr(ts.stamp())
			}
			return nil
		})
		if err != nil {
			return err
		}
		after = a
		for _, typ := range lockChanges(before, after) {
			e := c.requestEvent(ec, typ)
			e.ObjectType, e.ObjectID, e.ObjectName, e.PlaceID, e.Success = objectLock, ptr(after.ID), after.Name, ptr(after.PlaceID), true
			if err := ts.addEvent(ctx, &e); err != nil {
				return err
			}
		}
		return nil
	})
	return after, err
}

// lockChanges returns the event types for what an admin changed from
// before to after: lockdown first, then connectivity.
func lockChanges(before, after Lock) []string {
	var types []string
	if before.LockedDown != after.LockedDown {
		types = append(types, map[bool]string{true: EventLockLockDown, false: EventLockCancelLock}[after.LockedDown])
	}
	if before.Online != after.Online {
		types = append(types, map[bool]string{true: EventLockOnline, false: EventLockOffline}[after.Online])
	}
	return types
}
