package kisi

import (
	"context"
	"net/http"

	"github.com/latchkey/latchkey/connector"
)

type placeJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

var _ connector.PlaceLister = (*Client)(nil)

// ListPlaces returns every place (GET /places, all pages), for labelling
// an install's places by name. GET is retried on 429, 5xx and network
// errors. Safe for concurrent use.
func (cl *Client) ListPlaces(ctx context.Context) ([]connector.Place, error) {
	js, err := listAll[placeJSON](ctx, cl, call{
		method:  http.MethodGet,
		path:    []string{"places"},
		policy:  retryIdempotent,
		op:      "list places",
		subject: "the place list",
	})
	if err != nil {
		return nil, err
	}
	out := make([]connector.Place, len(js))
	for i, j := range js {
		out[i] = connector.Place{ID: j.ID, Name: j.Name}
	}
	return out, nil
}
