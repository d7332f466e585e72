package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is one run's figures and the conditions they were measured in:
// printed as a table, and as one JSON line for the README.
type Report struct {
	Bench    string `json:"bench"`            // "reads", "writes" or "mixed": Mix.Bench
	Server   string `json:"server"`           // "in-process" or the server's URL
	Database string `json:"database"`         // "sqlite", "postgres", or "" when unknown
	Cipher   string `json:"cipher,omitempty"` // the installation's cipher, when known
	// LocalPostgres says the server's database is PostgreSQL on this
	// machine: its processes' CPU counts in the CPU per operation.
	LocalPostgres bool `json:"local_postgres,omitempty"`

	Mode        string  `json:"mode"` // "closed" or "open"
	Workers     int     `json:"workers"`
	Rate        float64 `json:"rate,omitempty"` // scheduled operations a second (open loop)
	Mix         string  `json:"mix,omitempty"`  // the share of each kind, when not reads only
	WarmupS     float64 `json:"warmup_s"`
	DurationS   float64 `json:"duration_s"`
	Doctors     int     `json:"doctors"`
	Patients    int     `json:"patients"`
	RecordCount int     `json:"records"`
	SetupS      float64 `json:"setup_s"`

	Ops         int64            `json:"ops"`
	OpsPerS     float64          `json:"ops_per_s"`
	Reads       int64            `json:"reads,omitempty"` // of the ops, record reads
	ReadsPerS   float64          `json:"reads_per_s,omitempty"`
	Writes      int64            `json:"writes,omitempty"` // of the ops, records created or updated
	WritesPerS  float64          `json:"writes_per_s,omitempty"`
	P50ms       float64          `json:"p50_ms"`
	P90ms       float64          `json:"p90_ms"`
	P99ms       float64          `json:"p99_ms"`
	P999ms      float64          `json:"p999_ms"`
	MaxMs       float64          `json:"max_ms"`
	MeanMs      float64          `json:"mean_ms"`
	ServiceP50  float64          `json:"service_p50_ms,omitempty"`
	ServiceP99  float64          `json:"service_p99_ms,omitempty"`
	Errors      map[string]int64 `json:"errors"`
	ErrorRate   float64          `json:"error_rate"`
	ErrorSample string           `json:"-"`
	// Kinds are the figures of each kind of operation (but reads').
	Kinds []KindFigures `json:"kinds,omitempty"`

	PeakRSSMB  float64 `json:"peak_rss_mb,omitempty"`
	RSSMB      float64 `json:"rss_mb,omitempty"`
	HeapPeakMB float64 `json:"go_heap_peak_mb,omitempty"`
	GCCycles   uint64  `json:"gc_cycles,omitempty"`
	peakReset  bool

	ProcessCPU float64 `json:"process_cpus"`
	MachineCPU float64 `json:"machine_cpus,omitempty"`
	// PostgresCPU is what this machine's PostgreSQL used, in CPUs, when it
	// is the server's database (LocalPostgres).
	PostgresCPU float64 `json:"postgres_cpus,omitempty"`
	// CPUPerOp is the CPU time per successful operation: this process's
	// (ProcessCPUPerOp) and, with LocalPostgres, PostgreSQL's
	// (PostgresCPUPerOp), in the measured window.
	CPUPerOpMs         float64 `json:"cpu_ms_per_op"`
	ProcessCPUPerOpMs  float64 `json:"process_cpu_ms_per_op"`
	PostgresCPUPerOpMs float64 `json:"postgres_cpu_ms_per_op,omitempty"`
	cpu                CPUUse

	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	Time       string `json:"time"`

	// Fleet is what the servers, balancer and PostgreSQL of a fleet used
	// (AddFleet), when the load went through one.
	Fleet *FleetReport `json:"fleet,omitempty"`
	// Disk is what a disk probe beside the load saw (--disk-probe).
	Disk *DiskProbe `json:"disk_probe,omitempty"`
}

// KindFigures are the figures of one kind of operation.
type KindFigures struct {
	Kind    string           `json:"kind"`
	Ops     int64            `json:"ops"`
	OpsPerS float64          `json:"ops_per_s"`
	P50ms   float64          `json:"p50_ms"`
	P90ms   float64          `json:"p90_ms"`
	P99ms   float64          `json:"p99_ms"`
	P999ms  float64          `json:"p999_ms"`
	MaxMs   float64          `json:"max_ms"`
	Errors  map[string]int64 `json:"errors"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
func mb(b uint64) float64        { return math.Round(float64(b)/(1<<20)*10) / 10 }
func round2(v float64) float64   { return math.Round(v*100) / 100 }

// NewReport gathers a run's figures. mem is nil when the server does not
// run in this process. The bench is named after the mix: "reads" for
// reads only, "writes" for creates and updates only, else "mixed".
func NewReport(h *Hospital, o LoadOptions, r *Result, mem *Memory) *Report {
	rep := &Report{Bench: "mixed", Mode: r.Mode, Workers: r.Workers, Rate: r.Rate,
		WarmupS: o.Warmup.Seconds(), DurationS: o.Duration.Seconds(),
		Doctors: len(h.Doctors), Patients: h.Patients, RecordCount: len(h.Records), SetupS: math.Round(h.Took.Seconds()*10) / 10,
		Ops: r.Ops, OpsPerS: math.Round(r.OpsPerSecond()*10) / 10,
		P50ms: ms(r.Latency.P50), P90ms: ms(r.Latency.P90), P99ms: ms(r.Latency.P99), P999ms: ms(r.Latency.P999),
		MaxMs: ms(r.Latency.Max), MeanMs: ms(r.Latency.Mean),
		Errors: r.Errors, ErrorRate: r.ErrorRate(), ErrorSample: r.ErrorSample,
		ProcessCPU: round2(r.ProcessCPU), MachineCPU: round2(r.MachineCPU), cpu: r.CPU,
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		Time: time.Now().UTC().Format(time.RFC3339)}
	mix := r.Mix.orDefault()
	if rep.Bench = mix.Bench(); rep.Bench != "reads" {
		rep.Mix = mix.String()
	}
	for _, k := range r.Kinds {
		switch k.Kind {
		case Read:
			rep.Reads = k.Ops
		case Create, Update:
			rep.Writes += k.Ops
		}
		if rep.Bench != "reads" {
			rep.Kinds = append(rep.Kinds, KindFigures{Kind: k.Kind.String(), Ops: k.Ops,
				OpsPerS: math.Round(r.perSecond(k.Ops)*10) / 10, P50ms: ms(k.Latency.P50), P90ms: ms(k.Latency.P90),
				P99ms: ms(k.Latency.P99), P999ms: ms(k.Latency.P999), MaxMs: ms(k.Latency.Max), Errors: k.Errors})
		}
	}
	rep.ReadsPerS = math.Round(r.perSecond(rep.Reads)*10) / 10
	rep.WritesPerS = math.Round(r.perSecond(rep.Writes)*10) / 10
	if r.Mode == "open" {
		rep.ServiceP50, rep.ServiceP99 = ms(r.Service.P50), ms(r.Service.P99)
	}
	if mem != nil {
		rep.PeakRSSMB, rep.RSSMB, rep.HeapPeakMB, rep.GCCycles = mb(mem.PeakRSS), mb(mem.RSS), mb(mem.PeakHeap), mem.GCCycles
		rep.peakReset = mem.PeakReset
	}
	rep.cpuFigures()
	return rep
}

// cpuFigures works out the CPU per operation from the measured window's
// CPU use, with PostgreSQL's when LocalPostgres (which the caller may set
// after NewReport).
func (rep *Report) cpuFigures() {
	rep.ProcessCPUPerOpMs, rep.PostgresCPUPerOpMs, rep.PostgresCPU = PerOp(rep.cpu.Process, rep.Ops), 0, 0
	if rep.LocalPostgres {
		rep.PostgresCPUPerOpMs = PerOp(rep.cpu.Postgres, rep.Ops)
		rep.PostgresCPU = round2(rep.cpu.CPUs(rep.cpu.Postgres))
	}
	rep.CPUPerOpMs = math.Round((rep.ProcessCPUPerOpMs+rep.PostgresCPUPerOpMs)*1e4) / 1e4
}

// PerOp is CPU time d shared over n operations, in milliseconds (four
// decimals); 0 when nothing was done.
func PerOp(d time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return math.Round(float64(d)/float64(n)/1e6*1e4) / 1e4
}

// JSON is the report as one line of JSON.
func (rep *Report) JSON() string {
	rep.cpuFigures()
	b, _ := json.Marshal(rep)
	return string(b)
}

// benchText is what each bench measures, for the table's heading.
var benchText = map[string][2]string{
	"reads": {"medguard bench reads: GET /api/v1/records/{id} over HTTPS (TLS 1.3, HTTP/1.1 keep-alive) —",
		"sign-in check, access policy, decryption and a durable audit entry before every answer."},
	"writes": {"medguard bench writes: POST /api/v1/patients/{id}/records and PATCH /api/v1/records/{id} over HTTPS —",
		"sign-in check, access policy, encryption, the record and its audit entry committed durably before every answer."},
	"mixed": {"medguard bench mixed: a hospital's day over HTTPS — records read and written, patients searched,",
		"worklists opened; every operation audited durably before its answer."},
}

// unit is what the bench counts: "reads", "writes" or "ops".
func (rep *Report) unit() string { return unitOf(rep.Bench) }

// WriteText prints the report as a table for people.
func (rep *Report) WriteText(w io.Writer) {
	rep.cpuFigures()
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	head := benchText[rep.Bench]
	p("%s", head[0])
	p("%s", head[1])
	p("")
	server := rep.Server
	if rep.Database != "" {
		server += ", " + map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[rep.Database]
	}
	if rep.Cipher != "" {
		server += ", " + rep.Cipher
	}
	unit := rep.unit()
	p("  %-10s %s", "server", server)
	p("  %-10s 1 department, %d doctors (TOTP), %d patients, %d records, set up through the API in %.1f s",
		"hospital", rep.Doctors, rep.Patients, rep.RecordCount, rep.SetupS)
	if rep.Mode == "open" {
		p("  %-10s open loop: %s %s/s scheduled, %d workers (one connection each); latency from the scheduled time",
			"load", group(rep.Rate), unit, rep.Workers)
	} else {
		p("  %-10s closed loop: %d workers (one connection each), each sending as soon as it has its answer", "load", rep.Workers)
	}
	what := "random records, each worker a doctor of the department"
	if rep.Mix != "" {
		what = "mix " + rep.Mix + " (percent); each worker a doctor of the department"
	}
	p("  %-10s %gs warm-up, then %gs measured; %s", "", rep.WarmupS, rep.DurationS, what)
	p("  %-10s %d CPUs (GOMAXPROCS %d), %s %s/%s", "machine", rep.CPUs, rep.GOMAXPROCS, rep.Go, runtime.GOOS, runtime.GOARCH)
	switch {
	case rep.Server == "in-process":
		p("  %-10s the load generator runs in the same process, on the same %d CPUs, as the server and", "note", rep.CPUs)
		p("  %-10s takes a share of them (TLS, HTTP): the server alone would do better", "")
	case onThisMachine(rep.Server):
		p("  %-10s the server runs on this machine: the load generator takes a share of the same %d CPUs", "note", rep.CPUs)
		p("  %-10s (TLS, HTTP), so the server alone would do better", "")
	default:
		p("  %-10s the load generator ran on another machine with %d CPUs; its limits may cap the figures", "note", rep.CPUs)
	}
	p("")
	p("  %-8s %10s  %9s  %9s  %9s  %9s  %9s  %10s  %s", "", unit+"/s", "p50", "p90", "p99", "p99.9", "max", unit, "errors")
	p("  %-8s %10s  %9s  %9s  %9s  %9s  %9s  %10s  %s", "all", group(rep.OpsPerS), msText(rep.P50ms), msText(rep.P90ms),
		msText(rep.P99ms), msText(rep.P999ms), msText(rep.MaxMs), group(float64(rep.Ops)), rep.errorsText())
	for _, k := range rep.Kinds {
		p("  %-8s %10s  %9s  %9s  %9s  %9s  %9s  %10s  %d", k.Kind, group(k.OpsPerS), msText(k.P50ms), msText(k.P90ms),
			msText(k.P99ms), msText(k.P999ms), msText(k.MaxMs), group(float64(k.Ops)), sum(k.Errors))
	}
	if rep.Mode == "open" {
		p("")
		p("  service time (from sending to the answer, as a closed-loop tool sees it): p50 %s, p99 %s",
			msText(rep.ServiceP50), msText(rep.ServiceP99))
		if sched := rep.Rate * rep.DurationS; rep.Ops > 0 && float64(rep.Ops) < 0.98*sched {
			p("  the server did not keep up: %s %s answered of %s scheduled", group(float64(rep.Ops)), unit, group(sched))
		}
	}
	if len(rep.Errors) > 0 {
		p("")
		p("  errors by cause: %s", errorList(rep.Errors))
		for _, k := range rep.Kinds {
			if len(k.Errors) > 0 {
				p("    %s: %s", k.Kind, errorList(k.Errors))
			}
		}
		if rep.ErrorSample != "" {
			p("  first transport error: %s", rep.ErrorSample)
		}
	}
	p("")
	cpu := fmt.Sprintf("this process used %.2f of the %d CPUs", rep.ProcessCPU, rep.CPUs)
	if rep.LocalPostgres {
		cpu += fmt.Sprintf(", PostgreSQL's processes %.2f", rep.PostgresCPU)
	}
	if rep.MachineCPU > 0 {
		cpu += fmt.Sprintf(", the whole machine %.2f", rep.MachineCPU)
		switch {
		case rep.Database == "postgres" && !rep.LocalPostgres:
			cpu += " (PostgreSQL's share, if it runs here, is in the difference)"
		case rep.MachineCPU-rep.ProcessCPU-rep.PostgresCPU > 0.5 && rep.Server == "in-process":
			cpu += " — something else was running: the figures are low"
		}
	}
	p("  %-10s %s", "cpu", cpu)
	perOp := fmt.Sprintf("%.3f ms per %s", rep.CPUPerOpMs, strings.TrimSuffix(unit, "s"))
	switch {
	case rep.LocalPostgres:
		perOp += fmt.Sprintf(" (this process %.3f ms + PostgreSQL %.3f ms)", rep.ProcessCPUPerOpMs, rep.PostgresCPUPerOpMs)
	case rep.Server == "in-process":
		perOp += " (this process: server and load generator)"
	default:
		perOp += " (this process only: the load generator; the server's CPU is not counted)"
	}
	p("  %-10s %s", "", perOp)
	if rep.PeakRSSMB > 0 || rep.HeapPeakMB > 0 {
		since := "since the process started"
		if rep.peakReset {
			since = "during the load"
		}
		p("  %-10s peak RSS %.1f MB (%s; server and load generator together), RSS at the end %.1f MB,", "memory",
			rep.PeakRSSMB, since, rep.RSSMB)
		p("  %-10s Go heap peak %.1f MB, %d garbage collections", "", rep.HeapPeakMB, rep.GCCycles)
	}
	p("")
}

// errorList writes errors by cause: "HTTP 409 × 2, timeout × 1".
func errorList(errs map[string]int64) string {
	var keys []string
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s × %d", k, errs[k]))
	}
	return strings.Join(parts, ", ")
}

func (rep *Report) errorsText() string {
	return fmt.Sprintf("%d (%.3f %%)", sum(rep.Errors), rep.ErrorRate*100)
}

func msText(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

// group writes v rounded to a whole number with thousands separators.
func group(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// onThisMachine reports whether the server's URL names a loopback address.
func onThisMachine(server string) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
