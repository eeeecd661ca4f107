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

// unlockAttempt is one unlock to decide: who asks (the principal, or why
// there is none), the lock (lockID 0: a path that names none), and where
// the request comes from.
type unlockAttempt struct {
	p         *principal
	authErr   error
	lockID    int64
	ip, agent string
	// view is the access data the credential was resolved under; nil:
	// the decision takes its own.
	view *accessView
}

// unlock serves POST /locks/{id}/unlock for link holders and admins (see
// decideUnlock).
func (c *Controller) unlock(ec echo.Context) error {
	a := unlockAttempt{ip: ec.RealIP(), agent: ec.Request().UserAgent()}
	a.p, a.authErr = who(ec)
	a.view, _ = ec.Get(viewKey).(*accessView)
	if id, err := pathID(ec); err == nil {
		a.lockID = id
	}
	if err := c.decideUnlock(ec.Request().Context(), a); err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, map[string]string{"message": "Unlocked!"})
}

// UnlockInProcess answers an unlock asked by a client in this process, in
// memory: what POST /locks/{lockID}/unlock with the Authorization header
// authorization, from clientIP with userAgent, would answer, as its HTTP
// status and, for a refusal, Kisi's error code and message. The checks,
// rate limits and audit events are those of the HTTP route. It is safe for
// concurrent use.
func (c *Controller) UnlockInProcess(ctx context.Context, authorization string, lockID int64, clientIP, userAgent string) (status int, code, message string) {
	a := unlockAttempt{lockID: max(lockID, 0), ip: clientIP, agent: userAgent}
	a.p, a.view, a.authErr = c.resolveHeader(ctx, authorization, addressKey(clientIP))
	err := c.decideUnlock(ctx, a)
	if err == nil {
		return http.StatusOK, "", ""
	}
	ae, _ := toAPIError(err)
	if ae.Status >= 500 {
		c.log.Error("unlock failed", "lock_id", lockID, "err", err)
	}
	return ae.Status, ae.Code, ae.Message
}

// decideUnlock decides and carries out an unlock. The order of checks is:
// credentials (without a valid one, the client address's rate limit), the
// credential's rate limit, link state and window (at this instant), group
// membership, lock state, then the driver. A valid credential is limited
// per credential only, so strangers at the same address cannot throttle a
// guest. Every granted unlock is recorded as a lock.unlock event with the
// client IP and user agent (a link's off the request path, see
// auditWriter); so is every refusal of a known credential within its
// limit, while the rest are sampled (see refusals). It returns nil when
// the door was unlocked.
func (c *Controller) decideUnlock(ctx context.Context, a unlockAttempt) error {
	now := c.now()
	e := Event{Type: EventLockUnlock, ClientIP: truncate(a.ip, 64), UserAgent: boundedUserAgent(a.agent)}
	actor(&e, a.p)
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
			c.audit.record(ctx, e, 0, now)
		} else {
			c.recordRefusal(ctx, e)
		}
		return err
	}

	p := a.p
	if p == nil {
		err := a.authErr
		if err == nil {
			err = errNoCredentials
		}
		if ok, wait := c.ipLimits.allow(addressKey(a.ip)); !ok {
			return deny(tooMany(wait))
		}
		return deny(err)
	}
	if ok, wait := c.linkLimits.allow(credentialKey(p)); !ok {
		return deny(tooMany(wait))
	}
	identified = true
	if a.lockID < 1 {
		return deny(errLockNotFound)
	}
	lockID := a.lockID
	e.ObjectID = &lockID
	v := a.view
	if v == nil {
		var err error
		if v, err = c.view(ctx); err != nil {
			return deny(err)
		}
	}
	lock, err := v.lock(ctx, lockID)
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
			if inGroup, err = v.groupOpens(ctx, p.Link.GroupID, lock.ID); err != nil {
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
		c.audit.record(ctx, e, 0, now)
	default:
		c.audit.record(ctx, e, p.Link.ID, now)
	}
	return nil
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
func (c *Controller) recordRefusal(ctx context.Context, e Event) {
	keep, summary := c.refusals.admit(e.Code, e.CreatedAt)
	if summary != nil {
		c.audit.record(ctx, *summary, 0, e.CreatedAt)
	}
	if keep {
		c.audit.record(ctx, e, 0, e.CreatedAt)
	}
}
