package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	load "medguard/internal/bench"
)

const benchDiskSynopsis = `usage: medguard bench disk [--dir DIR] [--size 8192] [--every 1ms] [--duration 15s] [--slow 5ms] [--json]

Measures what every durable commit waits for: the disk's sync. A file of
16 MiB is made in --dir (default: the system's temporary directory; give the
data directory's disk, or PostgreSQL's, to measure that one), and --size
bytes are written to it and their data synced (fdatasync, as SQLite and
PostgreSQL's default wal_sync_method do), every --every, for --duration; the
file is removed.

Reported: the syncs' latency (mean, p50, p90, p99, p99.9, max) and the time
of each sync that took --slow or more. A request that arrives while its
commit waits on a slow sync waits for it too: the tail here is the floor
under the p99 of "bench reads" and "bench writes" on the same disk.
--json adds one JSON line.`

// benchDisk runs "medguard bench disk".
func benchDisk(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("bench disk", stderr)
	o := load.DiskOptions{}
	var asJSON bool
	fs.StringVar(&o.Dir, "dir", os.TempDir(), "the directory (disk) to probe")
	fs.IntVar(&o.Size, "size", 8192, "bytes written before each sync")
	fs.DurationVar(&o.Every, "every", time.Millisecond, "pause between syncs")
	fs.DurationVar(&o.Duration, "duration", 15*time.Second, "how long to probe")
	fs.DurationVar(&o.Slow, "slow", 5*time.Millisecond, "list the syncs that took this long or more")
	fs.BoolVar(&asJSON, "json", false, "also print the figures as one JSON line")
	fs.Usage = func() { usage(stderr, fs.FlagSet, benchDiskSynopsis) }
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("bench disk: unexpected argument %q", fs.Arg(0))}
	case o.Size < 1 || o.Size > 16<<20:
		return usageError{errors.New("--size must be between 1 byte and 16 MiB")}
	case o.Duration <= 0 || o.Every < 0:
		return usageError{errors.New("--duration must be positive and --every not negative")}
	}
	fmt.Fprintf(stderr, "bench: syncing %d bytes at a time in %s for %s …\n", o.Size, o.Dir, o.Duration)
	r, err := load.DiskSyncs(ctx, o)
	if err != nil {
		return fmt.Errorf("bench disk: %w", err)
	}
	r.WriteText(stdout)
	if asJSON {
		fmt.Fprintln(stdout, r.JSON())
	}
	return nil
}
