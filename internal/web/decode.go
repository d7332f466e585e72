package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
)

// MaxJSONBody is the largest JSON request body.
const MaxJSONBody = 1 << 20

// maxEchoedName is the longest key or charset name an error message repeats.
const maxEchoedName = 64

// decode reads a JSON body into v strictly: the media type must be JSON (in
// UTF-8, the only charset it takes), the body at most MaxJSONBody bytes of
// valid UTF-8 holding one value, no unknown fields, no key twice in an
// object, no unpaired UTF-16 surrogate escape. Errors are 415, 413, 400
// (malformed) or 422 naming the field; their messages never repeat values
// from the body.
func decode(r *http.Request, v any) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return &medguard.Error{Kind: medguard.Unsupported, Message: "send the body as application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		name := "this charset"
		if charsetName(cs) {
			name = "charset " + strconv.Quote(cs)
		}
		return &medguard.Error{Kind: medguard.Unsupported, Message: "the body must be UTF-8; " + name + " is not supported"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONBody+1))
	if err != nil {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the body could not be read"}
	}
	if len(body) > MaxJSONBody {
		return &medguard.Error{Kind: medguard.TooLarge, Message: "the body is larger than " + strconv.Itoa(MaxJSONBody>>10) + " KiB"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &medguard.Error{Kind: medguard.Malformed, Message: "a JSON body is required"}
	}
	// encoding/json would quietly turn invalid UTF-8 and lone surrogates
	// into U+FFFD, changing what is stored.
	if !utf8.Valid(body) {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the body must hold exactly one JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the body must hold exactly one JSON value"}
	}
	// The body is one valid JSON value from here on.
	if unpairedSurrogate(body) {
		return &medguard.Error{Kind: medguard.Malformed, Message: `the body holds an unpaired UTF-16 surrogate escape (\uD800-\uDFFF)`}
	}
	return duplicateKey(body)
}

// duplicateKey refuses a JSON value in which an object, at any depth, holds
// a key twice: encoding/json would keep the last, so two readers of the
// same body could disagree. Keys compare after unescaping. It walks the
// token stream once, keeping a set of keys per open object: linear time.
func duplicateKey(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers stay text: no float conversion to fail on
	// open holds a frame per open object or array: an object's keys seen
	// and whether a key comes next.
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	var open []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &medguard.Error{Kind: medguard.Malformed, Message: "the body is not valid JSON"}
		}
		if n := len(open); n > 0 && open[n-1].wantKey {
			if key, ok := tok.(string); ok {
				top := &open[n-1]
				if _, seen := top.keys[key]; seen {
					return duplicateKeyError(key)
				}
				if top.keys == nil {
					top.keys = map[string]struct{}{}
				}
				top.keys[key] = struct{}{}
				top.wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, frame{object: true, wantKey: true})
			continue
		case json.Delim('['):
			open = append(open, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
		}
		// A value has ended (a scalar, or an object or array just closed):
		// the object around it wants a key again.
		if len(open) > 0 && open[len(open)-1].object {
			open[len(open)-1].wantKey = true
		}
	}
}

// duplicateKeyError names a duplicated key only if it is a short ASCII
// identifier: other keys may hold patient data.
func duplicateKeyError(key string) error {
	if safeName(key) {
		return &medguard.Error{Kind: medguard.Malformed, Message: "the key " + strconv.Quote(key) + " appears twice in an object"}
	}
	return &medguard.Error{Kind: medguard.Malformed, Message: "a key is duplicated in an object"}
}

// safeName reports whether a key from the body may be repeated in an error
// message: an ASCII identifier (letters, digits and _, not starting with a
// digit) of at most maxEchoedName bytes.
func safeName(s string) bool {
	if s == "" || len(s) > maxEchoedName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

// charsetName reports whether a charset parameter may be repeated in an
// error message: a short name of ASCII letters, digits and -._: as IANA's
// charset names are (gbk, iso-8859-1, utf-16le).
func charsetName(s string) bool {
	if s == "" || len(s) > maxEchoedName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._:", c) >= 0) {
			return false
		}
	}
	return true
}

// unpairedSurrogate reports whether a valid JSON text holds a \u escape of a
// UTF-16 surrogate that is not a high surrogate followed by a low one.
// Backslashes occur only inside strings, as escapes, in valid JSON.
func unpairedSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++ // a one-character escape, perhaps of a backslash
			continue
		}
		r := hex4(b, i+2)
		switch {
		case r < 0:
			return true // not reached for valid JSON
		case 0xD800 <= r && r < 0xDC00:
			if i+11 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
				return true
			}
			if lo := hex4(b, i+8); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case 0xDC00 <= r && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// hex4 is the value of the four hex digits at b[i:], or -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// decodeError explains a JSON decoding error without echoing the input:
// field names are repeated only when they are short ASCII identifiers.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &medguard.Error{Kind: medguard.Invalid, Field: "body", Message: "the body must be a JSON object"}
		}
		if !safePath(field) {
			return &medguard.Error{Kind: medguard.Invalid, Field: "body", Message: "a field has the wrong type"}
		}
		return &medguard.Error{Kind: medguard.Invalid, Field: field, Message: field + " must be a JSON " + jsonKind(typeErr.Type.Kind().String())}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &medguard.Error{Kind: medguard.Malformed, Message: "the body is not valid JSON"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, qerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if qerr != nil || !safeName(field) {
			return &medguard.Error{Kind: medguard.Invalid, Field: "body", Message: "the body has a field this request does not take"}
		}
		return &medguard.Error{Kind: medguard.Invalid, Field: field, Message: "unknown field " + strconv.Quote(field)}
	}
	return &medguard.Error{Kind: medguard.Invalid, Field: "body", Message: "the body does not match the expected shape"}
}

// safePath reports whether a dotted field path such as "address.city", as
// json.UnmarshalTypeError gives it, is made of names safeName accepts, at
// most maxEchoedName bytes in all.
func safePath(p string) bool {
	if len(p) > maxEchoedName {
		return false
	}
	for _, part := range strings.Split(p, ".") {
		if !safeName(part) {
			return false
		}
	}
	return true
}

// parseTime reads an optional RFC 3339 time from a request field.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, medguard.InvalidField(field, "%s must be a time as RFC 3339, e.g. 2026-11-23T08:00:00+08:00", field)
	}
	return t.UTC(), nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	}
	if strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float") {
		return "number"
	}
	return "value"
}
