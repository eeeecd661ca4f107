package lockctl

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what a request may store or ask for (docs/security.md, "lockctl
// bounds and limits"). Lengths count characters, as PostgreSQL's varchar
// does; each stays within its column's size.
const (
	maxName        = 200  // place, lock and group names
	maxLinkName    = 500  // group link names
	maxDescription = 1000 // place, lock and group descriptions
	maxAddress     = 500  // place addresses
	maxEmail       = 320  // link and login emails
	maxDevice      = 100  // login name, device_brand, device_model, os_name
	maxFilterText  = 64   // event set filters on types and uuid
	maxQuery       = 200  // query, type and *_type parameters of lists
	maxIDs         = 250  // ids in one ids= list, as limit's maximum
	maxUserAgent   = 256  // User-Agent kept on an event, in bytes

	maxPersonName           = 200   // user and guest names
	maxNotes                = 1000  // user notes
	maxImage                = 1000  // user image URL
	maxMetadataKeys         = 50    // keys of a user's metadata (Kisi's rule)
	maxMetadataKey          = 50    // characters of a metadata key
	maxMetadataValue        = 500   // characters of a metadata value
	maxUsers                = 10000 // users in the controller
	maxGuests               = 10000 // guests in the controller
	maxAssignmentsPerPerson = 100   // role assignments of one user or guest
	maxAccessKeysPerGuest   = 10    // access keys of one guest; the oldest goes first
	maxUserLogins           = 40    // device logins of one user; the least recently used goes first (Kisi's rule)
)

// The validity window of a link must lie in [minTime, maxTime): years 1970
// to 9999 in UTC, which every store and RFC 3339 can hold.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// textProblem says what is wrong with s as stored text of at most max
// characters, or "" when nothing is.
func textProblem(s string, max int) string {
	switch {
	case strings.ContainsRune(s, 0):
		return "must not contain NUL bytes"
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("is too long (maximum is %d characters)", max)
	}
	return ""
}

// checkText adds an error on field when s is not storable text of at most
// max characters. It reports whether s is fine.
func checkText(fe fieldErrors, field, s string, max int) bool {
	if p := textProblem(s, max); p != "" {
		fe.add(field, p)
		return false
	}
	return true
}

// inTimeRange reports whether t lies in years 1970 to 9999 (UTC).
func inTimeRange(t time.Time) bool {
	return !t.Before(minTime) && t.Before(maxTime)
}

// boundedUserAgent cuts a User-Agent to maxUserAgent bytes of valid UTF-8
// without NUL bytes, so any store can keep it.
func boundedUserAgent(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= maxUserAgent {
		return s
	}
	s = s[:maxUserAgent]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
