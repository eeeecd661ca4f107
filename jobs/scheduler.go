package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
)

// SchedulerOptions sets the sweep intervals; the zero value gives the
// defaults (expire every 30s, lost syncs every 30s, drift every 10m).
type SchedulerOptions struct {
	ExpireEvery time.Duration
	LostEvery   time.Duration
	DriftEvery  time.Duration
	// LeaseTTL is how long a leader's lease lasts without renewal
	// (default 15s); a standby takes over at most this long after a
	// leader dies.
	LeaseTTL time.Duration
}

// leaseKey is the Redis key holding the scheduler lease.
const leaseKey = "latchkey:scheduler:leader"

// queueMarkKey is a key that lives as long as the queue's data: the leader
// finding it gone knows Redis lost every queued task (or is new), and
// enqueues a recovery sweep at once instead of waiting for LostAfter.
const queueMarkKey = "latchkey:queue:mark"

// markEvery is how often the leader looks for the queue mark.
const markEvery = time.Second

// Scheduler runs cron entries that enqueue sweep tasks. Any number of
// replicas may run; only the one holding the Redis lease enqueues, and
// sweep task ids come from the tick, so a tick is enqueued at most once.
type Scheduler struct {
	log    *slog.Logger
	redis  redis.UniversalClient
	asynq  *asynq.Client
	cron   *cron.Cron
	id     string
	ttl    time.Duration
	mu     sync.Mutex
	leader bool
	stop   chan struct{}
	done   chan struct{}
	// fired counts enqueued ticks per task type (for metrics and tests).
	fired map[string]int
}

// NewScheduler returns a scheduler on r.
func NewScheduler(log *slog.Logger, r *Redis, opts SchedulerOptions) *Scheduler {
	if opts.ExpireEvery <= 0 {
		opts.ExpireEvery = 30 * time.Second
	}
	if opts.LostEvery <= 0 {
		opts.LostEvery = 30 * time.Second
	}
	if opts.DriftEvery <= 0 {
		opts.DriftEvery = 10 * time.Minute
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	l := log.With("component", "scheduler")
	cl := cronLogger{l}
	s := &Scheduler{
		log:   l,
		redis: r.c,
		asynq: asynq.NewClientFromRedisClient(r.c),
		cron:  cron.New(cron.WithLocation(time.UTC), cron.WithSeconds(), cron.WithLogger(cl), cron.WithChain(cron.Recover(cl))),
		id:    randomID(),
		ttl:   opts.LeaseTTL,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		fired: map[string]int{},
	}
	s.every(opts.ExpireEvery, TypeSweepExpire)
	s.every(opts.LostEvery, TypeSweepLost)
	s.every(opts.DriftEvery, TypeSweepDrift)
	return s
}

func (s *Scheduler) every(d time.Duration, typ string) {
	s.cron.Schedule(cron.Every(d), cron.FuncJob(func() { s.tick(typ, d) }))
}

// tick enqueues one sweep if this replica leads. The tick time is the
// interval boundary, so replicas that tick a little apart agree on the id.
func (s *Scheduler) tick(typ string, every time.Duration) {
	if !s.IsLeader() {
		return
	}
	tick := time.Now().UTC().Round(every)
	t, id, err := NewSweepTask(typ, tick)
	if err != nil {
		s.log.Error("build sweep task", "task_type", typ, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = s.asynq.EnqueueContext(ctx, t, asynq.TaskID(id), asynq.Retention(2*every))
	switch {
	case err == nil:
		s.mu.Lock()
		s.fired[typ]++
		s.mu.Unlock()
	case isDuplicate(err):
	default:
		s.log.Error("enqueue sweep", "task_type", typ, "task_id", id, "err", err)
	}
}

// Fired returns how many ticks of typ this replica enqueued.
func (s *Scheduler) Fired(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fired[typ]
}

// IsLeader reports whether this replica holds the lease.
func (s *Scheduler) IsLeader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// Start starts the lease loop and the cron entries.
func (s *Scheduler) Start() {
	s.acquire()
	go s.leaseLoop()
	s.cron.Start()
}

// Stop stops the cron, waits for running entries, and gives up the lease so
// a standby takes over at once. It honours ctx's deadline.
func (s *Scheduler) Stop(ctx context.Context) {
	cronDone := s.cron.Stop().Done()
	close(s.stop)
	select {
	case <-cronDone:
	case <-ctx.Done():
	}
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	s.release(ctx)
}

func (s *Scheduler) leaseLoop() {
	defer close(s.done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	mark := time.NewTicker(markEvery)
	defer mark.Stop()
	s.checkQueueMark()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.acquire()
		case <-mark.C:
			s.checkQueueMark()
		}
	}
}

// checkQueueMark, on the leader, sets the queue mark if it is missing and
// then enqueues a recovery sweep: the queue is new or was emptied, so work
// the database owes may be queued nowhere.
func (s *Scheduler) checkQueueMark() {
	if !s.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), markEvery)
	defer cancel()
	set, err := s.redis.SetNX(ctx, queueMarkKey, s.id, 0).Result()
	if err != nil || !set {
		return
	}
	t, id, err := NewRecoverSweepTask(time.Now().UTC())
	if err == nil {
		_, err = s.asynq.EnqueueContext(ctx, t, asynq.TaskID(id))
	}
	if err != nil {
		// Try again at the next look.
		s.redis.Del(context.WithoutCancel(ctx), queueMarkKey)
		s.log.Warn("enqueue recovery sweep", "err", err)
		return
	}
	s.log.Info("queue is new or was emptied: recovering owed work from the database")
	s.mu.Lock()
	s.fired[TypeSweepLost]++
	s.mu.Unlock()
}

// renewScript extends the lease only if this replica still holds it.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

func (s *Scheduler) acquire() {
	ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
	defer cancel()
	ok, err := s.redis.SetNX(ctx, leaseKey, s.id, s.ttl).Result()
	if err == nil && !ok {
		var n int64
		n, err = renewScript.Run(ctx, s.redis, []string{leaseKey}, s.id, s.ttl.Milliseconds()).Int64()
		ok = n == 1
	}
	if err != nil {
		s.log.Warn("scheduler lease", "err", err)
		ok = false
	}
	s.mu.Lock()
	changed := s.leader != ok
	s.leader = ok
	s.mu.Unlock()
	if changed {
		s.log.Info("scheduler lease", "leader", ok, "replica", s.id)
	}
}

func (s *Scheduler) release(ctx context.Context) {
	if err := releaseScript.Run(ctx, s.redis, []string{leaseKey}, s.id).Err(); err != nil {
		s.log.Warn("release scheduler lease", "err", err)
	}
	s.mu.Lock()
	s.leader = false
	s.mu.Unlock()
}

func isDuplicate(err error) bool {
	return err != nil && (errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask))
}

func randomID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
