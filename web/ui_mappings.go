package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
)

// mappingFields are the form fields, in the order validation messages
// name them.
var mappingFields = []string{"location_id", "flow_id", "group_ids", "duration_minutes", "advance_minutes", "grace_minutes", "delivery", "credential", "guest_indicator"}

// mappingForm is the mappings editor: the values as typed, errors by
// field, the controller's groups to pick from, warnings and a preview.
type mappingForm struct {
	ID                                int64
	LocationID, FlowID                string
	GroupIDs                          []int64
	Duration, Advance, Grace          string
	OnlyInvited, RevokeOnSignOut      bool
	UntilEndOfDay, AppAccess          bool
	Delivery, GuestIndicator          string
	Credential                        string
	Errors                            map[string]string
	Error                             string
	Groups                            []groupOption
	GroupsErr                         string
	Warnings                          []string
	PreviewKind, PreviewAt, PreviewTZ string
	Preview                           *previewView
}

type groupOption struct {
	ID    int64
	Name  string
	Doors int
}

type previewView struct {
	Status      connector.Status
	Reason      string
	From, Until string
	Zone        string
}

func formFromMapping(m mappings.Mapping) mappingForm {
	return mappingForm{ID: m.ID, LocationID: m.LocationID, FlowID: m.FlowID, GroupIDs: m.GroupIDs,
		Duration: strconv.Itoa(m.DurationMinutes), Advance: strconv.Itoa(m.AdvanceMinutes), Grace: strconv.Itoa(m.GraceMinutes),
		OnlyInvited: m.OnlyInvited, RevokeOnSignOut: m.RevokeOnSignOut, UntilEndOfDay: m.UntilEndOfDay, AppAccess: m.AppAccess,
		Delivery: string(m.Delivery), Credential: string(m.Credential), GuestIndicator: m.GuestIndicator, Errors: map[string]string{}}
}

// readMappingForm reads the posted form; numbers that do not parse are
// reported by field.
func readMappingForm(c echo.Context) (mappingForm, mappings.Mapping) {
	f := mappingForm{LocationID: strings.TrimSpace(c.FormValue("location_id")), FlowID: strings.TrimSpace(c.FormValue("flow_id")),
		Duration: strings.TrimSpace(c.FormValue("duration_minutes")), Advance: strings.TrimSpace(c.FormValue("advance_minutes")),
		Grace: strings.TrimSpace(c.FormValue("grace_minutes")), OnlyInvited: c.FormValue("only_invited") != "",
		RevokeOnSignOut: c.FormValue("revoke_on_sign_out") != "", UntilEndOfDay: c.FormValue("until_end_of_day") != "",
		AppAccess: c.FormValue("app_access") != "", Delivery: c.FormValue("delivery"), Credential: c.FormValue("credential"), GuestIndicator: strings.TrimSpace(c.FormValue("guest_indicator")),
		PreviewKind: c.FormValue("preview_kind"), PreviewAt: c.FormValue("preview_at"), PreviewTZ: strings.TrimSpace(c.FormValue("preview_tz")),
		Errors: map[string]string{}}
	if fp, err := c.FormParams(); err == nil {
		for _, s := range fp["group_ids"] {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				f.Errors["group_ids"] = "pick groups from the list"
				continue
			}
			f.GroupIDs = append(f.GroupIDs, id)
		}
	}
	num := func(field, s string) int {
		if s == "" {
			return 0
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			f.Errors[field] = "must be a whole number of minutes"
		}
		return n
	}
	m := mappings.Mapping{LocationID: f.LocationID, FlowID: f.FlowID, GroupIDs: f.GroupIDs,
		DurationMinutes: num("duration_minutes", f.Duration), AdvanceMinutes: num("advance_minutes", f.Advance),
		GraceMinutes: num("grace_minutes", f.Grace), OnlyInvited: f.OnlyInvited, RevokeOnSignOut: f.RevokeOnSignOut,
		UntilEndOfDay: f.UntilEndOfDay, Delivery: mappings.Delivery(f.Delivery), Credential: mappings.Credential(f.Credential), AppAccess: f.AppAccess, GuestIndicator: f.GuestIndicator}
	return f, m
}

// fieldError files an Invalid or Conflict error under the field it names,
// or as a form-wide error.
func (f *mappingForm) fieldError(err error) {
	msg := latchkey.Message(err)
	for _, name := range mappingFields {
		if strings.HasPrefix(msg, name) {
			f.Errors[name] = strings.TrimLeft(strings.TrimPrefix(msg, name), ": ")
			return
		}
	}
	if latchkey.KindOf(err) == latchkey.Conflict {
		f.Errors["flow_id"] = msg
		return
	}
	f.Error = msg
}

// check validates m like the API: its own fields, then that its groups
// exist on the controller. Problems land on f.
func (u *UI) check(ctx context.Context, f *mappingForm, m *mappings.Mapping) bool {
	m.Normalize()
	f.Delivery = string(m.Delivery)
	if collectFieldErrors(f, *m); len(f.Errors) > 0 || f.Error != "" {
		return false
	}
	known := map[int64]bool{}
	for _, g := range f.Groups {
		known[g.ID] = true
	}
	if f.GroupsErr != "" {
		f.Error = "The controller is not reachable, so the groups cannot be checked. Try again in a moment."
		return false
	}
	for _, id := range m.GroupIDs {
		if !known[id] {
			f.Errors["group_ids"] = fmt.Sprintf("group %d does not exist on the controller", id)
			return false
		}
	}
	return true
}

// decorate adds the groups to pick from, the warnings and the preview
// defaults.
func (u *UI) decorate(ctx context.Context, f *mappingForm) {
	gs, err := u.cachedGroups(ctx)
	if err != nil {
		f.GroupsErr = "The controller is not reachable; its groups cannot be listed right now."
	}
	for _, g := range gs {
		f.Groups = append(f.Groups, groupOption{ID: g.ID, Name: g.Name, Doors: g.LocksCount})
	}
	sort.Slice(f.Groups, func(i, j int) bool { return f.Groups[i].Name < f.Groups[j].Name })
	f.Warnings = u.warnings(ctx, f.GroupIDs)
	if f.PreviewKind == "" {
		f.PreviewKind = "invite"
	}
	if f.PreviewTZ == "" {
		f.PreviewTZ = u.locationZone(ctx, f.LocationID)
	}
	if f.PreviewAt == "" {
		next := u.now().In(u.localZone(f.PreviewTZ)).Truncate(time.Hour).Add(time.Hour)
		f.PreviewAt = next.Format("2006-01-02T15:04")
	}
}

// locationZone guesses a location's zone from its latest visit.
func (u *UI) locationZone(ctx context.Context, locationID string) string {
	if locationID != "" {
		if vs, _, err := u.svc.Store().List(ctx, connector.VisitFilter{LocationID: locationID, Limit: 1}); err == nil && len(vs) > 0 && vs[0].TimeZone != "" {
			return vs[0].TimeZone
		}
	}
	return u.zone.String()
}

// warnings names mapped groups without doors and offline doors.
func (u *UI) warnings(ctx context.Context, ids []int64) []string {
	if len(ids) == 0 {
		return nil
	}
	gs, err := u.cachedGroups(ctx)
	if err != nil {
		return []string{"The controller is not reachable, so its doors cannot be checked."}
	}
	doors, derr := u.cachedDoors(ctx)
	byID := map[int64]connector.Group{}
	for _, g := range gs {
		byID[g.ID] = g
	}
	var out []string
	for _, id := range ids {
		g, ok := byID[id]
		if !ok {
			out = append(out, fmt.Sprintf("Group %d does not exist on the controller.", id))
			continue
		}
		if g.LocksCount == 0 {
			out = append(out, fmt.Sprintf("Group %q has no doors: visitors would get a pass that opens nothing.", g.Name))
			continue
		}
		for _, d := range doors[id] {
			if !d.Online {
				out = append(out, fmt.Sprintf("Door %q of group %q is offline or locked down.", d.Name, g.Name))
			}
		}
	}
	if derr != nil {
		out = append(out, "Door status is unknown: the controller's doors could not be read.")
	}
	return out
}

// preview computes the window a sample visitor would get.
func (u *UI) preview(f *mappingForm, m mappings.Mapping) {
	loc, err := time.LoadLocation(f.PreviewTZ)
	if err != nil {
		f.Errors["preview_tz"] = "not an IANA zone such as Europe/Berlin"
		return
	}
	at, err := time.ParseInLocation("2006-01-02T15:04", f.PreviewAt, loc)
	if err != nil {
		f.Errors["preview_at"] = "give a date and time"
		return
	}
	arrival := at.UTC()
	var facts connector.Facts
	switch f.PreviewKind {
	case "walk-in":
		facts = connector.Facts{SignedInAt: arrival}
	default:
		f.PreviewKind = "invite"
		facts = connector.Facts{Invited: true, ExpectedArrival: arrival, InviteSeenAt: arrival.Add(-24 * time.Hour)}
	}
	d := connector.Decide(facts, &m, loc, arrival)
	p := &previewView{Status: d.Status, Reason: d.Reason, Zone: loc.String(), From: "—", Until: "—"}
	if !d.ValidFrom.IsZero() {
		p.From = d.ValidFrom.In(loc).Format("Mon 2 Jan 15:04 MST")
		p.Until = d.ValidUntil.In(loc).Format("Mon 2 Jan 15:04 MST")
	}
	f.Preview = p
}

type mappingRow struct {
	mappings.Mapping
	// LocationName and FlowName are the names events carried ("" when
	// no event told them).
	LocationName, FlowName string
	Groups                 []string
	Warnings               []string
}

// locationOption is a location to filter on, by name when known.
type locationOption struct {
	ID, Name string
}

type mappingsData struct {
	Location  string
	Locations []locationOption
	Rows      []mappingRow
	GroupsErr string
	// Envoy lists the mappings of Envoy installs, which are managed in
	// Envoy (its setup steps and the configuration sent with events) and
	// shown here read-only.
	Envoy    []envoyMappings
	EnvoyErr string
}

// envoyMappings is one Envoy install's mappings.
type envoyMappings struct {
	Install      string
	Organization string
	Rows         []mappingRow
}

// maxInstallsShown bounds the installs the mappings page lists.
const maxInstallsShown = 100

func (u *UI) mappingsPage(c echo.Context) error {
	ctx := c.Request().Context()
	all, err := u.maps.List(ctx, "")
	if err != nil {
		return err
	}
	d := mappingsData{Location: c.QueryParam("location")}
	gs, gerr := u.cachedGroups(ctx)
	if gerr != nil {
		d.GroupsErr = "The controller is not reachable; group names and door checks are missing."
	}
	names := groupNames(gs)
	places := u.placeNames(ctx)
	seen := map[string]bool{}
	for _, m := range all {
		if !seen[m.LocationID] {
			seen[m.LocationID] = true
			d.Locations = append(d.Locations, locationOption{ID: m.LocationID, Name: places.Locations[m.LocationID]})
		}
		if d.Location != "" && m.LocationID != d.Location {
			continue
		}
		r := mappingRow{Mapping: m, LocationName: places.Locations[m.LocationID], FlowName: places.Flows[m.LocationID+"/"+m.FlowID]}
		for _, id := range m.GroupIDs {
			n := names[id]
			if n == "" {
				n = "group " + strconv.FormatInt(id, 10)
			}
			r.Groups = append(r.Groups, n)
		}
		if gerr == nil {
			r.Warnings = u.warnings(ctx, m.GroupIDs)
		}
		d.Rows = append(d.Rows, r)
	}
	if ins, err := u.svc.Store().Installs(ctx, maxInstallsShown); err != nil {
		d.EnvoyErr = "The Envoy installs could not be read."
	} else {
		for _, in := range ins {
			if !in.Configured {
				continue
			}
			em := envoyMappings{Install: in.ID, Organization: in.Organization}
			for _, m := range in.Mappings() {
				// The groups are on the install's own controller: named
				// by id, never by a same-numbered group of another.
				r := mappingRow{Mapping: m}
				for _, id := range m.GroupIDs {
					r.Groups = append(r.Groups, "group "+strconv.FormatInt(id, 10))
				}
				em.Rows = append(em.Rows, r)
			}
			d.Envoy = append(d.Envoy, em)
		}
	}
	sort.Slice(d.Locations, func(i, j int) bool { return d.Locations[i].ID < d.Locations[j].ID })
	sort.SliceStable(d.Rows, func(i, j int) bool {
		if d.Rows[i].LocationID != d.Rows[j].LocationID {
			return d.Rows[i].LocationID < d.Rows[j].LocationID
		}
		return d.Rows[i].FlowID < d.Rows[j].FlowID
	})
	return u.render(c, http.StatusOK, "mappings", "Flow mappings", d)
}

func (u *UI) newMappingPage(c echo.Context) error {
	f := formFromMapping(mappings.Mapping{LocationID: c.QueryParam("location"), DurationMinutes: 240, AdvanceMinutes: 30,
		RevokeOnSignOut: true, Delivery: mappings.DeliveryLatchkey})
	u.decorate(c.Request().Context(), &f)
	return u.render(c, http.StatusOK, "mapping", "New mapping", f)
}

func (u *UI) editMappingPage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	m, err := u.maps.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	f := formFromMapping(m)
	u.decorate(c.Request().Context(), &f)
	return u.render(c, http.StatusOK, "mapping", "Mapping "+m.LocationID+" / "+m.FlowID, f)
}

func (u *UI) createMapping(c echo.Context) error { return u.saveMapping(c, 0) }

func (u *UI) updateMapping(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, err := u.maps.Get(c.Request().Context(), id); err != nil {
		return err
	}
	return u.saveMapping(c, id)
}

// saveMapping creates (id 0) or updates a mapping from the form; with
// action=preview it only shows the preview.
func (u *UI) saveMapping(c echo.Context, id int64) error {
	ctx := c.Request().Context()
	f, m := readMappingForm(c)
	f.ID, m.ID = id, id
	u.decorate(ctx, &f)
	title := "New mapping"
	if id > 0 {
		title = "Mapping " + f.LocationID + " / " + f.FlowID
	}
	ok := u.check(ctx, &f, &m)
	if c.FormValue("action") == "preview" {
		if ok {
			u.preview(&f, m)
		}
		return u.render(c, http.StatusOK, "mapping", title, f)
	}
	if !ok {
		return u.render(c, http.StatusUnprocessableEntity, "mapping", title, f)
	}
	var (
		err error
		old mappings.Mapping
	)
	done := "mapping-saved"
	if id == 0 {
		m, err = u.maps.Create(ctx, m)
		done = "mapping-created"
	} else {
		old, m, err = u.maps.Update(ctx, m)
	}
	if k := latchkey.KindOf(err); err != nil && (k == latchkey.Invalid || k == latchkey.Conflict) {
		f.fieldError(err)
		return u.render(c, http.StatusUnprocessableEntity, "mapping", title, f)
	}
	if err != nil {
		return err
	}
	u.log.Info("mapping saved", "mapping_id", m.ID, "location_id", m.LocationID, "flow_id", m.FlowID)
	u.svc.FlowMappingChanged(ctx, m.LocationID, m.FlowID)
	if id != 0 && (old.LocationID != m.LocationID || old.FlowID != m.FlowID) {
		u.svc.FlowMappingChanged(ctx, old.LocationID, old.FlowID)
	}
	return redirect(c, "/admin/mappings", done)
}

func (u *UI) deleteMapping(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	old, err := u.maps.Remove(ctx, id)
	if err != nil {
		return err
	}
	u.svc.FlowMappingChanged(ctx, old.LocationID, old.FlowID)
	return redirect(c, "/admin/mappings", "mapping-deleted")
}

// placeNames are the location and flow names events carried; empty maps
// when they cannot be read (the pages then show the ids).
func (u *UI) placeNames(ctx context.Context) connector.PlaceNames {
	n, err := u.svc.Store().Names(ctx)
	if err != nil {
		u.log.Warn("place names", "err", err)
	}
	return n
}
