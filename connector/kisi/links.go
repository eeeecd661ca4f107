package kisi

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/connector"
)

// linkJSON is a GroupLink as Kisi sends it; the three secret-bearing fields
// appear only in the create response.
type linkJSON struct {
	ID      int64   `json:"id"`
	GroupID int64   `json:"group_id"`
	Name    string  `json:"name"`
	Email   *string `json:"email"`
	Group   *struct {
		ID int64 `json:"id"`
	} `json:"group"`
	LinkEnabled *bool      `json:"link_enabled"`
	ValidFrom   *time.Time `json:"valid_from"`
	ValidUntil  *time.Time `json:"valid_until"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	Secret      *string    `json:"secret"`
	QRToken     *string    `json:"quick_response_code_token"`
	QRImage     *string    `json:"quick_response_code_image"`
}

// toLink converts a GroupLink. A missing link_enabled is Kisi's default,
// true.
func (j linkJSON) toLink() connector.Link {
	l := connector.Link{
		ID:         j.ID,
		GroupID:    j.GroupID,
		Name:       j.Name,
		Email:      deref(j.Email),
		ValidFrom:  utc(j.ValidFrom),
		ValidUntil: utc(j.ValidUntil),
		LastUsedAt: utc(j.LastUsedAt),
		Enabled:    j.LinkEnabled == nil || *j.LinkEnabled,
		Secret:     deref(j.Secret),
		QRToken:    deref(j.QRToken),
		QRImagePNG: decodePNG(deref(j.QRImage)),
	}
	if l.GroupID == 0 && j.Group != nil {
		l.GroupID = j.Group.ID
	}
	return l
}

type createLinkRequest struct {
	GroupLink createLinkJSON `json:"group_link"`
}

type createLinkJSON struct {
	GroupID     int64   `json:"group_id"`
	Name        string  `json:"name"`
	Email       string  `json:"email,omitempty"`
	ValidFrom   *string `json:"valid_from,omitempty"`
	ValidUntil  *string `json:"valid_until,omitempty"`
	LinkEnabled bool    `json:"link_enabled"`
	QRType      string  `json:"quick_response_code_type,omitempty"`
}

type updateLinkRequest struct {
	GroupLink updateLinkJSON `json:"group_link"`
}

// updateLinkJSON sends zero times as null: in a PATCH an absent field would
// keep the old window, null clears it.
type updateLinkJSON struct {
	Name        string  `json:"name"`
	ValidFrom   *string `json:"valid_from"`
	ValidUntil  *string `json:"valid_until"`
	LinkEnabled bool    `json:"link_enabled"`
}

// CreateLink creates a group link (POST /group_links) and returns it with its
// secret, QR token and decoded QR image. Zero ValidFrom / ValidUntil are left
// out (valid at once / never expires); times are sent as RFC 3339 UTC.
//
// Errors carry a latchkey Kind with a *connector.ControllerError cause:
// Invalid for a refused link (422, field messages joined), Unauthorized,
// Forbidden, TooMany once 429 retries are used up, Unavailable for 5xx or an
// unreachable controller. A create is retried on 429 and on connection
// errors before the request was sent, never on 5xx (see retryPolicy). A QR
// image that does not decode leaves QRImagePNG nil rather than failing a
// link that exists. Safe for concurrent use.
func (cl *Client) CreateLink(ctx context.Context, spec connector.LinkSpec) (connector.Link, error) {
	c := call{
		method: http.MethodPost,
		path:   []string{"group_links"},
		body: createLinkRequest{GroupLink: createLinkJSON{
			GroupID:     spec.GroupID,
			Name:        spec.Name,
			Email:       spec.Email,
			ValidFrom:   rfc3339(spec.ValidFrom),
			ValidUntil:  rfc3339(spec.ValidUntil),
			LinkEnabled: spec.Enabled,
			QRType:      spec.QRType,
		}},
		policy:  retryCreate,
		op:      "create link in group " + strconv.FormatInt(spec.GroupID, 10),
		subject: "the link",
	}
	if cl.opts.IdempotentCreates && spec.IdempotencyKey != "" {
		c.idempotencyKey, c.policy = spec.IdempotencyKey, retryIdempotent
	}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.Link{}, err
	}
	j := linkJSON{LinkEnabled: &spec.Enabled}
	if err := decode(c, resp, &j); err != nil {
		return connector.Link{}, err
	}
	return j.toLink(), nil
}

// UpdateLink changes the name, window and enabled flag of link id with
// PATCH /group_links/{id}, keeping its secret. When Options.SupportsUpdate is
// false (real Kisi has no such call) it returns connector.ErrUpdateUnsupported
// without a request. A 204 answer yields the link as specified.
//
// Errors: NotFound for a missing link, Invalid for a refused change, plus the
// kinds listed on CreateLink; PATCH is retried on 429, 5xx and network
// errors. Safe for concurrent use.
func (cl *Client) UpdateLink(ctx context.Context, id int64, spec connector.LinkSpec) (connector.Link, error) {
	if !cl.opts.SupportsUpdate {
		return connector.Link{}, connector.ErrUpdateUnsupported
	}
	ids := strconv.FormatInt(id, 10)
	c := call{
		method: http.MethodPatch,
		path:   []string{"group_links", ids},
		body: updateLinkRequest{GroupLink: updateLinkJSON{
			Name:        spec.Name,
			ValidFrom:   rfc3339(spec.ValidFrom),
			ValidUntil:  rfc3339(spec.ValidUntil),
			LinkEnabled: spec.Enabled,
		}},
		policy:  retryIdempotent,
		op:      "update link " + ids,
		subject: "link " + ids,
	}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return connector.Link{}, err
	}
	if resp.status == http.StatusNoContent || len(strings.TrimSpace(string(resp.body))) == 0 {
		return connector.Link{
			ID:         id,
			GroupID:    spec.GroupID,
			Name:       spec.Name,
			Email:      spec.Email,
			ValidFrom:  timePtr(spec.ValidFrom),
			ValidUntil: timePtr(spec.ValidUntil),
			Enabled:    spec.Enabled,
		}, nil
	}
	j := linkJSON{LinkEnabled: &spec.Enabled}
	if err := decode(c, resp, &j); err != nil {
		return connector.Link{}, err
	}
	return j.toLink(), nil
}

// DeleteLink deletes link id (DELETE /group_links/{id}). A missing link is a
// NotFound error (callers revoking a link treat it as done); other errors as
// on UpdateLink. DELETE is retried on 429, 5xx and network errors, so a
// delete whose first answer was lost can end in NotFound. Safe for
// concurrent use.
func (cl *Client) DeleteLink(ctx context.Context, id int64) error {
	ids := strconv.FormatInt(id, 10)
	_, err := cl.do(ctx, call{
		method:  http.MethodDelete,
		path:    []string{"group_links", ids},
		policy:  retryIdempotent,
		op:      "delete link " + ids,
		subject: "link " + ids,
	})
	return err
}

// VoidCreation settles a link creation made under idempotency key with
// POST /group_links/void (a lockctl extension): the link it made, if any, is
// deleted, and a create under the key arriving later makes nothing. It
// returns the deleted link's id, 0 when none had been made. Retried like
// any idempotent call.
func (cl *Client) VoidCreation(ctx context.Context, key string) (int64, error) {
	c := call{
		method:  http.MethodPost,
		path:    []string{"group_links", "void"},
		body:    map[string]string{"idempotency_key": key},
		policy:  retryIdempotent,
		op:      "void a link creation",
		subject: "the link creation",
	}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return 0, err
	}
	var out struct {
		LinkID *int64 `json:"link_id"`
	}
	if err := decode(c, resp, &out); err != nil {
		return 0, err
	}
	if out.LinkID == nil {
		return 0, nil
	}
	return *out.LinkID, nil
}

// ListLinks returns every link of the given groups, one paged series of
// GET /group_links?group_id=N per distinct group, or every link when no group
// is given. Secrets are not part of a list. Errors: Unauthorized, Forbidden,
// TooMany, Unavailable (also for paging that does not advance). Safe for
// concurrent use.
func (cl *Client) ListLinks(ctx context.Context, groupIDs ...int64) ([]connector.Link, error) {
	if len(groupIDs) == 0 {
		return cl.listLinks(ctx, call{op: "list links", subject: "the link list"})
	}
	var all []connector.Link
	seen := make(map[int64]bool, len(groupIDs))
	for _, g := range groupIDs {
		if seen[g] {
			continue
		}
		seen[g] = true
		gs := strconv.FormatInt(g, 10)
		links, err := cl.listLinks(ctx, call{
			query:   url.Values{"group_id": {gs}},
			op:      "list links of group " + gs,
			subject: "the links of group " + gs,
		})
		if err != nil {
			return nil, err
		}
		all = append(all, links...)
	}
	return all, nil
}

func (cl *Client) listLinks(ctx context.Context, c call) ([]connector.Link, error) {
	c.method = http.MethodGet
	c.path = []string{"group_links"}
	c.policy = retryIdempotent
	js, err := listAll[linkJSON](ctx, cl, c)
	if err != nil {
		return nil, err
	}
	links := make([]connector.Link, len(js))
	for i, j := range js {
		links[i] = j.toLink()
	}
	return links, nil
}

// decodePNG decodes Kisi's Base64 QR image, with or without a data: URI
// prefix; nil when s is empty or not Base64.
func decodePNG(s string) []byte {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if i := strings.Index(s, ";base64,"); strings.HasPrefix(s, "data:") && i >= 0 {
		s = s[i+len(";base64,"):]
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b
	}
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b
	}
	return nil
}

func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
