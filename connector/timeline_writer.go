package connector

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// timelineWriter appends the timeline rows of the unlock path ("door N
// unlocked") off the request path: one goroutine, started with the first
// row, writes whatever queued while it wrote the last batch in one
// statement. When the queue is full the caller writes its row itself
// (write rather than drop). Service.Detail flushes before it reads, and
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
	batch := make([]TimelineEntry, 0, timelineBatch)
	var waiting []chan struct{}
	for it := range w.queue {
		batch, waiting = batch[:0], waiting[:0]
		add := func(it timelineItem) {
			if it.flushed != nil {
				waiting = append(waiting, it.flushed)
				return
			}
			batch = append(batch, it.e)
		}
		add(it)
	more:
		for len(batch) < timelineBatch {
			select {
			case it, ok := <-w.queue:
				if !ok {
					break more
				}
				add(it)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := w.store.addTimeline(ctx, batch...); err != nil {
				w.log.Warn("timeline", "rows", len(batch), "err", err)
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
