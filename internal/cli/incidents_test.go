package cli_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/detect"
	"medguard/internal/incidents"
	"medguard/internal/testkit"
)

// TestOverdueIncidentDeadlineRaisesAlert checks the wiring of SPEC §7's
// "overdue items are alerted": a grade-2 incident whose emergency meeting
// is not held within 15 minutes raises an alert once the overdue check
// runs; its risk, isolated in time, raises none.
func TestOverdueIncidentDeadlineRaisesAlert(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	app := openApp(t, clock)
	so := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: "zhouqiang",
		Roles: []string{"security_officer"}}, IP: "10.1.9.9"}
	in, err := app.Incidents.Report(ctx, so, incidents.NewIncident{Title: "心内科病案系统无法访问",
		Description: "心内科病案系统无法访问，影响门诊", Grade: 2, Criterion: "department_affected"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := app.Incidents.AddUpdate(ctx, so, in.ID, incidents.NewUpdate{Kind: incidents.UpdateRiskIsolated,
		Text: "已隔离故障交换机"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := app.Incidents.CheckOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	alerts, _, err := app.Detect.Alerts(ctx, so, detect.AlertQuery{Rule: "incident_deadline_overdue", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	said := map[string]bool{}
	for _, a := range alerts {
		if a.Key != in.ID || a.Username != "system" {
			t.Errorf("alert %+v", a)
		}
		for _, name := range incidents.DeadlineNames {
			if strings.Contains(a.Explanation, "deadline "+name+" ") {
				said[name] = true
			}
		}
		if strings.Contains(a.Explanation, "心内科") {
			t.Errorf("the alert holds the incident's text: %q", a.Explanation)
		}
	}
	if !said[incidents.DeadlineEmergencyMeeting] || !said[incidents.DeadlineGradeConfirmation] || said[incidents.DeadlineRiskIsolation] {
		t.Fatalf("alerts for %v, want the emergency meeting and the grade confirmation only: %+v", said, alerts)
	}
}

// TestClosedIncidentClearsItsDeadlineAlerts closes an incident whose
// deadlines went overdue: the alerts they raised are acknowledged by
// medguard itself (each in the audit log), and the alerts of another
// incident stay new. Alerts are listed by severity and time, and read one
// at a time.
func TestClosedIncidentClearsItsDeadlineAlerts(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	app := openApp(t, clock)
	so := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: "zhouqiang",
		Roles: []string{"security_officer"}}, IP: "10.1.9.9"}
	report := func(title string) *incidents.Incident {
		in, err := app.Incidents.Report(ctx, so, incidents.NewIncident{Title: title, Description: title, Grade: 3, Criterion: "minor_fault"})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	closing, staying := report("打印机驱动故障"), report("门诊工作站蓝屏")
	clock.Advance(time.Hour) // the grade confirmations are overdue
	if _, err := app.Incidents.CheckOverdue(ctx); err != nil {
		t.Fatal(err)
	}
	open := func(id string) []detect.Alert {
		t.Helper()
		as, _, err := app.Detect.Alerts(ctx, so, detect.AlertQuery{Rule: detect.DeadlineOverdueRule, Status: detect.StatusNew, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var out []detect.Alert
		for _, a := range as {
			if a.Key == id {
				out = append(out, a)
			}
		}
		return out
	}
	before := open(closing.ID)
	if len(before) == 0 || len(open(staying.ID)) == 0 {
		t.Fatalf("no overdue alerts: %+v", before)
	}
	if _, err := app.Incidents.ConfirmGrade(ctx, so, closing.ID, incidents.GradeConfirmation{Grade: 3, Criterion: "minor_fault"}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Incidents.Close(ctx, so, closing.ID, "已更换驱动"); err != nil {
		t.Fatal(err)
	}
	if left := open(closing.ID); len(left) != 0 {
		t.Fatalf("alerts of the closed incident still new: %+v", left)
	}
	if len(open(staying.ID)) == 0 {
		t.Fatal("the other incident's alerts were cleared too")
	}
	a, err := app.Detect.Alert(ctx, so, before[0].ID)
	if err != nil || a.Status != detect.StatusAcknowledged || a.UpdatedBy != "system" {
		t.Fatalf("%+v %v", a, err)
	}
	size, _, _ := app.Log.Head(ctx)
	es, _, err := app.Log.Search(ctx, audit.Query{Action: "alert.acknowledged", Before: size, Limit: 10})
	cleared := slices.ContainsFunc(es, func(s audit.Stored) bool {
		return s.Entry.Actor == "system" && s.Entry.Rule == "allow.system.incident_closed"
	})
	if err != nil || !cleared {
		t.Fatalf("the clearing's entries: %+v %v", es, err)
	}
	if _, err := app.Detect.Alert(ctx, so, medguard.NewID(clock.Now())); !medguard.IsKind(err, medguard.NotFound) {
		t.Errorf("a missing alert: %v", err)
	}
	// Filters: severity and the time triggered.
	for _, c := range []struct {
		q    detect.AlertQuery
		want int
	}{
		{detect.AlertQuery{Severity: detect.SeverityMedium}, len(before) * 2},
		{detect.AlertQuery{Severity: detect.SeverityHigh}, 0},
		{detect.AlertQuery{From: clock.Now().Add(-time.Minute)}, len(before) * 2},
		{detect.AlertQuery{To: clock.Now().Add(-time.Minute)}, 0},
	} {
		c.q.Rule, c.q.Limit = detect.DeadlineOverdueRule, detect.MaxAlertPage
		as, _, err := app.Detect.Alerts(ctx, so, c.q)
		if err != nil || len(as) != c.want {
			t.Errorf("%+v: %d alerts, want %d (%v)", c.q, len(as), c.want, err)
		}
	}
}
