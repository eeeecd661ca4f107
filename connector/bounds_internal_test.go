package connector

import (
	"reflect"
	"regexp"
	"strconv"
	"testing"
)

// TestColumnsHoldTheBounds: every column that stores a bounded event
// field is at least as wide as the bound the parser enforces.
func TestColumnsHoldTheBounds(t *testing.T) {
	size := regexp.MustCompile(`size:(\d+)`)
	tests := []struct {
		model any
		field string
		bound int
	}{
		{Visit{}, "InstallID", MaxIDLen},
		{Visit{}, "LocationID", MaxIDLen},
		{Visit{}, "SourceID", len("invite:") + MaxIDLen},
		{Visit{}, "EntryID", MaxIDLen},
		{Visit{}, "InviteID", MaxIDLen},
		{Visit{}, "FlowID", MaxIDLen},
		{Visit{}, "FlowName", MaxNameLen},
		{Visit{}, "Name", MaxNameLen},
		{Visit{}, "Email", MaxEmailLen},
		{Visit{}, "Phone", MaxPhoneLen},
		{Visit{}, "TimeZone", MaxTimeZoneLen},
		{Visit{}, "BadTimeZone", MaxTimeZoneLen},
		{VisitLink{}, "Name", MaxLinkNameLen},
		{Delivery{}, "Event", MaxEventNameLen},
		{Delivery{}, "JobID", MaxIDLen},
		{Delivery{}, "DedupeKey", len("sha256:") + 64},
		{Delivery{}, "SourceID", len("invite:") + MaxIDLen},
	}
	for _, tt := range tests {
		typ := reflect.TypeOf(tt.model)
		f, ok := typ.FieldByName(tt.field)
		if !ok {
			t.Fatalf("%s has no field %s", typ.Name(), tt.field)
		}
		m := size.FindStringSubmatch(f.Tag.Get("gorm"))
		if m == nil {
			t.Errorf("%s.%s has no size", typ.Name(), tt.field)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < tt.bound {
			t.Errorf("%s.%s holds %d characters, want at least %d", typ.Name(), tt.field, n, tt.bound)
		}
	}
}
