// Package latchkey holds the error vocabulary shared by every package of the
// service. Nothing else lives in the root package.
package latchkey

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that boundaries (HTTP handlers, job handlers)
// can decide how to answer without knowing where the error came from.
type Kind int

// The kinds of error. The zero value is Internal.
const (
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthorized
	Forbidden
	Unavailable
	TooMany
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not_found"
	case Conflict:
		return "conflict"
	case Unauthorized:
		return "unauthorized"
	case Forbidden:
		return "forbidden"
	case Unavailable:
		return "unavailable"
	case TooMany:
		return "too_many_requests"
	default:
		return "internal"
	}
}

// Error is an error with a Kind and a message that is safe to show to
// clients. Err, when set, is the underlying cause and is never shown.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Msg != "":
		return e.Msg + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Msg
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of the same Kind and message, so
// package sentinels compare with errors.Is even when wrapped with a cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && t.Msg == e.Msg && t.Err == nil
}

// Errorf returns an *Error of kind k whose public message is the formatted
// text.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with public message msg and cause err.
func Wrap(k Kind, msg string, err error) *Error {
	return &Error{Kind: k, Msg: msg, Err: err}
}

// KindOf returns the Kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Message returns the client-safe message of the first *Error in err's chain,
// or "internal error" when there is none or it is Internal.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal && e.Msg != "" {
		return e.Msg
	}
	return "internal error"
}
