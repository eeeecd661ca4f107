package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/connector/kisi"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/internal/mail"
)

// health is the operations panel.
type health struct {
	LastWebhook     string
	LastWebhookAgo  string
	LastWebhookWarn bool
	Unsynced        int
	SyncLag         string
	SyncLagWarn     bool
	Failed          int64
	// FailedEmails counts the visits the visitors list flags "email
	// failed" (the same filter).
	FailedEmails int64
	// Reporting says reports go back to Envoy; ReportsFailed counts those
	// given up in the last 7 days (-1: could not be read).
	Reporting     bool
	ReportsFailed int64
	Queue         *QueueStats
	QueueErr      string
	Controller    string
	ControllerOK  bool
	Signature     string
	SignatureWarn bool
	Mail          string
	// UnknownZones are time zones webhooks sent that are not IANA zones;
	// those visits' windows run in UTC.
	UnknownZones []connector.UnknownZone
	// Clock says how far this process's clock is off the database's, which
	// leases, windows and sweeps go by; ClockWarn past 2 s.
	Clock     string
	ClockWarn bool
}

// clockSkewLimit is how far a process's clock may be off the database's
// before the panel warns.
const clockSkewLimit = 2 * time.Second

func (u *UI) operationsPage(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	h := u.health(ctx)
	return u.render(c, http.StatusOK, "operations", "Operations", h)
}

func (u *UI) health(ctx context.Context) health {
	now := u.now()
	h := health{LastWebhook: "none received yet", LastWebhookAgo: "—"}
	if d, ok, err := u.svc.Store().LastDelivery(ctx); err != nil {
		h.LastWebhook = "could not be read: " + err.Error()
		h.LastWebhookWarn = true
	} else if ok {
		h.LastWebhook = d.Event + " (" + d.Outcome + ")"
		h.LastWebhookAgo = humanDuration(now.Sub(d.ReceivedAt)) + " ago, " + d.ReceivedAt.In(u.zone).Format("Mon 2 Jan 15:04:05 MST")
	}
	// Sync lag: visits whose change the reconciler has not applied yet.
	if n, since, err := u.svc.Store().SyncLag(ctx, now.Add(time.Second)); err == nil {
		h.Unsynced = int(n)
		h.SyncLag = "none"
		if n > 0 {
			oldest := now.Sub(since)
			h.SyncLag = humanDuration(oldest)
			h.SyncLagWarn = oldest > time.Minute
		}
	} else {
		h.SyncLag = "unknown"
		h.SyncLagWarn = true
	}
	if _, n, err := u.svc.Store().List(ctx, connector.VisitFilter{Status: connector.StatusFailed, Limit: 1}); err == nil {
		h.Failed = n
	}
	if _, n, err := u.svc.Store().List(ctx, connector.VisitFilter{EmailFailed: true, Limit: 1}); err == nil {
		h.FailedEmails = n
	}
	if h.Reporting = u.svc.Reporting(); h.Reporting {
		h.ReportsFailed = -1
		if n, err := u.svc.Store().ReportsGivenUp(ctx, now.Add(-7*24*time.Hour)); err == nil {
			h.ReportsFailed = n
		}
	}
	if zs, err := u.svc.Store().UnknownTimeZones(ctx, 10); err == nil {
		h.UnknownZones = zs
	}
	if u.opts.QueueStats != nil {
		if s, err := u.opts.QueueStats(ctx); err != nil {
			h.QueueErr = "the queue is not reachable"
		} else {
			h.Queue = &s
		}
	}
	start := time.Now()
	if _, err := u.groups.ListGroups(ctx); err != nil {
		h.Controller = "not reachable: " + err.Error()
	} else {
		h.ControllerOK = true
		h.Controller = "reachable (" + time.Since(start).Round(time.Millisecond).String() + ")"
	}
	n := u.counter("latchkey_webhooks_total", "outcome", "bad_signature")
	h.Signature = strconv.FormatFloat(n, 'f', 0, 64) + " since start"
	h.SignatureWarn = n > 0
	if u.opts.ClockOffset != nil {
		off := u.opts.ClockOffset()
		h.Clock = "in step with the database (" + off.Round(time.Millisecond).String() + ")"
		if off.Abs() > clockSkewLimit {
			h.ClockWarn = true
			h.Clock = "this server's clock is " + humanDuration(off.Abs()) + " off the database's; latchkey goes by the database's, but fix this machine's time (NTP)"
		}
	}
	h.Mail = "sent over SMTP"
	if u.outbox != nil {
		h.Mail = "captured in the outbox (no SMTP_URL)"
	}
	return h
}

// counter reads a counter with one label value from the server's metrics.
func (u *UI) counter(name, label, value string) float64 {
	if u.gatherer == nil {
		return 0
	}
	mfs, err := u.gatherer.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// eventFilter selects door events.
type eventFilter struct {
	Type    string
	Success string
}

func (f eventFilter) kisi() kisi.EventFilter {
	return kisi.EventFilter{Type: f.Type, Success: f.Success}
}

type eventRow struct {
	At, Type, Actor, Object, Outcome, Detail, IP string
	// Door is the door an event concerns ("" when it is not about a door);
	// Subject names any other object ("group link Jane (Visitor)").
	Door, Subject string
	OK            bool
}

// objectLabels name the controller's object types for people.
var objectLabels = map[string]string{"GroupLink": "group link", "Group": "group", "Place": "place", "User": "user",
	"Guest": "guest", "RoleAssignment": "role assignment", "Invite": "invite", "AccessKey": "access key", "Login": "login"}

type eventsData struct {
	Filter      eventFilter
	Rows        []eventRow
	Total       int
	Offset      int
	Prev, Next  int
	HasPrev     bool
	HasNext     bool
	Query       string
	Unavailable string
}

const eventsPageSize = 50

func parseEventFilter(c echo.Context) eventFilter {
	f := eventFilter{Type: strings.TrimSpace(c.QueryParam("type"))}
	switch c.QueryParam("success") {
	case "true", "false":
		f.Success = c.QueryParam("success")
	}
	if len(f.Type) > 100 {
		f.Type = ""
	}
	return f
}

func (f eventFilter) query() string {
	var parts []string
	if f.Type != "" {
		parts = append(parts, "type="+f.Type)
	}
	if f.Success != "" {
		parts = append(parts, "success="+f.Success)
	}
	return strings.Join(parts, "&")
}

func (u *UI) eventRow(e ctrlEvent) eventRow {
	r := eventRow{At: e.CreatedAt.In(u.zone).Format("2006-01-02 15:04:05 MST"), Type: e.Type, Object: e.ObjectName, OK: e.Success, Outcome: "ok"}
	switch {
	case e.ObjectType == "Lock":
		r.Door = e.ObjectName
	case e.ObjectName != "":
		label := objectLabels[e.ObjectType]
		if label == "" {
			label = strings.ToLower(e.ObjectType)
		}
		r.Subject = strings.TrimSpace(label + " " + e.ObjectName)
	}
	if e.ActorName != nil {
		r.Actor = *e.ActorName
	}
	if e.ActorEmail != nil && *e.ActorEmail != "" {
		r.Actor += " <" + *e.ActorEmail + ">"
	}
	if !e.Success {
		r.Outcome = "refused"
	}
	if e.Message != nil {
		r.Detail = *e.Message
	}
	if e.Code != nil && *e.Code != "" {
		r.Detail += " (" + *e.Code + ")"
	}
	if e.ClientIP != nil {
		r.IP = *e.ClientIP
	}
	return r
}

// eventsPage lists the controller's door events, newest first.
func (u *UI) eventsPage(c echo.Context) error {
	f := parseEventFilter(c)
	offset, err := queryInt(c, "offset", 0, 20000)
	if err != nil {
		return err
	}
	d := eventsData{Filter: f, Offset: offset, Query: f.query()}
	if u.ctrl == nil {
		d.Unavailable = "No controller API is configured for this process."
		return u.render(c, http.StatusOK, "events", "Door events", d)
	}
	es, total, err := u.ctrl.Events(c.Request().Context(), f.kisi(), eventsPageSize, offset)
	if err != nil {
		d.Unavailable = "The controller's events could not be read right now."
		u.log.Warn("door events", "err", err)
		return u.render(c, http.StatusOK, "events", "Door events", d)
	}
	for _, e := range es {
		d.Rows = append(d.Rows, u.eventRow(e))
	}
	d.Total = total
	d.HasPrev, d.Prev = offset > 0, max(offset-eventsPageSize, 0)
	d.HasNext, d.Next = offset+len(es) < total, offset+eventsPageSize
	return u.render(c, http.StatusOK, "events", "Door events", d)
}

// maxCSVEvents bounds one CSV export.
const maxCSVEvents = 10000

// eventsCSV exports the filtered door events as CSV.
func (u *UI) eventsCSV(c echo.Context) error {
	f := parseEventFilter(c)
	if u.ctrl == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "No controller API is configured for this process.")
	}
	ctx := c.Request().Context()
	var rows []eventRow
	for offset := 0; offset < maxCSVEvents; {
		es, total, err := u.ctrl.Events(ctx, f.kisi(), 250, offset)
		if err != nil {
			return err
		}
		for _, e := range es {
			rows = append(rows, u.eventRow(e))
		}
		offset += len(es)
		if len(es) == 0 || offset >= total {
			break
		}
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="door-events-`+u.now().In(u.zone).Format("2006-01-02")+`.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	_ = w.Write([]string{"time (" + u.zone.String() + ")", "type", "actor", "door", "outcome", "detail", "client_ip"})
	for _, r := range rows {
		_ = w.Write([]string{csvCell(r.At), csvCell(r.Type), csvCell(r.Actor), csvCell(r.Object), r.Outcome, csvCell(r.Detail), csvCell(r.IP)})
	}
	w.Flush()
	return w.Error()
}

// csvCell defuses cells a spreadsheet would run as a formula: guest names
// come from outside.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// outboxPageSize is how many messages one outbox page shows.
const outboxPageSize = 20

type outboxData struct {
	SMTP     bool
	To       string
	Messages []mail.StoredMessage
	Total    int64
	Zone     *time.Location
	// Page is 1-based; From and Through number the messages shown.
	Page, From, Through int
	Prev, Next          string // links to the neighbouring pages, "" at an end
}

// outboxPage lists captured mail (embedded mail only), newest first, a page
// at a time. Each HTML body is shown in a sandboxed frame served by
// outboxHTML, so a message cannot run script or reach the front desk.
func (u *UI) outboxPage(c echo.Context) error {
	d := outboxData{To: strings.TrimSpace(c.QueryParam("to")), Zone: u.zone, Page: 1}
	if u.outbox == nil {
		d.SMTP = true
		return u.render(c, http.StatusOK, "outbox", "Outbox", d)
	}
	if p, err := strconv.Atoi(c.QueryParam("page")); err == nil && p > 1 && p <= 1_000_000 {
		d.Page = p
	}
	offset := (d.Page - 1) * outboxPageSize
	ms, total, err := u.outbox.List(c.Request().Context(), mail.OutboxFilter{To: d.To, Limit: outboxPageSize, Offset: offset})
	if err != nil {
		return err
	}
	d.Messages, d.Total = ms, total
	if len(ms) > 0 {
		d.From, d.Through = offset+1, offset+len(ms)
	}
	link := func(page int) string {
		q := url.Values{}
		if d.To != "" {
			q.Set("to", d.To)
		}
		q.Set("page", strconv.Itoa(page))
		return "/admin/outbox?" + q.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if int64(offset+len(ms)) < total {
		d.Next = link(d.Page + 1)
	}
	return u.render(c, http.StatusOK, "outbox", "Outbox", d)
}

// outboxHTML serves one captured message's HTML body, its inline images
// made data: URIs, for the outbox page's frame. The answer carries its own
// CSP: sandboxed (no script, an opaque origin), nothing loaded from
// anywhere, and framed only by the front desk.
func (u *UI) outboxHTML(c echo.Context) error {
	if u.outbox == nil {
		return latchkey.Errorf(latchkey.NotFound, "mail is sent over SMTP; there is no captured outbox")
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return latchkey.Errorf(latchkey.NotFound, "no such message")
	}
	m, err := u.outbox.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	body := m.InlinedHTML()
	if body == "" {
		body = "<p>(this message has no HTML part)</p>"
	}
	return c.HTMLBlob(http.StatusOK, []byte(body))
}
