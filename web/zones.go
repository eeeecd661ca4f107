package web

import (
	"sync"
	"time"
)

// maxZones bounds the zone cache: zone names come from webhooks.
const maxZones = 512

// zones remembers time.LoadLocation's answers, known and unknown names
// alike, so that a page does not read zone files on every request.
var zones zoneCache

type zoneCache struct {
	mu sync.Mutex
	m  map[string]*time.Location // nil: not a zone
}

// load returns the location of an IANA zone name, or nil when the name is
// "" or not a zone ("Local", the server's own zone, is not one).
func (c *zoneCache) load(name string) *time.Location {
	if name == "" || name == "Local" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if loc, ok := c.m[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if c.m == nil || len(c.m) >= maxZones {
		c.m = map[string]*time.Location{}
	}
	c.m[name] = loc
	return loc
}
