package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/mappings"
)

var (
	ptJane = ptGuest{ID: "141649852", Name: "Jane Visitor", Email: "visitor@example.com"}
	ptBob  = ptGuest{ID: "43116507", Name: "Bob Guest", Email: "bob@example.com"}
)

// get serves GET path and returns the recorder.
func (s *ptStack) get(path string) *httptest.ResponseRecorder {
	s.t.Helper()
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// unlock posts an unlock as the page's script does (JSON) or as a browser
// without JavaScript does (a form, answered with the page).
func (s *ptStack) unlock(token string, lockID int64, form bool) *httptest.ResponseRecorder {
	s.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v/"+token+"/locks/"+ptItoa(lockID)+"/unlock", nil)
	req.Header.Set("Accept", "application/json")
	if form {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	}
	rec := httptest.NewRecorder()
	s.srv.ServeHTTP(rec, req)
	return rec
}

func ptItoa(n int64) string { return strconv.FormatInt(n, 10) }

// ptButton is one door button of a rendered pass page.
type ptButton struct {
	Label   string
	Enabled bool
}

var (
	ptButtonRE = regexp.MustCompile(`(?s)<button([^>]*)>(.*?)</button>`)
	ptTagRE    = regexp.MustCompile(`<[^>]+>`)
	ptSpaceRE  = regexp.MustCompile(`\s+`)
)

// buttons lists the door buttons of a pass page.
func ptButtons(page string) []ptButton {
	var out []ptButton
	for _, m := range ptButtonRE.FindAllStringSubmatch(page, -1) {
		label := html.UnescapeString(ptSpaceRE.ReplaceAllString(ptTagRE.ReplaceAllString(m[2], ""), " "))
		out = append(out, ptButton{Label: strings.TrimSpace(label), Enabled: !regexp.MustCompile(`\sdisabled\b`).MatchString(m[1])})
	}
	return out
}

// text is a page's visible text on one line.
func ptText(page string) string {
	page = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)>`).ReplaceAllString(page, "")
	return strings.TrimSpace(html.UnescapeString(ptSpaceRE.ReplaceAllString(ptTagRE.ReplaceAllString(page, " "), " ")))
}

var ptExternalRE = regexp.MustCompile(`(?i)(src|href|action|srcset)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?\s*(https?:)?//|@import`)

// checkPassResponse checks what every pass page must have: security
// headers, a strict CSP, and no third-party asset.
func ptCheckResponse(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := rec.Header()
	for name, want := range map[string]string{"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'nonce-", "style-src 'nonce-", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q allows unsafe-inline", csp)
	}
	body := rec.Body.String()
	if m := ptExternalRE.FindString(body); m != "" {
		t.Errorf("page loads a third-party asset: %q", m)
	}
	if !strings.Contains(body, `<meta name="referrer" content="no-referrer">`) {
		t.Error("page lacks <meta name=referrer content=no-referrer>")
	}
}

func TestPassPage(t *testing.T) {
	doors := func(enabled bool) []ptButton {
		return []ptButton{{"Unlock Front door", enabled}, {"Unlock Lobby", enabled}, {"Unlock Meeting room", enabled}}
	}
	tests := []struct {
		name string
		// setup makes the visit and returns its pass token.
		setup      func(s *ptStack) string
		wantStatus int
		wantText   []string
		wantDoors  []ptButton
		wantQR     bool
		notText    []string
	}{
		{
			name: "active",
			setup: func(s *ptStack) string {
				_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"Hello Jane Visitor", "Times in Asia/Dhaka", "Your access is open until", "Head Office", "1 Example Street, Example City"},
			wantDoors:  doors(true),
			wantQR:     true,
		},
		{
			name: "scheduled shows a countdown and greyed-out doors",
			setup: func(s *ptStack) string {
				v, tok := s.apply(ptInviteBody(s.t, ptBob, s.clock.Now().Add(2*time.Hour)))
				if v.Status != connector.StatusScheduled {
					s.t.Fatalf("visit status %s, want scheduled", v.Status)
				}
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"Hello Bob Guest", "Your access starts in 1h 29m", "The buttons work once your access starts", "Head Office", "Your host: Harry Host"},
			wantDoors:  doors(false),
			wantQR:     true,
		},
		{
			name: "revoked at the front desk",
			setup: func(s *ptStack) string {
				v, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
				if _, err := s.svc.Revoke(s.ctx, v.ID); err != nil {
					s.t.Fatalf("revoke: %v", err)
				}
				s.resync(v.ID)
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"This pass has been revoked and no longer opens doors"},
		},
		{
			name: "signed out: thanked, not told it was revoked",
			setup: func(s *ptStack) string {
				v, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now().Add(-time.Hour)))
				s.apply(ptSignOutBody(s.t, ptJane, s.clock.Now().Add(-time.Hour), s.clock.Now().Add(-time.Minute)))
				if v2, _ := s.store.Visit(s.ctx, v.ID); v2.Status != connector.StatusRevoked {
					s.t.Fatalf("after the sign-out the visit is %s, want revoked", v2.Status)
				}
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"You have signed out", "Thank you for visiting"},
			notText:    []string{"revoked"},
		},
		{
			name: "invitation cancelled",
			setup: func(s *ptStack) string {
				_, tok := s.apply(ptInviteBody(s.t, ptBob, s.clock.Now().Add(2*time.Hour)))
				s.apply(ptFixture(s.t, "envoy-plugin-event-invite_created.json", func(doc map[string]any) {
					m := doc["meta"].(map[string]any)
					m["event"] = "invite_removed"
					m["job"].(map[string]any)["id"] = "invite-removed-" + ptBob.ID
					doc["payload"].(map[string]any)["id"] = ptBob.ID
				}))
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"Your invitation was cancelled"},
			notText:    []string{"revoked", "Thank you"},
		},
		{
			name: "link deleted on the controller reads as revoked",
			setup: func(s *ptStack) string {
				v, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
				links, err := s.store.Links(s.ctx, v.ID)
				if err != nil || len(links) != 1 {
					s.t.Fatalf("links: %v %v", links, err)
				}
				s.controller(http.MethodDelete, "/group_links/"+ptItoa(links[0].LinkID), "")
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"This pass has been revoked and no longer opens doors"},
		},
		{
			name: "ended",
			setup: func(s *ptStack) string {
				_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now().Add(-5*time.Hour)))
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"Your access has ended. Thank you for visiting."},
		},
		{
			name: "an offline door and a locked-down door are greyed out",
			setup: func(s *ptStack) string {
				_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
				s.controller(http.MethodPatch, "/locks/1", `{"lock":{"online":false}}`)
				s.controller(http.MethodPost, "/locks/2/lock_down", "")
				return tok
			},
			wantStatus: http.StatusOK,
			wantText:   []string{"Your access is open until"},
			wantDoors:  []ptButton{{"Unlock Front door (offline)", false}, {"Unlock Lobby (locked down)", false}, {"Unlock Meeting room", true}},
			wantQR:     true,
		},
		{
			name:       "unknown pass",
			setup:      func(*ptStack) string { return strings.Repeat("x", 43) },
			wantStatus: http.StatusNotFound,
			wantText:   []string{"Pass not found", "This link is not valid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newPTStack(t, ptOptions{})
			tok := tt.setup(s)
			rec := s.get("/v/" + tok)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET /v/…: got status %d, want %d:\n%s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			ptCheckResponse(t, rec)
			page := rec.Body.String()
			got := ptText(page)
			for _, w := range tt.wantText {
				if !strings.Contains(got, w) {
					t.Errorf("page text lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notText {
				if strings.Contains(got, w) {
					t.Errorf("page text has %q:\n%s", w, got)
				}
			}
			if d := cmp.Diff(tt.wantDoors, ptButtons(page)); d != "" {
				t.Errorf("door buttons (-want +got):\n%s", d)
			}
			if hasQR := strings.Contains(page, `src="data:image/png;base64,`); hasQR != tt.wantQR {
				t.Errorf("reader QR shown: got %v, want %v", hasQR, tt.wantQR)
			}
		})
	}
}

func TestPassUnlockOutcomes(t *testing.T) {
	const (
		msgUnlocked = "Unlocked! Push the door now."
		msgNotYet   = "Your access has not started yet."
		msgEnded    = "Your access has ended."
		msgRevoked  = "This pass no longer opens doors: it has been revoked."
		msgNoLonger = "This pass no longer opens doors."
		msgOffline  = "This door is offline right now."
		msgLocked   = "This door is locked down."
		msgTooMany  = "Too many attempts."
		msgWrong    = "This pass does not open this door."
		msgUnknown  = "This pass does not exist."
		msgDown     = "The door system is not reachable right now."
		msgSettling = "Your access is being set up."
	)
	tests := []struct {
		name string
		// setup makes the visit, changes the world, and returns the pass
		// token and the door to unlock.
		setup      func(s *ptStack) (string, int64)
		wantStatus int
		wantMsg    string
	}{
		{"unlocked", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			return tok, ptFrontDoor
		}, http.StatusOK, msgUnlocked},
		{"not yet valid", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptInviteBody(s.t, ptBob, s.clock.Now().Add(2*time.Hour)))
			return tok, ptFrontDoor
		}, http.StatusForbidden, msgNotYet},
		{"ended at the controller", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			s.clock.Advance(4*time.Hour + time.Second)
			return tok, ptFrontDoor
		}, http.StatusForbidden, msgEnded},
		{"link revoked on the controller", func(s *ptStack) (string, int64) {
			v, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			links, err := s.store.Links(s.ctx, v.ID)
			if err != nil || len(links) != 1 {
				s.t.Fatalf("links: %v %v", links, err)
			}
			s.controller(http.MethodDelete, "/group_links/"+ptItoa(links[0].LinkID), "")
			return tok, ptFrontDoor
		}, http.StatusForbidden, msgRevoked},
		{"visit revoked", func(s *ptStack) (string, int64) {
			v, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			if _, err := s.svc.Revoke(s.ctx, v.ID); err != nil {
				s.t.Fatalf("revoke: %v", err)
			}
			s.resync(v.ID)
			return tok, ptFrontDoor
		}, http.StatusForbidden, msgNoLonger},
		{"door offline", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			s.controller(http.MethodPatch, "/locks/1", `{"lock":{"online":false}}`)
			return tok, ptFrontDoor
		}, http.StatusForbidden, msgOffline},
		{"door locked down", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			s.controller(http.MethodPost, "/locks/1/lock_down", "")
			return tok, ptFrontDoor
		}, http.StatusForbidden, msgLocked},
		{"too many attempts", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			// The controller allows a burst of 5 unlocks per link; the
			// test clock stands still, so no token refills.
			for i := range 5 {
				if rec := s.unlock(tok, ptFrontDoor, false); rec.Code != http.StatusOK {
					s.t.Fatalf("unlock %d: got %d %s, want 200", i, rec.Code, rec.Body.String())
				}
			}
			return tok, ptFrontDoor
		}, http.StatusTooManyRequests, msgTooMany},
		{"a door the pass does not open", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			return tok, ptWorkshop
		}, http.StatusForbidden, msgWrong},
		{"signed in, access not made yet", func(s *ptStack) (string, int64) {
			in, err := parseDelivery(ptSignInBody(s.t, ptJane, s.clock.Now()))
			if err != nil {
				s.t.Fatal(err)
			}
			res, err := s.svc.Ingest(s.ctx, in) // the sync has not run
			if err != nil {
				s.t.Fatal(err)
			}
			v, err := s.store.Visit(s.ctx, res.VisitID)
			if err != nil {
				s.t.Fatal(err)
			}
			return s.svc.PassToken(v), ptFrontDoor
		}, http.StatusConflict, msgSettling},
		{"unknown pass", func(*ptStack) (string, int64) {
			return strings.Repeat("y", 43), ptFrontDoor
		}, http.StatusNotFound, msgUnknown},
		{"controller unreachable", func(s *ptStack) (string, int64) {
			_, tok := s.apply(ptSignInBody(s.t, ptJane, s.clock.Now()))
			s.ctrl.Close()
			return tok, ptFrontDoor
		}, http.StatusServiceUnavailable, msgDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newPTStack(t, ptOptions{})
			tok, lock := tt.setup(s)

			rec := s.unlock(tok, lock, false)
			var got struct{ Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("JSON unlock: %v (%s)", err, rec.Body.String())
			}
			if rec.Code != tt.wantStatus || !strings.HasPrefix(got.Message, tt.wantMsg) {
				t.Errorf("JSON unlock: got %d %q, want %d %q…", rec.Code, got.Message, tt.wantStatus, tt.wantMsg)
			}
			if (tt.wantStatus == http.StatusTooManyRequests || tt.wantStatus == http.StatusConflict) && rec.Header().Get("Retry-After") == "" {
				t.Errorf("%d without Retry-After", tt.wantStatus)
			}

			// Without JavaScript the form post answers with the page and
			// the same outcome.
			rec = s.unlock(tok, lock, true)
			if rec.Code != tt.wantStatus {
				t.Errorf("form unlock: got status %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("form unlock: got Content-Type %q, want text/html", ct)
			}
			ptCheckResponse(t, rec)
			if page := ptText(rec.Body.String()); tt.wantStatus != http.StatusNotFound && !strings.Contains(page, tt.wantMsg) {
				t.Errorf("form unlock: page lacks %q:\n%s", tt.wantMsg, page)
			}
		})
	}
}

// TestPassUnlockAudit shows that an unlock from the pass reaches the
// controller as the guest: the audit event names the guest's link.
func TestPassUnlockAudit(t *testing.T) {
	s := newPTStack(t, ptOptions{})
	_, tok := s.apply(ptSignInBody(t, ptJane, s.clock.Now()))
	if rec := s.unlock(tok, ptFrontDoor, false); rec.Code != http.StatusOK {
		t.Fatalf("unlock: got %d %s", rec.Code, rec.Body.String())
	}
	evs := s.unlockEvents()
	if len(evs) == 0 {
		t.Fatal("no lock.unlock event")
	}
	e := evs[0]
	if !e.Success || e.ActorName == nil || *e.ActorName != ptJane.linkName() || e.ObjectID == nil || *e.ObjectID != ptFrontDoor {
		t.Errorf("unlock event: got %+v (actor %v), want a success on lock %d by %q", e, ptDeref(e.ActorName), ptFrontDoor, ptJane.linkName())
	}
}

func ptDeref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestPassTokenStorage shows the pass token's design: 256 bits, URL-safe,
// and only its SHA-256 is stored.
func TestPassTokenStorage(t *testing.T) {
	s := newPTStack(t, ptOptions{})
	v, tok := s.apply(ptSignInBody(t, ptJane, s.clock.Now()))
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		t.Fatalf("pass token %q: %d bytes (err %v), want 32 bytes of base64url", tok, len(raw), err)
	}
	sum := sha256.Sum256([]byte(tok))
	if v.PassHash != hex.EncodeToString(sum[:]) {
		t.Errorf("stored pass hash %q, want SHA-256 of the token", v.PassHash)
	}
	var rows []map[string]any
	if err := s.db.Table("visits").Find(&rows).Error; err != nil {
		t.Fatalf("read visits: %v", err)
	}
	dump, _ := json.Marshal(rows)
	if strings.Contains(string(dump), tok) {
		t.Error("the pass token is stored in the visits table")
	}
	// Using the pass logs nothing that gives it away.
	s.get("/v/" + tok)
	s.unlock(tok, ptFrontDoor, false)
	s.checkNoSecretsLogged(tok)
}

// keptKeys answers guest invites as real Kisi does: without the access
// key's secret or QR code, which Kisi sends to the guest itself.
type keptKeys struct{ *kisi.Client }

func (c keptKeys) InviteGuest(ctx context.Context, spec connector.GuestSpec) (connector.GuestGrant, error) {
	g, err := c.Client.InviteGuest(ctx, spec)
	g.Secret, g.QRToken, g.QRImagePNG = "", "", nil
	return g, err
}

// A guest whose access key the controller kept sees their doors, greyed
// out, with the reason (the door system sent them their key), and an
// unlock says the same; the page is never an empty list of doors.
func TestPassOfAGuestWhoseKeyTheControllerKept(t *testing.T) {
	s := newPTStack(t, ptOptions{credential: mappings.CredentialGuest,
		control: func(c *kisi.Client) connector.AccessControl { return keptKeys{c} }})
	_, tok := s.apply(ptSignInBody(t, ptJane, s.clock.Now()))
	rec := s.get("/v/" + tok)
	page := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(page, `id="key-note"`) || !strings.Contains(page, "sent to you separately by the door system") {
		t.Fatalf("pass page: %d, want 200 saying the door system sent the key:\n%s", rec.Code, page)
	}
	if !strings.Contains(page, fmt.Sprintf("/locks/%d/unlock", ptFrontDoor)) || strings.Count(page, "<button") != strings.Count(page, " disabled>") {
		t.Errorf("pass page: want the visit's doors listed, every button disabled:\n%s", page)
	}
	rec = s.unlock(tok, ptFrontDoor, false)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "use the door key the door system sent you") {
		t.Errorf("unlock: %d %s, want 403 naming the key the door system sent", rec.Code, rec.Body.String())
	}
}
