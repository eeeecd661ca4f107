package web

import (
	"context"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/qr"
)

// visitStatuses are the statuses the visitors list can filter on.
var visitStatuses = []connector.Status{connector.StatusActive, connector.StatusScheduled, connector.StatusHeld,
	connector.StatusRevoked, connector.StatusExpired, connector.StatusIgnored, connector.StatusFailed}

// statusEmailFailed is the visitors list's filter for visits whose last
// guest email failed; it is not a visit status.
const statusEmailFailed = "email_failed"

// visitQuery is the visitors list's search and filters.
type visitQuery struct {
	Q string
	// Status is a visit status, or statusEmailFailed.
	Status connector.Status
	// Range is "today" (default), "week" or "all".
	Range string
}

func (q visitQuery) Encode() string {
	v := url.Values{}
	if q.Q != "" {
		v.Set("q", q.Q)
	}
	if q.Status != "" {
		v.Set("status", string(q.Status))
	}
	if q.Range != "today" {
		v.Set("range", q.Range)
	}
	return v.Encode()
}

func parseVisitQuery(c echo.Context) (visitQuery, error) {
	q := visitQuery{Q: strings.TrimSpace(c.QueryParam("q")), Status: connector.Status(c.QueryParam("status")), Range: c.QueryParam("range")}
	if len(q.Q) > 100 {
		q.Q = q.Q[:100]
	}
	switch q.Range {
	case "":
		q.Range = "today"
	case "today", "week", "all":
	default:
		return q, latchkey.Errorf(latchkey.Invalid, "range must be today, week or all")
	}
	if q.Status != "" && q.Status != statusEmailFailed {
		ok := false
		for _, s := range visitStatuses {
			ok = ok || s == q.Status
		}
		if !ok {
			return q, latchkey.Errorf(latchkey.Invalid, "unknown status %q", q.Status)
		}
	}
	return q, nil
}

// visitRow is one visitor in the list.
type visitRow struct {
	ID                      int64
	Name, Email, Flow       string
	Status                  connector.Status
	Reason                  string
	From, Until, Zone       string
	Doors                   []string
	LastUnlock              string
	Synced                  bool
	ValidFromT, ValidUntilT *time.Time
	// EmailFailed is the failure of the guest's last email, "" when it
	// did not fail (or access is over).
	EmailFailed string
}

type visitsData struct {
	Query    visitQuery
	Statuses []connector.Status
	Rows     []visitRow
	Total    int64
	Since    string
	Sim      simForm
	DoorsErr string
}

func (u *UI) visitsPage(c echo.Context) error {
	q, err := parseVisitQuery(c)
	if err != nil {
		return err
	}
	d, err := u.visitsData(c.Request().Context(), q)
	if err != nil {
		return err
	}
	d.Sim = u.defaultSimForm(c.Request().Context())
	return u.render(c, http.StatusOK, "visits", "Visitors today", d)
}

// visitRows is the live-refresh fragment of the visitors list.
func (u *UI) visitRows(c echo.Context) error {
	q, err := parseVisitQuery(c)
	if err != nil {
		return err
	}
	d, err := u.visitsData(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return u.renderFragment(c, "visits", "visit_rows", d)
}

func (u *UI) visitsData(ctx context.Context, q visitQuery) (visitsData, error) {
	d := visitsData{Query: q, Statuses: visitStatuses}
	f := connector.VisitFilter{Status: q.Status, Query: q.Q, Limit: 200}
	if q.Status == statusEmailFailed {
		f.Status, f.EmailFailed = "", true
	}
	now := u.now().In(u.zone)
	switch q.Range {
	case "today":
		f.Since = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, u.zone)
		d.Since = "since midnight (" + u.zone.String() + ")"
	case "week":
		f.Since = now.AddDate(0, 0, -7)
		d.Since = "in the last 7 days"
	}
	vs, total, err := u.svc.Store().List(ctx, f)
	if err != nil {
		return d, err
	}
	d.Total = total
	doorNames := u.doorNamer(ctx, &d.DoorsErr)
	ids := visitIDs(vs)
	links, err := u.svc.Store().LinksOf(ctx, ids)
	if err != nil {
		return d, err
	}
	unlocks, err := u.svc.Store().LastUnlocks(ctx, ids)
	if err != nil {
		return d, err
	}
	failures, err := u.svc.Store().EmailFailures(ctx, ids)
	if err != nil {
		return d, err
	}
	for _, v := range vs {
		r := u.visitRow(v, links[v.ID], unlocks[v.ID], doorNames)
		r.EmailFailed = failures[v.ID]
		d.Rows = append(d.Rows, r)
	}
	return d, nil
}

// doorNamer returns a function naming the doors of a group: the doors'
// names when the controller tells them, else the group's name.
func (u *UI) doorNamer(ctx context.Context, errMsg *string) func(groupID int64) []string {
	groups, gerr := u.cachedGroups(ctx)
	doors, derr := u.cachedDoors(ctx)
	if gerr != nil || derr != nil {
		*errMsg = "The controller is not reachable; door names may be missing."
	}
	names := groupNames(groups)
	return func(gid int64) []string {
		if ds, ok := doors[gid]; ok && len(ds) > 0 {
			out := make([]string, len(ds))
			for i, d := range ds {
				out[i] = d.Name
			}
			return out
		}
		if n, ok := names[gid]; ok {
			return []string{n}
		}
		return []string{"group " + strconv.FormatInt(gid, 10)}
	}
}

// visitRow is one visitor's row; lastUnlock is zero when the pass never
// opened a door.
func (u *UI) visitRow(v connector.Visit, links []connector.VisitLink, lastUnlock time.Time, doorNames func(int64) []string) visitRow {
	loc := u.localZone(v.TimeZone)
	r := visitRow{ID: v.ID, Name: v.Name, Email: v.Email, Flow: v.FlowName, Status: v.Status, Reason: v.Reason,
		Zone: loc.String(), Synced: v.SyncedVersion >= v.Version, ValidFromT: v.ValidFrom, ValidUntilT: v.ValidUntil,
		From: "—", Until: "—", LastUnlock: "—"}
	if r.Flow == "" {
		r.Flow = v.FlowID
	}
	if v.ValidFrom != nil && !v.ValidFrom.IsZero() {
		r.From = v.ValidFrom.In(loc).Format("Mon 15:04")
	}
	if v.ValidUntil != nil && !v.ValidUntil.IsZero() {
		r.Until = v.ValidUntil.In(loc).Format("Mon 15:04 MST")
	}
	seen := map[string]bool{}
	for _, l := range links {
		if l.Removed || l.LinkID == 0 {
			continue
		}
		for _, n := range doorNames(l.GroupID) {
			if !seen[n] {
				seen[n] = true
				r.Doors = append(r.Doors, n)
			}
		}
	}
	if !lastUnlock.IsZero() {
		r.LastUnlock = lastUnlock.In(loc).Format("15:04 MST")
	}
	return r
}

// lastUnlock is when a timeline last records an unlock (zero when never).
func lastUnlock(tl []connector.TimelineEntry) time.Time {
	for i := len(tl) - 1; i >= 0; i-- {
		if tl[i].Kind == connector.KindUnlock {
			return tl[i].At
		}
	}
	return time.Time{}
}

// visitDetail is the visit page's data.
type visitDetail struct {
	Row       visitRow
	Visit     connector.Visit
	Zone      *time.Location
	Links     []linkView
	Timeline  []timelineView
	PassURL   string
	CanRevoke bool
	CanExtend bool
	CanResend bool
	// CanCorrect: the guest's address can be corrected (and the email
	// sent to it).
	CanCorrect bool
	Error      string
}

type linkView struct {
	Group       string
	LinkID      int64
	From, Until string
	Removed     bool
}

type timelineView struct {
	At, Kind, Message string
	ISO               string
}

func (u *UI) detail(ctx context.Context, id int64) (visitDetail, error) {
	d, err := u.svc.Detail(ctx, id)
	if err != nil {
		return visitDetail{}, err
	}
	var derr string
	names := u.doorNamer(ctx, &derr)
	row := u.visitRow(d.Visit, d.Links, lastUnlock(d.Timeline), names)
	loc := u.localZone(d.Visit.TimeZone)
	groups, _ := u.cachedGroups(ctx)
	gnames := groupNames(groups)
	out := visitDetail{Row: row, Visit: d.Visit, Zone: loc, PassURL: u.svc.PassURL(d.Visit)}
	if fs, err := u.svc.Store().EmailFailures(ctx, []int64{id}); err == nil {
		out.Row.EmailFailed = fs[id]
	}
	for _, l := range d.Links {
		if l.LinkID == 0 {
			continue
		}
		g := gnames[l.GroupID]
		if g == "" {
			g = "group " + strconv.FormatInt(l.GroupID, 10)
		}
		out.Links = append(out.Links, linkView{Group: g, LinkID: l.LinkID, Removed: l.Removed,
			From: l.ValidFrom.In(loc).Format("Mon 2 Jan 15:04"), Until: l.ValidUntil.In(loc).Format("Mon 2 Jan 15:04 MST")})
	}
	// The store returns the timeline oldest first; the page shows the
	// newest first.
	for i := len(d.Timeline) - 1; i >= 0; i-- {
		e := d.Timeline[i]
		out.Timeline = append(out.Timeline, timelineView{At: e.At.In(loc).Format("Mon 2 Jan 15:04:05 MST"), ISO: e.At.UTC().Format(time.RFC3339),
			Kind: e.Kind, Message: nameGroups(e.Message, gnames)})
	}
	st := d.Visit.Status
	out.CanRevoke = st != connector.StatusRevoked && st != connector.StatusIgnored
	out.CanExtend = st != connector.StatusRevoked && st != connector.StatusIgnored && st != connector.StatusHeld
	out.CanResend = st.WantsLinks() && d.Visit.Email != ""
	out.CanCorrect = st.WantsLinks()
	return out, nil
}

// groupRefRE finds the controller groups a timeline message names by id.
var groupRefRE = regexp.MustCompile(`\bgroup (\d{1,18})\b`)

// nameGroups writes the groups msg names by id with their names ("group
// Visitors (1)") where the controller told them.
func nameGroups(msg string, names map[int64]string) string {
	return groupRefRE.ReplaceAllStringFunc(msg, func(m string) string {
		id, err := strconv.ParseInt(m[len("group "):], 10, 64)
		if n := names[id]; err == nil && n != "" {
			return "group " + n + " (" + m[len("group "):] + ")"
		}
		return m
	})
}

func (u *UI) visitPage(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return u.renderVisit(c, id, http.StatusOK, "")
}

func (u *UI) renderVisit(c echo.Context, id int64, status int, msg string) error {
	d, err := u.detail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	d.Error = msg
	title := d.Visit.Name
	if title == "" {
		title = "Visit " + strconv.FormatInt(id, 10)
	}
	return u.render(c, status, "visit", title, d)
}

// visitLive is the live-refresh fragment of the visit page: status,
// window, links and timeline.
func (u *UI) visitLive(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	d, err := u.detail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return u.renderFragment(c, "visit", "visit_live", d)
}

type qrData struct {
	Visit visitRow
	QR    template.URL
	ID    int64
}

// visitQR shows the guest's pass as a QR code to scan at the desk.
func (u *UI) visitQR(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v, err := u.svc.Store().Visit(ctx, id)
	if err != nil {
		return err
	}
	if !v.Status.WantsLinks() {
		return latchkey.Errorf(latchkey.Conflict, "this visit is %s: its pass opens no doors", v.Status)
	}
	png, err := qr.PNG(u.svc.PassURL(v), 512)
	if err != nil {
		return err
	}
	links, err := u.svc.Store().Links(ctx, v.ID)
	if err != nil {
		return err
	}
	unlocks, err := u.svc.Store().LastUnlocks(ctx, []int64{v.ID})
	if err != nil {
		return err
	}
	var derr string
	row := u.visitRow(v, links, unlocks[v.ID], u.doorNamer(ctx, &derr))
	return u.render(c, http.StatusOK, "qr", "Pass for "+v.Name, qrData{Visit: row, ID: id,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))})
}

// actionError shows a refused action (already revoked, nothing to send…)
// on the visit page; other errors go to the error page.
func (u *UI) actionError(c echo.Context, id int64, err error) error {
	switch k := latchkey.KindOf(err); k {
	case latchkey.Conflict, latchkey.Invalid, latchkey.Unavailable:
		return u.renderVisit(c, id, statusOf(k), latchkey.Message(err))
	}
	return err
}

func (u *UI) revoke(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := u.svc.Revoke(ctx, id); err != nil {
		return u.actionError(c, id, err)
	}
	return redirect(c, "/admin/visits/"+strconv.FormatInt(id, 10), "revoked")
}

func (u *UI) extend(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	mins, err := strconv.Atoi(c.FormValue("minutes"))
	if err != nil {
		return u.actionError(c, id, latchkey.Errorf(latchkey.Invalid, "minutes must be a number"))
	}
	ctx := c.Request().Context()
	if _, err := u.svc.Extend(ctx, id, mins); err != nil {
		return u.actionError(c, id, err)
	}
	return redirect(c, "/admin/visits/"+strconv.FormatInt(id, 10), "extended")
}

func (u *UI) resend(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := u.svc.Resend(ctx, id); err != nil {
		return u.actionError(c, id, err)
	}
	return redirect(c, "/admin/visits/"+strconv.FormatInt(id, 10), "resent")
}

// correctEmail sets the guest's address as the desk corrected it and sends
// the pass email to it.
func (u *UI) correctEmail(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	email := c.FormValue("email")
	if len(email) > connector.MaxEmailLen+10 {
		email = email[:connector.MaxEmailLen+10]
	}
	if _, err := u.svc.CorrectEmail(c.Request().Context(), id, email); err != nil {
		return u.actionError(c, id, err)
	}
	return redirect(c, "/admin/visits/"+strconv.FormatInt(id, 10), "email_corrected")
}
