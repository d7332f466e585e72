package records_test

import (
	"strings"
	"testing"

	"medguard/internal/records"
)

// FuzzCheckFilename: an accepted name is never a path.
func FuzzCheckFilename(f *testing.F) {
	for _, s := range []string{"张伟_心电图.pdf", "../../etc/passwd", `..\x`, "a/b", "", " . ", "x\x00y", "CON", "a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := records.CheckFilename(name)
		if err != nil {
			return
		}
		if strings.ContainsAny(got, `/\`) || strings.Contains(got, "..") || got == "" || strings.ContainsRune(got, 0) {
			t.Fatalf("accepted %q as %q", name, got)
		}
	})
}
