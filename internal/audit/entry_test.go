package audit

import (
	"bytes"
	"testing"
	"time"
)

// TestAppendTime: the leaf's time is what Format gives, from year 0 to
// 9999, to the millisecond (truncated), whatever the zone.
func TestAppendTime(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	for _, tm := range []time.Time{
		time.Date(2026, 12, 6, 16, 27, 5, 999_999_999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 1_000_000, shanghai),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.UnixMilli(-1).UTC(),
		time.UnixMilli(1795422600123),
	} {
		if got, want := string(appendTime(nil, tm)), tm.UTC().Format(TimeFormat); got != want {
			t.Errorf("%v: %s, want %s", tm, got, want)
		}
	}
}

// TestSeal: the leaf made after the hash prefix is the entry's leaf, and
// its hash the library's leaf hash.
func TestSeal(t *testing.T) {
	for _, e := range []*Entry{
		{Time: time.UnixMilli(1795422600123), Actor: "张伟", ActorDepartment: "心内科", ActorRoles: []string{"医生", "auditor"},
			Action: "record.read", PatientID: "pat\"001\\\n", Decision: Allow, Outcome: Success, Count: 3, Classification: "core"},
		{Actor: "bad\xffutf8", ActorRoles: []string{"b", "a"}},
		{},
	} {
		p := &pending{entry: e}
		p.seal()
		if !bytes.Equal(p.leaf, e.Leaf()) || !bytes.Equal(p.hash, hasher.HashLeaf(e.Leaf())) {
			t.Errorf("%q: sealed %q %x", e.Leaf(), p.leaf, p.hash)
		}
		if _, err := ParseLeaf(p.leaf); err != nil {
			t.Errorf("%q: %v", p.leaf, err)
		}
	}
}
