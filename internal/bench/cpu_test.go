package bench

import (
	"os"
	"runtime"
	"testing"
)

// This process's own /proc/PID/stat is read like PostgreSQL's would be.
func TestProcStat(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	comm, cpu, ok := procStat(os.Getpid())
	if !ok || comm == "" || cpu < 0 {
		t.Fatalf("procStat(self) = %q, %v, %v", comm, cpu, ok)
	}
	if _, _, ok := procStat(-1); ok {
		t.Error("procStat of no process succeeded")
	}
	s0 := SampleCPU()
	u := SampleCPU().Since(s0)
	if u.Wall < 0 || u.Process < 0 || u.Postgres < 0 || u.Machine < 0 {
		t.Errorf("negative use %+v", u)
	}
}
