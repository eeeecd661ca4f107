package connector_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

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
