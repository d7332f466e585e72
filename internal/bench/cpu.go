package bench

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUSample is the CPU time used so far, read at one moment: by this
// process, by the PostgreSQL processes of this machine, by the whole
// machine, and by other processes asked for (the servers of a fleet, say).
// Two samples make a CPUUse.
type CPUSample struct {
	At      time.Time
	Process time.Duration
	Machine time.Duration // 0 where unknown
	// postgres is each PostgreSQL process's CPU time by pid.
	postgres map[int]time.Duration
	// pids is the CPU time of each process asked for (0 if unreadable).
	pids map[int]time.Duration
}

// SampleCPU reads the CPU times now, with those of the processes pids.
func SampleCPU(pids ...int) CPUSample {
	s := CPUSample{At: time.Now(), Process: processCPU(), Machine: machineBusy(), postgres: postgresCPU()}
	if len(pids) > 0 {
		s.pids = make(map[int]time.Duration, len(pids))
		for _, pid := range pids {
			_, s.pids[pid], _ = procStat(pid)
		}
	}
	return s
}

// CPUUse is the CPU time used between two samples.
type CPUUse struct {
	Wall    time.Duration
	Process time.Duration // this process (user and system)
	// Postgres is what the processes named "postgres" on this machine
	// used: every one of them, whoever they served, and only those alive
	// at the end (a backend that exited in between is lost).
	Postgres time.Duration
	Machine  time.Duration // all CPUs of the machine, 0 where unknown
	// PostgresProcesses is how many there were at the end.
	PostgresProcesses int
	// Pids is what each process the samples were asked for used.
	Pids map[int]time.Duration
}

// Since is the CPU time used from s0 to s.
func (s CPUSample) Since(s0 CPUSample) CPUUse {
	u := CPUUse{Wall: s.At.Sub(s0.At), Process: s.Process - s0.Process}
	if s0.Machine > 0 && s.Machine > 0 {
		u.Machine = s.Machine - s0.Machine
	}
	for pid, t := range s.postgres {
		if d := t - s0.postgres[pid]; d > 0 {
			u.Postgres += d
		}
	}
	u.PostgresProcesses = len(s.postgres)
	if len(s.pids) > 0 {
		u.Pids = make(map[int]time.Duration, len(s.pids))
		for pid, t := range s.pids {
			u.Pids[pid] = t - s0.pids[pid]
		}
	}
	return u
}

// CPUs is how many CPUs d kept busy on average over the interval.
func (u CPUUse) CPUs(d time.Duration) float64 {
	if u.Wall <= 0 {
		return 0
	}
	return d.Seconds() / u.Wall.Seconds()
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all CPUs of the machine have spent on
// anything but idling and waiting for I/O, from /proc/stat (0 if unknown).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already counted in user.
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return ticks(busy)
}

// ticks converts clock ticks to a duration: USER_HZ is 100 on Linux.
func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / 100 }

// postgresCPU is the CPU time (utime + stime) of every process of this
// machine whose name is "postgres", by pid; nil where /proc is absent.
func postgresCPU() map[int]time.Duration {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := map[int]time.Duration{}
	for _, e := range dir {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, cpu, ok := procStat(pid)
		if ok && comm == "postgres" {
			out[pid] = cpu
		}
	}
	return out
}

// procStat reads a process's name and CPU time (utime + stime) from
// /proc/PID/stat.
func procStat(pid int) (comm string, cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// "PID (COMM) STATE PPID …": the name may hold spaces and parentheses,
	// so it ends at the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := bytes.Fields(b[end+1:])
	// After the name: state(3) … utime(14) stime(15), counted from 1.
	if len(f) < 13 {
		return "", 0, false
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return string(b[open+1 : end]), ticks(ut + st), true
}
