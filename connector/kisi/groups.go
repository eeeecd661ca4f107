package kisi

import (
	"context"
	"net/http"

	"github.com/latchkey/latchkey/connector"
)

type groupJSON struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PlaceID    *int64 `json:"place_id"`
	LocksCount int    `json:"locks_count"`
	Place      *struct {
		ID int64 `json:"id"`
	} `json:"place"`
}

func (j groupJSON) toGroup() connector.Group {
	g := connector.Group{ID: j.ID, Name: j.Name, LocksCount: j.LocksCount}
	switch {
	case j.PlaceID != nil:
		g.PlaceID = *j.PlaceID
	case j.Place != nil:
		g.PlaceID = j.Place.ID
	}
	return g
}

// ListGroups returns every group (GET /groups, all pages). Errors:
// Unauthorized, Forbidden, TooMany, Unavailable (also for paging that does
// not advance); GET is retried on 429, 5xx and network errors. Safe for
// concurrent use.
func (cl *Client) ListGroups(ctx context.Context) ([]connector.Group, error) {
	js, err := listAll[groupJSON](ctx, cl, call{
		method:  http.MethodGet,
		path:    []string{"groups"},
		policy:  retryIdempotent,
		op:      "list groups",
		subject: "the group list",
	})
	if err != nil {
		return nil, err
	}
	groups := make([]connector.Group, len(js))
	for i, j := range js {
		groups[i] = j.toGroup()
	}
	return groups, nil
}
