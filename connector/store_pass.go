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
	// Every unlock reads this, so its rows are scanned by hand, past gorm's
	// reflection (a tenth of the server's CPU in unlock-max).
	rows, err := s.db.WithContext(ctx).Raw(`SELECT v.pass_hash, v.id, v.status, v.install_id,
		EXISTS (SELECT 1 FROM visit_people p WHERE p.visit_id = v.id) AS has_person,
		l.group_id, l.link_id, l.removed, l.secret_enc
		FROM visits v LEFT JOIN visit_links l ON l.visit_id = v.id
		WHERE v.pass_hash IN ? ORDER BY v.id, l.group_id`, hashes).Rows()
	if err != nil {
		return nil, fmt.Errorf("get visits by pass: %w", err)
	}
	defer rows.Close()
	out := make(map[string]passUnlockFacts, len(hashes))
	for rows.Next() {
		var (
			hash, status, install string
			visitID               int64
			hasPerson             bool
			groupID, linkID       *int64
			removed               *bool
			secret                []byte
		)
		if err := rows.Scan(&hash, &visitID, &status, &install, &hasPerson, &groupID, &linkID, &removed, &secret); err != nil {
			return nil, fmt.Errorf("get visits by pass: %w", err)
		}
		f, ok := out[hash] // a visit's row repeats for each of its links
		if !ok {
			f = passUnlockFacts{VisitID: visitID, Status: Status(status), InstallID: install, HasPerson: hasPerson}
		}
		if groupID != nil {
			l := VisitLink{VisitID: f.VisitID, GroupID: *groupID, SecretEnc: secret}
			if linkID != nil {
				l.LinkID = *linkID
			}
			if removed != nil {
				l.Removed = *removed
			}
			f.Links = append(f.Links, l)
		}
		out[hash] = f
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get visits by pass: %w", err)
	}
	return out, nil
}
