package cli

import (
	"context"
	"fmt"
	"time"

	"medguard"
	"medguard/internal/backuphealth"
	"medguard/internal/plans"
	"medguard/internal/risks"
	"medguard/internal/web"
)

// openRisksAndPlans makes the risk register and the emergency plans and
// drills (issue 13) and wires their deadlines to detection: an overdue
// risk review, plan review or improvement item, a drill period missed and
// a department failing two drills in a row each raise an alert once,
// resolved when the review, the item, a drill of the kind or a passed
// drill comes. The drills list shows the backups' restore drills, read
// through the backups' gated service.
func (a *App) openRisksAndPlans(cfg Config, d *web.Deps) {
	logger := cfg.Logger
	raise := func(ctx context.Context, rule, key, explanation string) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), rule, key, explanation); err != nil {
			logger.Error("raising an alert failed", "rule", rule, "error", err.Error())
		}
	}
	resolve := func(ctx context.Context, rule, key, why string) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), rule, key, why); err != nil {
			logger.Error("resolving an alert failed", "rule", rule, "error", err.Error())
		}
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }

	a.Risks = risks.New(a.DB, a.Gate, a.Keys, a.Identity, risks.Config{})
	a.Risks.OnReviewOverdue(func(ctx context.Context, o risks.OverdueReview) {
		raise(ctx, risks.ReviewOverdueRule, o.RiskID, fmt.Sprintf("risk %s (%s) review was due %s", o.RiskID, o.Level, at(o.DueAt)))
	})
	a.Risks.OnReviewed(func(ctx context.Context, r risks.Risk) { resolve(ctx, risks.ReviewOverdueRule, r.ID, "risk_reviewed") })

	// Drill periods and review dates are reckoned in the hospital's zone,
	// the one the console shows times in.
	a.Plans = plans.New(a.DB, a.Gate, a.Keys, a.Identity, plans.Config{Location: a.Trail.Zone()})
	a.Plans.OnPlanReviewOverdue(func(ctx context.Context, o plans.OverduePlanReview) {
		raise(ctx, plans.PlanReviewOverdueRule, o.PlanID, fmt.Sprintf("plan %s yearly review was due %s", o.PlanID, at(o.DueAt)))
	})
	a.Plans.OnPlanReviewed(func(ctx context.Context, p plans.Plan) {
		resolve(ctx, plans.PlanReviewOverdueRule, p.ID, "plan_reviewed")
	})
	a.Plans.OnImprovementOverdue(func(ctx context.Context, o plans.OverdueImprovement) {
		raise(ctx, plans.ImprovementOverdueRule, o.ImprovementID, fmt.Sprintf("improvement item %s of drill %s (owner %s) was due %s",
			o.ImprovementID, o.DrillID, o.Owner, at(o.DueAt)))
	})
	a.Plans.OnImprovementDone(func(ctx context.Context, im plans.Improvement) {
		resolve(ctx, plans.ImprovementOverdueRule, im.ID, "improvement_done")
	})
	a.Plans.OnCadenceMissed(func(ctx context.Context, m plans.MissedCadence) {
		raise(ctx, plans.CadenceMissedRule, m.Key(), fmt.Sprintf("no %s drill in period %s (%s to %s)", m.Kind, m.Period, at(m.Start), at(m.End)))
	})
	a.Plans.OnCadenceKept(func(ctx context.Context, _ string, keys []string) {
		for _, k := range keys {
			resolve(ctx, plans.CadenceMissedRule, k, "drill_held")
		}
	})
	a.Plans.OnRetrainingNeeded(func(ctx context.Context, f plans.RetrainingFlag) {
		raise(ctx, plans.RetrainingRule, f.Department, fmt.Sprintf("department %s failed drills %v in a row: retraining needed", f.Department, f.Drills))
	})
	a.Plans.OnRetrained(func(ctx context.Context, f plans.RetrainingFlag) {
		resolve(ctx, plans.RetrainingRule, f.Department, "drill_passed")
	})
	a.Plans.SetBackupDrills(restoreDrills{a.BackupHealth})
	d.Risks, d.Plans = a.Risks, a.Plans
}

// restoreDrills lists the backups' restore drills for the drills list,
// through backuphealth (backup.read, audited as backup.drills).
type restoreDrills struct{ h *backuphealth.Service }

// RestoreDrills implements plans.BackupDrills.
func (r restoreDrills) RestoreDrills(ctx context.Context, call *medguard.Call) ([]plans.BackupDrill, error) {
	if r.h == nil {
		return nil, nil
	}
	ds, _, err := r.h.Drills(ctx, call, "", 200)
	if err != nil {
		return nil, err
	}
	out := make([]plans.BackupDrill, 0, len(ds))
	for _, d := range ds {
		out = append(out, plans.BackupDrill{ID: d.ID, StartedAt: d.StartedAt, OK: d.OK, RTOMet: d.RTOMet, RTOSeconds: d.RTOSeconds})
	}
	return out, nil
}
