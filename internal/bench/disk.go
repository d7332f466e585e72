package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
