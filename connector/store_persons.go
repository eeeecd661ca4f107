package connector

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// VisitPerson is the controller person behind a visit's pass when its
// mapping's credential is guest or member: one per visit.
type VisitPerson struct {
	ID       int64      `gorm:"primaryKey"`
	VisitID  int64      `gorm:"not null;uniqueIndex"`
	Kind     PersonKind `gorm:"size:16;not null"`
	PersonID int64      `gorm:"not null;index"`
	// Created says latchkey made the person (a guest always; a user only
	// when none had the email), so it removes them once no access of
	// theirs remains.
	Created bool   `gorm:"not null;default:false"`
	Email   string `gorm:"size:320;not null;default:''"`
	// SecretEnc is the person's credential (a guest's access key secret, a
	// member's login secret), sealed; QRToken and QRImage a guest's reader
	// QR code, sealed.
	SecretEnc []byte
	QRToken   []byte
	QRImage   []byte
	LoginID   int64 `gorm:"not null;default:0"`
	// Creating describes a person creation whose outcome is not known
	// (set before the controller is asked); CreatingAt names it.
	Creating   string `gorm:"size:400;not null;default:''"`
	CreatingAt *time.Time
	// CreatingGroup is the group a guest invite under way gives a role on.
	CreatingGroup int64 `gorm:"not null;default:0"`
	// RetiredID is a guest this row's current one replaced (on a
	// controller that cannot update role assignments in place), deleted
	// once the replacement holds every role.
	RetiredID int64 `gorm:"not null;default:0"`
	Removed   bool  `gorm:"not null;default:false"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName is the visit people table.
func (VisitPerson) TableName() string { return "visit_people" }

// live reports whether the row names a person that exists.
func (p *VisitPerson) live() bool { return p != nil && !p.Removed && p.PersonID != 0 }

func (p *VisitPerson) ref() PersonRef { return PersonRef{Kind: p.Kind, ID: p.PersonID} }

// VisitRole is one group role assignment behind a visit's pass: one per
// mapped group. AssignmentID 0 means none exists on the controller now.
type VisitRole struct {
	ID           int64     `gorm:"primaryKey"`
	VisitID      int64     `gorm:"not null;uniqueIndex:visit_roles_group,priority:1"`
	GroupID      int64     `gorm:"not null;uniqueIndex:visit_roles_group,priority:2"`
	AssignmentID int64     `gorm:"not null;index"`
	PersonID     int64     `gorm:"not null;default:0"`
	ValidFrom    time.Time `gorm:"not null"`
	ValidUntil   time.Time `gorm:"not null"`
	Removed      bool      `gorm:"not null;default:false"`
	// Creating and CreatingAt are as on VisitLink.
	Creating   string `gorm:"size:400;not null;default:''"`
	CreatingAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName is the visit roles table.
func (VisitRole) TableName() string { return "visit_roles" }

// visitPerson returns visit id's person row, if any.
func (s *Store) visitPerson(ctx context.Context, visitID int64) (*VisitPerson, error) {
	var ps []VisitPerson
	if err := s.db.WithContext(ctx).Where("visit_id = ?", visitID).Limit(1).Find(&ps).Error; err != nil {
		return nil, fmt.Errorf("person of visit %d: %w", visitID, err)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return &ps[0], nil
}

// Roles returns the visit's role assignment rows, including removed ones.
func (s *Store) Roles(ctx context.Context, visitID int64) ([]VisitRole, error) {
	var rs []VisitRole
	if err := s.db.WithContext(ctx).Where("visit_id = ?", visitID).Order("group_id").Find(&rs).Error; err != nil {
		return nil, fmt.Errorf("roles of visit %d: %w", visitID, err)
	}
	return rs, nil
}

// personShared reports whether another visit's live person row names the
// same person.
func (s *Store) personShared(ctx context.Context, visitID int64, p PersonRef) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&VisitPerson{}).
		Where("kind = ? AND person_id = ? AND visit_id <> ? AND removed = ?", p.Kind, p.ID, visitID, false).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("visits of person %d: %w", p.ID, err)
	}
	return n > 0, nil
}

// peopleRows returns every person row that may still name a person on a
// controller: live ones, and removed ones latchkey did not create (their
// person lives on).
func (s *Store) peopleRows(ctx context.Context) ([]VisitPerson, error) {
	var ps []VisitPerson
	if err := peopleRowsQuery(s.db.WithContext(ctx)).Find(&ps).Error; err != nil {
		return nil, fmt.Errorf("visit people: %w", err)
	}
	return ps, nil
}

// peopleRowsQuery selects peopleRows' rows, through the partial index
// visit_people_drift.
func peopleRowsQuery(q *gorm.DB) *gorm.DB {
	return q.Model(&VisitPerson{}).Where(peopleDriftSQL)
}

// rolesByAssignment maps controller role assignment ids to their rows.
func (s *Store) rolesByAssignment(ctx context.Context, ids []int64) (map[int64]VisitRole, error) {
	out := map[int64]VisitRole{}
	for start := 0; start < len(ids); start += 500 {
		end := min(start+500, len(ids))
		var rs []VisitRole
		if err := s.db.WithContext(ctx).Where("assignment_id IN ?", ids[start:end]).Find(&rs).Error; err != nil {
			return nil, fmt.Errorf("roles by assignment: %w", err)
		}
		for _, r := range rs {
			out[r.AssignmentID] = r
		}
	}
	return out, nil
}

// savePerson writes the leased visit's person row, only while the lease is
// held (as SaveLink).
func (l *Lease) savePerson(ctx context.Context, p *VisitPerson) error {
	if p.ID == 0 {
		if err := l.store.db.WithContext(ctx).Create(p).Error; err != nil {
			return fmt.Errorf("save person of visit %d: %w", p.VisitID, err)
		}
		return nil
	}
	p.UpdatedAt = time.Now().UTC()
	res := l.store.db.WithContext(ctx).Model(p).Select("*").Omit("created_at").
		Where("EXISTS (SELECT 1 FROM visits WHERE visits.id = ? AND visits.sync_lease_owner = ?)", p.VisitID, l.owner).
		Updates(p)
	if res.Error != nil {
		return fmt.Errorf("save person of visit %d: %w", p.VisitID, res.Error)
	}
	if res.RowsAffected == 0 {
		return errLeaseLost
	}
	return nil
}

// saveRole writes a role row of the leased visit, only while the lease is
// held.
func (l *Lease) saveRole(ctx context.Context, r *VisitRole) error {
	if r.ID == 0 {
		if err := l.store.db.WithContext(ctx).Create(r).Error; err != nil {
			return fmt.Errorf("save role of visit %d group %d: %w", r.VisitID, r.GroupID, err)
		}
		return nil
	}
	r.UpdatedAt = time.Now().UTC()
	res := l.store.db.WithContext(ctx).Model(r).Select("*").Omit("created_at").
		Where("EXISTS (SELECT 1 FROM visits WHERE visits.id = ? AND visits.sync_lease_owner = ?)", r.VisitID, l.owner).
		Updates(r)
	if res.Error != nil {
		return fmt.Errorf("save role of visit %d group %d: %w", r.VisitID, r.GroupID, res.Error)
	}
	if res.RowsAffected == 0 {
		return errLeaseLost
	}
	return nil
}

// personKnown reports whether any visit's person row names p.
func (s *Store) personKnown(ctx context.Context, p PersonRef) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&VisitPerson{}).Where("kind = ? AND (person_id = ? OR retired_id = ?)", p.Kind, p.ID, p.ID).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("visits of person %d: %w", p.ID, err)
	}
	return n > 0, nil
}

// guestCreatingElsewhere reports whether another visit has a guest invite
// for the same name and window (key, less its nonce) under way.
func (s *Store) guestCreatingElsewhere(ctx context.Context, visitID int64, key string) (bool, error) {
	if i := strings.LastIndex(key, "|"); i >= 0 {
		key = key[:i+1]
	}
	var n int64
	err := guestCreatingQuery(s.db.WithContext(ctx), visitID, key).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("guest invites under way: %w", err)
	}
	return n > 0, nil
}

// guestCreatingQuery selects guestCreatingElsewhere's rows, through the
// partial index visit_people_creating.
func guestCreatingQuery(q *gorm.DB, visitID int64, key string) *gorm.DB {
	return q.Model(&VisitPerson{}).Where(creatingSQL+" AND creating LIKE ? ESCAPE '\\' AND visit_id <> ?", likePrefix(key), visitID)
}

// likePrefix is a LIKE pattern (ESCAPE '\\') matching strings that begin
// with p.
func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

// roleRecorded reports whether any visit's role row records controller
// role assignment id.
func (s *Store) roleRecorded(ctx context.Context, id int64) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&VisitRole{}).Where("assignment_id = ?", id).Count(&n).Error; err != nil {
		return false, fmt.Errorf("rows of role assignment %d: %w", id, err)
	}
	return n > 0, nil
}

// memberWindows returns the windows of the member's visits that want a
// role on group: their live rows, of visits scheduled or active.
func (s *Store) memberWindows(ctx context.Context, personID, group int64) ([][2]time.Time, error) {
	var rows []struct {
		ValidFrom  time.Time
		ValidUntil time.Time
	}
	err := memberWindowsQuery(s.db.WithContext(ctx), personID, group).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("windows of member %d on group %d: %w", personID, group, err)
	}
	out := make([][2]time.Time, len(rows))
	for i, r := range rows {
		out[i] = [2]time.Time{r.ValidFrom.UTC(), r.ValidUntil.UTC()}
	}
	return out, nil
}

// memberWindowsQuery selects memberWindows' rows: the member's live role
// rows on group (the partial index visit_roles_person), then their visits.
func memberWindowsQuery(q *gorm.DB, personID, group int64) *gorm.DB {
	return q.Table("visit_roles").
		Joins("JOIN visit_people ON visit_people.visit_id = visit_roles.visit_id").
		Joins("JOIN visits ON visits.id = visit_roles.visit_id").
		Where("visit_roles."+liveRoleSQL+" AND visit_roles.person_id = ? AND visit_roles.group_id = ? AND visit_people.kind = ? AND visit_people.removed = ? AND visits.status IN ?",
			personID, group, PersonMember, false, []Status{StatusScheduled, StatusActive}).
		Select("visit_roles.valid_from, visit_roles.valid_until")
}

// memberMadeByUs reports whether a visit's row records that latchkey made
// user id.
func (s *Store) memberMadeByUs(ctx context.Context, id int64) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&VisitPerson{}).Where("kind = ? AND person_id = ? AND created = ?", PersonMember, id, true).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("visits of user %d: %w", id, err)
	}
	return n > 0, nil
}
