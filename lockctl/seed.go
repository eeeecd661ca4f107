package lockctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// demo is the --demo data set: one place, four doors, two groups.
var demo = struct {
	place    Place
	locks    []string
	groups   []string
	opens    map[string][]string
	groupDoc map[string]string
}{
	place:  Place{Name: "HQ", Description: "Demo headquarters", Address: "Friedrichstraße 68, 10117 Berlin", TimeZone: "Europe/Berlin"},
	locks:  []string{"Front door", "Lobby", "Meeting room", "Workshop"},
	groups: []string{"Visitors", "Contractors"},
	opens: map[string][]string{
		"Visitors":    {"Front door", "Lobby", "Meeting room"},
		"Contractors": {"Front door", "Lobby", "Workshop"},
	},
	groupDoc: map[string]string{
		"Visitors":    "Guests: entrance and meeting room",
		"Contractors": "Service staff: entrance and workshop",
	},
}

// Seed creates the demo data: place "HQ" (Europe/Berlin), the doors "Front
// door", "Lobby", "Meeting room" and "Workshop", and the groups "Visitors"
// (created first, so it is group 1 on a fresh database) and "Contractors"
// with their doors. It is idempotent: what exists, by name, is kept as it
// is, so running it twice creates nothing new.
func (c *Controller) Seed(ctx context.Context) error { return c.store.seedDemo(ctx) }

func (s *store) seedDemo(ctx context.Context) error {
	err := s.seedDemoOnce(ctx)
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		// Another replica seeded at the same moment and committed first:
		// this time its rows are found by name.
		err = s.seedDemoOnce(ctx)
	}
	return err
}

func (s *store) seedDemoOnce(ctx context.Context) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.stamp()
		place := demo.place
		if err := firstOrCreate(tx, &place, "name = ?", place.Name, now); err != nil {
			return err
		}
		lockIDs := map[string]int64{}
		for _, name := range demo.locks {
			l := Lock{PlaceID: place.ID, Name: name, Online: true}
			if err := firstOrCreate(tx, &l, "place_id = ? AND name = ?", []any{place.ID, name}, now); err != nil {
				return err
			}
			lockIDs[name] = l.ID
		}
		for _, name := range demo.groups {
			g := Group{PlaceID: place.ID, Name: name, Description: demo.groupDoc[name]}
			if err := firstOrCreate(tx, &g, "place_id = ? AND name = ?", []any{place.ID, name}, now); err != nil {
				return err
			}
			for _, door := range demo.opens[name] {
				gl := GroupLock{GroupID: g.ID, LockID: lockIDs[door]}
				if err := firstOrCreate(tx, &gl, "group_id = ? AND lock_id = ?", []any{g.ID, gl.LockID}, now); err != nil {
					return err
				}
			}
		}
		// Doors added to groups change unlock decisions.
		return bumpGeneration(tx)
	})
}

// firstOrCreate loads the row matching where into v, or inserts v stamped
// with now. args is one value or a []any of values.
func firstOrCreate[T any](tx *gorm.DB, v *T, where string, args any, now time.Time) error {
	vals, ok := args.([]any)
	if !ok {
		vals = []any{args}
	}
	var found T
	err := tx.Where(where, vals...).Take(&found).Error
	switch {
	case err == nil:
		*v = found
		return nil
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("seed lookup: %w", err)
	}
	stampRow(v, now)
	if err := tx.Create(v).Error; err != nil {
		return fmt.Errorf("seed create: %w", err)
	}
	return nil
}

// stampRow sets CreatedAt/UpdatedAt on the seed models.
func stampRow(v any, now time.Time) {
	switch r := v.(type) {
	case *Place:
		r.CreatedAt, r.UpdatedAt = now, now
	case *Lock:
		r.CreatedAt, r.UpdatedAt = now, now
	case *Group:
		r.CreatedAt, r.UpdatedAt = now, now
	case *GroupLock:
		r.CreatedAt, r.UpdatedAt = now, now
	}
}
