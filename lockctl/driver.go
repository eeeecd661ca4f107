package lockctl

import (
	"context"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
)

// Driver moves the relays behind the locks. Implementations are safe for
// concurrent use.
type Driver interface {
	// Unlock opens the lock for about d. requestID identifies the command
	// (lockctl passes the unlock event's UUID). It returns an Unavailable
	// error when the command could not be delivered; lockctl then answers
	// 503 and records a failed event, never a success.
	Unlock(ctx context.Context, lockID int64, d time.Duration, requestID string) error
	// Watch registers fn to receive the state changes the driver observes.
	// New calls it once; fn may be called from any goroutine.
	Watch(fn func(StateChange))
}

// StateChange is something a driver observed about one lock. Nil fields did
// not change.
type StateChange struct {
	LockID int64
	// Unlocked is the relay's new state; Until, when set with Unlocked
	// true, is when it will lock again.
	Unlocked *bool
	Until    *time.Time
	// Online is the lock's new connectivity.
	Online *bool
	At     time.Time
}

// SimDriver is the default driver: an in-memory relay per lock that stays
// unlocked for the requested duration and then locks again, reporting each
// change. It is safe for concurrent use.
type SimDriver struct {
	now func() time.Time

	mu     sync.Mutex
	watch  func(StateChange)
	timers map[int64]*time.Timer
	jammed map[int64]bool
	closed bool

	queue    []StateChange
	draining bool
	wg       sync.WaitGroup
}

var _ Driver = (*SimDriver)(nil)

// NewSimDriver returns a simulated driver. now may be nil (time.Now).
func NewSimDriver(now func() time.Time) *SimDriver {
	if now == nil {
		now = time.Now
	}
	return &SimDriver{now: now, timers: map[int64]*time.Timer{}, jammed: map[int64]bool{}}
}

// Watch implements Driver.
func (d *SimDriver) Watch(fn func(StateChange)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.watch = fn
}

// Jam makes the simulated relay of lockID fail every Unlock (jammed true)
// or work again (false), to rehearse driver failures.
func (d *SimDriver) Jam(lockID int64, jammed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.jammed[lockID] = jammed
}

// Unlock implements Driver. Unlocking a lock that is already open extends
// the time it stays open and reports nothing new.
func (d *SimDriver) Unlock(ctx context.Context, lockID int64, dur time.Duration, requestID string) error {
	if err := ctx.Err(); err != nil {
		return latchkey.Wrap(latchkey.Unavailable, "lock driver unavailable", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return latchkey.Errorf(latchkey.Unavailable, "lock driver closed")
	}
	if d.jammed[lockID] {
		return latchkey.Errorf(latchkey.Unavailable, "relay of lock %d does not respond", lockID)
	}
	if t, open := d.timers[lockID]; open && t.Stop() {
		t.Reset(dur)
		return nil
	}
	until := d.now().Add(dur)
	d.emitLocked(StateChange{LockID: lockID, Unlocked: ptr(true), Until: &until, At: d.now()})
	d.timers[lockID] = time.AfterFunc(dur, func() { d.relock(lockID) })
	return nil
}

func (d *SimDriver) relock(lockID int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	delete(d.timers, lockID)
	d.emitLocked(StateChange{LockID: lockID, Unlocked: ptr(false), At: d.now()})
}

// emitLocked queues sc for the watcher; d.mu is held. One goroutine at a
// time delivers the queue, so the watcher sees changes in order and never
// under d.mu.
func (d *SimDriver) emitLocked(sc StateChange) {
	if d.watch == nil {
		return
	}
	d.queue = append(d.queue, sc)
	if d.draining {
		return
	}
	d.draining = true
	d.wg.Add(1)
	go d.drain()
}

func (d *SimDriver) drain() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.draining = false
			d.mu.Unlock()
			return
		}
		sc, fn := d.queue[0], d.watch
		d.queue = d.queue[1:]
		d.mu.Unlock()
		fn(sc)
	}
}

// Close stops the pending re-locks and waits until every reported change
// has been handled. Later Unlocks fail.
func (d *SimDriver) Close() {
	d.mu.Lock()
	d.closed = true
	for id, t := range d.timers {
		t.Stop()
		delete(d.timers, id)
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func ptr[T any](v T) *T { return &v }
