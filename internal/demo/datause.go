package demo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/partners"
)

// dataUse adds the data use of SPEC §8 during the last four weeks: paper
// folders on the shelf, lent, returned and one lent past its due date
// (announced as an alert); record-use requests (one expired, one approved
// and in force, one pending); a copy handed to a patient; an external
// partner with a live agreement and a linked researcher; and one
// de-identification job, asked by that researcher, approved by medical
// affairs and run. All of it on days up to yesterday, by the synthetic
// staff, through the services (and so the gate and the audit log).
func (l *loader) dataUse(ctx context.Context) error {
	du := l.svc.DataUse
	frozen := func(s *Staff) bool { return s == nil || slices.Contains(l.sum.Frozen, s.Username) }
	active := func(role string) []*Staff {
		var out []*Staff
		for _, s := range l.roles[role] {
			if !frozen(s) {
				out = append(out, s)
			}
		}
		return out
	}
	clerks, doctors := active("records_clerk"), active("doctor")
	if len(clerks) < 2 || len(doctors) == 0 {
		return nil
	}
	// Stays whose records were all written a month ago: everything below
	// happens after.
	start := lastDay - 28
	var stays []*visit
	for _, v := range l.visits {
		if v.inpatient && v.patientID != "" && len(v.records) > 0 && v.records[len(v.records)-1].day < start {
			stays = append(stays, v)
		}
	}
	if len(stays) < 8 {
		return nil
	}
	l.rnd.Shuffle(len(stays), func(i, j int) { stays[i], stays[j] = stays[j], stays[i] })
	at := func(day int, hour time.Duration) { l.clock.Set(l.dayStart(day).Add(workStart + hour)) }
	outsider := func(v *visit) *Staff {
		for _, i := range l.rnd.Perm(len(doctors)) {
			if doctors[i].Department != v.dept.Code {
				return doctors[i]
			}
		}
		return doctors[0]
	}
	clerk, approver := clerks[0], clerks[1]

	// Paper folders: eight stays' folders registered on the shelf, and one
	// whose 病案号 names no electronic patient (the reconciliation lists
	// it). Three are lent: one returned, one still out, one overdue.
	at(start, 0)
	var folders []*datause.Folder
	for i, v := range stays[:8] {
		f, err := du.RegisterFolder(ctx, clerk.call, datause.NewFolder{Barcode: fmt.Sprintf("BA-%s-%04d", l.dayStart(start).Format("2006"), i+1),
			PatientID: v.patientID, MRN: v.person.MRN, Location: fmt.Sprintf("病案库 %d 排 %d 架", 1+i/4, 1+i%4)})
		if err != nil {
			return err
		}
		folders = append(folders, f)
		l.sum.Folders++
	}
	if _, err := du.RegisterFolder(ctx, clerk.call, datause.NewFolder{Barcode: "BA-1998-0417", MRN: "MR09980417",
		Location: "病案库 旧档区 3 架"}); err != nil {
		return err
	}
	l.sum.Folders++
	lend := func(f *datause.Folder, day int, due time.Time, purpose string) (*Staff, error) {
		at(day, time.Hour)
		d := outsider(stays[0])
		_, err := du.LendFolder(ctx, clerk.call, f.ID, datause.NewLoan{BorrowerID: d.call.Actor.ID, Purpose: purpose,
			DueAt: due, Signature: d.Name})
		if err == nil {
			l.sum.Loans++
		}
		return d, err
	}
	// Returned: lent for a week three weeks ago, back after five days.
	if _, err := lend(folders[0], start+2, l.dayStart(start+9).Add(17*time.Hour), "quality_control"); err != nil {
		return err
	}
	at(start+7, 2*time.Hour)
	if _, err := du.ReturnFolder(ctx, clerk.call, folders[0].ID); err != nil {
		return err
	}
	// Overdue: lent for a week and a half, due six days ago.
	if _, err := lend(folders[1], start+12, l.dayStart(lastDay-6).Add(17*time.Hour), "treatment"); err != nil {
		return err
	}
	// Still out, due in two weeks.
	if _, err := lend(folders[2], lastDay-2, l.dayStart(lastDay+14).Add(17*time.Hour), "legal"); err != nil {
		return err
	}

	// Record-use requests by doctors of other departments, decided by the
	// records office: one approved and expired, one approved and in force,
	// one pending.
	ask := func(v *visit, day int, until time.Time, purpose, reason string) (*datause.UseRequest, error) {
		at(day, 3*time.Hour)
		u, err := du.AskUse(ctx, outsider(v).call, datause.NewUseRequest{PatientID: v.patientID, Purpose: purpose, Reason: reason, Until: until})
		if err == nil {
			l.sum.UseRequests++
		}
		return u, err
	}
	decide := func(u *datause.UseRequest, note string) error {
		l.clock.Set(l.clock.Now().Add(2 * time.Hour))
		_, err := du.DecideUse(ctx, approver.call, u.ID, true, note)
		return err
	}
	u, err := ask(stays[3], start+1, l.dayStart(start+8), "quality_control", "病历质控抽查：核对出院诊断与手术记录")
	if err != nil {
		return err
	}
	if err := decide(u, "同意，限质控期间查阅"); err != nil {
		return err
	}
	u, err = ask(stays[4], lastDay-3, l.dayStart(lastDay+11), "care_coordination", "患者转入本科室，需了解既往住院经过")
	if err != nil {
		return err
	}
	if err := decide(u, "同意"); err != nil {
		return err
	}
	if _, err := ask(stays[5], lastDay-1, l.dayStart(lastDay+8), "legal", "医疗纠纷调解需调阅住院病历"); err != nil {
		return err
	}

	// A copy (复印) of a stay's records for the patient's insurance claim,
	// asked for by the patient in person with their ID card.
	at(lastDay-4, 4*time.Hour)
	p := stays[6].person
	if _, err := du.RecordCopy(ctx, clerk.call, datause.NewCopy{PatientID: stays[6].patientID, PatientIDNumber: p.IDNumber,
		RequesterName: p.Name, Relation: datause.RelationSelf, Purpose: "insurance_claim", Pages: 12, FeeFen: 600}); err != nil {
		return err
	}
	l.sum.Copies++

	// The overdue folder is announced (an alert) as the server would.
	at(lastDay, 5*time.Hour)
	if _, err := du.CheckOverdue(ctx); err != nil {
		return err
	}
	return l.partnersAndJobs(ctx, stays, start)
}

// partnersAndJobs registers a partner with a live agreement (asked by
// medical affairs, approved by the security administrator), links a
// researcher's account to it, and has that researcher ask for a
// de-identification job of twenty patients, which medical affairs
// approves and the worker runs.
func (l *loader) partnersAndJobs(ctx context.Context, stays []*visit, start int) error {
	affairs, researchers := l.roles["medical_affairs"], l.roles["researcher"]
	if l.svc.Partners == nil || len(affairs) == 0 || len(researchers) < 2 {
		return nil
	}
	ma, researcher := affairs[0], researchers[len(researchers)-1]
	l.clock.Set(l.dayStart(start + 3).Add(workStart))
	pt, err := l.svc.Partners.CreatePartner(ctx, ma.call, partners.NewPartner{Name: "江南大学公共卫生学院", OrgCode: "12320000466007597C",
		ContactName: "沈婉清", ContactPhone: "0510-85329012", ContactEmail: "shenwq@example.edu.cn"})
	if err != nil {
		return err
	}
	l.sum.Partners++
	// The agreement starts the next day: left empty, its start would be
	// the moment it was asked, which its approval hours later refuses as
	// past (partners re-checks the normalised payload when approved).
	req, err := partners.NewAgreementRequest(pt.ID, partners.NewAgreement{Title: "慢性心力衰竭再入院队列研究",
		Purposes: []string{"research"}, DatasetKinds: []string{partners.DeidOutput, partners.Aggregate},
		StartsAt: l.dayStart(start + 4), ExpiresAt: l.dayStart(start + 4 + 365), Confidentiality: "数据使用与保密协议第5条", Reason: "合作科研项目，协议已签署"})
	if err != nil {
		return err
	}
	a, err := l.svc.Approvals.Request(ctx, ma.call, req)
	if err != nil {
		return err
	}
	l.clock.Set(l.clock.Now().Add(3 * time.Hour))
	if _, err := l.svc.Approvals.Approve(ctx, l.security, a.ID, "协议与保密条款已核对"); err != nil {
		return err
	}
	l.clock.Set(l.dayStart(start + 4).Add(workStart))
	if _, err := l.svc.Partners.LinkAccount(ctx, ma.call, pt.ID, partners.LinkAccount{UserID: researcher.call.Actor.ID}); err != nil {
		return err
	}
	l.sum.PartnerResearcher = researcher.Username
	if l.svc.DeidJobs == nil {
		return nil
	}
	var ids []string
	for _, v := range stays[:min(20, len(stays))] {
		ids = append(ids, v.patientID)
	}
	l.clock.Set(l.dayStart(lastDay - 5).Add(workStart))
	j, err := l.svc.DeidJobs.Ask(ctx, researcher.call, deidjobs.NewJob{Purpose: "research", Reason: "心衰再入院队列：住院记录的去标识化数据",
		PatientIDs: ids, Fields: map[string]string{"gender": "keep", "department": "keep", "record_date": "month", "diagnosis": "scrub"},
		K: 5, Suppress: 0.5})
	if err != nil {
		return err
	}
	l.sum.DeidJobs++
	l.clock.Set(l.clock.Now().Add(2 * time.Hour))
	if _, err := l.svc.Approvals.Approve(ctx, ma.call, j.ApprovalID, "范围与字段规则已核对，同意"); err != nil {
		return err
	}
	_, err = l.svc.DeidJobs.RunPending(ctx)
	return err
}
