package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDiskSyncs(t *testing.T) {
	dir := t.TempDir()
	r, err := DiskSyncs(context.Background(), DiskOptions{Dir: dir, Size: 8192, Every: time.Millisecond,
		Duration: 200 * time.Millisecond, Slow: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Syncs
	if s.N < 2 || s.P50 <= 0 || s.P50 > s.P99 || s.P99 > s.Max || len(r.Slow) != s.N {
		t.Fatalf("syncs %+v, %d slow", s, len(r.Slow))
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the probe's file was left: %v", left)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	if !strings.Contains(out.String(), "p99.9") || !strings.Contains(r.JSON(), `"bench":"disk"`) {
		t.Fatalf("report:\n%s\n%s", out.String(), r.JSON())
	}
	if _, err := DiskSyncs(context.Background(), DiskOptions{Dir: dir, Size: 0, Duration: time.Second}); err == nil {
		t.Fatal("a probe of 0 bytes was accepted")
	}
}
