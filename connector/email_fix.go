package connector

import (
	"context"
	"net/mail"
	"strings"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mappings"
)

// refusedForGood is how the timeline says an email was refused in a way
// that sending it again to the same address cannot mend (a malformed
// address, a recipient the mail server rejects).
const refusedForGood = "refused for good"

// resendWouldFail refuses a resend that would fail again for the same
// reason: the address is not one, or the last email to it was refused for
// good and nothing was sent since.
func resendWouldFail(ctx context.Context, tx *Store, v Visit) error {
	if _, err := parseEmail(v.Email); err != nil {
		return latchkey.Errorf(latchkey.Invalid, "the guest's address %q is not valid: correct it, and the email is sent to the new address", v.Email)
	}
	tl, err := tx.Timeline(ctx, v.ID)
	if err != nil {
		return err
	}
	prefix := "email to " + v.Email + " " + refusedForGood + ": "
	for i := len(tl) - 1; i >= 0; i-- {
		e := tl[i]
		if e.Kind == KindEmailSent {
			return nil
		}
		if e.Kind == KindEmailFailed && strings.HasPrefix(e.Message, prefix) {
			return latchkey.Errorf(latchkey.Conflict, "the last email to %s was refused (%s): sending it again would fail the same way; correct the guest's address",
				v.Email, strings.TrimPrefix(e.Message, prefix))
		}
	}
	return nil
}

// parseEmail returns addr when it is one plain email address.
func parseEmail(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" || len(addr) > MaxEmailLen {
		return "", latchkey.Errorf(latchkey.Invalid, "email must be an address of at most %d characters", MaxEmailLen)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return "", latchkey.Errorf(latchkey.Invalid, "email %q is not an address like guest@example.com", addr)
	}
	return addr, nil
}

// CorrectEmail sets the guest's email address of visit id as the front
// desk corrected it (later events of the visit do not change it back) and
// sends the pass email to it. The visit must still give access, its links
// be mailed by latchkey, and its credential not a member's (whose pass is
// the controller user's own login).
func (s *Service) CorrectEmail(ctx context.Context, id int64, email string) (Visit, error) {
	addr, err := parseEmail(email)
	if err != nil {
		return Visit{}, err
	}
	err = s.store.InTx(ctx, func(tx *Store) error {
		v, err := tx.Visit(ctx, id)
		if err != nil {
			return err
		}
		if !v.Status.WantsLinks() {
			return latchkey.Errorf(latchkey.Conflict, "visit %d is %s: there is no access to send", id, v.Status)
		}
		m, err := tx.Mapping(ctx, v.InstallID, v.LocationID, v.FlowID)
		if err != nil {
			return err
		}
		if m != nil && m.Delivery == mappings.DeliveryController {
			return latchkey.Errorf(latchkey.Conflict, "this flow's links are mailed by the controller, not by latchkey")
		}
		if m != nil && m.Credential == mappings.CredentialMember {
			// A member's pass is the login of the controller user found by
			// the address: sending it to another address would hand that
			// user's login to whoever owns it.
			return latchkey.Errorf(latchkey.Conflict, "this flow gives the controller user with the guest's address their access: correct the address in Envoy, where the visit comes from")
		}
		if err := tx.correctEmail(ctx, id, addr); err != nil {
			return err
		}
		return tx.AddTimeline(ctx, id, s.now(), KindAction, "guest email corrected at the front desk: "+v.Email+" → "+addr)
	})
	if err != nil {
		return Visit{}, err
	}
	return s.Resend(ctx, id)
}
