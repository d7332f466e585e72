package audit

import (
	"bytes"
	"testing"
	"time"
)

// FuzzLeafFields: the fields the index check reads from a leaf are the
// entry's, whatever its strings hold, whether the leaf is read where it
// lies or decoded.
func FuzzLeafFields(f *testing.F) {
	f.Add("zhangwei", "record.read", "pat00001", "CARD", int64(1795422600123))
	f.Add(`a"b\c`, "auth.login", "", "病案科", int64(0))
	f.Add("patient_id\":\"x", `","actor":"`, "\x1f\x1e", "\xff", int64(-62135596800000))
	f.Add("张伟", "", "patient_id", "", int64(253402300799999))
	f.Fuzz(func(t *testing.T, actor, action, patient, dept string, ms int64) {
		e := &Entry{Time: time.UnixMilli(ms).UTC(), Actor: actor, Action: action, PatientID: patient, ActorDepartment: dept,
			Decision: Allow, Outcome: Success, Rule: "r", ActorRoles: []string{dept}}
		leaf := e.Leaf()
		want, err := ParseLeaf(leaf)
		if err != nil {
			return // a time outside what the leaf format holds
		}
		got, err := leafFields(leaf)
		if err != nil {
			t.Fatalf("%s: %v", leaf, err)
		}
		if got.ms != want.Time.UnixMilli() || !bytes.Equal(got.actor, []byte(want.Actor)) ||
			!bytes.Equal(got.action, []byte(want.Action)) || !bytes.Equal(got.patient, []byte(want.PatientID)) {
			t.Fatalf("%s: read %d %q %q %q", leaf, got.ms, got.actor, got.action, got.patient)
		}
	})
}

// The quick time reader agrees with time.Parse, or leaves it to it.
func FuzzParseMillis(f *testing.F) {
	f.Add("2026-11-23T08:30:00.123Z")
	f.Add("2026-02-29T08:30:00.123Z")
	f.Add("2024-02-29T23:59:59.999Z")
	f.Add("0000-01-01T00:00:00.000Z")
	f.Add("2026-13-01T00:00:00.000Z")
	f.Fuzz(func(t *testing.T, s string) {
		ms, ok := parseMillis([]byte(s))
		if !ok {
			return
		}
		tt, err := time.Parse(TimeFormat, s)
		if err != nil || tt.UnixMilli() != ms {
			t.Fatalf("%q: quick %d, time.Parse %v %v", s, ms, tt, err)
		}
	})
}
