package cli

import (
	"context"
	"fmt"
	"time"

	"medguard/internal/rectify"
	"medguard/internal/web"
)

// openRectify makes the rectification register and the quarterly
// compliance check (issue 14) and wires their deadlines to detection: an
// item past its deadline raises a rectification_overdue alert once,
// resolved when the owner reports it done (or it is given a later
// deadline). Months and quarters are reckoned in the hospital's zone. The
// compliance checks, when wired, open items through OpenFrom and measure
// the quarterly check's figures through SetFigures.
func (a *App) openRectify(cfg Config, d *web.Deps) {
	logger := cfg.Logger
	a.Rectify = rectify.New(a.DB, a.Gate, a.Keys, a.Identity, rectify.Config{Location: a.Trail.Zone()})
	a.Rectify.OnOverdue(func(ctx context.Context, o rectify.OverdueItem) {
		if err := a.Detect.RaiseNotice(context.WithoutCancel(ctx), rectify.OverdueRule, o.ItemID,
			fmt.Sprintf("rectification item %s (%s, department %q, owner %q) was due %s", o.ItemID, o.Severity, o.Department, o.Owner,
				o.DueAt.UTC().Format(time.RFC3339))); err != nil {
			logger.Error("raising the alert of an overdue rectification item failed", "item", o.ItemID, "error", err.Error())
		}
	})
	a.Rectify.OnDone(func(ctx context.Context, it rectify.Item) {
		if _, err := a.Detect.ResolveNotices(context.WithoutCancel(ctx), rectify.OverdueRule, it.ID, "rectification_done"); err != nil {
			logger.Error("resolving the alert of a rectification item failed", "item", it.ID, "error", err.Error())
		}
	})
	d.Rectify = a.Rectify
}
