package cli

import (
	"context"
	"fmt"
	"time"

	"medguard/internal/inspections"
	"medguard/internal/media"
	"medguard/internal/web"
)

// wireInspections opens the daily inspection (巡查) and the removable
// media register (issue 13) and ties them to detection: a reading out of
// range raises an alert, resolved by a later reading back in range; a day
// that ends without an inspection raises one; a device not returned by
// its due date raises one, resolved by its return. The inspection reads
// the host medguard runs on (its load, its data directory's free space)
// and the backups' health the server computes.
func (a *App) wireInspections(d *web.Deps) {
	cfg, logger := a.Config, a.Config.Logger
	a.Inspections = inspections.New(a.DB, a.Gate, a.Keys, inspections.Config{Zone: a.Trail.Zone()})
	a.Inspections.SetSystem(inspections.SystemHost{Dir: cfg.DataDir}, a.BackupHealth)
	a.Inspections.OnOutOfRange(func(ctx context.Context, o inspections.OutOfRange) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), inspections.OutOfRangeRule, o.Reading.Key,
			inspections.Explain(o)); err != nil {
			logger.Error("raising the alert of a reading out of range failed", "inspection", o.InspectionID, "error", err.Error())
		}
	})
	a.Inspections.OnBackInRange(func(ctx context.Context, b inspections.BackInRange) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), inspections.OutOfRangeRule, b.Key, "reading_in_range"); err != nil {
			logger.Error("clearing the alerts of a reading back in range failed", "inspection", b.InspectionID, "error", err.Error())
		}
	})
	a.Inspections.OnMissed(func(ctx context.Context, m inspections.MissedDay) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), inspections.MissedRule, m.Day,
			fmt.Sprintf("daily inspection of %s was not recorded (due %s)", m.Day, m.DueAt.UTC().Format(time.RFC3339))); err != nil {
			logger.Error("raising the alert of a missed inspection failed", "day", m.Day, "error", err.Error())
		}
	})
	a.Media = media.New(a.DB, a.Gate, a.Keys, a.Identity, media.Config{})
	a.Media.OnOverdue(func(ctx context.Context, o media.OverdueLoan) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), media.OverdueRule, o.Label,
			fmt.Sprintf("removable medium %s (loan %s) lent to %s was due %s", o.Label, o.LoanID, o.Borrower,
				o.DueAt.UTC().Format(time.RFC3339))); err != nil {
			logger.Error("raising the alert of an overdue device failed", "loan", o.LoanID, "error", err.Error())
		}
	})
	a.Media.OnReturned(func(ctx context.Context, l media.Loan) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), media.OverdueRule, l.Label, "medium_returned"); err != nil {
			logger.Error("clearing the alert of a returned device failed", "loan", l.ID, "error", err.Error())
		}
	})
	d.Inspections, d.Media = a.Inspections, a.Media
}
