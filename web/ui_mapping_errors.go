package web

import (
	"strings"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mappings"
)

// mappingLabels name the form's fields as the page labels them, in the
// page's order, for the summary of errors above the form.
var mappingLabels = []struct{ Field, Label string }{
	{"location_id", "Envoy location id"},
	{"flow_id", "Envoy flow id"},
	{"group_ids", "Groups"},
	{"duration_minutes", "Duration"},
	{"advance_minutes", "Advance access"},
	{"grace_minutes", "Grace after sign-out"},
	{"delivery", "Delivery"},
	{"guest_indicator", "Guest indicator"},
	{"preview_at", "Preview time"},
	{"preview_tz", "Preview time zone"},
}

// formError is one entry of the summary: the field's id, its label and
// what is wrong.
type formError struct{ Field, Label, Message string }

// summarize lists errs in the page's order.
func summarize(errs map[string]string) []formError {
	var out []formError
	for _, l := range mappingLabels {
		if msg, ok := errs[l.Field]; ok {
			out = append(out, formError{Field: l.Field, Label: l.Label, Message: msg})
		}
	}
	return out
}

// collectFieldErrors files every problem of m under its field, not only
// the first: the domain's Validate names one field at a time, so each
// field it names is set to a value that passes and m is checked again.
// Fields that already have an error (a number that did not parse) keep
// it. A message that names no field becomes the form's error.
func collectFieldErrors(f *mappingForm, m mappings.Mapping) {
	for range len(mappingFields) + 1 {
		err := m.Validate()
		if err == nil {
			return
		}
		msg := latchkey.Message(err)
		field := ""
		for _, name := range mappingFields {
			if strings.HasPrefix(msg, name) {
				field = name
				break
			}
		}
		if field == "" || !neutralize(&m, field) {
			f.Error = msg
			return
		}
		if _, ok := f.Errors[field]; !ok {
			f.Errors[field] = strings.TrimLeft(strings.TrimPrefix(msg, field), ": ")
		}
	}
}

// neutralize sets field of m to a value Validate accepts, so the next
// check looks past it. It reports false for a field it does not know.
func neutralize(m *mappings.Mapping, field string) bool {
	switch field {
	case "location_id":
		m.LocationID = "checked"
	case "flow_id":
		m.FlowID = "checked"
	case "group_ids":
		m.GroupIDs = []int64{1}
	case "duration_minutes":
		m.DurationMinutes = 1
	case "advance_minutes":
		m.AdvanceMinutes = 0
	case "grace_minutes":
		m.GraceMinutes = 0
	case "delivery":
		m.Delivery = mappings.DeliveryLatchkey
	case "guest_indicator":
		m.GuestIndicator = ""
	default:
		return false
	}
	return true
}
