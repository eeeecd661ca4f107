package kisi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	latchkey "github.com/latchkey/latchkey"
)

// pageSize is Kisi's maximum limit for list calls.
const pageSize = 250

// maxPages stops a list whose controller keeps claiming more items; Kisi
// itself refuses offsets above 20000 (80 pages).
const maxPages = 1000

// collectionRange is a parsed X-Collection-Range header: "start-end/total",
// or "*/total" for a page with no items.
type collectionRange struct {
	start, end, total int
	empty             bool
}

func parseRange(v string) (collectionRange, error) {
	span, totalStr, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		return collectionRange{}, fmt.Errorf("X-Collection-Range %q: missing total", v)
	}
	total, err := strconv.Atoi(totalStr)
	if err != nil || total < 0 {
		return collectionRange{}, fmt.Errorf("X-Collection-Range %q: bad total", v)
	}
	if span == "*" {
		return collectionRange{total: total, empty: true}, nil
	}
	a, b, ok := strings.Cut(span, "-")
	start, err1 := strconv.Atoi(a)
	end, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || start < 0 || end < start {
		return collectionRange{}, fmt.Errorf("X-Collection-Range %q: bad span", v)
	}
	return collectionRange{start: start, end: end, total: total}, nil
}

// nextOffset decides, after reading n items at offset, where the next page
// starts or that the list is done. Without a range header a short page is the
// last one.
func nextOffset(header string, offset, n int) (next int, done bool, err error) {
	if header == "" {
		if n < pageSize {
			return 0, true, nil
		}
		return offset + n, false, nil
	}
	r, err := parseRange(header)
	if err != nil {
		return 0, false, err
	}
	switch {
	case r.empty:
		return 0, true, nil
	case r.start != offset:
		return 0, false, fmt.Errorf("range %q does not start at requested offset %d", header, offset)
	case r.end+1 >= r.total:
		return 0, true, nil
	case n == 0:
		return 0, false, fmt.Errorf("range %q claims items but the page is empty", header)
	}
	return r.end + 1, false, nil
}

// listAll reads every page of the list call c, asking for limit=250 and
// following X-Collection-Range. A controller whose paging does not advance
// (it ignores offset, or repeats a page) ends the list with an Unavailable
// error rather than a loop.
func listAll[T any](ctx context.Context, cl *Client, c call) ([]T, error) {
	var all []T
	var prev []byte
	offset := 0
	for range maxPages {
		q := url.Values{}
		for k, v := range c.query {
			q[k] = v
		}
		q.Set("limit", strconv.Itoa(pageSize))
		q.Set("offset", strconv.Itoa(offset))
		pc := c
		pc.query = q
		resp, err := cl.do(ctx, pc)
		if err != nil {
			return nil, err
		}
		var page []T
		if err := decode(pc, resp, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		next, done, err := nextOffset(resp.header.Get("X-Collection-Range"), offset, len(page))
		if err == nil && !done && len(page) > 0 && bytes.Equal(resp.body, prev) {
			err = fmt.Errorf("page at offset %d repeats the previous page", offset)
		}
		if err != nil {
			return nil, wrapOp(pc, badPaging(c, err))
		}
		if done {
			return all, nil
		}
		prev, offset = resp.body, next
	}
	return nil, wrapOp(c, badPaging(c, errors.New("paging did not end")))
}

func badPaging(c call, err error) error {
	return latchkey.Wrap(latchkey.Unavailable, "controller sent inconsistent paging for "+c.subject, err)
}
