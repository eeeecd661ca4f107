package web

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestLoginLimiterMemoryIsBounded: attacker-chosen emails of any length
// and number keep the limiter's tables at their cap and its memory small.
func TestLoginLimiterMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	l := newLoginLimiter(func() time.Time { return now })
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	big := strings.Repeat("a", 1<<20)
	for i := 0; i < 150; i++ {
		l.allow("203.0.113.5", fmt.Sprintf("%d%s@example.com", i, big))
	}
	if grown := int64(heap()) - int64(before); grown > 4<<20 {
		t.Errorf("150 attempts with 1 MiB emails grew the heap by %d MiB, want < 4", grown>>20)
	}
	for i := 0; i < 3*loginTableSize; i++ {
		l.allow(fmt.Sprintf("198.51.%d.%d", i/256%256, i%256), fmt.Sprintf("user%d@example.com", i))
	}
	if n := l.byAcct.len(); n > loginTableSize {
		t.Errorf("account table holds %d buckets, want at most %d", n, loginTableSize)
	}
	if n := l.byIP.len(); n > loginTableSize {
		t.Errorf("address table holds %d buckets, want at most %d", n, loginTableSize)
	}
}

// TestLoginLimiterCannotLockOthersOut: one wrong password every 15 s from
// elsewhere does not stop the owner signing in from their address; the
// guesser is limited at theirs.
func TestLoginLimiterCannotLockOthersOut(t *testing.T) {
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	l := newLoginLimiter(func() time.Time { return now })
	for i := 0; i < 40; i++ {
		l.allow("203.0.113.5", "boss@example.com")
		now = now.Add(15 * time.Second)
	}
	if !l.allow("198.51.100.7", "boss@example.com") {
		t.Error("the owner is refused after someone else's slow guesses")
	}
	refused := 0
	for i := 0; i < 10; i++ {
		if !l.allow("203.0.113.5", "boss@example.com") {
			refused++
		}
	}
	if refused == 0 {
		t.Error("10 quick guesses from one address for one account: none refused")
	}
	// A spread of accounts from one address meets the per-address limit.
	refused = 0
	for i := 0; i < 40; i++ {
		if !l.allow("192.0.2.9", fmt.Sprintf("u%d@example.com", i)) {
			refused++
		}
	}
	if refused < 40-ipBurst {
		t.Errorf("40 accounts tried from one address: %d refused, want at least %d", refused, 40-ipBurst)
	}
	// IPv6 addresses count per /64.
	refused = 0
	for i := 0; i < 40; i++ {
		if !l.allow(fmt.Sprintf("2001:db8:1:2::%x", i+1), fmt.Sprintf("v%d@example.com", i)) {
			refused++
		}
	}
	if refused < 40-ipBurst {
		t.Errorf("40 addresses of one IPv6 /64: %d refused, want at least %d", refused, 40-ipBurst)
	}
}
