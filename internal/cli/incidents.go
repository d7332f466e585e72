package cli

import (
	"context"
	"fmt"
	"time"

	"medguard/internal/incidents"
)

// wireIncidents connects issue 13's incidents and accountability to the
// rest: the hospital's time zone (working days, the anonymous reports'
// days), the anonymous channel's key made at start (so that its creation
// dates no report), and the notices raised through the detection service
// — an incident reported (to the security office), its commander assigned,
// a case's deadline overdue, anonymous reports waiting for triage — each
// cleared when it is dealt with. The training register, when there is
// one, orders the retraining a warning comes with:
// a.Incidents.SetRetrainer(...).
func (a *App) wireIncidents(ctx context.Context, cfg Config) error {
	a.Incidents.SetZone(cfg.Identity.Location)
	if err := a.Incidents.PrepareAnonymousChannel(ctx); err != nil {
		return err
	}
	raise := func(ctx context.Context, rule, key, explanation string) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), rule, key, explanation); err != nil {
			cfg.Logger.Error("raising a notice failed", "rule", rule, "key", key, "error", err.Error())
		}
	}
	resolve := func(ctx context.Context, rule, key, why string) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), rule, key, why); err != nil {
			cfg.Logger.Error("clearing a notice failed", "rule", rule, "key", key, "error", err.Error())
		}
	}
	a.Incidents.OnReported(func(ctx context.Context, in incidents.Incident) {
		raise(ctx, incidents.ReportedRule, in.ID, fmt.Sprintf("incident %s (grade %d, type %s) reported by %s: confirm its grade and name its commander by %s",
			in.ID, in.Grade, in.Type, in.ReportedBy, in.ReportedAt.Add(incidents.GradeConfirmationPeriod).UTC().Format(time.RFC3339)))
	})
	a.Incidents.OnCommander(func(ctx context.Context, in incidents.Incident) {
		resolve(ctx, incidents.ReportedRule, in.ID, "grade_confirmed")
		raise(ctx, incidents.CommanderRule, in.ID, fmt.Sprintf("incident %s (grade %d, type %s): commander %s", in.ID, in.Grade,
			in.Type, in.Commander))
	})
	a.Incidents.OnClose(func(ctx context.Context, in incidents.Incident) {
		resolve(ctx, incidents.ReportedRule, in.ID, "incident_closed")
		resolve(ctx, incidents.CommanderRule, in.ID, "incident_closed")
	})
	a.Incidents.OnCaseOverdue(func(c incidents.Case, d incidents.Deadline) {
		raise(context.Background(), incidents.CaseDeadlineOverdueRule, c.ID, fmt.Sprintf("accountability case %s (grade %d): deadline %s was due %s",
			c.ID, c.Grade, d.Name, d.DueAt.UTC().Format(time.RFC3339)))
	})
	a.Incidents.OnCaseSettled(func(ctx context.Context, c incidents.Case) {
		resolve(ctx, incidents.CaseDeadlineOverdueRule, c.ID, "deadline_met")
	})
	a.Incidents.OnAnonymousReport(func(ctx context.Context, n incidents.AnonymousNotice) {
		if n.Filed {
			raise(ctx, incidents.AnonymousRule, n.Day, "an anonymous report (举报) filed on "+n.Day+" waits for triage")
			return
		}
		resolve(ctx, incidents.AnonymousRule, n.Day, "triaged")
	})
	return nil
}
