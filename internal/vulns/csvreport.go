package vulns

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// csvColumns are the names a CSV report's header may give each column:
// medguard's own (rule_id, title, severity, …), Chinese ones, and those of
// a Nessus-style export ("Plugin ID", "CVE", "Risk", "Host", "Port",
// "Name", "Synopsis", "Solution", "CVSS v3.0 Base Score", …). Other
// columns are ignored.
var csvColumns = map[string]string{
	"rule_id": "rule_id", "id": "rule_id", "plugin id": "rule_id", "vulnerability id": "rule_id", "漏洞编号": "rule_id",
	"cve": "cve", "cves": "cve", "cve编号": "cve",
	"title": "title", "name": "title", "漏洞名称": "title",
	"severity": "severity", "risk": "severity", "风险等级": "severity", "危险等级": "severity",
	"score": "score", "cvss": "score", "cvss_score": "score", "cvss v3.0 base score": "score", "cvss v2.0 base score": "score2", "评分": "score",
	"location": "location", "path": "location", "file": "location", "位置": "location",
	"host": "host", "ip": "host", "主机": "host",
	"port": "port", "端口": "port",
	"protocol": "protocol", "协议": "protocol",
	"package": "package", "pkg": "package", "component": "package", "组件": "package",
	"installed_version": "installed_version", "version": "installed_version", "版本": "installed_version",
	"fixed_version": "fixed_version", "fixed in": "fixed_version", "修复版本": "fixed_version",
	"description": "description", "描述": "description", "synopsis": "synopsis", "摘要": "synopsis",
	"solution": "solution", "修复建议": "solution",
	"reference": "reference", "see also": "reference", "参考": "reference",
}

// csvSeverity reads a severity word: English (any case), Chinese, or a
// Nessus "None"/informational, which is not a finding ("", true).
func csvSeverity(v string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "critical", "严重", "紧急", "超危":
		return Critical, true
	case "high", "高", "高危":
		return High, true
	case "medium", "moderate", "中", "中危":
		return Medium, true
	case "low", "低", "低危":
		return Low, true
	case "none", "info", "informational", "信息", "无":
		return "", true
	}
	return "", false
}

// ParseCSV reads a CSV report (UTF-8, optional byte order mark,
// comma-separated, a header row) with encoding/csv. A row needs an id
// (rule_id, or a CVE) and a severity word or a score; informational rows
// ("None") are skipped. The fingerprint is the id with the host and port,
// the location or the package. Errors name the line and the column.
func ParseCSV(data []byte) (*Report, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !utf8.Valid(data) {
		return nil, bad("the report is not UTF-8 text")
	}
	rd := csv.NewReader(bytes.NewReader(data))
	rd.FieldsPerRecord = 0
	head, err := rd.Read()
	if errors.Is(err, io.EOF) {
		return nil, bad("the report is empty: it needs a header row")
	}
	if err != nil {
		return nil, csvProblem(err)
	}
	cols := make([]string, len(head))
	for i, h := range head {
		name := csvColumns[strings.ToLower(strings.TrimSpace(h))]
		if name != "" && slices.Contains(cols, name) {
			return nil, bad("line 1, column %s: the column appears twice", name)
		}
		cols[i] = name
	}
	has := func(c string) bool { return slices.Contains(cols, c) }
	switch {
	case !has("rule_id") && !has("cve"):
		return nil, bad("line 1: the header needs a rule_id or cve column")
	case !has("severity") && !has("score") && !has("score2"):
		return nil, bad("line 1: the header needs a severity or score column")
	}
	r := &Report{Tool: "csv"}
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvProblem(err)
		}
		ln, _ := rd.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		v := map[string]string{}
		for i, x := range rec {
			if cols[i] != "" {
				v[cols[i]] = strings.TrimSpace(x)
			}
		}
		f := Finding{RuleID: v["rule_id"], Title: v["title"], Location: v["location"], Package: v["package"],
			InstalledVersion: v["installed_version"], FixedVersion: v["fixed_version"], Description: v["description"], Reference: v["reference"]}
		f.CVEs = cves(v["cve"])
		if f.RuleID == "" && len(f.CVEs) > 0 {
			f.RuleID = f.CVEs[0]
		}
		if f.RuleID == "" {
			return nil, bad("line %d, column rule_id: no id or CVE", ln)
		}
		for _, c := range []string{"score", "score2"} {
			if s := v[c]; s != "" && f.Score == 0 {
				n, err := strconv.ParseFloat(s, 64)
				if err != nil || n < 0 || n > 10 {
					return nil, bad("line %d, column score: not a score from 0 to 10", ln)
				}
				f.Score = n
			}
		}
		switch sev, ok := csvSeverity(v["severity"]); {
		case v["severity"] != "" && !ok:
			return nil, bad("line %d, column severity: not critical, high, medium, low or none (严重/高/中/低)", ln)
		case v["severity"] != "" && sev == "":
			continue // informational
		case sev != "":
			f.Severity = sev
		case f.Score > 0:
			f.Severity = SeverityOf(f.Score)
		default:
			return nil, bad("line %d, column severity: no severity and no score", ln)
		}
		if s := v["synopsis"]; s != "" && !strings.Contains(f.Description, s) {
			f.Description = strings.TrimSpace(s + "\n\n" + f.Description)
		}
		if s := v["solution"]; s != "" {
			f.Description = strings.TrimSpace(f.Description + "\n\nSolution: " + s)
		}
		port := v["port"]
		if p := v["protocol"]; p != "" && port != "" {
			port += "/" + strings.ToLower(p)
		}
		place := strings.TrimSpace(v["host"] + " " + port)
		switch {
		case place != "":
			f.Location, f.Key = strings.TrimSpace(place+" "+f.Location), v["host"]+"\x00"+port+"\x00"+f.Location
		case f.Location != "":
			f.Key = f.Location + "\x00" + f.Package
		default:
			f.Key = f.Package
		}
		if f.Package != "" {
			f.Location = strings.TrimSpace(f.Location + " " + f.Package + " " + f.InstalledVersion)
		}
		r.Findings = append(r.Findings, f)
		if len(r.Findings) > MaxFindings {
			return nil, bad("the report holds more than %d findings", MaxFindings)
		}
	}
	return r, nil
}

// csvProblem says where a file stops being CSV.
func csvProblem(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return bad("line %d, column %d: the report is not valid CSV (%s)", pe.Line, pe.Column, pe.Err)
	}
	return bad("the report is not valid CSV: %s", fmt.Sprint(err))
}
