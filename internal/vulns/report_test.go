package vulns_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/vulns"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bySeverity counts findings per severity.
func bySeverity(fs []vulns.Finding) string {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Severity]++
	}
	var parts []string
	for _, s := range vulns.Severities {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, n[s]))
		}
	}
	return strings.Join(parts, " ")
}

// TestParseSamples reads a real-format report of each format: CodeQL's
// SARIF for the records system's web application, Trivy's JSON for its
// container image, Greenbone's XML for its database server, and a
// Nessus-style CSV for the imaging archive.
func TestParseSamples(t *testing.T) {
	for _, c := range []struct {
		format, file, tool string
		at                 time.Time
		severities         string
		check              func(t *testing.T, r *vulns.Report)
	}{
		{vulns.SARIF, "codeql-emr-web.sarif", "codeql", time.Date(2026, 12, 3, 2, 6, 40, 118e6, time.UTC),
			"critical=1 high=2 medium=2 low=1", func(t *testing.T, r *vulns.Report) {
				f := find(t, r, "java/unsafe-deserialization", "")
				if f.Score != 9.8 || f.Title != "Deserialization of user-controlled data" || f.Location != "src/main/java/cn/hospital/emr/api/ImportController.java:58" ||
					f.Reference == "" || !strings.Contains(f.Description, "Unsafe deserialization depends on") {
					t.Errorf("deserialization %+v", f)
				}
				if f := find(t, r, "java/insecure-cookie", ""); f.Severity != vulns.Medium || f.Score != 5 {
					t.Errorf("a numeric security-severity %+v", f)
				}
				if f := find(t, r, "java/weak-cryptographic-algorithm", ""); f.Severity != vulns.Medium || f.Score != 0 {
					t.Errorf("the rule's default level %+v", f)
				}
				if f := find(t, r, "java/unused-parameter", ""); f.Severity != vulns.Low {
					t.Errorf("a note %+v", f)
				}
				for _, f := range r.Findings {
					if strings.Contains(f.Location, "src/test/") {
						t.Errorf("a suppressed result was kept: %+v", f)
					}
				}
			}},
		{vulns.Trivy, "trivy-emr-image.json", "trivy", time.Date(2026, 12, 3, 19, 15, 27, 481920113, time.UTC),
			"critical=3 high=1 medium=1 low=1", func(t *testing.T, r *vulns.Report) {
				f := find(t, r, "CVE-2021-44228", "")
				if f.Package != "org.apache.logging.log4j:log4j-core" || f.InstalledVersion != "2.14.1" || f.FixedVersion != "2.15.0, 2.3.1, 2.12.2" ||
					f.Score != 10 || !strings.Contains(f.Location, "log4j-core-2.14.1.jar") || f.Reference != "https://avd.aquasec.com/nvd/cve-2021-44228" {
					t.Errorf("log4shell %+v", f)
				}
				if f := find(t, r, "CVE-2023-45853", ""); f.Severity != vulns.Low {
					t.Errorf("Trivy's own severity wins over the score: %+v", f)
				}
				if f := find(t, r, "CVE-2023-4039", ""); f.Severity != vulns.Medium {
					t.Errorf("UNKNOWN with a 4.8: %+v", f)
				}
			}},
		{vulns.OpenVAS, "openvas-emr-db.xml", "openvas", time.Date(2026, 12, 5, 1, 0, 4, 0, time.UTC),
			"high=2 medium=1 low=1", func(t *testing.T, r *vulns.Report) {
				f := find(t, r, "1.3.6.1.4.1.25623.1.0.153432", "")
				if f.Location != "10.20.1.11 5432/tcp" || len(f.CVEs) != 4 || f.Score != 8.8 || !strings.Contains(f.Description, "Solution: Update to version 12.21") {
					t.Errorf("PostgreSQL %+v", f)
				}
				if f := find(t, r, "1.3.6.1.4.1.25623.1.0.114673", ""); f.Reference != "https://www.qualys.com/regresshion-cve-2024-6387/" ||
					!slices.Equal(f.CVEs, []string{"CVE-2024-6387"}) {
					t.Errorf("regreSSHion %+v", f)
				}
			}},
		{vulns.CSV, "nessus-pacs.csv", "csv", time.Time{}, "critical=1 high=1 medium=2", func(t *testing.T, r *vulns.Report) {
			f := find(t, r, "97833", "")
			if f.Location != "10.20.2.21 445/tcp" || !slices.Equal(f.CVEs, []string{"CVE-2017-0143", "CVE-2017-0144"}) ||
				f.Reference != "https://technet.microsoft.com/library/security/MS17-010" || f.Score != 10 {
				t.Errorf("MS17-010, two rows merged: %+v", f)
			}
			if f := find(t, r, "42873", ""); f.Severity != vulns.High {
				t.Errorf("the Risk column wins over the score: %+v", f)
			}
		}},
	} {
		t.Run(c.format, func(t *testing.T) {
			r, err := vulns.Parse(c.format, sample(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Tool != c.tool || !r.ScannedAt.Equal(c.at) {
				t.Errorf("tool %q at %v, want %q at %v", r.Tool, r.ScannedAt, c.tool, c.at)
			}
			if got := bySeverity(r.Findings); got != c.severities {
				t.Errorf("severities %s, want %s", got, c.severities)
			}
			seen := map[string]bool{}
			for _, f := range r.Findings {
				if seen[f.Fingerprint()] {
					t.Errorf("two findings share a fingerprint: %+v", f)
				}
				seen[f.Fingerprint()] = true
			}
			c.check(t, r)
		})
	}
}

func find(t *testing.T, r *vulns.Report, rule, key string) vulns.Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.RuleID == rule && (key == "" || f.Key == key) {
			return f
		}
	}
	t.Fatalf("no finding %s in %+v", rule, r.Findings)
	return vulns.Finding{}
}

// TestSecuritySeverity is the SARIF severity table: security-severity
// first (of the result, then of its rule), the level after.
func TestSecuritySeverity(t *testing.T) {
	for _, c := range []struct {
		result, rule, level string
		want                string
	}{
		{`"security-severity": "9.0"`, ``, ``, vulns.Critical},
		{`"security-severity": "8.9"`, ``, ``, vulns.High},
		{`"security-severity": "7.0"`, ``, ``, vulns.High},
		{`"security-severity": "6.9"`, ``, `"level": "error",`, vulns.Medium},
		{`"security-severity": "4"`, ``, ``, vulns.Medium},
		{`"security-severity": "3.9"`, ``, ``, vulns.Low},
		{`"security-severity": 10`, ``, ``, vulns.Critical},
		{``, `"security-severity": "9.8"`, `"level": "note",`, vulns.Critical},
		{`"security-severity": "2.0"`, `"security-severity": "9.8"`, ``, vulns.Low},
		{`"security-severity": "high"`, ``, `"level": "error",`, vulns.High},
		{`"security-severity": "11"`, ``, `"level": "warning",`, vulns.Medium},
		{``, ``, `"level": "error",`, vulns.High},
		{``, ``, `"level": "warning",`, vulns.Medium},
		{``, ``, `"level": "note",`, vulns.Low},
		{``, ``, `"level": "none",`, vulns.Low},
		{``, ``, ``, vulns.Medium},
	} {
		doc := `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "semgrep", "rules": [{"id": "r1", "properties": {` + c.rule + `}}]}},
			"results": [{"ruleId": "r1", ` + c.level + ` "message": {"text": "m"}, "properties": {` + c.result + `}}]}]}`
		r, err := vulns.Parse(vulns.SARIF, []byte(doc))
		if err != nil {
			t.Fatalf("%s / %s / %s: %v", c.result, c.rule, c.level, err)
		}
		if len(r.Findings) != 1 || r.Findings[0].Severity != c.want {
			t.Errorf("%s / %s / %s: %+v, want %s", c.result, c.rule, c.level, r.Findings, c.want)
		}
	}
}

// TestBadReports refuses what is not a report of its format, naming the
// field "report" and, where it can, the place, without repeating the
// report's content.
func TestBadReports(t *testing.T) {
	secret := "张三丰 110105194912310021"
	for _, c := range []struct {
		name, format, data, says string
	}{
		{"unknown format", "nessus", `{}`, "format must be"},
		{"not JSON", vulns.SARIF, `<xml/>`, "not a SARIF log"},
		{"SARIF 2.0", vulns.SARIF, `{"version": "2.0.0", "runs": []}`, "not SARIF 2.1.0"},
		{"broken JSON", vulns.SARIF, `{"version": "2.1.0", "runs": [` + secret, "syntax error"},
		{"wrong types", vulns.SARIF, `{"version": "2.1.0", "runs": "` + secret + `"}`, "runs"},
		{"no rule", vulns.SARIF, `{"version": "2.1.0", "runs": [{"results": [{"message": {"text": "` + secret + `"}}]}]}`, "run 1, result 1: no rule id"},
		{"a strange level", vulns.SARIF, `{"version": "2.1.0", "runs": [{"results": [{"ruleId": "x", "level": "fatal"}]}]}`, "unknown level"},
		{"Trivy schema 1", vulns.Trivy, `{"SchemaVersion": 1, "Results": []}`, "schema version 2"},
		{"Trivy without id", vulns.Trivy, `{"SchemaVersion": 2, "Results": [{"Target": "t", "Vulnerabilities": [{"Severity": "HIGH"}]}]}`, "result 1, vulnerability 1"},
		{"Trivy odd severity", vulns.Trivy, `{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-2024-1", "Severity": "SEVERE"}]}]}`, "unknown Severity"},
		{"XML entity", vulns.OpenVAS, `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><report>&x;</report>`, "document type"},
		{"XML undefined entity", vulns.OpenVAS, `<report><results><result><name>&x;</name></result></results></report>`, "not well-formed"},
		{"XML other root", vulns.OpenVAS, `<nessus_report/>`, "not an OpenVAS report"},
		{"XML Latin-1", vulns.OpenVAS, `<?xml version="1.0" encoding="ISO-8859-1"?><report/>`, "UTF-8"},
		{"XML empty", vulns.OpenVAS, ``, "empty"},
		{"XML no severity", vulns.OpenVAS, `<report><results><result><nvt oid="1.2"/><severity>` + secret + `</severity></result></results></report>`, "no numeric severity"},
		{"XML deep", vulns.OpenVAS, "<report>" + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + "</report>", "too deeply"},
		{"CSV no id column", vulns.CSV, "title,severity\nx,high\n", "rule_id or cve"},
		{"CSV no severity column", vulns.CSV, "rule_id,title\nx,y\n", "severity or score"},
		{"CSV bad severity", vulns.CSV, "rule_id,severity\nx,high\ny," + strings.ReplaceAll(secret, " ", "") + "\n", "line 3, column severity"},
		{"CSV bad score", vulns.CSV, "rule_id,score\nx,12\n", "line 2, column score"},
		{"CSV no id", vulns.CSV, "rule_id,cve,severity\n,,high\n", "line 2, column rule_id"},
		{"CSV ragged", vulns.CSV, "rule_id,severity\nx,high,extra\n", "line 2"},
		{"CSV not UTF-8", vulns.CSV, "rule_id,severity\n\xb8\xdf,high\n", "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := vulns.Parse(c.format, []byte(c.data))
			me, ok := err.(*medguard.Error)
			if !ok || me.Kind != medguard.Invalid || (me.Field != "report" && me.Field != "format") {
				t.Fatalf("%v, want an invalid report", err)
			}
			if !strings.Contains(me.Message, c.says) {
				t.Errorf("%q does not say %q", me.Message, c.says)
			}
			if strings.Contains(me.Message, "张三丰") || strings.Contains(me.Message, "110105") {
				t.Errorf("the error repeats the report: %q", me.Message)
			}
		})
	}
}

// TestReportLimits clips long texts, drops control characters (a
// terminal's colour codes keep only their printable part) and
// refuses more than MaxFindings findings.
func TestReportLimits(t *testing.T) {
	long := strings.Repeat("长", 1000)
	doc := `rule_id,title,severity,location,description` + "\n" + `CVE-2024-0001,"` + long + `",high,"a` + "\x1b[31m" + `b","` + long + long + long + long + long + `"` + "\n"
	r, err := vulns.Parse(vulns.CSV, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := r.Findings[0]
	if n := len([]rune(f.Title)); n != 300 || len([]rune(f.Description)) != 4000 || f.Location != "a[31mb" {
		t.Errorf("title %d runes, description %d, location %q", n, len([]rune(f.Description)), f.Location)
	}
	var b bytes.Buffer
	b.WriteString("rule_id,severity,location\n")
	for i := 0; i <= vulns.MaxFindings; i++ {
		fmt.Fprintf(&b, "R%d,low,x\n", i)
	}
	if _, err := vulns.Parse(vulns.CSV, b.Bytes()); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("too many findings: %v", err)
	}
}

// The fuzz tests feed each parser arbitrary bytes from its sample: it
// never panics, and whatever it accepts is a clean report — every finding
// with a rule id, a known severity and texts within their limits.

func fuzzParser(f *testing.F, format string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := vulns.Parse(format, data)
		if err != nil {
			if !medguard.IsKind(err, medguard.Invalid) {
				t.Fatalf("%v is not an invalid report", err)
			}
			return
		}
		if len(r.Findings) > vulns.MaxFindings {
			t.Fatalf("%d findings", len(r.Findings))
		}
		for _, x := range r.Findings {
			if x.RuleID == "" || !slices.Contains(vulns.Severities, x.Severity) || len([]rune(x.Title)) > 300 ||
				strings.ContainsAny(x.Title+x.Location+x.RuleID, "\x00\x1b\n") {
				t.Fatalf("unclean finding %#v", x)
			}
		}
	})
}

func FuzzParseSARIF(f *testing.F) {
	fuzzParser(f, vulns.SARIF, sample(f, "codeql-emr-web.sarif"),
		[]byte(`{"version": "2.1.0", "runs": [{"tool": {"driver": {"rules": [{"id": "a"}]}}, "results": [{"rule": {"index": 0}}]}]}`))
}

func FuzzParseTrivy(f *testing.F) {
	fuzzParser(f, vulns.Trivy, sample(f, "trivy-emr-image.json"),
		[]byte(`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-2024-1", "Severity": "UNKNOWN"}]}]}`))
}

func FuzzParseOpenVAS(f *testing.F) {
	fuzzParser(f, vulns.OpenVAS, sample(f, "openvas-emr-db.xml"),
		[]byte(`<report><results><result><nvt oid="1"/><severity>5</severity></result></results></report>`))
}

func FuzzParseCSV(f *testing.F) {
	fuzzParser(f, vulns.CSV, sample(f, "nessus-pacs.csv"), []byte("rule_id,severity\nx,high\n"))
}
