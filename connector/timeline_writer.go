package connector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/batch"
)

// timelineWriter appends the timeline rows of the unlock path ("door N
// unlocked") off the request path: one goroutine, started with the first
// row, writes whatever queued while it wrote the last batch, and within
// timelineLinger of its first row, in one statement. When the queue is
// full the caller writes its row itself (write rather than drop).
// Service.Detail flushes before it reads; the visits list's "last unlock"
// (Store.LastUnlocks) does not, and may be that much behind.
// Service.Close writes what is left. It is safe for concurrent use.
type timelineWriter struct {
	store *Store
	log   *slog.Logger

	start sync.Once
	mu    sync.RWMutex // held for reading while queueing, for writing by close
	// closed is set by close; queue and done exist once started.
	closed bool
	queue  chan timelineItem
	done   chan struct{}
}

type timelineItem struct {
	e       TimelineEntry
	flushed chan struct{}
}

const (
	timelineQueue = 4096
	timelineBatch = 256
	// timelineLinger is how long the writer waits for more rows after the
	// first of a batch. No request waits for these rows (the visit's
	// detail flushes first), so waiting costs nothing and makes one statement
	// of the rows of many unlocks.
	timelineLinger = 10 * time.Millisecond
)

func newTimelineWriter(store *Store, log *slog.Logger) *timelineWriter {
	return &timelineWriter{store: store, log: log}
}

func (w *timelineWriter) started() {
	w.start.Do(func() {
		w.queue, w.done = make(chan timelineItem, timelineQueue), make(chan struct{})
		go w.run()
	})
}

// add queues e, or writes it at once when the queue is full or closed.
func (w *timelineWriter) add(ctx context.Context, e TimelineEntry) {
	w.started()
	w.mu.RLock()
	if !w.closed {
		select {
		case w.queue <- timelineItem{e: e}:
			w.mu.RUnlock()
			return
		default:
		}
	}
	w.mu.RUnlock()
	if err := w.store.addTimeline(context.WithoutCancel(ctx), e); err != nil {
		w.log.Warn("timeline", "visit_id", e.VisitID, "err", err)
	}
}

// flush returns once every row queued before the call is written (or ctx
// ends).
func (w *timelineWriter) flush(ctx context.Context) {
	w.started()
	ch := make(chan struct{})
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return
	}
	select {
	case w.queue <- timelineItem{flushed: ch}:
	case <-ctx.Done():
		w.mu.RUnlock()
		return
	}
	w.mu.RUnlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// close writes what is queued and stops the writer.
func (w *timelineWriter) close() {
	w.started()
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *timelineWriter) run() {
	defer close(w.done)
	rows := make([]TimelineEntry, 0, timelineBatch)
	var waiting []chan struct{}
	for first := range w.queue {
		rows, waiting = rows[:0], waiting[:0]
		for _, it := range batch.Take(w.queue, first, timelineBatch, timelineLinger, func(it timelineItem) bool { return it.flushed != nil }) {
			if it.flushed != nil {
				waiting = append(waiting, it.flushed)
				continue
			}
			rows = append(rows, it.e)
		}
		if len(rows) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := w.store.addTimeline(ctx, rows...); err != nil {
				w.log.Warn("timeline", "rows", len(rows), "err", err)
			}
			cancel()
		}
		for _, ch := range waiting {
			close(ch)
		}
	}
}

// Close writes the timeline rows still queued. The Service stays usable:
// later rows are written by their callers.
func (s *Service) Close() { s.timeline.close() }
