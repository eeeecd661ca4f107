package faults

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crashGuest is one visitor of a crash test: what was acknowledged for it.
type crashGuest struct {
	n        int
	entry    string
	email    string
	visitID  int64
	signedIn bool // the sign-in was acknowledged
	leaving  bool // a sign-out is to be sent
	left     bool // the sign-out was acknowledged
}

// crashLoad posts a stream of sign-ins (and, for every third guest, a
// sign-out a moment later) to post at about rate a second until stop is
// closed. Like Envoy, it sends each delivery again until it is
// acknowledged, so whatever the server was doing when it died, every event
// is eventually acknowledged once the server is back.
type crashLoad struct {
	mu     sync.Mutex
	guests []*crashGuest
	run    string
	acked  atomic.Int64
	wg     sync.WaitGroup
}

func (l *crashLoad) start(post func([]byte) (int, int64), rate int, stop <-chan struct{}) {
	l.run = fmt.Sprint(time.Now().UnixNano() % 1e9)
	deliver := func(body []byte) (int64, bool) {
		for {
			if st, id := post(body); acknowledged(st) {
				l.acked.Add(1)
				return id, true
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// One guest per tick, each in a goroutine of its own (at most 256 at
	// once), so a server that is down or slow does not lower the rate.
	sem := make(chan struct{}, 256)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			g := &crashGuest{n: n, entry: fmt.Sprintf("%s%05d", l.run, n), leaving: n%3 == 0}
			g.email = fmt.Sprintf("guest%d-%s@faults.example", n, g.entry)
			l.mu.Lock()
			l.guests = append(l.guests, g)
			l.mu.Unlock()
			sem <- struct{}{}
			l.wg.Add(1)
			go func() {
				defer func() { <-sem; l.wg.Done() }()
				id, ok := deliver(entryBody("entry_sign_in", g.entry, "in-"+g.entry, g.n, time.Now()))
				l.mu.Lock()
				g.visitID, g.signedIn = id, ok
				l.mu.Unlock()
				if !g.leaving {
					return
				}
				time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
				_, ok = deliver(entryBody("entry_sign_out", g.entry, "out-"+g.entry, g.n, time.Now()))
				l.mu.Lock()
				g.left = ok
				l.mu.Unlock()
			}()
		}
	}()
}

// check waits (at most d; since is how long ago the last kill was) until
// every acknowledged event is reflected: a guest who left
// is revoked with no link, every other guest active with one link; then
// every guest who still has access has exactly one email, nobody has two,
// and the controller holds exactly one link per staying guest.
func (l *crashLoad) check(t *testing.T, s *server, since, d time.Duration) {
	t.Helper()
	want := map[int64]func(visit) bool{}
	staying := 0
	for _, g := range l.guests {
		switch {
		case !g.signedIn:
			t.Fatalf("guest %d: sign-in never acknowledged", g.n)
		case g.leaving && !g.left:
			t.Fatalf("guest %d: sign-out never acknowledged", g.n)
		case g.leaving:
			want[g.visitID] = revokedWithoutLink
		default:
			want[g.visitID] = activeWithLink
			staying++
		}
	}
	begin := time.Now()
	deadline := begin.Add(d)
	took := s.waitVisits(t, want, d)
	t.Logf("%d guests (%d staying), %d deliveries acknowledged; all visits final %s after the last kill",
		len(l.guests), staying, l.acked.Load(), (since + took).Round(time.Millisecond))

	// Emails: exactly one for every guest with access, at most one for a
	// guest who left (the email may have gone before the sign-out).
	for {
		counts := s.outboxCounts(t)
		var missing, doubled []int
		for _, g := range l.guests {
			c := counts[g.email]
			if c > 1 {
				doubled = append(doubled, g.n)
			}
			if !g.leaving && c == 0 {
				missing = append(missing, g.n)
			}
		}
		if len(doubled) > 0 {
			g := l.guests[doubled[0]-1]
			t.Errorf("%d guests got more than one email, e.g. guest %d (visit %d)", len(doubled), g.n, g.visitID)
			s.dumpGuest(t, g)
			t.FailNow()
		}
		if len(missing) == 0 {
			t.Logf("every staying guest emailed once %s after the last kill", (since + time.Since(begin)).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d guests with access have no email %s after the last restart, e.g. guest %d", len(missing), d, missing[0])
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n := controllerLinks(t, s.base+"/lockctl", s.apiKey); n != staying {
		t.Errorf("the controller holds %d links, want %d (one per staying guest)", n, staying)
	}
}

// outboxCounts counts the captured emails by recipient. The outbox lists
// newest first, so a message sent while the pages are read moves the
// others one place on and one may be listed twice: each is counted once,
// by its id (one missed is seen on the next call).
func (s *server) outboxCounts(t *testing.T) map[string]int {
	t.Helper()
	counts := map[string]int{}
	seen := map[int64]bool{}
	for offset := 0; ; offset += 500 {
		var page []struct {
			ID int64  `json:"id"`
			To string `json:"to"`
		}
		if _, err := s.getJSON(t, "/api/v1/outbox?limit=500&offset="+strconv.Itoa(offset), "Bearer "+s.apiKey, &page); err != nil {
			t.Fatalf("outbox: %v", err)
		}
		for _, m := range page {
			if !seen[m.ID] {
				seen[m.ID] = true
				counts[m.To]++
			}
		}
		if len(page) < 500 {
			return counts
		}
	}
}

// crashKills is how many times a crash test kills a process: enough that
// the instants between two writes are hit (LATCHKEY_CRASH_KILLS overrides).
func crashKills() int {
	if n, err := strconv.Atoi(os.Getenv("LATCHKEY_CRASH_KILLS")); err == nil && n > 0 {
		return n
	}
	return 8
}

// TestCrashEmbedded SIGKILLs the embedded server (SQLite, in-process Redis,
// so the queue dies with it) at random instants while sign-ins and
// sign-outs stream in at about 80 a second, restarting it on its data each
// time. Afterwards every acknowledged event must be reflected, every guest
// with access emailed exactly once, and no access left after a sign-out.
func TestCrashEmbedded(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	env := map[string]string{"LATCHKEY_ADDR": fmt.Sprintf("127.0.0.1:%d", port), "LATCHKEY_DATA_DIR": t.TempDir()}
	s := serve(t, "latchkey", env, "serve", "--demo")
	var cur atomic.Pointer[server]
	cur.Store(s)
	post := func(b []byte) (int, int64) { return cur.Load().post(b) }

	stop := make(chan struct{})
	load := &crashLoad{}
	load.start(post, 80, stop)
	kills := crashKills()
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(1500+rand.IntN(2500)) * time.Millisecond)
		cur.Load().kill()
		cur.Store(serve(t, fmt.Sprintf("latchkey-%d", i+1), env, "serve", "--demo"))
	}
	lastKill := time.Now()
	time.Sleep(2 * time.Second)
	close(stop)
	load.wg.Wait()
	t.Logf("%d kills", kills)
	load.check(t, cur.Load(), time.Since(lastKill), 60*time.Second)
}

// TestCrashSplitRoles runs one web+scheduler process and two workers on a
// private PostgreSQL and Redis, and SIGKILLs a worker at random instants
// (starting a new one each time) while sign-ins and sign-outs stream in.
// The same guarantees as TestCrashEmbedded must hold, and every guest must
// be final within 15 s of the last kill.
func TestCrashSplitRoles(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t)
	redis := startRedis(t)
	shared := map[string]string{"DATABASE_URL": pg.URL(), "REDIS_URL": redis.URL()}
	web := serve(t, "web", shared, "serve", "--demo", "--role", "web,scheduler")
	workerEnv := map[string]string{"DATABASE_URL": pg.URL(), "REDIS_URL": redis.URL(), "LATCHKEY_PUBLIC_URL": web.base}
	workers := []*server{serve(t, "worker-0", workerEnv, "serve", "--role", "worker"), serve(t, "worker-1", workerEnv, "serve", "--role", "worker")}

	stop := make(chan struct{})
	load := &crashLoad{}
	load.start(web.post, 60, stop)
	kills := crashKills()
	var lastKill time.Time
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(1500+rand.IntN(2500)) * time.Millisecond)
		k := rand.IntN(len(workers))
		workers[k].kill()
		lastKill = time.Now()
		workers[k] = serve(t, fmt.Sprintf("worker-%d", i+2), workerEnv, "serve", "--role", "worker")
	}
	close(stop)
	load.wg.Wait()
	t.Logf("%d worker kills; load ended %s after the last", kills, time.Since(lastKill).Round(time.Millisecond))
	load.check(t, web, time.Since(lastKill), 15*time.Second-time.Since(lastKill))
}

// dumpGuest logs what a guest was sent and what its visit went through,
// for a failure to explain itself.
func (s *server) dumpGuest(t *testing.T, g *crashGuest) {
	t.Helper()
	var msgs []struct {
		Subject string    `json:"subject"`
		SentAt  time.Time `json:"sent_at"`
		Text    string    `json:"text"`
	}
	if _, err := s.getJSON(t, "/api/v1/outbox?to="+url.QueryEscape(g.email), "Bearer "+s.apiKey, &msgs); err != nil {
		t.Logf("outbox of %s: %v", g.email, err)
	}
	for _, m := range msgs {
		text := m.Text
		if len(text) > 600 {
			text = text[:600]
		}
		t.Logf("email at %s: %q\n%s", m.SentAt.Format(time.RFC3339Nano), m.Subject, text)
	}
	var v json.RawMessage
	if _, err := s.getJSON(t, "/api/v1/visits/"+strconv.FormatInt(g.visitID, 10), "Bearer "+s.apiKey, &v); err != nil {
		t.Logf("visit %d: %v", g.visitID, err)
	}
	t.Logf("visit %d: %s", g.visitID, v)
}
