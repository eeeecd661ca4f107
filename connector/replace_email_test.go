package connector_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// A link replaced behind the guest's pass (recreated by the drift repair,
// or replaced on a controller that cannot update in place) does not email
// the guest again: the pass URL they hold and their window are the same,
// and the pass page shows the new link's code. A changed window does.
func TestReplacementDoesNotEmailAgain(t *testing.T) {
	for _, realKisi := range []bool{false, true} {
		t.Run("kisi="+strconv.FormatBool(realKisi), func(t *testing.T) {
			e := newEnv(t, envOptions{realKisi: realKisi})
			arrive := start.Add(time.Hour)
			id := e.process(inviteEvent(t, "invite_created", arrive, "job-created")).VisitID
			old := e.onlyLink(id)
			e.admin(http.MethodDelete, "/group_links/"+strconv.FormatInt(old.LinkID, 10), nil, http.StatusNoContent, nil)
			rep, err := e.svc.RepairDrift(e.ctx)
			if err != nil {
				t.Fatalf("repair drift: %v", err)
			}
			if rep.Created != 1 || len(rep.Emails) != 0 {
				t.Errorf("drift report: %+v, want one link created and no email due", rep)
			}
			if cur := e.onlyLink(id); cur.LinkID == old.LinkID {
				t.Fatalf("link after the repair: still %d", cur.LinkID)
			}
			e.sync(id)
			e.checkSubjects(subjectAccess)

			// A changed window is news to the guest: one email.
			e.clock.Advance(10 * time.Minute)
			e.process(inviteEvent(t, "invite_updated", start.Add(3*time.Hour), "job-updated"))
			e.sync(id)
			e.checkSubjects(subjectAccess, subjectUpdated)
		})
	}
}
