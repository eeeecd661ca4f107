package lockctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// userFilter selects users for GET /users (and /members).
type userFilter struct {
	IDs     []int64
	Email   string
	PlaceID *int64
	GroupID *int64
	Query   string
	Sort    string
}

// guestFilter selects guests for GET /guests.
type guestFilter struct {
	IDs   []int64
	Query string
}

// assignmentFilter selects role assignments for GET /role_assignments (and
// /shares).
type assignmentFilter struct {
	IDs           []int64
	RoleIDs       []string
	AssigneeType  string
	AssigneeID    *int64
	AppliesToType string
	AppliesToID   *int64
	PlaceID       *int64 // group assignments of groups at this place, and place assignments on it
	Query         string // assignee name or email
	Sort          string
}

func (s *store) createUser(ctx context.Context, u *User) error {
	u.CreatedAt, u.UpdatedAt = s.stamp(), s.stamp()
	return create(ctx, s, u, "user")
}

func (s *store) user(ctx context.Context, id int64) (User, error) {
	return byID[User](ctx, s, id, "user")
}

// userByEmail finds the user with email (stored lower case).
func (s *store) userByEmail(ctx context.Context, email string) (User, bool, error) {
	var u User
	err := s.db.WithContext(ctx).Where("email = ?", email).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return u, false, nil
	}
	return u, err == nil, translate(err, "get user by email", "user")
}

// count counts the rows of T.
func count[T any](ctx context.Context, s *store, what string) (int64, error) {
	var n int64
	var zero T
	err := s.db.WithContext(ctx).Model(&zero).Count(&n).Error
	return n, translate(err, "count "+what, what)
}

var userSorts = map[string]string{
	"name": "name, id", "-name": "name DESC, id DESC",
	"unlock": "(last_accessed_at IS NULL), last_accessed_at, id", "-unlock": "(last_accessed_at IS NULL), last_accessed_at DESC, id DESC",
	"access_enabled": "access_enabled, id", "-access_enabled": "access_enabled DESC, id DESC",
}

const userAssignments = `SELECT assignee_id FROM lockctl_role_assignments WHERE assignee_type = 'User'`

func (s *store) listUsers(ctx context.Context, f userFilter, p page) ([]User, int64, error) {
	q := s.db.WithContext(ctx).Model(&User{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.Email != "" {
		q = q.Where("email = ?", f.Email)
	}
	if f.GroupID != nil {
		q = q.Where("id IN ("+userAssignments+" AND applies_to_type = 'Group' AND applies_to_id = ?)", *f.GroupID)
	}
	if f.PlaceID != nil {
		q = q.Where("id IN ("+userAssignments+` AND ((applies_to_type = 'Place' AND applies_to_id = ?)
			OR (applies_to_type = 'Group' AND applies_to_id IN (SELECT id FROM lockctl_groups WHERE place_id = ?))
			OR applies_to_type = 'Organization'))`, *f.PlaceID, *f.PlaceID)
	}
	if f.Query != "" {
		like := likePattern(f.Query)
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\' OR email LIKE ? ESCAPE '\' OR LOWER(notes) LIKE ? ESCAPE '\'`, like, like, like)
	}
	order, ok := userSorts[f.Sort]
	if !ok {
		order = "id"
	}
	var out []User
	total, err := listPage(q, order, p, &out)
	return out, total, translate(err, "list users", "user")
}

// updateUser applies change to user id, locked from the read to the write,
// and returns the user after it.
func (s *store) updateUser(ctx context.Context, id int64, change func(*User) error) (User, error) {
	var u User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := forUpdate(tx).Where("id = ?", id).Take(&u).Error; err != nil {
			return translate(err, fmt.Sprintf("get user %d", id), "user")
		}
		if err := change(&u); err != nil {
			return err
		}
		u.UpdatedAt = s.stamp()
		err := tx.Model(&User{ID: id}).Select("name", "image", "access_enabled", "password_flow_enabled",
			"metadata", "notes", "updated_at").Updates(&u).Error
		return translate(err, fmt.Sprintf("update user %d", id), "user")
	})
	return u, err
}

// deleteUser removes user id with their role assignments and logins, and
// returns the user as it was: their access ends with the transaction.
func (s *store) deleteUser(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&u).Error; err != nil {
			return translate(err, fmt.Sprintf("get user %d", id), "user")
		}
		if err := assignmentsGone(tx, tx.Model(&RoleAssignment{}).Select("id").
			Where("assignee_type = ? AND assignee_id = ?", assigneeUser, id)); err != nil {
			return err
		}
		if err := tx.Where("assignee_type = ? AND assignee_id = ?", assigneeUser, id).Delete(&RoleAssignment{}).Error; err != nil {
			return translate(err, fmt.Sprintf("delete role assignments of user %d", id), "role assignment")
		}
		if err := tx.Where("user_id = ?", id).Delete(&Login{}).Error; err != nil {
			return translate(err, fmt.Sprintf("delete logins of user %d", id), "login")
		}
		err := tx.Where("id = ?", id).Delete(&User{}).Error
		return translate(err, fmt.Sprintf("delete user %d", id), "user")
	})
	return u, err
}

func (s *store) createGuest(ctx context.Context, g *Guest) error {
	g.CreatedAt, g.UpdatedAt = s.stamp(), s.stamp()
	return create(ctx, s, g, "guest")
}

func (s *store) guest(ctx context.Context, id int64) (Guest, error) {
	return byID[Guest](ctx, s, id, "guest")
}

func (s *store) listGuests(ctx context.Context, f guestFilter, p page) ([]Guest, int64, error) {
	q := s.db.WithContext(ctx).Model(&Guest{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.Query != "" {
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\'`, likePattern(f.Query))
	}
	var out []Guest
	total, err := listPage(q, "id", p, &out)
	return out, total, translate(err, "list guests", "guest")
}

// deleteGuest removes guest id with their role assignments and access keys.
func (s *store) deleteGuest(ctx context.Context, id int64) (Guest, error) {
	var g Guest
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&g).Error; err != nil {
			return translate(err, fmt.Sprintf("get guest %d", id), "guest")
		}
		if err := assignmentsGone(tx, tx.Model(&RoleAssignment{}).Select("id").
			Where("assignee_type = ? AND assignee_id = ?", assigneeGuest, id)); err != nil {
			return err
		}
		if err := tx.Where("assignee_type = ? AND assignee_id = ?", assigneeGuest, id).Delete(&RoleAssignment{}).Error; err != nil {
			return translate(err, fmt.Sprintf("delete role assignments of guest %d", id), "role assignment")
		}
		if err := tx.Where("guest_id = ?", id).Delete(&AccessKey{}).Error; err != nil {
			return translate(err, fmt.Sprintf("delete access keys of guest %d", id), "access key")
		}
		err := tx.Where("id = ?", id).Delete(&Guest{}).Error
		return translate(err, fmt.Sprintf("delete guest %d", id), "guest")
	})
	return g, err
}

func (s *store) createAssignment(ctx context.Context, ra *RoleAssignment) error {
	ra.CreatedAt, ra.UpdatedAt = s.stamp(), s.stamp()
	ra.ValidFrom, ra.ValidUntil = utcPtr(ra.ValidFrom), utcPtr(ra.ValidUntil)
	return create(ctx, s, ra, "role assignment")
}

func (s *store) assignment(ctx context.Context, id int64) (RoleAssignment, error) {
	return byID[RoleAssignment](ctx, s, id, "role assignment")
}

// assignmentByIdempotencyKey finds the assignment created under key.
func (s *store) assignmentByIdempotencyKey(ctx context.Context, key string) (RoleAssignment, bool, error) {
	var ra RoleAssignment
	err := forUpdate(s.db.WithContext(ctx)).Where("idempotency_key = ?", key).Take(&ra).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ra, false, nil
	}
	return ra, err == nil, translate(err, "get role assignment by idempotency key", "role assignment")
}

// assignmentOn finds the person's role assignment on one target.
func (s *store) assignmentOn(ctx context.Context, assigneeType string, assigneeID int64, appliesToType string, appliesToID int64) (RoleAssignment, bool, error) {
	var ra RoleAssignment
	err := s.db.WithContext(ctx).Where("assignee_type = ? AND assignee_id = ? AND applies_to_type = ? AND applies_to_id = ?",
		assigneeType, assigneeID, appliesToType, appliesToID).Take(&ra).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ra, false, nil
	}
	return ra, err == nil, translate(err, "get role assignment on target", "role assignment")
}

// countAssignmentsOf counts the role assignments of one person.
func (s *store) countAssignmentsOf(ctx context.Context, assigneeType string, id int64) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&RoleAssignment{}).
		Where("assignee_type = ? AND assignee_id = ?", assigneeType, id).Count(&n).Error
	return n, translate(err, "count role assignments", "role assignment")
}

var assignmentSorts = map[string]string{
	"user.name":  `(SELECT LOWER(u.name) FROM lockctl_users u WHERE u.id = assignee_id AND assignee_type = 'User'), id`,
	"-user.name": `(SELECT LOWER(u.name) FROM lockctl_users u WHERE u.id = assignee_id AND assignee_type = 'User') DESC, id DESC`,
}

func (s *store) listAssignments(ctx context.Context, f assignmentFilter, p page) ([]RoleAssignment, int64, error) {
	q := s.db.WithContext(ctx).Model(&RoleAssignment{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if len(f.RoleIDs) > 0 {
		q = q.Where("role_id IN ?", f.RoleIDs)
	}
	if f.AssigneeType != "" {
		q = q.Where("assignee_type = ?", f.AssigneeType)
	}
	if f.AssigneeID != nil {
		q = q.Where("assignee_id = ?", *f.AssigneeID)
	}
	if f.AppliesToType != "" {
		q = q.Where("applies_to_type = ?", f.AppliesToType)
	}
	if f.AppliesToID != nil {
		q = q.Where("applies_to_id = ?", *f.AppliesToID)
	}
	if f.PlaceID != nil {
		q = q.Where(`(applies_to_type = 'Place' AND applies_to_id = ?)
			OR (applies_to_type = 'Group' AND applies_to_id IN (SELECT id FROM lockctl_groups WHERE place_id = ?))`,
			*f.PlaceID, *f.PlaceID)
	}
	if f.Query != "" {
		like := likePattern(f.Query)
		q = q.Where(`(assignee_type = 'User' AND assignee_id IN (SELECT id FROM lockctl_users
				WHERE LOWER(name) LIKE ? ESCAPE '\' OR email LIKE ? ESCAPE '\'))
			OR (assignee_type = 'Guest' AND assignee_id IN (SELECT id FROM lockctl_guests
				WHERE LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\'))`, like, like, like, like)
	}
	order, ok := assignmentSorts[f.Sort]
	if !ok {
		order = "id"
	}
	var out []RoleAssignment
	total, err := listPage(q, order, p, &out)
	return out, total, translate(err, "list role assignments", "role assignment")
}

// updateAssignment applies change to assignment id, locked from the read to
// the write, and returns it before and after.
func (s *store) updateAssignment(ctx context.Context, id int64, change func(*RoleAssignment) error) (before, after RoleAssignment, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := forUpdate(tx).Where("id = ?", id).Take(&before).Error; err != nil {
			return translate(err, fmt.Sprintf("get role assignment %d", id), "role assignment")
		}
		after = before
		if err := change(&after); err != nil {
			return err
		}
		after.ValidFrom, after.ValidUntil = utcPtr(after.ValidFrom), utcPtr(after.ValidUntil)
		after.UpdatedAt = s.stamp()
		err := tx.Model(&RoleAssignment{ID: id}).Select("role_id", "notify", "valid_from", "valid_until", "updated_at").
			Updates(&after).Error
		return translate(err, fmt.Sprintf("update role assignment %d", id), "role assignment")
	})
	return before, after, err
}

// deleteAssignment removes assignment id and returns it as it was; the key
// that made it, if any, is gone from then on.
func (s *store) deleteAssignment(ctx context.Context, id int64) (RoleAssignment, error) {
	var ra RoleAssignment
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&ra).Error; err != nil {
			return translate(err, fmt.Sprintf("get role assignment %d", id), "role assignment")
		}
		if err := assignmentsGone(tx, tx.Model(&RoleAssignment{}).Select("id").Where("id = ?", id)); err != nil {
			return err
		}
		err := tx.Where("id = ?", id).Delete(&RoleAssignment{}).Error
		return translate(err, fmt.Sprintf("delete role assignment %d", id), "role assignment")
	})
	return ra, err
}

// unlockCandidates returns the person's role assignments that could open
// lock: on a group that opens it (with the group's login_enabled), on its
// place, or on the organization.
func (s *store) unlockCandidates(ctx context.Context, assigneeType string, id int64, lock Lock) ([]PersonUnlock, error) {
	var rows []struct {
		RoleAssignment
		LoginEnabled *bool
	}
	err := s.db.WithContext(ctx).Table("lockctl_role_assignments ra").
		Select("ra.*, g.login_enabled AS login_enabled").
		Joins("LEFT JOIN lockctl_groups g ON ra.applies_to_type = 'Group' AND g.id = ra.applies_to_id").
		Where("ra.assignee_type = ? AND ra.assignee_id = ?", assigneeType, id).
		Where(`(ra.applies_to_type = 'Group' AND ra.applies_to_id IN (SELECT group_id FROM lockctl_group_locks WHERE lock_id = ?))
			OR (ra.applies_to_type = 'Place' AND ra.applies_to_id = ?)
			OR ra.applies_to_type = 'Organization'`, lock.ID, lock.PlaceID).
		Order("ra.id").Limit(maxAssignmentsPerPerson).Scan(&rows).Error
	if err != nil {
		return nil, translate(err, "load unlock candidates", "role assignment")
	}
	out := make([]PersonUnlock, len(rows))
	for i, r := range rows {
		out[i] = PersonUnlock{Assignment: r.RoleAssignment, LoginEnabled: r.LoginEnabled != nil && *r.LoginEnabled}
	}
	return out, nil
}

// personLocks is the SQL condition on lockctl_locks selecting the locks a
// person holds any role on (through a group, the place or the
// organization); args follow.
func personLocks(assigneeType string, id int64) (string, []any) {
	return `(lockctl_locks.id IN (SELECT gl.lock_id FROM lockctl_group_locks gl JOIN lockctl_role_assignments ra
			ON ra.applies_to_type = 'Group' AND ra.applies_to_id = gl.group_id WHERE ra.assignee_type = ? AND ra.assignee_id = ?)
		OR lockctl_locks.place_id IN (SELECT applies_to_id FROM lockctl_role_assignments WHERE applies_to_type = 'Place' AND assignee_type = ? AND assignee_id = ?)
		OR EXISTS (SELECT 1 FROM lockctl_role_assignments WHERE applies_to_type = 'Organization' AND assignee_type = ? AND assignee_id = ?))`,
		[]any{assigneeType, id, assigneeType, id, assigneeType, id}
}

func (s *store) createAccessKey(ctx context.Context, k *AccessKey) error {
	k.CreatedAt = s.stamp()
	return create(ctx, s, k, "access key")
}

// accessKeyBySecret finds the access key whose link secret or QR token
// hashes to hash, and says which of the two matched.
func (s *store) accessKeyBySecret(ctx context.Context, hash string) (AccessKey, bool, error) {
	var k AccessKey
	err := s.db.WithContext(ctx).Where("secret_hash = ? OR qr_token_hash = ?", hash, hash).Take(&k).Error
	return k, err == nil && k.QRTokenHash == hash, translate(err, "get access key by secret", "access key")
}

// accessKeysOf returns the access keys of guest, oldest first.
func (s *store) accessKeysOf(ctx context.Context, guestID int64) ([]AccessKey, error) {
	var out []AccessKey
	err := s.db.WithContext(ctx).Where("guest_id = ?", guestID).Order("id").Find(&out).Error
	return out, translate(err, "list access keys", "access key")
}

func (s *store) deleteAccessKey(ctx context.Context, id int64) error {
	err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&AccessKey{}).Error
	return translate(err, fmt.Sprintf("delete access key %d", id), "access key")
}

// userLogins returns user's logins, least recently used first.
func (s *store) userLogins(ctx context.Context, userID int64) ([]Login, error) {
	var out []Login
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).
		Order("COALESCE(last_used_at, created_at), id").Find(&out).Error
	return out, translate(err, "list user logins", "login")
}

// recordPersonUnlock stores a granted unlock's event and the person's
// credential use together: on PostgreSQL in one statement, elsewhere in one
// transaction.
func (s *store) recordPersonUnlock(ctx context.Context, e *Event, p *principal, at time.Time) error {
	var use string
	var args []any
	switch {
	case p.AccessKey != nil:
		use, args = "UPDATE lockctl_access_keys SET last_used_at = ? WHERE id = ?", []any{utc(at), p.AccessKey.ID}
	case p.User != nil:
		use, args = "UPDATE lockctl_users SET last_accessed_at = ? WHERE id = ?", []any{utc(at), p.User.ID}
	}
	if s.db.Dialector.Name() == "postgres" {
		s.stampEvent(e)
		return s.insertEventsWith(ctx, []Event{*e}, use, args...)
	}
	return s.tx(ctx, func(ts *store) error {
		if err := ts.addEvent(ctx, e); err != nil {
			return err
		}
		if use == "" {
			return nil
		}
		return translate(ts.db.WithContext(ctx).Exec(use, args...).Error, "touch person credential", "person")
	})
}

// countGroupsOf returns, for each user id, how many group role assignments
// the user holds.
func (s *store) countGroupsOf(ctx context.Context, userIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		Ref int64
		Cnt int
	}
	err := s.db.WithContext(ctx).Model(&RoleAssignment{}).Select("assignee_id AS ref, COUNT(*) AS cnt").
		Where("assignee_type = ? AND applies_to_type = ? AND assignee_id IN ?", assigneeUser, appliesGroup, userIDs).
		Group("assignee_id").Scan(&rows).Error
	if err != nil {
		return nil, translate(err, "count groups of users", "role assignment")
	}
	for _, r := range rows {
		out[r.Ref] = r.Cnt
	}
	return out, nil
}
