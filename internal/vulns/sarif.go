package vulns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
)

// ParseSARIF reads a SARIF 2.1.0 log (OASIS; the output of CodeQL,
// Semgrep, Trivy's SARIF format and most code scanners) with
// github.com/owenrumney/go-sarif. Each result is a finding, except those
// the tool marks as passing, not applicable or informational, and those
// suppressed in the log. Its severity follows the common
// "security-severity" property of the result or its rule (≥ 9 critical,
// ≥ 7 high, ≥ 4 medium, else low), falling back to the result's level (or
// its rule's default level): error high, warning medium, note and none
// low. Its location is the first physical location; the fingerprint uses
// the result's partial fingerprints when the tool gives them (stable when
// lines move), else the file and line.
func ParseSARIF(data []byte) (*Report, error) {
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
		return nil, bad("the report is not a SARIF log (a JSON object)")
	}
	log, err := sarif.FromBytes(data)
	if err != nil {
		return nil, bad("the report is not valid SARIF JSON: %s", jsonProblem(err))
	}
	if log.Version != "2.1.0" {
		return nil, bad("the report is not SARIF 2.1.0 (version %q)", clean(log.Version, 16, false))
	}
	r := &Report{}
	for i, run := range log.Runs {
		if run == nil {
			continue
		}
		tool := ""
		var rules []*sarif.ReportingDescriptor
		if run.Tool != nil && run.Tool.Driver != nil {
			tool = str(run.Tool.Driver.Name)
			rules = run.Tool.Driver.Rules
		}
		if i == 0 || r.Tool == "" {
			r.Tool = tool
		}
		for _, inv := range run.Invocations {
			if inv == nil {
				continue
			}
			for _, ts := range []*string{inv.EndTimeUtc, inv.StartTimeUtc} {
				if t := parseTime(str(ts)); !t.IsZero() && t.After(r.ScannedAt) {
					r.ScannedAt = t
				}
			}
		}
		byID := map[string]*sarif.ReportingDescriptor{}
		for _, rule := range rules {
			if rule != nil && str(rule.ID) != "" {
				byID[str(rule.ID)] = rule
			}
		}
		for j, res := range run.Results {
			if res == nil || skipResult(res) {
				continue
			}
			f, err := sarifFinding(res, rules, byID)
			if err != nil {
				return nil, bad("run %d, result %d: %s", i+1, j+1, err)
			}
			r.Findings = append(r.Findings, f)
			if len(r.Findings) > MaxFindings {
				return nil, bad("the report holds more than %d findings", MaxFindings)
			}
		}
	}
	return r, nil
}

// skipResult reports whether a result is not a finding: a check that
// passed, did not apply or only informs, or one the log suppresses.
func skipResult(res *sarif.Result) bool {
	switch res.Kind {
	case "pass", "notApplicable", "informational":
		return true
	}
	for _, s := range res.Suppressions {
		if s != nil && (s.Status == nil || *s.Status == "accepted") {
			return true
		}
	}
	return false
}

func sarifFinding(res *sarif.Result, rules []*sarif.ReportingDescriptor, byID map[string]*sarif.ReportingDescriptor) (Finding, error) {
	id := str(res.RuleID)
	if id == "" && res.Rule != nil {
		id = str(res.Rule.ID)
	}
	var rule *sarif.ReportingDescriptor
	switch {
	case id != "":
		rule = byID[id]
		if rule == nil {
			// A hierarchical id ("CA2101/1") names its rule before the slash.
			if base, _, ok := strings.Cut(id, "/"); ok {
				rule = byID[base]
			}
		}
	case res.Rule != nil && res.Rule.Index >= 0 && res.Rule.Index < len(rules):
		rule = rules[res.Rule.Index]
	case res.RuleIndex > 0 && res.RuleIndex < len(rules):
		rule = rules[res.RuleIndex]
	}
	if id == "" && rule != nil {
		id = str(rule.ID)
	}
	if id == "" {
		return Finding{}, fmt.Errorf("no rule id")
	}
	f := Finding{RuleID: id}
	score, scored := securitySeverity(res.Properties)
	if !scored && rule != nil {
		score, scored = securitySeverity(rule.Properties)
	}
	level := res.Level
	if level == "" && rule != nil && rule.DefaultConfiguration != nil {
		level = rule.DefaultConfiguration.Level
	}
	switch {
	case scored:
		f.Severity, f.Score = SeverityOf(score), score
	case level == "error":
		f.Severity = High
	case level == "warning" || level == "":
		f.Severity = Medium // SARIF's default level is warning
	case level == "note" || level == "none":
		f.Severity = Low
	default:
		return Finding{}, fmt.Errorf("unknown level %q", clean(level, 16, false))
	}
	message := ""
	if res.Message != nil {
		message = str(res.Message.Text)
	}
	if rule != nil {
		f.Title = text(rule.ShortDescription)
		if f.Title == "" {
			f.Title = str(rule.Name)
		}
		f.Description = text(rule.FullDescription)
		f.Reference = str(rule.HelpURI)
		if rule.Properties != nil {
			f.CVEs = cves(rule.Properties.Tags...)
		}
	}
	if f.Title == "" {
		f.Title, _, _ = strings.Cut(message, "\n")
	}
	if message != "" && message != f.Description {
		f.Description = strings.TrimSpace(message + "\n\n" + f.Description)
	}
	f.CVEs = append(f.CVEs, cves(message)...)
	uri, line := "", 0
	for _, loc := range res.Locations {
		if loc == nil || loc.PhysicalLocation == nil || loc.PhysicalLocation.ArtifactLocation == nil {
			continue
		}
		uri = str(loc.PhysicalLocation.ArtifactLocation.URI)
		if reg := loc.PhysicalLocation.Region; reg != nil && reg.StartLine != nil {
			line = *reg.StartLine
		}
		break
	}
	f.Location = uri
	if line > 0 {
		f.Location += ":" + strconv.Itoa(line)
	}
	f.Key = f.Location
	if fps := fingerprints(res); fps != "" {
		f.Key = uri + "#" + fps
	}
	return f, nil
}

// fingerprints joins a result's partial fingerprints (or, without them,
// its fingerprints) in a stable order, "" when it has none.
func fingerprints(res *sarif.Result) string {
	m := res.PartialFingerprints
	if len(m) == 0 {
		m = res.Fingerprints
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ";")
}

// securitySeverity reads the "security-severity" property (a number, or
// a number in a string) of a property bag, if it holds one from 0 to 10.
func securitySeverity(p *sarif.PropertyBag) (float64, bool) {
	if p == nil {
		return 0, false
	}
	var v float64
	switch x := p.Properties["security-severity"].(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, false
		}
		v = f
	case float64:
		v = x
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		v = f
	default:
		return 0, false
	}
	return v, v >= 0 && v <= 10
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func text(m *sarif.MultiformatMessageString) string {
	if m == nil {
		return ""
	}
	return str(m.Text)
}

// jsonProblem says where JSON went wrong without repeating its content.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if len(field) > 64 {
			field = field[:64]
		}
		return fmt.Sprintf("%s holds a %s where another type belongs (byte %d)", field, te.Value, te.Offset)
	}
	return "it does not decode"
}
