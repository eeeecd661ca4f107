package connector

import (
	"context"
	"fmt"
)

// emailFailedSQL selects the visits whose guest email failed: access is
// open or about to be (a closed visit's email no longer matters), and the
// visit's last email entry on the timeline is a failure. Its arguments are
// KindEmailSent, KindEmailFailed, KindEmailFailed; only live visits are
// looked at (the partial index visits_live).
var emailFailedSQL = `(SELECT t.kind FROM visit_timeline t WHERE t.visit_id = visits.id AND t.kind IN (?, ?)
	ORDER BY t.at DESC, t.id DESC LIMIT 1) = ? AND visits.` + liveSQL

// EmailFailures returns, for those of ids whose last email failed (as
// emailFailedSQL says), the message of that failure.
func (s *Store) EmailFailures(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		VisitID int64
		Kind    string
		Message string
	}
	// The latest email entry of each visit: no later one of those kinds.
	err := s.db.WithContext(ctx).Raw(`SELECT t.visit_id, t.kind, t.message FROM visit_timeline t
		JOIN visits v ON v.id = t.visit_id AND v.status IN (?, ?)
		WHERE t.visit_id IN ? AND t.kind IN (?, ?) AND NOT EXISTS (
			SELECT 1 FROM visit_timeline u WHERE u.visit_id = t.visit_id AND u.kind IN (?, ?)
			AND (u.at > t.at OR (u.at = t.at AND u.id > t.id)))`,
		StatusScheduled, StatusActive, ids, KindEmailSent, KindEmailFailed, KindEmailSent, KindEmailFailed).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("email failures: %w", err)
	}
	for _, r := range rows {
		if r.Kind == KindEmailFailed {
			out[r.VisitID] = r.Message
		}
	}
	return out, nil
}

// correctEmail sets the guest's address of visit id as the front desk
// corrected it.
func (s *Store) correctEmail(ctx context.Context, id int64, email string) error {
	err := s.db.WithContext(ctx).Model(&Visit{}).Where("id = ?", id).
		Updates(map[string]any{"email": email, "email_corrected": email}).Error
	if err != nil {
		return fmt.Errorf("correct email of visit %d: %w", id, err)
	}
	return nil
}

// PlaceNames are the names the platform gave locations and flows, as its
// events last told them.
type PlaceNames struct {
	// Locations maps a location id to its name.
	Locations map[string]string
	// Flows maps "location/flow" to the flow's name.
	Flows map[string]string
}

// maxNames bounds the names read: a desk has a handful of places.
const maxNames = 1000

// Names returns the location and flow names the visits' events carried,
// the latest non-empty one of each.
func (s *Store) Names(ctx context.Context) (PlaceNames, error) {
	out := PlaceNames{Locations: map[string]string{}, Flows: map[string]string{}}
	var rows []struct {
		LocationID, LocationName, FlowID, FlowName string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT v.location_id, v.location_name, v.flow_id, v.flow_name FROM visits v
		WHERE v.id IN (SELECT MAX(id) FROM visits GROUP BY location_id, flow_id) LIMIT ?`, maxNames).Scan(&rows).Error
	if err != nil {
		return out, fmt.Errorf("place names: %w", err)
	}
	for _, r := range rows {
		if r.LocationName != "" {
			out.Locations[r.LocationID] = r.LocationName
		}
		if r.FlowName != "" {
			out.Flows[r.LocationID+"/"+r.FlowID] = r.FlowName
		}
	}
	return out, nil
}
