package webhooks

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// Delivery is one parsed Envoy webhook delivery.
type Delivery struct {
	// Event is the normalized event. For unknown event names only Kind and
	// the meta fields (install, location, time zone) are filled in.
	Event connector.Event
	// Kind is the raw event name, which may be one latchkey does not know.
	Kind string
	// JobID is Envoy's meta.job.id, "" when absent.
	JobID string
	// DedupeKey identifies the delivery across retries: the job id when
	// Envoy sent one, else a versioned hash of the event name and the
	// event's named fields (see dedupeKey).
	DedupeKey string
	// LegacyKey is the key the release before versioned keys derived for
	// the same delivery ("" with a job id), so a retry of a delivery stored
	// under it is still recognised.
	LegacyKey string
	// Known reports whether Kind is an event latchkey acts on.
	Known bool
	// Ignore, when set, is why a known event gets no access (an Envoy
	// Protect employee screening entry).
	Ignore string
}

// envelope is the top level of a delivery. Plugin workers get
// {meta:{event,…}, payload}; the Webhooks app is documented as
// {event, payload}, so both are read.
type envelope struct {
	Event   string          `json:"event"`
	Meta    *meta           `json:"meta"`
	Payload json.RawMessage `json:"payload"`
}

type meta struct {
	Event     string          `json:"event"`
	InstallID string          `json:"install_id"`
	Config    json.RawMessage `json:"config"`
	Job       *struct {
		ID string `json:"id"`
	} `json:"job"`
	Location *struct {
		ID         string `json:"id"`
		Attributes *struct {
			Timezone string      `json:"timezone"`
			TimeZone string      `json:"time-zone"`
			Name     looseString `json:"name"`
			Address  looseString `json:"address"`
			Locale   looseString `json:"locale"`
		} `json:"attributes"`
	} `json:"location"`
}

// resource is a JSON:API resource: an entry or an invite.
type resource struct {
	ID            string                     `json:"id"`
	Type          string                     `json:"type"`
	Attributes    *attributes                `json:"attributes"`
	Relationships map[string]json.RawMessage `json:"relationships"`
}

// attributes holds the dash-cased attributes latchkey reads from entries
// and invites; every other attribute is ignored.
type attributes struct {
	FullName        string          `json:"full-name"`
	Email           string          `json:"email"`
	Phone           string          `json:"phone-number"`
	FlowName        string          `json:"flow-name"`
	FlowID          json.RawMessage `json:"flow-id"`
	SignedInAt      string          `json:"signed-in-at"`
	SignedOutAt     string          `json:"signed-out-at"`
	ExpectedArrival string          `json:"expected-arrival-time"`
	ScreeningFlow   bool            `json:"employee-screening-flow"`
	ApprovalStatus  *struct {
		Status string `json:"status"`
	} `json:"approval-status"`
	// The host: an entry's, an invite's inviter.
	Host         looseString `json:"host"`
	HostEmail    looseString `json:"host-email"`
	InviterName  looseString `json:"inviter-name"`
	InviterEmail looseString `json:"inviter-email"`
}

// looseString is a display-only attribute: a JSON string, or anything
// else (a number, an object, null) read as "", so a field latchkey only
// shows never makes a delivery unreadable.
type looseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *looseString) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = looseString(v)
	} else {
		*s = ""
	}
	return nil
}

// display cleans a display-only value: control characters become spaces,
// surrounding space goes, and a value longer than max is shortened (with
// "…") rather than refused.
func display(v looseString, max int) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, string(v))
	return connector.TruncateText(strings.TrimSpace(s), max)
}

// locale keeps a location's locale when it reads as a language tag
// ("de", "fr-CA", "en_US"), "" otherwise.
func locale(v looseString) string {
	s := strings.ReplaceAll(strings.TrimSpace(string(v)), "_", "-")
	if s == "" || len(s) > connector.MaxLocaleLen {
		return ""
	}
	for _, r := range s {
		if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return s
}

// Payload types per event family.
const (
	typeEntries = "entries"
	typeInvites = "invites"
)

// Parse decodes an Envoy webhook body. The event name comes from
// meta.event, falling back to a top-level event. Unknown event names parse
// without error and with Known false; their payload is not inspected beyond
// its id.
//
// Parse returns an Invalid *latchkey.Error, whose message says what is wrong
// and is safe to show the sender, when the body is not JSON, a field has
// the wrong type (nulls are accepted anywhere), the event name is missing,
// or a known event lacks its payload or payload id or has an unreadable
// timestamp. It is safe for concurrent use.
func Parse(body []byte) (Delivery, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Delivery{}, jsonError("", err)
	}
	var m meta
	if env.Meta != nil {
		m = *env.Meta
	}
	name := m.Event
	if name == "" {
		name = env.Event
	}
	if name == "" {
		return Delivery{}, latchkey.Errorf(latchkey.Invalid, "event name is missing: expected meta.event or event")
	}
	nameField := "meta.event"
	if m.Event == "" {
		nameField = "event"
	}
	if err := bounded(nameField, name, connector.MaxEventNameLen); err != nil {
		return Delivery{}, err
	}

	kind := connector.EventKind(name)
	d := Delivery{Kind: name, Known: kind.Known()}
	if m.Job != nil {
		d.JobID = m.Job.ID
	}
	if err := bounded("meta.job.id", d.JobID, connector.MaxIDLen); err != nil {
		return Delivery{}, err
	}
	if err := bounded("meta.install_id", m.InstallID, connector.MaxIDLen); err != nil {
		return Delivery{}, err
	}
	d.Event = connector.Event{Kind: kind, InstallID: m.InstallID}
	if m.Location != nil {
		d.Event.LocationID = m.Location.ID
		if err := bounded("meta.location.id", d.Event.LocationID, connector.MaxIDLen); err != nil {
			return Delivery{}, err
		}
		if a := m.Location.Attributes; a != nil {
			d.Event.TimeZone = a.Timezone
			field := "meta.location.attributes.timezone"
			if d.Event.TimeZone == "" {
				d.Event.TimeZone, field = a.TimeZone, "meta.location.attributes.time-zone"
			}
			if err := bounded(field, d.Event.TimeZone, connector.MaxTimeZoneLen); err != nil {
				return Delivery{}, err
			}
			d.Event.LocationName = display(a.Name, connector.MaxNameLen)
			d.Event.LocationAddress = display(a.Address, connector.MaxAddressLen)
			d.Event.Locale = locale(a.Locale)
		}
	}

	hasPayload := len(env.Payload) > 0 && !bytes.Equal(env.Payload, []byte("null"))
	if !d.Known {
		var r struct {
			ID string `json:"id"`
		}
		if hasPayload {
			_ = json.Unmarshal(env.Payload, &r) // best effort: only for the dedupe key
		}
		d.DedupeKey = dedupeKey(d.JobID, name, []field{{"install", d.Event.InstallID}, {"location", d.Event.LocationID}, {"id", r.ID}})
		d.LegacyKey = legacyKey(d.JobID, name, []byte(d.Event.InstallID+"\x00"+d.Event.LocationID+"\x00"+r.ID))
		return d, nil
	}

	if !hasPayload {
		return Delivery{}, latchkey.Errorf(latchkey.Invalid, "payload is missing for event %s", name)
	}
	var r resource
	if err := json.Unmarshal(env.Payload, &r); err != nil {
		return Delivery{}, jsonError("payload", err)
	}
	if err := fillEvent(&d.Event, r); err != nil {
		return Delivery{}, err
	}
	if r.Attributes != nil && r.Attributes.ScreeningFlow {
		d.Ignore = "employee screening entries (Envoy Protect) get no door access"
	}
	if len(m.Config) > 0 && bytes.Contains(m.Config, []byte(`"visitor_access"`)) {
		if c, err := parseConfig(m.Config); err == nil {
			d.Event.Config = &c
		}
	}
	d.DedupeKey = dedupeKey(d.JobID, name, eventFields(d.Event))
	legacy, err := legacyEventKey(d.JobID, name, d.Event)
	if err != nil {
		return Delivery{}, err
	}
	d.LegacyKey = legacy
	return d, nil
}

// fillEvent copies what latchkey needs from an entry or invite resource
// into ev, whose Kind is known.
func fillEvent(ev *connector.Event, r resource) error {
	want := typeEntries
	if ev.Kind.IsInvite() {
		want = typeInvites
	}
	if r.Type != "" && r.Type != want {
		return latchkey.Errorf(latchkey.Invalid, "payload.type is %q, want %q for event %s", r.Type, want, ev.Kind)
	}
	if r.ID == "" {
		return latchkey.Errorf(latchkey.Invalid, "payload.id is missing for event %s", ev.Kind)
	}
	if err := bounded("payload.id", r.ID, connector.MaxIDLen); err != nil {
		return err
	}
	if ev.Kind.IsInvite() {
		ev.InviteID = r.ID
		// relationships.entry is null until the invited visitor arrives.
		entryID, err := relationshipID(r, "entry")
		if err != nil {
			return err
		}
		ev.EntryID = entryID
	} else {
		ev.EntryID = r.ID
		inviteID, err := relationshipID(r, "invite")
		if err != nil {
			return err
		}
		ev.InviteID = inviteID
	}

	locationID, err := relationshipID(r, "location")
	if err != nil {
		return err
	}
	if locationID != "" {
		ev.LocationID = locationID
	}

	var a attributes
	if r.Attributes != nil {
		a = *r.Attributes
	}
	ev.FlowID, err = relationshipID(r, "flow")
	if err != nil {
		return err
	}
	if ev.FlowID == "" {
		if ev.FlowID, err = flowID(a.FlowID); err != nil {
			return err
		}
		if err := bounded("payload.attributes.flow-id", ev.FlowID, connector.MaxIDLen); err != nil {
			return err
		}
	}
	ev.FlowName = a.FlowName
	ev.FullName = a.FullName
	ev.Email = a.Email
	ev.Phone = a.Phone
	if a.ApprovalStatus != nil {
		ev.ApprovalStatus = a.ApprovalStatus.Status
	}
	host, hostEmail := a.Host, a.HostEmail
	if ev.Kind.IsInvite() || host == "" {
		host, hostEmail = cmp.Or(a.InviterName, host), cmp.Or(a.InviterEmail, hostEmail)
	}
	ev.HostName = display(host, connector.MaxNameLen)
	if e := display(hostEmail, connector.MaxEmailLen); strings.Contains(e, "@") && !strings.ContainsAny(e, " <>") {
		ev.HostEmail = e
	}
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{
		{"payload.attributes.full-name", ev.FullName, connector.MaxNameLen},
		{"payload.attributes.flow-name", ev.FlowName, connector.MaxNameLen},
		{"payload.attributes.email", ev.Email, connector.MaxEmailLen},
		{"payload.attributes.phone-number", ev.Phone, connector.MaxPhoneLen},
		{"payload.attributes.approval-status.status", ev.ApprovalStatus, connector.MaxApprovalLen},
	} {
		if err := bounded(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	times := []struct {
		name string
		raw  string
		dst  *time.Time
	}{
		{"signed-in-at", a.SignedInAt, &ev.SignedInAt},
		{"signed-out-at", a.SignedOutAt, &ev.SignedOutAt},
		{"expected-arrival-time", a.ExpectedArrival, &ev.ExpectedArrival},
	}
	for _, t := range times {
		if *t.dst, err = parseTime(t.raw); err != nil {
			return &latchkey.Error{Kind: latchkey.Invalid,
				Msg: fmt.Sprintf("payload.attributes.%s: %q is not a time", t.name, clip(t.raw)), Err: err}
		}
		if !connector.TimeInRange(*t.dst) {
			return latchkey.Errorf(latchkey.Invalid, "payload.attributes.%s: %q is outside the years %d to %d (UTC)",
				t.name, clip(t.raw), connector.MinYear, connector.MaxYear)
		}
	}
	return nil
}

// relationshipID returns relationships.<name>.data.id of r, "" when the
// relationship or its data is absent or null.
func relationshipID(r resource, name string) (string, error) {
	raw, ok := r.Relationships[name]
	if !ok {
		return "", nil
	}
	var rel *struct {
		Data *struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &rel); err != nil {
		return "", jsonError("payload.relationships."+name, err)
	}
	if rel == nil || rel.Data == nil {
		return "", nil
	}
	if err := bounded("payload.relationships."+name+".data.id", rel.Data.ID, connector.MaxIDLen); err != nil {
		return "", err
	}
	return rel.Data.ID, nil
}

// bounded checks a string field latchkey stores: at most max characters
// and no control characters (a NUL, which PostgreSQL refuses, or a line
// break in a name that ends up in an email header). The error names the
// field and never echoes the value.
func bounded(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return latchkey.Errorf(latchkey.Invalid, "%s must be at most %d characters, not %d", field, max, n)
	}
	for i, r := range []rune(v) {
		if unicode.IsControl(r) {
			return latchkey.Errorf(latchkey.Invalid, "%s must not contain control characters (U+%04X at character %d)", field, r, i+1)
		}
	}
	return nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// flowID reads attributes.flow-id, a JSON number in real invites and a
// string in the SDK's types.
func flowID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", jsonError("payload.attributes.flow-id", err)
		}
		return s, nil
	}
	if isInteger(raw) {
		return string(raw), nil
	}
	return "", latchkey.Errorf(latchkey.Invalid, "payload.attributes.flow-id must be a string or an integer, not %s", raw)
}

func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// timeLayouts are the timestamp forms Envoy sends: RFC 3339 on invites,
// SQL-style UTC on entries ("2022-09-22 10:07:07 UTC"), and the SDK's
// zone-less SQL form, which is UTC.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02 15:04:05 UTC",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
}

// parseTime parses an Envoy timestamp into UTC, truncated to whole seconds
// (connector.Precision, the controller's); "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var first error
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t.UTC().Truncate(connector.Precision), nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q: %w", s, first)
}

// field is one named value of a dedupe key.
type field struct{ name, value string }

// dedupeKeyVersion prefixes every hashed dedupe key. A change to what goes
// into the hash takes a new version (and keeps recognising the old one).
const dedupeKeyVersion = "v1"

// eventFields are the fields latchkey reads from an event, by name, in a
// fixed order. A renamed Go field cannot change a key: only this list can.
// The display-only fields (host, location name, address, locale) are left
// out on purpose: they change no access, and keys stored before latchkey
// read them must still match a retry that carries them.
func eventFields(ev connector.Event) []field {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return []field{
		{"kind", string(ev.Kind)}, {"install", ev.InstallID}, {"location", ev.LocationID}, {"time_zone", ev.TimeZone},
		{"flow", ev.FlowID}, {"flow_name", ev.FlowName}, {"entry", ev.EntryID}, {"invite", ev.InviteID},
		{"full_name", ev.FullName}, {"email", ev.Email}, {"phone", ev.Phone},
		{"expected_arrival", stamp(ev.ExpectedArrival)}, {"signed_in_at", stamp(ev.SignedInAt)},
		{"signed_out_at", stamp(ev.SignedOutAt)}, {"approval_status", ev.ApprovalStatus},
	}
}

// dedupeKey returns jobID when set, else "v1:sha256:" and a hash of the
// event name and the named fields: the fields latchkey reads, so a retried
// delivery has the same key however its JSON was written, while two
// updates of one invite that differ in anything latchkey uses (an email, a
// flow, a time) stay two events.
func dedupeKey(jobID, event string, fields []field) string {
	if jobID != "" {
		return jobID
	}
	h := sha256.New()
	fmt.Fprintf(h, "event=%q\n", event)
	for _, f := range fields {
		fmt.Fprintf(h, "%s=%q\n", f.name, f.value)
	}
	return dedupeKeyVersion + ":sha256:" + hex.EncodeToString(h.Sum(nil))
}

// legacyKey is the unversioned key of the release before: a hash of the
// event name and raw bytes.
func legacyKey(jobID, event string, raw []byte) string {
	if jobID != "" {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(event))
	h.Write([]byte{0})
	h.Write(raw)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// eventV0 is connector.Event as the unversioned keys encoded it, frozen
// here so that a change to connector.Event leaves those keys as they were.
type eventV0 struct {
	Kind            connector.EventKind
	InstallID       string
	LocationID      string
	TimeZone        string
	FlowID          string
	FlowName        string
	EntryID         string
	InviteID        string
	FullName        string
	Email           string
	Phone           string
	ExpectedArrival time.Time
	SignedInAt      time.Time
	SignedOutAt     time.Time
	ApprovalStatus  string
}

// legacyEventKey is legacyKey over the JSON of ev's fields as eventV0.
func legacyEventKey(jobID, event string, ev connector.Event) (string, error) {
	if jobID != "" {
		return "", nil
	}
	raw, err := json.Marshal(eventV0{ev.Kind, ev.InstallID, ev.LocationID, ev.TimeZone, ev.FlowID, ev.FlowName, ev.EntryID,
		ev.InviteID, ev.FullName, ev.Email, ev.Phone, ev.ExpectedArrival, ev.SignedInAt, ev.SignedOutAt, ev.ApprovalStatus})
	if err != nil {
		return "", fmt.Errorf("encode event for its legacy dedupe key: %w", err)
	}
	return legacyKey(jobID, event, raw), nil
}

// jsonError turns a decoding error into an Invalid *latchkey.Error naming
// the offending field; prefix is the path of the decoded value in the body.
func jsonError(prefix string, err error) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		where := "body"
		if prefix != "" {
			where = prefix
		}
		return &latchkey.Error{Kind: latchkey.Invalid,
			Msg: fmt.Sprintf("%s is not valid JSON: %s (at byte %d)", where, syntax, syntax.Offset), Err: err}
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		switch {
		case prefix != "" && field != "":
			field = prefix + "." + field
		case prefix != "":
			field = prefix
		case field == "":
			field = "body"
		}
		return &latchkey.Error{Kind: latchkey.Invalid,
			Msg: fmt.Sprintf("%s must be %s, not %s", field, jsonKind(typ.Type), typ.Value), Err: err}
	}
	return &latchkey.Error{Kind: latchkey.Invalid, Msg: "body is not a valid Envoy delivery", Err: err}
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a value"
}
