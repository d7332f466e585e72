package medguard

import (
	"errors"
	"fmt"
)

// Kind says what sort of failure an error is. The web layer maps kinds to
// HTTP status codes and problem types in one place.
type Kind uint8

// The kinds of error medguard distinguishes.
const (
	Internal        Kind = iota // something broke; the caller did nothing wrong
	Invalid                     // the input failed validation (422, names the field)
	Malformed                   // the request could not be parsed (400)
	TooLarge                    // the request body exceeded its limit (413)
	Unsupported                 // unsupported media type (415)
	NotFound                    // no such thing, or the caller may not know it exists
	Conflict                    // the change conflicts with the current state (409)
	Unauthenticated             // not signed in, or the credentials are wrong (401)
	Forbidden                   // denied by the access policy (403, names the rule)
	Locked                      // the account is frozen or temporarily locked (423)
	RateLimited                 // too many requests (429)
	Gone                        // it existed and was destroyed on purpose (410, names the proof in Ref)
	NotAcceptable               // no representation the client accepts can be made (406)
	Unavailable                 // the database cannot be reached for a moment (503, with Retry-After)
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	Malformed:       "malformed",
	TooLarge:        "too_large",
	Unsupported:     "unsupported_media_type",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	Locked:          "locked",
	RateLimited:     "rate_limited",
	Gone:            "gone",
	NotAcceptable:   "not_acceptable",
	Unavailable:     "unavailable",
}

// String returns the kind's stable name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is medguard's error: a kind, the operation that failed, and a message
// that is safe to show to the caller. Messages must never contain patient
// data or secrets; Err (the cause) is for logs and is never shown.
type Error struct {
	Kind    Kind
	Op      string // the operation, e.g. "records.Create"
	Field   string // for Invalid: the input field at fault, e.g. "id_number"
	Rule    string // for Forbidden: the policy rule that denied
	Code    string // a finer stable code within the kind, e.g. "totp_required"
	Ref     string // for Gone: what proves it (a destruction certificate's id)
	Message string // safe to show; no patient data, no secrets
	Err     error  // the cause, if any; never shown to callers
}

// Error describes the error without its cause's secrets: only Op and Message
// and the cause's own text, which callers must keep free of patient data.
func (e *Error) Error() string {
	s := e.Kind.String()
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns an Invalid error naming the field at fault.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Internal error for op with err as its hidden cause, unless
// err already is an *Error, in which case it is returned unchanged (errors
// may be shared sentinels and are never modified).
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: Internal, Op: op, Message: "internal error", Err: err}
}

// KindOf returns the kind of err: the kind of the first *Error in its chain,
// or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// IsKind reports whether err is of kind k.
func IsKind(err error, k Kind) bool { return err != nil && KindOf(err) == k }
