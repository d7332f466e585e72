package vulns_test

import (
	"context"
	"testing"
	"time"

	"medguard/internal/vulns"
)

// TestOpenAt lists the vulnerabilities open at an instant: none before
// the scan found them, all of them after it, and one fixed no longer from
// its fix on (still open before it).
func TestOpenAt(t *testing.T) {
	ctx := context.Background()
	o := newOffice(t, vulns.Config{})
	before := o.clock.Now().Add(-time.Minute)
	o.importReport(o.pac, vulns.CSV, sample(t, "nessus-pacs.csv"), false)
	found := o.clock.Now()
	all := o.byRule(o.pac)
	open, err := o.vulns.OpenAt(ctx, found)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != len(all) || len(all) < 2 {
		t.Fatalf("%d open after the scan, %d found", len(open), len(all))
	}
	for _, f := range open {
		if f.Severity == "" || f.FirstSeen.After(found) || f.DueAt.Before(f.FirstSeen) {
			t.Errorf("figure %+v", f)
		}
	}
	if none, err := o.vulns.OpenAt(ctx, before); err != nil || len(none) != 0 {
		t.Fatalf("%d open before the scan, %v", len(none), err)
	}
	v := all["97833 10.20.2.21 445/tcp"]
	o.clock.Advance(time.Hour)
	for _, to := range []string{vulns.StatusConfirmed, vulns.StatusFixing, vulns.StatusFixed} {
		if _, err := o.vulns.SetStatus(ctx, o.call("liqiang"), v.ID, vulns.Transition{Status: to, Note: "已安装 KB4012212 补丁"}); err != nil {
			t.Fatal(err)
		}
	}
	fixed := o.clock.Now()
	o.clock.Advance(time.Hour)
	if was, _ := o.vulns.OpenAt(ctx, fixed.Add(-time.Minute)); len(was) != len(all) {
		t.Errorf("%d open before the fix, want %d", len(was), len(all))
	}
	if now, _ := o.vulns.OpenAt(ctx, o.clock.Now()); len(now) != len(all)-1 {
		t.Errorf("%d open after the fix, want %d", len(now), len(all)-1)
	}
}
