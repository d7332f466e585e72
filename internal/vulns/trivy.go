package vulns

import (
	"bytes"
	"encoding/json"
	"strings"
)

// trivyReport is the part of Trivy's JSON report (schema version 2, `trivy
// image --format json`, `trivy fs --format json`) that medguard reads.
type trivyReport struct {
	SchemaVersion int    `json:"SchemaVersion"`
	CreatedAt     string `json:"CreatedAt"`
	ArtifactName  string `json:"ArtifactName"`
	Results       []struct {
		Target          string `json:"Target"`
		Vulnerabilities []struct {
			VulnerabilityID  string   `json:"VulnerabilityID"`
			PkgName          string   `json:"PkgName"`
			PkgPath          string   `json:"PkgPath"`
			InstalledVersion string   `json:"InstalledVersion"`
			FixedVersion     string   `json:"FixedVersion"`
			PrimaryURL       string   `json:"PrimaryURL"`
			Title            string   `json:"Title"`
			Description      string   `json:"Description"`
			Severity         string   `json:"Severity"`
			References       []string `json:"References"`
			CVSS             map[string]struct {
				V3Score float64 `json:"V3Score"`
				V2Score float64 `json:"V2Score"`
			} `json:"CVSS"`
		} `json:"Vulnerabilities"`
	} `json:"Results"`
}

// ParseTrivy reads Trivy's JSON report (schema version 2) with
// encoding/json: each vulnerability of each target is a finding, its
// severity Trivy's own (CRITICAL, HIGH, MEDIUM, LOW; UNKNOWN is taken from
// the highest CVSS score given, low without one). The fingerprint is the
// vulnerability, the target and the package — not its version, so that a
// package upgraded but still vulnerable stays the same finding.
func ParseTrivy(data []byte) (*Report, error) {
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
		return nil, bad("the report is not a Trivy JSON report (a JSON object)")
	}
	var t trivyReport
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, bad("the report is not a Trivy JSON report: %s", jsonProblem(err))
	}
	if t.SchemaVersion != 2 {
		return nil, bad("the report is not a Trivy JSON report of schema version 2 (SchemaVersion %d)", t.SchemaVersion)
	}
	r := &Report{Tool: "trivy", ScannedAt: parseTime(t.CreatedAt)}
	for i, res := range t.Results {
		for j, v := range res.Vulnerabilities {
			if v.VulnerabilityID == "" {
				return nil, bad("result %d, vulnerability %d: no VulnerabilityID", i+1, j+1)
			}
			score := 0.0
			for _, c := range v.CVSS {
				score = max(score, c.V3Score, c.V2Score)
			}
			f := Finding{RuleID: v.VulnerabilityID, Title: v.Title, Score: score, Package: v.PkgName, InstalledVersion: v.InstalledVersion,
				FixedVersion: v.FixedVersion, Description: v.Description, Reference: v.PrimaryURL}
			switch strings.ToUpper(v.Severity) {
			case "CRITICAL":
				f.Severity = Critical
			case "HIGH":
				f.Severity = High
			case "MEDIUM":
				f.Severity = Medium
			case "LOW":
				f.Severity = Low
			case "UNKNOWN", "":
				f.Severity = Low
				if score > 0 {
					f.Severity = SeverityOf(score)
				}
			default:
				return nil, bad("result %d, vulnerability %d: unknown Severity %q", i+1, j+1, clean(v.Severity, 16, false))
			}
			if f.Reference == "" && len(v.References) > 0 {
				f.Reference = v.References[0]
			}
			pkg := v.PkgName
			if v.PkgPath != "" {
				pkg = v.PkgPath + " " + pkg
			}
			f.Location = strings.TrimSpace(res.Target + ": " + pkg + " " + v.InstalledVersion)
			f.Key = res.Target + "\x00" + pkg
			r.Findings = append(r.Findings, f)
			if len(r.Findings) > MaxFindings {
				return nil, bad("the report holds more than %d findings", MaxFindings)
			}
		}
	}
	return r, nil
}
