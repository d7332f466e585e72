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
	Bench    string `json:"bench"`            // "reads"
	Server   string `json:"server"`           // "in-process" or the server's URL
	Database string `json:"database"`         // "sqlite", "postgres", or "" when unknown
	Cipher   string `json:"cipher,omitempty"` // the installation's cipher, when known

	Mode        string  `json:"mode"` // "closed" or "open"
	Workers     int     `json:"workers"`
	Rate        float64 `json:"rate,omitempty"` // scheduled reads a second (open loop)
	WarmupS     float64 `json:"warmup_s"`
	DurationS   float64 `json:"duration_s"`
	Doctors     int     `json:"doctors"`
	Patients    int     `json:"patients"`
	RecordCount int     `json:"records"`
	SetupS      float64 `json:"setup_s"`

	Reads       int64            `json:"reads"`
	ReadsPerS   float64          `json:"reads_per_s"`
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

	PeakRSSMB  float64 `json:"peak_rss_mb,omitempty"`
	RSSMB      float64 `json:"rss_mb,omitempty"`
	HeapPeakMB float64 `json:"go_heap_peak_mb,omitempty"`
	GCCycles   uint64  `json:"gc_cycles,omitempty"`
	peakReset  bool

	ProcessCPU float64 `json:"process_cpus"`
	MachineCPU float64 `json:"machine_cpus,omitempty"`
	CPUs       int     `json:"cpus"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	Go         string  `json:"go"`
	Time       string  `json:"time"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
func mb(b uint64) float64        { return math.Round(float64(b)/(1<<20)*10) / 10 }

// NewReport gathers a run's figures. mem is nil when the server does not
// run in this process.
func NewReport(h *Hospital, o LoadOptions, r *Result, mem *Memory) *Report {
	rep := &Report{Bench: "reads", Mode: r.Mode, Workers: r.Workers, Rate: r.Rate,
		WarmupS: o.Warmup.Seconds(), DurationS: o.Duration.Seconds(),
		Doctors: len(h.Doctors), Patients: h.Patients, RecordCount: len(h.Records), SetupS: math.Round(h.Took.Seconds()*10) / 10,
		Reads: r.Reads, ReadsPerS: math.Round(r.ReadsPerSecond()*10) / 10,
		P50ms: ms(r.Latency.P50), P90ms: ms(r.Latency.P90), P99ms: ms(r.Latency.P99), P999ms: ms(r.Latency.P999),
		MaxMs: ms(r.Latency.Max), MeanMs: ms(r.Latency.Mean),
		Errors: r.Errors, ErrorRate: r.ErrorRate(), ErrorSample: r.ErrorSample,
		ProcessCPU: math.Round(r.ProcessCPU*100) / 100, MachineCPU: math.Round(r.MachineCPU*100) / 100,
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		Time: time.Now().UTC().Format(time.RFC3339)}
	if r.Mode == "open" {
		rep.ServiceP50, rep.ServiceP99 = ms(r.Service.P50), ms(r.Service.P99)
	}
	if mem != nil {
		rep.PeakRSSMB, rep.RSSMB, rep.HeapPeakMB, rep.GCCycles = mb(mem.PeakRSS), mb(mem.RSS), mb(mem.PeakHeap), mem.GCCycles
		rep.peakReset = mem.PeakReset
	}
	return rep
}

// JSON is the report as one line of JSON.
func (rep *Report) JSON() string {
	b, _ := json.Marshal(rep)
	return string(b)
}

// WriteText prints the report as a table for people.
func (rep *Report) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("medguard bench reads: GET /api/v1/records/{id} over HTTPS (TLS 1.3, HTTP/1.1 keep-alive) —")
	p("sign-in check, access policy, decryption and a durable audit entry before every answer.")
	p("")
	server := rep.Server
	if rep.Database != "" {
		server += ", " + map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[rep.Database]
	}
	if rep.Cipher != "" {
		server += ", " + rep.Cipher
	}
	p("  %-10s %s", "server", server)
	p("  %-10s 1 department, %d doctors (TOTP), %d patients, %d records, set up through the API in %.1f s",
		"hospital", rep.Doctors, rep.Patients, rep.RecordCount, rep.SetupS)
	if rep.Mode == "open" {
		p("  %-10s open loop: %s reads/s scheduled, %d workers (one connection each); latency from the scheduled time",
			"load", group(rep.Rate), rep.Workers)
	} else {
		p("  %-10s closed loop: %d workers (one connection each), each reading as soon as it has its answer", "load", rep.Workers)
	}
	p("  %-10s %gs warm-up, then %gs measured; random records, each worker a doctor of the department",
		"", rep.WarmupS, rep.DurationS)
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
	p("  %10s  %9s  %9s  %9s  %9s  %9s  %10s  %s", "reads/s", "p50", "p90", "p99", "p99.9", "max", "reads", "errors")
	p("  %10s  %9s  %9s  %9s  %9s  %9s  %10s  %s", group(rep.ReadsPerS), msText(rep.P50ms), msText(rep.P90ms),
		msText(rep.P99ms), msText(rep.P999ms), msText(rep.MaxMs), group(float64(rep.Reads)), rep.errorsText())
	if rep.Mode == "open" {
		p("")
		p("  service time (from sending to the answer, as a closed-loop tool sees it): p50 %s, p99 %s",
			msText(rep.ServiceP50), msText(rep.ServiceP99))
		if sched := rep.Rate * rep.DurationS; rep.Reads > 0 && float64(rep.Reads) < 0.98*sched {
			p("  the server did not keep up: %s reads answered of %s scheduled", group(float64(rep.Reads)), group(sched))
		}
	}
	if len(rep.Errors) > 0 {
		var keys []string
		for k := range rep.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s × %d", k, rep.Errors[k]))
		}
		p("")
		p("  errors by cause: %s", strings.Join(parts, ", "))
		if rep.ErrorSample != "" {
			p("  first transport error: %s", rep.ErrorSample)
		}
	}
	p("")
	cpu := fmt.Sprintf("this process used %.2f of the %d CPUs", rep.ProcessCPU, rep.CPUs)
	if rep.MachineCPU > 0 {
		cpu += fmt.Sprintf(", the whole machine %.2f", rep.MachineCPU)
		switch {
		case rep.Database == "postgres":
			cpu += " (PostgreSQL's share, if it runs here, is in the difference)"
		case rep.MachineCPU-rep.ProcessCPU > 0.5 && rep.Server == "in-process":
			cpu += " — something else was running: the figures are low"
		}
	}
	p("  %-10s %s", "cpu", cpu)
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

func (rep *Report) errorsText() string {
	var n int64
	for _, v := range rep.Errors {
		n += v
	}
	return fmt.Sprintf("%d (%.3f %%)", n, rep.ErrorRate*100)
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
