package kisi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	latchkey "github.com/latchkey/latchkey"
)

// Event is one entry of the controller's audit log.
type Event struct {
	ID         int64     `json:"id"`
	Type       string    `json:"type"`
	ActorType  *string   `json:"actor_type"`
	ActorName  *string   `json:"actor_name"`
	ActorEmail *string   `json:"actor_email"`
	ObjectType string    `json:"object_type"`
	ObjectName string    `json:"object_name"`
	Success    bool      `json:"success"`
	Code       *string   `json:"code"`
	Message    *string   `json:"message"`
	ClientIP   *string   `json:"client_ip"`
	CreatedAt  time.Time `json:"created_at"`
}

// EventFilter selects audit events: Type ("" for any) and Success ("true",
// "false" or "" for either).
type EventFilter struct {
	Type    string
	Success string
}

// Events returns one page of audit events, newest first, and the total the
// controller reports (-1 when it reports none). Errors: Unauthorized,
// Forbidden, TooMany, Unavailable. Safe for concurrent use.
func (cl *Client) Events(ctx context.Context, f EventFilter, limit, offset int) ([]Event, int, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	if f.Type != "" {
		q.Set("type", f.Type)
	}
	if f.Success != "" {
		q.Set("success", f.Success)
	}
	c := call{method: http.MethodGet, path: []string{"events"}, query: q, policy: retryIdempotent,
		op: "list events", subject: "the event log"}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return nil, 0, err
	}
	var es []Event
	if err := decode(c, resp, &es); err != nil {
		return nil, 0, err
	}
	total := -1
	if r := resp.header.Get("X-Collection-Range"); r != "" {
		if cr, err := parseRange(r); err == nil {
			total = cr.total
		}
	}
	return es, total, nil
}

// Door is a lock as the front desk sees it: Online is false while it is
// offline or locked down.
type Door struct {
	ID     int64
	Name   string
	Online bool
}

// DoorsByGroup returns each group's doors with their state, as the front
// desk shows them (see GroupDoors). Safe for concurrent use.
func (cl *Client) DoorsByGroup(ctx context.Context) (map[int64][]Door, error) {
	byGroup, err := cl.GroupDoors(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]Door, len(byGroup))
	for g, locks := range byGroup {
		for _, l := range locks {
			out[g] = append(out[g], Door{ID: l.ID, Name: l.Name, Online: l.Online && !l.LockedDown})
		}
	}
	return out, nil
}

// DeleteLogin revokes controller login id (DELETE /logins/{id}); one that
// is already gone counts as revoked. Safe for concurrent use.
func (cl *Client) DeleteLogin(ctx context.Context, id int64) error {
	ids := strconv.FormatInt(id, 10)
	_, err := cl.do(ctx, call{method: http.MethodDelete, path: []string{"logins", ids}, policy: retryIdempotent,
		op: "delete login " + ids, subject: "login " + ids})
	if latchkey.KindOf(err) == latchkey.NotFound {
		return nil
	}
	return err
}

// Login is a key minted on the controller, as GET /logins lists it.
type Login struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Logins lists the keys minted on the controller (GET /logins, all pages).
// Errors as for ListGroups. Safe for concurrent use.
func (cl *Client) Logins(ctx context.Context) ([]Login, error) {
	return listAll[Login](ctx, cl, call{method: http.MethodGet, path: []string{"logins"}, policy: retryIdempotent,
		op: "list logins", subject: "the login list"})
}
