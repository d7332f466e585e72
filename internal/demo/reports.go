package demo

import (
	"context"
	"fmt"
	"time"

	"medguard/internal/reports"
)

// The leadership's posture reports (issue 14) over the demo year: the
// scheduled reports of the last periods — weekly, monthly, quarterly —
// generated as the schedule would have made them, a few minutes into the
// first day after each period, from the registers the year filled in.
// Generating every week of the year would cost the demo several seconds
// for pages nobody reads; the last eight weeks, twelve months and four
// quarters are the ones the console lists first.

// reportsKept is how many of each kind's last periods get their report.
var reportsKept = map[string]int{reports.Weekly: 8, reports.Monthly: 12, reports.Quarterly: 4}

func (l *loader) postureReports(ctx context.Context) error {
	if err := l.svc.Reports.CheckFont(); err != nil {
		// Without the CJK font no PDF can be written: the demo says so
		// and goes on; serve makes the reports once the font is there.
		fmt.Fprintf(l.out, "      no posture reports: %v\n", err)
		return nil
	}
	end := l.opts.Now
	first := l.dayStart(0)
	for _, kind := range reports.Kinds {
		p := reports.LastComplete(kind, end, hospitalZone)
		var ps []reports.Period
		for len(ps) < reportsKept[kind] && !p.Start.Before(first) {
			ps = append([]reports.Period{p}, ps...)
			p = p.Prev()
		}
		for _, p := range ps {
			// Logged a few minutes into the next period, as the schedule
			// would — but never after the demo's end (a year that ends
			// at midnight on New Year's Day ends with a period).
			l.clock.Set(minTime(p.End.Add(5*time.Minute), end.Add(-30*time.Minute)))
			r, err := l.svc.Reports.GenerateAt(ctx, p, p.End)
			if err != nil {
				return err
			}
			if r != nil {
				l.sum.PostureReports++
			}
		}
	}
	return nil
}
