package lockctl

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// addEvent stores e, filling UUID and CreatedAt when unset.
func (s *store) addEvent(ctx context.Context, e *Event) error {
	s.stampEvent(e)
	return create(ctx, s, e, "event")
}

// stampEvent fills e's UUID and CreatedAt when unset, in UTC.
func (s *store) stampEvent(e *Event) {
	if e.UUID == "" {
		e.UUID = uuid.NewString()
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.stamp()
	}
	e.CreatedAt = utc(e.CreatedAt)
}

// filterEvents applies f to q.
func filterEvents(q *gorm.DB, f EventFilter) *gorm.DB {
	if len(f.Types) > 0 {
		q = q.Where("type IN ?", f.Types)
	}
	for col, v := range map[string]string{"actor_type": f.ActorType, "object_type": f.ObjectType,
		"authenticated_by_type": f.AuthType, "uuid": f.UUID} {
		if v != "" {
			q = q.Where(col+" = ?", v)
		}
	}
	for col, v := range map[string]*int64{"actor_id": f.ActorID, "object_id": f.ObjectID,
		"authenticated_by_id": f.AuthID, "place_id": f.PlaceID} {
		if v != nil {
			q = q.Where(col+" = ?", *v)
		}
	}
	if f.Success != nil {
		q = q.Where("success = ?", *f.Success)
	}
	if f.Since != nil {
		q = q.Where("created_at >= ?", utc(*f.Since))
	}
	if f.Until != nil {
		q = q.Where("created_at < ?", utc(*f.Until))
	}
	return q
}

// listEvents returns one page of the events f selects, newest first.
func (s *store) listEvents(ctx context.Context, f EventFilter, p page) ([]Event, int64, error) {
	q := filterEvents(s.db.WithContext(ctx).Model(&Event{}), f)
	var out []Event
	total, err := listPage(q, "created_at DESC, id DESC", p, &out)
	return out, total, translate(err, "list events", "event")
}

// createEventSet freezes f over the events recorded so far.
func (s *store) createEventSet(ctx context.Context, f EventFilter, ttl time.Duration) (EventSet, error) {
	raw, err := json.Marshal(f)
	if err != nil {
		return EventSet{}, fmt.Errorf("encode event filter: %w", err)
	}
	var maxID *int64
	if err := s.db.WithContext(ctx).Model(&Event{}).Select("MAX(id)").Scan(&maxID).Error; err != nil {
		return EventSet{}, translate(err, "max event id", "event")
	}
	now := s.stamp()
	set := EventSet{Filter: string(raw), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if maxID != nil {
		set.MaxEventID = *maxID
	}
	return set, create(ctx, s, &set, "event set")
}

// eventSet loads set id and its filter; an expired set is not found.
func (s *store) eventSet(ctx context.Context, id int64) (EventSet, EventFilter, error) {
	set, err := byID[EventSet](ctx, s, id, "event set")
	if err != nil {
		return set, EventFilter{}, err
	}
	if !s.now().Before(set.ExpiresAt) {
		return set, EventFilter{}, translate(gorm.ErrRecordNotFound, "", "event set")
	}
	var f EventFilter
	if err := json.Unmarshal([]byte(set.Filter), &f); err != nil {
		return set, f, fmt.Errorf("decode event set %d filter: %w", id, err)
	}
	return set, f, nil
}

// eventSetPage returns up to limit events of set, newest first, with ids
// below before (0 = from the newest), plus whether more remain.
func (s *store) eventSetPage(ctx context.Context, set EventSet, f EventFilter, before int64, limit int) ([]Event, bool, error) {
	q := filterEvents(s.db.WithContext(ctx).Model(&Event{}), f).Where("id <= ?", set.MaxEventID)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var out []Event
	err := q.Order("id DESC").Limit(limit + 1).Find(&out).Error
	if err != nil {
		return nil, false, translate(err, fmt.Sprintf("page event set %d", set.ID), "event")
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// recordUnlocks stores the unlock path's events and each link's
// last_used_at (the latest of its unlocks) together: on PostgreSQL in one
// statement, the update riding on the insert as a data-modifying WITH (no
// BEGIN and COMMIT round trips: a lone unlock's audit write is one round
// trip instead of four), elsewhere in one transaction.
func (s *store) recordUnlocks(ctx context.Context, items []auditItem) error {
	if len(items) == 0 {
		return nil
	}
	events := make([]Event, len(items))
	last := map[int64]time.Time{}
	for i, it := range items {
		e := it.e
		if e.CreatedAt.IsZero() {
			e.CreatedAt = s.stamp()
		}
		e.CreatedAt = utc(e.CreatedAt)
		events[i] = e
		if it.linkID == 0 {
			continue
		}
		if t, ok := last[it.linkID]; !ok || it.at.After(t) {
			last[it.linkID] = it.at
		}
	}
	if s.db.Dialector.Name() == "postgres" && len(events) <= auditBatch {
		update, args := "", []any(nil)
		if len(last) > 0 {
			update, args = touchSQL(last, pgTouchRow)
		}
		return s.insertEventsWith(ctx, events, update, args...)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Omit(clause.Associations).CreateInBatches(&events, 500).Error; err != nil {
			return translate(err, "record unlock events", "event")
		}
		return touchLinks(tx, last)
	})
}

// insertEventsWith inserts events in one statement on PostgreSQL, with
// update (its placeholders ?, none in its text otherwise; "" for none) run
// as a data-modifying WITH before it, so both commit together without
// BEGIN and COMMIT round trips. The events' UUID and CreatedAt must be set.
func (s *store) insertEventsWith(ctx context.Context, events []Event, update string, updateArgs ...any) error {
	// The insert as gorm renders it ($1… placeholders), not run.
	ins := s.db.Session(&gorm.Session{DryRun: true, NewDB: true}).Omit(clause.Associations).Create(&events).Statement
	if ins.Error != nil {
		return translate(ins.Error, "record events", "event")
	}
	sql, args := ins.SQL.String(), ins.Vars
	if update != "" {
		// The update's placeholders are numbered on from the insert's.
		parts := strings.Split(update, "?")
		var u strings.Builder
		u.WriteString(parts[0])
		for i, part := range parts[1:] {
			fmt.Fprintf(&u, "$%d%s", len(args)+i+1, part)
		}
		sql, args = "WITH touched AS ("+u.String()+" RETURNING 1) "+sql, append(args, updateArgs...)
	}
	return translate(s.raw(ctx, sql, args), "record events", "event")
}

// raw runs sql (PostgreSQL's $n placeholders) on the statement's pool:
// inside a transaction, its connection. gorm is gone around, so its error
// translation and logger are called here. With dest, it scans the one row
// the statement returns into it.
func (s *store) raw(ctx context.Context, sql string, args []any, dest ...any) error {
	db := s.db.WithContext(ctx)
	begin := time.Now()
	var (
		err  error
		rows int64 = -1
	)
	if len(dest) > 0 {
		err = db.Statement.ConnPool.QueryRowContext(ctx, sql, args...).Scan(dest...)
		if err == nil {
			rows = 1
		}
	} else {
		var res interface{ RowsAffected() (int64, error) }
		res, err = db.Statement.ConnPool.ExecContext(ctx, sql, args...)
		if err == nil {
			rows, _ = res.RowsAffected()
		}
	}
	if tr, ok := db.Dialector.(gorm.ErrorTranslator); ok && err != nil {
		err = tr.Translate(err)
	}
	db.Logger.Trace(ctx, begin, func() (string, int64) { return sql, rows }, err)
	return err
}

// touchLinks sets each link's last_used_at to its time in at, in one
// statement, unless the link was used later.
func touchLinks(tx *gorm.DB, at map[int64]time.Time) error {
	if len(at) == 0 {
		return nil
	}
	row := "(?, ?)"
	if tx.Dialector.Name() == "postgres" {
		row = pgTouchRow
	}
	update, args := touchSQL(at, row)
	err := tx.Exec(update, args...).Error
	return translate(err, fmt.Sprintf("touch %d group links", len(at)), "group link")
}

// pgTouchRow is touchSQL's VALUES row on PostgreSQL, which types a VALUES
// list's parameters as text unless told.
const pgTouchRow = "(CAST(? AS BIGINT), CAST(? AS TIMESTAMPTZ))"

// touchSQL is the UPDATE of touchLinks, with row as each VALUES row's
// placeholders, and its arguments, the links sorted by id. (The order the
// rows are locked in is the plan's: should two replicas' batches deadlock,
// the one aborted is written again one event at a time.)
func touchSQL(at map[int64]time.Time, row string) (string, []any) {
	ids := slices.Sorted(maps.Keys(at))
	rows := make([]string, 0, len(at))
	args := make([]any, 0, 2*len(at))
	for _, id := range ids {
		rows = append(rows, row)
		args = append(args, id, utc(at[id]))
	}
	return `UPDATE lockctl_group_links SET last_used_at = v.column2
		FROM (VALUES ` + strings.Join(rows, ", ") + `) AS v
		WHERE lockctl_group_links.id = v.column1
		AND (lockctl_group_links.last_used_at IS NULL OR lockctl_group_links.last_used_at < v.column2)`, args
}

// deleteEventsBefore deletes up to batch of the oldest events created
// before t and returns how many it deleted.
func (s *store) deleteEventsBefore(ctx context.Context, t time.Time, batch int) (int64, error) {
	res := s.db.WithContext(ctx).Where("id IN (?)", s.oldEvents(t, batch)).Delete(&Event{})
	return res.RowsAffected, translate(res.Error, "delete old events", "event")
}

// oldEvents selects the ids of up to batch of the oldest events created
// before t, in the order of the created_at index: ordered by id, SQLite
// walks the primary key through every event kept to find them.
func (s *store) oldEvents(t time.Time, batch int) *gorm.DB {
	return s.db.Model(&Event{}).Select("id").Where("created_at < ?", utc(t)).Order("created_at").Limit(batch)
}

// deleteExpiredEventSets deletes the event sets that can no longer be read.
func (s *store) deleteExpiredEventSets(ctx context.Context) error {
	err := s.db.WithContext(ctx).Where("expires_at <= ?", s.stamp()).Delete(&EventSet{}).Error
	return translate(err, "delete expired event sets", "event set")
}
