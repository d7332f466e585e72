package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"medguard/internal/plans"
	"medguard/internal/risks"
)

// The security office's registers of issue 13 over the demo year: the
// risk register with reviews done and overdue, the leadership's
// acceptances (one waiting), a risk assessment of the mobile nursing
// system and its go-live checklist; the four emergency plans written by a
// security officer, reviewed by an IT engineer and published by the
// leadership (one returned once, one revised, one revision in review);
// a tabletop drill every quarter (one quarter missed) and a live drill
// every half-year, with gaps and improvement items, one department
// failing twice in a row. The scenarios, risks, gaps and improvements are
// the embedded data files data/*.json; everything is dated relative to
// the demo's clock.

//go:embed data/risks.json
var risksData []byte

//go:embed data/plans.json
var plansData []byte

//go:embed data/drills.json
var drillsData []byte

type demoRisk struct {
	Title         string `json:"title"`
	AssetID       string `json:"asset_id"`
	AssetName     string `json:"asset_name"`
	Threat        string `json:"threat"`
	Vulnerability string `json:"vulnerability"`
	Likelihood    int    `json:"likelihood"`
	Impact        int    `json:"impact"`
	Treatment     string `json:"treatment"`
	Plan          string `json:"plan"`
	// Day is the day of the year it is recorded (0: in the assessment,
	// or — accept pending — near the end of the year).
	Day   int    `json:"day"`
	Owner string `json:"owner"` // a role: the owner is one of its staff
	// Accept is the leadership's decision to make: accepted, or pending.
	Accept     string `json:"accept"`
	Close      string `json:"close"`
	Assessment bool   `json:"assessment"`
}

type demoPlan struct {
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Scenario   string            `json:"scenario"`
	Responders []plans.Responder `json:"responders"`
	Steps      []plans.Step      `json:"steps"`
	// V2Limit, if set, are the time limits of a second version.
	V2Limit []int `json:"v2_limit"`
}

type demoGap struct {
	Severity string `json:"severity"`
	Text     string `json:"text"`
}

type demoDrills struct {
	Gaps         []demoGap `json:"gaps"`
	Improvements []string  `json:"improvements"`
	Notes        []string  `json:"notes"`
}

// risksAndPlans fills the risk register and the emergency plans and drills.
func (l *loader) risksAndPlans(ctx context.Context) error {
	var rs struct {
		Risks []demoRisk `json:"risks"`
	}
	var ps struct {
		Plans []demoPlan `json:"plans"`
	}
	var ds demoDrills
	for _, x := range []struct {
		raw []byte
		v   any
	}{{risksData, &rs}, {plansData, &ps}, {drillsData, &ds}} {
		if err := json.Unmarshal(x.raw, x.v); err != nil {
			return fmt.Errorf("the registers' data: %w", err)
		}
	}
	active := func(role string) []*Staff {
		var out []*Staff
		for _, s := range l.roles[role] {
			if s.call != nil && !slices.Contains(l.sum.Frozen, s.Username) {
				out = append(out, s)
			}
		}
		return out
	}
	officers, engineers, leaders := active("security_officer"), active("it_engineer"), active("leadership")
	if len(officers) < 2 || len(engineers) < 2 || len(leaders) == 0 {
		return nil
	}
	// The author is a security officer of the IT department (not the
	// security administrator), the reviewer an IT engineer, the approver
	// the leadership.
	author, author2, reviewer, reviewer2, leader := officers[len(officers)-1], officers[0], engineers[0], engineers[1], leaders[0]
	ids, err := l.demoPlans(ctx, ps.Plans, author, author2, reviewer, reviewer2, leader)
	if err != nil {
		return err
	}
	if err := l.demoDrills(ctx, ds, ids, author); err != nil {
		return err
	}
	owners := map[string][]*Staff{"it_engineer": engineers, "security_officer": officers[1:]}
	if len(owners["security_officer"]) == 0 {
		owners["security_officer"] = officers
	}
	return l.demoRisks(ctx, rs.Risks, owners, author, reviewer, leader)
}

// dayAt is the simulated day of an instant, in the hospital's calendar.
func (l *loader) dayAt(t time.Time) int { return l.dayOf(t.In(hospitalZone)) }

// at sets the clock to a time of a day of the year.
func (l *loader) at(day int, hour time.Duration) { l.clock.Set(l.dayStart(day).Add(workStart + hour)) }

// demoPlans writes and publishes the four plans early in the year,
// revises the first in the autumn and leaves a revision of the last in
// expert review.
func (l *loader) demoPlans(ctx context.Context, in []demoPlan, author, author2, reviewer, reviewer2, leader *Staff) (map[string]string, error) {
	svc := l.svc.Plans
	ids := map[string]string{}
	for i, dp := range in {
		day := 5 + i
		l.at(day, 0)
		p, err := svc.CreatePlan(ctx, author.call, plans.NewPlan{Type: dp.Type, Title: dp.Title, Scenario: dp.Scenario,
			Responders: dp.Responders, Steps: dp.Steps})
		if err != nil {
			return nil, err
		}
		l.sum.Plans++
		ids[dp.Type] = p.ID
		l.at(day, time.Hour)
		if _, err := svc.Submit(ctx, author.call, p.ID, 1, plans.Note{Note: "请专家评审"}); err != nil {
			return nil, err
		}
		if i == 2 {
			// The reviewer returns one draft once: the time limits of the
			// report were too loose.
			l.at(day, 2*time.Hour)
			if _, err := svc.Review(ctx, reviewer.call, p.ID, 1, plans.Decision{Note: "上报时限应与事件分级的时限一致，请修改后再提交"}); err != nil {
				return nil, err
			}
			l.at(day+1, 0)
			if _, err := svc.Submit(ctx, author.call, p.ID, 1, plans.Note{Note: "已按意见修改上报时限"}); err != nil {
				return nil, err
			}
			day++
		}
		l.at(day+1, time.Hour)
		if _, err := svc.Review(ctx, reviewer.call, p.ID, 1, plans.Decision{Approve: true, Note: "流程完整，时限合理，同意报批"}); err != nil {
			return nil, err
		}
		l.at(day+2, 2*time.Hour)
		if _, err := svc.Approve(ctx, leader.call, p.ID, 1, plans.Decision{Approve: true, Note: "同意发布实施"}); err != nil {
			return nil, err
		}
	}
	// A revision of the first plan after the autumn drill: a shorter limit
	// for the switch-over, written by another officer, reviewed by another
	// engineer.
	if len(in) > 0 && len(in[0].V2Limit) == len(in[0].Steps) {
		id := ids[in[0].Type]
		l.at(200, 0)
		if _, err := svc.NewVersion(ctx, author2.call, id); err != nil {
			return nil, err
		}
		steps := slices.Clone(in[0].Steps)
		for i := range steps {
			steps[i].LimitMinutes = in[0].V2Limit[i]
		}
		if _, err := svc.UpdateDraft(ctx, author2.call, id, 2, plans.DraftChanges{Title: in[0].Title, Scenario: in[0].Scenario,
			Responders: in[0].Responders, Steps: steps}); err != nil {
			return nil, err
		}
		if _, err := svc.Submit(ctx, author2.call, id, 2, plans.Note{Note: "根据演练结果缩短切换时限"}); err != nil {
			return nil, err
		}
		l.at(201, time.Hour)
		if _, err := svc.Review(ctx, reviewer2.call, id, 2, plans.Decision{Approve: true, Note: "切换脚本已优化，90分钟可行"}); err != nil {
			return nil, err
		}
		l.at(203, 2*time.Hour)
		if _, err := svc.Approve(ctx, leader.call, id, 2, plans.Decision{Approve: true, Note: "同意发布第2版"}); err != nil {
			return nil, err
		}
	}
	// A revision of the last plan waits for its expert review.
	if len(in) > 1 {
		last := in[len(in)-1]
		id := ids[last.Type]
		l.at(lastDay-3, 0)
		if _, err := svc.NewVersion(ctx, author.call, id); err != nil {
			return nil, err
		}
		if _, err := svc.Submit(ctx, author.call, id, 2, plans.Note{Note: "年度修订：更新值守名单"}); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// demoDrills holds a tabletop drill every quarter — but one — and a live
// drill every half-year from the first plan's publication, each on a plan
// in turn; cardiology fails two in a row (flagged for retraining).
func (l *loader) demoDrills(ctx context.Context, data demoDrills, planIDs map[string]string, recorder *Staff) error {
	svc := l.svc.Plans
	types := []string{plans.TechnicalFailure, plans.NaturalDisaster, plans.HumanCaused, plans.PublicHealth}
	first := 12 // every plan is published by then
	type slot struct {
		kind string
		day  int
	}
	var slots []slot
	// Days of each period of a kind from the first day, held in its
	// middle (or on the last day of the year, for the current one).
	periods := func(kind string) [][2]int {
		var out [][2]int
		for day := first; day <= lastDay; {
			_, start, end := svc.Period(kind, l.dayStart(day).Add(12*time.Hour))
			from, to := max(day, l.dayAt(start)), min(lastDay, l.dayAt(end)-1)
			out = append(out, [2]int{from, to})
			day = max(l.dayAt(end), day+1) // on to the next period, whatever the zones
			if len(out) > 8 {
				break // a year holds at most five quarters
			}
		}
		return out
	}
	for i, p := range periods(plans.Tabletop) {
		if i == 1 {
			continue // the second quarter passes without a tabletop drill
		}
		if p[1]-p[0] >= 3 {
			slots = append(slots, slot{plans.Tabletop, (p[0] + p[1]) / 2})
		}
	}
	for _, p := range periods(plans.Live) {
		if p[1]-p[0] >= 10 {
			slots = append(slots, slot{plans.Live, (p[0]+p[1])/2 + 2})
		}
	}
	slices.SortStableFunc(slots, func(a, b slot) int { return a.day - b.day })
	depts := []string{"EMER", "CARD", "ICU", "NEUR"}
	cardFails := 0
	for n, s := range slots {
		day := min(s.day, lastDay)
		planID := planIDs[types[n%len(types)]]
		if planID == "" {
			continue
		}
		l.at(day, 6*time.Hour)
		p, err := svc.GetPlan(ctx, recorder.call, planID)
		if err != nil {
			return err
		}
		// The scenario is the version in force on the drill's day (the
		// plans' later revisions are already loaded).
		held := l.dayStart(day).Add(workStart + 5*time.Hour)
		var steps []plans.Step
		version := 0
		for _, v := range p.Versions {
			if v.ApprovedAt != nil && !v.ApprovedAt.After(held) && v.Version > version {
				steps, version = v.Steps, v.Version
			}
		}
		if version == 0 {
			continue
		}
		ds := []string{"ITD", depts[n%len(depts)], depts[(n+1)%len(depts)]}
		// Cardiology takes part in the last two drills and fails both.
		late := n >= len(slots)-2
		if late && !slices.Contains(ds, "CARD") {
			ds[2] = "CARD"
		}
		in := plans.NewDrill{Kind: s.kind, PlanID: planID, PlanVersion: version, HeldAt: held, Departments: ds, Notes: data.Notes[n%len(data.Notes)]}
		for _, d := range ds {
			for _, st := range l.staff[d][:min(2, len(l.staff[d]))] {
				in.Participants = append(in.Participants, plans.Participant{Name: st.Name, Department: d})
			}
		}
		for i, st := range steps {
			took := st.LimitMinutes * (60 + (n*7+i*13)%35) / 100
			t := plans.StepTime{Step: i + 1, TookMinutes: &took, Department: "ITD"}
			if i%2 == 1 {
				t.Department = ds[1]
			}
			if late && i == len(steps)-1 {
				took = st.LimitMinutes + 20 // late, carried by cardiology
				t.Department = "CARD"
			}
			in.Steps = append(in.Steps, t)
		}
		g := data.Gaps[n%len(data.Gaps)]
		if late {
			g = demoGap{Severity: plans.Major, Text: data.Gaps[1].Text}
		} else if g.Severity == plans.Major {
			g.Severity = plans.Minor // only cardiology's are major this year
		}
		gapDept := ds[1]
		if late {
			gapDept = "CARD"
		}
		in.Gaps = append(in.Gaps, plans.NewGap{Department: gapDept, Severity: g.Severity, Description: g.Text})
		owner := l.pick(gapDept, "dept_head")
		if owner == nil {
			owner = recorder
		}
		due := held.Add(30 * 24 * time.Hour)
		if due.After(l.opts.Now.AddDate(1, 0, 0)) || !due.After(held) {
			due = held.Add(24 * time.Hour)
		}
		in.Improvements = append(in.Improvements, plans.NewImprovement{Action: data.Improvements[n%len(data.Improvements)],
			Owner: owner.Username, Department: gapDept, DueAt: due})
		d, err := svc.RecordDrill(ctx, recorder.call, in)
		if err != nil {
			return fmt.Errorf("drill on day %d: %w", day, err)
		}
		l.sum.Drills++
		if late {
			cardFails++
		}
		// The items due more than ten days before the end of the year are
		// done a few days before their due date — all but the first.
		for _, im := range d.Improvements {
			if n == 0 || l.dayAt(im.DueAt) > lastDay-10 {
				continue
			}
			l.at(l.dayAt(im.DueAt)-3, 7*time.Hour)
			if _, err := svc.CompleteImprovement(ctx, recorder.call, d.ID, im.ID, plans.ImprovementCompletion{Note: "已完成整改并复查"}); err != nil {
				return err
			}
		}
	}
	return nil
}

// demoRisks records the year's risks, reviews those that fell due (but
// two), has the leadership decide acceptances (one left waiting), closes
// one, and assesses the mobile nursing system before its go-live.
func (l *loader) demoRisks(ctx context.Context, in []demoRisk, owners map[string][]*Staff, officer, engineer, leader *Staff) error {
	svc := l.svc.Risks
	type made struct {
		id  string
		day int
		r   demoRisk
	}
	var all []made
	var assessed []demoRisk
	for i, r := range in {
		if r.Assessment {
			assessed = append(assessed, r)
			continue
		}
		day := r.Day
		if r.Accept == risks.AcceptancePending {
			day = lastDay - 6
		}
		day = min(max(day, 1), lastDay)
		by := []*Staff{officer, engineer}[i%2]
		l.at(day, 3*time.Hour)
		os := owners[r.Owner]
		x, err := svc.CreateRisk(ctx, by.call, risks.NewRisk{Title: r.Title, AssetID: r.AssetID, AssetName: r.AssetName, Threat: r.Threat,
			Vulnerability: r.Vulnerability, Likelihood: r.Likelihood, Impact: r.Impact, Treatment: r.Treatment, TreatmentPlan: r.Plan,
			Owner: os[i%len(os)].Username})
		if err != nil {
			return fmt.Errorf("risk %q: %w", r.Title, err)
		}
		l.sum.Risks++
		all = append(all, made{x.ID, day, r})
		if r.Accept == risks.AcceptanceAccepted {
			l.at(day+2, 4*time.Hour)
			if _, err := svc.DecideAcceptance(ctx, leader.call, x.ID, risks.AcceptanceDecision{Accept: true,
				Note: "已隔离并列入明年更换计划，同意在此之前接受残余风险"}); err != nil {
				return err
			}
		}
	}
	// Reviews: each risk due before the end of the year is reviewed on
	// its due day — but the two recorded earliest among the high ones,
	// whose reviews are left overdue (alerted).
	skipped := 0
	for _, m := range all {
		if m.r.Close != "" {
			l.at(min(m.day+60, lastDay), 6*time.Hour)
			if _, err := svc.CloseRisk(ctx, officer.call, m.id, risks.Closing{Note: m.r.Close}); err != nil {
				return err
			}
			continue
		}
		r, err := svc.GetRisk(ctx, officer.call, m.id)
		if err != nil {
			return err
		}
		for reviews := 0; r.Status == risks.Open && l.dayAt(r.ReviewDueAt) <= lastDay-1 && reviews < 8; reviews++ {
			if r.Level == risks.High && skipped < 2 && m.r.Accept == "" {
				skipped++
				break
			}
			day := max(l.dayAt(r.ReviewDueAt)-2, m.day+1)
			l.at(day, 5*time.Hour)
			l2, i2 := r.Likelihood, r.Impact
			if l2 > 1 && m.r.Treatment == risks.Reduce {
				l2-- // the treatment worked
			}
			if r, err = svc.ReviewRisk(ctx, engineer.call, m.id, risks.Review{Likelihood: l2, Impact: i2, Treatment: r.Treatment,
				Note: "按期复核：措施已落实，风险值已更新"}); err != nil {
				return err
			}
		}
	}
	// The mobile nursing system: assessed, completed, checked, approved.
	if len(assessed) > 0 {
		day := lastDay - 40
		l.at(day, 0)
		a, err := svc.CreateAssessment(ctx, officer.call, risks.NewAssessment{Title: "移动护理系统上线前风险评估", System: "移动护理系统"})
		if err != nil {
			return err
		}
		for i, r := range assessed {
			if _, err := svc.CreateRisk(ctx, officer.call, risks.NewRisk{Title: r.Title, AssetName: r.AssetName, Threat: r.Threat,
				Vulnerability: r.Vulnerability, Likelihood: r.Likelihood, Impact: r.Impact, Treatment: r.Treatment, TreatmentPlan: r.Plan,
				Owner: owners[r.Owner][i%len(owners[r.Owner])].Username, AssessmentID: a.ID}); err != nil {
				return err
			}
			l.sum.Risks++
		}
		l.at(day+2, time.Hour)
		if _, err := svc.CompleteAssessment(ctx, officer.call, a.ID, risks.AssessmentCompletion{
			Summary: "识别风险2项，均为中等级，处置措施已纳入上线计划，可以上线。"}); err != nil {
			return err
		}
		it, err := svc.CreateIntroduction(ctx, engineer.call, risks.NewIntroduction{System: "移动护理系统", PlannedAt: l.dayStart(day + 30)})
		if err != nil {
			return err
		}
		l.at(day+3, time.Hour)
		if _, err := svc.CheckItem(ctx, engineer.call, it.ID, risks.ItemRiskAssessment, risks.ItemCheck{AssessmentID: a.ID}); err != nil {
			return err
		}
		for _, item := range risks.ChecklistItems[1:] {
			if _, err := svc.CheckItem(ctx, officer.call, it.ID, item, risks.ItemCheck{Note: "已核查，记录存档"}); err != nil {
				return err
			}
		}
		l.at(day+5, 2*time.Hour)
		if _, err := svc.ApproveGoLive(ctx, leader.call, it.ID, risks.GoLive{Note: "检查表齐全，同意按计划上线"}); err != nil {
			return err
		}
		// The next system waits: its assessment is not done yet.
		l.at(lastDay-2, time.Hour)
		next, err := svc.CreateIntroduction(ctx, engineer.call, risks.NewIntroduction{System: "互联网医院问诊平台",
			PlannedAt: l.dayStart(lastDay + 60)})
		if err != nil {
			return err
		}
		for _, item := range []string{risks.ItemSecurityConfig, risks.ItemDataClassification, risks.ItemAccessControl} {
			if _, err := svc.CheckItem(ctx, officer.call, next.ID, item, risks.ItemCheck{Note: "已核查"}); err != nil {
				return err
			}
		}
	}
	// What fell due is announced (alerts), as the server would.
	l.at(lastDay, 8*time.Hour)
	if _, err := svc.CheckOverdue(ctx); err != nil {
		return err
	}
	return l.svc.Plans.CheckOverdue(ctx)
}
