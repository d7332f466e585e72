package cli

import (
	"fmt"
	"strings"
	"time"

	"medguard/internal/vulns"
)

// vulnFlags are serve's settings of vulnerability management (issue 13):
// the due dates by severity, the scan cadence, the largest report.
type vulnFlags struct {
	due       string
	cadence   time.Duration
	maxReport int64
}

func (f *vulnFlags) register(fs *flagSet) {
	fs.StringVar(&f.due, "vuln-due", "critical=48h,high=48h,medium=168h,low=720h",
		"how long after the scan that found it a vulnerability is due, by severity (critical, high, medium, low)")
	fs.DurationVar(&f.cadence, "scan-cadence", 7*24*time.Hour, "how often every asset in use is scanned; one not scanned for longer is listed")
	fs.Int64Var(&f.maxReport, "max-scan-report", 16<<20, "largest scanner report imported, in bytes")
}

// config turns the flags into vulnerability management's configuration.
func (f *vulnFlags) config() (vulns.Config, error) {
	cfg := vulns.Config{ScanCadence: f.cadence, MaxReport: f.maxReport}
	if f.cadence <= 0 || f.maxReport <= 0 {
		return cfg, fmt.Errorf("--scan-cadence and --max-scan-report must be positive")
	}
	for _, item := range strings.Split(f.due, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		sev, v, ok := strings.Cut(item, "=")
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if !ok || err != nil || d <= 0 {
			return cfg, fmt.Errorf("--vuln-due: %q is not severity=duration (e.g. critical=48h)", item)
		}
		switch strings.TrimSpace(sev) {
		case vulns.Critical:
			cfg.Critical = d
		case vulns.High:
			cfg.High = d
		case vulns.Medium:
			cfg.Medium = d
		case vulns.Low:
			cfg.Low = d
		default:
			return cfg, fmt.Errorf("--vuln-due: %q is not a severity (critical, high, medium, low)", sev)
		}
	}
	return cfg, nil
}
