//go:build linux

package bench

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncData syncs f's data as PostgreSQL's default wal_sync_method and
// SQLite do on Linux: fdatasync.
func syncData(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
