package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"medguard"
	"medguard/internal/records"
)

// FuzzDecode feeds arbitrary bodies and charsets to the strict JSON
// decoder, into a patient and into generic values (which take any shape,
// so that nested objects get through): it must never panic, must answer
// with a client error kind or success — never an internal error —, must
// never accept a body of invalid UTF-8, a charset other than UTF-8, an
// object with a key twice (checked by a decoder of its own) or a string
// that decodes to U+FFFD without saying so; and its messages must be short
// printable ASCII that never repeat the body.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"张伟","gender":"male"}`, `{"name":1}`, `{"x":1}`, `[]`, `null`, `{`, ``,
		`{"name":"a"} {"name":"b"}`, `{"name":"\ud800"}`, `{"birth_date":"1949-12-31","mrn":"MR1"}`,
		`{"name":"a","name":"b"}`, `{"name":"a","n\u0061me":"b"}`, `{"name":"\ud83d\ude00"}`, "{\"name\":\"\xff\"}",
		"{\"name\":\"\xe5\xbc\"}", `{"address":{"a":1,"a":2}}`, `[{"k":1},{"k":1,"k":2}]`, `{"姓名":1,"姓名":2}`,
		`{"a":[{"k":1},{"k":{"k":"k"}}],"b":{"a":"a"}}`, `{"\ufffd":"\uFFFD"}`} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"name":"张伟"}`), "utf-8")
	f.Add([]byte(`{"name":"张伟"}`), "UTF-8")
	f.Add([]byte(`{"name":"\xd5\xc5"}`), "gbk")
	f.Fuzz(func(t *testing.T, body []byte, charset string) {
		ct := "application/json"
		if charset != "" {
			ct = mime.FormatMediaType(ct, map[string]string{"charset": charset})
			if ct == "" {
				return // not a header value a client can send
			}
		}
		for _, into := range []any{new(records.NewPatient), new(any)} {
			r := httptest.NewRequest("POST", "/api/v1/patients", bytes.NewReader(body))
			r.Header.Set("Content-Type", ct)
			err := decode(r, into)
			if err == nil {
				if charset != "" && !strings.EqualFold(charset, "utf-8") {
					t.Fatalf("accepted charset %q", charset)
				}
				if !utf8.Valid(body) {
					t.Fatalf("accepted invalid UTF-8: %q", body)
				}
				if hasDuplicateKey(body) {
					t.Fatalf("accepted a duplicated key: %q", body)
				}
				if v, ok := into.(*any); ok && hasReplacement(*v) &&
					!bytes.Contains(body, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
					t.Fatalf("accepted a string that decoded to U+FFFD: %q", body)
				}
				continue
			}
			switch medguard.KindOf(err) {
			case medguard.Malformed, medguard.Invalid, medguard.TooLarge, medguard.Unsupported:
			default:
				t.Fatalf("decode answered %v", err)
			}
			e, ok := err.(*medguard.Error)
			if !ok {
				t.Fatalf("decode answered %T", err)
			}
			// (A 415 names the charset, from the header, which may hold
			// the body's bytes too.)
			if len(body) > 8 && bytes.Contains([]byte(e.Message), body) && e.Kind != medguard.Unsupported {
				t.Fatalf("the error repeats the body: %q", e.Message)
			}
			for _, s := range []string{e.Message, e.Field} {
				if len(s) > 200 {
					t.Fatalf("long message %q", s)
				}
				for i := 0; i < len(s); i++ {
					if s[i] < 0x20 || s[i] >= 0x7f {
						t.Fatalf("message or field not printable ASCII: %q", s)
					}
				}
			}
		}
	})
}

// hasReplacement reports whether a generic JSON value holds U+FFFD in a
// string or key.
func hasReplacement(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, utf8.RuneError)
	case []any:
		return slices.ContainsFunc(v, hasReplacement)
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, utf8.RuneError) || hasReplacement(x) {
				return true
			}
		}
	}
	return false
}

// hasDuplicateKey is the fuzz test's own opinion on duplicate keys in a
// valid JSON body: it walks the body's first value, recording every
// object's keys — quadratic, simple and independent of duplicateKey.
func hasDuplicateKey(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			var keys []string
			dup := false
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return dup
				}
				if slices.Contains(keys, k.(string)) {
					dup = true
				}
				keys = append(keys, k.(string))
				dup = walk() || dup
			}
			dec.Token()
			return dup
		case json.Delim('['):
			dup := false
			for dec.More() {
				dup = walk() || dup
			}
			dec.Token()
			return dup
		}
		return false
	}
	return walk()
}

// TestDecodeRefuses checks each way a body is refused: its kind, that the
// message names the problem, and that it never repeats patient data.
func TestDecodeRefuses(t *testing.T) {
	long := strings.Repeat("k", 65)
	for _, c := range []struct {
		name, ct, body string
		kind           medguard.Kind
		msg            string // the message holds this
		field          string
	}{
		{"invalid UTF-8 in a string", "", "{\"name\":\"\xff\xfe\"}", medguard.Malformed, "the body is not valid UTF-8", ""},
		{"truncated UTF-8 in a string", "", "{\"name\":\"张\xe4\xbc\"}", medguard.Malformed, "the body is not valid UTF-8", ""},
		{"UTF-16 surrogate in UTF-8", "", "{\"name\":\"\xed\xa0\x80\"}", medguard.Malformed, "the body is not valid UTF-8", ""},
		{"overlong encoding", "", "{\"name\":\"\xc0\xaf\"}", medguard.Malformed, "the body is not valid UTF-8", ""},
		{"invalid UTF-8 outside strings", "", "{\"name\":\"a\"}\xff", medguard.Malformed, "the body is not valid UTF-8", ""},
		{"GBK bytes", "", "{\"name\":\"\xd5\xc5\xce\xb0\"}", medguard.Malformed, "the body is not valid UTF-8", ""},
		{"lone high surrogate", "", `{"name":"\ud800"}`, medguard.Malformed, "unpaired UTF-16 surrogate", ""},
		{"lone low surrogate", "", `{"name":"a\uDC00b"}`, medguard.Malformed, "unpaired UTF-16 surrogate", ""},
		{"high surrogate then a letter", "", `{"name":"\ud83d\u0041"}`, medguard.Malformed, "unpaired UTF-16 surrogate", ""},
		{"two high surrogates", "", `{"name":"\ud83d\ud83d"}`, medguard.Malformed, "unpaired UTF-16 surrogate", ""},
		{"high surrogate at the end", "", `{"name":"x\ud83d"}`, medguard.Malformed, "unpaired UTF-16 surrogate", ""},
		{"charset gbk", "application/json; charset=gbk", `{"name":"a"}`, medguard.Unsupported, `charset "gbk"`, ""},
		{"charset GB18030 quoted", `application/json; charset="GB18030"`, `{"name":"a"}`, medguard.Unsupported, `charset "GB18030"`, ""},
		{"charset utf-16", "application/json;charset=utf-16", `{"name":"a"}`, medguard.Unsupported, `charset "utf-16"`, ""},
		{"charset utf8 without the hyphen", "application/json; charset=utf8", `{"name":"a"}`, medguard.Unsupported, `charset "utf8"`, ""},
		{"charset with patient data", "application/json; charset*=utf-8''%E5%BC%A0%E4%BC%9F", `{"name":"a"}`, medguard.Unsupported, "this charset", ""},
		{"empty charset", `application/json; charset=""`, `{"name":"a"}`, medguard.Unsupported, "this charset", ""},
		{"duplicate key", "", `{"name":"a","name":"b"}`, medguard.Malformed, `the key "name" appears twice`, ""},
		{"duplicate key, escaped", "", `{"name":"a","n\u0061me":"b"}`, medguard.Malformed, `the key "name" appears twice`, ""},
		{"duplicate key, differing values", "", `{"gender":"male","name":"张伟","gender":"female"}`, medguard.Malformed, `the key "gender" appears twice`, ""},
		{"duplicate key in a nested object", "", `{"name":"a","address":{"city":"北京","city":"上海"}}`, medguard.Malformed, `the key "city" appears twice`, ""},
		{"duplicate key in an array of objects", "", `{"name":[{"x":1},{"y":[{"z":1,"z":2}]}]}`, medguard.Malformed, `the key "z" appears twice`, ""},
		{"duplicate key in a top-level array", "", `[{"a":1},{"a":1,"a":1}]`, medguard.Malformed, `the key "a" appears twice`, ""},
		{"duplicate Chinese key", "", `{"姓名":"张伟","姓名":"李娜"}`, medguard.Malformed, "a key is duplicated", ""},
		{"duplicate key with an ID number", "", `{"11010519491231002X":1,"11010519491231002X":2}`, medguard.Malformed, "a key is duplicated", ""},
		{"duplicate long key", "", `{"` + long + `":1,"` + long + `":2}`, medguard.Malformed, "a key is duplicated", ""},
		{"duplicate empty key", "", `{"":1,"":2}`, medguard.Malformed, "a key is duplicated", ""},
		{"unknown Chinese field", "", `{"张伟":"11010519491231002X"}`, medguard.Invalid, "a field this request does not take", "body"},
		{"unknown field", "", `{"colour":"crimson"}`, medguard.Invalid, `unknown field "colour"`, "colour"},
		{"wrong type", "", `{"name":7}`, medguard.Invalid, "name must be a JSON string", "name"},
		{"wrong type under a Chinese map key", "", `{"fields":{"诊断":7}}`, medguard.Invalid, "fields must be a JSON string", "fields"},
		{"duplicate Chinese map key", "", `{"fields":{"诊断":"冠心病","诊断":"心绞痛"}}`, medguard.Malformed, "a key is duplicated", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/patients", strings.NewReader(c.body))
			ct := c.ct
			if ct == "" {
				ct = "application/json"
			}
			r.Header.Set("Content-Type", ct)
			// Into a patient for the field errors, else into generic
			// values, which take any shape.
			var into any = new(any)
			switch {
			case strings.Contains(c.body, `"fields"`):
				into = new(records.NewRecord)
			case c.kind == medguard.Invalid || !strings.ContainsAny(c.body, "[{:"):
				into = new(records.NewPatient)
			}
			err := decode(r, into)
			var e *medguard.Error
			if !errors.As(err, &e) || e.Kind != c.kind || !strings.Contains(e.Message, c.msg) || e.Field != c.field {
				t.Fatalf("decode(%q) = %#v, want %v containing %q", c.body, err, c.kind, c.msg)
			}
			for _, secret := range []string{"张伟", "北京", "上海", "李娜", "姓名", "诊断", "冠心病", "11010519491231002X", long, "crimson"} {
				if strings.Contains(e.Message, secret) || strings.Contains(e.Field, secret) {
					t.Fatalf("the error repeats %q: %v", secret, e)
				}
			}
		})
	}
}

// TestDecodeAccepts checks that the new checks leave good bodies alone.
func TestDecodeAccepts(t *testing.T) {
	for _, c := range []struct{ ct, body, name string }{
		{"application/json", `{"name":"张伟","gender":"male"}`, "张伟"},
		{"application/json; charset=utf-8", `{"name":"张伟"}`, "张伟"},
		{"application/json; charset=UTF-8", `{"name":"张伟"}`, "张伟"},
		{`application/json; charset="Utf-8"`, `{"name":"张伟"}`, "张伟"},
		{"application/merge-patch+json", `{"name":"张伟"}`, "张伟"},
		{"application/json", `{"name":"\u5f20\u4f1f"}`, "张伟"},
		{"application/json", `{"name":"\ud83d\ude00 \\ud800"}`, "😀 \\ud800"}, // a pair, and an escaped backslash
		{"application/json", `{"name":"\ufffd"}`, "\ufffd"},                  // U+FFFD itself is a character
		{"application/json", `{"name":"a","mrn":"b","gender":"female"}`, "a"},
	} {
		r := httptest.NewRequest("POST", "/api/v1/patients", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ct)
		var p records.NewPatient
		if err := decode(r, &p); err != nil || p.Name != c.name {
			t.Errorf("%s %s: %q %v", c.ct, c.body, p.Name, err)
		}
	}
	// Keys may repeat in different objects, and values may repeat keys.
	var v struct {
		A []map[string]any `json:"a"`
		B map[string]any   `json:"b"`
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"a":[{"k":1},{"k":{"k":"k"}}],"b":{"a":"a","b":["b","b"]}}`))
	r.Header.Set("Content-Type", "application/json")
	if err := decode(r, &v); err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateKeyLinear checks that duplicate detection stays linear on
// objects with many keys and on deep nesting (a quadratic check would take
// minutes on these bodies).
func TestDuplicateKeyLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 60000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":0`, i)
	}
	b.WriteString("}")
	if err := duplicateKey([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	dup := b.String()[:b.Len()-1] + `,"k0":1}`
	if err := duplicateKey([]byte(dup)); !medguard.IsKind(err, medguard.Malformed) || !strings.Contains(err.Error(), `"k0"`) {
		t.Fatalf("last key repeats the first: %v", err)
	}
	deep := strings.Repeat(`{"a":`, 9000) + "1" + strings.Repeat("}", 9000)
	if err := duplicateKey([]byte(deep)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"name":"张伟","gender":"female","birth_date":"1949-12-31","id_number":"11010519491231002X",` +
		`"phone":"13912345678","address":"北京市朝阳区建国路88号","mrn":"MR00000001"}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/v1/patients", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var p records.NewPatient
		if err := decode(r, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCallHeaders(t *testing.T) {
	for _, c := range []struct {
		header, want string
		ok           bool
	}{
		{"患者昏迷，急诊抢救", "患者昏迷，急诊抢救", true},
		{"%E6%82%A3%E8%80%85%E6%98%8F%E8%BF%B7", "患者昏迷", true},
		{"血氧80%需抢救", "血氧80%需抢救", true},
		{"\xff\xfe", "", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Break-Glass-Reason", c.header)
		call := &medguard.Call{}
		err := callHeaders(r, call)
		if (err == nil) != c.ok || call.BreakGlassReason != c.want {
			t.Errorf("%q: %q %v", c.header, call.BreakGlassReason, err)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Purpose-Of-Use", "curiosity")
	if err := callHeaders(r, &medguard.Call{}); !medguard.IsKind(err, medguard.Invalid) {
		t.Fatalf("unknown purpose: %v", err)
	}
}
