package lockctl

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type createGroupLockRequest struct {
	GroupLock struct {
		GroupID int64 `json:"group_id"`
		LockID  int64 `json:"lock_id"`
	} `json:"group_lock"`
}

// createGroupLock lets a group open a lock of the same place.
func (c *Controller) createGroupLock(ec echo.Context) error {
	var req createGroupLockRequest
	if err := bindBody(ec, &req); err != nil {
		return err
	}
	r := req.GroupLock
	fe := fieldErrors{}
	if r.GroupID == 0 {
		fe.add("group_id", "can't be blank")
	}
	if r.LockID == 0 {
		fe.add("lock_id", "can't be blank")
	}
	if err := fe.err(); err != nil {
		return err
	}
	ctx := ec.Request().Context()
	g, err := c.store.group(ctx, r.GroupID)
	if err != nil {
		return existsOr422(err, "group")
	}
	l, err := c.store.lock(ctx, r.LockID)
	if err != nil {
		return existsOr422(err, "lock")
	}
	if l.PlaceID != g.PlaceID {
		return fieldErrors{"lock": {"must belong to the group's place"}}
	}
	gl := GroupLock{GroupID: g.ID, LockID: l.ID}
	if err := c.store.createGroupLock(ctx, &gl); err != nil {
		return conflictAsField(err, "lock")
	}
	return ec.JSON(http.StatusOK, newGroupLockResponse(gl))
}

func (c *Controller) listGroupLocks(ec echo.Context) error {
	pg, err := parsePage(ec, 10)
	if err != nil {
		return err
	}
	var f groupLockFilter
	if f.GroupID, err = queryInt(ec, "group_id"); err != nil {
		return err
	}
	if f.LockID, err = queryInt(ec, "lock_id"); err != nil {
		return err
	}
	gls, total, err := c.store.listGroupLocks(ec.Request().Context(), f, pg)
	if err != nil {
		return err
	}
	out := make([]groupLockResponse, len(gls))
	for i, gl := range gls {
		out[i] = newGroupLockResponse(gl)
	}
	return writeList(ec, pg, total, out)
}

func (c *Controller) deleteGroupLock(ec echo.Context) error {
	id, err := pathID(ec)
	if err != nil {
		return err
	}
	if err := c.store.deleteGroupLock(ec.Request().Context(), id); err != nil {
		return err
	}
	return ec.NoContent(http.StatusNoContent)
}
