package demo

import (
	"context"
	"fmt"
	"time"

	"medguard"
	"medguard/internal/compliance"
	"medguard/internal/identity"
	"medguard/internal/rectify"
)

// The compliance checks (合规检查, issue 14) over the demo year: a doctor
// of the laboratory's department, its interface administrator for a
// while, made the department's LIS key and left twenty days ago — the key
// was never revoked; the IT engineers attached the machine room's and the
// grounding's evidence, the auditors signed the first; and at the end of
// the year an auditor ran the checks. What fails, fails for real reasons:
// the departed doctor's live key, the quarter without a tabletop drill,
// yesterday's inspection not yet countersigned (and the day missed two
// weeks ago), besides whatever the year left (backups are not scheduled
// by the demo).

// DepartedDoctor is the username of the demo's departed doctor.
const DepartedDoctor = "zhaolei"

// complianceChecks makes the departed doctor and the evidence, and runs
// the checks once.
func (l *loader) complianceChecks(ctx context.Context) error {
	doctors := l.roles["doctor"]
	if len(doctors) == 0 || len(l.roles["auditor"]) == 0 || len(l.roles["it_engineer"]) == 0 {
		return fmt.Errorf("the demo has no doctor, auditor or IT engineer")
	}
	dept := doctors[len(doctors)-1].Department
	l.at(lastDay-75, time.Hour)
	u, pending, err := l.svc.Identity.CreateUser(ctx, l.admin, identity.NewUser{Username: DepartedDoctor, DisplayName: "赵磊",
		Department: dept, Roles: []string{"doctor"}, Password: l.opts.StaffPassword})
	if err != nil {
		return err
	}
	for _, role := range append(pending, "admin") {
		a, err := l.svc.Approvals.GrantRole(ctx, l.admin, u.ID, role, "赵磊兼任科室信息联络员，管理检验系统接口")
		if err != nil {
			return err
		}
		if _, err := l.svc.Approvals.Approve(ctx, l.security, a.ID, "同意"); err != nil {
			return err
		}
	}
	doctor := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: u.ID, Name: DepartedDoctor, Department: dept,
		Roles: []string{"doctor", "admin"}}, IP: "10.20.9.9", RequestID: "demo-lis-key"}
	l.at(lastDay-74, 2*time.Hour)
	if _, _, err := l.svc.Approvals.CreateAPIKey(ctx, doctor, "lisgateway", []string{"record.write"}, dept, "检验系统推送检验报告"); err != nil {
		return err
	}
	l.at(lastDay-20, time.Hour)
	if _, err := l.svc.Identity.Deactivate(ctx, l.admin, u.ID); err != nil {
		return err
	}
	l.sum.DepartedDoctor = DepartedDoctor

	// The attested checks: the machine room's survey signed by an
	// auditor; the grounding test report waiting for its signature.
	engineer, auditor := l.roles["it_engineer"][0].call, l.roles["auditor"][0].call
	for i, e := range []struct{ check, file, note string }{
		{"machine_room", "机房环境检查记录.txt", "机房门禁刷卡记录完整，温度 22 ℃、湿度 50 %，位置远离水源"},
		{"grounding_lightning", "防雷接地检测报告.txt", "第三方防雷检测：接地电阻 0.8 Ω，合格"},
	} {
		l.at(lastDay-30+i, 3*time.Hour)
		a, err := l.svc.Compliance.Attest(ctx, engineer, e.check, func() (compliance.Upload, error) {
			return compliance.Upload{Kind: compliance.EvidenceReport, Filename: e.file, Content: []byte(e.note + "\n检查人：信息科\n"), Note: e.note}, nil
		})
		if err != nil {
			return err
		}
		if i == 0 {
			l.at(lastDay-29, 5*time.Hour)
			if _, err := l.svc.Compliance.Review(ctx, auditor, a.ID, "已现场核对"); err != nil {
				return err
			}
		}
	}

	// The checks, run by an auditor at the end of the year.
	l.clock.Set(l.opts.Now.Add(-50 * time.Minute)) // the alerts of failing checks follow, each a few ticks later
	run, err := l.svc.Compliance.Run(ctx, auditor)
	if err != nil {
		return err
	}
	l.sum.ComplianceRun, l.sum.ComplianceFailing = run.ID, nil
	for _, r := range run.Results {
		if r.Status == compliance.Fail {
			l.sum.ComplianceFailing = append(l.sum.ComplianceFailing, r.ID)
		}
	}
	// Each failing check opened a rectification item (when the register
	// is wired to the checks, as in medguard): count them with the rest.
	if l.svc.Rectify != nil {
		items, _, err := l.svc.Rectify.ListItems(ctx, auditor, rectify.Query{})
		if err != nil {
			return err
		}
		l.sum.Rectifications = len(items)
	}
	return nil
}
