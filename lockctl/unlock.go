package lockctl

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

var errLockNotFound = &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Lock not found"}

func tooMany(wait time.Duration) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: CodeRateLimited,
		Message: "Too many unlock requests, retry in " + strconv.Itoa(int(wait/time.Second)) + " s", RetryAfter: wait}
}

// unlock serves POST /locks/{id}/unlock for link holders and admins. The
// order of checks is: credentials (without a valid one, the client
// address's rate limit), the credential's rate limit, link state and window
// (at this instant), group membership, lock state, then the driver. A valid
// credential is limited per credential only, so strangers at the same
// address cannot throttle a guest. Every granted unlock is recorded as a
// lock.unlock event with the client IP and user agent; so is every refusal
// of a known credential within its limit, while the rest are sampled (see
// refusals).
func (c *Controller) unlock(ec echo.Context) error {
	now := c.now()
	ctx := ec.Request().Context()
	e := c.requestEvent(ec, EventLockUnlock)
	e.UUID, e.CreatedAt, e.ObjectType = uuid.NewString(), now, objectLock
	// Once a credential is known and within its rate limit, its refusals
	// (a revoked guest trying the door after sign-out) are each recorded:
	// that limit bounds them. Refusals without a valid credential, or over
	// its limit, are sampled.
	identified := false
	deny := func(err error) error {
		ae, _ := toAPIError(err)
		e.Success, e.Code, e.Message = false, ae.Code, ae.Message
		if identified {
			c.record(ec, e)
		} else {
			c.recordRefusal(ec, e)
		}
		return err
	}

	p, err := who(ec)
	if err != nil {
		if ok, wait := c.ipLimits.allow(addressKey(ec.RealIP())); !ok {
			return deny(tooMany(wait))
		}
		return deny(err)
	}
	if ok, wait := c.linkLimits.allow(credentialKey(p)); !ok {
		return deny(tooMany(wait))
	}
	identified = true
	lockID, err := pathID(ec)
	if err != nil {
		return deny(errLockNotFound)
	}
	e.ObjectID = &lockID
	lock, err := c.store.lock(ctx, lockID)
	found := err == nil
	if err != nil && latchkey.KindOf(err) != latchkey.NotFound {
		return deny(err)
	}
	if found {
		e.ObjectName, e.PlaceID = lock.Name, &lock.PlaceID
	}

	var d *Denial
	switch {
	case p.person() != nil:
		if !found {
			return deny(errLockNotFound)
		}
		pers := p.person()
		cands, err := c.store.unlockCandidates(ctx, pers.Type, pers.ID, lock)
		if err != nil {
			return deny(err)
		}
		var ra *RoleAssignment
		ra, d = CheckPersonUnlock(*pers, cands, lock, p.User != nil, now)
		if ra != nil {
			e.AuthorizedByType, e.AuthorizedByID, e.AuthorizedByRoleID = objectRoleAssignment, ptr(ra.ID), ra.RoleID
		}
	case p.Link != nil:
		inGroup := false
		if found {
			if inGroup, err = c.store.groupOpens(ctx, p.Link.GroupID, lock.ID); err != nil {
				return deny(err)
			}
		}
		d = CheckUnlock(*p.Link, lock, inGroup, now)
	case !found:
		return deny(errLockNotFound)
	default:
		d = checkLock(lock)
	}
	if d != nil {
		return deny(&apiError{Status: d.Status, Code: d.Code, Message: d.Message})
	}

	if err := c.driver.Unlock(ctx, lock.ID, c.opts.SimUnlockDuration, e.UUID); err != nil {
		c.log.Warn("lock driver unlock", "lock_id", lock.ID, "request_id", e.UUID, "err", err)
		return deny(&apiError{Status: http.StatusServiceUnavailable, Code: CodeDriverFailed,
			Message: "Lock controller unavailable"})
	}
	e.Success = true
	switch {
	case p.person() != nil:
		if err := c.store.recordPersonUnlock(context.WithoutCancel(ctx), &e, p, now); err != nil {
			c.log.Error("record unlock", "actor_type", e.ActorType, "actor_id", *e.ActorID, "err", err)
		}
	case p.Link == nil:
		c.record(ec, e)
	default:
		if err := c.store.recordUnlock(context.WithoutCancel(ctx), &e, p.Link.ID, now); err != nil {
			c.log.Error("record unlock", "link_id", p.Link.ID, "err", err)
		}
	}
	return ec.JSON(http.StatusOK, map[string]string{"message": "Unlocked!"})
}

// credentialKey names the credential of p for its rate limit.
func credentialKey(p *principal) string {
	switch {
	case p.Link != nil:
		return "link:" + strconv.FormatInt(p.Link.ID, 10)
	case p.AccessKey != nil:
		return "access_key:" + strconv.FormatInt(p.AccessKey.ID, 10)
	case p.Login != nil:
		return "login:" + strconv.FormatInt(p.Login.ID, 10)
	}
	return "admin"
}

// recordRefusal stores the event of a refused unlock if the sample takes
// it, and the summary of an earlier minute's unstored refusals.
func (c *Controller) recordRefusal(ec echo.Context, e Event) {
	keep, summary := c.refusals.admit(e.Code, e.CreatedAt)
	if summary != nil {
		c.record(ec, *summary)
	}
	if keep {
		c.record(ec, e)
	}
}
