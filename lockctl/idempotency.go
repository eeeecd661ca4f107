package lockctl

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/latchkey/latchkey"
)

// Idempotent link creation (an extension to Kisi's API, in the style of
// Stripe's): a POST /group_links carrying an Idempotency-Key names that
// creation. Sent again under the same key (its answer was lost, or the
// client died before reading it), it gets back the very link it made, with
// the very same secrets: they are derived from the key with the
// controller's secret key, so nothing recoverable is stored. A key outlives
// its link: once the link is deleted, or the key voided before any create
// arrived (POST /group_links/void), a create under it answers 410 and makes
// nothing, so a create that was cut off and arrives late can never bring
// access back. Records are kept for idempotencyRetention, far longer than
// any request can be in flight, and are scoped to the key's caller.

// CodeGone answers a create under a key whose link was deleted or voided.
const CodeGone = "f41000" // lockctl's own code

// idempotencyRetention is how long a key is remembered.
const idempotencyRetention = 7 * 24 * time.Hour

// IdempotencyRecord is what a key made: its link or its role assignment
// (a role assignment's create, or an invite's), while it lives.
type IdempotencyRecord struct {
	Key string `gorm:"primaryKey;size:128"`
	// Caller is who used the key ("admin", or "login:<id>"); another caller
	// cannot use it.
	Caller string `gorm:"size:32;not null"`
	// Kind is what the key creates: kindLink or kindAssignment. A key of
	// one kind cannot create the other.
	Kind string `gorm:"size:16;not null;default:'link'"`
	// GroupID is the link's group, or the id of what the role assignment
	// applies to.
	GroupID int64 `gorm:"not null"`
	// LinkID is the link made under the key; nil when the key was voided
	// before any create arrived.
	LinkID *int64 `gorm:"index"`
	// AssignmentID is the role assignment made under the key; nil for a
	// link's key, or when the key was voided before any create arrived.
	AssignmentID *int64 `gorm:"index"`
	// Gone is set once the link is deleted or the key voided.
	Gone      bool      `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null;index;autoCreateTime:false"`
}

// TableName implements gorm's tabler.
func (IdempotencyRecord) TableName() string { return "lockctl_idempotency_keys" }

// Kinds of idempotency record.
const (
	kindLink       = "link"
	kindAssignment = "role_assignment"
)

// callerOf names the principal p for idempotency records.
func callerOf(p *principal) string {
	if p != nil && p.Login != nil {
		return fmt.Sprintf("login:%d", p.Login.ID)
	}
	return "admin"
}

// derivedSecret is the secret of kind ("link" or "qr") for the creation
// named key by caller, under the controller's secret key.
func (c *Controller) derivedSecret(kind, caller, key string) string {
	m := hmac.New(sha256.New, c.opts.SecretKey)
	fmt.Fprintf(m, "lockctl idempotent %s secret\x00%s\x00%s", kind, caller, key)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// idempotency loads key's record, locked for the transaction; found is
// false when there is none.
func (s *store) idempotency(ctx context.Context, key string) (IdempotencyRecord, bool, error) {
	var r IdempotencyRecord
	err := forUpdate(s.db.WithContext(ctx)).Where("key = ?", key).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, translate(err, "find idempotency key", "idempotency key")
	}
	return r, true, nil
}

// createIdempotency stores a new key's record; a concurrent request that
// stored the same key first makes this fail as a conflict.
func (s *store) createIdempotency(ctx context.Context, r *IdempotencyRecord) error {
	r.CreatedAt = s.stamp()
	return create(ctx, s, r, "idempotency key")
}

// idempotencyGone marks key's record gone.
func (s *store) idempotencyGone(ctx context.Context, key string) error {
	err := s.db.WithContext(ctx).Model(&IdempotencyRecord{}).Where("key = ?", key).Update("gone", true).Error
	return translate(err, "mark idempotency key gone", "idempotency key")
}

// linkGone marks the key that made link id, if any, as gone.
func (s *store) linkGone(ctx context.Context, id int64) error {
	err := s.db.WithContext(ctx).Model(&IdempotencyRecord{}).Where("link_id = ?", id).Update("gone", true).Error
	return translate(err, "mark idempotency key gone", "idempotency key")
}

// deleteIdempotencyBefore forgets keys used before t, at most limit.
func (s *store) deleteIdempotencyBefore(ctx context.Context, t time.Time, limit int) (int64, error) {
	sub := s.db.Model(&IdempotencyRecord{}).Select("key").Where("created_at < ?", t.UTC()).Limit(limit)
	res := s.db.WithContext(ctx).Where("key IN (?)", sub).Delete(&IdempotencyRecord{})
	return res.RowsAffected, translate(res.Error, "forget idempotency keys", "idempotency key")
}

// checkIdempotencyKey refuses a key that cannot be stored, or any key when
// this controller has no secret key to derive secrets with.
func (c *Controller) checkIdempotencyKey(fe fieldErrors, key string) {
	if len(c.opts.SecretKey) == 0 {
		fe.add("idempotency_key", "is not supported by this controller (it has no secret key)")
		return
	}
	checkText(fe, "idempotency_key", key, maxIdempotencyKey)
}

// bindVoid reads and checks a void request. Voiding a link's key needs the
// controller's secret key (keys for links are only taken with it, as the
// secret a replay returns is sealed with it); a role assignment's does not.
func (c *Controller) bindVoid(ec echo.Context, link bool) (voidRequest, error) {
	var req voidRequest
	if err := bindBody(ec, &req); err != nil {
		return req, err
	}
	fe := fieldErrors{}
	switch {
	case req.IdempotencyKey == "":
		fe.add("idempotency_key", "can't be blank")
	case link:
		c.checkIdempotencyKey(fe, req.IdempotencyKey)
	default:
		checkText(fe, "idempotency_key", req.IdempotencyKey, maxIdempotencyKey)
	}
	return req, fe.err()
}

// replayedLink is what a create under a known key answers: the link it
// made, or an error when the key is another caller's, gone, or another
// group's.
func replayedLink(ctx context.Context, ts *store, r IdempotencyRecord, caller string, group int64) (GroupLink, error) {
	switch {
	case r.Caller != caller:
		return GroupLink{}, latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used by another caller")
	case r.Kind == kindAssignment:
		return GroupLink{}, latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used for a role assignment")
	case r.Gone || r.LinkID == nil:
		return GroupLink{}, &apiError{Status: http.StatusGone, Code: CodeGone, Message: "The link made under this Idempotency-Key was deleted"}
	case r.GroupID != group:
		return GroupLink{}, latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used for another request")
	}
	return ts.link(ctx, *r.LinkID)
}

type voidRequest struct {
	IdempotencyKey string `json:"idempotency_key"`
}

type voidResponse struct {
	// LinkID is the link the key had made and that is now deleted; null
	// when none had been made.
	LinkID *int64 `json:"link_id"`
}

// voidLink makes sure nothing created under a key is, or will ever be,
// live: the link it made is deleted (with its event), and a create under it
// arriving later answers 410. It is how a client settles a creation it
// lost track of without waiting for it to arrive.
func (c *Controller) voidLink(ec echo.Context) error {
	req, err := c.bindVoid(ec, true)
	if err != nil {
		return err
	}
	ctx := ec.Request().Context()
	p, _ := who(ec)
	caller := callerOf(p)
	var out voidResponse
	err = c.store.tx(ctx, func(ts *store) error {
		r, found, err := ts.idempotency(ctx, req.IdempotencyKey)
		if err != nil {
			return err
		}
		if !found {
			r = IdempotencyRecord{Key: req.IdempotencyKey, Caller: caller, Kind: kindLink, Gone: true}
			return ts.createIdempotency(ctx, &r)
		}
		if r.Caller != caller {
			return latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used by another caller")
		}
		if r.Kind == kindAssignment {
			return latchkey.Errorf(latchkey.Conflict, "this Idempotency-Key was used for a role assignment")
		}
		if r.Gone || r.LinkID == nil {
			return nil
		}
		l, err := ts.deleteLink(ctx, *r.LinkID)
		switch {
		case latchkey.KindOf(err) == latchkey.NotFound:
		case err != nil:
			return err
		default:
			out.LinkID = &l.ID
			if err := c.addLinkEvent(ec, ts, EventGroupLinkDestroy, l); err != nil {
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
