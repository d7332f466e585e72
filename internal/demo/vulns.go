package demo

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"medguard/internal/assets"
	"medguard/internal/policy"
	"medguard/internal/vulns"
)

// The asset register and a year of vulnerability scans (issue 13): the
// hospital's assets — the records system's application, container and
// database, the imaging and laboratory servers, the records office's
// workstations, medical devices, the core switch and the firewall, a
// mobile terminal and an electrocardiograph never scanned, a retired
// server — imported from a CSV file on the first day; then a year of
// scans (weekly for the records system, monthly for the others until the
// last quarter, weekly since) in each scanner's own format (SARIF, Trivy
// JSON, OpenVAS XML, CSV), whose findings the IT engineers and security
// officers take through every state: confirmed, fixing, fixed, verified
// in test, deployed; a risk accepted and a false positive by four eyes;
// findings a later scan no longer finds (proposed as fixed), one found
// again after its fix (reopened), recent ones still new, overdue ones
// alerted; exports suspended while Log4Shell on the records system was
// open. One workstation's scans stopped three weeks ago: it is listed as
// late. The tables are embedded data files.

//go:embed data/vulns_assets.csv
var demoAssets []byte

//go:embed data/vulns_findings.csv
var demoFindings []byte

// demoAsset is a row of data/vulns_assets.csv.
type demoAsset struct {
	row     map[string]string
	id      string
	tool    string
	cadence string
	index   int
}

// demoFinding is a row of data/vulns_findings.csv.
type demoFinding struct {
	tool, rule, title, severity, where, pkg, version, fixed string
	score                                                   float64
}

// readTable reads an embedded CSV table into rows by column name.
func readTable(data []byte) ([]map[string]string, error) {
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(recs) < 2 {
		return nil, fmt.Errorf("demo: a data table: %v", err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out, nil
}

// The plans of a finding over the year: the state it ends in and how it
// gets there.
const (
	planDeployed  = "deployed"
	planVerified  = "verified"
	planFixed     = "fixed"
	planFixing    = "fixing"
	planConfirmed = "confirmed"
	planAccepted  = "accepted"
	planFalse     = "false_positive"
	planProposed  = "proposed"
	planReopened  = "reopened"
	planNew       = "new"
)

// findingPlans cycles over the findings so that every state is reached.
var findingPlans = []string{planDeployed, planVerified, planFixing, planConfirmed, planAccepted, planDeployed, planFalse, planProposed,
	planReopened, planNew, planFixed, planDeployed}

// demoCase is one finding on one asset over the year.
type demoCase struct {
	asset *demoAsset
	f     demoFinding
	plan  string
	// appear is the first scan day that finds it; fix the day it is
	// fixed (absent from later scans); gone the scan day after which a
	// proposed one is no longer found; back the day a reopened one is
	// found again.
	appear, fix, gone, back int
	// id is the vulnerability's, once known.
	id string
}

// present reports whether a scan on day finds the case.
func (c *demoCase) present(day int) bool {
	switch {
	case day < c.appear:
		return false
	case c.plan == planProposed:
		return day <= c.gone
	case c.plan == planReopened:
		return day <= c.fix || day >= c.back
	case c.fix > 0:
		return day <= c.fix
	}
	return true
}

// demoEvent is something done at a time during the simulated year.
type demoEvent struct {
	at  time.Time
	seq int
	do  func() error
}

// vulnerabilities builds the asset register and the year of scans.
func (l *loader) vulnerabilities(ctx context.Context) error {
	engineers, officers := l.roles["it_engineer"], append([]*Staff{}, l.roles["security_officer"]...)
	if l.svc.Assets == nil || l.svc.Vulns == nil || len(engineers) < 2 || len(officers) == 0 {
		return nil
	}
	officers = append(officers, &Staff{Username: "security", call: l.security})
	rows, err := readTable(demoAssets)
	if err != nil {
		return err
	}
	frows, err := readTable(demoFindings)
	if err != nil {
		return err
	}
	at := func(day int, hour time.Duration) time.Time { return l.dayStart(day).Add(hour) }

	// The register, from a spreadsheet on the first day: end-of-support
	// dates relative to the year, owners among the IT engineers.
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"资产编号", "资产名称", "资产类型", "负责人", "科室", "存放位置", "IP地址", "数据分级", "标签", "停止支持日期", "病案系统"})
	var as []*demoAsset
	for i, r := range rows {
		eos := ""
		if d, err := strconv.Atoi(r["eos_days"]); err == nil {
			eos = l.dayStart(lastDay + d).Format("2006-01-02")
		}
		w.Write([]string{r["code"], r["name"], r["kind"], engineers[i%len(engineers)].Username, r["department"], r["location"], r["address"],
			r["classification"], r["labels"], eos, r["records_system"]})
		as = append(as, &demoAsset{row: r, tool: r["tool"], cadence: r["cadence"], index: i})
	}
	w.Flush()
	l.clock.Set(at(0, workStart+time.Hour))
	if _, err := l.svc.Assets.Import(ctx, engineers[0].call, buf.Bytes()); err != nil {
		return fmt.Errorf("the asset register: %w", err)
	}
	list, _, err := l.svc.Assets.List(ctx, engineers[0].call, assets.Query{})
	if err != nil {
		return err
	}
	byCode := map[string]string{}
	for _, a := range list {
		byCode[a.Code] = a.ID
	}
	for _, a := range as {
		a.id = byCode[a.row["code"]]
		l.sum.Assets++
	}

	// The findings of each tool, and each asset's scan days.
	byTool := map[string][]demoFinding{}
	for _, r := range frows {
		score, _ := strconv.ParseFloat(r["score"], 64)
		byTool[r["tool"]] = append(byTool[r["tool"]], demoFinding{tool: r["tool"], rule: r["rule_id"], title: r["title"], severity: r["severity"],
			where: r["where"], pkg: r["package"], version: r["version"], fixed: r["fixed_version"], score: score})
	}
	// The records system is scanned weekly all year; the other assets
	// monthly, then weekly in the last quarter (the hospital's new
	// cadence); one workstation's scans stopped three weeks ago.
	scanDays := func(a *demoAsset) []int {
		end := lastDay
		switch a.cadence {
		case "weekly", "monthly":
		case "stopped":
			end = lastDay - 21
		default:
			return nil
		}
		// Counted back from the end, so that the last scan is at most six
		// days old: every asset scanned is within the week's cadence.
		quarter := lastDay - 91
		var days []int
		for d, week := end-a.index%6, 0; d >= 1; d, week = d-7, week+1 {
			if a.cadence == "weekly" || d >= quarter || week%4 == 0 {
				days = append([]int{d}, days...)
			}
		}
		return days
	}
	var events []demoEvent
	add := func(t time.Time, do func() error) {
		events = append(events, demoEvent{at: t, seq: len(events), do: do})
	}
	vulnID := func(c *demoCase) (string, error) {
		if c.id != "" {
			return c.id, nil
		}
		vs, _, err := l.svc.Vulns.List(ctx, engineers[0].call, vulns.Query{AssetID: c.asset.id, Text: c.f.rule})
		if err != nil {
			return "", err
		}
		for _, v := range vs {
			if v.RuleID == c.f.rule {
				c.id = v.ID
				return v.ID, nil
			}
		}
		return "", fmt.Errorf("no vulnerability %s on %s", c.f.rule, c.asset.row["code"])
	}
	move := func(c *demoCase, who *Staff, to, note string) func() error {
		return func() error {
			id, err := vulnID(c)
			if err != nil {
				return err
			}
			_, err = l.svc.Vulns.SetStatus(ctx, who.call, id, vulns.Transition{Status: to, Note: note})
			return err
		}
	}
	slaDays := map[string]int{vulns.Critical: 1, vulns.High: 1, vulns.Medium: 3, vulns.Low: 10}
	var cases []*demoCase
	planIndex, suspended := 0, false
	for _, a := range as {
		days := scanDays(a)
		fs := byTool[a.tool]
		if len(days) < 8 || len(fs) == 0 {
			continue
		}
		n := min(len(fs), 5+l.rnd.IntN(3))
		picks := l.rnd.Perm(len(fs))[:n]
		log4shell := a.tool == vulns.Trivy && a.row["records_system"] == "是"
		if log4shell {
			// The records system's image carries Log4Shell (the table's
			// first row) early in the year: exports are suspended until it
			// is fixed.
			picks = append([]int{0}, slicesWithout(picks, 0)...)[:n]
		}
		for j, k := range picks {
			c := &demoCase{asset: a, f: fs[k], plan: findingPlans[planIndex%len(findingPlans)]}
			if log4shell && j == 0 {
				c.plan = planDeployed
			} else {
				planIndex++
			}
			// Early scans for most; the last scans for the recent ones.
			pick := func(from, to int) int { return days[from+l.rnd.IntN(max(to-from, 1))] }
			switch c.plan {
			case planNew:
				c.appear = days[len(days)-1]
			case planFixed:
				c.appear = days[0]
				for _, d := range days {
					if d+slaDays[c.f.severity] < lastDay && d > c.appear {
						c.appear = d
					}
				}
			default:
				c.appear = pick(0, len(days)*2/3)
			}
			fixAfter := slaDays[c.f.severity]
			switch c.plan {
			case planDeployed, planVerified, planFixed, planReopened:
				c.fix = c.appear + fixAfter
			case planProposed:
				c.gone = days[len(days)-3]
				if c.gone <= c.appear {
					c.plan = planConfirmed
				}
			}
			if c.plan == planReopened {
				c.back = c.fix + 28
				if c.back > lastDay-7 {
					c.plan = planDeployed
				}
			}
			cases = append(cases, c)
			eng, other := engineers[(a.index+j)%len(engineers)], engineers[(a.index+j+1)%len(engineers)]
			officer := officers[(a.index+j)%len(officers)]
			day := c.appear
			switch c.plan {
			case planDeployed, planVerified, planFixed, planReopened:
				add(at(day, workStart+2*time.Hour), move(c, eng, vulns.StatusConfirmed, "已复现，影响生产环境"))
				if !suspended && c.f.severity == vulns.Critical && a.row["records_system"] == "是" {
					// Log4Shell-like: exports and copies suspended until the fix.
					suspended = true
					add(at(day, workStart+3*time.Hour), func() error {
						id, err := vulnID(c)
						if err != nil {
							return err
						}
						_, err = l.svc.Vulns.Suspend(ctx, officer.call, id, vulns.NewSuspension{
							Actions: []policy.Permission{policy.RecordExport, policy.CopyManage},
							Reason:  "病案系统严重漏洞，修复前暂停病历导出与复印（病案室暂停相关操作）"})
						if err == nil {
							l.sum.Suspensions++
						}
						return err
					})
				}
				add(at(day, workStart+4*time.Hour), move(c, eng, vulns.StatusFixing, ""))
				add(at(c.fix, workStart+6*time.Hour), move(c, eng, vulns.StatusFixed, "已升级并重启服务"))
				if c.plan != planFixed {
					add(at(c.fix+1, workStart+2*time.Hour), move(c, other, vulns.StatusVerified, "测试环境复扫未再发现"))
				}
				if c.plan == planDeployed || c.plan == planReopened {
					add(at(c.fix+3, workStart+5*time.Hour), move(c, officer, vulns.StatusDeployed, "分批上线完成"))
				}
			case planFixing:
				add(at(day+1, workStart+time.Hour), move(c, eng, vulns.StatusConfirmed, ""))
				add(at(day+2, workStart+time.Hour), move(c, eng, vulns.StatusFixing, "等待厂商补丁"))
			case planConfirmed, planProposed:
				add(at(day+1, workStart+time.Hour), move(c, eng, vulns.StatusConfirmed, "已确认，排期修复"))
			case planAccepted, planFalse:
				outcome, reason := vulns.StatusAccepted, "设备厂商不再提供补丁，已隔离网段并加强访问控制，接受剩余风险"
				if c.plan == planFalse {
					outcome, reason = vulns.StatusFalsePositive, "人工核查该版本已打补丁，扫描器按版本号误报"
				}
				var approvalID string
				add(at(day+2, workStart+time.Hour), func() error {
					id, err := vulnID(c)
					if err != nil {
						return err
					}
					req, err := vulns.ExceptionRequest(id, vulns.NewException{Outcome: outcome, Reason: reason})
					if err != nil {
						return err
					}
					ap, err := l.svc.Approvals.Request(ctx, eng.call, req)
					if err == nil {
						approvalID = ap.ID
					}
					return err
				})
				add(at(day+2, workStart+5*time.Hour), func() error {
					_, err := l.svc.Approvals.Approve(ctx, officer.call, approvalID, "同意")
					return err
				})
			}
		}
	}
	// The scans, each in its tool's format, dated 02:00 and imported in
	// the morning by an IT engineer.
	for _, a := range as {
		for i, day := range scanDays(a) {
			a, day, i := a, day, i
			var found []demoFinding
			for _, c := range cases {
				if c.asset == a && c.present(day) {
					found = append(found, c.f)
				}
			}
			add(at(day, workStart+30*time.Minute), func() error {
				report, format := demoReport(a, found, at(day, 2*time.Hour))
				_, err := l.svc.Vulns.Import(ctx, engineers[i%len(engineers)].call, vulns.Import{AssetID: a.id, Format: format, Report: report})
				if err == nil {
					l.sum.Scans++
				}
				return err
			})
		}
	}
	// The retired server leaves the register's cadence.
	for _, a := range as {
		if a.cadence == "retired" {
			retired := assets.Retired
			add(at(100, workStart+time.Hour), func() error {
				_, err := l.svc.Assets.Update(ctx, engineers[0].call, a.id, assets.Changes{Status: &retired})
				return err
			})
		}
	}
	sort.SliceStable(events, func(i, j int) bool {
		if !events[i].at.Equal(events[j].at) {
			return events[i].at.Before(events[j].at)
		}
		return events[i].seq < events[j].seq
	})
	for _, e := range events {
		l.clock.Set(e.at)
		if err := e.do(); err != nil {
			return err
		}
	}
	// What is overdue now is announced (alerts), as the server would.
	l.clock.Set(at(lastDay, workStart+9*time.Hour))
	if _, err := l.svc.Vulns.CheckOverdue(ctx); err != nil {
		return err
	}
	vs, _, err := l.svc.Vulns.List(ctx, engineers[0].call, vulns.Query{})
	l.sum.Vulns = len(vs)
	return err
}

func slicesWithout(xs []int, x int) []int {
	var out []int
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}

// demoReport writes a scan of an asset in its tool's format.
func demoReport(a *demoAsset, found []demoFinding, scanned time.Time) ([]byte, string) {
	host := a.row["address"]
	stamp := scanned.UTC().Format(time.RFC3339)
	hash := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:8])
	}
	switch a.tool {
	case vulns.Trivy:
		type vuln struct {
			VulnerabilityID  string
			PkgName          string
			InstalledVersion string
			FixedVersion     string `json:",omitempty"`
			Title            string
			Description      string
			Severity         string
			CVSS             map[string]map[string]float64
		}
		target := a.row["name"] + "镜像 3.8.2"
		var vs []vuln
		for _, f := range found {
			vs = append(vs, vuln{VulnerabilityID: f.rule, PkgName: f.pkg, InstalledVersion: f.version, FixedVersion: f.fixed, Title: f.title,
				Description: f.title + "，请升级到修复版本。", Severity: strings.ToUpper(f.severity),
				CVSS: map[string]map[string]float64{"nvd": {"V3Score": f.score}}})
		}
		b, _ := json.Marshal(map[string]any{"SchemaVersion": 2, "CreatedAt": stamp, "ArtifactName": target, "ArtifactType": "container_image",
			"Results": []map[string]any{{"Target": target, "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": vs}}})
		return b, vulns.Trivy
	case vulns.SARIF:
		var rules, results []map[string]any
		for _, f := range found {
			file, line, _ := strings.Cut(f.where, ":")
			n, _ := strconv.Atoi(line)
			rules = append(rules, map[string]any{"id": f.rule, "shortDescription": map[string]string{"text": f.title},
				"fullDescription": map[string]string{"text": f.title + "：来自用户的输入未经校验即被使用。"},
				"properties":      map[string]any{"security-severity": strconv.FormatFloat(f.score, 'f', 1, 64), "tags": []string{"security"}}})
			results = append(results, map[string]any{"ruleId": f.rule, "level": "error", "message": map[string]string{"text": f.title + "：存在可被利用的数据流。"},
				"locations": []any{map[string]any{"physicalLocation": map[string]any{"artifactLocation": map[string]string{"uri": file},
					"region": map[string]int{"startLine": n}}}},
				"partialFingerprints": map[string]string{"primaryLocationLineHash": hash(f.rule+file) + ":1"}})
		}
		b, _ := json.Marshal(map[string]any{"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
			"runs": []any{map[string]any{"tool": map[string]any{"driver": map[string]any{"name": "CodeQL", "semanticVersion": "2.17.2", "rules": rules}},
				"invocations": []any{map[string]any{"executionSuccessful": true, "startTimeUtc": stamp, "endTimeUtc": stamp}}, "results": results}}})
		return b, vulns.SARIF
	case vulns.OpenVAS:
		var b strings.Builder
		esc := func(s string) string {
			var e bytes.Buffer
			xml.EscapeText(&e, []byte(s))
			return e.String()
		}
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<get_reports_response status="200" status_text="OK"><report id="%s" format_id="a994b278-1f62-11e1-96ac-406186ea4fc5">`+
			`<creation_time>%s</creation_time><report id="%s"><scan_run_status>Done</scan_run_status><scan_start>%s</scan_start><results start="1" max="100">`,
			hash(host+stamp), stamp, hash(host+stamp), stamp)
		for _, f := range found {
			fmt.Fprintf(&b, `<result id="%s"><name>%s</name><host>%s</host><port>%s</port><nvt oid="%s"><type>nvt</type><name>%s</name>`+
				`<cvss_base>%.1f</cvss_base><tags>summary=%s|solution=升级到厂商发布的修复版本|solution_type=VendorFix</tags></nvt>`+
				`<severity>%.1f</severity><description>%s</description></result>`,
				hash(f.rule+host), esc(f.title), esc(host), esc(f.where), esc(f.rule), esc(f.title), f.score, esc(f.title), f.score, esc("检测到存在漏洞的版本"))
		}
		b.WriteString(`</results></report></report></get_reports_response>`)
		return []byte(b.String()), vulns.OpenVAS
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"漏洞编号", "漏洞名称", "风险等级", "评分", "主机", "端口", "描述", "修复建议"})
	words := map[string]string{vulns.Critical: "严重", vulns.High: "高", vulns.Medium: "中", vulns.Low: "低"}
	for _, f := range found {
		w.Write([]string{f.rule, f.title, words[f.severity], strconv.FormatFloat(f.score, 'f', 1, 64), host, f.where, f.title + "。", "安装厂商补丁或调整配置"})
	}
	w.Flush()
	return b.Bytes(), vulns.CSV
}
