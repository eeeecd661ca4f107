package kisi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// lockJSON is the reduced Lock a group link holder sees.
type lockJSON struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Online     *bool  `json:"online"`
	LockedDown bool   `json:"locked_down"`
	PlaceID    *int64 `json:"place_id"`
	Place      *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"place"`
}

func (j lockJSON) toLock() connector.Lock {
	l := connector.Lock{
		ID:         j.ID,
		Name:       j.Name,
		Online:     j.Online != nil && *j.Online,
		LockedDown: j.LockedDown,
	}
	if j.PlaceID != nil {
		l.PlaceID = *j.PlaceID
	}
	if j.Place != nil {
		l.PlaceName = j.Place.Name
		if l.PlaceID == 0 {
			l.PlaceID = j.Place.ID
		}
	}
	return l
}

// toLocks converts the controller's locks into the domain's.
func toLocks(js []lockJSON) []connector.Lock {
	locks := make([]connector.Lock, len(js))
	for i, j := range js {
		locks[i] = j.toLock()
	}
	return locks
}

var errNoSecret = &latchkey.Error{Kind: latchkey.Invalid, Msg: "link secret is required"}

// LinkLocks lists the locks the holder of secret may open (GET /locks with
// "Authorization: KISI-GROUP-LINK <secret>", all pages). An empty secret is
// an Invalid error without a request. Errors: Unauthorized for an unknown
// secret, Forbidden, TooMany, Unavailable; the secret never appears in them.
// GET is retried on 429, 5xx and network errors. Safe for concurrent use.
func (cl *Client) LinkLocks(ctx context.Context, secret string) ([]connector.Lock, error) {
	if secret == "" {
		return nil, fmt.Errorf("kisi: list locks of a link: %w", errNoSecret)
	}
	js, err := listAll[lockJSON](ctx, cl, call{
		method:  http.MethodGet,
		path:    []string{"locks"},
		policy:  retryIdempotent,
		secret:  secret,
		op:      "list locks of a link",
		subject: "the link's locks",
	})
	if err != nil {
		return nil, err
	}
	return toLocks(js), nil
}

type groupLockJSON struct {
	GroupID int64 `json:"group_id"`
	LockID  int64 `json:"lock_id"`
}

// GroupDoors returns the doors of every group, as the admin sees them
// (GET /locks and GET /group_locks, all pages): the locks each group's
// links open. Errors as for ListGroups. Safe for concurrent use.
func (cl *Client) GroupDoors(ctx context.Context) (map[int64][]connector.Lock, error) {
	locks, err := listAll[lockJSON](ctx, cl, call{method: http.MethodGet, path: []string{"locks"}, policy: retryIdempotent,
		op: "list locks", subject: "the lock list"})
	if err != nil {
		return nil, err
	}
	gls, err := listAll[groupLockJSON](ctx, cl, call{method: http.MethodGet, path: []string{"group_locks"}, policy: retryIdempotent,
		op: "list group locks", subject: "the group-lock list"})
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]lockJSON, len(locks))
	for _, l := range locks {
		byID[l.ID] = l
	}
	out := map[int64][]connector.Lock{}
	for _, gl := range gls {
		if l, ok := byID[gl.LockID]; ok {
			out[gl.GroupID] = append(out[gl.GroupID], l.toLock())
		}
	}
	return out, nil
}

// Unlock unlocks lock lockID as the holder of secret
// (POST /locks/{id}/unlock). Any 2xx answer (Kisi's is
// {"message":"Unlocked!"}) means unlocked. A refusal is an error whose cause
// is a *connector.ControllerError with the controller's code (e.g. "f358de"
// not yet valid): Unauthorized, Forbidden, NotFound for an unknown lock,
// Conflict, TooMany on 429 and Unavailable on 5xx. An unlock is a person at a
// door, so it is not retried on any answer, only on a connection error before
// the request was sent. An empty secret is an Invalid error without a
// request. Safe for concurrent use.
func (cl *Client) Unlock(ctx context.Context, secret string, lockID int64) error {
	ids := strconv.FormatInt(lockID, 10)
	if secret == "" {
		return fmt.Errorf("kisi: unlock lock %s: %w", ids, errNoSecret)
	}
	c := call{
		method:   http.MethodPost,
		path:     []string{"locks", ids, "unlock"},
		policy:   retryUnsent,
		secret:   secret,
		op:       "unlock lock " + ids,
		subject:  "the unlock of lock " + ids,
		notFound: "lock " + ids,
	}
	if cl.opts.Local != nil {
		return cl.unlockLocal(ctx, c, lockID)
	}
	_, err := cl.do(ctx, c)
	return err
}
