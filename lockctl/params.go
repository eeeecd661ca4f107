package lockctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

const (
	maxLimit  = 250
	maxOffset = 20000
)

// errTooLarge answers a body over the 1 MiB limit, in Kisi's shape.
var errTooLarge = &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
	Message: "request body is larger than 1 MiB"}

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

// parsePage reads limit and offset. A missing limit is def; one above 250 is
// cut to 250. Negative values, a zero limit, an offset above 20000 and
// non-numbers are 400s.
func parsePage(ec echo.Context, def int) (page, error) {
	p := page{Limit: def}
	if s := ec.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return p, badRequest("limit must be a positive integer")
		}
		p.Limit = min(n, maxLimit)
	}
	if s := ec.QueryParam("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxOffset {
			return p, badRequest("offset must be an integer from 0 to %d", maxOffset)
		}
		p.Offset = n
	}
	return p, nil
}

// writeList sends items as a bare JSON array with X-Collection-Range
// "start-end/total", where end = offset+limit-1 as in Kisi's own example
// (offset 10, limit 10 of 15 → 10-19/15); an empty page is "*/total".
func writeList[T any](ec echo.Context, p page, total int64, items []T) error {
	r := fmt.Sprintf("*/%d", total)
	if len(items) > 0 {
		r = fmt.Sprintf("%d-%d/%d", p.Offset, p.Offset+p.Limit-1, total)
	}
	ec.Response().Header().Set("X-Collection-Range", r)
	if items == nil {
		items = []T{}
	}
	return ec.JSON(http.StatusOK, items)
}

// pathID reads the :id path parameter; anything but a positive integer is
// a 404, as no such resource exists.
func pathID(ec echo.Context) (int64, error) {
	id, err := strconv.ParseInt(ec.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Not found"}
	}
	return id, nil
}

// queryIDs reads a comma-separated id list such as ids=1,2,3.
func queryIDs(ec echo.Context, name string) ([]int64, error) {
	s := ec.QueryParam(name)
	if s == "" {
		return nil, nil
	}
	if strings.Count(s, ",") >= maxIDs {
		return nil, badRequest("%s must list at most %d ids", name, maxIDs)
	}
	var ids []int64
	for part := range strings.SplitSeq(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		if err != nil {
			return nil, badRequest("%s must be a comma-separated list of integers", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// queryText reads an optional text parameter of at most maxQuery
// characters, without NUL bytes: anything else is a 400.
func queryText(ec echo.Context, name string) (string, error) {
	s := ec.QueryParam(name)
	if p := textProblem(s, maxQuery); p != "" {
		return "", badRequest("%s %s", name, p)
	}
	return s, nil
}

// queryInt reads an optional integer parameter.
func queryInt(ec echo.Context, name string) (*int64, error) {
	s := ec.QueryParam(name)
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, badRequest("%s must be an integer", name)
	}
	return &n, nil
}

// queryBool reads an optional boolean parameter.
func queryBool(ec echo.Context, name string) (*bool, error) {
	s := ec.QueryParam(name)
	if s == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return nil, badRequest("%s must be true or false", name)
	}
	return &b, nil
}

// queryTime reads an optional RFC 3339 time parameter.
func queryTime(ec echo.Context, name string) (*time.Time, error) {
	s := ec.QueryParam(name)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, badRequest("%s must be an RFC 3339 time", name)
	}
	return &t, nil
}

// querySort reads sort and checks it against the allowed values.
func querySort(ec echo.Context, allowed ...string) (string, error) {
	s := ec.QueryParam("sort")
	if s == "" {
		return "", nil
	}
	for _, a := range allowed {
		if s == a || s == "-"+a {
			return s, nil
		}
	}
	return "", badRequest("sort must be one of %s (prefix - to reverse)", strings.Join(allowed, ", "))
}

// bindBody decodes the JSON request body into v, whatever its
// Content-Type. An empty body leaves v as it is; malformed JSON is a 400.
func bindBody(ec echo.Context, v any) error {
	err := json.NewDecoder(ec.Request().Body).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var tooLarge *http.MaxBytesError
	var he *echo.HTTPError
	if errors.As(err, &tooLarge) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge) {
		return errTooLarge
	}
	return badRequest("request body must be valid JSON")
}
