package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"medguard/internal/incidents"
)

// The security office's year of incidents and accountability (issue 13),
// from data/security_office.json: incidents of every grade with their type
// and commander (the leadership for grade 1, a security officer for grade
// 2, IT for grade 3), each handling step confirmed by a second officer,
// evidence files, analyses and corrective actions verified by someone other
// than who did them; yesterday's incident still open with a step waiting
// for its confirmation; accountability cases with their sanctions — a
// doctor warned, then, within the year, sanctioned a month's pay as the
// repeat offence proposes — and one dismissed; and two anonymous reports,
// one answered, added to and closed, one waiting for triage.

//go:embed data/security_office.json
var securityOfficeData []byte

type officeIncident struct {
	DaysAgo      int                  `json:"days_ago"`
	Hour         int                  `json:"hour"`
	Type         string               `json:"type"`
	Grade        int                  `json:"grade"`
	Criterion    string               `json:"criterion"`
	Commander    string               `json:"commander"` // a role
	Title        string               `json:"title"`
	Description  string               `json:"description"`
	Steps        [][2]string          `json:"steps"`
	Confirm      []int                `json:"confirm"` // the steps confirmed, if not all
	EvidenceFile *officeFile          `json:"evidence_file"`
	Analysis     *incidents.RootCause `json:"analysis"`
	Actions      []struct {
		Description string `json:"description"`
		Owner       string `json:"owner"`
		DueDays     int    `json:"due_days"`
	} `json:"actions"`
	Summary string `json:"summary"` // closed with it; open without
}

type officeFile struct {
	Kind, Name, Text string
}

type officeCase struct {
	DaysAgo   int    `json:"days_ago"`
	Criterion string `json:"criterion"`
	Summary   string `json:"summary"`
	Finding   string `json:"finding"`
	Decision  string `json:"decision"`
	Sanction  string `json:"sanction"`
	Opinion   string `json:"opinion"`
	Dismiss   bool   `json:"dismiss"`
}

type officeReport struct {
	DaysAgo  int    `json:"days_ago"`
	Category string `json:"category"`
	Text     string `json:"text"`
	Reply    string `json:"reply"`
	Addition string `json:"addition"`
	Close    string `json:"close"`
}

// securityOffice fills in the year of incidents, cases and reports.
func (l *loader) securityOffice(ctx context.Context) error {
	var data struct {
		Incidents []officeIncident `json:"incidents"`
		Cases     []officeCase     `json:"cases"`
		Reports   []officeReport   `json:"reports"`
	}
	if err := json.Unmarshal(securityOfficeData, &data); err != nil {
		return fmt.Errorf("data/security_office.json: %w", err)
	}
	active := func(role string) []*Staff {
		var out []*Staff
		for _, s := range l.roles[role] {
			if !slices.Contains(l.sum.Frozen, s.Username) {
				out = append(out, s)
			}
		}
		return out
	}
	officers, auditors, doctors := active("security_officer"), active("auditor"), active("doctor")
	if len(officers) < 2 || len(auditors) < 2 || len(doctors) < 2 || len(active("leadership")) == 0 || len(active("it_engineer")) == 0 {
		return nil
	}
	// The ITD's officers do the work; another (the security administrator
	// among them) confirms it.
	a, b := officers[len(officers)-1], officers[0]
	svc := l.svc.Incidents
	for _, spec := range data.Incidents {
		t0 := l.dayStart(lastDay - spec.DaysAgo).Add(time.Duration(spec.Hour) * time.Hour)
		at := func(d time.Duration) { l.clock.Set(t0.Add(d)) }
		at(0)
		in, err := svc.Report(ctx, a.call, incidents.NewIncident{Type: spec.Type, Title: spec.Title, Description: spec.Description,
			Grade: spec.Grade, Criterion: spec.Criterion})
		if err != nil {
			return err
		}
		at(10 * time.Minute)
		commander := active(spec.Commander)[0]
		if _, err := svc.ConfirmGrade(ctx, a.call, in.ID, incidents.GradeConfirmation{Grade: spec.Grade, Criterion: spec.Criterion,
			Commander: commander.Username}); err != nil {
			return err
		}
		for i, st := range spec.Steps {
			at(time.Duration(12+5*i) * time.Minute)
			got, err := svc.AddUpdate(ctx, a.call, in.ID, incidents.NewUpdate{Kind: st[0], Text: st[1]})
			if err != nil {
				return err
			}
			if spec.Confirm != nil && !slices.Contains(spec.Confirm, i) {
				continue
			}
			at(time.Duration(14+5*i) * time.Minute)
			if _, err := svc.ConfirmStep(ctx, b.call, in.ID, got.Timeline[len(got.Timeline)-1].AuditIndex); err != nil {
				return err
			}
		}
		if f := spec.EvidenceFile; f != nil {
			at(50 * time.Minute)
			if _, err := svc.AttachFile(ctx, a.call, in.ID, func() (incidents.FileUpload, error) {
				return incidents.FileUpload{Kind: f.Kind, Filename: f.Name, Content: []byte(f.Text)}, nil
			}); err != nil {
				return err
			}
		}
		l.sum.Incidents++
		if spec.Summary == "" {
			continue // still open
		}
		for _, h := range []time.Duration{110 * time.Minute, 220 * time.Minute} {
			at(h)
			if _, err := svc.AddUpdate(ctx, a.call, in.ID, incidents.NewUpdate{Kind: incidents.UpdateProgress, Text: "处置进展：按预案推进，持续监测。"}); err != nil {
				return err
			}
		}
		if spec.Analysis != nil {
			at(4 * time.Hour)
			if _, err := svc.SetAnalysis(ctx, a.call, in.ID, *spec.Analysis); err != nil {
				return err
			}
		}
		for i, act := range spec.Actions {
			at(4*time.Hour + time.Duration(5*i)*time.Minute)
			x, err := svc.AddAction(ctx, a.call, in.ID, incidents.NewAction{Description: act.Description, Owner: act.Owner,
				DueAt: t0.Add(time.Duration(act.DueDays) * 24 * time.Hour)})
			if err != nil {
				return err
			}
			at(5*time.Hour + time.Duration(5*i)*time.Minute)
			if _, err := svc.SetActionState(ctx, a.call, in.ID, x.ID, incidents.ActionDone); err != nil {
				return err
			}
			at(5*time.Hour + time.Duration(5*i+2)*time.Minute)
			if _, err := svc.SetActionState(ctx, b.call, in.ID, x.ID, incidents.ActionVerified); err != nil {
				return err
			}
		}
		at(6 * time.Hour)
		if _, err := svc.Close(ctx, a.call, in.ID, spec.Summary); err != nil {
			return err
		}
	}

	// Accountability: a doctor warned, then again within the year; another
	// case dismissed.
	investigator := auditors[0]
	for i, spec := range data.Cases {
		subject := doctors[len(doctors)-1]
		if spec.Dismiss {
			subject = doctors[len(doctors)-2]
		}
		t0 := l.dayStart(lastDay - spec.DaysAgo).Add(workStart + time.Hour)
		l.clock.Set(t0)
		c, err := svc.OpenCase(ctx, investigator.call, incidents.NewCase{SubjectUserID: subject.call.Actor.ID, Criterion: spec.Criterion,
			Summary: spec.Summary})
		if err != nil {
			return err
		}
		l.clock.Set(t0.Add(2 * time.Hour))
		if _, err := svc.AddFinding(ctx, investigator.call, c.ID, spec.Finding); err != nil {
			return err
		}
		l.clock.Set(t0.Add(26 * time.Hour))
		outcome := incidents.Upheld
		if spec.Dismiss {
			outcome = incidents.Dismissed
		}
		if _, err := svc.Decide(ctx, investigator.call, c.ID, incidents.CaseDecision{Outcome: outcome, Text: spec.Decision}); err != nil {
			return err
		}
		l.sum.Cases++
		if spec.Dismiss {
			continue
		}
		l.clock.Set(t0.Add(27*time.Hour + time.Duration(i)*time.Minute))
		if _, err := svc.Opinion(ctx, investigator.call, c.ID, incidents.CaseOpinion{Sanction: spec.Sanction, Text: spec.Opinion}); err != nil {
			return err
		}
	}

	// Anonymous reports: one answered, added to and closed; one waiting.
	for _, spec := range data.Reports {
		t0 := l.dayStart(lastDay - spec.DaysAgo).Add(workStart + 3*time.Hour)
		l.clock.Set(t0)
		rc, err := svc.FileAnonymous(ctx, incidents.NewAnonymousReport{Category: spec.Category, Text: spec.Text})
		if err != nil {
			return err
		}
		l.sum.Reports++
		if spec.Reply == "" {
			continue
		}
		list, _, err := svc.ListReports(ctx, a.call, incidents.ReportNew, "", 50)
		if err != nil {
			return err
		}
		var id string
		for _, r := range list {
			if r.FiledOn == rc.FiledOn && r.Category == spec.Category {
				id = r.ID
			}
		}
		l.clock.Set(t0.Add(5 * time.Hour))
		if _, err := svc.ReplyReport(ctx, a.call, id, spec.Reply); err != nil {
			return err
		}
		l.clock.Set(t0.Add(26 * time.Hour))
		if _, err := svc.AddToReport(ctx, rc.Receipt, spec.Addition); err != nil {
			return err
		}
		l.clock.Set(t0.Add(3 * 24 * time.Hour))
		if _, err := svc.CloseReport(ctx, b.call, id, spec.Close); err != nil {
			return err
		}
	}
	return nil
}
