package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/fixtures"
	"github.com/latchkey/latchkey/internal/testenv"
)

// controllerProc is a `latchkey lockctl --demo` of its own: a second
// controller, reached over HTTP as a Kisi account would be.
type controllerProc struct {
	*proc
	Key string
}

// startController runs `latchkey lockctl --demo` on a port of the kernel's
// choosing, on a database of its own (PostgreSQL with TEST_DATABASE_URL,
// else SQLite in its own data dir), and waits until it is ready.
func startController(t *testing.T) *controllerProc {
	t.Helper()
	key := "ctl-" + randomHex(t, 16)
	dsn, _ := testenv.DSN(t)
	env := map[string]string{
		"LATCHKEY_ADMIN_API_KEY": key, "LATCHKEY_LOG_FORMAT": "json",
		"LATCHKEY_DATA_DIR": filepath.Join(t.TempDir(), "lockctl"), "LATCHKEY_SECRET_KEY": randomHex(t, 32),
	}
	if dsn != "" {
		env["DATABASE_URL"] = dsn
	}
	p := startProc(t, "lockctl", env, "lockctl", "--addr", "127.0.0.1:0", "--demo")
	ready := p.waitLog(t, "lockctl ready", 30*time.Second)
	addr, _ := ready["addr"].(string)
	if addr == "" {
		t.Fatalf("lockctl logged ready without its address: %v", ready)
	}
	p.URL = "http://" + addr
	return &controllerProc{proc: p, Key: key}
}

// kisi makes an admin request of the controller with Kisi's auth and
// decodes the answer into out (when not nil).
func (c *controllerProc) kisi(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	code, raw := doAuth(t, method, c.URL+path, "KISI-LOGIN "+c.Key, body)
	if code != want {
		t.Fatalf("%s %s on the controller: %d %s, want %d", method, path, code, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, raw, err)
		}
	}
}

// doAuth is do with an Authorization header of the caller's choosing.
func doAuth(t testing.TB, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// ctlRoleAssignment is what the test compares of a controller role
// assignment.
type ctlRoleAssignment struct {
	ID           int64      `json:"id"`
	RoleID       string     `json:"role_id"`
	AppliesToID  int64      `json:"applies_to_id"`
	AssigneeType string     `json:"assignee_type"`
	AssigneeID   int64      `json:"assignee_id"`
	ValidFrom    *time.Time `json:"valid_from"`
	ValidUntil   *time.Time `json:"valid_until"`
}

// roles lists the controller's group role assignments of one assignee.
func (c *controllerProc) roles(t testing.TB, typ string, id int64) []ctlRoleAssignment {
	t.Helper()
	var rs []ctlRoleAssignment
	c.kisi(t, http.MethodGet, fmt.Sprintf("/role_assignments?applies_to_type=Group&assignee_type=%s&assignee_id=%d&limit=250", typ, id), nil, http.StatusOK, &rs)
	sort.Slice(rs, func(i, j int) bool { return rs[i].AppliesToID < rs[j].AppliesToID })
	return rs
}

// personVisit is the admin API's view of a person visit, as far as this
// test reads it.
type personVisit struct {
	visit
	ValidFrom  *time.Time `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
	Person     *struct {
		Credential string `json:"credential"`
		PersonID   int64  `json:"person_id"`
		Roles      []struct {
			GroupID          int64     `json:"group_id"`
			RoleAssignmentID int64     `json:"role_assignment_id"`
			ValidFrom        time.Time `json:"valid_from"`
			ValidUntil       time.Time `json:"valid_until"`
		} `json:"roles"`
	} `json:"person"`
}

func getPersonVisit(t testing.TB, base, key string, id int64) personVisit {
	t.Helper()
	code, raw := do(t, http.MethodGet, fmt.Sprintf("%s/api/v1/visits/%d", base, id), key, nil)
	if code != http.StatusOK {
		t.Fatalf("GET visit %d: %d %s", id, code, raw)
	}
	var v personVisit
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("visit %s: %v", raw, err)
	}
	return v
}

// walkInAs is a walk-in on flow by a visitor of their own (entry id, name
// and email), signed in at in.
func walkInAs(t testing.TB, flow, entry, name, email string, in time.Time) []byte {
	return walkInBody(t, func(body map[string]any) {
		setFlow(flow)(body)
		pl := body["payload"].(map[string]any)
		pl["id"] = entry
		at := pl["attributes"].(map[string]any)
		at["full-name"], at["email"] = name, email
		at["signed-in-at"] = in.UTC().Format("2006-01-02 15:04:05") + " UTC"
	})
}

// signOutOf is the sign-out of a walk-in body.
func signOutOf(t testing.TB, signIn []byte, out time.Time) []byte {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(signIn, &body); err != nil {
		t.Fatal(err)
	}
	meta := body["meta"].(map[string]any)
	meta["event"] = "entry_sign_out"
	meta["job"].(map[string]any)["id"] = "job-out-" + randomHex(t, 6)
	at := body["payload"].(map[string]any)["attributes"].(map[string]any)
	at["signed-out-at"] = out.UTC().Format("2006-01-02 15:04:05") + " UTC"
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unlockAny tries every door of the controller through pass and returns
// the status of the first that opens, or of the last refusal.
func unlockAny(t testing.TB, pass string, locks []int64) (int, string) {
	t.Helper()
	code, raw := 0, []byte(nil)
	for _, l := range locks {
		if code, raw = do(t, http.MethodPost, fmt.Sprintf("%s/locks/%d/unlock", pass, l), "", nil); code == http.StatusOK {
			return code, string(raw)
		}
	}
	return code, string(raw)
}

// serve configured with LATCHKEY_CONTROLLER_KIND=kisi against a second
// lockctl (no updates in place, no idempotency keys: the real-Kisi path),
// on the test backends: a guest and a member visitor each get exactly one
// group_basic role assignment per mapped group, whose window is the
// visit's; their pass unlocks through the person's own credential; it is
// refused one second after valid_until; and a sign-out deletes the role
// assignments (and the guest) at once.
func TestPersonCredentialsThroughKisiKind(t *testing.T) {
	t.Parallel()
	ctl := startController(t)
	var groups []struct {
		ID int64 `json:"id"`
	}
	ctl.kisi(t, http.MethodGet, "/groups", nil, http.StatusOK, &groups)
	if len(groups) < 2 {
		t.Fatalf("demo controller groups: %+v, want two", groups)
	}
	gids := []int64{groups[0].ID, groups[1].ID}
	sort.Slice(gids, func(i, j int) bool { return gids[i] < gids[j] })
	for _, g := range gids {
		// App access: a member's login opens the group's doors.
		ctl.kisi(t, http.MethodPatch, fmt.Sprintf("/groups/%d", g), map[string]any{"group": map[string]any{"login_enabled": true}}, http.StatusNoContent, nil)
	}
	var locks []struct {
		ID int64 `json:"id"`
	}
	ctl.kisi(t, http.MethodGet, "/locks", nil, http.StatusOK, &locks)
	lockIDs := make([]int64, len(locks))
	for i, l := range locks {
		lockIDs[i] = l.ID
	}

	d := newDeployment(t, false)
	p := d.serve(t, "serve", map[string]string{
		"LATCHKEY_CONTROLLER_URL": ctl.URL, "LATCHKEY_CONTROLLER_API_KEY": ctl.Key, "LATCHKEY_CONTROLLER_KIND": "kisi",
	})
	for _, cred := range []string{"guest", "member"} {
		m := mappingBody("flow-"+cred, gids)
		m["credential"], m["duration_minutes"], m["guest_indicator"] = cred, 1, "Envoy Guest"
		createMapping(t, p.URL, d.AdminKey, m)
	}

	// Each kind: visitor "out" signs out within the window; visitor
	// "late" signed in 50 s ago, so the one-minute window ends within
	// seconds, and is used after it.
	type visitor struct {
		cred, typ, entry, email string
		in                      time.Time
		body                    []byte
		id                      int64
	}
	now := time.Now().UTC().Truncate(time.Second)
	var vs []*visitor
	for i, cred := range []string{"guest", "member"} {
		typ := map[string]string{"guest": "Guest", "member": "User"}[cred]
		for j, kind := range []string{"out", "late"} {
			in := now
			if kind == "late" {
				in = now.Add(-50 * time.Second)
			}
			v := &visitor{cred: cred, typ: typ, entry: fmt.Sprintf("9%d%d000", i, j), email: kind + "-" + cred + "@example.com", in: in}
			v.body = walkInAs(t, "flow-"+cred, v.entry, "Ada "+kind+" "+cred, v.email, in)
			v.id = signIn(t, p.URL, d.EnvoySecret, v.body).VisitID
			vs = append(vs, v)
		}
	}
	persons := map[int64]int64{}
	var lastUntil time.Time
	for _, v := range vs {
		pv := getPersonVisit(t, p.URL, d.AdminKey, v.id)
		deadline := time.Now().Add(20 * time.Second)
		for !pv.Synced || pv.Person == nil || len(pv.Person.Roles) != len(gids) {
			if time.Now().After(deadline) {
				t.Fatalf("%s visit %d not synced with a role per group within 20 s: %+v", v.cred, v.id, pv)
			}
			time.Sleep(50 * time.Millisecond)
			pv = getPersonVisit(t, p.URL, d.AdminKey, v.id)
		}
		if pv.Status != "active" || pv.ValidFrom == nil || pv.ValidUntil == nil || !pv.ValidFrom.Equal(v.in) || !pv.ValidUntil.Equal(v.in.Add(time.Minute)) {
			t.Fatalf("%s visit %d: %s %v – %v, want active from %v for a minute", v.cred, v.id, pv.Status, pv.ValidFrom, pv.ValidUntil, v.in)
		}
		if pv.Person.Credential != v.cred || len(pv.Links) != 0 {
			t.Errorf("%s visit %d: person %+v, links %+v; want credential %s and no links", v.cred, v.id, pv.Person, pv.Links, v.cred)
		}
		persons[v.id] = pv.Person.PersonID
		rs := ctl.roles(t, v.typ, pv.Person.PersonID)
		if len(rs) != len(gids) {
			t.Fatalf("%s visit %d: controller role assignments %+v, want one on each of groups %v", v.cred, v.id, rs, gids)
		}
		for i, r := range rs {
			if r.AppliesToID != gids[i] || r.RoleID != "group_basic" || r.ValidFrom == nil || r.ValidUntil == nil ||
				!r.ValidFrom.Equal(*pv.ValidFrom) || !r.ValidUntil.Equal(*pv.ValidUntil) {
				t.Errorf("%s visit %d: role assignment %+v, want group_basic on group %d valid %v – %v", v.cred, v.id, r, gids[i], pv.ValidFrom, pv.ValidUntil)
			}
			if got := pv.Person.Roles[i]; got.GroupID != r.AppliesToID || got.RoleAssignmentID != r.ID || !got.ValidFrom.Equal(*r.ValidFrom) || !got.ValidUntil.Equal(*r.ValidUntil) {
				t.Errorf("%s visit %d: the API's role %+v, the controller's %+v", v.cred, v.id, got, r)
			}
		}
		var person struct {
			Name string `json:"name"`
		}
		path := map[string]string{"Guest": "/guests/", "User": "/users/"}[v.typ]
		ctl.kisi(t, http.MethodGet, fmt.Sprintf("%s%d", path, pv.Person.PersonID), nil, http.StatusOK, &person)
		if !strings.HasSuffix(person.Name, " (Envoy Guest)") {
			t.Errorf("%s %d on the controller is named %q, want the guest indicator", v.cred, pv.Person.PersonID, person.Name)
		}
		if code, raw := unlockAny(t, pv.PassURL, lockIDs); code != http.StatusOK {
			t.Errorf("%s visit %d: no door opened through the pass in the window: %d %s", v.cred, v.id, code, raw)
		}
		if pv.ValidUntil.After(lastUntil) {
			lastUntil = *pv.ValidUntil
		}
	}
	// Sign-out deletes the role assignments and the guest at once.
	for _, v := range vs {
		if !strings.HasPrefix(v.email, "out-") {
			continue
		}
		code, raw := postWebhook(t, p.URL, signOutOf(t, v.body, time.Now()), d.EnvoySecret)
		if code != http.StatusOK && code != http.StatusAccepted {
			t.Fatalf("sign-out of visit %d: %d %s", v.id, code, raw)
		}
		pv := waitPersonVisit(t, p.URL, d.AdminKey, v.id, "revoked and synced", func(pv personVisit) bool { return pv.Status == "revoked" && pv.Synced })
		if rs := ctl.roles(t, v.typ, persons[v.id]); len(rs) != 0 {
			t.Errorf("%s visit %d: role assignments after sign-out: %+v, want none", v.cred, v.id, rs)
		}
		if v.typ == "Guest" {
			ctl.kisi(t, http.MethodGet, fmt.Sprintf("/guests/%d", persons[v.id]), nil, http.StatusNotFound, nil)
		}
		if pv.Person != nil && len(pv.Person.Roles) != 0 {
			t.Errorf("%s visit %d: the API still shows roles after sign-out: %+v", v.cred, v.id, pv.Person.Roles)
		}
		if code, raw := unlockAny(t, pv.PassURL, lockIDs); code == http.StatusOK {
			t.Errorf("%s visit %d: a door opened after sign-out: %s", v.cred, v.id, raw)
		}
	}

	// One second after valid_until the pass opens nothing, though the
	// visit's role assignments may still be on the controller.
	time.Sleep(time.Until(lastUntil.Add(time.Second)))
	for _, v := range vs {
		if !strings.HasPrefix(v.email, "late-") {
			continue
		}
		pv := getPersonVisit(t, p.URL, d.AdminKey, v.id)
		if code, raw := unlockAny(t, pv.PassURL, lockIDs); code != http.StatusForbidden {
			t.Errorf("%s visit %d: unlock one second after the window: %d %s, want 403", v.cred, v.id, code, raw)
		}
	}
}

// waitPersonVisit polls visit id until ok holds.
func waitPersonVisit(t testing.TB, base, key string, id int64, what string, ok func(personVisit) bool) personVisit {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := getPersonVisit(t, base, key, id)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("visit %d not %s within 20 s: %+v", id, what, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inviteFor is the captured invite on flow for a visitor of their own,
// expected at arrival, with a fresh job id.
func inviteFor(t testing.TB, event, flow, invite, email string, arrival time.Time) []byte {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(fixtures.Envoy("envoy-plugin-event-invite_created.json"), &body); err != nil {
		t.Fatal(err)
	}
	setFlow(flow)(body)
	meta := body["meta"].(map[string]any)
	meta["event"] = event
	meta["job"].(map[string]any)["id"] = "job-" + randomHex(t, 6)
	pl := body["payload"].(map[string]any)
	pl["id"] = invite
	at := pl["attributes"].(map[string]any)
	at["email"], at["expected-arrival-time"] = email, arrival.UTC().Format(time.RFC3339)
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// outboxCount is how many captured messages went to addr.
func outboxCount(t testing.TB, base, key, addr string) int {
	t.Helper()
	code, raw := do(t, http.MethodGet, base+"/api/v1/outbox", key, nil)
	if code != http.StatusOK {
		t.Fatalf("GET outbox: %d %s", code, raw)
	}
	var msgs []struct {
		To string `json:"to"`
	}
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatalf("outbox %s: %v", raw, err)
	}
	n := 0
	for _, m := range msgs {
		if strings.Contains(m.To, addr) {
			n++
		}
	}
	return n
}

// Links through LATCHKEY_CONTROLLER_KIND=kisi against a second lockctl,
// which is driven as real Kisi (no PATCH of links): a window change makes
// the new link before it deletes the old one, and the guest gets one email
// for the invite and one for the new window, not one per link made.
func TestLinksThroughKisiKind(t *testing.T) {
	t.Parallel()
	ctl := startController(t)
	var groups []struct {
		ID int64 `json:"id"`
	}
	ctl.kisi(t, http.MethodGet, "/groups", nil, http.StatusOK, &groups)
	if len(groups) == 0 {
		t.Fatal("the demo controller has no groups")
	}
	d := newDeployment(t, false)
	p := d.serve(t, "serve", map[string]string{
		"LATCHKEY_CONTROLLER_URL": ctl.URL, "LATCHKEY_CONTROLLER_API_KEY": ctl.Key, "LATCHKEY_CONTROLLER_KIND": "kisi",
	})
	createMapping(t, p.URL, d.AdminKey, mappingBody("flow-link", []int64{groups[0].ID}))
	const email = "linked@example.com"
	arrive := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Second)
	res := signIn(t, p.URL, d.EnvoySecret, inviteFor(t, "invite_created", "flow-link", "77001", email, arrive))
	first := waitVisit(t, p.URL, d.AdminKey, res.VisitID, 20*time.Second, "synced with one link", syncedWithOneLink)
	waitOutbox(t, p.URL, d.AdminKey, email, 20*time.Second)

	arrive2 := arrive.Add(time.Hour)
	signIn(t, p.URL, d.EnvoySecret, inviteFor(t, "invite_updated", "flow-link", "77001", email, arrive2))
	second := waitVisit(t, p.URL, d.AdminKey, res.VisitID, 20*time.Second, "synced with a new link", func(v visit) bool {
		return syncedWithOneLink(v) && v.Links[0].LinkID != first.Links[0].LinkID
	})
	var events []struct {
		ID       int64  `json:"id"`
		Type     string `json:"type"`
		ObjectID *int64 `json:"object_id"`
	}
	ctl.kisi(t, http.MethodGet, "/events?type=group_link.create,group_link.destroy&limit=100", nil, http.StatusOK, &events)
	made, broke := int64(0), int64(0)
	for _, e := range events {
		switch {
		case e.ObjectID == nil:
		case e.Type == "group_link.create" && *e.ObjectID == second.Links[0].LinkID:
			made = e.ID
		case e.Type == "group_link.destroy" && *e.ObjectID == first.Links[0].LinkID:
			broke = e.ID
		}
	}
	if made == 0 || broke == 0 || made > broke {
		t.Errorf("controller events %+v: new link %d made at event %d, old link %d deleted at event %d; want made first",
			events, second.Links[0].LinkID, made, first.Links[0].LinkID, broke)
	}
	// The invite's email and the new window's, and no more once the
	// queue is quiet.
	deadline := time.Now().Add(20 * time.Second)
	for outboxCount(t, p.URL, d.AdminKey, email) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := outboxCount(t, p.URL, d.AdminKey, email); n != 2 {
		t.Errorf("emails to %s: %d, want 2 (the access, then the new window)", email, n)
	}
}
