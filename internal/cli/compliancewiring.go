package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"medguard"
	"medguard/internal/compliance"
	"medguard/internal/rectify"
	"medguard/internal/reports"
	"medguard/internal/web"
)

// wireCompliance ties issue 14's three registers together once all three
// are open: a failing compliance check opens a rectification item; the
// quarterly check's findings start from the checks' figures for the
// department sampled; the posture reports draw the compliance score and
// the rectification counts; the compliance report is rendered as a PDF by
// the reports' renderer.
func (a *App) wireCompliance(d *web.Deps) {
	a.Compliance.SetRectifier(checkRectifier{a.Rectify})
	a.Rectify.SetFigures(quarterFigures{a})
	a.SetReportRegisters(complianceScores{a.Compliance}, rectificationCounts{a.Rectify})
	zone := a.Trail.Zone()
	hospital := a.Reports.Config().Hospital
	d.CompliancePDF = func(ctx context.Context, lang string, r compliance.Report) ([]byte, error) {
		return reports.CompliancePDF(lang, compliancePDFInput(r, hospital, zone))
	}
}

// severeChecks are the checks whose failure opens a high-severity item
// (its default deadline 30 days); the others open medium ones.
var severeChecks = map[string]bool{
	"departed_staff_access": true, "departed_owner_api_keys": true, "sensitive_fields_encrypted": true,
	"transport_encrypted": true, "audit_tree_verified": true, "separation_of_duties": true, "privileged_second_factor": true,
}

// checkRectifier opens a rectification item for a failing check
// (compliance.Rectifier over the rectification register): one item per
// check while it is not verified.
type checkRectifier struct{ r *rectify.Service }

func (c checkRectifier) OpenForCheck(ctx context.Context, f compliance.Finding) error {
	severity := rectify.Medium
	if severeChecks[f.CheckID] {
		severity = rectify.High
	}
	title := f.Title.ZH
	if f.Value != "" {
		title += "（实测 " + f.Value + "）"
	}
	_, _, err := c.r.OpenFrom(ctx, rectify.Origin{Kind: rectify.KindCheck, Ref: f.CheckID, Title: title, TitleEN: f.Title.EN,
		Clauses: f.Clauses, Department: f.Department, Severity: severity})
	return err
}

// quarterFigures gives the quarterly check the compliance checks'
// figures of a sampled department (rectify.DepartmentFigures): departed
// staff revoked from the department's own figure; transmission encrypted
// and paper–electronic sync from the hospital-wide checks (links and the
// daily reconciliation are not kept per department), said so in the
// evidence.
type quarterFigures struct{ a *App }

func (q quarterFigures) Figures(ctx context.Context, call *medguard.Call, deptID string) ([]rectify.Figure, error) {
	_, depts, err := q.a.Identity.Directory(ctx)
	if err != nil {
		return nil, err
	}
	code := ""
	for _, d := range depts {
		if d.ID == deptID {
			code = d.Code
		}
	}
	if code == "" {
		return nil, medguard.InvalidField("department", "no such department")
	}
	per, err := q.a.Compliance.DepartmentFigures(ctx, call, code)
	if err != nil {
		return nil, err
	}
	rep, err := q.a.Compliance.Report(ctx, call, "zh-CN")
	if err != nil {
		return nil, err
	}
	var out []rectify.Figure
	// The evidence is said in Chinese, as the quarterly check's pages
	// are: its scope and how many lines of evidence stand behind the
	// value (the lines themselves on the check's page).
	add := func(id string, r compliance.Result, scope string) {
		ev := scope
		if n := len(r.Evidence.Items); n > 0 {
			ev += fmt.Sprintf("，%d 项证据", n)
		}
		out = append(out, rectify.Figure{ID: id, Title: r.Title, Value: r.Value, Pass: r.Status == compliance.Pass, Evidence: ev + "（合规检查）"})
	}
	for _, r := range per {
		if r.ID == "departed_staff_access" {
			add("departed_revoked", r, "本科室人员")
		}
	}
	for _, r := range rep.Checks {
		switch r.ID {
		case "transport_encrypted":
			add("transmission_encrypted", r, "全院传输链路，不分科室")
		case "paper_sync_rate":
			add("paper_electronic_sync", r, "全院每日纸电核对，不分科室")
		}
	}
	return out, nil
}

// complianceScores reads the compliance runs' scores for the posture
// reports (reports.ComplianceHistory).
type complianceScores struct{ c *compliance.Service }

func (c complianceScores) ComplianceScores(ctx context.Context, from, to time.Time) ([]reports.ComplianceScore, error) {
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	ps, err := c.c.Scores(ctx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]reports.ComplianceScore, 0, len(ps))
	for _, p := range ps {
		out = append(out, reports.ComplianceScore{At: p.At, Score: int(p.Score + 0.5), Passed: p.Pass, Failed: p.Fail,
			Total: p.Pass + p.Fail + p.NeedsEvidence})
	}
	return out, nil
}

// rectificationCounts counts the rectification items of a period for the
// posture reports (reports.RectificationSource).
type rectificationCounts struct{ r *rectify.Service }

func (c rectificationCounts) RectificationAt(ctx context.Context, from, to time.Time) (reports.RectificationFigures, error) {
	n, err := c.r.PeriodCounts(ctx, from, to)
	if err != nil {
		return reports.RectificationFigures{}, err
	}
	return reports.RectificationFigures{Open: n.Open, Overdue: n.Overdue, Opened: n.Opened, Closed: n.Closed}, nil
}

// compliancePDFInput is the compliance report as the PDF renderer takes
// it: each check in both languages, its evidence in a line (the reason,
// how many lines of evidence, where to see them).
func compliancePDFInput(r compliance.Report, hospital string, zone *time.Location) reports.ComplianceInput {
	cat := compliance.DefaultCatalogue()
	in := reports.ComplianceInput{Hospital: hospital, GeneratedAt: r.GeneratedAt, Location: zone}
	for _, c := range r.Checks {
		ch := reports.ComplianceCheck{ID: c.ID, TitleZH: c.Title, TitleEN: c.Title, Clauses: c.Clauses, Status: c.Status, Value: c.Value,
			Kind: c.Kind}
		if def, ok := cat.Check(c.ID); ok {
			ch.TitleZH, ch.TitleEN = def.Title.ZH, def.Title.EN
		}
		ev := c.Reason
		if n := len(c.Evidence.Items); n > 0 {
			ev = strings.TrimSpace(fmt.Sprintf("%s (%d)", ev, n))
		}
		if c.Evidence.Attestation != nil {
			ev = strings.TrimSpace(ev + " attested")
		}
		if c.Evidence.Console != "" {
			ev = strings.TrimSpace(ev + " " + c.Evidence.Console)
		}
		ch.Evidence = ev
		in.Checks = append(in.Checks, ch)
	}
	return in
}
