package web

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// simForm is the "simulate a visitor" form on the visitors page: it feeds
// a visitor event through the same path as a signed webhook (Ingest, then
// the sync), so a newcomer can try a flow without Envoy.
type simForm struct {
	Kind, Name, Email, LocationID, FlowID, FlowName, TimeZone string
	ArrivalMinutes                                            int
	Flows                                                     []simFlow
	Error                                                     string
}

// simFlow is a mapped (location, flow) to pick from.
type simFlow struct {
	LocationID, FlowID string
	// Label names the pair: the names events carried, else the ids.
	Label string
}

func (f simFlow) Value() string { return f.LocationID + "/" + f.FlowID }

func (u *UI) defaultSimForm(ctx context.Context) simForm {
	f := simForm{Kind: "sign-in", Name: "Ada Lovelace", Email: "ada@example.com", FlowName: "Visitor", TimeZone: u.zone.String(), ArrivalMinutes: 60}
	if ms, err := u.maps.List(ctx, ""); err == nil {
		names := u.placeNames(ctx)
		for _, m := range ms {
			loc, flow := names.Locations[m.LocationID], names.Flows[m.LocationID+"/"+m.FlowID]
			if loc == "" {
				loc = "location " + m.LocationID
			}
			if flow == "" {
				flow = "flow " + m.FlowID
			}
			f.Flows = append(f.Flows, simFlow{LocationID: m.LocationID, FlowID: m.FlowID, Label: loc + " · " + flow})
		}
	}
	if len(f.Flows) > 0 {
		f.LocationID, f.FlowID = f.Flows[0].LocationID, f.Flows[0].FlowID
	}
	return f
}

// simulatedID gives a stable numeric id for a visitor, as `latchkey
// simulate` does, so a sign-out after a sign-in finds the same visit.
func simulatedID(kind string, parts ...string) string {
	h := sha256.Sum256([]byte(kind + "|" + strings.Join(parts, "|")))
	return strconv.FormatUint(binary.BigEndian.Uint64(h[:8])%900000000+100000000, 10)
}

func (u *UI) simulate(c echo.Context) error {
	usr, _ := userOf(c)
	if !u.canSimulate(usr) {
		return latchkey.Errorf(latchkey.Forbidden, "only admins may simulate visitors outside the demo")
	}
	ctx := c.Request().Context()
	f := u.defaultSimForm(ctx)
	f.Kind = c.FormValue("kind")
	f.Name = strings.TrimSpace(c.FormValue("name"))
	f.Email = strings.ToLower(strings.TrimSpace(c.FormValue("email")))
	f.FlowName = strings.TrimSpace(c.FormValue("flow_name"))
	f.TimeZone = strings.TrimSpace(c.FormValue("time_zone"))
	if loc, flow, ok := strings.Cut(c.FormValue("flow"), "/"); ok {
		f.LocationID, f.FlowID = strings.TrimSpace(loc), strings.TrimSpace(flow)
	}
	if n, err := strconv.Atoi(c.FormValue("arrival_minutes")); err == nil {
		f.ArrivalMinutes = n
	}
	ev, err := u.simEvent(f)
	if err != nil {
		f.Error = latchkey.Message(err)
		return u.renderSimError(c, f)
	}
	now := u.now().UTC().Truncate(time.Second)
	key := "ui-simulate:" + randomToken(12)
	// No job id: a simulated visit is no Envoy job, and owes Envoy no report.
	res, err := u.svc.Ingest(ctx, connector.Inbound{DedupeKey: key, EventName: string(ev.Kind), Known: true, Event: ev})
	if err != nil {
		return err
	}
	u.log.Info("visitor simulated", "user_id", usr.ID, "event", ev.Kind, "visit_id", res.VisitID, "at", now)
	return redirect(c, "/admin/visits/"+strconv.FormatInt(res.VisitID, 10), "simulated")
}

// simEvent builds the visitor event the form describes.
func (u *UI) simEvent(f simForm) (connector.Event, error) {
	switch {
	case f.Name == "" || len(f.Name) > 200:
		return connector.Event{}, latchkey.Errorf(latchkey.Invalid, "name is required")
	case f.Email == "" || len(f.Email) > 320 || !strings.Contains(f.Email, "@"):
		return connector.Event{}, latchkey.Errorf(latchkey.Invalid, "email is required")
	case f.LocationID == "" || f.FlowID == "":
		return connector.Event{}, latchkey.Errorf(latchkey.Invalid, "pick a mapped flow (create a mapping first)")
	case f.ArrivalMinutes < -24*60 || f.ArrivalMinutes > 7*24*60:
		return connector.Event{}, latchkey.Errorf(latchkey.Invalid, "arrival must be within a week")
	}
	if f.TimeZone == "" {
		f.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(f.TimeZone); err != nil {
		return connector.Event{}, latchkey.Errorf(latchkey.Invalid, "time zone %q is not an IANA zone such as Europe/Berlin", f.TimeZone)
	}
	now := u.now().UTC().Truncate(time.Second)
	ev := connector.Event{InstallID: "1", LocationID: f.LocationID, TimeZone: f.TimeZone, FlowID: f.FlowID, FlowName: f.FlowName,
		FullName: f.Name, Email: f.Email, ApprovalStatus: "approved"}
	entryID := simulatedID("entry", f.Email, f.FlowID, f.LocationID)
	switch f.Kind {
	case "sign-in":
		ev.Kind, ev.EntryID, ev.SignedInAt = connector.EventSignIn, entryID, now
	case "sign-out":
		ev.Kind, ev.EntryID, ev.SignedInAt, ev.SignedOutAt = connector.EventSignOut, entryID, now.Add(-time.Hour), now
	case "invite":
		ev.Kind, ev.InviteID = connector.EventInviteCreated, simulatedID("invite", f.Email, f.FlowID, f.LocationID)
		ev.ExpectedArrival = now.Add(time.Duration(f.ArrivalMinutes) * time.Minute)
		ev.ApprovalStatus = ""
	default:
		return connector.Event{}, latchkey.Errorf(latchkey.Invalid, "kind must be sign-in, sign-out or invite")
	}
	return ev, nil
}

func (u *UI) renderSimError(c echo.Context, f simForm) error {
	d, err := u.visitsData(c.Request().Context(), visitQuery{Range: "today"})
	if err != nil {
		return err
	}
	d.Sim = f
	return u.render(c, http.StatusBadRequest, "visits", "Visitors today", d)
}
