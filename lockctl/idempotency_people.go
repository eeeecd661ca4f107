package lockctl

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey"
)

// Role assignments (POST /role_assignments) and invites (POST /invites)
// take an Idempotency-Key with the same semantics as links: the key is an
// IdempotencyRecord of kind kindAssignment that outlives what it made. Once
// the role assignment is deleted (on its own, or with its person), or the
// key voided before any create arrived (POST /role_assignments/void), a
// create under the key answers 410 and makes nothing — no person, no role
// assignment, no access key.

// keyedAssignment finds the role assignment created under key by caller:
// found is false when the key is new. A key that is another caller's, that
// made a link, or whose assignment is gone is refused (409, 410).
func keyedAssignment(ctx context.Context, ts *store, key, caller string) (RoleAssignment, bool, error) {
	r, found, err := ts.idempotency(ctx, key)
	if err != nil {
		return RoleAssignment{}, false, err
	}
	if !found {
		// Assignments made before records existed carry their key on the row.
		return ts.assignmentByIdempotencyKey(ctx, key)
	}
	switch {
	case r.Caller != caller:
		return RoleAssignment{}, false, latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used by another caller")
	case r.Kind != kindAssignment:
		return RoleAssignment{}, false, latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used for a link")
	case r.Gone || r.AssignmentID == nil:
		return RoleAssignment{}, false, &apiError{Status: http.StatusGone, Code: CodeGone,
			Message: "The role assignment made under this Idempotency-Key was deleted"}
	}
	ra, err := ts.assignment(ctx, *r.AssignmentID)
	return ra, err == nil, err
}

// recordAssignmentKey stores that key made ra.
func recordAssignmentKey(ctx context.Context, ts *store, key, caller string, ra RoleAssignment) error {
	r := IdempotencyRecord{Key: key, Caller: caller, Kind: kindAssignment, GroupID: ra.AppliesToID, AssignmentID: &ra.ID}
	return ts.createIdempotency(ctx, &r)
}

// assignmentsGone marks, through tx, the keys that made the role
// assignments matched by where (a subquery of their ids) as gone.
func assignmentsGone(tx *gorm.DB, ids *gorm.DB) error {
	err := tx.Model(&IdempotencyRecord{}).Where("assignment_id IN (?)", ids).Update("gone", true).Error
	return translate(err, "mark idempotency keys gone", "idempotency key")
}

type assignmentVoidResponse struct {
	// RoleAssignmentID is the assignment the key had made and that is now
	// deleted, with its assignee (for the caller to remove the person if
	// nothing else of theirs remains); all null when none had been made.
	RoleAssignmentID *int64  `json:"role_assignment_id"`
	AssigneeType     *string `json:"assignee_type"`
	AssigneeID       *int64  `json:"assignee_id"`
}

// voidAssignment is POST /role_assignments/void: it makes sure nothing
// created under a key by a role assignment create or an invite is, or will
// ever be, live. The role assignment made is deleted (with its event), and
// a create under the key arriving later answers 410.
func (c *Controller) voidAssignment(ec echo.Context) error {
	req, err := c.bindVoid(ec, false)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	p, _ := who(ec)
	caller := callerOf(p)
	var out assignmentVoidResponse
	err = c.store.tx(ctx, func(ts *store) error {
		r, found, err := ts.idempotency(ctx, req.IdempotencyKey)
		if err != nil {
			return err
		}
		var id *int64
		switch {
		case !found:
			r = IdempotencyRecord{Key: req.IdempotencyKey, Caller: caller, Kind: kindAssignment, Gone: true}
			legacy, ok, err := ts.assignmentByIdempotencyKey(ctx, req.IdempotencyKey)
			if err != nil {
				return err
			}
			if ok {
				r.AssignmentID, id = &legacy.ID, &legacy.ID
			}
			if err := ts.createIdempotency(ctx, &r); err != nil {
				return err
			}
		case r.Caller != caller:
			return latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used by another caller")
		case r.Kind != kindAssignment:
			return latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used for a link")
		case !r.Gone && r.AssignmentID != nil:
			id = r.AssignmentID
		}
		if id == nil {
			return nil
		}
		ra, err := ts.deleteAssignment(ctx, *id)
		switch {
		case latchkey.KindOf(err) == latchkey.NotFound:
		case err != nil:
			return err
		default:
			out = assignmentVoidResponse{RoleAssignmentID: &ra.ID, AssigneeType: &ra.AssigneeType, AssigneeID: &ra.AssigneeID}
			if err := c.addAssignmentEvent(ec, ts, EventAssignmentDestroy, ra); err != nil {
				return err
			}
		}
		return ts.idempotencyGone(ctx, r.Key)
	})
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, out)
}
