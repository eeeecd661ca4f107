package main

import (
	"context"
	"fmt"
	"log/slog"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
	"github.com/latchkey/latchkey/mappings"
)

// Demo ids: the Envoy location and flow of the captured fixtures.
const (
	demoLocationID = "177837"
	demoFlowID     = "359435"
)

// seedDemoMapping maps the fixtures' flow to the "Visitors" group, once.
func seedDemoMapping(ctx context.Context, maps *mappings.Store, ac connector.AccessControl, log *slog.Logger) error {
	if _, err := maps.Find(ctx, demoLocationID, demoFlowID); err == nil {
		return nil
	} else if latchkey.KindOf(err) != latchkey.NotFound {
		return err
	}
	groups, err := ac.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	var visitors int64
	for _, g := range groups {
		if g.Name == "Visitors" {
			visitors = g.ID
		}
	}
	if visitors == 0 {
		return fmt.Errorf("no \"Visitors\" group on the controller")
	}
	m, err := maps.Create(ctx, mappings.Mapping{
		LocationID: demoLocationID, FlowID: demoFlowID, GroupIDs: []int64{visitors},
		DurationMinutes: 240, AdvanceMinutes: 30, RevokeOnSignOut: true, Delivery: mappings.DeliveryLatchkey,
	})
	if err != nil {
		return err
	}
	log.Info("demo mapping created", "mapping_id", m.ID, "location_id", m.LocationID, "flow_id", m.FlowID, "group_id", visitors)
	return nil
}
