package demo_test

import (
	"context"
	"testing"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/detect"
	"medguard/internal/inspections"
	"medguard/internal/media"
)

// checkRegisters checks, through the services as the security office
// would see them, the registers the demo made (issue 13): a daily
// inspection every day of the year but five, all countersigned but
// yesterday's; readings out of range alerted, the earlier ones resolved
// by the next reading, yesterday's open; the missed days alerted; the
// checklist's second version; seven devices, one unencrypted and one
// disposed, three lent at the end (one overdue and alerted, one waiting
// for its borrower's signature). Without live, the real time is not the
// demo's, and only what does not depend on it is checked.
func checkRegisters(t *testing.T, app *cli.App, sum *demo.Summary, live bool) {
	t.Helper()
	ctx := context.Background()
	officer := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Department: "ITD",
		Roles: []string{"security_officer"}}}
	if sum.Inspections != 360 || sum.MissedDays != 5 || sum.OutOfRange < 8 || sum.ChecklistVersions != 1 || sum.Media != 7 || sum.MediaLoans != 10 {
		t.Errorf("summary: %d inspections, %d out of range, %d missed, %d versions, %d devices, %d loans", sum.Inspections, sum.OutOfRange,
			sum.MissedDays, sum.ChecklistVersions, sum.Media, sum.MediaLoans)
	}
	count := func(rule, status string) int {
		as, _, err := app.Detect.Alerts(ctx, officer, detect.AlertQuery{Rule: rule, Status: status, Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}
	if all, open := count(inspections.OutOfRangeRule, ""), count(inspections.OutOfRangeRule, detect.StatusNew); all < 8 || open != 1 {
		t.Errorf("out-of-range alerts: %d, %d open", all, open)
	}
	if n := count(inspections.MissedRule, ""); n != 5 {
		t.Errorf("%d missed-day alerts", n)
	}
	if n := count(media.OverdueRule, detect.StatusNew); n != 1 {
		t.Errorf("%d overdue media alerts", n)
	}
	ts, err := app.Inspections.Templates(ctx, officer)
	if err != nil || len(ts) != 2 || len(ts[0].Items) != 10 {
		t.Errorf("checklist versions: %+v %v", ts, err)
	}
	devices, err := app.Media.List(ctx, officer, "")
	if err != nil || len(devices) != 7 {
		t.Fatalf("devices: %+v %v", devices, err)
	}
	byStatus := map[string]int{}
	unencrypted := 0
	for _, d := range devices {
		byStatus[d.Status]++
		if !d.Encrypted {
			unencrypted++
		}
	}
	if byStatus[media.Disposed] != 1 || byStatus[media.Lent] != 3 || unencrypted != 1 {
		t.Errorf("devices by state %v, %d unencrypted", byStatus, unencrypted)
	}
	loans, err := app.Media.Loans(ctx, officer, media.LoanQuery{Status: media.AwaitingBorrower})
	if err != nil || len(loans) != 1 {
		t.Errorf("loans awaiting the borrower: %+v %v", loans, err)
	}
	if !live {
		return
	}
	days, _, err := app.Inspections.Days(ctx, officer, inspections.DayQuery{Limit: inspections.MaxDays, From: "2000-01-01"})
	if err == nil {
		t.Fatal("a query of 400 days and more was accepted")
	}
	today, err := app.Inspections.Today(ctx, officer)
	if err != nil || today.Status != inspections.DayDue {
		t.Fatalf("today: %+v %v", today, err)
	}
	from, _ := inspections.ParseDate(today.Day)
	days, _, err = app.Inspections.Days(ctx, officer, inspections.DayQuery{From: from.AddDays(-365).String(), Limit: inspections.MaxDays})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, d := range days {
		states[d.Status]++
	}
	if states[inspections.DaySigned] != 358 || states[inspections.DayAwaitingReview] != 2 || states[inspections.DayMissed] != 5 || states[inspections.DayDue] != 1 {
		t.Errorf("the year's days: %v", states)
	}
	weeks, err := app.Inspections.Weeks(ctx, officer, "", "")
	if err != nil || len(weeks) != 12 || weeks[1].Days != 7 {
		t.Errorf("the weekly summary: %+v %v", weeks, err)
	}
}
