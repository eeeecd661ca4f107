package connector

import (
	"sync"
	"time"
	"unicode/utf8"
)

// Bounds of the event fields latchkey stores, in characters. The parser
// of each wire format refuses longer values (and control characters), so
// nothing the database would refuse reaches it; the columns that hold
// them are at least this wide.
const (
	// MaxIDLen bounds install, location, flow, entry, invite and job ids.
	MaxIDLen = 64
	// MaxEventNameLen bounds event names, also of events latchkey ignores.
	MaxEventNameLen = 64
	// MaxTimeZoneLen bounds IANA zone names.
	MaxTimeZoneLen = 64
	// MaxNameLen bounds a visitor's full name and a flow's name.
	MaxNameLen = 200
	// MaxEmailLen bounds an email address (RFC 5321: 64 + 1 + 255).
	MaxEmailLen = 320
	// MaxPhoneLen bounds a phone number.
	MaxPhoneLen = 64
	// MaxApprovalLen bounds an approval status.
	MaxApprovalLen = 64
	// MaxAddressLen bounds a location's address.
	MaxAddressLen = 300
	// MaxLocaleLen bounds a location's locale tag.
	MaxLocaleLen = 35
	// MaxLinkNameLen bounds the name latchkey gives a controller link.
	MaxLinkNameLen = 300
)

// The years a time latchkey stores may fall in: every database and JSON
// encoder takes them, and they sort as text.
const (
	MinYear = 1970
	MaxYear = 9999
)

var (
	minTime = time.Date(MinYear, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(MaxYear, 12, 31, 23, 59, 59, 0, time.UTC)
)

// TimeInRange reports whether t, in UTC, falls in the years MinYear to
// MaxYear; the zero time (unknown) is in range.
func TimeInRange(t time.Time) bool {
	return t.IsZero() || (!t.Before(minTime) && !t.After(maxTime))
}

// clampTime returns t moved into the range TimeInRange accepts.
func clampTime(t time.Time) time.Time {
	switch {
	case t.IsZero():
		return t
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

// truncateText shortens s to at most n characters, never splitting one,
// ending it with "…" when it was cut.
func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// TruncateText shortens s to at most n characters as truncateText does,
// for parsers that keep a shortened value rather than refuse it.
func TruncateText(s string, n int) string { return truncateText(s, n) }

// maxZones bounds the zone cache: zone names come from webhooks.
const maxZones = 512

// zoneCache remembers time.LoadLocation's answers, known zones and unknown
// ones alike, for at most maxZones names. It is safe for concurrent use.
type zoneCache struct {
	mu    sync.Mutex
	zones map[string]*time.Location // nil: unknown zone
}

// load returns the location of an IANA zone name, and false (with UTC)
// when the name is not a zone. "" is UTC. "Local", which would be the
// server's own zone, is not a zone a location can have.
func (c *zoneCache) load(name string) (*time.Location, bool) {
	if name == "" || name == "UTC" {
		return time.UTC, true
	}
	c.mu.Lock()
	loc, ok := c.zones[name]
	c.mu.Unlock()
	if !ok {
		var err error
		if loc, err = time.LoadLocation(name); err != nil || name == "Local" {
			loc = nil
		}
		c.mu.Lock()
		if c.zones == nil || len(c.zones) >= maxZones {
			c.zones = map[string]*time.Location{}
		}
		c.zones[name] = loc
		c.mu.Unlock()
	}
	if loc == nil {
		return time.UTC, false
	}
	return loc, true
}
