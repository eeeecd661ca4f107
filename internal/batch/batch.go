// Package batch gathers work that arrives concurrently into batches, so
// that one round trip to the database serves many callers: a Runner hands
// whatever has queued to a bounded number of workers, and a Reader built
// on it answers concurrent lookups with one read of all their keys.
//
// Nothing waits to fill a batch. A worker takes what queued while the
// previous batch ran, so a caller that arrives alone is served at once,
// and batches grow only as fast as callers queue behind a busy worker.
package batch

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Runner runs queued items in batches of at most Max, with at most
// Workers batches running at once. The zero value is not usable; see
// NewRunner.
type Runner[T any] struct {
	run     func([]T)
	max     int
	workers int32
	active  atomic.Int32
	queue   chan T
}

// NewRunner returns a Runner that calls run with batches of at most max
// items, from at most workers goroutines at once, holding at most queue
// items waiting.
func NewRunner[T any](workers, max, queue int, run func([]T)) *Runner[T] {
	return &Runner[T]{run: run, max: max, workers: int32(workers), queue: make(chan T, queue)}
}

// Submit queues t for a batch and makes sure a worker will take it. It
// returns false, queuing nothing, when the queue is full: the caller then
// does the work itself.
func (r *Runner[T]) Submit(t T) bool {
	select {
	case r.queue <- t:
	default:
		return false
	}
	if r.startWorker() {
		go r.work()
	}
	return true
}

// startWorker counts one more worker if fewer than r.workers are working.
// The count never goes past the limit, even for a moment: a worker that
// finds the queue refilled as it stops must not take another's passing
// claim for a worker that is there.
func (r *Runner[T]) startWorker() bool {
	for n := r.active.Load(); n < r.workers; n = r.active.Load() {
		if r.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
	return false
}

// work runs batches until the queue is empty.
func (r *Runner[T]) work() {
	for {
		select {
		case t := <-r.queue:
			batch := []T{t}
		fill:
			for len(batch) < r.max {
				select {
				case t := <-r.queue:
					batch = append(batch, t)
				default:
					break fill
				}
			}
			r.run(batch)
		default:
			r.active.Add(-1)
			// An item queued after the receive above but before the
			// count dropped found every worker busy and started none:
			// keep working for it, unless another worker has started.
			if len(r.queue) == 0 || !r.startWorker() {
				return
			}
		}
	}
}

// Reader answers concurrent lookups by key with shared reads: the keys
// asked while a read is running are read together by the next one. Every
// answer comes from a read that began after its Get was called, so a
// Reader sees every write committed before the lookup, exactly as a read
// of its own would.
type Reader[K comparable, V any] struct {
	runner  *Runner[*lookup[K, V]]
	read    func(context.Context, []K) (map[K]V, error)
	timeout time.Duration
}

type lookup[K comparable, V any] struct {
	ctx  context.Context
	key  K
	val  V
	ok   bool
	err  error
	done chan struct{}
}

// NewReader returns a Reader whose reads each answer at most max lookups
// (so read is called with at most max distinct keys), at most workers at
// once, each bounded by timeout. read returns the value of every key it
// found; a key it leaves out is not found.
func NewReader[K comparable, V any](workers, max int, timeout time.Duration, read func(ctx context.Context, keys []K) (map[K]V, error)) *Reader[K, V] {
	r := &Reader[K, V]{read: read, timeout: timeout}
	r.runner = NewRunner(workers, max, 64*max, r.readBatch)
	return r
}

// Get returns the value of key and whether it was found, from a read that
// began after Get was called. It returns when ctx ends, without waiting
// for the read.
func (r *Reader[K, V]) Get(ctx context.Context, key K) (V, bool, error) {
	l := &lookup[K, V]{ctx: ctx, key: key, done: make(chan struct{})}
	if !r.runner.Submit(l) {
		// Too many queued: read it alone, under the caller's own
		// context, rather than wait for a place.
		l.val, l.ok, l.err = r.readOne(ctx, key)
		return l.val, l.ok, l.err
	}
	select {
	case <-l.done:
		return l.val, l.ok, l.err
	case <-ctx.Done():
		var zero V
		return zero, false, ctx.Err()
	}
}

// readBatch reads the keys of batch in one call and answers each lookup.
// Lookups whose callers have stopped waiting are not read. The read does
// not end with the first caller's context (the others still wait for
// it), but it carries its values. A read that panics fails its lookups
// instead of the process.
func (r *Reader[K, V]) readBatch(batch []*lookup[K, V]) {
	live := batch[:0:0]
	for _, l := range batch {
		if err := l.ctx.Err(); err != nil {
			l.err = err
			close(l.done)
			continue
		}
		live = append(live, l)
	}
	if len(live) == 0 {
		return
	}
	keys := make([]K, 0, len(live))
	seen := make(map[K]bool, len(live))
	for _, l := range live {
		if !seen[l.key] {
			seen[l.key] = true
			keys = append(keys, l.key)
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), r.timeout)
	defer cancel()
	vals, err := r.safeRead(ctx, keys)
	for _, l := range live {
		if err != nil {
			l.err = err
		} else {
			l.val, l.ok = vals[l.key]
		}
		close(l.done)
	}
}

// readOne reads key alone under ctx.
func (r *Reader[K, V]) readOne(ctx context.Context, key K) (V, bool, error) {
	vals, err := r.safeRead(ctx, []K{key})
	v, ok := vals[key]
	return v, ok && err == nil, err
}

// safeRead is r.read with a panic returned as an error: the read runs on
// a worker, where no request's recovery would catch it.
func (r *Reader[K, V]) safeRead(ctx context.Context, keys []K) (vals map[K]V, err error) {
	defer func() {
		if p := recover(); p != nil {
			vals, err = nil, fmt.Errorf("batch read panicked: %v", p)
		}
	}()
	return r.read(ctx, keys)
}

// Take returns first and the items queued after it, at most max in all,
// for a writer that runs off its callers' path. It waits up to linger for
// more to arrive (none waits when linger is 0), then takes only what is
// already queued; it stops early when queue is closed or an item arrives
// that urgent says someone is waiting for (a flush).
func Take[T any](queue <-chan T, first T, max int, linger time.Duration, urgent func(T) bool) []T {
	items := []T{first}
	var timeout <-chan time.Time
	if linger > 0 && !urgent(first) {
		t := time.NewTimer(linger)
		defer t.Stop()
		timeout = t.C
	}
	for len(items) < max {
		var it T
		var ok bool
		if timeout != nil {
			select {
			case it, ok = <-queue:
			case <-timeout:
				timeout = nil
				continue
			}
		} else {
			select {
			case it, ok = <-queue:
			default:
				return items
			}
		}
		if !ok {
			return items
		}
		items = append(items, it)
		if urgent(it) {
			timeout = nil
		}
	}
	return items
}
