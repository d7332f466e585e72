package inspections

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"medguard/internal/backuphealth"
)

// Host is the server medguard runs on, as the system items read it
// (consumer side: SystemHost reads the real one; tests inject theirs).
type Host interface {
	// Load returns the 15-minute load average and the number of CPUs.
	Load() (avg15 float64, cpus int, err error)
	// Space returns the free and total bytes of the file system that
	// holds medguard's data directory.
	Space() (free, total uint64, err error)
}

// Backups is the backups' health as the server computes it (consumer
// side: *backuphealth.Service). A nil Backups, or one that reports no
// schedule, leaves the backup item to the inspector.
type Backups interface {
	Glance() backuphealth.Glance
}

// SystemHost is the host medguard runs on: the load from /proc/loadavg,
// the free space of Dir's file system.
type SystemHost struct {
	// Dir is medguard's data directory.
	Dir string
}

// Load reads /proc/loadavg.
func (h SystemHost) Load() (float64, int, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, err
	}
	avg, err := ParseLoadavg(string(b))
	return avg, runtime.NumCPU(), err
}

// Space reads the free and total space of the data directory's file
// system.
func (h SystemHost) Space() (uint64, uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(h.Dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// ParseLoadavg reads the 15-minute load average out of /proc/loadavg's
// text ("0.52 0.58 0.59 1/467 12345").
func ParseLoadavg(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, errors.New("inspections: /proc/loadavg has fewer than three fields")
	}
	v, err := strconv.ParseFloat(f[2], 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, errors.New("inspections: /proc/loadavg's 15-minute average is not a number")
	}
	return v, nil
}

// The facts a system reading records, beside its value.
const (
	FactLoad15     = "load15"
	FactCPUs       = "cpus"
	FactFreeBytes  = "free_bytes"
	FactTotalBytes = "total_bytes"
	// FactBackups is 1 when a backup schedule runs here, 0 when none does
	// (then the inspector checks the backups by hand).
	FactBackups        = "backups_configured"
	FactTargets        = "targets"
	FactLate           = "late"
	FactFailing        = "failing"
	FactRPOSeconds     = "rpo_seconds"
	FactFullAgeSeconds = "full_age_seconds"
	// FactUnreadable is 1 when medguard could not read the host (then the
	// inspector fills the item in by hand).
	FactUnreadable = "unreadable"
)

// round1 rounds to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// systemReading is what medguard reads now for a system item: the
// reading with Source "system", or — when it cannot (no host, no backup
// schedule, an unreadable host) — one with Source "inspector" and the
// facts saying why, which the inspector then fills in.
func (s *Service) systemReading(_ context.Context, it Item) Reading {
	host, backups := s.system()
	r := Reading{Key: it.Key, Label: it.Label, Kind: it.Kind, Unit: it.Unit, Min: it.Min, Max: it.Max, Source: SourceSystem,
		Facts: map[string]float64{}}
	byHand := func(fact string, v float64) Reading {
		r.Source, r.Facts = SourceInspector, map[string]float64{fact: v}
		return r
	}
	switch it.Key {
	case ServerLoad:
		if host == nil {
			return byHand(FactUnreadable, 1)
		}
		avg, cpus, err := host.Load()
		if err != nil || cpus <= 0 {
			return byHand(FactUnreadable, 1)
		}
		v := round1(avg / float64(cpus) * 100)
		r.Value, r.Facts[FactLoad15], r.Facts[FactCPUs] = &v, avg, float64(cpus)
	case FreeSpace:
		if host == nil {
			return byHand(FactUnreadable, 1)
		}
		free, total, err := host.Space()
		if err != nil || total == 0 {
			return byHand(FactUnreadable, 1)
		}
		v := round1(float64(free) / float64(total) * 100)
		r.Value, r.Facts[FactFreeBytes], r.Facts[FactTotalBytes] = &v, float64(free), float64(total)
	case BackupStatus:
		if backups == nil {
			return byHand(FactBackups, 0)
		}
		g := backups.Glance()
		if !g.Configured {
			return byHand(FactBackups, 0)
		}
		ok := g.OK()
		r.OK = &ok
		r.Facts[FactBackups], r.Facts[FactTargets], r.Facts[FactLate], r.Facts[FactFailing] = 1, float64(g.Targets), float64(g.Late), float64(g.Failing)
		r.Facts[FactRPOSeconds], r.Facts[FactFullAgeSeconds] = math.Round(g.RPO.Seconds()), math.Round(g.FullAge.Seconds())
	}
	r.OutOfRange = r.outOfRange()
	return r
}
