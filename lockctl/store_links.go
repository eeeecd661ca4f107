package lockctl

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// linkFilter selects group links for GET /group_links.
type linkFilter struct {
	IDs     []int64
	GroupID *int64
	Query   string
	Sort    string
}

func (s *store) createLink(ctx context.Context, l *GroupLink) error {
	s.stampLink(l)
	return create(ctx, s, l, "group link")
}

func (s *store) stampLink(l *GroupLink) {
	l.CreatedAt, l.UpdatedAt = s.stamp(), s.stamp()
	l.ValidFrom, l.ValidUntil = utcPtr(l.ValidFrom), utcPtr(l.ValidUntil)
}

// createLinkWithEvent stores link l, e, the event of its creation, whose
// object is the new link, and r, when not nil, the record of the
// idempotency key that made it, together. On PostgreSQL that is one
// statement: the link's insert is a data-modifying WITH whose id the
// others take, so no BEGIN and COMMIT round trips. Elsewhere it is a
// transaction of the inserts. A key another request recorded first is a
// conflict, as it is in a transaction.
func (s *store) createLinkWithEvent(ctx context.Context, l *GroupLink, e *Event, r *IdempotencyRecord) error {
	if s.db.Dialector.Name() != "postgres" {
		return s.tx(ctx, func(ts *store) error {
			if err := ts.createLink(ctx, l); err != nil {
				return err
			}
			if r != nil {
				r.LinkID = ptr(l.ID)
				if err := ts.createIdempotency(ctx, r); err != nil {
					return err
				}
			}
			e.ObjectID = ptr(l.ID)
			return ts.addEvent(ctx, e)
		})
	}
	s.stampLink(l)
	s.stampEvent(e)
	// The inserts as gorm renders them ($1… placeholders), not run; the
	// link id the others carry is a stand-in, replaced by the new link's.
	li, err := s.dryInsert(l)
	if err != nil {
		return translate(err, "create group link", "group link")
	}
	if strings.Count(li.sql, " RETURNING ") != 1 || !strings.HasSuffix(li.sql, ` RETURNING "id"`) {
		// Any other column filled back would be left unset here.
		return fmt.Errorf("create group link: unexpected link insert %q", li.sql)
	}
	sql, args := "WITH l AS ("+li.sql+")", li.args
	// linked renders v's insert with column the new link's id, its
	// arguments appended to the statement's.
	linked := func(v any, column string) (string, error) {
		d, err := s.dryInsert(v)
		if err != nil {
			return "", translate(err, "create group link", "group link")
		}
		q, a, err := d.withLinkID(column, len(args))
		args = append(args, a...)
		return q, err
	}
	if r != nil {
		r.CreatedAt, r.LinkID = s.stamp(), ptr(int64(0))
		q, err := linked(r, "link_id")
		if err != nil {
			return err
		}
		sql += ", i AS (" + q + ")"
	}
	e.ObjectID = ptr(int64(0))
	q, err := linked(e, "object_id")
	if err != nil {
		return err
	}
	sql += " " + q + " RETURNING object_id"
	var id int64
	if err := s.raw(ctx, sql, args, &id); err != nil {
		return translate(err, "create group link", "group link")
	}
	l.ID, e.ObjectID = id, ptr(id)
	if r != nil {
		r.LinkID = ptr(id)
	}
	return nil
}

// dryInsert is the one-row insert of v as gorm renders it, not run.
type dryInsert struct {
	sql  string
	args []any
}

func (s *store) dryInsert(v any) (dryInsert, error) {
	st := s.db.Session(&gorm.Session{DryRun: true, NewDB: true}).Omit(clause.Associations).Create(v).Statement
	return dryInsert{st.SQL.String(), st.Vars}, st.Error
}

// withLinkID returns the insert, without its RETURNING, with column's
// value the new link's id (l's, in the statement's WITH) and its other
// placeholders numbered on from off.
func (d dryInsert) withLinkID(column string, off int) (string, []any, error) {
	cols, _, ok := strings.Cut(d.sql, ") VALUES (")
	_, cols, _ = strings.Cut(cols, " (")
	at := slices.Index(strings.Split(cols, ","), `"`+column+`"`) + 1
	if !ok || at == 0 || len(d.args) != strings.Count(cols, ",")+1 || strings.Count(d.sql, "$") != len(d.args) {
		return "", nil, fmt.Errorf("create group link: unexpected insert %q", d.sql)
	}
	q := d.sql
	if i := strings.LastIndex(q, " RETURNING "); i >= 0 {
		q = q[:i]
	}
	q = placeholder.ReplaceAllStringFunc(q, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		switch {
		case n == at:
			return "(SELECT id FROM l)"
		case n > at:
			n--
		}
		return "$" + strconv.Itoa(n+off)
	})
	return q, slices.Delete(slices.Clone(d.args), at-1, at), nil
}

// placeholder matches a PostgreSQL placeholder ($1, $2, …).
var placeholder = regexp.MustCompile(`\$[0-9]+`)

func (s *store) link(ctx context.Context, id int64) (GroupLink, error) {
	return byID[GroupLink](ctx, s, id, "group link")
}

var linkSorts = map[string]string{
	"name":         "lockctl_group_links.name, lockctl_group_links.id",
	"unlock":       "(last_used_at IS NULL), last_used_at, lockctl_group_links.id",
	"valid_until":  "(valid_until IS NULL), valid_until, lockctl_group_links.id",
	"group_name":   "(SELECT g.name FROM lockctl_groups g WHERE g.id = lockctl_group_links.group_id), lockctl_group_links.id",
	"-name":        "lockctl_group_links.name DESC, lockctl_group_links.id DESC",
	"-unlock":      "(last_used_at IS NULL), last_used_at DESC, lockctl_group_links.id DESC",
	"-valid_until": "(valid_until IS NULL), valid_until DESC, lockctl_group_links.id DESC",
	"-group_name":  "(SELECT g.name FROM lockctl_groups g WHERE g.id = lockctl_group_links.group_id) DESC, lockctl_group_links.id DESC",
}

func (s *store) listLinks(ctx context.Context, f linkFilter, p page) ([]GroupLink, int64, error) {
	q := s.db.WithContext(ctx).Model(&GroupLink{})
	if len(f.IDs) > 0 {
		q = q.Where("id IN ?", f.IDs)
	}
	if f.GroupID != nil {
		q = q.Where("group_id = ?", *f.GroupID)
	}
	if f.Query != "" {
		like := likePattern(f.Query)
		q = q.Where(`LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\' OR phone LIKE ? ESCAPE '\'`+
			` OR group_id IN (SELECT id FROM lockctl_groups WHERE LOWER(name) LIKE ? ESCAPE '\')`,
			like, like, like, like)
	}
	order, ok := linkSorts[f.Sort]
	if !ok {
		order = "id"
	}
	var out []GroupLink
	total, err := listPage(q, order, p, &out)
	return out, total, translate(err, "list group links", "group link")
}

// updateLink applies change to link id inside a transaction and returns the
// link after the change, bumping the access generation. The secret never changes. The link is locked from
// the read to the write, so concurrent changes apply one after the other.
func (s *store) updateLink(ctx context.Context, id int64, change func(*GroupLink) error) (GroupLink, error) {
	var l GroupLink
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := forUpdate(tx).Where("id = ?", id).Take(&l).Error; err != nil {
			return translate(err, fmt.Sprintf("get group link %d", id), "group link")
		}
		if err := change(&l); err != nil {
			return err
		}
		l.ValidFrom, l.ValidUntil = utcPtr(l.ValidFrom), utcPtr(l.ValidUntil)
		l.UpdatedAt = s.stamp()
		err := tx.Model(&GroupLink{ID: id}).Select("name", "email", "phone", "link_enabled",
			"valid_from", "valid_until", "updated_at").Updates(&l).Error
		if err != nil {
			return translate(err, fmt.Sprintf("update group link %d", id), "group link")
		}
		return bumpGeneration(tx)
	})
	return l, err
}

// deleteLink removes link id, bumping the access generation, and returns it
// as it was.
func (s *store) deleteLink(ctx context.Context, id int64) (GroupLink, error) {
	var l GroupLink
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&l).Error; err != nil {
			return translate(err, fmt.Sprintf("get group link %d", id), "group link")
		}
		if err := tx.Where("id = ?", id).Delete(&GroupLink{}).Error; err != nil {
			return translate(err, fmt.Sprintf("delete group link %d", id), "group link")
		}
		return bumpGeneration(tx)
	})
	return l, err
}

func (s *store) createLogin(ctx context.Context, l *Login) error {
	l.CreatedAt = s.stamp()
	return create(ctx, s, l, "login")
}

// loginBySecret finds the login whose secret hashes to hash.
func (s *store) loginBySecret(ctx context.Context, hash string) (Login, error) {
	var l Login
	err := s.db.WithContext(ctx).Where("secret_hash = ?", hash).Take(&l).Error
	return l, translate(err, "get login by secret", "login")
}

// logins returns the logins with the given ids, keyed by id.
func (s *store) logins(ctx context.Context, ids []int64) (map[int64]Login, error) {
	out := map[int64]Login{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Login
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err, "get logins", "login")
	}
	for _, l := range rows {
		out[l.ID] = l
	}
	return out, nil
}

// groups returns the groups with the given ids, keyed by id.
func (s *store) groups(ctx context.Context, ids []int64) (map[int64]Group, error) {
	out := map[int64]Group{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Group
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err, "get groups", "group")
	}
	for _, g := range rows {
		out[g.ID] = g
	}
	return out, nil
}

// places returns the places with the given ids, keyed by id.
func (s *store) places(ctx context.Context, ids []int64) (map[int64]Place, error) {
	out := map[int64]Place{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Place
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err, "get places", "place")
	}
	for _, p := range rows {
		out[p.ID] = p
	}
	return out, nil
}

// countLogins counts the administrators' API keys minted under mintedBy.
func (s *store) countLogins(ctx context.Context, mintedBy string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Login{}).Where("minted_by = ? AND user_id IS NULL", mintedBy).Count(&n).Error
	return n, translate(err, "count logins", "login")
}

// listLogins returns one page of the logins minted under mintedBy, by id:
// those of userID, or with userID nil the administrators' API keys.
func (s *store) listLogins(ctx context.Context, mintedBy string, userID *int64, p page) ([]Login, int64, error) {
	q := s.db.WithContext(ctx).Model(&Login{}).Where("minted_by = ?", mintedBy)
	if userID != nil {
		q = q.Where("user_id = ?", *userID)
	} else {
		q = q.Where("user_id IS NULL")
	}
	var out []Login
	total, err := listPage(q, "id", p, &out)
	return out, total, translate(err, "list logins", "login")
}

// deleteLogin removes login id and returns it as it was.
func (s *store) deleteLogin(ctx context.Context, id int64) (Login, error) {
	var l Login
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).Take(&l).Error; err != nil {
			return translate(err, fmt.Sprintf("get login %d", id), "login")
		}
		err := tx.Where("id = ?", id).Delete(&Login{}).Error
		return translate(err, fmt.Sprintf("delete login %d", id), "login")
	})
	return l, err
}

// deleteLoginsNotMintedBy deletes the logins minted under any other key
// than mintedBy that nobody created or used since idleBefore, and returns
// how many it deleted.
func (s *store) deleteLoginsNotMintedBy(ctx context.Context, mintedBy string, idleBefore time.Time) (int64, error) {
	t := utc(idleBefore)
	res := s.db.WithContext(ctx).Where("minted_by <> ? AND created_at < ? AND (last_used_at IS NULL OR last_used_at < ?)",
		mintedBy, t, t).Delete(&Login{})
	return res.RowsAffected, translate(res.Error, "delete stale logins", "login")
}

// touchLogin sets the login's last_used_at.
func (s *store) touchLogin(ctx context.Context, id int64, at time.Time) error {
	err := s.db.WithContext(ctx).Model(&Login{}).Where("id = ?", id).UpdateColumn("last_used_at", utc(at)).Error
	return translate(err, fmt.Sprintf("touch login %d", id), "login")
}
