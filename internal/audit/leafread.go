package audit

import (
	"strconv"
	"strings"
	"time"
)

// readLeaf reads a leaf as appendLeaf writes it — its keys in their one
// order, its strings escaped only as appendString escapes them — without a
// JSON decoder: every server reads every other server's entries (detection
// counts a user's reads together), and decoding them was the largest part
// of that. The leaf is copied into one string whose parts become the
// entry's fields. ok is false for anything else; ParseLeaf then decodes the
// leaf as JSON, and whichever way it was read, accepts it only if the entry
// encodes back to the same bytes.
func readLeaf(leaf []byte) (e *Entry, ok bool) {
	r := leafReader{s: string(leaf), ok: true}
	e = &Entry{}
	strs := func(fields []leafField) {
		for _, f := range fields {
			r.key(f.key)
			*f.to = r.str()
		}
	}
	strs([]leafField{{`{"action":`, &e.Action}, {`,"actor":`, &e.Actor}, {`,"actor_department":`, &e.ActorDepartment}})
	r.key(`,"actor_roles":[`)
	e.ActorRoles = []string{} // as a JSON decoder leaves "[]"
	for r.ok && !r.next(']') {
		if len(e.ActorRoles) > 0 {
			r.key(",")
		}
		e.ActorRoles = append(e.ActorRoles, r.str())
	}
	r.key(`,"break_glass":`)
	if r.next('t') {
		r.key("rue")
		e.BreakGlass = true
	} else {
		r.key("false")
	}
	if r.optional(`,"classification":`) {
		e.Classification = r.str()
	}
	if r.optional(`,"count":`) {
		e.Count = r.count()
	}
	var t string
	strs([]leafField{{`,"decision":`, &e.Decision}, {`,"ip":`, &e.IP}, {`,"outcome":`, &e.Outcome},
		{`,"patient_id":`, &e.PatientID}, {`,"purpose":`, &e.Purpose}, {`,"request_id":`, &e.RequestID},
		{`,"rule":`, &e.Rule}, {`,"target_id":`, &e.TargetID}, {`,"target_type":`, &e.TargetType}, {`,"time":`, &t}})
	r.key("}")
	if !r.ok || r.s != "" {
		return nil, false
	}
	ms, ok := parseMillis([]byte(t))
	if !ok {
		return nil, false
	}
	e.Time = time.UnixMilli(ms).UTC()
	return e, true
}

// leafField is a string field of a leaf: its key, with what comes before
// it, and where its value goes.
type leafField struct {
	key string
	to  *string
}

// leafReader walks a leaf's text; the first thing not where appendLeaf
// puts it clears ok, and every later step does nothing.
type leafReader struct {
	s  string
	ok bool
}

// key consumes lit, which must come next.
func (r *leafReader) key(lit string) {
	if r.ok && strings.HasPrefix(r.s, lit) {
		r.s = r.s[len(lit):]
		return
	}
	r.ok = false
}

// optional consumes lit if it comes next.
func (r *leafReader) optional(lit string) bool {
	if r.ok && strings.HasPrefix(r.s, lit) {
		r.s = r.s[len(lit):]
		return true
	}
	return false
}

// next consumes c if it comes next.
func (r *leafReader) next(c byte) bool {
	if r.ok && r.s != "" && r.s[0] == c {
		r.s = r.s[1:]
		return true
	}
	return false
}

// str consumes a JSON string and returns its value: a slice of the leaf's
// text when it has no escape, else decoded (the escapes appendString
// writes only).
func (r *leafReader) str() string {
	if !r.next('"') {
		r.ok = false
		return ""
	}
	for i := 0; i < len(r.s); i++ {
		switch c := r.s[i]; {
		case c == '"':
			v := r.s[:i]
			r.s = r.s[i+1:]
			return v
		case c == '\\':
			return r.escaped(i)
		case c < 0x20:
			r.ok = false
			return ""
		}
	}
	r.ok = false
	return ""
}

// escaped decodes the rest of a string whose first escape is at i.
func (r *leafReader) escaped(i int) string {
	var b strings.Builder
	b.WriteString(r.s[:i])
	for i < len(r.s) {
		c := r.s[i]
		switch {
		case c == '"':
			r.s = r.s[i+1:]
			return b.String()
		case c < 0x20:
			r.ok = false
			return ""
		case c != '\\':
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(r.s) {
			break
		}
		switch r.s[i+1] {
		case '"', '\\':
			b.WriteByte(r.s[i+1])
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'u':
			// appendString writes \u00XX, lower-case, for the other
			// control characters only.
			if i+6 > len(r.s) || r.s[i+2:i+4] != "00" {
				r.ok = false
				return ""
			}
			v, err := strconv.ParseUint(r.s[i+4:i+6], 16, 8)
			if err != nil || v >= 0x20 {
				r.ok = false
				return ""
			}
			b.WriteByte(byte(v))
			i += 6
			continue
		default:
			r.ok = false
			return ""
		}
		i += 2
	}
	r.ok = false
	return ""
}

// count consumes a positive decimal integer without leading zeros.
func (r *leafReader) count() int {
	i := 0
	for i < len(r.s) && r.s[i] >= '0' && r.s[i] <= '9' {
		i++
	}
	if !r.ok || i == 0 || r.s[0] == '0' {
		r.ok = false
		return 0
	}
	n, err := strconv.Atoi(r.s[:i])
	if err != nil {
		r.ok = false
		return 0
	}
	r.s = r.s[i:]
	return n
}
