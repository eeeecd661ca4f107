package lockctl

import (
	"math"
	"net/netip"
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

// limiters holds one token bucket per key (a credential, a client
// address). Idle buckets are dropped, and the map holds at most maxBuckets
// keys: a new key beyond that evicts the least recently seen of a few
// sampled buckets, so the table stays bounded however many addresses call.
// It is safe for concurrent use.
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

const (
	limiterIdle = 10 * time.Minute
	maxBuckets  = 10000
	evictSample = 8
)

func newLimiters(r Rate, now func() time.Time) *limiters {
	return &limiters{rate: r, now: now, buckets: map[string]*bucket{}}
}

// reserve takes a token for key like allow and also returns refund, which
// gives the token back (for attempts that turn out not to count).
func (l *limiters) reserve(key string) (ok bool, wait time.Duration, refund func()) {
	if l.rate.PerSecond < 0 {
		return true, 0, func() {}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucket(key, now).lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, time.Duration(math.Ceil(d.Seconds())) * time.Second, nil
	}
	return true, 0, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		r.CancelAt(now)
	}
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
	r := l.bucket(key, now).lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, time.Duration(math.Ceil(d.Seconds())) * time.Second
	}
	return true, 0
}

// bucket returns key's bucket, made if needed, marked as seen at now. It
// drops idle buckets every limiterIdle. l.mu must be held.
func (l *limiters) bucket(key string, now time.Time) *bucket {
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
		l.makeRoom()
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.rate.PerSecond), l.rate.Burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b
}

// makeRoom evicts one bucket when the map is full: the least recently seen
// of a few, in map order (which Go randomises). l.mu must be held.
func (l *limiters) makeRoom() {
	if len(l.buckets) < maxBuckets {
		return
	}
	var oldest string
	var seen time.Time
	n := 0
	for k, b := range l.buckets {
		if n == 0 || b.seen.Before(seen) {
			oldest, seen = k, b.seen
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(l.buckets, oldest)
}

// addressKey is the rate-limit key of a client address: the address
// itself for IPv4, its /64 network for IPv6 (one host usually holds a whole
// /64, so it could otherwise rotate through fresh buckets).
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
