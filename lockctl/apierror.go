package lockctl

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey"
)

// apiError is an error answer in Kisi's shape {"error": Message, "code": Code}.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return e.Message + " (" + e.Code + ")" }

// fieldErrors is a 422 answer in Kisi's shape {"errors": {field: [msg…]}}.
type fieldErrors map[string][]string

func (f fieldErrors) Error() string { return "validation failed" }

func (f fieldErrors) add(field, msg string) { f[field] = append(f[field], msg) }

// err returns f as an error, or nil when it holds nothing.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return f
}

// kindStatus maps a latchkey Kind to an HTTP status and Kisi error code.
var kindStatus = map[latchkey.Kind]struct {
	status int
	code   string
}{
	latchkey.Invalid:      {http.StatusBadRequest, CodeBadRequest},
	latchkey.NotFound:     {http.StatusNotFound, CodeNotFound},
	latchkey.Conflict:     {http.StatusConflict, "f40900"},
	latchkey.Unauthorized: {http.StatusUnauthorized, CodeNotAuthorized},
	latchkey.Forbidden:    {http.StatusForbidden, CodeAccessDenied},
	latchkey.Unavailable:  {http.StatusServiceUnavailable, CodeDriverFailed},
	latchkey.TooMany:      {http.StatusTooManyRequests, CodeRateLimited},
}

// toAPIError turns any error into the Kisi error answer to send. fields is
// non-nil for validation errors.
func toAPIError(err error) (*apiError, fieldErrors) {
	var ae *apiError
	var fe fieldErrors
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae, nil
	case errors.As(err, &fe):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: codeValidationFailed}, fe
	case errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge:
		return errTooLarge, nil
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && he.Code < 500 {
			msg = s
		}
		code := CodeBadRequest
		switch he.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			code = CodeNotFound
		case http.StatusUnauthorized:
			code = CodeNotAuthorized
		case http.StatusTooManyRequests:
			code = CodeRateLimited
		case http.StatusServiceUnavailable:
			code = CodeDriverFailed
		}
		if he.Code >= 500 && he.Code != http.StatusServiceUnavailable {
			code = CodeUnexpected
		}
		return &apiError{Status: he.Code, Code: code, Message: msg}, nil
	}
	k := latchkey.KindOf(err)
	if m, ok := kindStatus[k]; ok {
		return &apiError{Status: m.status, Code: m.code, Message: latchkey.Message(err)}, nil
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeUnexpected, Message: "internal error"}, nil
}

// writeError renders err Kisi-style and logs server errors once.
func (c *Controller) writeError(ec echo.Context, err error) {
	if ec.Response().Committed {
		return
	}
	ae, fields := toAPIError(err)
	if ae.Status >= 500 {
		c.log.Error("request failed", "err", err, "method", ec.Request().Method,
			"path", ec.Path(), "request_id", ec.Response().Header().Get(echo.HeaderXRequestID))
	}
	if ae.RetryAfter > 0 {
		ec.Response().Header().Set("Retry-After", strconv.Itoa(int(ae.RetryAfter/time.Second)))
	}
	var werr error
	switch {
	case fields != nil:
		werr = ec.JSON(ae.Status, map[string]fieldErrors{"errors": fields})
	case ec.Request().Method == http.MethodHead:
		werr = ec.NoContent(ae.Status)
	default:
		werr = ec.JSON(ae.Status, map[string]string{"error": ae.Message, "code": ae.Code})
	}
	if werr != nil {
		c.log.Warn("write error response", "err", werr)
	}
}

// kisiErrors is the group middleware that renders every error a lockctl
// handler returns in Kisi's format, so lockctl never depends on the
// HTTPErrorHandler of the echo instance it is mounted on.
func (c *Controller) kisiErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		if err := next(ec); err != nil {
			c.writeError(ec, err)
		}
		return nil
	}
}
