package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// FleetReport is what the processes of a fleet — servers on one
// PostgreSQL, behind a balancer — used in the measured window, from /proc.
// The operations are those of the run's mix, and the JSON names them as
// the bench does: "reads" (and cpu_per_read_ms) for bench reads, "ops"
// (and cpu_per_op_ms) otherwise.
type FleetReport struct {
	Servers      []FleetProcess `json:"servers"`
	HAProxy      FleetProcess   `json:"haproxy"`
	Postgres     FleetProcess   `json:"postgres"`
	PGProcesses  int            `json:"postgres_processes"`
	MeasuredS    float64        `json:"measured_s"`
	CPUSeconds   float64        `json:"cpu_s"`
	CPUPerReadMs *float64       `json:"cpu_per_read_ms,omitempty"`
	CPUPerOpMs   *float64       `json:"cpu_per_op_ms,omitempty"`
	PeakReset    bool           `json:"peak_rss_reset"`
	Balancer     string         `json:"balancer"`

	unit     string  // "reads", "writes" or "ops"
	perOpMs  float64 // the CPU per operation
	balancer string  // the balancer's URL
}

// FleetProcess is one process's (or PostgreSQL's processes') share.
type FleetProcess struct {
	Pid       int     `json:"pid,omitempty"`
	CPUSecs   float64 `json:"cpu_s"`
	CPUs      float64 `json:"cpus"`
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	Reads     int64   `json:"reads,omitempty"` // bench reads: the reads it answered
	Ops       int64   `json:"ops,omitempty"`   // other benches: the operations it answered
	// Audit is what a server's audit log did in the window (its /metrics).
	Audit *FleetAudit `json:"audit,omitempty"`
}

// FleetAudit is one server's audit log in the measured window, from its
// /metrics: the entries it committed and how (as one statement of its own,
// or in a turn under the tree head's lock after another server's batch),
// how often a turn asked the search index how far it goes, and how many
// entries its detection read back from the database: the other servers',
// and its own that came between theirs (a catch-up reads a range whole).
type FleetAudit struct {
	Entries          int64   `json:"entries"`
	StatementCommits int64   `json:"commits_statement"`
	LockedCommits    int64   `json:"commits_locked"`
	EntriesACommit   float64 `json:"entries_a_commit"`
	IndexEndReads    int64   `json:"index_end_reads"`
	ReadBack         int64   `json:"entries_read_back"`
}

// FleetServer is one server of a fleet: its pid, the operations of the
// mix it answered with success in the measured window (0 if unknown), and
// its audit log's work then (nil if unknown).
type FleetServer struct {
	Pid   int
	Ops   int64
	Audit *FleetAudit
}

// AddFleet adds what the fleet used to the report: servers and the
// balancer (pid, version, URL) must have been among the run's
// LoadOptions.Processes. peakReset says the servers' peak RSS marks were
// reset before the load. The CPU per operation is the servers', the
// balancer's and PostgreSQL's over the operations the load generator
// counted (its own CPU not included).
func (rep *Report) AddFleet(servers []FleetServer, balancerPid int, balancer, balancerURL string, peakReset bool) {
	u := rep.cpu
	r := &FleetReport{MeasuredS: round2(u.Wall.Seconds()), PeakReset: peakReset, Balancer: balancer,
		unit: rep.unit(), balancer: balancerURL}
	share := func(pid int, d time.Duration) FleetProcess {
		return FleetProcess{Pid: pid, CPUSecs: round2(d.Seconds()), CPUs: round2(u.CPUs(d))}
	}
	var total time.Duration
	for _, s := range servers {
		d := u.Pids[s.Pid]
		total += d
		p := share(s.Pid, d)
		p.PeakRSSMB = mb(PeakRSS(s.Pid))
		if r.unit == "reads" {
			p.Reads = s.Ops
		} else {
			p.Ops = s.Ops
		}
		if a := s.Audit; a != nil {
			p.Audit = a
			if commits := a.StatementCommits + a.LockedCommits; commits > 0 {
				a.EntriesACommit = math.Round(float64(a.Entries)*10/float64(commits)) / 10
			}
		}
		r.Servers = append(r.Servers, p)
	}
	r.HAProxy = share(balancerPid, u.Pids[balancerPid])
	total += u.Pids[balancerPid]
	// All PostgreSQL's processes alive at the end: a connection opened
	// during the measurement counts from its start.
	r.Postgres, r.PGProcesses = share(0, u.Postgres), u.PostgresProcesses
	total += u.Postgres
	r.CPUSeconds = round2(total.Seconds())
	if rep.Ops > 0 {
		r.perOpMs = math.Round(total.Seconds()*1e6/float64(rep.Ops)) / 1e3
	}
	if r.unit == "reads" {
		r.CPUPerReadMs = &r.perOpMs
	} else {
		r.CPUPerOpMs = &r.perOpMs
	}
	rep.Fleet = r
}

// WriteText prints the fleet's figures, to follow the report's.
func (r *FleetReport) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("  %-10s %d × \"medguard serve\" on one PostgreSQL schema, behind %s at %s", "servers", len(r.Servers), r.Balancer, r.balancer)
	p("  %-10s (TCP mode: TLS passed through to the servers, the clients' addresses in PROXY protocol v2 headers;", "")
	p("  %-10s round robin over connections)", "")
	p("")
	p("  what each process used during the %.1f s measured (from /proc):", r.MeasuredS)
	p("  %-24s %9s  %6s  %10s  %10s", "process", "CPU s", "CPUs", "peak RSS", r.unit)
	for i, s := range r.Servers {
		p("  %-24s %9.2f  %6.2f  %7.1f MB  %10s", fmt.Sprintf("server %d (pid %d)", i+1, s.Pid), s.CPUSecs, s.CPUs, s.PeakRSSMB,
			group(float64(s.Reads+s.Ops)))
	}
	p("  %-24s %9.2f  %6.2f", fmt.Sprintf("haproxy (pid %d)", r.HAProxy.Pid), r.HAProxy.CPUSecs, r.HAProxy.CPUs)
	p("  %-24s %9.2f  %6.2f", fmt.Sprintf("postgres (%d processes)", r.PGProcesses), r.Postgres.CPUSecs, r.Postgres.CPUs)
	p("  %-24s %9.2f", "total", r.CPUSeconds)
	p("")
	p("  CPU per %s: %.3f ms (servers, haproxy and PostgreSQL; not the load generator, nor anything else on the machine)",
		strings.TrimSuffix(r.unit, "s"), r.perOpMs)
	since := "since each server started (setting up included)"
	if r.PeakReset {
		since = "from the start of the load (warm-up included)"
	}
	p("  peak RSS is VmHWM %s; all PostgreSQL's processes count, whatever they served", since)
	p("")
	if len(r.Servers) > 0 && r.Servers[0].Audit != nil {
		p("  the audit log in the measured window (each server's /metrics): the entries each committed, its")
		p("  batches as one statement or in a turn under the tree head's lock (after another server's batch),")
		p("  the turns that asked the search index how far it goes, and the entries its detection read back")
		p("  from the database (the other servers', and its own between theirs: a catch-up reads a range whole)")
		p("  %-24s %9s  %9s  %9s  %9s  %10s  %10s", "server", "entries", "alone", "locked", "a commit", "index asked", "read back")
		for i, s := range r.Servers {
			if a := s.Audit; a != nil {
				p("  %-24s %9s  %9s  %9s  %9.1f  %10s  %10s", fmt.Sprintf("server %d", i+1), group(float64(a.Entries)),
					group(float64(a.StatementCommits)), group(float64(a.LockedCommits)), a.EntriesACommit,
					group(float64(a.IndexEndReads)), group(float64(a.ReadBack)))
			}
		}
		p("")
	}
}
