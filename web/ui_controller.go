package web

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/connector/kisi"
)

// Controller is what the front desk reads from the access controller
// beyond connector.AccessControl: its audit log, its doors and the keys
// minted on it. *kisi.Client implements it; the wire format stays there.
type Controller interface {
	Events(ctx context.Context, f kisi.EventFilter, limit, offset int) ([]kisi.Event, int, error)
	DoorsByGroup(ctx context.Context) (map[int64][]kisi.Door, error)
	Logins(ctx context.Context) ([]kisi.Login, error)
	DeleteLogin(ctx context.Context, id int64) error
}

var _ Controller = (*kisi.Client)(nil)

// ctrlEvent is one audit event of the controller.
type ctrlEvent = kisi.Event

// door is a lock as the front desk sees it.
type door = kisi.Door

// ctrlLogin is a key minted on the controller.
type ctrlLogin = kisi.Login

// cachedDoors returns each group's doors, fetched at most every 15 s; nil
// without a controller.
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
	d, err := u.ctrl.DoorsByGroup(ctx)
	if err != nil {
		return nil, err
	}
	u.cacheMu.Lock()
	u.doorCache = cached[map[int64][]door]{at: u.now(), val: d}
	u.cacheMu.Unlock()
	return d, nil
}
