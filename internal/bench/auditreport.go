package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"time"
)

// AuditReport is the figures of "medguard bench audit": the audit log's
// batched append and its verification, measured through the audit library
// by the CLI (this package only gathers and prints them).
type AuditReport struct {
	Bench    string `json:"bench"`    // "audit"
	Database string `json:"database"` // "sqlite" or "postgres"
	Durable  string `json:"durable"`  // what makes a commit durable
	// LocalPostgres says the database is PostgreSQL on this machine: its
	// processes' CPU counts in the CPU per entry.
	LocalPostgres bool `json:"local_postgres,omitempty"`

	Entries      int64   `json:"entries"`
	Batch        int     `json:"batch"` // entries a transaction (and an AppendBatch call)
	Transactions int     `json:"transactions"`
	AppendS      float64 `json:"append_s"` // time inside AppendBatch, summed
	EntriesPerS  float64 `json:"entries_per_s"`
	// Commit latency: one AppendBatch call, from the call to its durable
	// return.
	CommitP50ms float64 `json:"commit_p50_ms"`
	CommitP99ms float64 `json:"commit_p99_ms"`
	CommitMaxMs float64 `json:"commit_max_ms"`
	// CPU while appending: this process's and (LocalPostgres) PostgreSQL's,
	// in CPUs, and the CPU time of both per entry.
	ProcessCPU      float64 `json:"process_cpus"`
	PostgresCPU     float64 `json:"postgres_cpus,omitempty"`
	MachineCPU      float64 `json:"machine_cpus,omitempty"`
	CPUPerEntryUs   float64 `json:"cpu_us_per_entry"`
	AppendPeakRSSMB float64 `json:"append_peak_rss_mb,omitempty"`
	AppendHeapMB    float64 `json:"append_go_heap_peak_mb,omitempty"`
	// IndexCatchUpS is how long the search index took to be complete
	// after the last append.
	IndexCatchUpS float64 `json:"index_catch_up_s"`

	// Verify: the entries it checked, how long it took, its rate, its
	// CPU (in CPUs, and per entry with PostgreSQL's) and the process's
	// peak RSS meanwhile.
	VerifiedEntries     uint64  `json:"verified_entries"`
	VerifyS             float64 `json:"verify_s"`
	VerifyPerS          float64 `json:"verify_entries_per_s"`
	VerifyProcessCPU    float64 `json:"verify_process_cpus"`
	VerifyCPUPerEntryUs float64 `json:"verify_cpu_us_per_entry"`
	VerifyPeakRSSMB     float64 `json:"verify_peak_rss_mb,omitempty"`
	// VerifyHeapMB is the Go heap's peak during verify: on SQLite the RSS
	// also counts the pages of the database file that verify's
	// memory-mapped reads touched, which the kernel may drop at will.
	VerifyHeapMB float64 `json:"verify_go_heap_peak_mb,omitempty"`
	peakReset    bool

	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	Time       string `json:"time"`
}

// AuditRun is what the CLI measured of the log.
type AuditRun struct {
	Database, Durable string
	LocalPostgres     bool
	Entries           int64
	Batch             int
	Commits           []time.Duration // each AppendBatch call
	AppendCPU         CPUUse          // while appending
	AppendMemory      Memory
	IndexCatchUp      time.Duration
	Verified          uint64
	Verify            time.Duration
	VerifyCPU         CPUUse
	VerifyMemory      Memory
}

// NewAuditReport gathers the figures of a run.
func NewAuditReport(r AuditRun) *AuditReport {
	var appendTime time.Duration
	for _, d := range r.Commits {
		appendTime += d
	}
	commits := summarise(append([]time.Duration(nil), r.Commits...))
	rep := &AuditReport{Bench: "audit", Database: r.Database, Durable: r.Durable, LocalPostgres: r.LocalPostgres,
		Entries: r.Entries, Batch: r.Batch, Transactions: len(r.Commits), AppendS: math.Round(appendTime.Seconds()*1000) / 1000,
		CommitP50ms: ms(commits.P50), CommitP99ms: ms(commits.P99), CommitMaxMs: ms(commits.Max),
		ProcessCPU: round2(r.AppendCPU.CPUs(r.AppendCPU.Process)), MachineCPU: round2(r.AppendCPU.CPUs(r.AppendCPU.Machine)),
		AppendPeakRSSMB: mb(r.AppendMemory.PeakRSS), AppendHeapMB: mb(r.AppendMemory.PeakHeap), IndexCatchUpS: math.Round(r.IndexCatchUp.Seconds()*1000) / 1000,
		VerifiedEntries: r.Verified, VerifyS: math.Round(r.Verify.Seconds()*1000) / 1000,
		VerifyPeakRSSMB: mb(r.VerifyMemory.PeakRSS), VerifyHeapMB: mb(r.VerifyMemory.PeakHeap), peakReset: r.VerifyMemory.PeakReset,
		VerifyProcessCPU: round2(r.VerifyCPU.CPUs(r.VerifyCPU.Process)),
		CPUs:             runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		Time: time.Now().UTC().Format(time.RFC3339)}
	if appendTime > 0 {
		rep.EntriesPerS = math.Round(float64(r.Entries) / appendTime.Seconds())
	}
	if r.Verify > 0 {
		rep.VerifyPerS = math.Round(float64(r.Verified) / r.Verify.Seconds())
	}
	cpu, vcpu := r.AppendCPU.Process, r.VerifyCPU.Process
	if r.LocalPostgres {
		rep.PostgresCPU = round2(r.AppendCPU.CPUs(r.AppendCPU.Postgres))
		cpu += r.AppendCPU.Postgres
		vcpu += r.VerifyCPU.Postgres
	}
	rep.CPUPerEntryUs = PerOp(cpu, r.Entries) * 1000
	rep.VerifyCPUPerEntryUs = PerOp(vcpu, int64(r.Verified)) * 1000
	return rep
}

// JSON is the report as one line of JSON.
func (rep *AuditReport) JSON() string {
	b, _ := json.Marshal(rep)
	return string(b)
}

// WriteText prints the report as a table for people.
func (rep *AuditReport) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("medguard bench audit: the audit log's batched append through the audit library (no HTTP), each")
	p("transaction durable before AppendBatch returns, then \"audit verify\" of the whole log.")
	p("")
	p("  %-10s a fresh log; %s", "database", rep.Durable)
	p("  %-10s %s entries in %d transactions of %s (one AppendBatch call each)", "load",
		group(float64(rep.Entries)), rep.Transactions, group(float64(rep.Batch)))
	p("  %-10s %d CPUs (GOMAXPROCS %d), %s %s/%s", "machine", rep.CPUs, rep.GOMAXPROCS, rep.Go, runtime.GOOS, runtime.GOARCH)
	p("")
	p("  %-8s %14s  %10s  %12s  %12s  %12s", "append", "entries/s", "time", "commit p50", "commit p99", "commit max")
	p("  %-8s %14s  %9.2fs  %12s  %12s  %12s", "", group(rep.EntriesPerS), rep.AppendS,
		msText(rep.CommitP50ms), msText(rep.CommitP99ms), msText(rep.CommitMaxMs))
	cpu := fmt.Sprintf("this process used %.2f CPUs", rep.ProcessCPU)
	if rep.LocalPostgres {
		cpu += fmt.Sprintf(", PostgreSQL's processes %.2f", rep.PostgresCPU)
	}
	if rep.MachineCPU > 0 {
		cpu += fmt.Sprintf(", the whole machine %.2f", rep.MachineCPU)
	}
	p("  %-8s %s; %.2f µs of CPU per entry%s", "cpu", cpu, rep.CPUPerEntryUs, map[bool]string{true: " (with PostgreSQL's)"}[rep.LocalPostgres])
	if rep.AppendPeakRSSMB > 0 {
		p("  %-8s peak RSS %.1f MB while appending, Go heap peak %.1f MB", "memory", rep.AppendPeakRSSMB, rep.AppendHeapMB)
	}
	p("  %-8s the search index caught up %.2f s after the last append", "index", rep.IndexCatchUpS)
	p("")
	p("  %-8s %14s  %10s  %s", "verify", "entries/s", "time", "entries")
	p("  %-8s %14s  %9.2fs  %s", "", group(rep.VerifyPerS), rep.VerifyS, group(float64(rep.VerifiedEntries)))
	since := "since the process started"
	if rep.peakReset {
		since = "during verify"
	}
	p("  %-8s this process used %.2f CPUs, %.2f µs of CPU per entry%s; peak RSS %.1f MB (%s), Go heap peak %.1f MB",
		"", rep.VerifyProcessCPU, rep.VerifyCPUPerEntryUs, map[bool]string{true: " (with PostgreSQL's)"}[rep.LocalPostgres],
		rep.VerifyPeakRSSMB, since, rep.VerifyHeapMB)
	if rep.Database == "sqlite" {
		p("  %-8s (on SQLite the RSS counts the database file's pages that verify's memory-mapped reads touched)", "")
	}
	p("")
}
