package lockctl

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token-bucket limit: PerSecond tokens refill each second, up to
// Burst. The zero value means "use the default"; a negative PerSecond turns
// the limit off.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) withDefault(def Rate) Rate {
	if r.PerSecond == 0 {
		r.PerSecond = def.PerSecond
	}
	if r.Burst <= 0 {
		r.Burst = def.Burst
	}
	return r
}

// limiters holds one token bucket per key (a link id, a client IP). Idle
// buckets are dropped so the map cannot grow without bound. It is safe for
// concurrent use.
type limiters struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const limiterIdle = 10 * time.Minute

func newLimiters(r Rate, now func() time.Time) *limiters {
	return &limiters{rate: r, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key. When none is left it returns false and how
// long to wait before retrying, rounded up to whole seconds (at least 1).
func (l *limiters) allow(key string) (bool, time.Duration) {
	if l.rate.PerSecond < 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > limiterIdle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > limiterIdle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.rate.PerSecond), l.rate.Burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, time.Duration(math.Ceil(d.Seconds())) * time.Second
	}
	return true, 0
}
