package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	latchkey "github.com/latchkey/latchkey"
)

// controllerClient reads what the connector's AccessControl does not offer
// from the controller's admin API: door events, doors and which group opens
// which door. It only reads.
type controllerClient struct {
	base string
	key  string
	hc   *http.Client
}

// ctrlEvent is one audit event, with Kisi's field names.
type ctrlEvent struct {
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

type ctrlLock struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Online     bool   `json:"online"`
	LockedDown bool   `json:"locked_down"`
}

type ctrlGroupLock struct {
	GroupID int64 `json:"group_id"`
	LockID  int64 `json:"lock_id"`
}

// door is a lock as the front desk sees it.
type door struct {
	ID     int64
	Name   string
	Online bool
}

// get fetches path with query into v and returns the total from
// X-Collection-Range ("a-b/total" or "*/total"), or -1.
func (cc *controllerClient) get(ctx context.Context, path string, q url.Values, v any) (int, error) {
	u := cc.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "KISI-LOGIN "+cc.key)
	req.Header.Set("Accept", "application/json")
	resp, err := cc.hc.Do(req)
	if err != nil {
		return 0, latchkey.Wrap(latchkey.Unavailable, "the controller is not reachable", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, latchkey.Wrap(latchkey.Unavailable, "the controller's answer was cut off", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, latchkey.Wrap(latchkey.Unavailable, fmt.Sprintf("the controller answered %s on %s", resp.Status, path), fmt.Errorf("%s", strings.TrimSpace(string(body))))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 0, latchkey.Wrap(latchkey.Unavailable, "the controller's answer is not JSON", err)
	}
	total := -1
	if r := resp.Header.Get("X-Collection-Range"); r != "" {
		if _, t, ok := strings.Cut(r, "/"); ok {
			if n, err := strconv.Atoi(t); err == nil {
				total = n
			}
		}
	}
	return total, nil
}

// events returns one page of events, newest first, and the total.
func (cc *controllerClient) events(ctx context.Context, f eventFilter, limit, offset int) ([]ctrlEvent, int, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	if f.Type != "" {
		q.Set("type", f.Type)
	}
	if f.Success != "" {
		q.Set("success", f.Success)
	}
	var es []ctrlEvent
	total, err := cc.get(ctx, "/events", q, &es)
	return es, total, err
}

// all pages through path (limit 250) up to max items.
func all[T any](ctx context.Context, cc *controllerClient, path string, max int) ([]T, error) {
	var out []T
	for offset := 0; offset < max; {
		var page []T
		total, err := cc.get(ctx, path, url.Values{"limit": {"250"}, "offset": {strconv.Itoa(offset)}}, &page)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		offset += len(page)
		if len(page) == 0 || (total >= 0 && offset >= total) {
			break
		}
	}
	return out, nil
}

// doorsByGroup returns each group's doors with their state.
func (cc *controllerClient) doorsByGroup(ctx context.Context) (map[int64][]door, error) {
	locks, err := all[ctrlLock](ctx, cc, "/locks", 5000)
	if err != nil {
		return nil, err
	}
	gls, err := all[ctrlGroupLock](ctx, cc, "/group_locks", 20000)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]ctrlLock, len(locks))
	for _, l := range locks {
		byID[l.ID] = l
	}
	out := map[int64][]door{}
	for _, gl := range gls {
		l, ok := byID[gl.LockID]
		if !ok {
			continue
		}
		out[gl.GroupID] = append(out[gl.GroupID], door{ID: l.ID, Name: l.Name, Online: l.Online && !l.LockedDown})
	}
	return out, nil
}

// cachedDoors returns doorsByGroup, fetched at most every 15 s; nil without
// a controller client.
func (u *UI) cachedDoors(ctx context.Context) (map[int64][]door, error) {
	if u.ctrl == nil {
		return nil, nil
	}
	u.cacheMu.Lock()
	c := u.doorCache
	u.cacheMu.Unlock()
	if c.val != nil && u.now().Sub(c.at) < 15*time.Second {
		return c.val, nil
	}
	d, err := u.ctrl.doorsByGroup(ctx)
	if err != nil {
		return nil, err
	}
	u.cacheMu.Lock()
	u.doorCache = cached[map[int64][]door]{at: u.now(), val: d}
	u.cacheMu.Unlock()
	return d, nil
}
