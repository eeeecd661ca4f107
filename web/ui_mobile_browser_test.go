package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserPhoneLayout opens every front-desk page, with data in it, on
// a 390 px wide phone: the header stays at most 120 px tall, no page is
// wider than the screen, and the visitors list shows every visitor's name
// and window without sideways scrolling.
func TestBrowserPhoneLayout(t *testing.T) {
	bctx := newBrowser(t)
	d := newDataDesk(t)
	dir := artifactsDir(t)
	signIn(t, bctx, d)
	pages := deskPages(t, bctx, d)
	step(t, bctx, "narrow the window to a phone's", 5*time.Second, chromedp.EmulateViewport(390, 844))

	for i, p := range pages {
		step(t, bctx, "open "+p, 15*time.Second, chromedp.Navigate(d.url+p), chromedp.WaitVisible(chromedp.CSS(`header.top`)))
		nav := value(t, bctx, "header height of "+p, chromedp.Evaluate[float64](`document.querySelector('header.top').getBoundingClientRect().height`))
		if nav > 120 {
			t.Errorf("%s: the header is %.0f px tall on a phone, want at most 120", p, nav)
		}
		if over := value(t, bctx, "overflow of "+p, chromedp.Evaluate[int](
			`document.documentElement.scrollWidth - document.documentElement.clientWidth`)); over > 1 {
			t.Errorf("%s is %d px wider than a 390 px phone", p, over)
		}
		screenshot(t, bctx, dir, fmt.Sprintf("phone-%02d", i))
	}

	// Every nav link can be reached: the nav scrolls sideways within
	// itself rather than pushing the page wider.
	step(t, bctx, "open the visitors", 15*time.Second, chromedp.Navigate(d.url+"/admin?range=all"), chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)))
	links := value(t, bctx, "nav links", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('header.top nav a')).map(function (a) { return a.textContent; })`))
	if len(links) < 7 {
		t.Fatalf("the admin's nav has %d links (%v), want at least 7", len(links), links)
	}
	last := value(t, bctx, "scroll to the last nav link", chromedp.Evaluate[bool](
		`(function () { var n = document.querySelector('header.top nav'); var a = n.querySelectorAll('a'); a = a[a.length - 1];
		  a.scrollIntoView({inline: 'end'}); var r = a.getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth; })()`))
	if !last {
		t.Errorf("the last nav link (%s) cannot be scrolled into view", links[len(links)-1])
	}

	// The current page's link is in view, even when it is the last.
	step(t, bctx, "open the users", 15*time.Second, chromedp.Navigate(d.url+"/admin/users"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	inView := value(t, bctx, "current nav link in view", chromedp.Evaluate[bool](
		`(function () { var a = document.querySelector('header.top nav [aria-current=page]'); var r = a.getBoundingClientRect();
		  return r.left >= 0 && r.right <= window.innerWidth; })()`))
	if !inView {
		t.Errorf("on /admin/users the current nav link (Users) is scrolled out of view")
	}
	step(t, bctx, "back to the visitors", 15*time.Second, chromedp.Navigate(d.url+"/admin?range=all"), chromedp.WaitVisible(chromedp.CSS(`#visit-rows`)))

	// The visitors list: each row fits, with the name and the window.
	rows := value(t, bctx, "visitor rows", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#visit-rows tr')).map(function (tr) {
		   var r = tr.getBoundingClientRect(); return Math.round(r.left) + ' ' + Math.round(r.right) + ' ' + tr.innerText; })`))
	if len(rows) < len(d.visits) {
		t.Fatalf("the list shows %d rows, want %d", len(rows), len(d.visits))
	}
	wrap := value(t, bctx, "table overflow", chromedp.Evaluate[int](
		`(function () { var w = document.querySelector('#visit-rows').closest('.table-wrap'); return w.scrollWidth - w.clientWidth; })()`))
	if wrap > 1 {
		t.Errorf("the visitors table is %d px wider than its box on a phone: it is clipped", wrap)
	}
	text := strings.Join(rows, "\n")
	for _, v := range d.visits {
		if !strings.Contains(text, v.Name) {
			t.Errorf("the phone list does not show %q", v.Name)
		}
	}
	for _, r := range rows {
		var left, right int
		if _, err := fmt.Sscanf(r, "%d %d", &left, &right); err != nil {
			t.Fatalf("row %q: %v", r, err)
		}
		if left < 0 || right > 390 {
			t.Errorf("a visitor row spans %d–%d px, off a 390 px screen: %.60q", left, right, r)
		}
	}
}

// TestBrowserNavFocusVisible tabs to a link of the dark header and checks
// the focus ring is drawn and stands out against the header: a contrast
// of at least 3:1 (WCAG 2.2, non-text contrast).
func TestBrowserNavFocusVisible(t *testing.T) {
	bctx := newBrowser(t)
	d := newDataDesk(t)
	signIn(t, bctx, d)
	step(t, bctx, "focus the first nav link by keyboard", 10*time.Second,
		chromedp.Navigate(d.url+"/admin/operations"),
		chromedp.WaitVisible(chromedp.CSS(`header.top nav a`)),
		chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`),
	)
	// Tab until a nav link has the focus: skip link, brand, then the nav.
	var focused string
	for range 5 {
		step(t, bctx, "press tab", 5*time.Second, chromedp.KeyEvent("\t"))
		focused = value(t, bctx, "focused element", chromedp.Evaluate[string](
			`document.activeElement.closest('header.top nav') ? document.activeElement.textContent : ''`))
		if focused != "" {
			break
		}
	}
	if focused == "" {
		t.Fatal("tabbing never reached a nav link")
	}
	ring := value(t, bctx, "focus ring", chromedp.Evaluate[[]float64](`(function () {
		function rgb(s) { var m = s.match(/[\d.]+/g).map(Number); return m.slice(0, 3); }
		function lum(c) { c = c.map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
		  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; }
		var a = document.activeElement, s = getComputedStyle(a);
		var bg = getComputedStyle(document.querySelector('header.top')).backgroundColor;
		var l1 = lum(rgb(s.outlineColor)), l2 = lum(rgb(bg));
		var width = s.outlineStyle === 'none' ? 0 : parseFloat(s.outlineWidth);
		return [width, (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05)];
	})()`))
	if ring[0] < 2 {
		t.Errorf("focused nav link %q has a %.0f px outline, want at least 2 px", focused, ring[0])
	}
	if ring[1] < 3 {
		t.Errorf("focused nav link %q: its ring's contrast with the header is %.2f:1, want at least 3:1", focused, ring[1])
	}
}
