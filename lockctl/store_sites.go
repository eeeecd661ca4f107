package lockctl

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// placeFilter selects places for GET /places.
type placeFilter struct {
	IDs   []int64
	Query string
	// Person restricts the list to the places of the locks a person holds
	// a role on.
	Person *person
}

// lockFilter selects locks for GET /locks. GroupID restricts the list to the
// locks a group opens (what a link holder sees).
type lockFilter struct {
	IDs        []int64
	Query      string
	PlaceID    *int64
	GroupID    *int64
	Person     *person // only the locks this person holds a role on
	Online     *bool
	LockedDown *bool
	Unlocked   *bool
	Sort       string
}

// groupFilter selects groups for GET /groups.
type groupFilter struct {
	IDs     []int64
	Query   string
	PlaceID *int64
	LockID  *int64
	Sort    string
}

// groupLockFilter selects group_locks for GET /group_locks.
type groupLockFilter struct {
	GroupID *int64
	LockID  *int64
}

func (s *store) createPlace(ctx context.Context, p *Place) error {
	p.CreatedAt, p.UpdatedAt = s.stamp(), s.stamp()
	return create(ctx, s, p, "place")
}

func (s *store) place(ctx context.Context, id int64) (Place, error) {
	return byID[Place](ctx, s, id, "place")
}

func (s *store) listPlaces(ctx context.Context, f placeFilter, p page) ([]Place, int64, error) {
	q := s.db.WithContext(ctx).Model(&Place{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.Query != "" {
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\'`, likePattern(f.Query))
	}
	if f.Person != nil {
		cond, args := personLocks(f.Person.Type, f.Person.ID)
		q = q.Where("id IN (SELECT place_id FROM lockctl_locks WHERE "+cond+")", args...)
	}
	var out []Place
	total, err := listPage(q, "name, id", p, &out)
	return out, total, translate(err, "list places", "place")
}

func (s *store) createLock(ctx context.Context, l *Lock) error {
	if _, err := s.place(ctx, l.PlaceID); err != nil {
		return err
	}
	l.CreatedAt, l.UpdatedAt = s.stamp(), s.stamp()
	return create(ctx, s, l, "lock")
}

func (s *store) lock(ctx context.Context, id int64) (Lock, error) {
	return byID[Lock](ctx, s, id, "lock")
}

func (s *store) listLocks(ctx context.Context, f lockFilter, p page) ([]Lock, int64, error) {
	q := s.db.WithContext(ctx).Model(&Lock{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.Query != "" {
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\'`, likePattern(f.Query))
	}
	if f.PlaceID != nil {
		q = q.Where("place_id = ?", *f.PlaceID)
	}
	if f.GroupID != nil {
		q = q.Where("id IN (SELECT lock_id FROM lockctl_group_locks WHERE group_id = ?)", *f.GroupID)
	}
	if f.Person != nil {
		cond, args := personLocks(f.Person.Type, f.Person.ID)
		q = q.Where(cond, args...)
	}
	for col, v := range map[string]*bool{"online": f.Online, "locked_down": f.LockedDown, "unlocked": f.Unlocked} {
		if v != nil {
			q = q.Where(col+" = ?", *v)
		}
	}
	order := "id"
	switch f.Sort {
	case "name":
		order = "name, id"
	case "-name":
		order = "name DESC, id DESC"
	}
	var out []Lock
	total, err := listPage(q, order, p, &out)
	return out, total, translate(err, "list locks", "lock")
}

// updateLock applies change to lock id inside a transaction and returns the
// lock before and after the change. The lock is locked from the read to the
// write, so concurrent changes (an administrator's lockdown, the driver's
// reports) apply one after the other.
func (s *store) updateLock(ctx context.Context, id int64, change func(*Lock) error) (before, after Lock, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := forUpdate(tx).Where("id = ?", id).Take(&before).Error; err != nil {
			return translate(err, fmt.Sprintf("get lock %d", id), "lock")
		}
		after = before
		if err := change(&after); err != nil {
			return err
		}
		after.UpdatedAt = s.stamp()
		err := tx.Model(&Lock{ID: id}).Select("name", "description", "online", "locked_down",
			"locked_down_since", "unlocked", "unlocked_until", "updated_at").Updates(&after).Error
		if err != nil {
			return translate(err, fmt.Sprintf("update lock %d", id), "lock")
		}
		if before.Online != after.Online || before.LockedDown != after.LockedDown || before.Name != after.Name {
			// What an unlock decides on (or records) changed; a door
			// merely opening and closing does not drop the cache.
			return bumpGeneration(tx)
		}
		return nil
	})
	return before, after, err
}

func (s *store) createGroup(ctx context.Context, g *Group) error {
	if _, err := s.place(ctx, g.PlaceID); err != nil {
		return err
	}
	g.CreatedAt, g.UpdatedAt = s.stamp(), s.stamp()
	return create(ctx, s, g, "group")
}

func (s *store) group(ctx context.Context, id int64) (Group, error) {
	return byID[Group](ctx, s, id, "group")
}

func (s *store) listGroups(ctx context.Context, f groupFilter, p page) ([]Group, int64, error) {
	q := s.db.WithContext(ctx).Model(&Group{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.Query != "" {
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\'`, likePattern(f.Query))
	}
	if f.PlaceID != nil {
		q = q.Where("place_id = ?", *f.PlaceID)
	}
	if f.LockID != nil {
		q = q.Where("id IN (SELECT group_id FROM lockctl_group_locks WHERE lock_id = ?)", *f.LockID)
	}
	order := "id"
	switch f.Sort {
	case "name":
		order = "name, id"
	case "-name":
		order = "name DESC, id DESC"
	}
	var out []Group
	total, err := listPage(q, order, p, &out)
	return out, total, translate(err, "list groups", "group")
}

// createGroupLock adds a lock to a group, bumping the access generation.
func (s *store) createGroupLock(ctx context.Context, gl *GroupLock) error {
	gl.CreatedAt, gl.UpdatedAt = s.stamp(), s.stamp()
	return s.tx(ctx, func(ts *store) error {
		if err := create(ctx, ts, gl, "group lock"); err != nil {
			return err
		}
		return bumpGeneration(ts.db)
	})
}

func (s *store) listGroupLocks(ctx context.Context, f groupLockFilter, p page) ([]GroupLock, int64, error) {
	q := s.db.WithContext(ctx).Model(&GroupLock{})
	if f.GroupID != nil {
		q = q.Where("group_id = ?", *f.GroupID)
	}
	if f.LockID != nil {
		q = q.Where("lock_id = ?", *f.LockID)
	}
	var out []GroupLock
	total, err := listPage(q, "id", p, &out)
	return out, total, translate(err, "list group locks", "group lock")
}

// deleteGroupLock takes a lock out of a group, bumping the access
// generation.
func (s *store) deleteGroupLock(ctx context.Context, id int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&GroupLock{})
		if res.Error != nil {
			return translate(res.Error, fmt.Sprintf("delete group lock %d", id), "group lock")
		}
		if res.RowsAffected == 0 {
			return translate(gorm.ErrRecordNotFound, "", "group lock")
		}
		return bumpGeneration(tx)
	})
}

// countLocks returns, for each id in ids, how many locks it has: per place
// when col is "place_id" (table locks), per group when col is "group_id"
// (table group_locks).
func (s *store) countLocks(ctx context.Context, col string, ids []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		Ref int64
		Cnt int
	}
	q := s.db.WithContext(ctx).Model(&Lock{})
	if col == "group_id" {
		q = s.db.WithContext(ctx).Model(&GroupLock{})
	}
	err := q.Select(col+" AS ref, COUNT(*) AS cnt").Where(col+" IN ?", ids).Group(col).Scan(&rows).Error
	if err != nil {
		return nil, translate(err, "count locks", "lock")
	}
	for _, r := range rows {
		out[r.Ref] = r.Cnt
	}
	return out, nil
}

// updateGroup applies change to group id, locked from the read to the
// write, and returns the group after it.
func (s *store) updateGroup(ctx context.Context, id int64, change func(*Group)) (Group, error) {
	var g Group
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := forUpdate(tx).Where("id = ?", id).Take(&g).Error; err != nil {
			return translate(err, fmt.Sprintf("get group %d", id), "group")
		}
		change(&g)
		g.UpdatedAt = s.stamp()
		err := tx.Model(&Group{ID: id}).Select("name", "description", "login_enabled", "updated_at").Updates(&g).Error
		return translate(err, fmt.Sprintf("update group %d", id), "group")
	})
	return g, err
}
