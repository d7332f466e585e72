package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// DiskOptions say how DiskSyncs probes a disk.
type DiskOptions struct {
	Dir      string        // where the probe's file is made (and removed)
	Size     int           // bytes written before each sync (a WAL page or a few)
	Every    time.Duration // pause between syncs
	Duration time.Duration
	Slow     time.Duration // syncs at least this long are listed with their time
}

// DiskResult is what DiskSyncs measured: the latency of a write and the
// sync of its data, which every durable commit (SQLite's WAL, PostgreSQL's
// WAL flush) waits for, and when the slow ones happened.
type DiskResult struct {
	Options DiskOptions
	Syncs   Percentiles
	Slow    []SlowSync
}

// SlowSync is one sync at least DiskOptions.Slow long.
type SlowSync struct {
	At   time.Time
	Took time.Duration
}

// DiskSyncs writes o.Size bytes to a file in o.Dir and syncs its data, every
// o.Every, for o.Duration, overwriting the first 16 MiB of the file in turn
// (allocated first, so that a sync carries data, not the file's growth).
func DiskSyncs(ctx context.Context, o DiskOptions) (*DiskResult, error) {
	if o.Size <= 0 || o.Duration <= 0 || o.Every < 0 {
		return nil, fmt.Errorf("bench: disk: size and duration must be positive")
	}
	f, err := os.CreateTemp(o.Dir, "medguard-disk-probe-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const span = 16 << 20
	if err := f.Truncate(span); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	buf := make([]byte, o.Size)
	var lat []time.Duration
	res := &DiskResult{Options: o}
	end := time.Now().Add(o.Duration)
	var off int64
	for ctx.Err() == nil && time.Now().Before(end) {
		for i := range buf {
			buf[i] = byte(len(lat) + i)
		}
		t := time.Now()
		if _, err := f.WriteAt(buf, off); err != nil {
			return nil, err
		}
		if err := syncData(f); err != nil {
			return nil, err
		}
		d := time.Since(t)
		lat = append(lat, d)
		if o.Slow > 0 && d >= o.Slow {
			res.Slow = append(res.Slow, SlowSync{At: t, Took: d})
		}
		off = (off + int64(o.Size)) % (span - int64(o.Size))
		if o.Every > 0 {
			time.Sleep(o.Every)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Syncs = summarise(lat)
	return res, nil
}

// WriteText prints r for a reader.
func (r *DiskResult) WriteText(w io.Writer) {
	s := r.Syncs
	fmt.Fprintf(w, "  disk       %s: write %d bytes and sync its data, every %s, for %s\n",
		r.Options.Dir, r.Options.Size, r.Options.Every, r.Options.Duration)
	fmt.Fprintf(w, "\n  %10s %10s %10s %10s %10s %10s %10s\n", "syncs", "mean", "p50", "p90", "p99", "p99.9", "max")
	fmt.Fprintf(w, "  %10d %10s %10s %10s %10s %10s %10s\n\n", s.N, msText(ms(s.Mean)), msText(ms(s.P50)), msText(ms(s.P90)),
		msText(ms(s.P99)), msText(ms(s.P999)), msText(ms(s.Max)))
	if len(r.Slow) > 0 {
		fmt.Fprintf(w, "  slow       %d syncs of %s or more:", len(r.Slow), r.Options.Slow)
		for i, sl := range r.Slow {
			if i == 20 {
				fmt.Fprintf(w, " …")
				break
			}
			fmt.Fprintf(w, " %s (%s)", sl.At.Format("15:04:05.000"), msText(ms(sl.Took)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "  note       every durable commit waits for one such sync; a request that arrives during a slow one")
	fmt.Fprintln(w, "             waits for it too, so these tails bound the p99 of any durable write or audited read here")
}

// JSON is the result as one line.
func (r *DiskResult) JSON() string {
	b, _ := json.Marshal(map[string]any{"bench": "disk", "dir": r.Options.Dir, "size": r.Options.Size,
		"every_ms": ms(r.Options.Every), "duration_s": r.Options.Duration.Seconds(), "syncs": r.Syncs.N,
		"mean_ms": ms(r.Syncs.Mean), "p50_ms": ms(r.Syncs.P50), "p90_ms": ms(r.Syncs.P90), "p99_ms": ms(r.Syncs.P99),
		"p999_ms": ms(r.Syncs.P999), "max_ms": ms(r.Syncs.Max), "slow": len(r.Slow)})
	return string(b)
}

// ProbeOptions are the disk probe's settings beside a load (bench reads
// --disk-probe): light enough not to be the load's bottleneck (a sync of one
// page every 10 ms, against the hundreds a second the server's commits
// make), frequent enough that a pause of the disk long enough to matter to a
// p99 meets one of its syncs.
func ProbeOptions(dir string, window time.Duration) DiskOptions {
	return DiskOptions{Dir: dir, Size: 8192, Every: 10 * time.Millisecond, Duration: window, Slow: 5 * time.Millisecond}
}

// DiskProbe is what a disk probe saw while a load was measured, and how the
// load's slowest answers lined up with the disk's slow syncs.
type DiskProbe struct {
	Dir    string  `json:"dir"`
	Syncs  int     `json:"syncs"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	SlowMs float64 `json:"slow_from_ms"` // a sync this long or longer is slow
	// SlowSyncs is how many syncs were slow; Slow lists them.
	SlowSyncs int        `json:"slow_syncs"`
	Slow      []SlowSync `json:"-"`
	// Tail is how many answers took the load's p99 (TailFromMs) or longer,
	// and TailDuring how many of them were in flight while a slow sync was
	// under way.
	TailFromMs float64 `json:"tail_from_ms"`
	Tail       int     `json:"tail"`
	TailDuring int     `json:"tail_during_slow_syncs"`
	// BasePct is the share of all answers in flight during a slow sync, in
	// per cent: the tail's share would be about this if the pauses did
	// not make the tail.
	BasePct float64 `json:"all_during_slow_syncs_pct"`
}

// NewDiskProbe lines the probe's result d up with the load's result r.
func NewDiskProbe(d *DiskResult, r *Result) *DiskProbe {
	p := &DiskProbe{Dir: d.Options.Dir, Syncs: d.Syncs.N, P99ms: ms(d.Syncs.P99), MaxMs: ms(d.Syncs.Max),
		SlowMs: ms(d.Options.Slow), SlowSyncs: len(d.Slow), Slow: d.Slow, TailFromMs: ms(r.Latency.P99)}
	var base float64
	p.Tail, p.TailDuring, base = r.TailDuring(d.Slow)
	p.BasePct = math.Round(base*1000) / 10
	return p
}

// TailDuring counts the answers that took the p99 latency or longer (tail),
// and of those the ones in flight (from their start — their scheduled time
// in an open loop — to their end) while one of the slow syncs was under way
// (during); and the same share of all answers (base), which is what chance
// alone would give the tail if the disk's pauses had nothing to do with it.
func (r *Result) TailDuring(slow []SlowSync) (tail, during int, base float64) {
	if r.Latency.N == 0 {
		return 0, 0, 0
	}
	all := 0
	for _, a := range r.answers {
		start := a.end.Add(-a.took)
		hit := false
		for _, s := range slow {
			if start.Before(s.At.Add(s.Took)) && s.At.Before(a.end) {
				hit = true
				break
			}
		}
		if hit {
			all++
		}
		if a.took >= r.Latency.P99 {
			tail++
			if hit {
				during++
			}
		}
	}
	return tail, during, float64(all) / float64(len(r.answers))
}

// WriteText prints p for a reader, under the load's report.
func (p *DiskProbe) WriteText(w io.Writer) {
	fmt.Fprintf(w, "  %-10s a probe syncing 8 KiB every 10 ms in %s during the measured window: %d syncs,\n", "disk", p.Dir, p.Syncs)
	fmt.Fprintf(w, "  %-10s p99 %s, max %s; %d of %s or more", "", msText(p.P99ms), msText(p.MaxMs), p.SlowSyncs, msText(p.SlowMs))
	for i, s := range p.Slow {
		if i == 8 {
			fmt.Fprint(w, " …")
			break
		}
		sep := ","
		if i == 0 {
			sep = ":"
		}
		fmt.Fprintf(w, "%s %s (%s)", sep, s.At.Format("15:04:05.000"), msText(ms(s.Took)))
	}
	fmt.Fprintln(w)
	if p.Tail > 0 {
		fmt.Fprintf(w, "  %-10s of the %d answers at or above the p99 (%s), %d (%.0f %%) were in flight during a slow sync;\n",
			"", p.Tail, msText(p.TailFromMs), p.TailDuring, 100*float64(p.TailDuring)/float64(p.Tail))
		fmt.Fprintf(w, "  %-10s of all answers, %.1f %% (what the tail's share would be if the pauses did not make it)\n", "", p.BasePct)
	}
	fmt.Fprintln(w)
}
