package kisi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	latchkey "github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/connector"
)

// wrapOp adds the call's name, with its identifiers, to err.
func wrapOp(c call, err error) error {
	return fmt.Errorf("kisi: %s: %w", c.op, err)
}

// unreachable is the error for a request that got no answer.
func unreachable(err error) error {
	return latchkey.Wrap(latchkey.Unavailable, "controller unreachable", err)
}

// unreadable is the error for a 2xx answer that does not parse.
func unreadable(c call, err error) error {
	return latchkey.Wrap(latchkey.Unavailable,
		"controller sent an unreadable answer for "+c.subject, err)
}

// answerError turns a non-2xx answer into a *latchkey.Error whose cause is
// the parsed *connector.ControllerError. Secrets the controller might echo
// are redacted from the message.
func (cl *Client) answerError(c call, resp *response) error {
	return cl.refusalError(c, parseControllerError(resp.status, resp.body))
}

// refusalError is answerError for an answer already parsed into ce.
func (cl *Client) refusalError(c call, ce *connector.ControllerError) error {
	ce.Message = redact(ce.Message, cl.opts.APIKey, c.secret)
	k := kindFor(ce.Status)
	if ce.Status == http.StatusGone {
		// A create under an idempotency key whose link was deleted or
		// voided: it made nothing, and never will.
		return latchkey.Wrap(latchkey.Conflict, publicMessage(latchkey.Conflict, c, ce.Message), errors.Join(ce, connector.ErrCreationGone))
	}
	return latchkey.Wrap(k, publicMessage(k, c, ce.Message), ce)
}

// kindFor maps an HTTP status to an error kind.
func kindFor(status int) latchkey.Kind {
	switch {
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return latchkey.Invalid
	case status == http.StatusUnauthorized:
		return latchkey.Unauthorized
	case status == http.StatusForbidden:
		return latchkey.Forbidden
	case status == http.StatusNotFound:
		return latchkey.NotFound
	case status == http.StatusConflict:
		return latchkey.Conflict
	case status == http.StatusTooManyRequests:
		return latchkey.TooMany
	case status >= 500:
		return latchkey.Unavailable
	case status >= 400:
		return latchkey.Invalid
	}
	return latchkey.Internal
}

// publicMessage is the client-safe message for an answer of kind k.
func publicMessage(k latchkey.Kind, c call, detail string) string {
	withDetail := func(s string) string {
		if detail == "" {
			return s
		}
		return s + ": " + detail
	}
	switch k {
	case latchkey.Invalid:
		return withDetail("controller refused " + c.subject)
	case latchkey.NotFound:
		return c.missing() + " not found on the controller"
	case latchkey.Conflict:
		return withDetail("controller reported a conflict for " + c.subject)
	case latchkey.Unauthorized:
		if c.holder() {
			return "controller rejected the link secret"
		}
		return "controller rejected the API key"
	case latchkey.Forbidden:
		return withDetail("controller denied " + c.subject)
	case latchkey.TooMany:
		return "controller rate limit reached for " + c.subject
	case latchkey.Unavailable:
		return withDetail("controller unavailable for " + c.subject)
	}
	return withDetail("unexpected controller answer for " + c.subject)
}

// refusals translates Kisi's unlock error codes (lockctl sends the same).
var refusals = map[string]connector.Refusal{
	"f358de": connector.RefusedNotStarted,
	"f35ade": connector.RefusedEnded,
	"f29aef": connector.RefusedRevoked,
	"f297ef": connector.RefusedRevoked,
	"f298ef": connector.RefusedEnded,
	"fac001": connector.RefusedDoorOffline,
	"fac002": connector.RefusedDoorOffline,
	"ff420a": connector.RefusedNoAnswer,
	"fad001": connector.RefusedDoorLockedDown,
	"fad002": connector.RefusedBuildingLockedDown,
	"34ffaa": connector.RefusedTooMany,
	// A person's access suspended, or a credential (a login) the role
	// does not allow (the group's app access is off).
	"fcd8ff": connector.RefusedRevoked,
	"f298df": connector.RefusedRevoked,
}

// parseControllerError reads Kisi's error bodies: {"error","code"} and
// {"errors":{field:[messages]}}. Anything else yields the status text.
func parseControllerError(status int, body []byte) *connector.ControllerError {
	ce := &connector.ControllerError{Status: status}
	var b struct {
		Error   json.RawMessage `json:"error"`
		Code    string          `json:"code"`
		Errors  json.RawMessage `json:"errors"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &b) == nil {
		ce.Code = b.Code
		var parts []string
		if s, code := errorField(b.Error); s != "" {
			parts = append(parts, s)
			if ce.Code == "" {
				ce.Code = code
			}
		}
		if s := fieldErrors(b.Errors); s != "" {
			parts = append(parts, s)
		}
		if len(parts) == 0 && b.Message != "" {
			parts = append(parts, b.Message)
		}
		ce.Message = strings.Join(parts, "; ")
	}
	ce.Refusal = refusals[ce.Code]
	if ce.Message == "" {
		ce.Message = strings.ToLower(http.StatusText(status))
	}
	if ce.Message == "" {
		ce.Message = fmt.Sprintf("status %d", status)
	}
	return ce
}

// errorField reads "error" as Kisi's string or as an {code, message} object.
func errorField(raw json.RawMessage) (msg, code string) {
	if len(raw) == 0 {
		return "", ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, ""
	}
	var o struct{ Code, Message string }
	if json.Unmarshal(raw, &o) == nil {
		return o.Message, o.Code
	}
	return "", ""
}

// fieldErrors joins {"field":["msg",...]} into "field msg; field msg",
// fields sorted; Rails' "base" errors are not prefixed.
func fieldErrors(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var byField map[string]json.RawMessage
	if json.Unmarshal(raw, &byField) != nil {
		var list []string
		if json.Unmarshal(raw, &list) == nil {
			return strings.Join(list, "; ")
		}
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	fields := make([]string, 0, len(byField))
	for f := range byField {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	var parts []string
	for _, f := range fields {
		var msgs []string
		if json.Unmarshal(byField[f], &msgs) != nil {
			var one string
			if json.Unmarshal(byField[f], &one) != nil {
				continue
			}
			msgs = []string{one}
		}
		for _, m := range msgs {
			if f == "base" {
				parts = append(parts, m)
				continue
			}
			parts = append(parts, f+" "+m)
		}
	}
	return strings.Join(parts, "; ")
}

// redact removes secrets from s. Very short values are left alone: replacing
// them would garble the message and they protect nothing.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 8 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
