package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/web"
)

// TestUIMappingFormShowsEveryError: a form wrong in many fields at once
// says so for each of them, under the field, marked invalid, and in a
// summary that names the fields; nothing is saved.
func TestUIMappingFormShowsEveryError(t *testing.T) {
	e := newUIEnv(t, web.UIOptions{})
	s := e.signIn(t, "desk@example.com", web.RoleFrontDesk)
	form := url.Values{"csrf": {s.csrf}, "location_id": {""}, "flow_id": {""}, "duration_minutes": {"abc"},
		"advance_minutes": {"-5"}, "grace_minutes": {"99999"}, "delivery": {"latchkey"}, "guest_indicator": {strings.Repeat("x", 41)}, "action": {"save"}}
	rec := e.do(t, http.MethodPost, "/admin/mappings", form, s.cookie)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("POST a wrong mapping: got %d, want 422", rec.Code)
	}
	body := rec.Body.String()
	fields := []string{"location_id", "flow_id", "group_ids", "duration_minutes", "advance_minutes", "grace_minutes", "guest_indicator"}
	for _, f := range fields {
		if !strings.Contains(body, `id="`+f+`-err"`) {
			t.Errorf("no error shown under %s", f)
		}
		if f != "group_ids" && !regexp.MustCompile(`id="`+f+`"[^>]*aria-invalid="true"`).MatchString(body) {
			t.Errorf("%s is not marked aria-invalid", f)
		}
	}
	if !strings.Contains(body, `<fieldset class="groups invalid" id="group_ids"`) {
		t.Errorf("the groups fieldset is not marked invalid")
	}
	// The number that did not parse keeps its own message.
	if !strings.Contains(body, "must be a whole number of minutes") {
		t.Errorf("duration_minutes lost its parse error")
	}
	summary := regexp.MustCompile(`(?s)<div class="alert error-summary"[^>]*>(.*?)</div>`).FindStringSubmatch(body)
	if summary == nil {
		t.Fatalf("no error summary above the form")
	}
	if !strings.Contains(summary[1], "7 fields need attention") {
		t.Errorf("summary %q does not count 7 fields", summary[1])
	}
	for _, f := range fields {
		if !strings.Contains(summary[1], `href="#`+f+`"`) {
			t.Errorf("the summary does not link to %s", f)
		}
	}
	if ms, err := e.maps.List(t.Context(), ""); err != nil || len(ms) != 0 {
		t.Errorf("a wrong form saved %d mappings (%v)", len(ms), err)
	}

	// One wrong field: one message, in the singular.
	form = url.Values{"csrf": {s.csrf}, "location_id": {"177837"}, "flow_id": {"400001"}, "group_ids": {"1"},
		"duration_minutes": {"0"}, "delivery": {"latchkey"}, "action": {"save"}}
	body = e.do(t, http.MethodPost, "/admin/mappings", form, s.cookie).Body.String()
	if !strings.Contains(body, "1 field needs attention") || strings.Count(body, `class="field-error"`) != 1 {
		t.Errorf("one wrong field: want one error and a singular summary:\n%s", body)
	}
}

// TestBrowserMappingFormErrors submits a mapping wrong in several fields
// in Chromium: every message shows at once, each wrong input is drawn in
// the error colour, the summary links jump to the fields, and the page
// reports no console error.
func TestBrowserMappingFormErrors(t *testing.T) {
	bctx := newBrowser(t)
	d := newDataDesk(t)
	var problems pageProblems
	problems.watch(t, bctx)
	signIn(t, bctx, d)
	step(t, bctx, "submit a wrong mapping", 15*time.Second,
		chromedp.Navigate(d.url+"/admin/mappings/new"),
		chromedp.WaitVisible(chromedp.CSS(`#mapping-form`)),
		chromedp.Evaluate[chromedp.Void](`(function () {
			document.getElementById('location_id').value = '';
			document.getElementById('flow_id').value = '';
			document.querySelectorAll('input[name=group_ids]').forEach(function (c) { c.checked = false; });
			document.getElementById('duration_minutes').value = '0';
			document.getElementById('advance_minutes').value = '-5';
		})()`),
		chromedp.Click(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#form-errors`)),
	)
	errs := value(t, bctx, "field errors", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('.field-error')).filter(function (p) { return p.offsetParent !== null; }).map(function (p) { return p.id; })`))
	for _, want := range []string{"location_id-err", "flow_id-err", "group_ids-err", "duration_minutes-err", "advance_minutes-err"} {
		if !strings.Contains(strings.Join(errs, " "), want) {
			t.Errorf("visible errors %v lack %s", errs, want)
		}
	}
	border := value(t, bctx, "border of an invalid input", chromedp.Evaluate[string](`getComputedStyle(document.getElementById('location_id')).borderTopColor`))
	if border != "rgb(185, 28, 28)" {
		t.Errorf("an invalid input's border is %s, want the error colour rgb(185, 28, 28)", border)
	}
	step(t, bctx, "follow the summary's link", 10*time.Second,
		chromedp.Click(chromedp.CSS(`#form-errors a[href="#advance_minutes"]`)),
	)
	if h := value(t, bctx, "location", chromedp.Evaluate[string](`location.hash`)); h != "#advance_minutes" {
		t.Errorf("the summary link went to %q", h)
	}
	screenshot(t, bctx, artifactsDir(t), "mapping-errors")
	for _, m := range problems.take() {
		if !strings.Contains(m, "422") { // the answer to the wrong form itself
			t.Errorf("mapping form: %s", m)
		}
	}
}
