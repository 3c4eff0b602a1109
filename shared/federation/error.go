// Package federation holds the domain of the Federation Gateway: the error type every
// package returns, and the records the directory, routing and status are made of. It
// imports no AWS SDK: adapters translate to and from it at their edge.
package federation

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in package apigw, and nowhere else.
const (
	EINVALID      = "invalid"                // the caller's input is wrong
	ENOTFOUND     = "not_found"              // the thing asked for does not exist
	ECONFLICT     = "conflict"               // the request conflicts with the current state
	EUNAUTHORIZED = "unauthorized"           // no valid credential was presented
	EFORBIDDEN    = "forbidden"              // the credential is valid but not allowed
	ETOOLARGE     = "too_large"              // the request body is over a limit
	EMEDIATYPE    = "unsupported_media_type" // the request body is not of a media type the endpoint takes
	ERATELIMITED  = "rate_limited"           // a rate limit was reached
	ELOCKED       = "locked"                 // the resource is switched off for now (a paused bridge lane)
	EUNACCEPTABLE = "unacceptable"           // well-formed, but what it refers to cannot be used (a deposit)
	EUNAVAILABLE  = "unavailable"            // a dependency (registry, agent) failed or is down
	EINTERNAL     = "internal"               // a fault of ours; its detail is logged, never shown
)

// Error is the domain error. Code says what kind of failure it is; Message is safe to show
// to the caller; Err, when set, is the underlying cause, which is logged but never shown.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return e.Message + ": " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Message
	}
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error with the code and a formatted, caller-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with the code and message whose cause is err.
func Wrap(code string, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first Error in err's chain, EINTERNAL for any other
// error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of the first Error in err's chain. Internal
// errors get a generic message: their text may name tables, hosts or keys.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL && e.Message != "" {
		return e.Message
	}
	return "An internal error occurred."
}
