package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A lookup must not be answered by a read that began before it was asked:
// that read may predate a write the caller has seen committed (a
// revocation). A read in flight when the value changes answers only the
// lookups it began with; a lookup asked meanwhile gets the next read.
func TestLookupIsNeverAnsweredByAnEarlierRead(t *testing.T) {
	var current atomic.Int64
	current.Store(1)
	started, release := make(chan struct{}, 4), make(chan struct{})
	var reads atomic.Int32
	r := NewReader(1, 16, time.Minute, func(ctx context.Context, keys []string) (map[string]int64, error) {
		v := current.Load() // what the database shows as the read begins
		if reads.Add(1) == 1 {
			started <- struct{}{}
			<-release
		}
		out := map[string]int64{}
		for _, k := range keys {
			out[k] = v
		}
		return out, nil
	})
	first := make(chan int64)
	go func() {
		v, _, _ := r.Get(context.Background(), "pass")
		first <- v
	}()
	<-started
	current.Store(2) // committed while the first read runs
	second := make(chan int64)
	go func() {
		v, _, _ := r.Get(context.Background(), "pass")
		second <- v
	}()
	time.Sleep(20 * time.Millisecond) // let the second lookup queue behind the read
	close(release)
	if v := <-first; v != 1 {
		t.Errorf("first lookup got %d, want 1 (what its read saw)", v)
	}
	if v := <-second; v != 2 {
		t.Errorf("lookup asked after the write got %d, want 2: it was answered by a read begun before it", v)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

// Lookups that queue behind a busy reader share its next read, each gets
// its own key's value, a key the read leaves out is not found, and no
// read gets more keys than the bound.
func TestConcurrentLookupsShareReads(t *testing.T) {
	const callers, max = 200, 16
	var reads, widest atomic.Int32
	gate := make(chan struct{})
	r := NewReader(2, max, time.Minute, func(ctx context.Context, keys []int) (map[int]string, error) {
		reads.Add(1)
		<-gate
		n := int32(len(keys))
		for w := widest.Load(); n > w && !widest.CompareAndSwap(w, n); w = widest.Load() {
		}
		out := map[int]string{}
		for _, k := range keys {
			if k%10 != 0 {
				out[k] = fmt.Sprint("v", k)
			}
		}
		return out, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			v, ok, err := r.Get(context.Background(), i)
			switch {
			case err != nil:
				errs <- err
			case i%10 == 0 && ok:
				errs <- fmt.Errorf("key %d found (%q), want not found", i, v)
			case i%10 != 0 && (!ok || v != fmt.Sprint("v", i)):
				errs <- fmt.Errorf("key %d: got %q, %v", i, v, ok)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let the callers queue behind the two held reads
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := reads.Load(); n >= callers/4 {
		t.Errorf("%d reads for %d concurrent lookups, want them shared", n, callers)
	}
	if w := widest.Load(); w > max {
		t.Errorf("a read of %d keys, want at most %d", w, max)
	}
}

// A failed read fails every lookup it answers, and the next read is tried
// afresh.
func TestFailedReadFailsItsLookups(t *testing.T) {
	boom := errors.New("database gone")
	var fail atomic.Bool
	fail.Store(true)
	r := NewReader(1, 8, time.Minute, func(ctx context.Context, keys []string) (map[string]bool, error) {
		if fail.Load() {
			return nil, boom
		}
		return map[string]bool{keys[0]: true}, nil
	})
	if _, ok, err := r.Get(context.Background(), "k"); !errors.Is(err, boom) || ok {
		t.Fatalf("got ok %v, err %v; want the read's error", ok, err)
	}
	fail.Store(false)
	if v, ok, err := r.Get(context.Background(), "k"); err != nil || !ok || !v {
		t.Fatalf("after recovery: %v %v %v", v, ok, err)
	}
}

// A caller whose context ends stops waiting; the read it joined still
// answers the others, under a context that did not end with the caller's.
func TestLookupReturnsWhenItsContextEnds(t *testing.T) {
	release := make(chan struct{})
	var readErr atomic.Value
	r := NewReader(1, 8, time.Minute, func(ctx context.Context, keys []string) (map[string]int, error) {
		<-release
		if err := ctx.Err(); err != nil {
			readErr.Store(err)
		}
		return map[string]int{"k": 7}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, _, err := r.Get(ctx, "k")
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get still waiting after its context ended")
	}
	close(release)
	if v, ok, err := r.Get(context.Background(), "k"); err != nil || !ok || v != 7 {
		t.Fatalf("next lookup: %v %v %v", v, ok, err)
	}
	if err := readErr.Load(); err != nil {
		t.Errorf("the shared read's context ended with its first caller: %v", err)
	}
}

// A Runner never runs more batches at once than its workers, never more
// items in a batch than its bound, and runs every item submitted, also
// when items keep arriving as workers stop.
func TestRunnerRunsEveryItemWithinItsBounds(t *testing.T) {
	const workers, max, items = 3, 5, 5000
	var running, most, seen atomic.Int32
	var mu sync.Mutex
	done := map[int]bool{}
	var wg sync.WaitGroup
	wg.Add(items)
	r := NewRunner(workers, max, items, func(b []int) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if len(b) > max {
			t.Errorf("batch of %d, want at most %d", len(b), max)
		}
		mu.Lock()
		for _, i := range b {
			if done[i] {
				t.Errorf("item %d run twice", i)
			}
			done[i] = true
		}
		mu.Unlock()
		seen.Add(int32(len(b)))
		running.Add(-1)
		for range b {
			wg.Done()
		}
	})
	var senders sync.WaitGroup
	for s := range 8 {
		senders.Go(func() {
			for i := s; i < items; i += 8 {
				if !r.Submit(i) {
					t.Errorf("item %d refused by a queue of %d", i, items)
					wg.Done()
				}
				if i%97 == 0 {
					time.Sleep(time.Millisecond) // let workers drain and stop
				}
			}
		})
	}
	senders.Wait()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d items run; the rest were left with no worker", seen.Load(), items)
	}
	if m := most.Load(); m > workers {
		t.Errorf("%d batches at once, want at most %d", m, workers)
	}
}

// A full queue refuses an item rather than block its caller.
func TestRunnerRefusesWhenFull(t *testing.T) {
	gate, entered := make(chan struct{}), make(chan struct{}, 10)
	r := NewRunner(1, 1, 2, func([]int) {
		entered <- struct{}{}
		<-gate
	})
	defer close(gate)
	if !r.Submit(0) {
		t.Fatal("the first item was refused")
	}
	<-entered // the worker holds item 0; the queue is empty
	accepted := 0
	for i := 1; i < 10; i++ {
		if r.Submit(i) {
			accepted++
		}
	}
	if accepted != 2 {
		t.Errorf("accepted %d of 9 behind a busy worker, want 2 (the queue's size)", accepted)
	}
}

// Take waits up to its linger for items that follow the first, takes no
// more than its bound, stops waiting for an urgent item, and without a
// linger takes only what is already queued.
func TestTakeLingersForMore(t *testing.T) {
	never := func(int) bool { return false }
	q := make(chan int, 16)
	go func() {
		for i := 2; i <= 4; i++ {
			time.Sleep(5 * time.Millisecond)
			q <- i
		}
	}()
	if got := Take(q, 1, 10, time.Second/4, never); len(got) != 4 {
		t.Errorf("lingering: took %v, want 1..4 (those arriving within the linger)", got)
	}

	q <- 2
	q <- 3
	if got := Take(q, 1, 10, 0, never); len(got) != 3 {
		t.Errorf("no linger: took %v, want the 3 queued", got)
	}

	for i := range 10 {
		q <- i
	}
	if got := Take(q, -1, 4, time.Hour, never); len(got) != 4 {
		t.Errorf("took %d, want the bound of 4", len(got))
	}
	for len(q) > 0 {
		<-q
	}

	urgent := func(i int) bool { return i == 0 }
	start := time.Now()
	go func() { time.Sleep(5 * time.Millisecond); q <- 0 }()
	got := Take(q, 1, 10, 5*time.Second, urgent)
	if took := time.Since(start); len(got) != 2 || took > 2*time.Second {
		t.Errorf("took %v after %s, want 1 and the urgent 0 at once", got, took)
	}
	start = time.Now()
	if got := Take(q, 0, 10, 5*time.Second, urgent); len(got) != 1 || time.Since(start) > 2*time.Second {
		t.Errorf("an urgent first item lingered: %v after %s", got, time.Since(start))
	}

	close(q)
	if got := Take(q, 1, 10, time.Hour, never); len(got) != 1 {
		t.Errorf("closed queue: took %v, want only the first", got)
	}
}

// A read that panics fails the lookups it answers, not the process; a
// lookup whose caller stopped waiting before its read is not read.
func TestPanickingReadFailsItsLookups(t *testing.T) {
	var asked atomic.Value
	r := NewReader(1, 8, time.Minute, func(ctx context.Context, keys []string) (map[string]int, error) {
		asked.Store(keys)
		if keys[0] == "boom" {
			panic("driver bug")
		}
		return map[string]int{keys[0]: 1}, nil
	})
	if _, _, err := r.Get(context.Background(), "boom"); err == nil || !strings.Contains(err.Error(), "driver bug") {
		t.Fatalf("got %v, want the panic as an error", err)
	}
	if v, ok, err := r.Get(context.Background(), "k"); err != nil || !ok || v != 1 {
		t.Fatalf("after the panic: %v %v %v", v, ok, err)
	}

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	l := &lookup[string, int]{ctx: gone, key: "gone", done: make(chan struct{})}
	k := &lookup[string, int]{ctx: context.Background(), key: "k", done: make(chan struct{})}
	r.readBatch([]*lookup[string, int]{l, k})
	if keys := asked.Load().([]string); len(keys) != 1 || keys[0] != "k" {
		t.Errorf("read keys %v, want only the waiting caller's", keys)
	}
	if !errors.Is(l.err, context.Canceled) || l.ok {
		t.Errorf("abandoned lookup: ok %v, err %v; want its context's error", l.ok, l.err)
	}
	if !k.ok || k.val != 1 {
		t.Errorf("waiting lookup: %+v", k)
	}
}

// With the queue full, a lookup is read alone under its caller's own
// context, so a caller that gives up is not held by the read.
func TestFullQueueReadsAloneUnderTheCallersContext(t *testing.T) {
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	r := NewReader(1, 1, time.Minute, func(ctx context.Context, keys []string) (map[string]int, error) {
		if keys[0] == "hold" {
			entered <- struct{}{}
			<-hold
			return nil, nil
		}
		if keys[0] == "alone" {
			<-ctx.Done() // a read that would hang, but for its context
			return nil, ctx.Err()
		}
		return nil, nil
	})
	defer close(hold)
	go r.Get(context.Background(), "hold")
	<-entered
	for range 64 { // fill the queue behind the held read (64 × max)
		if !r.runner.Submit(&lookup[string, int]{ctx: context.Background(), key: "q", done: make(chan struct{})}) {
			t.Fatal("queue full too soon")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := r.Get(ctx, "alone")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("got %v after %s, want the caller's deadline", err, time.Since(start))
	}
}
