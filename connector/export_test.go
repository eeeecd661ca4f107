package connector

import (
	"context"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/internal/secretbox"
	"gorm.io/gorm"
)

// OpenLinkSecret opens the sealed secret of link l, for tests that unlock
// through the controller directly.
func OpenLinkSecret(box *secretbox.Box, l VisitLink) (string, error) {
	b, err := box.Open(l.SecretEnc, linkAD(l.VisitID, l.GroupID))
	return string(b), err
}

// ExplainVisitsFor returns the database's plan for the lookup an event
// makes to find its visits.
func (s *Store) ExplainVisitsFor(install, location, source, entry, invite string) (string, error) {
	var vs []Visit
	sql := s.db.ToSQL(func(tx *gorm.DB) *gorm.DB {
		return visitsForQuery(tx, install, location, source, entry, invite).Find(&vs)
	})
	explain := "EXPLAIN QUERY PLAN "
	if s.db.Dialector.Name() == "postgres" {
		explain = "EXPLAIN "
	}
	rows, err := s.db.Raw(explain + sql).Rows()
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		fmt.Fprintln(&plan, vals...)
	}
	return plan.String(), rows.Err()
}

// PersonCredentialOf returns the credential of visit v's person, if it
// has one, for tests that unlock through the controller directly.
func (s *Service) PersonCredentialOf(ctx context.Context, v Visit) (PersonCredential, bool, error) {
	return s.personCredential(ctx, &v)
}
