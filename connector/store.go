package connector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/mappings"
)

// ErrVisitNotFound is returned for a visit id or pass that does not exist.
var ErrVisitNotFound = &latchkey.Error{Kind: latchkey.NotFound, Msg: "visit not found"}

// ErrBusy is returned when another reconciler holds the visit; try again.
var ErrBusy = &latchkey.Error{Kind: latchkey.Conflict, Msg: "visit is being synced by another worker"}

// Migrate creates or extends the connector's tables.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&Visit{}, &VisitLink{}, &TimelineEntry{}, &Delivery{}, &VisitPerson{}, &VisitRole{}); err != nil {
		return fmt.Errorf("migrate connector: %w", err)
	}
	if err := migrateInstalls(ctx, db); err != nil {
		return fmt.Errorf("migrate connector: installs: %w", err)
	}
	if err := migrateReports(ctx, db); err != nil {
		return fmt.Errorf("migrate connector: reports: %w", err)
	}
	if err := migrateIndexes(ctx, db); err != nil {
		return fmt.Errorf("migrate connector: %w", err)
	}
	return nil
}

// Store persists visits, their links, timelines and webhook deliveries. It is
// safe for concurrent use.
type Store struct {
	db *gorm.DB
	// inTx is set on the Store that tx hands out: visits it reads are
	// locked until the transaction ends, so two changes to one visit
	// apply one after the other instead of one over the other.
	inTx bool
	// batch is set on the Store a batch of deliveries shares (see
	// ingestBatcher).
	batch *txBatch
}

// NewStore returns a Store on db.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// InTx runs fn in one transaction with a Store bound to it: everything fn
// reads and writes through tx (visits, links, timelines, deliveries and
// flow mappings) goes over the transaction's one connection. A use case
// must not reach for a second connection while it holds a transaction:
// SQLite's pool is small and its writers queue, so the second connection
// may wait on the first for good.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	if s.inTx {
		return fn(s)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return fn(&Store{db: tx, inTx: true}) })
}

// Mapping returns the flow mapping for (location, flow), read on this
// Store's connection, or nil when there is none (or flow is empty).
func (s *Store) Mapping(ctx context.Context, install, location, flow string) (*mappings.Mapping, error) {
	if flow == "" {
		return nil, nil
	}
	if m, ok := s.batch.mapping(install, location, flow); ok {
		return m, nil
	}
	m, err := s.readMapping(ctx, install, location, flow)
	if err == nil {
		s.batch.keepMapping(install, location, flow, m)
	}
	return m, err
}

func (s *Store) readMapping(ctx context.Context, install, location, flow string) (*mappings.Mapping, error) {
	if in, found, err := s.Install(ctx, install); err != nil || (found && in.Configured) {
		if err != nil {
			return nil, err
		}
		return in.Config.mapping(location, flow), nil
	}
	m, err := mappings.NewStore(s.db).Find(ctx, location, flow)
	if latchkey.KindOf(err) == latchkey.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, latchkey.Wrap(latchkey.Unavailable, "could not read flow mappings", err)
	}
	return &m, nil
}

// visits starts a query for visits to be changed: inside a transaction the
// rows read are locked (SELECT … FOR UPDATE on PostgreSQL; SQLite's write
// transactions already run one at a time).
func (s *Store) visits(ctx context.Context) *gorm.DB {
	q := s.db.WithContext(ctx)
	if s.inTx {
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return q
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

func (s *Store) deliveryByKey(ctx context.Context, key string) (Delivery, bool, error) {
	var d Delivery
	err := s.db.WithContext(ctx).Where("dedupe_key = ?", key).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("find delivery: %w", err)
	}
	return d, true, nil
}

func (s *Store) createDelivery(ctx context.Context, d *Delivery) error {
	if s.batch != nil {
		s.batch.deliveries = append(s.batch.deliveries, d)
		return nil
	}
	return s.insertDeliveries(ctx, d)
}

// insertDeliveries stores ds in one statement; a key already stored is
// errDuplicateDelivery.
func (s *Store) insertDeliveries(ctx context.Context, ds ...*Delivery) error {
	err := s.db.WithContext(ctx).Create(ds).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return errDuplicateDelivery
	}
	if err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}

var errDuplicateDelivery = errors.New("duplicate delivery")

// storedDeliveryKeys returns which of keys a stored delivery has.
func (s *Store) storedDeliveryKeys(ctx context.Context, keys []string) ([]string, error) {
	var stored []string
	if err := s.db.WithContext(ctx).Model(&Delivery{}).Where("dedupe_key IN ?", keys).Pluck("dedupe_key", &stored).Error; err != nil {
		return nil, fmt.Errorf("find deliveries: %w", err)
	}
	return stored, nil
}

// visitsFor returns the visits an event belongs to, oldest first: the one
// keyed by source, and those that recorded its entry or invite id.
func (s *Store) visitsFor(ctx context.Context, install, location, source, entry, invite string) ([]Visit, error) {
	var vs []Visit
	if err := visitsForQuery(s.visits(ctx), install, location, source, entry, invite).Find(&vs).Error; err != nil {
		return nil, fmt.Errorf("find visits of %s: %w", source, err)
	}
	return vs, nil
}

// visitsForQuery selects the visits of visitsFor. Each alternative names
// the install and location with the column it looks up, so each is one
// index lookup: with the install and location outside the OR, SQLite
// (which has no statistics to go by) reads every visit of the location.
func visitsForQuery(q *gorm.DB, install, location, source, entry, invite string) *gorm.DB {
	sources := []string{source}
	cond := "(install_id = ? AND location_id = ? AND source_id IN ?)"
	args := []any{install, location, nil}
	if entry != "" {
		sources = append(sources, "entry:"+entry)
		cond += " OR (install_id = ? AND location_id = ? AND entry_id = ?)"
		args = append(args, install, location, entry)
	}
	if invite != "" {
		sources = append(sources, "invite:"+invite)
		cond += " OR (install_id = ? AND location_id = ? AND invite_id = ?)"
		args = append(args, install, location, invite)
	}
	args[2] = sources
	return q.Model(&Visit{}).Where(cond, args...).Order("id")
}

// identityKeys are the identities an event may find or create a visit
// under: its entry and its invite.
func identityKeys(ev Event) []string {
	var keys []string
	if ev.EntryID != "" {
		keys = append(keys, "entry:"+ev.EntryID)
	}
	if ev.InviteID != "" {
		keys = append(keys, "invite:"+ev.InviteID)
	}
	if len(keys) == 0 {
		keys = append(keys, ev.SourceID())
	}
	return keys
}

// identityLocks names the locks lockIdentities takes for ev: one per
// identity, within its install and location.
func identityLocks(ev Event) []string {
	keys := identityKeys(ev)
	for i, k := range keys {
		keys[i] = ev.InstallID + "|" + ev.LocationID + "|" + k
	}
	return keys
}

// lockIdentities takes a transaction-scoped lock on each identity (see
// identityLocks) before a visit is looked up by them: SELECT … FOR UPDATE
// cannot lock a row that another transaction is about to insert. Every
// transaction takes its locks in one statement, in sorted order, so no two
// wait on each other in a circle; a batch takes all its deliveries' locks
// at once, and a delivery's own call then finds them held. On SQLite,
// whose writers already run one at a time, it does nothing.
func (s *Store) lockIdentities(ctx context.Context, keys ...string) error {
	if s.db.Dialector.Name() != "postgres" {
		return nil
	}
	keys = slices.DeleteFunc(slices.Clone(keys), s.batch.holds)
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	// VALUES yields its rows in order, so the locks are taken in it.
	sql := "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (VALUES " +
		strings.TrimSuffix(strings.Repeat("(?),", len(keys)), ",") + ") AS ids(k)"
	if err := s.db.WithContext(ctx).Exec(sql, args...).Error; err != nil {
		return fmt.Errorf("lock visit identities: %w", err)
	}
	s.batch.hold(keys)
	return nil
}

// Visit returns visit id.
func (s *Store) Visit(ctx context.Context, id int64) (Visit, error) {
	var v Visit
	err := s.visits(ctx).Take(&v, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return v, ErrVisitNotFound
	}
	if err != nil {
		return v, fmt.Errorf("get visit %d: %w", id, err)
	}
	return v, nil
}

// VisitByPassHash returns the visit whose pass token hashes to hash.
func (s *Store) VisitByPassHash(ctx context.Context, hash string) (Visit, error) {
	var v Visit
	err := s.db.WithContext(ctx).Where("pass_hash = ?", hash).Take(&v).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return v, ErrVisitNotFound
	}
	if err != nil {
		return v, fmt.Errorf("get visit by pass: %w", err)
	}
	return v, nil
}

func (s *Store) saveVisit(ctx context.Context, v *Visit) error {
	err := s.db.WithContext(ctx).Omit(clause.Associations).Save(v).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return errVisitExists
	}
	if err != nil {
		return fmt.Errorf("save visit %d: %w", v.ID, err)
	}
	return nil
}

// errVisitExists is returned for a new visit whose key another transaction
// stored first.
var errVisitExists = errors.New("visit already exists")

// Links returns the visit's links, including removed ones.
func (s *Store) Links(ctx context.Context, visitID int64) ([]VisitLink, error) {
	var ls []VisitLink
	if err := s.db.WithContext(ctx).Where("visit_id = ?", visitID).Order("group_id").Find(&ls).Error; err != nil {
		return nil, fmt.Errorf("links of visit %d: %w", visitID, err)
	}
	return ls, nil
}

// LinksOf returns the links of several visits, keyed by visit id, in as
// few queries as the id list allows.
func (s *Store) LinksOf(ctx context.Context, visitIDs []int64) (map[int64][]VisitLink, error) {
	out := map[int64][]VisitLink{}
	for start := 0; start < len(visitIDs); start += 500 {
		end := min(start+500, len(visitIDs))
		var ls []VisitLink
		if err := s.db.WithContext(ctx).Where("visit_id IN ?", visitIDs[start:end]).Order("visit_id, group_id").Find(&ls).Error; err != nil {
			return nil, fmt.Errorf("links of %d visits: %w", end-start, err)
		}
		for _, l := range ls {
			out[l.VisitID] = append(out[l.VisitID], l)
		}
	}
	return out, nil
}

// saveLink writes a visit's link row, for a caller that holds no lease.
func (s *Store) saveLink(ctx context.Context, l *VisitLink) error {
	if err := s.db.WithContext(ctx).Save(l).Error; err != nil {
		return fmt.Errorf("save link of visit %d group %d: %w", l.VisitID, l.GroupID, err)
	}
	return nil
}

// Lease is a held sync lease on one visit. Only the holder of a visit's
// lease changes its links on the controller.
type Lease struct {
	store   *Store
	visitID int64
	owner   string
	// taken is the visit as the lease found it, until Visit hands it out.
	taken *Visit
	// finishing is set while the statement that marks the visit synced
	// also gives the lease up (renewals pause), and released once it has.
	finishing, released atomic.Bool
}

// Visit returns the leased visit: the first time as the statement that
// took the lease read it, afterwards as stored now.
func (l *Lease) Visit(ctx context.Context) (Visit, error) {
	if v := l.taken; v != nil {
		l.taken = nil
		return *v, nil
	}
	return l.store.Visit(ctx, l.visitID)
}

// Acquire takes visit id's sync lease for owner until until; it fails with
// ErrBusy while another holder's lease runs, and with ErrVisitNotFound for
// an unknown visit.
func (s *Store) Acquire(ctx context.Context, id int64, owner string, now, until time.Time) (*Lease, error) {
	var v Visit
	res := s.db.WithContext(ctx).Model(&v).Clauses(clause.Returning{}).
		Where("id = ? AND (sync_lease_until IS NULL OR sync_lease_until < ?)", id, now.UTC()).
		UpdateColumns(map[string]any{"sync_lease_until": until.UTC(), "sync_lease_owner": owner})
	if res.Error != nil {
		return nil, fmt.Errorf("lease visit %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.Visit(ctx, id); err != nil {
			return nil, err
		}
		return nil, ErrBusy
	}
	l := &Lease{store: s, visitID: id, owner: owner}
	if v.ID == id {
		l.taken = &v
	}
	return l, nil
}

// SaveLink writes a link row of the leased visit. An existing row is
// written only while the lease is still held: a reconciler that stalled
// past its lease must not overwrite what the one that took over recorded.
// It then fails with errLeaseLost.
func (l *Lease) SaveLink(ctx context.Context, row *VisitLink) error {
	if row.VisitID != l.visitID || row.ID == 0 {
		return l.store.saveLink(ctx, row)
	}
	row.UpdatedAt = time.Now().UTC()
	res := l.store.db.WithContext(ctx).Model(row).Select("*").Omit("created_at").
		Where("EXISTS (SELECT 1 FROM visits WHERE visits.id = ? AND visits.sync_lease_owner = ?)", row.VisitID, l.owner).
		Updates(row)
	if res.Error != nil {
		return fmt.Errorf("save link of visit %d group %d: %w", row.VisitID, row.GroupID, res.Error)
	}
	if res.RowsAffected == 0 {
		return errLeaseLost
	}
	return nil
}

// Renew extends the lease to until; it reports false when its owner no
// longer holds it.
func (l *Lease) Renew(ctx context.Context, until time.Time) (bool, error) {
	res := l.store.db.WithContext(ctx).Model(&Visit{}).Where("id = ? AND sync_lease_owner = ?", l.visitID, l.owner).
		UpdateColumn("sync_lease_until", until.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("renew lease of visit %d: %w", l.visitID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Release gives the lease up, if its owner still holds it.
func (l *Lease) Release(ctx context.Context) error {
	if l.released.Load() {
		return nil // given up by finishSync
	}
	err := l.store.db.WithContext(ctx).Model(&Visit{}).Where("id = ? AND sync_lease_owner = ?", l.visitID, l.owner).
		UpdateColumns(map[string]any{"sync_lease_until": nil, "sync_lease_owner": ""}).Error
	if err != nil {
		return fmt.Errorf("release visit %d: %w", l.visitID, err)
	}
	return nil
}

// errLeaseLost is returned for a write under a sync lease that another
// reconciler has taken since.
var errLeaseLost = &latchkey.Error{Kind: latchkey.Conflict, Msg: "the visit's sync lease was lost; another reconciler has it"}

// statuses returns the status of each of the given visits.
func (s *Store) statuses(ctx context.Context, ids []int64) (map[int64]Status, error) {
	out := make(map[int64]Status, len(ids))
	for start := 0; start < len(ids); start += 500 {
		var rows []struct {
			ID     int64
			Status Status
		}
		end := min(start+500, len(ids))
		if err := s.db.WithContext(ctx).Model(&Visit{}).Select("id, status").Where("id IN ?", ids[start:end]).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("visit statuses: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r.Status
		}
	}
	return out, nil
}

// creatingElsewhere reports whether another visit's link row on group has a
// creation described by key under way.
func (s *Store) creatingElsewhere(ctx context.Context, visitID, group int64, key string) (bool, error) {
	var n int64
	err := creatingElsewhereQuery(s.db.WithContext(ctx), visitID, group, key).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("links being created on group %d: %w", group, err)
	}
	return n > 0, nil
}

// creatingElsewhereQuery selects creatingElsewhere's rows, through the
// partial index visit_links_creating.
func creatingElsewhereQuery(q *gorm.DB, visitID, group int64, key string) *gorm.DB {
	return q.Model(&VisitLink{}).Where(creatingSQL+" AND group_id = ? AND creating = ? AND visit_id <> ?", group, key, visitID)
}

// linksByControllerID maps controller link ids to their rows.
func (s *Store) linksByControllerID(ctx context.Context, ids []int64) (map[int64]VisitLink, error) {
	out := map[int64]VisitLink{}
	for start := 0; start < len(ids); start += 500 {
		end := min(start+500, len(ids))
		var ls []VisitLink
		if err := s.db.WithContext(ctx).Where("link_id IN ?", ids[start:end]).Find(&ls).Error; err != nil {
			return nil, fmt.Errorf("links by controller id: %w", err)
		}
		for _, l := range ls {
			out[l.LinkID] = l
		}
	}
	return out, nil
}

// activeLinks returns the links of visits that should have access.
func (s *Store) activeLinks(ctx context.Context) ([]VisitLink, error) {
	var ls []VisitLink
	if err := activeLinksQuery(s.db.WithContext(ctx)).Find(&ls).Error; err != nil {
		return nil, fmt.Errorf("active links: %w", err)
	}
	return ls, nil
}

// activeLinksQuery selects activeLinks' rows: the live visits (the partial
// index visits_live), then each one's links. CROSS JOIN keeps SQLite from
// reading every link ever made and looking up its visit; PostgreSQL plans
// it as any join.
func activeLinksQuery(q *gorm.DB) *gorm.DB {
	return q.Table("visits").Joins("CROSS JOIN visit_links").
		Where("visit_links.visit_id = visits.id AND visits."+liveSQL+" AND visit_links.removed = ?", false).
		Select("visit_links.*")
}

// AddTimeline appends an entry to a visit's timeline.
func (s *Store) AddTimeline(ctx context.Context, visitID int64, at time.Time, kind, msg string) error {
	return s.addTimeline(ctx, TimelineEntry{VisitID: visitID, At: at, Kind: kind, Message: msg})
}

// addTimeline appends entries in one statement.
func (s *Store) addTimeline(ctx context.Context, es ...TimelineEntry) error {
	for i := range es {
		es[i].At = es[i].At.UTC()
		es[i].Message = truncateText(es[i].Message, 1000)
	}
	if s.batch != nil {
		s.batch.timeline = append(s.batch.timeline, es...)
		return nil
	}
	if err := s.db.WithContext(ctx).Create(&es).Error; err != nil {
		return fmt.Errorf("timeline of visit %d: %w", es[0].VisitID, err)
	}
	return nil
}

// Timeline returns a visit's timeline, oldest first.
func (s *Store) Timeline(ctx context.Context, visitID int64) ([]TimelineEntry, error) {
	var es []TimelineEntry
	if err := s.db.WithContext(ctx).Where("visit_id = ?", visitID).Order("at, id").Find(&es).Error; err != nil {
		return nil, fmt.Errorf("timeline of visit %d: %w", visitID, err)
	}
	return es, nil
}

// VisitFilter selects visits for List.
type VisitFilter struct {
	Status     Status
	Email      string
	SourceID   string
	LocationID string
	Query      string
	Since      time.Time
	// EmailFailed keeps the visits whose guest email failed (see
	// emailFailedSQL).
	EmailFailed bool
	Limit       int
	Offset      int
}

// List returns visits newest first, and the total that match.
func (s *Store) List(ctx context.Context, f VisitFilter) ([]Visit, int64, error) {
	q := s.db.WithContext(ctx).Model(&Visit{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
		// The partial index of live visits, or of those that wait for
		// someone, serves the statuses it holds.
		switch f.Status {
		case StatusScheduled, StatusActive:
			q = q.Where(liveSQL)
		case StatusHeld, StatusFailed:
			q = q.Where(attentionSQL)
		}
	}
	if f.Email != "" {
		q = q.Where("email = ?", f.Email)
	}
	if f.SourceID != "" {
		q = q.Where("source_id = ?", f.SourceID)
	}
	if f.LocationID != "" {
		q = q.Where("location_id = ?", f.LocationID)
	}
	if f.Query != "" {
		like := likePattern(f.Query)
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\'`, like, like)
	}
	if !f.Since.IsZero() {
		q = q.Where("updated_at >= ?", f.Since.UTC())
	}
	if f.EmailFailed {
		q = q.Where(emailFailedSQL, KindEmailSent, KindEmailFailed, KindEmailFailed)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count visits: %w", err)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var vs []Visit
	if err := q.Order("created_at DESC, id DESC").Limit(f.Limit).Offset(f.Offset).Find(&vs).Error; err != nil {
		return nil, 0, fmt.Errorf("list visits: %w", err)
	}
	return vs, total, nil
}

// likePattern is q as a case-insensitive LIKE pattern matching it anywhere,
// with LIKE's wildcards escaped (use with ESCAPE '\' and LOWER(column)).
// Only ASCII letters are folded, as SQLite's LOWER does, so a search
// matches the same rows on SQLite and PostgreSQL for ASCII names.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	lower := strings.Map(func(c rune) rune {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}, q)
	return "%" + r.Replace(lower) + "%"
}

// LastUnlocks returns when each of the given visits last unlocked a door;
// visits that never did are absent.
func (s *Store) LastUnlocks(ctx context.Context, visitIDs []int64) (map[int64]time.Time, error) {
	out := map[int64]time.Time{}
	for start := 0; start < len(visitIDs); start += 500 {
		end := min(start+500, len(visitIDs))
		var es []TimelineEntry
		err := s.db.WithContext(ctx).Select("visit_id, at").
			Where("kind = ? AND visit_id IN ?", KindUnlock, visitIDs[start:end]).Find(&es).Error
		if err != nil {
			return nil, fmt.Errorf("last unlocks of %d visits: %w", end-start, err)
		}
		for _, e := range es {
			if e.At.After(out[e.VisitID]) {
				out[e.VisitID] = e.At
			}
		}
	}
	return out, nil
}

// SyncLag reports how many visits changed before cutoff wait for their
// sync, and when the longest-waiting of them changed (zero when none).
func (s *Store) SyncLag(ctx context.Context, cutoff time.Time) (int64, time.Time, error) {
	var n int64
	if err := syncLagQuery(s.db.WithContext(ctx), cutoff).Count(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("count unsynced visits: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var v Visit
	if err := unsyncedQuery(s.db.WithContext(ctx), cutoff, 1).Select("id, updated_at").Take(&v).Error; err != nil {
		return n, time.Time{}, fmt.Errorf("oldest unsynced visit: %w", err)
	}
	return n, v.UpdatedAt, nil
}

// maxSyncLag bounds the count of visits waiting for their sync: far more
// than ever wait, and a bound that keeps the count on visits_owed (below).
const maxSyncLag = 1_000_000

// syncLagQuery counts SyncLag's visits, up to maxSyncLag. PostgreSQL cannot
// estimate the owed predicate (it compares two columns of a row, so it
// guesses a third of all visits match) and would rather scan the table than
// read visits_owed; ordered by the index's column and bounded, the count
// reads the index.
func syncLagQuery(q *gorm.DB, cutoff time.Time) *gorm.DB {
	return q.Table("(?) AS lag", unsyncedQuery(q.Session(&gorm.Session{NewDB: true}), cutoff, maxSyncLag).Select("id"))
}

// due returns visits whose status changes by time alone as of now.
func (s *Store) due(ctx context.Context, now time.Time, limit int) ([]VisitRef, error) {
	var refs []VisitRef
	if err := dueQuery(s.db.WithContext(ctx), now, limit).Scan(&refs).Error; err != nil {
		return nil, fmt.Errorf("due visits: %w", err)
	}
	return refs, nil
}

// dueQuery selects due's visits: windows that open (the partial index
// visits_starting) and windows that close (visits_live). It has no ORDER
// BY: with one, SQLite walks the primary key through every visit stored
// instead of the two indexes.
func dueQuery(q *gorm.DB, now time.Time, limit int) *gorm.DB {
	return q.Model(&Visit{}).Select("id, version").
		Where("("+startingSQL+" AND valid_from <= ?) OR ("+liveSQL+" AND valid_until <= ?)", now.UTC(), now.UTC()).
		Limit(limit)
}

// unsynced returns visits changed before cutoff whose change was not synced,
// or whose guest email is still owed.
func (s *Store) unsynced(ctx context.Context, cutoff time.Time, limit int) ([]VisitRef, error) {
	var refs []VisitRef
	if err := unsyncedQuery(s.db.WithContext(ctx), cutoff, limit).Scan(&refs).Error; err != nil {
		return nil, fmt.Errorf("unsynced visits: %w", err)
	}
	return refs, nil
}

// unsyncedQuery selects unsynced's visits, the longest waiting first,
// through the partial index visits_owed. The order keeps PostgreSQL on the
// index: it guesses that a third of all visits owe work (see syncLagQuery),
// so without it a scan of the table looks as quick a way to find limit.
func unsyncedQuery(q *gorm.DB, cutoff time.Time, limit int) *gorm.DB {
	return q.Model(&Visit{}).Select("id, version").
		Where(owedSQL+" AND updated_at < ? AND synced_version < version", cutoff.UTC()).Order("updated_at").Limit(limit)
}

// emailsOwed lists the guest emails of synced visits, changed before cutoff,
// whose sync made an email due that has not been sent.
func (s *Store) emailsOwed(ctx context.Context, cutoff time.Time, limit int) ([]EmailDue, error) {
	var rows []struct {
		ID            int64
		EmailDueKey   string
		EmailedWindow string
	}
	err := emailsOwedQuery(s.db.WithContext(ctx), cutoff, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("owed emails: %w", err)
	}
	out := make([]EmailDue, 0, len(rows))
	for _, r := range rows {
		if r.EmailDueKey == r.EmailedWindow {
			continue
		}
		kind := EmailAccess
		if r.EmailedWindow != "" {
			kind = EmailUpdated
		}
		out = append(out, EmailDue{VisitID: r.ID, Kind: kind, Key: r.EmailDueKey})
	}
	return out, nil
}

// emailsOwedQuery selects emailsOwed's visits, the longest waiting first,
// through the partial index visits_owed (ordered as unsyncedQuery).
func emailsOwedQuery(q *gorm.DB, cutoff time.Time, limit int) *gorm.DB {
	return q.Model(&Visit{}).Select("id, email_due_key, emailed_window").
		Where(owedSQL+" AND updated_at < ? AND synced_version = version AND "+liveSQL+" AND email_due_key <> ''", cutoff.UTC()).
		Order("updated_at").Limit(limit)
}

// claimEmail claims the sending of message key for visit id until until,
// and reports whether it did: false while another sender's claim on the
// same key has not run out, and false once window (when not "") is
// recorded as emailed, so a sender that read the visit before another's
// send was recorded does not send it again.
func (s *Store) claimEmail(ctx context.Context, id int64, key, window string, now, until time.Time) (bool, error) {
	q := s.db.WithContext(ctx).Model(&Visit{}).
		Where("id = ? AND (email_sending <> ? OR email_sending_until IS NULL OR email_sending_until < ?)", id, key, now.UTC())
	if window != "" {
		q = q.Where("emailed_window <> ?", window)
	}
	res := q.Updates(map[string]any{"email_sending": key, "email_sending_until": until.UTC()})
	if res.Error != nil {
		return false, fmt.Errorf("claim email of visit %d: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// releaseEmail drops a claim on message key of visit id.
func (s *Store) releaseEmail(ctx context.Context, id int64, key string) error {
	err := s.db.WithContext(ctx).Model(&Visit{}).Where("id = ? AND email_sending = ?", id, key).
		Updates(map[string]any{"email_sending": "", "email_sending_until": nil}).Error
	if err != nil {
		return fmt.Errorf("release email claim of visit %d: %w", id, err)
	}
	return nil
}

// deliveredState returns the version visit id was last synced at and the
// window its guest was last emailed, in one narrow read.
func (s *Store) deliveredState(ctx context.Context, id int64) (syncedVersion int64, emailedWindow string, err error) {
	var row struct {
		SyncedVersion int64
		EmailedWindow string
	}
	res := s.db.WithContext(ctx).Model(&Visit{}).Select("synced_version, emailed_window").Where("id = ?", id).Limit(1).Scan(&row)
	if res.Error != nil {
		return 0, "", fmt.Errorf("visit %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return 0, "", ErrVisitNotFound
	}
	return row.SyncedVersion, row.EmailedWindow, nil
}

// moveEmailDue replaces the visit's owed email key from with to, when the
// email due for from will never be sent: the window changed again (to is the
// current key) or nothing is owed any more (to is the emailed key). The
// sweep for lost work then offers the right email, or none.
func (s *Store) moveEmailDue(ctx context.Context, id int64, from, to string) error {
	err := s.db.WithContext(ctx).Model(&Visit{}).Where("id = ? AND email_due_key = ?", id, from).
		UpdateColumn("email_due_key", to).Error
	if err != nil {
		return fmt.Errorf("record email due for visit %d: %w", id, err)
	}
	return nil
}

// Deliveries counts deliveries by outcome since a time, for health views.
func (s *Store) LastDelivery(ctx context.Context) (Delivery, bool, error) {
	var d Delivery
	err := s.db.WithContext(ctx).Order("received_at DESC, id DESC").Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("last delivery: %w", err)
	}
	return d, true, nil
}

// UnknownZone is a time zone name the platform sent for a location that is
// not a known IANA zone, with how many visits carry it.
type UnknownZone struct {
	LocationID string
	TimeZone   string
	Visits     int64
}

// UnknownTimeZones lists the unknown zones visits carry, by location and
// zone, at most limit of them. Those visits' windows are computed in
// UTC (or the location's last known zone).
func (s *Store) UnknownTimeZones(ctx context.Context, limit int) ([]UnknownZone, error) {
	var rows []struct {
		LocationID  string
		BadTimeZone string
		Visits      int64
	}
	err := s.db.WithContext(ctx).Model(&Visit{}).
		Select("location_id, bad_time_zone, COUNT(*) AS visits").
		Where("bad_time_zone <> ''").Group("location_id, bad_time_zone").
		Order("location_id, bad_time_zone").Limit(limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("unknown time zones: %w", err)
	}
	out := make([]UnknownZone, 0, len(rows))
	for _, r := range rows {
		out = append(out, UnknownZone{LocationID: r.LocationID, TimeZone: r.BadTimeZone, Visits: r.Visits})
	}
	return out, nil
}

// finishSync stores the applied decision and gives the lease up in the
// same statement, unless the visit changed while it was synced (then the
// newer version's sync stores its own) or the lease was lost; then the
// lease is released as usual when the sync ends.
//
// It reports whether it marked the visit synced. With reports set, the
// reports to Envoy that waited on this sync are made due in the same
// transaction, and their ids returned.
func (l *Lease) finishSync(ctx context.Context, v *Visit, d Decision, emailDue string, loc *time.Location, now time.Time, reports bool) (finished bool, due []int64, err error) {
	l.finishing.Store(true)
	defer l.finishing.Store(false)
	write := func(tx *Store) error {
		cols := map[string]any{
			"status": d.Status, "reason": d.Reason, "valid_from": ptr(d.ValidFrom), "valid_until": ptr(d.ValidUntil),
			"synced_version": v.Version, "updated_at": now,
			"sync_lease_until": nil, "sync_lease_owner": "",
		}
		if emailDue != "" {
			cols["email_due_key"] = emailDue
		}
		res := tx.db.WithContext(ctx).Model(&Visit{}).
			Where("id = ? AND version = ? AND sync_lease_owner = ?", v.ID, v.Version, l.owner).Updates(cols)
		if res.Error != nil {
			return fmt.Errorf("finish sync of visit %d: %w", v.ID, res.Error)
		}
		finished = res.RowsAffected == 1
		if res.RowsAffected == 1 && reports {
			if due, err = tx.settleReports(ctx, v.ID, v.Version, JobDone, d.Reason, now); err != nil {
				return err
			}
		}
		if res.RowsAffected == 1 && (v.Status != d.Status || v.Reason != d.Reason) {
			return tx.AddTimeline(ctx, v.ID, now, KindDecision, describe(d, loc))
		}
		return nil
	}
	if !reports && v.Status == d.Status && v.Reason == d.Reason {
		err = write(l.store) // one statement: no transaction around it
	} else {
		err = l.store.InTx(ctx, write)
	}
	if err != nil {
		return false, nil, err
	}
	if finished {
		l.released.Store(true)
	}
	return finished, due, nil
}

// setResendCount records how many resends visit id has had.
func (s *Store) setResendCount(ctx context.Context, id int64, n int) error {
	if err := s.db.WithContext(ctx).Model(&Visit{}).Where("id = ?", id).UpdateColumn("resend_count", n).Error; err != nil {
		return fmt.Errorf("resend visit %d: %w", id, err)
	}
	return nil
}

// markFirstViewed records the first view of visit id's pass at at, and
// reports whether this was it.
func (s *Store) markFirstViewed(ctx context.Context, id int64, at time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Visit{}).Where("id = ? AND first_viewed_at IS NULL", id).UpdateColumn("first_viewed_at", at)
	if res.Error != nil {
		return false, fmt.Errorf("first view of visit %d: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// emailSent records a sent email of visit id, all or nothing: key as the
// window the guest was last emailed (when window is set; a resend records
// none), the sender's claim on message claimKey dropped (when set), and
// entry on the timeline. On PostgreSQL that is one statement, the visit's
// update a data-modifying WITH before the timeline insert (no BEGIN and
// COMMIT round trips); elsewhere one transaction.
func (s *Store) emailSent(ctx context.Context, id int64, key string, window bool, claimKey string, entry TimelineEntry) error {
	if s.db.Dialector.Name() != "postgres" || s.inTx {
		return s.InTx(ctx, func(tx *Store) error {
			if err := tx.recordEmailSent(ctx, id, key, window); err != nil {
				return err
			}
			if claimKey != "" {
				if err := tx.releaseEmail(ctx, id, claimKey); err != nil {
					return err
				}
			}
			return tx.addTimeline(ctx, entry)
		})
	}
	var sets []string
	var args []any
	if window {
		sets, args = append(sets, "emailed_window = ?"), append(args, key)
	}
	if claimKey != "" {
		// Each reads the claim as it was before this update. Dropping the
		// claim stamps updated_at, as releaseEmail does.
		sets = append(sets, "email_sending = CASE WHEN email_sending = ? THEN '' ELSE email_sending END",
			"email_sending_until = CASE WHEN email_sending = ? THEN NULL ELSE email_sending_until END",
			"updated_at = CASE WHEN email_sending = ? THEN CAST(? AS TIMESTAMPTZ) ELSE updated_at END")
		args = append(args, claimKey, claimKey, claimKey, s.db.NowFunc().UTC())
	}
	sql := `INSERT INTO visit_timeline (visit_id, "at", kind, message) VALUES (?, ?, ?, ?)`
	if len(sets) > 0 {
		sql = "WITH sent AS (UPDATE visits SET " + strings.Join(sets, ", ") + " WHERE id = ? RETURNING 1) " + sql
		args = append(args, id)
	}
	args = append(args, entry.VisitID, entry.At.UTC(), entry.Kind, truncateText(entry.Message, 1000))
	if err := s.db.WithContext(ctx).Exec(sql, args...).Error; err != nil {
		return fmt.Errorf("record email of visit %d: %w", id, err)
	}
	return nil
}

// recordEmailSent records key as the window the guest was last emailed,
// when window is set (a resend records nothing).
func (s *Store) recordEmailSent(ctx context.Context, id int64, key string, window bool) error {
	if !window {
		return nil // a resend: the window was already recorded
	}
	if err := s.db.WithContext(ctx).Model(&Visit{}).Where("id = ?", id).UpdateColumn("emailed_window", key).Error; err != nil {
		return fmt.Errorf("record email of visit %d: %w", id, err)
	}
	return nil
}

// markFailed marks visit id failed for reason when version is still the
// one owed, and reports whether it did.
func (s *Store) markFailed(ctx context.Context, id, version int64, reason string, now time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Visit{}).
		Where("id = ? AND version = ? AND synced_version < version", id, version).
		Updates(map[string]any{"status": StatusFailed, "reason": reason, "updated_at": now})
	if res.Error != nil {
		return false, fmt.Errorf("mark visit %d failed: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// openVisitIDs lists, newest first, the visits of a location and flow that
// a mapping change may re-decide: open ones, and ignored ones made or
// expected after cutoff.
func (s *Store) openVisitIDs(ctx context.Context, locationID, flowID string, cutoff time.Time) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&Visit{}).
		Where("location_id = ? AND flow_id = ? AND (status IN ? OR (status = ? AND (created_at > ? OR expected_at > ?)))", locationID, flowID,
			[]Status{StatusHeld, StatusScheduled, StatusActive, StatusFailed}, StatusIgnored, cutoff, cutoff).
		Order("id DESC").Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("visits of location %s flow %s: %w", locationID, flowID, err)
	}
	return ids, nil
}

// CountByStatus returns how many visits there are in each status (one
// grouped count).
func (s *Store) CountByStatus(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	if err := s.db.WithContext(ctx).Model(&Visit{}).Select("status, count(*) AS n").Group("status").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count visits by status: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}

// openCountQueries count the visits of the statuses that change all day,
// each through the partial index that holds only them.
var openCountQueries = []string{liveSQL, attentionSQL}

// countOpenByStatus counts the held, scheduled, active and failed visits:
// work proportional to the open visits, not to history.
func (s *Store) countOpenByStatus(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, where := range openCountQueries {
		var rows []struct {
			Status string
			N      int64
		}
		if err := openCountQuery(s.db.WithContext(ctx), where).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("count open visits by status: %w", err)
		}
		for _, r := range rows {
			out[r.Status] = r.N
		}
	}
	return out, nil
}

func openCountQuery(tx *gorm.DB, where string) *gorm.DB {
	return tx.Model(&Visit{}).Select("status, count(*) AS n").Where(where).Group("status")
}

// VisitCounter counts visits by status for the latchkey_visits gauge
// without reading every stored visit on each call: the open statuses
// (held, scheduled, active, failed) are counted every time through the
// partial indexes that hold only them; the final ones (revoked, expired,
// ignored), which grow with history, come from one full count made at most
// every finalEvery, so they may lag by that much. It is safe for
// concurrent use.
func (s *Store) VisitCounter(finalEvery time.Duration) func(ctx context.Context) (map[string]int64, error) {
	var (
		mu    sync.Mutex
		at    time.Time
		final map[string]int64
	)
	return func(ctx context.Context) (map[string]int64, error) {
		mu.Lock()
		defer mu.Unlock()
		if final == nil || time.Since(at) >= finalEvery {
			all, err := s.CountByStatus(ctx)
			if err != nil {
				return nil, err
			}
			final, at = map[string]int64{}, time.Now()
			for st, n := range all {
				if Status(st).Final() {
					final[st] = n
				}
			}
			return all, nil
		}
		out, err := s.countOpenByStatus(ctx)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, final)
		return out, nil
	}
}
