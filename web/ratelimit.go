package web

import (
	"container/list"
	"crypto/sha256"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterTable holds a token bucket per key, for at most max keys: when it
// is full the least recently used bucket is dropped. Keys are stored as
// SHA-256 of their parts, so an entry's size never depends on what a
// client sent. It is safe for concurrent use.
type limiterTable struct {
	limit rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	order *list.List // of *limiterEntry, most recently used first
	byKey map[[32]byte]*list.Element
}

type limiterEntry struct {
	key [32]byte
	lim *rate.Limiter
}

func newLimiterTable(limit rate.Limit, burst, max int) *limiterTable {
	return &limiterTable{limit: limit, burst: burst, max: max, order: list.New(), byKey: map[[32]byte]*list.Element{}}
}

// tableKey hashes parts into a fixed-size key; parts are length-prefixed
// so ("ab","c") and ("a","bc") differ.
func tableKey(parts ...string) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		for i, l := 0, uint64(len(p)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// allow takes a token from the bucket of parts at now.
func (t *limiterTable) allow(now time.Time, parts ...string) bool {
	k := tableKey(parts...)
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byKey[k]
	if ok {
		t.order.MoveToFront(el)
	} else {
		if t.order.Len() >= t.max {
			last := t.order.Back()
			t.order.Remove(last)
			delete(t.byKey, last.Value.(*limiterEntry).key)
		}
		el = t.order.PushFront(&limiterEntry{key: k, lim: rate.NewLimiter(t.limit, t.burst)})
		t.byKey[k] = el
	}
	return el.Value.(*limiterEntry).lim.AllowN(now, 1)
}

// blocked reports whether the bucket of parts is empty at now, without
// taking a token or making a bucket.
func (t *limiterTable) blocked(now time.Time, parts ...string) bool {
	k := tableKey(parts...)
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byKey[k]
	return ok && el.Value.(*limiterEntry).lim.TokensAt(now) < 1
}

// len returns the number of buckets held.
func (t *limiterTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}

// addressKey is the part of a client address that limits count against:
// the whole IPv4 address, or the /64 of an IPv6 one (one subscriber's
// share, which they can walk through freely).
func addressKey(ip string) string {
	p := net.ParseIP(ip)
	if p == nil {
		return ip
	}
	if p4 := p.To4(); p4 != nil {
		return p4.String()
	}
	return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
