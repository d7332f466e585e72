package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// Memory is this process's memory use during a run, which says something
// about the server only when the server runs in this process (and then it
// includes the load generator's share).
type Memory struct {
	// PeakRSS is the highest resident set size (VmHWM); since the start of
	// the watch if PeakReset, else since the process started.
	PeakRSS   uint64
	PeakReset bool
	// RSS is the resident set size at the end (VmRSS).
	RSS uint64
	// PeakHeap is the largest Go heap (live and unswept objects) seen.
	PeakHeap uint64
	// GCCycles is the number of garbage collections during the watch.
	GCCycles uint64
}

// WatchMemory collects the garbage and returns free memory to the system
// (so that what setting up left behind — argon2 buffers, say — does not
// count), resets the kernel's peak-RSS mark where it may (Linux), then
// samples the Go heap every 100 ms until the returned function is called,
// which reports what it saw.
func WatchMemory() (stop func() Memory) {
	debug.FreeOSMemory()
	var m Memory
	m.PeakReset = resetPeak("self")
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	read := func() (heap, gcs uint64) {
		metrics.Read(samples)
		for i, s := range samples {
			if s.Value.Kind() != metrics.KindUint64 {
				continue
			}
			if i == 0 {
				heap = s.Value.Uint64()
			} else {
				gcs = s.Value.Uint64()
			}
		}
		return heap, gcs
	}
	heap0, gc0 := read()
	m.PeakHeap = heap0
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h, _ := read()
				m.PeakHeap = max(m.PeakHeap, h)
			}
		}
	}()
	return func() Memory {
		close(done)
		<-finished
		h, gcs := read()
		m.PeakHeap = max(m.PeakHeap, h)
		m.GCCycles = gcs - gc0
		m.PeakRSS, m.RSS = procStatus("self", "VmHWM"), procStatus("self", "VmRSS")
		return m
	}
}

// PeakRSS is process pid's peak resident set size (VmHWM) in bytes, 0 if
// unknown.
func PeakRSS(pid int) uint64 { return procStatus(strconv.Itoa(pid), "VmHWM") }

// ResetPeakRSS resets process pid's peak-RSS mark (VmHWM) to its RSS now,
// and reports whether Linux allowed it.
func ResetPeakRSS(pid int) bool { return resetPeak(strconv.Itoa(pid)) }

func resetPeak(proc string) bool {
	return os.WriteFile("/proc/"+proc+"/clear_refs", []byte("5"), 0) == nil
}

// procStatus reads a "kB" field of /proc/PROC/status (PROC a pid or
// "self") in bytes (0 if absent).
func procStatus(proc, field string) uint64 {
	b, err := os.ReadFile("/proc/" + proc + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		f := bytes.Fields(value)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return n * 1024
	}
	return 0
}
