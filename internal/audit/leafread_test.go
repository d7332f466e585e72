package audit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// leafCases are entries whose leaves exercise every escape appendString
// writes, Chinese text, invalid UTF-8 (stored as U+FFFD), the optional
// fields and awkward times.
func leafCases() []*Entry {
	base := func() *Entry {
		return &Entry{Time: time.Date(2026, 12, 7, 10, 30, 0, 123_000_000, time.UTC), Actor: "zhangwei",
			ActorDepartment: "心内科", ActorRoles: []string{"doctor"}, IP: "10.1.2.3", Action: "record.read",
			TargetType: "record", TargetID: "rec00001", PatientID: "pat00001", Purpose: "treatment",
			Decision: Allow, Rule: "allow.same_department", Outcome: Success, RequestID: "req-1"}
	}
	var controls strings.Builder
	for c := rune(0); c < 0x20; c++ {
		controls.WriteRune(c)
	}
	var out []*Entry
	for _, edit := range []func(e *Entry){
		func(e *Entry) {},
		func(e *Entry) { e.ActorRoles = nil },
		func(e *Entry) { e.ActorRoles = []string{"department_head", "doctor", "主任"} },
		func(e *Entry) { e.BreakGlass = true; e.Purpose = "emergency" },
		func(e *Entry) { e.Classification = "core" },
		func(e *Entry) { e.Count = 1 },
		func(e *Entry) { e.Count = 123456; e.Classification = "important"; e.Outcome = Limited },
		func(e *Entry) { e.Actor = `张"伟\` + controls.String() + "\x7f\u2028😀" },
		func(e *Entry) { e.TargetID = "\\\"\\" },
		func(e *Entry) { e.Rule = "bad\xffutf8\xc3" },
		func(e *Entry) { e.ActorRoles = []string{"", `"`, "\n"} },
		func(e *Entry) { e.IP, e.PatientID, e.Purpose, e.RequestID, e.TargetID = "", "", "", "", "" },
		func(e *Entry) { e.Time = time.Date(2028, 2, 29, 23, 59, 59, 999_999_999, time.UTC) },
		func(e *Entry) { e.Time = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) },
		func(e *Entry) { e.Time = time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("CST", 8*3600)) },
	} {
		e := base()
		edit(e)
		out = append(out, e)
	}
	return out
}

// TestReadLeafAgreesWithDecoding: every leaf appendLeaf writes is read
// without the JSON decoder, to the entry the decoder gives.
func TestReadLeafAgreesWithDecoding(t *testing.T) {
	for i, e := range leafCases() {
		leaf := e.Leaf()
		fast, ok := readLeaf(leaf)
		if !ok {
			t.Errorf("case %d: %s not read", i, leaf)
			continue
		}
		slow, err := decodeLeaf(leaf)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("case %d: read %+v, decoded %+v", i, fast, slow)
		}
		if !bytes.Equal(fast.Leaf(), leaf) {
			t.Errorf("case %d: %s read back as %s", i, leaf, fast.Leaf())
		}
	}
}

// TestReadLeafRefusesOtherForms: JSON that means the same entry in another
// form is not read by readLeaf (ParseLeaf then decodes it and refuses it,
// as it is not canonical).
func TestReadLeafRefusesOtherForms(t *testing.T) {
	leaf := string(leafCases()[0].Leaf())
	for _, other := range []string{
		strings.Replace(leaf, `{"action"`, `{ "action"`, 1),
		strings.Replace(leaf, `"record.read"`, `"record\u002eread"`, 1),
		strings.Replace(leaf, `"zhangwei"`, `"zhang\/wei"`, 1),
		strings.Replace(leaf, `"break_glass":false`, `"break_glass":0`, 1),
		strings.Replace(leaf, `"break_glass":false`, `"break_glass":false,"count":007`, 1),
		strings.Replace(leaf, `"10.1.2.3"`, "\"10.1.2.3\t\"", 1),
		strings.Replace(leaf, `.123Z`, `.123+00:00`, 1),
		strings.Replace(leaf, `2026-12-07`, `2026-02-30`, 1),
		leaf + " ",
		leaf[:len(leaf)-1],
		strings.Replace(leaf, `,"ip":"10.1.2.3"`, ``, 1),
	} {
		if _, ok := readLeaf([]byte(other)); ok {
			t.Errorf("read %s", other)
		}
		if _, err := ParseLeaf([]byte(other)); err == nil {
			t.Errorf("ParseLeaf accepted %s", other)
		}
	}
}

// FuzzReadLeaf: whatever the bytes, readLeaf and the JSON decoder agree on
// every canonical leaf — both read it, to the same entry — so ParseLeaf
// gives what it gave before readLeaf, only sooner.
func FuzzReadLeaf(f *testing.F) {
	for _, e := range leafCases() {
		f.Add(e.Leaf())
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, leaf []byte) {
		if !utf8.Valid(leaf) {
			return
		}
		fast, fastOK := readLeaf(leaf)
		fastOK = fastOK && bytes.Equal(fast.Leaf(), leaf)
		slow, err := decodeLeaf(leaf)
		slowOK := err == nil && bytes.Equal(slow.Leaf(), leaf)
		if fastOK != slowOK {
			t.Fatalf("%q: read %v, decoded %v", leaf, fastOK, slowOK)
		}
		if fastOK && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: read %+v, decoded %+v", leaf, fast, slow)
		}
	})
}

// BenchmarkParseLeaf: a leaf read as detection's catch-up reads another
// server's entries ("decoded": the JSON decoder's way, ParseLeaf's only
// way before readLeaf).
func BenchmarkParseLeaf(b *testing.B) {
	leaf := leafCases()[4].Leaf()
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseLeaf(leaf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := decodeLeaf(leaf)
			if err != nil || !bytes.Equal(e.Leaf(), leaf) {
				b.Fatal(err)
			}
		}
	})
}
