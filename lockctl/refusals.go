package lockctl

import (
	"fmt"
	"sync"
	"time"
)

// defaultRefusalSamples is how many refused unlock attempts of one reason
// (Kisi code) are stored one by one per minute by default.
const defaultRefusalSamples = 10

// refusals samples refused unlock attempts: per reason and minute, the
// first few are stored as events and the rest only counted, then summed up
// in one event once the minute is over. A burst of guesses therefore adds
// at most samples+1 rows per reason and minute. The map holds one entry per
// reason, a small fixed set. It is safe for concurrent use.
type refusals struct {
	samples int

	mu     sync.Mutex
	byCode map[string]*refusalWindow
}

type refusalWindow struct {
	start   time.Time
	stored  int
	dropped int
}

func newRefusals(samples int) *refusals {
	return &refusals{samples: samples, byCode: map[string]*refusalWindow{}}
}

// admit counts a refusal with code at now and reports whether to store its
// event. When the previous minute of code ended with attempts not stored,
// it also returns the event that sums them up.
func (r *refusals) admit(code string, now time.Time) (store bool, summary *Event) {
	start := now.UTC().Truncate(time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.byCode[code]
	if w == nil || !w.start.Equal(start) {
		if w != nil && w.dropped > 0 {
			summary = refusalSummary(code, *w)
		}
		w = &refusalWindow{start: start}
		r.byCode[code] = w
	}
	if w.stored < r.samples {
		w.stored++
		return true, summary
	}
	w.dropped++
	return false, summary
}

// flush returns the summaries of the minutes that ended by now and forgets
// those minutes.
func (r *refusals) flush(now time.Time) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for code, w := range r.byCode {
		if now.Before(w.start.Add(time.Minute)) {
			continue
		}
		if w.dropped > 0 {
			out = append(out, *refusalSummary(code, *w))
		}
		delete(r.byCode, code)
	}
	return out
}

// refusalSummary is the event that stands for the refusals of w that were
// not stored one by one.
func refusalSummary(code string, w refusalWindow) *Event {
	return &Event{Type: EventLockUnlock, Success: false, Code: code, CreatedAt: w.start.Add(time.Minute),
		Message: fmt.Sprintf("%d more refused unlock attempts (code %s) from %s to %s, not recorded one by one",
			w.dropped, code, w.start.Format(time.RFC3339), w.start.Add(time.Minute).Format(time.RFC3339))}
}
