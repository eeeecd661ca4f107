package bench

import (
	"slices"
	"sync"
	"time"
)

// Counts is what one phase saw, by outcome.
type Counts struct {
	OK      int64 `json:"ok"`
	Refused int64 `json:"refused,omitempty"`
	Limited int64 `json:"rate_limited,omitempty"`
	Errors  int64 `json:"errors"`
}

// recorder collects latencies and outcomes. It is safe for concurrent use.
type recorder struct {
	mu        sync.Mutex
	lat       []time.Duration
	c         Counts
	firstErr  string
	statusErr map[int]int64
}

func newRecorder() *recorder { return &recorder{statusErr: map[int]int64{}} }

// add records one request: its latency counts only for ok and refused
// outcomes (a decision was made), not for errors.
func (r *recorder) add(d time.Duration, o outcome, status int, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o {
	case outcomeOK:
		r.c.OK++
		r.lat = append(r.lat, d)
	case outcomeRefused:
		r.c.Refused++
		r.lat = append(r.lat, d)
	case outcomeLimited:
		r.c.Limited++
		r.lat = append(r.lat, d)
	default:
		r.c.Errors++
		r.statusErr[status]++
		if r.firstErr == "" {
			r.firstErr = msg
		}
	}
}

func (r *recorder) snapshot() (Counts, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c, len(r.lat)
}

type outcome int

const (
	outcomeOK outcome = iota
	outcomeRefused
	outcomeLimited
	outcomeError
)

// Latency summarises a set of durations in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		i = min(max(i, 0), len(s)-1)
		return ms(s[i])
	}
	return Latency{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
