package web

import (
	"html/template"
	"time"
)

// deskTimeLayout is how the front desk writes an instant: in its zone,
// with the zone's name, so a time never reads as another zone's.
const deskTimeLayout = "Mon 2 Jan 2006 15:04 MST"

// deskFuncs are the template functions for times and labels; they join
// uiFuncs in every page.
var deskFuncs = template.FuncMap{
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
