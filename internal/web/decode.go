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

	"medguard"
)

// MaxJSONBody is the largest JSON request body.
const MaxJSONBody = 1 << 20

// decode reads a JSON body into v strictly: the media type must be JSON, the
// body at most MaxJSONBody bytes, one value, no unknown fields. Errors are
// 415, 413, 400 (malformed) or 422 naming the field.
func decode(r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return &medguard.Error{Kind: medguard.Unsupported, Message: "send the body as application/json"}
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
	return nil
}

// decodeError explains a JSON decoding error without echoing the input.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return &medguard.Error{Kind: medguard.Invalid, Field: "body", Message: "the body must be a JSON object"}
		}
		return &medguard.Error{Kind: medguard.Invalid, Field: field, Message: field + " must be a JSON " + jsonKind(typeErr.Type.Kind().String())}
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &medguard.Error{Kind: medguard.Malformed, Message: "the body is not valid JSON"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &medguard.Error{Kind: medguard.Invalid, Field: field, Message: "unknown field " + strconv.Quote(field)}
	}
	return &medguard.Error{Kind: medguard.Invalid, Field: "body", Message: "the body does not match the expected shape"}
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
