package cli_test

import (
	"context"
	"testing"
	"time"

	"medguard"
	"medguard/internal/deidjobs"
	"medguard/internal/identity"
	"medguard/internal/records"
	"medguard/internal/testkit"
)

// A de-identification job whose server stopped while it ran (a crash, a
// restart) is taken back to the queue once its lease is over, and runs
// to the end: it is never left "running" for good, and nothing half-made
// of it was kept.
func TestDeidJobLeftRunningIsTakenBack(t *testing.T) {
	if underRace {
		t.Skip("slow under the race detector (the scrubber, backups); CI runs it in the plain runs")
	}
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	app := openApp(t, clock)
	call := func(name, dept string, roles ...string) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(clock.Now()), Name: name,
			Department: dept, Roles: roles}, IP: "10.9.0.8"}
	}
	admin := call("admin", "", "admin")
	if _, err := app.Identity.CreateDepartment(ctx, admin, "CARD", "心内科"); err != nil {
		t.Fatal(err)
	}
	user := func(name, display, dept, role string) *medguard.Call {
		t.Helper()
		u, _, err := app.Identity.CreateUser(ctx, admin, identity.NewUser{Username: name, DisplayName: display, Department: dept,
			Roles: []string{role}, Password: staffPassword})
		if err != nil {
			t.Fatal(err)
		}
		c := call(name, dept, role)
		c.Actor.ID = u.ID
		return c
	}
	doctor := user("lina", "李娜", "CARD", "doctor")
	researcher := user("xuming", "徐明", "", "researcher")
	affairs := user("zhouqiang", "周强", "", "medical_affairs")
	var ids []string
	for i, name := range []string{"王秀英", "张伟", "刘洋"} {
		p, err := app.Records.CreatePatient(ctx, doctor, records.NewPatient{Name: name, Gender: []string{"female", "male", "male"}[i],
			BirthDate: "1958-04-0" + string(rune('1'+i)), Address: "北京市朝阳区建国路8" + string(rune('1'+i)) + "号"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.Records.CreateRecord(ctx, doctor, p.ID, records.NewRecord{Type: "progress_note", Department: "CARD",
			Title: "病程记录", Text: "患者" + name + "胸闷三天。", Classification: "general"}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	j, err := app.DeidJobs.Ask(ctx, researcher, deidjobs.NewJob{Purpose: "research", Reason: "冠心病队列", PatientIDs: ids,
		Fields: map[string]string{"gender": "keep", "text": "scrub"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Approvals.Approve(ctx, affairs, j.ApprovalID, "同意"); err != nil {
		t.Fatal(err)
	}
	// A server took the job and stopped before it finished: the job is
	// running, started now, with no output.
	if _, err := app.DB.ExecContext(ctx, `UPDATE deid_jobs SET status = 'running', started_at = $1 WHERE id = $2`,
		medguard.Millis(clock.Now()), j.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := app.DeidJobs.RunPending(ctx); err != nil || n != 0 {
		t.Fatalf("within its lease, another run leaves it alone: %d %v", n, err)
	}
	clock.Advance(31 * time.Minute)
	if n, err := app.DeidJobs.RunPending(ctx); err != nil || n != 1 {
		t.Fatalf("past its lease, it runs again: %d %v", n, err)
	}
	got, err := app.DeidJobs.Get(ctx, researcher, j.ID)
	if err != nil || got.Status != deidjobs.Done {
		t.Fatalf("the job: %+v %v", got, err)
	}
}
