//go:build !linux

package bench

import "os"

// syncData syncs f (fsync where fdatasync is not offered).
func syncData(f *os.File) error { return f.Sync() }
