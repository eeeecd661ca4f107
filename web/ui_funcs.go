package web

import (
	"html/template"
	"strings"
	"time"

	"github.com/latchkey/latchkey/connector"
)

// deskTimeLayout is how the front desk writes an instant: in its zone,
// with the zone's name, so a time never reads as another zone's.
const deskTimeLayout = "Mon 2 Jan 2006 15:04 MST"

// deskFuncs are the template functions for times and labels; they join
// uiFuncs in every page.
var deskFuncs = template.FuncMap{
	"kindLabel": kindLabel,
	// formErrors lists a form's field errors in the page's order.
	"formErrors": summarize,
	// deskTime writes t (a time.Time or *time.Time) in loc with its zone;
	// "—" for none.
	"deskTime": func(t any, loc *time.Location) string {
		var tt time.Time
		switch v := t.(type) {
		case time.Time:
			tt = v
		case *time.Time:
			if v != nil {
				tt = *v
			}
		}
		if tt.IsZero() {
			return "—"
		}
		if loc == nil {
			loc = time.UTC
		}
		return tt.In(loc).Format(deskTimeLayout)
	},
}

// kindLabels are what the timeline calls each kind of entry.
var kindLabels = map[string]string{
	connector.KindEventReceived: "Envoy event",
	connector.KindDecision:      "Decision",
	connector.KindLinkCreated:   "Access created",
	connector.KindLinkUpdated:   "Access changed",
	connector.KindLinkRevoked:   "Access removed",
	connector.KindEmailSent:     "Email sent",
	connector.KindEmailFailed:   "Email failed",
	connector.KindPassViewed:    "Pass opened",
	connector.KindUnlock:        "Door opened",
	connector.KindError:         "Problem",
	connector.KindAction:        "Front desk",
}

// kindLabel names a timeline kind for people: a known kind by its label,
// another with its words spaced and capitalised ("sync_retry" reads "Sync
// retry").
func kindLabel(kind string) string {
	if l, ok := kindLabels[kind]; ok {
		return l
	}
	words := strings.TrimSpace(strings.ReplaceAll(kind, "_", " "))
	if words == "" {
		return "Note"
	}
	return strings.ToUpper(words[:1]) + words[1:]
}
