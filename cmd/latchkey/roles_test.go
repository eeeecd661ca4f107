package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/jobs"
)

// pendingSyncs returns the ids of the visit sync tasks waiting in Redis.
func pendingSyncs(t testing.TB, redisURL string) []string {
	t.Helper()
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	var ids []string
	for _, q := range []string{jobs.QueueCritical, jobs.QueueDefault, jobs.QueueLow} {
		tasks, err := in.ListPendingTasks(q)
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatalf("list pending tasks of %s: %v", q, err)
		}
		for _, ti := range tasks {
			if ti.Type == jobs.TypeVisitSync {
				ids = append(ids, ti.ID)
			}
		}
	}
	return ids
}

// rolesOf returns the roles the process logged as ready with.
func rolesOf(t testing.TB, p *proc) string {
	t.Helper()
	r, _ := p.waitLog(t, "ready", time.Second)["roles"].(string)
	return r
}

// A sign-in posted to a web-only process is synced by a separate
// worker-only process that shares the database and Redis and reaches the
// bundled lockctl through the web process.
func TestWebAndWorkerProcesses(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, true)
	web := d.serve(t, "web", nil, "--role", "web", "--demo")
	if r := rolesOf(t, web); r != "web" {
		t.Fatalf("web process roles %q", r)
	}
	res := signIn(t, web.URL, d.EnvoySecret, walkInBody(t, nil))

	// Without a worker the sync task waits in Redis and the visit stays
	// unsynced; watch for ten of the web process's poll intervals.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ids := pendingSyncs(t, d.RedisURL); len(ids) != 1 {
			t.Fatalf("pending sync tasks = %q, want the one of visit %d", ids, res.VisitID)
		}
		if v := getVisit(t, web.URL, d.AdminKey, res.VisitID); v.Synced || len(v.Links) != 0 {
			t.Fatalf("visit synced by a web-only process: %+v", v)
		}
	}

	worker := d.serve(t, "worker", map[string]string{"LATCHKEY_PUBLIC_URL": web.URL}, "--role", "worker,scheduler")
	if r := rolesOf(t, worker); r != "scheduler,worker" {
		t.Fatalf("worker process roles %q", r)
	}
	if worker.URL != "" {
		t.Fatalf("worker process serves HTTP at %s", worker.URL)
	}
	v := waitVisit(t, web.URL, d.AdminKey, res.VisitID, 15*time.Second, "synced with one link", syncedWithOneLink)
	if v.Status != "active" {
		t.Errorf("visit status %q, want active", v.Status)
	}

	// The link exists on the web process's bundled lockctl, and the guest
	// email the worker sent is in the shared database.
	req, _ := http.NewRequest(http.MethodGet, web.URL+"/lockctl/group_links", nil)
	req.Header.Set("Authorization", "KISI-LOGIN "+d.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var links []struct {
		ID int64 `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&links)
	resp.Body.Close()
	if err != nil || len(links) != 1 || links[0].ID != v.Links[0].LinkID {
		t.Errorf("lockctl links = %+v (%v), want link %d", links, err, v.Links[0].LinkID)
	}
	waitOutbox(t, web.URL, d.AdminKey, "visitor@example.com", 15*time.Second)
	if !strings.Contains(worker.out.String(), `"msg":"scheduler lease","component":"scheduler","leader":true`) {
		t.Errorf("the worker process did not take the scheduler lease")
	}
	if strings.Contains(web.out.String(), `"component":"scheduler"`) || strings.Contains(web.out.String(), `"component":"worker"`) {
		t.Errorf("the web process ran a worker or scheduler")
	}
	worker.stop(t)
	web.stop(t)
}

// The worker-only process listens on no port.
func TestWorkerProcessHasNoListener(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, true)
	fake := newFakeKisi(t, 0)
	port := freePort(t)
	p := startProc(t, "worker", d.env(map[string]string{
		"LATCHKEY_ADDR":               fmt.Sprintf("127.0.0.1:%d", port),
		"LATCHKEY_CONTROLLER_URL":     fake.URL,
		"LATCHKEY_CONTROLLER_API_KEY": fake.Key,
	}), "serve", "--role", "worker")
	p.waitLog(t, "ready", 30*time.Second)
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("a worker-only process listens on its LATCHKEY_ADDR")
	}
	p.stop(t)
}

// flushRedis empties the deployment's Redis database.
func flushRedis(t testing.TB, redisURL string) {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	// FLUSHDB, not FLUSHALL: a real Redis here may hold other databases.
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flush redis: %v", err)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("redis holds %d keys after the flush (%v)", n, err)
	}
}

// A sync task lost with the queue (Redis flushed while no worker ran) is
// found again by a later worker's lost-sync sweep: the database, not Redis,
// knows what is owed.
func TestRedisFlushLosesNothing(t *testing.T) {
	t.Parallel()
	fake := newFakeKisi(t, 0)
	d := newDeployment(t, true)
	d.Extra["LATCHKEY_CONTROLLER_URL"] = fake.URL
	d.Extra["LATCHKEY_CONTROLLER_API_KEY"] = fake.Key
	d.Extra["LATCHKEY_LOST_AFTER"] = "1s"
	d.Extra["LATCHKEY_SWEEP_INTERVAL"] = "1s"

	web := d.serve(t, "web", nil, "--role", "web")
	createMapping(t, web.URL, d.AdminKey, mappingBody("359435", []int64{1}))
	res := signIn(t, web.URL, d.EnvoySecret, walkInBody(t, nil))
	if ids := pendingSyncs(t, d.RedisURL); len(ids) != 1 {
		t.Fatalf("pending sync tasks = %q, want one", ids)
	}
	flushRedis(t, d.RedisURL)
	web.stop(t)

	worker := d.serve(t, "worker", nil, "--role", "worker,scheduler")
	select {
	case name := <-fake.created:
		t.Logf("link %q created after the flush", name)
	case <-time.After(15 * time.Second):
		t.Fatal("no link created within 15s of a worker starting after the flush")
	}
	web2 := d.serve(t, "web again", nil, "--role", "web")
	v := waitVisit(t, web2.URL, d.AdminKey, res.VisitID, 15*time.Second, "synced with one link", syncedWithOneLink)
	if v.Status != "active" {
		t.Errorf("visit status %q, want active", v.Status)
	}
	worker.stop(t)
	web2.stop(t)
}

// The guest email owed after a sync is owed by the database too: when the
// process dies while the email task runs and the queue is lost with it, a
// restarted deployment still sends the email.
func TestGuestEmailSurvivesLostQueue(t *testing.T) {
	t.Parallel()
	fake := newFakeKisi(t, 0)
	d := newDeployment(t, true)
	d.Extra["LATCHKEY_CONTROLLER_URL"] = fake.URL
	d.Extra["LATCHKEY_CONTROLLER_API_KEY"] = fake.Key
	d.Extra["LATCHKEY_LOST_AFTER"] = "1s"
	d.Extra["LATCHKEY_SWEEP_INTERVAL"] = "1s"

	p := d.serve(t, "serve", nil)
	createMapping(t, p.URL, d.AdminKey, mappingBody("359435", []int64{1}))
	release := fake.blockLocks() // the email task lists the doors
	res := signIn(t, p.URL, d.EnvoySecret, walkInBody(t, nil))
	select {
	case <-fake.locksSeen:
	case <-time.After(15 * time.Second):
		t.Fatal("the email task did not start within 15s")
	}
	// (The mapping's own re-check may ask for one more sync; it needs no
	// controller call.)
	waitVisit(t, p.URL, d.AdminKey, res.VisitID, 10*time.Second, "synced while its email is being sent", syncedWithOneLink)
	p.signal(t, syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	flushRedis(t, d.RedisURL)
	release()

	p2 := d.serve(t, "serve again", nil)
	if !outboxHas(t, p2.URL, d.AdminKey, "visitor@example.com", 5*time.Second) {
		t.Fatal("the guest email whose task was lost with the queue was not sent after the restart")
	}
	p2.stop(t)
}

// A worker without a web role must be told where the bundled controller is.
func TestWorkerWithoutControllerOrPublicURL(t *testing.T) {
	d := newDeployment(t, true)
	env := d.env(map[string]string{"LATCHKEY_ADDR": fmt.Sprintf("127.0.0.1:%d", freePort(t))})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := &cancelOnWrite{cancel: cancel, marker: `"msg":"ready"`}
	err := run(ctx, []string{"serve", "--role", "worker"}, mapEnv(env), out)
	if err == nil || !strings.HasPrefix(err.Error(), "LATCHKEY_CONTROLLER_URL: ") || !strings.Contains(err.Error(), "LATCHKEY_PUBLIC_URL") {
		t.Errorf("worker with neither LATCHKEY_CONTROLLER_URL nor LATCHKEY_PUBLIC_URL: err = %v, want one naming both", err)
	}
	if strings.Contains(out.String(), `"msg":"ready"`) {
		t.Errorf("the worker got ready:\n%s", out.String())
	}
}
