package mappings

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/testenv"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	db := testenv.DB(t)
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return NewStore(db)
}

func valid() Mapping {
	return Mapping{LocationID: "177837", FlowID: "359435", GroupIDs: []int64{1, 2}, DurationMinutes: 240, AdvanceMinutes: 30, RevokeOnSignOut: true}
}

func TestStoreCRUD(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	m, err := s.Create(ctx, valid())
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == 0 || m.Delivery != DeliveryLatchkey {
		t.Fatalf("created %+v: want an id and delivery defaulted to latchkey", m)
	}
	got, err := s.Find(ctx, "177837", "359435")
	if err != nil {
		t.Fatal(err)
	}
	ignore := cmpopts.IgnoreFields(Mapping{}, "CreatedAt", "UpdatedAt")
	if d := cmp.Diff(m, got, ignore); d != "" {
		t.Fatalf("Find (-created +found):\n%s", d)
	}
	if _, err := s.Create(ctx, valid()); latchkey.KindOf(err) != latchkey.Conflict {
		t.Fatalf("second mapping for the same flow: got %v, want Conflict", err)
	}
	m.GroupIDs, m.DurationMinutes = []int64{3}, 60
	if _, _, err := s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, m.ID)
	if d := cmp.Diff([]int64{3}, got.GroupIDs); d != "" || got.DurationMinutes != 60 {
		t.Fatalf("after update got groups %v duration %d", got.GroupIDs, got.DurationMinutes)
	}
	list, err := s.List(ctx, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d mappings, %v; want 1", len(list), err)
	}
	if err := s.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, m.ID); latchkey.KindOf(err) != latchkey.NotFound {
		t.Fatalf("Get after delete: got %v, want NotFound", err)
	}
	if err := s.Delete(ctx, m.ID); latchkey.KindOf(err) != latchkey.NotFound {
		t.Fatalf("Delete twice: got %v, want NotFound", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Mapping)
		want   string
	}{
		{"ok", func(*Mapping) {}, ""},
		{"no location", func(m *Mapping) { m.LocationID = "" }, "location_id is required"},
		{"no flow", func(m *Mapping) { m.FlowID = "" }, "flow_id is required"},
		{"no groups", func(m *Mapping) { m.GroupIDs = nil }, "group_ids needs at least one group"},
		{"zero duration", func(m *Mapping) { m.DurationMinutes = 0 }, "duration_minutes must be positive"},
		{"zero duration until end of day", func(m *Mapping) { m.DurationMinutes = 0; m.UntilEndOfDay = true }, ""},
		{"huge duration", func(m *Mapping) { m.DurationMinutes = MaxDurationMinutes + 1 }, "duration_minutes must be between 1 and 20160"},
		{"negative advance", func(m *Mapping) { m.AdvanceMinutes = -1 }, "advance_minutes must be between 0 and 10080"},
		{"negative grace", func(m *Mapping) { m.GraceMinutes = -5 }, "grace_minutes must be between 0 and 1440"},
		{"bad delivery", func(m *Mapping) { m.Delivery = "sms" }, `delivery must be "latchkey" or "controller"`},
		{"duplicate group", func(m *Mapping) { m.GroupIDs = []int64{1, 1} }, "group_ids: 1 is listed twice"},
		{"bad group", func(m *Mapping) { m.GroupIDs = []int64{0} }, "group_ids: 0 is not a group id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			m.Normalize()
			tt.change(&m)
			err := m.Validate()
			got := ""
			if err != nil {
				got = latchkey.Message(err)
				if latchkey.KindOf(err) != latchkey.Invalid {
					t.Fatalf("kind %v, want Invalid", latchkey.KindOf(err))
				}
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
