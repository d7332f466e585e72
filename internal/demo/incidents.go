package demo

import (
	"context"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/records"
)

// Reasons doctors give when they break the glass (紧急访问).
var glassReasons = []string{
	"患者急诊昏迷入院，需查阅既往病史及用药",
	"夜班会诊，患者病情突然变化，需了解既往检查结果",
	"急诊抢救，需核对过敏史",
	"转科交接，患者家属要求了解既往手术情况",
	"多学科会诊（MDT），需查看既往影像报告",
	"患者意识不清，需确认既往诊断",
}

// incidents adds what makes the hospital look lived in during the last
// weeks: care teams, grants, emergency accesses (reviewed, pending and
// overdue), refused reads and failed sign-ins.
func (l *loader) incidents(ctx context.Context) error {
	end := l.opts.Now
	var inpatients []*visit
	for _, v := range l.visits {
		if v.inpatient && v.patientID != "" && len(v.records) > 0 {
			inpatients = append(inpatients, v)
		}
	}
	if len(inpatients) == 0 {
		return nil
	}
	// A stay whose patient and records all existed by at: the planned
	// records of a visit are written by the end of its last record's day.
	pickVisit := func(at time.Time) *visit {
		var known []*visit
		for _, v := range inpatients {
			if !l.dayStart(v.records[len(v.records)-1].day + 1).After(at) {
				known = append(known, v)
			}
		}
		if len(known) == 0 {
			return nil
		}
		return known[l.rnd.IntN(len(known))]
	}
	// A doctor from another department than v's.
	outsider := func(v *visit) *Staff {
		for {
			d := l.roles["doctor"][l.rnd.IntN(len(l.roles["doctor"]))]
			if d.Department != v.dept.Code {
				return d
			}
		}
	}
	// A readable (not restricted) record of v, by id: the planned records
	// carry no ids, so list them as the treating doctor.
	recordOf := func(v *visit) (string, error) {
		list, _, err := l.svc.Records.ListRecords(ctx, v.doctor.call, v.patientID, "", 20)
		if err != nil || len(list) == 0 {
			return "", err
		}
		for _, r := range list {
			if r.Type != "psychiatric_note" && r.Type != "hiv_test" {
				return r.ID, nil
			}
		}
		return "", nil
	}

	// Care teams and grants, in the last month.
	for i := 0; i < 20; i++ {
		at := end.Add(-time.Duration(20-i) * 24 * time.Hour)
		l.clock.Set(at)
		v := pickVisit(at)
		if v == nil {
			continue
		}
		head := l.pick(v.dept.Code, "dept_head")
		member := outsider(v)
		if i%2 == 0 {
			// A member of another department joins the care team: the
			// head asks, the security administrator approves.
			_, a, err := l.svc.Approvals.AddCareTeamMember(ctx, head.call, v.patientID, member.call.Actor.ID, nil, "多学科诊疗，需共同管理")
			if err != nil {
				return err
			}
			if a != nil {
				if _, err := l.svc.Approvals.Approve(ctx, l.security, a.ID, "同意"); err != nil {
					return err
				}
			}
			l.sum.CareTeams++
			continue
		}
		// A doctor of another department asks for a grant; the head of
		// the department whose records it opens approves.
		a, err := l.svc.Approvals.RequestGrant(ctx, member.call, records.NewGrant{PatientID: v.patientID, GranteeID: member.call.Actor.ID,
			Department: v.dept.Code, Reason: "院内会诊，需查阅该科室病历", ExpiresAt: at.Add(time.Duration(24*(3+l.rnd.IntN(25))) * time.Hour)})
		if err != nil {
			return err
		}
		if _, err := l.svc.Approvals.Approve(ctx, head.call, a.ID, "同意会诊查阅"); err != nil {
			return err
		}
		l.sum.Grants++
	}

	// Emergency accesses over the last ten days: older ones reviewed by the
	// record department's head, the newest pending, a few overdue.
	for i := 0; i < 30; i++ {
		at := end.Add(-time.Duration(240-i*8) * time.Hour)
		l.clock.Set(at)
		v := pickVisit(at)
		if v == nil {
			continue
		}
		rid, err := recordOf(v)
		if err != nil || rid == "" {
			continue
		}
		doc := outsider(v)
		call := *doc.call
		call.BreakGlassReason = glassReasons[l.rnd.IntN(len(glassReasons))]
		call.Purpose = "emergency"
		rec, err := l.svc.Records.GetRecord(ctx, &call, rid)
		if err != nil {
			if medguard.IsKind(err, medguard.Forbidden) {
				continue // e.g. the doctor is on the care team after all
			}
			return err
		}
		if rec.BreakGlass == nil {
			continue
		}
		l.sum.BreakGlass++
		if i >= 24 || i%7 == 3 {
			continue // left for review: pending (and, for older ones, overdue)
		}
		l.clock.Set(at.Add(time.Duration(2+l.rnd.IntN(18)) * time.Hour))
		head := l.pick(v.dept.Code, "dept_head")
		outcome, note := records.Justified, "急诊抢救需要，访问合理"
		if i%5 == 4 {
			outcome, note = records.Unjustified, "非本科室患者，无会诊申请，访问理由不充分"
		}
		if _, err := l.svc.Records.ReviewBreakGlass(ctx, head.call, rec.BreakGlass.EventID, outcome, note); err != nil {
			return err
		}
	}

	// Reads refused by the policy: curiosity outside the department.
	for i := 0; i < 25; i++ {
		at := end.Add(-time.Duration(200-i*7) * time.Hour)
		l.clock.Set(at)
		v := pickVisit(at)
		if v == nil {
			continue
		}
		rid, err := recordOf(v)
		if err != nil || rid == "" {
			continue
		}
		if _, err := l.svc.Records.GetRecord(ctx, outsider(v).call, rid); medguard.IsKind(err, medguard.Forbidden) {
			l.sum.Denied++
		} else if err != nil {
			return err
		}
	}

	// A doctor reading far more of the department's patients than care
	// needs, a day ago: detection refuses the 51st patient in five minutes
	// and freezes the account (an alert and a grade-2 incident follow).
	if err := l.bulkReader(ctx, inpatients, recordOf, end.Add(-30*time.Hour)); err != nil {
		return err
	}

	// Failed sign-ins: typos, and a burst against one account.
	l.clock.Set(end.Add(-6 * time.Hour))
	for i := 0; i < 12; i++ {
		s := l.roles["nurse"][i%len(l.roles["nurse"])]
		if i >= 6 {
			s = l.roles["doctor"][0]
		}
		_, err := l.svc.Identity.Login(ctx, &medguard.Call{IP: "10.30.5.77", RequestID: "demo-signin"},
			identity.Credentials{Username: s.Username, Password: "Wrong#Password1"})
		if err != nil && !medguard.IsKind(err, medguard.Unauthenticated) && !medguard.IsKind(err, medguard.Locked) {
			return err
		}
	}
	return nil
}

// bulkReader has one doctor read the records of one department's
// inpatients a few seconds apart until detection stops them.
func (l *loader) bulkReader(ctx context.Context, inpatients []*visit, recordOf func(*visit) (string, error), at time.Time) error {
	byDept := map[string][]*visit{}
	for _, v := range inpatients {
		if !l.dayStart(v.records[len(v.records)-1].day + 1).After(at) { // read only what was written by then
			byDept[v.dept.Code] = append(byDept[v.dept.Code], v)
		}
	}
	var dept []*visit
	for _, vs := range byDept {
		if len(vs) > len(dept) || (len(vs) == len(dept) && vs[0].dept.Code < dept[0].dept.Code) {
			dept = vs
		}
	}
	if len(dept) < 60 {
		return nil
	}
	// Not the first doctor: that one is the README's example.
	var doc *Staff
	for _, d := range l.roles["doctor"][1:] {
		if d.Department == dept[0].dept.Code {
			doc = d
		}
	}
	if doc == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, v := range dept {
		if seen[v.patientID] {
			continue
		}
		seen[v.patientID] = true
		rid, err := recordOf(v)
		if err != nil || rid == "" {
			continue
		}
		at = at.Add(3 * time.Second)
		l.clock.Set(at)
		call := *doc.call
		call.Purpose = "treatment"
		_, err = l.svc.Records.GetRecord(ctx, &call, rid)
		switch {
		case medguard.IsKind(err, medguard.Locked):
			l.sum.Frozen = append(l.sum.Frozen, doc.Username)
			return nil
		case err != nil && !medguard.IsKind(err, medguard.Forbidden):
			return err
		}
	}
	return nil
}
