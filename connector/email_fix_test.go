package connector_test

import (
	"testing"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// TestCorrectEmail: an email to a malformed address fails for good; the
// visit is then flagged (EmailFailures, the EmailFailed filter), Resend is
// refused rather than failing the same way again, and a corrected address
// gets the email, survives later events, and clears the flag.
func TestCorrectEmail(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.ingest(e.svc, walkIn(t, start, attr("email", "ada.example.com")))
	id := res.VisitID
	sr, err := e.svc.SyncVisit(e.ctx, id)
	if err != nil || sr.EmailKind == "" {
		t.Fatalf("sync: %+v %v", sr, err)
	}
	err = e.svc.SendVisitEmail(e.ctx, id, sr.EmailKind, sr.WindowKey)
	if latchkey.KindOf(err) != latchkey.Invalid {
		t.Fatalf("send to a malformed address: %v, want Invalid", err)
	}
	if err := e.svc.EmailFailed(e.ctx, id, sr.WindowKey, latchkey.Message(err)); err != nil {
		t.Fatal(err)
	}
	flagged := func() bool {
		t.Helper()
		fs, err := e.store.EmailFailures(e.ctx, []int64{id})
		if err != nil {
			t.Fatal(err)
		}
		_, n, err := e.store.List(e.ctx, connector.VisitFilter{EmailFailed: true})
		if err != nil {
			t.Fatal(err)
		}
		if (fs[id] != "") != (n == 1) {
			t.Fatalf("flag %q disagrees with the filter's count %d", fs[id], n)
		}
		return n == 1
	}
	if !flagged() {
		t.Fatal("a visit whose email failed for good is not flagged")
	}
	if _, err := e.svc.Resend(e.ctx, id); latchkey.KindOf(err) != latchkey.Invalid {
		t.Errorf("resend to the malformed address: %v, want Invalid", err)
	}
	for _, bad := range []string{"", "x", "Ada <ada@example.com>", "a@b.c, d@e.f"} {
		if _, err := e.svc.CorrectEmail(e.ctx, id, bad); latchkey.KindOf(err) != latchkey.Invalid {
			t.Errorf("correct to %q: %v, want Invalid", bad, err)
		}
	}
	if _, err := e.svc.CorrectEmail(e.ctx, id, "ada@example.com"); err != nil {
		t.Fatalf("correct: %v", err)
	}
	if err := e.svc.SendVisitEmail(e.ctx, id, connector.EmailResend, e.queue.lastEmail(t)); err != nil {
		t.Fatalf("resend to the corrected address: %v", err)
	}
	if ms := e.mails(); len(ms) != 1 || ms[0].To != "ada@example.com" {
		t.Fatalf("mails: %+v, want one to ada@example.com", ms)
	}
	if flagged() {
		t.Error("still flagged after the email went out")
	}
	// A later event with the old address does not undo the correction.
	e.process(walkIn(t, start, attr("email", "ada.example.com"), jobID("again")))
	if v := e.visit(id); v.Email != "ada@example.com" {
		t.Errorf("after a later event the address is %q", v.Email)
	}
}

// TestResendRefusedForGood: a resend is refused when the last email to
// the same address was refused for good.
func TestResendRefusedForGood(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.process(walkIn(t, start)).VisitID
	v := e.visit(id)
	if err := e.store.AddTimeline(e.ctx, id, start, connector.KindEmailFailed, "email to "+v.Email+" refused for good: 550 no such user"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resend(e.ctx, id); latchkey.KindOf(err) != latchkey.Conflict {
		t.Errorf("resend after a refusal: %v, want Conflict", err)
	}
	if err := e.store.AddTimeline(e.ctx, id, start, connector.KindEmailFailed, "email to "+v.Email+" failed: connection refused"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resend(e.ctx, id); latchkey.KindOf(err) != latchkey.Conflict {
		t.Errorf("resend after a refusal then a transient failure: %v, want Conflict", err)
	}
}

// TestNames: the location and flow names events carried.
func TestNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.process(walkIn(t, start)).VisitID
	v := e.visit(id)
	n, err := e.store.Names(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.LocationName == "" || n.Locations[v.LocationID] != v.LocationName || n.Flows[v.LocationID+"/"+v.FlowID] != v.FlowName {
		t.Errorf("names %+v for visit at %s %q, flow %s %q", n, v.LocationID, v.LocationName, v.FlowID, v.FlowName)
	}
}
