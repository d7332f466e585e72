package console_test

import (
	"context"
	"testing"

	"medguard/internal/audit"
)

// A refused console page is in the audit log like a refused API call
// (issue 9: the console's 403 pages wrote no entry): a doctor opening the
// administrators' pages, or a page that does not exist, leaves an entry
// under their name with the refusal.
func TestRefusedPagesAreLogged(t *testing.T) {
	h := newHospital(t)
	ctx := context.Background()
	b := h.browser("zh-CN")
	b.signIn("zhangwei", staffPassword)
	from, _, err := audit.HeadOf(ctx, h.app.DB)
	if err != nil {
		t.Fatal(err)
	}
	for path, status := range map[string]int{"/admin/users": 403, "/audit": 403, "/no-such-page": 404} {
		if p := b.get(path); p.status != status {
			t.Fatalf("%s: %d, want %d", path, p.status, status)
		}
	}
	to, _, err := audit.HeadOf(ctx, h.app.DB)
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.ReadEntries(ctx, h.app.DB, from, to)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]int{}
	for _, st := range got {
		if e := st.Entry; e.Actor == "zhangwei" && e.Outcome != audit.Success {
			refused[e.Outcome]++
		}
	}
	if refused["denied"] != 2 || refused["not_found"] != 1 {
		t.Fatalf("refused pages in the log: %v (%d entries)", refused, len(got))
	}
}
