package connector_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// stallingControl is the bundled controller with link creation held until
// release is closed or the caller gives up.
type stallingControl struct {
	connector.AccessControl
	entered chan struct{}
	release chan struct{}
}

func (c *stallingControl) CreateLink(ctx context.Context, spec connector.LinkSpec) (connector.Link, error) {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	select {
	case <-c.release:
		return c.AccessControl.CreateLink(ctx, spec)
	case <-ctx.Done():
		return connector.Link{}, ctx.Err()
	}
}

// syncUntilStalled starts svc's sync of visit id and waits until it is held
// inside ctl's link creation; the channel gets the sync's outcome.
func syncUntilStalled(t *testing.T, e *env, svc *connector.Service, ctl *stallingControl, id int64, results ...chan<- connector.SyncResult) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		r, err := svc.SyncVisit(e.ctx, id)
		for _, c := range results {
			c <- r
		}
		done <- err
	}()
	select {
	case <-ctl.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync did not reach the controller")
	}
	return done
}

// TestSyncLeaseExpiresWhenHolderDies: a visit held by a reconciler that
// died is busy until the lease runs out, then free.
func TestSyncLeaseExpiresWhenHolderDies(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.ingest(e.svc, walkIn(t, start)).VisitID
	until := start.Add(15 * time.Second)
	if err := e.db.Exec("UPDATE visits SET sync_lease_until = ?, sync_lease_owner = 'dead' WHERE id = ?", until, id).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SyncVisit(e.ctx, id); !errors.Is(err, connector.ErrBusy) {
		t.Fatalf("sync while a dead reconciler's lease runs: err = %v, want ErrBusy", err)
	}
	e.clock.Advance(16 * time.Second)
	e.sync(id)
	if links := e.liveLinks(id); len(links) != 1 {
		t.Fatalf("after the lease ran out: %d live links, want 1", len(links))
	}
}

// TestSyncLeaseRenewedWhileWorking: a sync that outlasts its lease keeps the
// visit (a second reconciler is turned away), and one whose lease was taken
// from it stops rather than work beside the new holder.
func TestSyncLeaseRenewedWhileWorking(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctl := &stallingControl{AccessControl: e.client, entered: make(chan struct{}, 1), release: make(chan struct{})}
	const lease = 300 * time.Millisecond
	svc := e.serviceWith(ctl, nil,
		// The cancelled creation never reached the controller; no need to
		// wait for it to settle.
		connector.Options{Now: time.Now, SyncLease: lease, CreateSettle: time.Nanosecond})
	id := e.ingest(svc, walkIn(t, time.Now())).VisitID

	first := syncUntilStalled(t, e, svc, ctl, id)
	time.Sleep(3 * lease)
	if _, err := svc.SyncVisit(e.ctx, id); !errors.Is(err, connector.ErrBusy) {
		t.Fatalf("second sync after three leases' time: err = %v, want ErrBusy (the first renews its lease)", err)
	}

	if err := e.db.Exec("UPDATE visits SET sync_lease_owner = 'thief' WHERE id = ?", id).Error; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-first:
		if err == nil {
			t.Fatal("the sync whose lease was taken finished without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sync whose lease was taken kept working")
	}
	if links := e.liveLinks(id); len(links) != 0 {
		t.Fatalf("the stopped sync recorded %d links", len(links))
	}

	close(ctl.release)
	if err := e.db.Exec("UPDATE visits SET sync_lease_until = NULL, sync_lease_owner = '' WHERE id = ?", id).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SyncVisit(e.ctx, id); err != nil {
		t.Fatalf("sync once the visit is free: %v", err)
	}
	if links := e.liveLinks(id); len(links) != 1 {
		t.Fatalf("%d live links, want 1", len(links))
	}
}

// staleListing is the bundled controller whose full listing of links
// misses the links created after the listing began (a long paged listing);
// a listing of one group is current.
type staleListing struct {
	connector.AccessControl
	listed []connector.Link
}

func (c *staleListing) ListLinks(ctx context.Context, groups ...int64) ([]connector.Link, error) {
	if len(groups) == 0 {
		return c.listed, nil
	}
	return c.AccessControl.ListLinks(ctx, groups...)
}

// TestRepairDriftRacingASync: a link a sync created while the drift repair
// was listing is not taken for missing (no second link, no orphan), and a
// visit a sync holds is left alone.
func TestRepairDriftRacingASync(t *testing.T) {
	e := newEnv(t, envOptions{})
	listing, err := e.client.ListLinks(e.ctx) // taken before the visit's link exists
	if err != nil {
		t.Fatal(err)
	}
	id := e.process(walkIn(t, start)).VisitID
	link := e.onlyLink(id)

	svc := e.service(&staleListing{AccessControl: e.client, listed: listing})
	rep, err := svc.RepairDrift(e.ctx)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if rep.Created != 0 || rep.Deleted != 0 {
		t.Errorf("drift report %+v: want nothing created or deleted", rep)
	}
	if got := e.onlyLink(id); got.LinkID != link.LinkID {
		t.Errorf("the visit's link is %d after the repair, want still %d", got.LinkID, link.LinkID)
	}
	if got := e.controllerLinks(); len(got) != 1 || got[0].ID != link.LinkID {
		t.Errorf("controller links after the repair: %+v, want only link %d", got, link.LinkID)
	}

	// While a sync holds the visit, the repair leaves it for next time.
	e.admin(http.MethodDelete, "/group_links/"+strconv.FormatInt(link.LinkID, 10), nil, http.StatusNoContent, nil)
	if err := e.db.Exec("UPDATE visits SET sync_lease_until = ?, sync_lease_owner = 'busy' WHERE id = ?", start.Add(time.Minute), id).Error; err != nil {
		t.Fatal(err)
	}
	if rep, err := e.svc.RepairDrift(e.ctx); err != nil || rep.Created != 0 {
		t.Fatalf("repair of a held visit: %+v, %v; want nothing done and no error", rep, err)
	}
	e.clock.Advance(2 * time.Minute)
	if rep, err := e.svc.RepairDrift(e.ctx); err != nil || rep.Created != 1 {
		t.Fatalf("repair once the visit is free: %+v, %v; want the link created again", rep, err)
	}
}

// lostAnswer is the bundled controller whose answers to link creation are
// lost: the link is made, the caller hears an error.
type lostAnswer struct{ connector.AccessControl }

func (c lostAnswer) CreateLink(ctx context.Context, spec connector.LinkSpec) (connector.Link, error) {
	if _, err := c.AccessControl.CreateLink(ctx, spec); err != nil {
		return connector.Link{}, err
	}
	return connector.Link{}, errors.New("read tcp: connection reset by peer")
}

// TestInterruptedCreationLeavesNoOrphan: a link creation whose answer was
// lost made a link nobody recorded; the next sync deletes it before making
// the one it records, and a sign-out before that deletes it too.
func TestInterruptedCreationLeavesNoOrphan(t *testing.T) {
	for _, signOutFirst := range []bool{false, true} {
		e := newEnv(t, envOptions{})
		id := e.ingest(e.svc, walkIn(t, start)).VisitID
		if _, err := e.service(lostAnswer{e.client}).SyncVisit(e.ctx, id); err == nil {
			t.Fatal("sync whose creation answer was lost: got nil, want an error")
		}
		if n := len(e.controllerLinks()); n != 1 {
			t.Fatalf("controller holds %d links after the lost answer, want the 1 unrecorded", n)
		}
		if signOutFirst {
			e.ingest(e.svc, signOut(t, start, start.Add(time.Minute)))
			e.clock.Advance(2 * time.Minute)
		}
		e.sync(id)
		got := e.controllerLinks()
		if signOutFirst {
			if len(got) != 0 {
				t.Errorf("signed out: controller links %+v, want none", got)
			}
			continue
		}
		if len(got) != 1 || got[0].ID != e.onlyLink(id).LinkID {
			t.Errorf("controller links %+v, want only the visit's recorded link %d", got, e.onlyLink(id).LinkID)
		}
	}
}

// failedCreate is the bundled controller whose link creation fails with err
// and makes nothing.
type failedCreate struct {
	connector.AccessControl
	err error
}

func (c failedCreate) CreateLink(context.Context, connector.LinkSpec) (connector.Link, error) {
	return connector.Link{}, c.err
}

// TestCutOffCreationSettles: after a creation whose outcome is unknown and
// whose link has not shown up, the next sync waits for it to settle rather
// than risk a second link; one that certainly made nothing is retried at once.
func TestCutOffCreationSettles(t *testing.T) {
	timeout := latchkey.Wrap(latchkey.Unavailable, "controller unreachable", context.DeadlineExceeded)
	refused := fmt.Errorf("%w (%w)", latchkey.Wrap(latchkey.Unavailable, "controller unreachable", errors.New("connection refused")), connector.ErrNotSent)
	for _, tc := range []struct {
		name  string
		err   error
		waits bool
	}{
		{"timed out", timeout, true},
		{"never sent", refused, false},
		{"refused by the controller", latchkey.Errorf(latchkey.Invalid, "group does not exist"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			id := e.ingest(e.svc, walkIn(t, start)).VisitID
			if _, err := e.service(failedCreate{e.client, tc.err}).SyncVisit(e.ctx, id); err == nil {
				t.Fatal("sync with a failing creation: got nil, want an error")
			}
			_, err := e.svc.SyncVisit(e.ctx, id)
			if tc.waits {
				if latchkey.KindOf(err) != latchkey.Unavailable {
					t.Fatalf("sync right after a timed-out creation: err = %v, want Unavailable (wait for it to settle)", err)
				}
				e.clock.Advance(40 * time.Second)
				_, err = e.svc.SyncVisit(e.ctx, id)
			}
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if got := e.controllerLinks(); len(got) != 1 || got[0].ID != e.onlyLink(id).LinkID {
				t.Errorf("controller links %+v, want only the visit's recorded link", got)
			}
		})
	}
}

// TestStalledReconcilerCannotOverwrite: a reconciler that stalled inside a
// link creation past its lease, while another took the visit over and
// made the link, neither overwrites that record nor leaves its own link
// behind.
func TestStalledReconcilerCannotOverwrite(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctl := &stallingControl{AccessControl: e.client, entered: make(chan struct{}, 1), release: make(chan struct{})}
	opts := connector.Options{Now: time.Now, SyncLease: time.Hour, CreateSettle: time.Nanosecond}
	stalled := e.serviceWith(ctl, nil, opts)
	other := e.serviceWith(e.client, nil, opts)
	id := e.ingest(other, walkIn(t, time.Now())).VisitID

	first := syncUntilStalled(t, e, stalled, ctl, id)
	// Its lease runs out while it stalls; another reconciler takes over.
	if err := e.db.Exec("UPDATE visits SET sync_lease_until = ? WHERE id = ?", time.Now().Add(-time.Minute).UTC(), id).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := other.SyncVisit(e.ctx, id); err != nil {
		t.Fatalf("sync by the reconciler that took over: %v", err)
	}
	recorded := e.onlyLink(id).LinkID

	close(ctl.release)
	select {
	case err := <-first:
		if err == nil {
			t.Fatal("the stalled sync finished without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled sync did not finish")
	}
	if got := e.onlyLink(id).LinkID; got != recorded {
		t.Errorf("the visit's link is %d, want still %d (recorded by the reconciler that took over)", got, recorded)
	}
	if got := e.controllerLinks(); len(got) != 1 || got[0].ID != recorded {
		t.Errorf("controller links %+v, want only link %d", got, recorded)
	}
}

// TestSyncGivesItsLeaseUp: the statement that marks a visit synced also
// frees it, and a sync whose visit changed meanwhile (so it marks nothing)
// frees it on its way out; either way the next sync may start at once.
func TestSyncGivesItsLeaseUp(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctl := &stallingControl{AccessControl: e.client, entered: make(chan struct{}, 1), release: make(chan struct{})}
	svc := e.serviceWith(ctl, nil, connector.Options{Now: time.Now, SyncLease: time.Hour, CreateSettle: time.Nanosecond})
	id := e.ingest(svc, walkIn(t, time.Now())).VisitID
	lease := func() (owner string, held bool) {
		var row struct {
			SyncLeaseOwner string
			SyncLeaseUntil *time.Time
		}
		if err := e.db.Raw("SELECT sync_lease_owner, sync_lease_until FROM visits WHERE id = ?", id).Scan(&row).Error; err != nil {
			t.Fatal(err)
		}
		return row.SyncLeaseOwner, row.SyncLeaseUntil != nil
	}

	// The visit changes while its sync waits on the controller.
	first := make(chan connector.SyncResult, 1)
	stalled := syncUntilStalled(t, e, svc, ctl, id, first)
	if err := e.db.Exec("UPDATE visits SET version = version + 1 WHERE id = ?", id).Error; err != nil {
		t.Fatal(err)
	}
	close(ctl.release)
	if err := <-stalled; err != nil {
		t.Fatalf("sync: %v", err)
	}
	if r := <-first; r.EmailKind != "" {
		t.Errorf("a sync that marked nothing asks for an email (%s); the newer version's sync owes it", r.EmailKind)
	}
	if owner, held := lease(); owner != "" || held {
		t.Fatalf("after a sync of an outdated version: lease owner %q, held %v; want it freed", owner, held)
	}
	if v := e.visit(id); v.SyncedVersion == v.Version {
		t.Fatalf("synced version %d marked although the visit changed to %d", v.SyncedVersion, v.Version)
	}

	if _, err := svc.SyncVisit(e.ctx, id); err != nil {
		t.Fatalf("the next sync: %v", err)
	}
	if owner, held := lease(); owner != "" || held {
		t.Fatalf("after a sync: lease owner %q, held %v; want it freed", owner, held)
	}
	if v := e.visit(id); v.SyncedVersion != v.Version {
		t.Fatalf("synced version %d, want %d", v.SyncedVersion, v.Version)
	}
}

// TestFinishAfterTheLeaseWasTaken: a sync whose lease ran out and was
// taken by another reconciler before its last statement marks nothing and
// leaves the other's lease as it is.
func TestFinishAfterTheLeaseWasTaken(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.ingest(e.svc, walkIn(t, start)).VisitID
	now := time.Now().UTC()
	lease, err := e.svc.Store().Acquire(e.ctx, id, "stalled", now, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Hour).Truncate(time.Second)
	if err := e.db.Exec("UPDATE visits SET sync_lease_owner = 'other', sync_lease_until = ? WHERE id = ?", until, id).Error; err != nil {
		t.Fatal(err)
	}
	finished, err := lease.FinishSync(e.ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if finished {
		t.Error("the finish reports the visit synced by a lease it no longer held")
	}
	if err := lease.Release(e.ctx); err != nil {
		t.Fatal(err)
	}
	var row struct {
		SyncLeaseOwner string
		SyncLeaseUntil *time.Time
		SyncedVersion  int64
	}
	if err := e.db.Raw("SELECT sync_lease_owner, sync_lease_until, synced_version FROM visits WHERE id = ?", id).Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	if row.SyncedVersion != 0 {
		t.Errorf("synced version %d marked by a lease that was taken over", row.SyncedVersion)
	}
	if row.SyncLeaseOwner != "other" || row.SyncLeaseUntil == nil || !row.SyncLeaseUntil.Equal(until) {
		t.Errorf("lease %q until %v, want the other reconciler's, until %v", row.SyncLeaseOwner, row.SyncLeaseUntil, until)
	}
}
