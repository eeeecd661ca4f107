package lockctl

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var isoDuration = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration reads an ISO 8601 duration such as P1D, PT2H30M or
// P1Y2M3DT4H5M6.5S. Years count 365 days and months 30.
func parseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, errors.New("is not an ISO 8601 duration")
	}
	units := []time.Duration{365 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour,
		time.Hour, time.Minute, time.Second}
	var d time.Duration
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, errors.New("is not an ISO 8601 duration")
		}
		d += time.Duration(v * float64(u))
	}
	return d, nil
}

// parseInterval reads an ISO 8601 interval ("start/end", "start/duration"
// or "duration/end", times in RFC 3339). Empty means the 90 days up to now.
// The interval must not be empty or longer than 90 days.
func parseInterval(s string, now time.Time) (since, until time.Time, err error) {
	if s == "" {
		return now.Add(-maxEventInterval), now, nil
	}
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return since, until, errors.New("must be start/end, start/duration or duration/end")
	}
	ta, errA := time.Parse(time.RFC3339, a)
	tb, errB := time.Parse(time.RFC3339, b)
	switch {
	case errA == nil && errB == nil:
		since, until = ta, tb
	case errA == nil:
		d, err := parseISODuration(b)
		if err != nil {
			return since, until, err
		}
		since, until = ta, ta.Add(d)
	case errB == nil:
		d, err := parseISODuration(a)
		if err != nil {
			return since, until, err
		}
		since, until = tb.Add(-d), tb
	default:
		return since, until, errors.New("must be start/end, start/duration or duration/end")
	}
	if !until.After(since) {
		return since, until, errors.New("must end after it starts")
	}
	if !inTimeRange(since) || !inTimeRange(until) {
		return since, until, errors.New("must lie in the years 1970 to 9999 (UTC)")
	}
	if until.Sub(since) > maxEventInterval {
		return since, until, errors.New("must not be longer than 90 days")
	}
	return since, until, nil
}
