package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"medguard/internal/rectify"
)

// The rectification register and the quarterly compliance checks over the
// demo year (issue 14): the third-party MLPS assessment's report imported
// in the spring, the quality office's internal audits each season, a few
// failing compliance checks, and the two last quarters' quarterly checks,
// sampled, recorded and published to the department heads (one of whom
// has read the latest); the items go through their owners' reports and
// the security office's verification — some verified, some waiting, some
// sent back, some still open and a few overdue — and the security office
// signs the monthly review of each of the last six months. Everything is
// dated relative to the demo's clock.

// rectifyFinding is a finding of the demo year to put right.
type rectifyFinding struct {
	ref, title, clauses, dept, severity, description string
	// owner is a role (the owner is one of its staff; dept_head: the
	// department's head).
	owner string
	// day is when it is found; due, days later, its deadline.
	day, due int
	// fate is what becomes of it: verified, done, in_progress,
	// reopened, open (overdue when its deadline passed).
	fate string
}

// thirdParty is the MLPS level 3 assessment's report (等保测评), as the
// firm sends it, in CSV with Chinese headers.
var thirdPartyReport = []rectifyFinding{
	{ref: "DJCP-01", title: "堡垒机管理员账户仅口令认证，未启用双因素认证", clauses: "GB/T 22239-2019 8.1.4.1；GB/T 39786-2021 8.4", dept: "ITD", severity: "高", owner: "security_officer", due: 30, fate: "verified"},
	{ref: "DJCP-02", title: "核心交换机未配置冗余电源", clauses: "GB/T 22239-2019 8.1.3.1", dept: "ITD", severity: "中", owner: "it_engineer", due: 90, fate: "verified"},
	{ref: "DJCP-03", title: "审计记录未异地备份", clauses: "GB/T 22239-2019 8.1.4.3", dept: "ITD", severity: "高", owner: "it_engineer", due: 30, fate: "verified"},
	{ref: "DJCP-04", title: "病案室门禁记录保存不足6个月", clauses: "GB/T 22239-2019 8.1.1.2", dept: "MRD", severity: "中", owner: "records_clerk", due: 60, fate: "reopened"},
	{ref: "DJCP-05", title: "数据库审计未覆盖运维人员直连操作", clauses: "GB/T 22239-2019 8.1.4.3；GB/T 22239-2019 8.1.5.3", dept: "ITD", severity: "高", owner: "security_officer", due: 45, fate: "done"},
	{ref: "DJCP-06", title: "终端未统一部署防病毒软件", clauses: "GB/T 22239-2019 8.1.4.5", dept: "", severity: "中", owner: "it_engineer", due: 120, fate: "in_progress"},
	{ref: "DJCP-07", title: "应急预案未按年度演练并留存记录", clauses: "GB/T 22239-2019 8.1.10.6", dept: "ITD", severity: "低", owner: "security_officer", due: 90, fate: "verified"},
	{ref: "DJCP-08", title: "第三方运维人员未签署保密协议", clauses: "GB/T 22239-2019 8.1.10.8", dept: "ITD", severity: "中", owner: "security_officer", due: 60, fate: "open"},
}

// internalAudits are the quality office's findings, entered by hand.
var internalAudits = []rectifyFinding{
	{ref: "内审-2026-01", title: "护士站电脑离开后未锁屏，屏幕显示患者列表", dept: "CARD", severity: "medium", owner: "dept_head", day: 95, due: 30, fate: "verified",
		description: "抽查3个护士站，2台电脑无人值守时未锁屏"},
	{ref: "内审-2026-02", title: "出院病历7日内归档率未达标", dept: "GAST", severity: "high", owner: "dept_head", day: 180, due: 30, fate: "verified",
		description: "6月抽查40份出院病历，5份超过7日未归档"},
	{ref: "内审-2026-03", title: "病历借阅登记缺少审批人签字", dept: "MRD", severity: "low", owner: "records_clerk", day: 200, due: 60, fate: "done"},
	{ref: "内审-2026-04", title: "科室共用账号登录电子病历系统", dept: "ORTH", severity: "critical", owner: "dept_head", day: 270, due: 7, fate: "open",
		description: "骨科医生办公室发现多人共用一个工号书写病程记录"},
	{ref: "内审-2026-05", title: "U盘拷贝患者资料未登记", dept: "PEDS", severity: "high", owner: "dept_head", day: 330, due: 30, fate: "in_progress"},
	{ref: "内审-2026-06", title: "离职医生账号停用超过1个工作日", dept: "NEUR", severity: "high", owner: "dept_head", day: 355, due: 30, fate: "open"},
}

// failingChecks are compliance checks that failed during the year.
var failingChecks = []rectifyFinding{
	{ref: "restore_drill_age", title: "恢复演练间隔超过31天", clauses: "GB/T 22239-2019 8.1.4.9", dept: "ITD", severity: "high", owner: "it_engineer", day: 140, due: 14, fate: "verified"},
	{ref: "inspection_signed", title: "机房巡查存在未双人签字的日期", clauses: "GB/T 22239-2019 8.1.10.4", dept: "ITD", severity: "medium", owner: "security_officer", day: 250, due: 30, fate: "verified"},
	{ref: "training_coverage", title: "年度安全培训覆盖率低于100%", clauses: "GB/T 22239-2019 8.1.9.3", dept: "", severity: "medium", owner: "security_officer", day: 320, due: 60, fate: "in_progress"},
}

// rectification fills the register and publishes two quarterly checks.
func (l *loader) rectification(ctx context.Context) error {
	active := func(role string) []*Staff {
		var out []*Staff
		for _, s := range l.roles[role] {
			if s.call != nil && !slices.Contains(l.sum.Frozen, s.Username) {
				out = append(out, s)
			}
		}
		return out
	}
	officers, auditors := active("security_officer"), active("auditor")
	if len(officers) < 2 || len(auditors) == 0 {
		return nil
	}
	heads := map[string]*Staff{}
	for _, h := range active("dept_head") {
		if heads[h.Department] == nil {
			heads[h.Department] = h
		}
	}
	n := 0
	owner := func(f rectifyFinding) *Staff {
		n++
		if f.owner == "dept_head" {
			if h := heads[f.dept]; h != nil {
				return h
			}
		}
		if os := active(f.owner); len(os) > 0 {
			return os[n%len(os)]
		}
		return officers[n%len(officers)]
	}
	svc := l.svc.Rectify
	officer, auditor := officers[0], auditors[0]

	// The MLPS assessment's report, imported on day 75.
	type opened struct {
		id    string
		f     rectifyFinding
		owner *Staff
	}
	var items []opened
	var csv strings.Builder
	csv.WriteString("编号,问题,条款,科室,责任人,严重程度,整改期限\n")
	reportDay := 75
	owners := map[string]*Staff{}
	for _, f := range thirdPartyReport {
		o := owner(f)
		owners[f.ref] = o
		due := l.dayStart(reportDay + f.due).Format("2006-01-02")
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s,%s,%s\n", f.ref, f.title, f.clauses, f.dept, o.Username, f.severity, due)
	}
	l.at(reportDay, 2*time.Hour)
	report := fmt.Sprintf("%d-等保测评-017", l.dayStart(reportDay).Year())
	sum, err := svc.ImportReport(ctx, officer.call, rectify.Import{Auditor: "某某信息安全等级测评中心", Report: report, CSV: []byte(csv.String())})
	if err != nil {
		return fmt.Errorf("the assessment report: %w", err)
	}
	for i, id := range sum.Items {
		f := thirdPartyReport[i]
		f.day = reportDay
		items = append(items, opened{id, f, owners[f.ref]})
	}
	for _, f := range internalAudits {
		o := owner(f)
		l.at(f.day, 3*time.Hour)
		it, err := svc.CreateItem(ctx, auditor.call, rectify.NewItem{Kind: rectify.KindInternalAudit, Ref: f.ref, Title: f.title,
			Department: f.dept, Owner: o.Username, Severity: f.severity, DueAt: l.dayStart(f.day + f.due).Add(18 * time.Hour),
			Description: f.description, Auditor: "质控科"})
		if err != nil {
			return fmt.Errorf("internal audit %s: %w", f.ref, err)
		}
		items = append(items, opened{it.ID, f, o})
	}
	for _, f := range failingChecks {
		o := owner(f)
		l.at(f.day, time.Hour)
		id, _, err := svc.OpenFrom(ctx, rectify.Origin{Kind: rectify.KindCheck, Ref: f.ref, Title: f.title, Clauses: splitDemoClauses(f.clauses),
			Department: f.dept, Severity: f.severity, Owner: o.Username, DueAt: l.dayStart(f.day + f.due).Add(18 * time.Hour)})
		if err != nil {
			return fmt.Errorf("check %s: %w", f.ref, err)
		}
		items = append(items, opened{id, f, o})
	}

	// The quarterly checks of the two last quarters, each near the end of
	// its quarter.
	qItems, err := l.quarterlyChecks(ctx, auditor, heads)
	if err != nil {
		return err
	}
	for _, q := range qItems {
		items = append(items, opened{q.id, q.f, q.owner})
	}

	// The owners' work and the verifications, as far as the year went.
	for i, it := range items {
		if it.f.fate == "open" || it.owner == nil {
			continue
		}
		dueDay := it.f.day + it.f.due
		startDay := min(it.f.day+2, lastDay)
		l.at(startDay, 4*time.Hour)
		if _, err := svc.Start(ctx, it.owner.call, it.id, rectify.Progress{Note: "已制定整改方案并落实责任人"}); err != nil {
			return fmt.Errorf("item %s: %w", it.f.ref, err)
		}
		if it.f.fate == "in_progress" {
			continue
		}
		doneDay := min(max(startDay+1, dueDay-3-i%5), lastDay)
		l.at(doneDay, 5*time.Hour)
		if _, err := svc.MarkDone(ctx, it.owner.call, it.id, rectify.Progress{Note: "整改已完成：" + it.f.title + "，已按要求落实",
			EvidenceName: "整改报告.txt", Evidence: []byte("整改报告\n问题：" + it.f.title + "\n整改措施已落实，附现场检查记录。\n")}); err != nil {
			return fmt.Errorf("item %s: %w", it.f.ref, err)
		}
		if it.f.fate == "done" {
			continue
		}
		verifier := officers[0]
		if verifier.Username == it.owner.Username {
			verifier = officers[1]
		}
		l.at(min(doneDay+2, lastDay), 6*time.Hour)
		if it.f.fate == "reopened" {
			if _, err := svc.Reopen(ctx, verifier.call, it.id, rectify.Verification{Note: "现场复查发现门禁日志仍仅保存90天，退回继续整改"}); err != nil {
				return fmt.Errorf("item %s: %w", it.f.ref, err)
			}
			continue
		}
		if _, err := svc.Verify(ctx, verifier.call, it.id, rectify.Verification{Note: "现场核查整改到位，同意关闭"}); err != nil {
			return fmt.Errorf("item %s: %w", it.f.ref, err)
		}
	}
	// An overdue check, as the server would run it.
	if _, err := svc.CheckOverdue(ctx); err != nil {
		return err
	}

	// The monthly reviews of the last six months, each signed on the
	// first working days of the month after.
	for back := 6; back >= 1; back-- {
		first := time.Date(l.opts.Now.In(hospitalZone).Year(), l.opts.Now.In(hospitalZone).Month()-time.Month(back)+1, 2, 0, 0, 0, 0, hospitalZone)
		day := min(int(first.Sub(l.first).Hours()/24), lastDay)
		if day < 0 {
			continue
		}
		l.at(day, 7*time.Hour)
		month := first.AddDate(0, -1, 0).Format("2006-01")
		if _, err := svc.RecordReview(ctx, officer.call, rectify.NewReview{Month: month,
			Note: "已逐项核对本月整改进度，逾期项已通知责任科室督办"}); err != nil {
			return fmt.Errorf("the review of %s: %w", month, err)
		}
		l.sum.Reviews++
	}
	l.sum.Rectifications = len(items)
	return nil
}

func splitDemoClauses(v string) []string {
	var out []string
	for _, c := range strings.Split(v, "；") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// quarterlyChecks runs, records and publishes the quarterly checks of the
// two quarters before the current one; the head of the first failing
// department reads the latest. It returns the items the failing findings
// opened.
func (l *loader) quarterlyChecks(ctx context.Context, auditor *Staff, heads map[string]*Staff) ([]struct {
	id    string
	f     rectifyFinding
	owner *Staff
}, error) {
	var out []struct {
		id    string
		f     rectifyFinding
		owner *Staff
	}
	now := l.opts.Now.In(hospitalZone)
	thisQuarter := time.Date(now.Year(), time.Month((int(now.Month())-1)/3*3+1), 1, 0, 0, 0, 0, hospitalZone)
	notes := map[string]string{
		"departed_revoked":       "抽查发现1名离职人员账号未在1个工作日内停用",
		"transmission_encrypted": "科室自建的检验结果查询接口仍使用HTTP明文传输",
		"paper_electronic_sync":  "抽查20份出院病历，2份纸质病历未在7日内归档",
	}
	for back := 2; back >= 1; back-- {
		qStart := thisQuarter.AddDate(0, -3*back, 0)
		qEnd := qStart.AddDate(0, 3, 0)
		day := int(qEnd.Sub(l.first).Hours()/24) - 10
		if day < 1 || day > lastDay {
			continue
		}
		l.at(day, 2*time.Hour)
		quarter := rectify.QuarterOf(qStart, hospitalZone)
		seed := int64(l.opts.Seed)*10 + int64(back)
		run, err := l.svc.Rectify.StartRun(ctx, auditor.call, rectify.NewRun{Quarter: quarter, Seed: &seed})
		if err != nil {
			return nil, fmt.Errorf("quarterly check %s: %w", quarter, err)
		}
		l.at(day+1, 3*time.Hour)
		failed := 0
		for i, f := range run.Findings {
			res := rectify.FindingResult{Department: f.Department, Item: f.Item, Result: rectify.ResultPass}
			measuredFail := f.MeasuredPass != nil && !*f.MeasuredPass
			// One finding of each run fails on what the auditor found (the
			// first sampled clinical department's paper–electronic sync or
			// transmission, by quarter); measured failures fail too.
			chosen := failed == 0 && heads[f.Department] != nil && (back == 2 && f.Item == "paper_electronic_sync" ||
				back == 1 && f.Item == "transmission_encrypted")
			if measuredFail || chosen {
				res.Result, res.Note = rectify.ResultFail, notes[f.Item]
				failed++
			} else if i%4 == 0 {
				res.Note = "现场抽查符合要求"
			}
			if _, err := l.svc.Rectify.RecordFinding(ctx, auditor.call, run.ID, res); err != nil {
				return nil, fmt.Errorf("quarterly check %s: %w", quarter, err)
			}
		}
		l.at(day+2, 2*time.Hour)
		pub, err := l.svc.Rectify.Publish(ctx, auditor.call, run.ID)
		if err != nil {
			return nil, fmt.Errorf("quarterly check %s: %w", quarter, err)
		}
		l.sum.QuarterlyChecks++
		for _, f := range pub.Findings {
			if f.RectificationID == "" {
				continue
			}
			fate := "verified"
			if back == 1 {
				fate = "open"
			}
			out = append(out, struct {
				id    string
				f     rectifyFinding
				owner *Staff
			}{f.RectificationID, rectifyFinding{ref: f.Department + "/" + f.Item, title: f.Title, dept: f.Department, day: day + 2, due: 30,
				fate: fate}, heads[f.Department]})
		}
		if back == 1 && len(pub.Summary.FailingDepartments) > 0 {
			if h := heads[pub.Summary.FailingDepartments[0]]; h != nil {
				l.at(day+3, 1*time.Hour)
				if _, err := l.svc.Rectify.GetRun(ctx, h.call, run.ID); err != nil {
					return nil, fmt.Errorf("quarterly check %s read: %w", quarter, err)
				}
			}
		}
	}
	return out, nil
}
