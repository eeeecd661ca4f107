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

// passUnlockFacts reads the facts of the passes whose tokens hash to
// hashes, in one statement, by hash; a hash of no pass is left out. The
// unlocks that arrive together share it (Service.passes).
func (s *Store) passUnlockFacts(ctx context.Context, hashes []string) (map[string]passUnlockFacts, error) {
	var rows []struct {
		PassHash  string
		ID        int64
		Status    Status
		InstallID string
		HasPerson bool
		GroupID   *int64
		LinkID    *int64
		Removed   *bool
		SecretEnc []byte
	}
	err := s.db.WithContext(ctx).Raw(`SELECT v.pass_hash, v.id, v.status, v.install_id,
		EXISTS (SELECT 1 FROM visit_people p WHERE p.visit_id = v.id) AS has_person,
		l.group_id, l.link_id, l.removed, l.secret_enc
		FROM visits v LEFT JOIN visit_links l ON l.visit_id = v.id
		WHERE v.pass_hash IN ? ORDER BY v.id, l.group_id`, hashes).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("get visits by pass: %w", err)
	}
	out := make(map[string]passUnlockFacts, len(hashes))
	for _, r := range rows {
		f, ok := out[r.PassHash]
		if !ok {
			f = passUnlockFacts{VisitID: r.ID, Status: r.Status, InstallID: r.InstallID, HasPerson: r.HasPerson}
		}
		if r.GroupID != nil {
			l := VisitLink{VisitID: r.ID, GroupID: *r.GroupID, SecretEnc: r.SecretEnc}
			if r.LinkID != nil {
				l.LinkID = *r.LinkID
			}
			if r.Removed != nil {
				l.Removed = *r.Removed
			}
			f.Links = append(f.Links, l)
		}
		out[r.PassHash] = f
	}
	return out, nil
}
