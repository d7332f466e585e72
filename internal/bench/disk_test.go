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

// TailDuring counts a tail answer as in flight during a slow sync when
// their spans meet, and gives the share of all answers that did as the base.
func TestTailDuring(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	r := &Result{}
	var lat []time.Duration
	// 96 quick answers of 1 ms ending every 10 ms from 10 ms to 960 ms, and
	// four slow ones of 30 ms.
	for i := 1; i <= 96; i++ {
		r.answers = append(r.answers, answer{end: at(10 * i), took: ms(1)})
		lat = append(lat, ms(1))
	}
	for _, end := range []int{105, 505, 1205, 2005} {
		r.answers = append(r.answers, answer{end: at(end), took: ms(30)})
		lat = append(lat, ms(30))
	}
	r.Latency = summarise(lat)
	if r.Latency.P99 != ms(30) {
		t.Fatalf("p99 %s", r.Latency.P99)
	}
	slow := []SlowSync{
		{At: at(90), Took: ms(8)},    // inside the slow answer 75–105 ms, and no quick one
		{At: at(1180), Took: ms(40)}, // overlaps the slow answer 1175–1205 from before it starts
		{At: at(506), Took: ms(3)},   // just after the answer ending at 505: not in flight
		{At: at(309), Took: ms(5)},   // meets only the quick answer 309–310
	}
	tail, during, base := r.TailDuring(slow)
	if tail != 4 || during != 2 {
		t.Fatalf("tail %d, during %d; want 4, 2", tail, during)
	}
	// In flight during one: the two slow answers above and the quick one at
	// 309–310 (it ends after the sync at 309 begins).
	if want := 3.0 / 100; base != want {
		t.Fatalf("base %v, want %v", base, want)
	}
	if tail, during, base := (&Result{}).TailDuring(slow); tail != 0 || during != 0 || base != 0 {
		t.Fatal("an empty result has a tail")
	}
}
