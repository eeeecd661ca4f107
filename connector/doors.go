package connector

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// doorsTTL is how long a listing of an install's group doors is used: the
// emails and multi-group unlocks of a busy hour share one listing, and a
// door renamed on the controller shows in emails within this time. A door
// an unlock asks for that the listing lacks (just added to a group) is
// looked for again in a listing at most doorsRecheck old.
const (
	doorsTTL     = 30 * time.Second
	doorsRecheck = 2 * time.Second
)

// doorCache holds the latest group-doors listing of each install. It is
// bounded by the number of installs; entries older than doorsTTL are
// dropped when another is stored. It is safe for concurrent use.
type doorCache struct {
	mu      sync.Mutex
	entries map[string]doorEntry
	// fetch makes one listing serve every caller that needs it at once.
	fetch singleflight.Group
}

type doorEntry struct {
	at    time.Time
	doors map[int64][]Lock
}

// groupDoors returns the doors of every group on the controller of install
// (ctx bound to it), from a listing at most maxAge old (a new one when
// none is).
func (s *Service) groupDoors(ctx context.Context, install string, maxAge time.Duration) (map[int64][]Lock, error) {
	now := time.Now()
	c := &s.doorCache
	c.mu.Lock()
	e, ok := c.entries[install]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < maxAge {
		return e.doors, nil
	}
	v, err, _ := c.fetch.Do(install, func() (any, error) {
		doors, err := s.ctl(ctx).GroupDoors(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.entries == nil {
			c.entries = map[string]doorEntry{}
		}
		for k, old := range c.entries {
			if now.Sub(old.at) >= doorsTTL {
				delete(c.entries, k)
			}
		}
		c.entries[install] = doorEntry{at: now, doors: doors}
		return doors, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[int64][]Lock), nil
}

// forgetDoors drops install's listing (its controller changed).
func (s *Service) forgetDoors(install string) {
	s.doorCache.mu.Lock()
	delete(s.doorCache.entries, install)
	s.doorCache.mu.Unlock()
}

// emailDoors lists the doors behind the visit's live links, by their
// groups: one listing of the install's group doors serves every email
// (and report). A visit with a person credential lists the person's.
func (s *Service) emailDoors(ctx context.Context, v *Visit, links []VisitLink) ([]Door, error) {
	ctx, err := s.bindController(ctx, v.InstallID)
	if err != nil {
		return nil, err
	}
	if ds, ok, err := s.personDoors(ctx, v); ok || err != nil {
		return ds, err
	}
	byGroup, err := s.groupDoors(ctx, v.InstallID, doorsTTL)
	if err != nil {
		return nil, err
	}
	var out []Door
	seen := map[int64]bool{}
	for _, l := range links {
		if l.Removed || l.LinkID == 0 {
			continue
		}
		for _, lk := range byGroup[l.GroupID] {
			if !seen[lk.ID] {
				seen[lk.ID] = true
				out = append(out, Door{LockID: lk.ID, Name: lk.Name, Online: lk.Online, LockedDown: lk.LockedDown, GroupID: l.GroupID})
			}
		}
	}
	return out, nil
}
