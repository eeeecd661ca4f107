package faults

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRedisOutage stops Redis for 20 s while webhooks keep arriving: every
// acknowledged webhook must reach its visit's correct final state within
// 60 s of Redis coming back (the database is the truth; the lost-sync sweep
// re-enqueues what the queue dropped).
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	redis := startRedis(t)
	s := serve(t, "latchkey", map[string]string{"REDIS_URL": redis.URL()}, "serve", "--demo")

	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	want := map[int64]func(visit) bool{}
	var mu sync.Mutex
	acked := 0
	send := func(n int) {
		entry := fmt.Sprintf("%s%04d", run, n)
		st, id := s.post(entryBody("entry_sign_in", entry, "in-"+entry, n, time.Now()))
		if !acknowledged(st) {
			t.Errorf("sign-in %d answered %d, want 200 or 202", n, st)
			return
		}
		check := activeWithLink
		if n%3 == 0 {
			// Every third guest also leaves: revoked, no link.
			if st, _ := s.post(entryBody("entry_sign_out", entry, "out-"+entry, n, time.Now())); !acknowledged(st) {
				t.Errorf("sign-out %d answered %d, want 200 or 202", n, st)
				return
			}
			check = revokedWithoutLink
		}
		mu.Lock()
		want[id] = check
		acked++
		mu.Unlock()
	}
	// 10 guests a second for 30 s; Redis is down from 5 s to 25 s.
	stopAt, startAt := 5*time.Second, 25*time.Second
	begin := time.Now()
	stopped, restarted := false, time.Time{}
	for n := 0; time.Since(begin) < 30*time.Second; n++ {
		if !stopped && time.Since(begin) >= stopAt {
			redis.stop()
			stopped = true
			t.Logf("redis stopped after %d guests", n)
		}
		if stopped && restarted.IsZero() && time.Since(begin) >= startAt {
			redis.start()
			restarted = time.Now()
			t.Logf("redis started again after %d guests", n)
		}
		send(n)
		time.Sleep(100 * time.Millisecond)
	}
	if t.Failed() {
		return
	}
	s.waitVisits(t, want, 60*time.Second-time.Since(restarted))
	t.Logf("%d acknowledged webhooks; all visits final %s after Redis returned", acked, time.Since(restarted).Round(time.Millisecond))
}

// TestPostgresOutage stops PostgreSQL: webhooks must get 503, never 2xx,
// and the service must recover without a restart.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	pg := startPostgres(t)
	s := serve(t, "latchkey", map[string]string{"DATABASE_URL": pg.URL()}, "serve", "--demo")
	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	if st, id := s.post(entryBody("entry_sign_in", run+"0", "job-"+run+"0", 0, time.Now())); !acknowledged(st) || id == 0 {
		t.Fatalf("before the outage: status %d, visit %d", st, id)
	}
	pg.stop()
	statuses := map[int]int{}
	for n := 1; n <= 20; n++ {
		st, _ := s.post(entryBody("entry_sign_in", fmt.Sprint(run, n), fmt.Sprint("job-", run, n), n, time.Now()))
		statuses[st]++
		if st >= 200 && st < 300 {
			t.Errorf("webhook %d answered %d while PostgreSQL was down", n, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if statuses[http.StatusServiceUnavailable] != 20 {
		t.Errorf("statuses while down: %v, want 20 x 503", statuses)
	}
	waitHTTP(t, s.base+"/readyz", http.StatusServiceUnavailable, 5*time.Second)
	pg.start()
	back := time.Now()
	var id int64
	for n := 100; time.Since(back) < 30*time.Second; n++ {
		var st int
		if st, id = s.post(entryBody("entry_sign_in", fmt.Sprint(run, n), fmt.Sprint("job-", run, n), n, time.Now())); acknowledged(st) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if id == 0 {
		t.Fatalf("webhooks not accepted within 30s of PostgreSQL returning")
	}
	t.Logf("webhooks accepted again %s after PostgreSQL returned", time.Since(back).Round(time.Millisecond))
	s.waitVisits(t, map[int64]func(visit) bool{id: activeWithLink}, 30*time.Second)
	waitHTTP(t, s.base+"/readyz", http.StatusOK, 10*time.Second)
}

// TestControllerOutage runs lockctl as its own process and stops it: a
// sign-in during the outage gets its link once the controller returns, and
// a sign-out's revocation is retried until done.
func TestControllerOutage(t *testing.T) {
	t.Parallel()
	ctlPort := freePort(t)
	ctlDir := t.TempDir()
	ctlEnv := map[string]string{"LATCHKEY_ADDR": fmt.Sprintf("127.0.0.1:%d", ctlPort), "LATCHKEY_DATA_DIR": ctlDir}
	ctl := serve(t, "lockctl", ctlEnv, "lockctl", "--demo")
	ctlURL := fmt.Sprintf("http://127.0.0.1:%d", ctlPort)
	waitHTTP(t, ctlURL+"/places", http.StatusUnauthorized, 20*time.Second)
	s := serve(t, "latchkey", map[string]string{"LATCHKEY_CONTROLLER_URL": ctlURL, "LATCHKEY_CONTROLLER_API_KEY": ctl.apiKey,
		"LATCHKEY_CONTROLLER_KIND": "lockctl"}, "serve", "--demo")

	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	_, a := s.post(entryBody("entry_sign_in", run+"1", "in-"+run+"1", 1, time.Now()))
	s.waitVisits(t, map[int64]func(visit) bool{a: activeWithLink}, 30*time.Second)

	ctl.stop(5 * time.Second)
	_, b := s.post(entryBody("entry_sign_in", run+"2", "in-"+run+"2", 2, time.Now()))
	if st, _ := s.post(entryBody("entry_sign_out", run+"1", "out-"+run+"1", 1, time.Now())); !acknowledged(st) {
		t.Fatalf("sign-out answered %d while the controller was down, want 200 or 202", st)
	}
	time.Sleep(4 * time.Second)
	if v, _ := s.visit(t, b); v.Synced || v.liveLinks() != 0 {
		t.Fatalf("visit %d synced without a controller: %+v", b, v)
	}
	if v, _ := s.visit(t, a); v.Status != "revoked" || v.liveLinks() != 1 {
		t.Fatalf("visit %d: want revoked with its link still to delete, got %+v", a, v)
	}

	ctl = serve(t, "lockctl", ctlEnv, "lockctl", "--demo")
	waitHTTP(t, ctlURL+"/places", http.StatusUnauthorized, 20*time.Second)
	back := time.Now()
	s.waitVisits(t, map[int64]func(visit) bool{a: revokedWithoutLink, b: activeWithLink}, 60*time.Second)
	t.Logf("link created and revocation done %s after the controller returned", time.Since(back).Round(time.Millisecond))
	if n := controllerLinks(t, ctlURL, ctl.apiKey); n != 1 {
		t.Errorf("controller has %d links, want 1 (the second guest's)", n)
	}
}

// TestWorkerKilled kills a worker with SIGKILL while it is inside a sync
// (its controller call held open), then starts another worker: the job
// must complete there, once the dead worker's visit lease has run out
// (15 s) and its cut-off link creation has settled (35 s); the bound
// leaves room for a loaded machine.
func TestWorkerKilled(t *testing.T) {
	t.Parallel()
	redis := startRedis(t)
	dataDir := t.TempDir()
	shared := map[string]string{"REDIS_URL": redis.URL(), "LATCHKEY_DATA_DIR": dataDir}
	web := serve(t, "web", shared, "serve", "--demo", "--role", "web,scheduler")

	// Workers reach the controller through this proxy, which holds the
	// first link creation open until the test has killed its worker.
	target, _ := url.Parse(web.base + "/lockctl")
	proxy := httputil.NewSingleHostReverseProxy(target)
	var held atomic.Bool
	entered := make(chan struct{})
	release := make(chan struct{})
	ps := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && held.CompareAndSwap(false, true) {
			close(entered)
			<-release
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, "worker gone", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	ppt := freePort(t)
	ps.Addr = fmt.Sprintf("127.0.0.1:%d", ppt)
	go func() { _ = ps.ListenAndServe() }()
	t.Cleanup(func() { ps.Close() })
	workerEnv := map[string]string{"REDIS_URL": redis.URL(), "LATCHKEY_DATA_DIR": dataDir, "LATCHKEY_PUBLIC_URL": web.base,
		"LATCHKEY_CONTROLLER_URL": fmt.Sprintf("http://127.0.0.1:%d", ppt), "LATCHKEY_CONTROLLER_API_KEY": web.apiKey,
		"LATCHKEY_CONTROLLER_KIND": "lockctl"}
	a := serve(t, "worker-a", workerEnv, "serve", "--role", "worker")

	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	st, id := web.post(entryBody("entry_sign_in", run, "in-"+run, 1, time.Now()))
	if !acknowledged(st) {
		t.Fatalf("sign-in answered %d", st)
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("worker a never called the controller")
	}
	a.kill()
	close(release)
	killed := time.Now()
	serve(t, "worker-b", workerEnv, "serve", "--role", "worker")
	web.waitVisits(t, map[int64]func(visit) bool{id: activeWithLink}, 75*time.Second)
	t.Logf("the sync completed on worker b %s after worker a was killed", time.Since(killed).Round(time.Second))
}

// TestDuplicatesAndReordering posts 10,000 deliveries: 2,000 distinct
// events, each 5 times, in random order. 600 guests sign in (their sign-in
// sent as two Envoy jobs, as a retried job would be); 400 sign in and out.
// The result must be exactly one visit per guest, one live link per
// staying guest and none for leaving ones, and never a second email.
func TestDuplicatesAndReordering(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	if _, err := lookRedis(); err == nil {
		env["REDIS_URL"] = startRedis(t).URL()
	}
	s := serve(t, "latchkey", env, "serve", "--demo")
	const guests, leaving, copies = 1000, 400, 5
	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	type delivery struct {
		guest int
		body  []byte
	}
	var all []delivery
	now := time.Now()
	for g := range guests {
		entry := fmt.Sprintf("%s%04d", run, g)
		second := entryBody("entry_sign_in", entry, "retry-"+entry, g, now)
		if g < leaving {
			second = entryBody("entry_sign_out", entry, "out-"+entry, g, now)
		}
		for _, b := range [][]byte{entryBody("entry_sign_in", entry, "in-"+entry, g, now), second} {
			for range copies {
				all = append(all, delivery{g, b})
			}
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	visits := make([]map[int64]bool, guests)
	for g := range visits {
		visits[g] = map[int64]bool{}
	}
	var mu sync.Mutex
	work := make(chan delivery)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				st, id := s.post(d.body)
				if !acknowledged(st) || id == 0 {
					failed.Add(1)
					continue
				}
				mu.Lock()
				visits[d.guest][id] = true
				mu.Unlock()
			}
		}()
	}
	for _, d := range all {
		work <- d
	}
	close(work)
	wg.Wait()
	t.Logf("%d deliveries posted in %s", len(all), time.Since(start).Round(time.Millisecond))
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d deliveries were not accepted", n)
	}
	want := map[int64]func(visit) bool{}
	for g, ids := range visits {
		if len(ids) != 1 {
			t.Fatalf("guest %d got visits %v, want exactly one", g, ids)
		}
		for id := range ids {
			want[id] = activeWithLink
			if g < leaving {
				want[id] = revokedWithoutLink
			}
		}
	}
	s.waitVisits(t, want, 120*time.Second)
	// Emails go out after the sync: give the queue a moment to settle.
	time.Sleep(3 * time.Second)
	for g := range guests {
		addr := fmt.Sprintf("guest%d-%s%04d@faults.example", g, run, g)
		n := s.outboxCount(t, addr)
		if g >= leaving && n != 1 || g < leaving && n > 1 {
			t.Fatalf("guest %d (leaving: %v) got %d emails", g, g < leaving, n)
		}
	}
	if n := controllerLinks(t, s.base+"/lockctl", s.apiKey); n != guests-leaving {
		t.Errorf("controller has %d links, want %d", n, guests-leaving)
	}
	t.Logf("converged %s after the first delivery", time.Since(start).Round(time.Millisecond))
}

// acknowledged reports whether a webhook answer means the delivery was
// committed: 200 (done or duplicate) or 202 (access work continues in the
// queue), per Envoy's job semantics.
func acknowledged(status int) bool {
	return status == http.StatusOK || status == http.StatusAccepted
}
