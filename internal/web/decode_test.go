package web

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"medguard"
	"medguard/internal/records"
)

// FuzzDecode feeds arbitrary bodies to the strict JSON decoder: it must
// never panic, and must answer with a client error kind or success — never
// an internal error.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"张伟","gender":"male"}`, `{"name":1}`, `{"x":1}`, `[]`, `null`, `{`, ``,
		`{"name":"a"} {"name":"b"}`, `{"name":"\ud800"}`, `{"birth_date":"1949-12-31","mrn":"MR1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/patients", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var p records.NewPatient
		err := decode(r, &p)
		if err == nil {
			return
		}
		switch medguard.KindOf(err) {
		case medguard.Malformed, medguard.Invalid, medguard.TooLarge:
		default:
			t.Fatalf("decode answered %v", err)
		}
		if e, ok := err.(*medguard.Error); ok && len(body) > 8 && bytes.Contains([]byte(e.Message), body) {
			t.Fatalf("the error repeats the body: %q", e.Message)
		}
	})
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
