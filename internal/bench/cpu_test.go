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

// Other processes are sampled by pid (this one standing in for a server),
// and one that does not exist counts for nothing; so is a peak RSS read.
func TestSampleCPUOfProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	self := os.Getpid()
	s0 := SampleCPU(self, -1)
	for i := 0; i < 1e4 && SampleCPU(self).pids[self] == s0.pids[self]; i++ {
		// busy until a clock tick of CPU time is used
	}
	u := SampleCPU(self, -1).Since(s0)
	if u.Pids[self] <= 0 || u.Pids[-1] != 0 || len(u.Pids) != 2 {
		t.Errorf("use by pid %v", u.Pids)
	}
	if PeakRSS(self) == 0 || PeakRSS(-1) != 0 {
		t.Errorf("PeakRSS(self) = %d, PeakRSS(-1) = %d", PeakRSS(self), PeakRSS(-1))
	}
}
