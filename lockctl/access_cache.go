package lockctl

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The unlock decision of a group link needs the link (its group, enabled
// flag and validity window), whether its group holds the door, and the
// door's state (online, locked down). The link is read with the access
// generation, in the one read every decision makes (see view): links are
// many and each is used rarely, so keeping them would not save that read.
// The doors and the groups' doors are few and change rarely: accessCache
// keeps them in memory, keyed by the lock and the group, so that a
// decision costs that one read instead of three or four queries.
//
// Staleness across replicas. Every write that can change such a decision
// (a link updated or deleted, a group's locks changed, a lock going
// offline or locked down, and back) bumps the one-row access generation
// in its own transaction (bumpGeneration). Every decision first reads the
// generation (decisions that arrive together share a read begun after
// each arrived); a cache filled under another generation is dropped whole
// before it is used. So a revocation committed by any process over the
// same database is seen by the very next decision of every process, and
// the cache never answers for a state older than the last committed
// change. Entries hold the data, never a verdict: the window is checked
// against the decision's own instant (CheckUnlock), so validity stays exact
// to the second.
//
// Person credentials (access keys, logins) and their role assignments are
// not cached: their decisions read the database every time.
//
// The cache is bounded: past accessCacheMax entries of one kind it is
// emptied and refilled from the database. Entries live at most
// accessCacheMaxAge, so a write made without the bump (an earlier
// release's controller during a rolling upgrade, an operator's SQL) is
// seen within that long.
type accessCache struct {
	mu       sync.Mutex
	gen      int64
	filled   bool      // gen is the generation the entries were read under
	filledAt time.Time // when the entries began to be read
	locks    map[int64]Lock
	groups   map[int64]map[int64]bool // group id → the ids of its locks
}

// accessCacheMax bounds each of the cache's maps.
const accessCacheMax = 50_000

// accessCacheMaxAge bounds how long entries are kept even when the
// generation has not moved: a write made without the bump (a controller
// of an earlier release during a rolling upgrade, an operator's SQL) is
// seen within this long.
const accessCacheMaxAge = 10 * time.Second

func newAccessCache() *accessCache {
	return &accessCache{locks: map[int64]Lock{}, groups: map[int64]map[int64]bool{}}
}

// sync makes the cache hold only entries read under generation gen.
func (c *accessCache) sync(gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.filled && c.gen == gen && time.Since(c.filledAt) < accessCacheMaxAge {
		return
	}
	if c.filled && gen < c.gen {
		// A decision that read the generation before a later one already
		// synced the cache: it reads the database, the cache stays.
		return
	}
	c.gen, c.filled, c.filledAt = gen, true, time.Now()
	c.clearLocked()
}

func (c *accessCache) clearLocked() {
	clear(c.locks)
	clear(c.groups)
}

// accessView is one decision's look at the access data: everything it
// returns was read under generation gen or later.
type accessView struct {
	s   *store
	c   *accessCache
	gen int64
}

// accessReaders is how many reads of the access data run at once; the
// decisions arriving meanwhile share the next, of at most accessReadMax
// of them. On SQLite, whose four connections are the writers' too, one
// reader measured 2,133–2,268 unlocks/s and two 2,495–2,582/s, as many
// as with the links read one by one before.
const (
	accessReaders   = 2
	accessReadMax   = 256
	accessReadLimit = 10 * time.Second
)

// view reads the access generation and returns a view under it. It fails
// when the generation cannot be read: then nothing is decided. Decisions
// that arrive together share one read, and each its own read's view: one
// that began after the decision did (batch.Reader), so it holds every
// change committed before.
func (ctl *Controller) view(ctx context.Context) (*accessView, error) {
	v, _, _, err := ctl.linkView(ctx, "")
	return v, err
}

// linkView is view that also reads the link whose secret hashes to hash,
// in the same read: found is false when no link has that secret.
func (ctl *Controller) linkView(ctx context.Context, hash string) (v *accessView, l GroupLink, found bool, err error) {
	r, ok, err := ctl.accessReads.Get(ctx, hash)
	if err == nil && !ok {
		err = errors.New("read access data: no answer for the decision")
	}
	if err != nil {
		return nil, l, false, err
	}
	ctl.access.sync(r.Gen)
	return &accessView{s: ctl.store, c: ctl.access, gen: r.Gen}, r.Link, r.Found, nil
}

// current reports whether the cache holds entries of v's generation; c.mu
// is held.
func (v *accessView) currentLocked() bool { return v.c.filled && v.c.gen == v.gen }

// lock is store.lock through the cache. Only the fields an unlock decision
// and its event use are current: the open/closed state (Unlocked) is not
// kept up to date.
func (v *accessView) lock(ctx context.Context, id int64) (Lock, error) {
	v.c.mu.Lock()
	l, ok := v.c.locks[id]
	ok = ok && v.currentLocked()
	v.c.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := v.s.lock(ctx, id)
	if err != nil {
		return l, err
	}
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	if v.currentLocked() {
		if len(v.c.locks) >= accessCacheMax {
			clear(v.c.locks)
		}
		v.c.locks[id] = l
	}
	return l, nil
}

// groupOpens reports whether the group opens the lock, through the cache: the group's locks are
// read once per generation.
func (v *accessView) groupOpens(ctx context.Context, groupID, lockID int64) (bool, error) {
	v.c.mu.Lock()
	set, ok := v.c.groups[groupID]
	ok = ok && v.currentLocked()
	v.c.mu.Unlock()
	if ok {
		return set[lockID], nil
	}
	ids, err := v.s.groupLockIDs(ctx, groupID)
	if err != nil {
		return false, err
	}
	set = make(map[int64]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	if v.currentLocked() {
		if len(v.c.groups) >= accessCacheMax {
			clear(v.c.groups)
		}
		v.c.groups[groupID] = set
	}
	return set[lockID], nil
}
