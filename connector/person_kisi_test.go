package connector_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/connector/kisi"
	"github.com/latchkey/latchkey/mappings"
)

// keptKeys wraps a Kisi client as real Kisi answers an invite: with the
// guest and the role assignment, and no access key secret or QR code
// (plugin-and-members.md B6; Kisi sends the key to the guest itself).
type keptKeys struct{ *kisi.Client }

func (c keptKeys) InviteGuest(ctx context.Context, spec connector.GuestSpec) (connector.GuestGrant, error) {
	g, err := c.Client.InviteGuest(ctx, spec)
	g.Secret, g.QRToken, g.QRImagePNG = "", "", nil
	return g, err
}

// On a controller that keeps a guest's access key to itself, the pass
// still lists the visit's doors and says the door system sent the key;
// an unlock through it is refused with that reason (never an empty page
// or "wrong door"); with delivery latchkey, which asks the controller to
// send nothing, the timeline says the guest holds no key.
func TestGuestKeyKeptByTheControllerIsSaid(t *testing.T) {
	for _, delivery := range []mappings.Delivery{mappings.DeliveryController, mappings.DeliveryLatchkey} {
		t.Run(string(delivery), func(t *testing.T) {
			e := newEnv(t, envOptions{realKisi: true, mapping: func(m *mappings.Mapping) {
				m.Credential, m.GroupIDs, m.Delivery = mappings.CredentialGuest, []int64{1, 2}, delivery
			}})
			e.svc = e.service(keptKeys{e.client})
			id := e.process(walkIn(t, start)).VisitID
			v := e.visit(id)
			if v.Status != connector.StatusActive || v.SyncedVersion != v.Version {
				t.Fatalf("visit %s synced %d/%d: %+v", v.Status, v.SyncedVersion, v.Version, e.timeline(id))
			}
			e.checkRoles("Guest", *v.ValidFrom, *v.ValidUntil)
			token := e.svc.PassToken(v)
			p, err := e.svc.PassView(e.ctx, token)
			if err != nil {
				t.Fatalf("pass view: %v", err)
			}
			var doors []int64
			for _, d := range p.Doors {
				doors = append(doors, d.LockID)
			}
			sort.Slice(doors, func(i, j int) bool { return doors[i] < doors[j] })
			if !p.KeyWithGuest || fmt.Sprint(doors) != "[1 2 3 4]" {
				t.Errorf("pass: key with guest %v, doors %v; want the key with the guest and doors [1 2 3 4]", p.KeyWithGuest, doors)
			}
			if err := e.svc.PassUnlock(e.ctx, token, 1); !errors.Is(err, connector.ErrKeyWithGuest) {
				t.Errorf("unlock through the pass: %v, want ErrKeyWithGuest", err)
			}
			said := ""
			for _, te := range e.timeline(id) {
				if strings.Contains(te.Message, "keeps guest") {
					said = te.Kind
				}
			}
			want := connector.KindLinkCreated
			if delivery == mappings.DeliveryLatchkey {
				want = connector.KindError
			}
			if said != want {
				t.Errorf("timeline entry on the kept key: kind %q, want %q: %+v", said, want, e.timeline(id))
			}
		})
	}
}

// lostLogin wraps a Kisi client: the first login creation reaches the
// controller, and its answer is lost (the sync is cut off after the
// controller made the login).
type lostLogin struct {
	*kisi.Client
	mu    sync.Mutex
	calls int
}

func (c *lostLogin) CreateLogin(ctx context.Context, email, name string) (connector.PersonLogin, error) {
	l, err := c.Client.CreateLogin(ctx, email, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls++; c.calls == 1 && err == nil {
		return connector.PersonLogin{}, errLost
	}
	return l, err
}

// A member's login made by a sync that was cut off before it recorded the
// answer leaves no orphan: the creation was recorded first, so the next
// sync finds the login by its name and deletes it before making the one
// the pass uses; the user (who was there before the visit, so is not
// deleted with it) holds no login of latchkey's after the sign-out.
func TestMemberLoginCutOffLeavesNoOrphan(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		t.Run(fmt.Sprintf("kisi=%v", realKisi), func(t *testing.T) {
			e := personEnv(t, mappings.CredentialMember, realKisi)
			var user struct {
				ID int64 `json:"id"`
			}
			e.admin(http.MethodPost, "/users", map[string]any{"user": map[string]any{"email": guestEmail, "name": "Jane Visitor"}}, http.StatusOK, &user)
			logins := func() []int64 {
				var ls []struct {
					ID int64 `json:"id"`
				}
				e.admin(http.MethodGet, "/logins?user_id="+strconv.FormatInt(user.ID, 10), nil, http.StatusOK, &ls)
				ids := make([]int64, len(ls))
				for i, l := range ls {
					ids[i] = l.ID
				}
				return ids
			}
			e.svc = e.service(&lostLogin{Client: e.client})
			id := e.ingest(e.svc, walkIn(t, start)).VisitID
			if _, err := e.svc.SyncVisit(e.ctx, id); err == nil {
				t.Fatal("the sync whose login answer was lost: no error")
			}
			if n := len(logins()); n != 1 {
				t.Fatalf("logins of user %d after the cut-off creation: %d, want the one it made", user.ID, n)
			}
			for n := 0; n < 5; n++ {
				if _, err := e.svc.SyncVisit(e.ctx, id); err == nil {
					break
				}
				e.clock.Advance(40 * time.Second) // past the settling time of a cut-off creation
			}
			v := e.visit(id)
			if v.SyncedVersion != v.Version {
				t.Fatalf("visit not synced after the cut-off login: %+v", e.timeline(id))
			}
			c, ok, err := e.svc.PersonCredentialOf(e.ctx, v)
			if err != nil || !ok {
				t.Fatalf("member credential: %v %v", ok, err)
			}
			if ls := logins(); len(ls) != 1 {
				t.Errorf("logins of user %d: %v, want only the pass's", user.ID, ls)
			}
			settled := false
			for _, te := range e.timeline(id) {
				settled = settled || strings.Contains(te.Message, "left by an interrupted creation, deleted")
			}
			if !settled {
				t.Errorf("timeline does not say the cut-off login was deleted: %+v", e.timeline(id))
			}
			e.clock.Set(*v.ValidFrom)
			if err := e.svc.PassUnlock(e.ctx, e.svc.PassToken(v), 1); err != nil || c.Secret == "" {
				t.Errorf("unlock through the pass: %v", err)
			}
			e.process(signOut(t, *v.ValidFrom, v.ValidFrom.Add(time.Minute)))
			if ls := logins(); len(ls) != 0 {
				t.Errorf("logins of user %d after sign-out: %v, want none", user.ID, ls)
			}
			e.admin(http.MethodGet, "/users/"+strconv.FormatInt(user.ID, 10), nil, http.StatusOK, nil)
		})
	}
}
