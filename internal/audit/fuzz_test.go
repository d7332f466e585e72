package audit_test

import (
	"bytes"
	"testing"

	"medguard/internal/audit"
)

// FuzzParseLeaf: any bytes either fail to parse or are exactly the
// canonical encoding of the entry they parse to.
func FuzzParseLeaf(f *testing.F) {
	f.Add(entry(1).Leaf())
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"action":"x"}`))
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := audit.ParseLeaf(leaf)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Leaf(), leaf) {
			t.Fatalf("accepted a non-canonical leaf %q", leaf)
		}
	})
}
