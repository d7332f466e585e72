// Package audit owns the audit log (操作留痕): every operation's entry, its
// canonical JSON leaf, and the RFC 6962 Merkle tree over the leaves, written
// by a group-committing appender so that each entry is durable — and in the
// tree — before the request that made it is answered.
//
// The log is append-only: this package has no update or delete path, and the
// database refuses one with triggers. Entries hold opaque ids and codes only,
// never patient-identifying values. The package does not decide access; the
// gate calls it after the policy has decided.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
)

// Entry is one audit entry, with the fields of SPEC Appendix A and two
// optional ones: the classification of the record concerned and, for an
// entry that stands for many refused requests, how many.
type Entry struct {
	Time            time.Time // UTC, kept to the millisecond
	Actor           string    // username, or "apikey:<name>", or "system"
	ActorDepartment string    // department code, or ""
	ActorRoles      []string  // role names, sorted
	IP              string
	Action          string // the operation, e.g. "record.read", "auth.login"
	TargetType      string // "record", "patient", "user", …
	TargetID        string // opaque id, or ""
	PatientID       string // opaque id of the patient concerned, or ""
	Purpose         string // purpose-of-use code, or ""
	Decision        string // "allow" or "deny"
	Rule            string // the policy rule that decided
	Outcome         string // "success", "denied", "invalid", "not_found", "conflict", "error", …
	BreakGlass      bool
	RequestID       string
	// Classification is the classification of the record concerned (core,
	// important, general), or "" when the entry concerns no record.
	Classification string
	// Count is, for an entry that summarises a flood of refused requests
	// from one address, how many it stands for; 0 otherwise.
	Count int
}

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Outcomes.
const (
	Success  = "success"
	Denied   = "denied"
	Failed   = "error"
	Invalid  = "invalid"
	Missing  = "not_found"
	Conflict = "conflict"
	Refused  = "unauthenticated"
	Locked   = "locked"
	Limited  = "rate_limited"
)

// OutcomeOf names the outcome of an operation that ended with err.
func OutcomeOf(err error) string {
	if err == nil {
		return Success
	}
	switch medguard.KindOf(err) {
	case medguard.Forbidden:
		return Denied
	case medguard.Invalid, medguard.Malformed, medguard.TooLarge, medguard.Unsupported:
		return Invalid
	case medguard.NotFound, medguard.Gone:
		return Missing
	case medguard.Conflict:
		return Conflict
	case medguard.Unauthenticated:
		return Refused
	case medguard.Locked:
		return Locked
	case medguard.RateLimited:
		return Limited
	}
	return Failed
}

// TimeFormat is the entry time format: RFC 3339 in UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Leaf returns the entry's canonical JSON, the bytes hashed into the tree:
// the Appendix A fields in lexicographic key order (RFC 8785 order for these
// ASCII keys), no insignificant white space, every Appendix A field present
// (the optional "classification" and "count" only when set), strings
// escaped as RFC 8785 requires, the time as TimeFormat.
func (e *Entry) Leaf() []byte {
	return e.appendLeaf(make([]byte, 0, e.leafSize()))
}

// leafSize is at least the length of the entry's leaf when its strings
// need no escaping (the usual case), so that it is made in one allocation:
// 239 bytes of keys, punctuation and time, 37 more for a classification's
// key and a count.
func (e *Entry) leafSize() int {
	n := 276 + len(e.Action) + len(e.Actor) + len(e.ActorDepartment) + len(e.Classification) + len(e.Decision) +
		len(e.IP) + len(e.Outcome) + len(e.PatientID) + len(e.Purpose) + len(e.RequestID) + len(e.Rule) +
		len(e.TargetID) + len(e.TargetType)
	for _, r := range e.ActorRoles {
		n += len(r) + 3
	}
	return n
}

// appendLeaf appends the entry's leaf (see Leaf) to b.
func (e *Entry) appendLeaf(b []byte) []byte {
	roles := e.ActorRoles
	if !slices.IsSorted(roles) {
		roles = slices.Clone(roles)
		slices.Sort(roles)
	}
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"actor":`...)
	b = appendString(b, e.Actor)
	b = append(b, `,"actor_department":`...)
	b = appendString(b, e.ActorDepartment)
	b = append(b, `,"actor_roles":[`...)
	for i, r := range roles {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, r)
	}
	b = append(b, `],"break_glass":`...)
	b = strconv.AppendBool(b, e.BreakGlass)
	if e.Classification != "" {
		b = append(b, `,"classification":`...)
		b = appendString(b, e.Classification)
	}
	if e.Count > 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(e.Count), 10)
	}
	b = append(b, `,"decision":`...)
	b = appendString(b, e.Decision)
	b = append(b, `,"ip":`...)
	b = appendString(b, e.IP)
	b = append(b, `,"outcome":`...)
	b = appendString(b, e.Outcome)
	b = append(b, `,"patient_id":`...)
	b = appendString(b, e.PatientID)
	b = append(b, `,"purpose":`...)
	b = appendString(b, e.Purpose)
	b = append(b, `,"request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"rule":`...)
	b = appendString(b, e.Rule)
	b = append(b, `,"target_id":`...)
	b = appendString(b, e.TargetID)
	b = append(b, `,"target_type":`...)
	b = appendString(b, e.TargetType)
	b = append(b, `,"time":"`...)
	b = appendTime(b, e.Time)
	return append(b, `"}`...)
}

// appendTime appends t in TimeFormat: what t.UTC().Format(TimeFormat)
// gives, without reading the layout each time.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6 // truncated, as Format does
	digits := func(b []byte, v, n int) []byte {
		var d [4]byte
		for i := n - 1; i >= 0; i-- {
			d[i] = byte('0' + v%10)
			v /= 10
		}
		return append(b, d[:n]...)
	}
	b = digits(b, year, 4)
	b = append(b, '-')
	b = digits(b, int(month), 2)
	b = append(b, '-')
	b = digits(b, day, 2)
	b = append(b, 'T')
	b = digits(b, hour, 2)
	b = append(b, ':')
	b = digits(b, minute, 2)
	b = append(b, ':')
	b = digits(b, sec, 2)
	b = append(b, '.')
	b = digits(b, ms, 3)
	return append(b, 'Z')
}

// appendString appends s as an RFC 8785 JSON string: '"' and '\' escaped,
// control characters as \b \t \n \f \r or \u00XX, everything else literal.
// Invalid UTF-8 is replaced by U+FFFD, as the entry must stay valid JSON.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	// Fast path: ids, codes and names need no escaping. (The bytes that
	// need it are ASCII, which never occurs inside a multi-byte sequence.)
	plain, ascii := true, true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			plain = false
			break
		} else if c >= 0x80 {
			ascii = false
		}
	}
	if plain && (ascii || utf8.ValidString(s)) {
		b = append(b, s...)
		return append(b, '"')
	}
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, `\"`...)
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r < 0x20:
			b = append(b, `\u00`...)
			b = append(b, hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r) // utf8.RuneError for invalid bytes
		}
	}
	return append(b, '"')
}

// leafText is s as its leaf holds it: each byte of invalid UTF-8 replaced
// by U+FFFD, as writeString does.
func leafText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // utf8.RuneError for each invalid byte
	}
	return b.String()
}

// Fields is the decoded form of a leaf, as served by the audit endpoints.
type Fields struct {
	Action          string   `json:"action"`
	Actor           string   `json:"actor"`
	ActorDepartment string   `json:"actor_department"`
	ActorRoles      []string `json:"actor_roles"`
	BreakGlass      bool     `json:"break_glass"`
	Classification  string   `json:"classification,omitempty"`
	Count           int      `json:"count,omitempty"`
	Decision        string   `json:"decision"`
	IP              string   `json:"ip"`
	Outcome         string   `json:"outcome"`
	PatientID       string   `json:"patient_id"`
	Purpose         string   `json:"purpose"`
	RequestID       string   `json:"request_id"`
	Rule            string   `json:"rule"`
	TargetID        string   `json:"target_id"`
	TargetType      string   `json:"target_type"`
	Time            string   `json:"time"`
}

// ErrBadLeaf is returned for leaf bytes that are not a canonical entry.
var ErrBadLeaf = errors.New("audit: leaf is not a canonical entry")

// ParseLeaf decodes leaf bytes into an Entry, and checks that they are the
// canonical encoding of that entry (so that two different byte strings can
// never stand for one entry).
func ParseLeaf(leaf []byte) (*Entry, error) {
	if !utf8.Valid(leaf) {
		return nil, ErrBadLeaf
	}
	e, ok := readLeaf(leaf)
	if !ok {
		var err error
		if e, err = decodeLeaf(leaf); err != nil {
			return nil, ErrBadLeaf
		}
	}
	if !bytes.Equal(e.Leaf(), leaf) {
		return nil, ErrBadLeaf
	}
	return e, nil
}

// decodeLeaf decodes a leaf as JSON, whatever its form: for leaves that
// readLeaf does not read (none that appendLeaf writes), which ParseLeaf
// then refuses unless they encode back to themselves.
func decodeLeaf(leaf []byte) (*Entry, error) {
	var f Fields
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	t, err := time.Parse(TimeFormat, f.Time)
	if err != nil {
		return nil, err
	}
	return &Entry{Time: t, Actor: f.Actor, ActorDepartment: f.ActorDepartment, ActorRoles: f.ActorRoles, IP: f.IP,
		Action: f.Action, TargetType: f.TargetType, TargetID: f.TargetID, PatientID: f.PatientID, Purpose: f.Purpose,
		Decision: f.Decision, Rule: f.Rule, Outcome: f.Outcome, BreakGlass: f.BreakGlass, RequestID: f.RequestID,
		Classification: f.Classification, Count: f.Count}, nil
}

// Fields returns the entry in its decoded, served form.
func (e *Entry) Fields() Fields {
	roles := slices.Clone(e.ActorRoles)
	if roles == nil {
		roles = []string{}
	}
	slices.Sort(roles)
	return Fields{Action: e.Action, Actor: e.Actor, ActorDepartment: e.ActorDepartment, ActorRoles: roles,
		BreakGlass: e.BreakGlass, Decision: e.Decision, IP: e.IP, Outcome: e.Outcome, PatientID: e.PatientID,
		Purpose: e.Purpose, RequestID: e.RequestID, Rule: e.Rule, TargetID: e.TargetID, TargetType: e.TargetType,
		Time: e.Time.UTC().Format(TimeFormat), Classification: e.Classification, Count: e.Count}
}
