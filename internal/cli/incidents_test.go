package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"medguard"
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
