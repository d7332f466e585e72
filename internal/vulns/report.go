package vulns

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"medguard"
)

// The scanner reports medguard reads. Each parser is a pure function of
// the report's bytes: it decides nothing, writes nothing and reads no
// files or network (an XML report's external entities are refused, never
// resolved). Parse checks the result against the limits below.

// The formats of a scanner report.
const (
	SARIF   = "sarif"   // SARIF 2.1.0 (code scanners: CodeQL, Semgrep, Trivy's SARIF output, …)
	Trivy   = "trivy"   // Trivy JSON (container images, file systems)
	OpenVAS = "openvas" // Greenbone/OpenVAS XML report (network scans)
	CSV     = "csv"     // CSV (medguard's columns, or a Nessus-style export)
)

// Formats lists the formats of a scanner report.
var Formats = []string{SARIF, Trivy, OpenVAS, CSV}

// The severities of a vulnerability, most severe first.
const (
	Critical = "critical"
	High     = "high"
	Medium   = "medium"
	Low      = "low"
)

// Severities lists the severities, most severe first.
var Severities = []string{Critical, High, Medium, Low}

// rank orders severities: 0 for critical.
func rank(sev string) int {
	if i := slices.Index(Severities, sev); i >= 0 {
		return i
	}
	return len(Severities)
}

// SeverityOf is the severity of a score (CVSS, or SARIF's
// security-severity): 9 and above critical, 7 high, 4 medium, below low.
func SeverityOf(score float64) string {
	switch {
	case score >= 9:
		return Critical
	case score >= 7:
		return High
	case score >= 4:
		return Medium
	}
	return Low
}

// Limits of a report.
const (
	// MaxFindings is the most findings one report may hold.
	MaxFindings = 20000
	maxRuleID   = 200
	maxTitle    = 300
	maxLocation = 500
	maxVersion  = 100
	maxDesc     = 4000
	maxRef      = 500
	maxCVEs     = 20
)

// Finding is one vulnerability a scanner reports on the asset scanned.
type Finding struct {
	// RuleID is what was found: a CVE, or the scanner's rule or test id.
	RuleID string
	// CVEs are the CVE ids it names.
	CVEs []string
	// Title is a one-line name.
	Title    string
	Severity string
	// Score is the CVSS or security-severity score, 0 when none is given.
	Score float64
	// Location is where, as shown: a file and line, a package and its
	// version, a host's port.
	Location string
	// Key is the stable part of the location that, with the rule, tells
	// one finding from another across scans (a file without its line when
	// the scanner gives a line-independent fingerprint, a package without
	// its version, a host and port).
	Key                                     string
	Package, InstalledVersion, FixedVersion string
	// Description is the scanner's explanation and advice.
	Description string
	// Reference is a link to more (an advisory).
	Reference string
}

// Fingerprint identifies a finding on an asset across scans: the rule and
// the stable part of its location.
func (f *Finding) Fingerprint() string {
	h := sha256.Sum256([]byte(f.RuleID + "\x00" + f.Key))
	return hex.EncodeToString(h[:16])
}

// Report is what a parser makes of a scanner report.
type Report struct {
	// Tool names the scanner ("trivy", a SARIF run's driver, …); a full
	// scan proposes as fixed only what this tool found before.
	Tool string
	// ScannedAt is when the scan ran, if the report says (zero otherwise).
	ScannedAt time.Time
	Findings  []Finding
}

// Parse reads a report in format and checks it: every finding has a rule
// id and a severity, the texts are clipped to their limits and cleaned of
// control characters, findings with the same fingerprint are merged (the
// most severe kept), and there are at most MaxFindings. Errors are
// Invalid, naming the field "report" (or "format"), and say where the
// report is wrong without repeating its content.
func Parse(format string, data []byte) (*Report, error) {
	var r *Report
	var err error
	switch format {
	case SARIF:
		r, err = ParseSARIF(data)
	case Trivy:
		r, err = ParseTrivy(data)
	case OpenVAS:
		r, err = ParseOpenVAS(data)
	case CSV:
		r, err = ParseCSV(data)
	default:
		return nil, medguard.InvalidField("format", "format must be one of %s", strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	return r.normalise()
}

// bad is the error of a report that cannot be read.
func bad(format string, args ...any) error {
	return medguard.InvalidField("report", format, args...)
}

var cvePattern = regexp.MustCompile(`CVE-\d{4}-\d{4,7}`)

// cves finds the CVE ids in some texts, each once, in order.
func cves(texts ...string) []string {
	var out []string
	for _, t := range texts {
		for _, c := range cvePattern.FindAllString(strings.ToUpper(t), -1) {
			if !slices.Contains(out, c) && len(out) < maxCVEs {
				out = append(out, c)
			}
		}
	}
	return out
}

// clean keeps a text's printable characters (newlines too when multi),
// valid UTF-8, at most max characters.
func clean(s string, max int, multi bool) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' && multi:
			return r
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff:
			return -1
		}
		return r
	}, s)
	if !multi {
		s = strings.Join(strings.Fields(s), " ")
	} else {
		s = strings.TrimSpace(s)
	}
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// normalise checks and cleans the findings, merging duplicates.
func (r *Report) normalise() (*Report, error) {
	r.Tool = strings.ToLower(clean(r.Tool, 64, false))
	if r.Tool == "" {
		r.Tool = "scanner"
	}
	if len(r.Findings) > MaxFindings {
		return nil, bad("the report holds %d findings; at most %d at once", len(r.Findings), MaxFindings)
	}
	out := make([]Finding, 0, len(r.Findings))
	index := map[string]int{}
	for i := range r.Findings {
		f := r.Findings[i]
		f.RuleID = clean(f.RuleID, maxRuleID, false)
		if f.RuleID == "" {
			return nil, bad("finding %d has no rule or vulnerability id", i+1)
		}
		if rank(f.Severity) == len(Severities) {
			return nil, bad("finding %d has no severity", i+1)
		}
		if math.IsNaN(f.Score) || f.Score < 0 || f.Score > 10 {
			f.Score = 0
		}
		f.Score = math.Round(f.Score*10) / 10
		f.Title = clean(f.Title, maxTitle, false)
		if f.Title == "" {
			f.Title = f.RuleID
		}
		f.Location = clean(f.Location, maxLocation, false)
		f.Key = clean(f.Key, maxLocation, false)
		f.Package = clean(f.Package, maxVersion, false)
		f.InstalledVersion = clean(f.InstalledVersion, maxVersion, false)
		f.FixedVersion = clean(f.FixedVersion, maxVersion, false)
		f.Description = clean(f.Description, maxDesc, true)
		f.Reference = clean(f.Reference, maxRef, false)
		if !strings.HasPrefix(f.Reference, "https://") && !strings.HasPrefix(f.Reference, "http://") {
			f.Reference = ""
		}
		f.CVEs = cves(append([]string{f.RuleID}, f.CVEs...)...)
		fp := f.Fingerprint()
		if j, ok := index[fp]; ok {
			if rank(f.Severity) < rank(out[j].Severity) {
				out[j].Severity, out[j].Score = f.Severity, f.Score
			}
			out[j].CVEs = cves(append(out[j].CVEs, f.CVEs...)...)
			continue
		}
		index[fp] = len(out)
		out = append(out, f)
	}
	r.Findings = out
	return r, nil
}

// parseTime reads a scanner's timestamp (RFC 3339, with or without
// fractions or zone), or the zero time.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// where names the n-th item of something for an error.
func where(what string, n int) string { return fmt.Sprintf("%s %d", what, n) }
