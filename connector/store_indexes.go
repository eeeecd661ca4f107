package connector

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// The periodic sweeps read only rows that owe work: each reads a partial
// index whose predicate holds for live rows alone, so history (expired,
// revoked, ignored visits; removed links) costs them nothing. A query
// names its index's predicate word for word (SQLite uses a partial index
// only for a query whose WHERE clause contains the index's own terms), and
// with the statuses written out, not bound, so PostgreSQL can use it also
// in a plan it caches for a prepared statement.
var (
	// liveSQL: visits whose access is open or about to be (WantsLinks).
	liveSQL = fmt.Sprintf("status IN ('%s', '%s')", StatusScheduled, StatusActive)
	// startingSQL: visits whose window has not opened yet.
	startingSQL = fmt.Sprintf("status = '%s'", StatusScheduled)
	// attentionSQL: visits waiting for a person (held) or a retry (failed).
	attentionSQL = fmt.Sprintf("status IN ('%s', '%s')", StatusHeld, StatusFailed)
	// owedSQL: visits whose change is not synced, or whose guest email is
	// still owed.
	owedSQL = "(synced_version < version OR email_due_key <> emailed_window)"
	// creatingSQL: link, person or role rows with a creation under way.
	creatingSQL = "creating <> ''"
	// peopleDriftSQL: person rows that may still name a person on a
	// controller (see peopleRows).
	peopleDriftSQL = "(removed = false OR created = false)"
	// liveRoleSQL: role rows not removed.
	liveRoleSQL = "removed = false"
	// unrevokedSQL: visits no one revoked by hand.
	unrevokedSQL = "manually_revoked = false"
)

// partialIndexes are the indexes the sweeps and lookups read, each over
// the rows that owe work only.
var partialIndexes = []struct{ name, table, columns, where string }{
	// The lost-work sweep (unsynced, emailsOwed) and the sync lag.
	{"visits_owed", "visits", "updated_at", owedSQL},
	// The expiry sweep (due): windows that close, and windows that open.
	{"visits_live", "visits", "valid_until", liveSQL},
	{"visits_starting", "visits", "valid_from", startingSQL},
	// The desk's and the operations panel's held and failed visits.
	{"visits_attention", "visits", "created_at", attentionSQL},
	// A creation cut off elsewhere on the same group (creatingElsewhere).
	{"visit_links_creating", "visit_links", "group_id", creatingSQL},
	// The people drift repair reads (peopleRows), and guest invites under
	// way (guestCreatingElsewhere).
	{"visit_people_drift", "visit_people", "visit_id", peopleDriftSQL},
	{"visit_people_creating", "visit_people", "visit_id", creatingSQL},
	// A member's role windows on a group (memberWindows).
	{"visit_roles_person", "visit_roles", "person_id, group_id", liveRoleSQL},
	// An install's visits, when it is uninstalled or reconfigured
	// (openVisitsOf). Partial, so that no plan of an event's lookup can
	// read it for the install alone: an index led by the install is one a
	// generic plan made without statistics takes for the lookup.
	{"visits_of_install", "visits", "install_id, id", unrevokedSQL},
}

// droppedIndexes are indexes of earlier releases that no query needs any
// more; each only cost every insert and kept updates from being HOT.
var droppedIndexes = []struct{ table, name string }{
	// An event finds its visit by install, location and entry or invite
	// (visits_by_entry, visits_by_invite).
	{"visits", "idx_visits_entry_id"},
	{"visits", "idx_visits_invite_id"},
	// visits_by_source leads with source_id and serves both.
	{"visits", "visits_source"},
	{"visits", "idx_visits_source_id"},
	// Replaced by visits_live, visits_starting and visits_attention, which
	// hold live visits only.
	{"visits", "visits_status_until"},
	// Read through visits_owed.
	{"visits", "idx_visits_synced_version"},
	// Led by the install and location, which a plan could read alone:
	// replaced by visits_by_entry and visits_by_invite.
	{"visits", "visits_entry"},
	{"visits", "visits_invite"},
}

// migrateIndexes drops the indexes no query needs and creates the partial
// ones, on a new database and on one an earlier release made.
func migrateIndexes(ctx context.Context, db *gorm.DB) error {
	db = db.WithContext(ctx)
	for _, ix := range droppedIndexes {
		if err := db.Exec("DROP INDEX IF EXISTS " + ix.name).Error; err != nil {
			return fmt.Errorf("drop index %s: %w", ix.name, err)
		}
	}
	for _, ix := range partialIndexes {
		sql := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s", ix.name, ix.table, ix.columns, ix.where)
		if err := db.Exec(sql).Error; err != nil {
			return fmt.Errorf("index %s: %w", ix.name, err)
		}
	}
	return nil
}
