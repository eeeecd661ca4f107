package connector

import (
	"context"
	"fmt"
)

// passUnlockFacts is what an unlock through a pass needs of its visit, in
// one read: the visit's id, status and install, whether it has a person
// credential, and its links' groups and sealed secrets.
type passUnlockFacts struct {
	VisitID   int64
	Status    Status
	InstallID string
	HasPerson bool
	Links     []VisitLink // GroupID, LinkID, Removed and SecretEnc only
}

// passUnlockFacts reads the facts of the pass whose token hashes to hash
// in one statement; ErrVisitNotFound when there is none.
func (s *Store) passUnlockFacts(ctx context.Context, hash string) (passUnlockFacts, error) {
	var rows []struct {
		ID        int64
		Status    Status
		InstallID string
		HasPerson bool
		GroupID   *int64
		LinkID    *int64
		Removed   *bool
		SecretEnc []byte
	}
	err := s.db.WithContext(ctx).Raw(`SELECT v.id, v.status, v.install_id,
		EXISTS (SELECT 1 FROM visit_people p WHERE p.visit_id = v.id) AS has_person,
		l.group_id, l.link_id, l.removed, l.secret_enc
		FROM visits v LEFT JOIN visit_links l ON l.visit_id = v.id
		WHERE v.pass_hash = ? ORDER BY l.group_id`, hash).Scan(&rows).Error
	if err != nil {
		return passUnlockFacts{}, fmt.Errorf("get visit by pass: %w", err)
	}
	if len(rows) == 0 {
		return passUnlockFacts{}, ErrVisitNotFound
	}
	f := passUnlockFacts{VisitID: rows[0].ID, Status: rows[0].Status, InstallID: rows[0].InstallID, HasPerson: rows[0].HasPerson}
	for _, r := range rows {
		if r.GroupID == nil {
			continue
		}
		l := VisitLink{VisitID: r.ID, GroupID: *r.GroupID, SecretEnc: r.SecretEnc}
		if r.LinkID != nil {
			l.LinkID = *r.LinkID
		}
		if r.Removed != nil {
			l.Removed = *r.Removed
		}
		f.Links = append(f.Links, l)
	}
	return f, nil
}
