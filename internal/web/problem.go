package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"medguard"
	"medguard/internal/storage"
)

// Problem is an RFC 9457 problem detail. Type is stable: clients may switch
// on it. Detail never contains patient data or secrets.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Field     string `json:"field,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Code      string `json:"code,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Certificate, for a 410, names the destruction certificate (销毁证明)
	// of what was asked for.
	Certificate string `json:"certificate,omitempty"`
	// Hold, for a 409 with code legal_hold, names the legal hold that stops
	// a destruction: its id, or "incident <id>".
	Hold string `json:"hold,omitempty"`
}

// ProblemBase prefixes every problem type.
const ProblemBase = "urn:medguard:problem:"

// problemKinds maps error kinds to status codes, stable type names and titles.
var problemKinds = map[medguard.Kind]struct {
	status int
	name   string
	title  string
}{
	medguard.Invalid:         {http.StatusUnprocessableEntity, "invalid-input", "The input is not valid"},
	medguard.Malformed:       {http.StatusBadRequest, "malformed-request", "The request could not be read"},
	medguard.TooLarge:        {http.StatusRequestEntityTooLarge, "too-large", "The request is too large"},
	medguard.Unsupported:     {http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	medguard.NotFound:        {http.StatusNotFound, "not-found", "Not found"},
	medguard.Conflict:        {http.StatusConflict, "conflict", "Conflict with the current state"},
	medguard.Unauthenticated: {http.StatusUnauthorized, "unauthenticated", "Not signed in"},
	medguard.Forbidden:       {http.StatusForbidden, "forbidden", "Denied by the access policy"},
	medguard.Locked:          {http.StatusLocked, "locked", "The account is locked"},
	medguard.RateLimited:     {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	medguard.Internal:        {http.StatusInternalServerError, "internal", "Internal error"},
	medguard.Gone:            {http.StatusGone, "gone", "Destroyed at the end of its retention period"},
	medguard.NotAcceptable:   {http.StatusNotAcceptable, "not-acceptable", "No acceptable representation"},
	medguard.Unavailable:     {http.StatusServiceUnavailable, "unavailable", "Briefly unavailable"},
}

// unavailableDetail is the detail of a 503: what the client may do.
const unavailableDetail = "a service the server depends on (its database) could not be reached; try again in a moment (a write whose answer was lost may have been made: look before writing it again)"

// ProblemFor builds the problem for err.
func ProblemFor(err error, requestID, instance string) Problem {
	var e *medguard.Error
	k := medguard.KindOf(err)
	if k == medguard.Internal && storage.Unreachable(err) {
		// Not a fault of the server's: the database was out of reach.
		k = medguard.Unavailable
	}
	pk, ok := problemKinds[k]
	if !ok {
		pk = problemKinds[medguard.Internal]
	}
	p := Problem{Type: ProblemBase + pk.name, Title: pk.title, Status: pk.status, Instance: instance, RequestID: requestID}
	if errors.As(err, &e) && k != medguard.Internal && e.Kind == k {
		p.Detail, p.Field, p.Rule, p.Code = e.Message, e.Field, e.Rule, e.Code
		if k == medguard.Gone {
			p.Certificate = e.Ref
		}
		if k == medguard.Conflict && e.Code == "legal_hold" {
			p.Hold = e.Ref
		}
		if e.Code != "" {
			p.Type = ProblemBase + pk.name + ":" + e.Code
		}
	}
	switch k {
	case medguard.Internal:
		p.Detail = "something went wrong on the server; the request id identifies it in the logs"
	case medguard.Unavailable:
		if p.Detail == "" {
			p.Detail = unavailableDetail
		}
	}
	return p
}

// writeProblem answers with the problem for err.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) int {
	p := ProblemFor(err, w.Header().Get("X-Request-Id"), r.URL.Path)
	switch {
	case p.Status == http.StatusTooManyRequests || p.Code == "locked_out":
		w.Header().Set("Retry-After", strconv.Itoa(60))
	case p.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(p)
	return p.Status
}
