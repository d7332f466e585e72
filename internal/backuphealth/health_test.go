package backuphealth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/backuphealth"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// The service's reading of a report: what is late, what is secret, the
// order and pages of the drills, and that every read — refused or not —
// is in the audit log. A real schedule behind it is driven by the API and
// console tests (internal/cli, internal/console); here the report is a
// fixed one, so that every edge can be set.

var now = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

type report struct {
	st     backup.Status
	drills []backup.Drill
	err    error
}

func (r *report) Status() backup.Status { return r.st }
func (r *report) Drills(context.Context) ([]backup.Drill, error) {
	return r.drills, r.err
}

func open(t *testing.T) (*backuphealth.Service, *audit.Log, *storage.DB) {
	t.Helper()
	db := storagetest.Open(t, audit.Schema())
	log, err := audit.Open(context.Background(), db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return backuphealth.New(gate.New(log, testkit.NewClock(now))), log, db
}

func call(role string) *medguard.Call {
	return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "u-" + role, Name: role, Roles: []string{role}},
		IP: "10.1.2.3", RequestID: "r1"}
}

func TestHealthNotConfigured(t *testing.T) {
	s, _, _ := open(t)
	h, err := s.Health(context.Background(), call(policy.ITEngineer))
	if err != nil {
		t.Fatal(err)
	}
	if h.Configured || len(h.Targets) != 0 || h.LastDrill != nil || h.RPOSeconds != nil {
		t.Errorf("without a schedule: %+v", h)
	}
	ds, next, err := s.Drills(context.Background(), call(policy.ITEngineer), "", 10)
	if err != nil || len(ds) != 0 || next != "" {
		t.Errorf("drills without a schedule: %v %q %v", ds, next, err)
	}
}

func TestHealth(t *testing.T) {
	s, _, _ := open(t)
	drill := func(id string, at time.Time, ok bool, rto time.Duration) backup.Drill {
		return backup.Drill{ID: id, StartedAt: at, OK: ok, RTO: rto, RPO: 30 * time.Second, Target: "/mnt/backup-disk",
			Steps: []backup.Step{{Name: "verify", Took: time.Second}, {Name: "data", Took: 2 * time.Second}}}
	}
	r := &report{
		st: backup.Status{
			Targets: []backup.TargetStatus{
				{URL: "/mnt/backup-disk", Media: "disk", LastBackup: now.Add(-2 * time.Hour)},
				{URL: "s3://medguard/his?endpoint=oss.example.cn:9000&X-Amz-Credential=AKIA123&region=cn-north-1", Media: "object-store",
					OffSite: true, LastBackup: now.Add(-25 * time.Hour),
					LastError: `Put "https://admin:hunter2@oss.example.cn:9000/medguard?X-Amz-Signature=abcdef": connection refused`},
				{URL: "/mnt/third", Media: "disk"},
			},
			Shipped: now.Add(-20 * time.Second), RPO: 20 * time.Second,
			State: backup.State{Copies: 3, Media: 2, OffSite: 1, Met: true},
		},
		drills: []backup.Drill{
			drill("20260220T010000Z-drill", now.Add(-10*24*time.Hour), false, 0),
			drill("20260225T010000Z-drill", now.Add(-5*24*time.Hour), true, 5*time.Hour),
			drill("20260301T010000Z-drill", now.Add(-25*time.Hour), true, 90*time.Second),
		},
	}
	s.Watch(r, backuphealth.Periods{})
	h, err := s.Health(context.Background(), call(policy.SecurityOfficer))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Configured || len(h.Targets) != 3 {
		t.Fatalf("health: %+v", h)
	}
	disk, store, third := h.Targets[0], h.Targets[1], h.Targets[2]
	if disk.Late || *disk.AgeSeconds != 7200 {
		t.Errorf("a 2-hour-old full backup: late %v, age %v", disk.Late, *disk.AgeSeconds)
	}
	if !store.Late || !third.Late || third.LastBackup != nil || third.AgeSeconds != nil {
		t.Errorf("a 25-hour-old full and none at all must be late: %+v %+v", store, third)
	}
	if want := "s3://medguard/his?endpoint=oss.example.cn%3A9000&region=cn-north-1"; store.URL != want {
		t.Errorf("the S3 URL shown is %q, want %q", store.URL, want)
	}
	for _, secret := range []string{"hunter2", "admin:", "AKIA123", "abcdef"} {
		if strings.Contains(store.URL+store.LastError, secret) {
			t.Errorf("%q is shown: %s / %s", secret, store.URL, store.LastError)
		}
	}
	if !strings.Contains(store.LastError, "connection refused") {
		t.Errorf("the error lost its meaning: %s", store.LastError)
	}
	if h.RPOSeconds == nil || *h.RPOSeconds != 20 || h.RPOLate {
		t.Errorf("RPO: %v late %v", h.RPOSeconds, h.RPOLate)
	}
	if d := h.LastDrill; d == nil || d.ID != "20260301T010000Z-drill" || !d.OK || !d.RTOMet || d.RTOSeconds != 90 || len(d.Steps) != 2 {
		t.Errorf("last drill: %+v", h.LastDrill)
	}
	if h.RPOGoalSeconds != 900 || h.RTOGoalSeconds != 14400 || h.FullEverySeconds != 86400 || h.IncrementalSeconds != 900 {
		t.Errorf("goals and periods: %+v", h)
	}

	// A stream 40 minutes behind is late, against the goal and twice the period.
	r.st.RPO = 40 * time.Minute
	if h, _ := s.Health(context.Background(), call(policy.Auditor)); !h.RPOLate {
		t.Error("a 40-minute RPO is not late")
	}

	// Drills: newest first, in pages; a drill over 4 h has not met the RTO goal.
	ds, next, err := s.Drills(context.Background(), call(policy.ITEngineer), "", 2)
	if err != nil || len(ds) != 2 || ds[0].ID != "20260301T010000Z-drill" || next != "20260225T010000Z-drill" {
		t.Fatalf("first page: %v next %q err %v", ds, next, err)
	}
	if ds[1].RTOMet {
		t.Error("a 5-hour restore met the 4-hour goal")
	}
	ds, next, err = s.Drills(context.Background(), call(policy.ITEngineer), next, 2)
	if err != nil || len(ds) != 1 || ds[0].ID != "20260220T010000Z-drill" || next != "" || ds[0].OK {
		t.Fatalf("second page: %v next %q err %v", ds, next, err)
	}

	// Targets that cannot be read: the drills are an internal error, the
	// health falls back on the schedule's own last drill.
	r.err, r.drills = errors.New("open /mnt/backup-disk/drills: permission denied"), nil
	r.st.LastDrill = &backup.Drill{ID: "x-drill", OK: true, StartedAt: now}
	if _, _, err := s.Drills(context.Background(), call(policy.ITEngineer), "", 2); err == nil {
		t.Error("unreadable drills listed")
	}
	if h, _ := s.Health(context.Background(), call(policy.ITEngineer)); h.LastDrill == nil || h.LastDrill.ID != "x-drill" {
		t.Errorf("fallback drill: %+v", h.LastDrill)
	}
}

// TestReadsAudited: allowed reads and refusals each leave an entry with
// the rule that decided.
func TestReadsAudited(t *testing.T) {
	s, log, db := open(t)
	ctx := context.Background()
	if _, err := s.Health(ctx, call(policy.ITEngineer)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Health(ctx, call(policy.Doctor))
	var me *medguard.Error
	if !errors.As(err, &me) || me.Kind != medguard.Forbidden {
		t.Fatalf("a doctor reads the backups' health: %v", err)
	}
	if _, _, err := s.Drills(ctx, call(policy.Nurse), "", 10); !errors.As(err, &me) || me.Kind != medguard.Forbidden {
		t.Fatalf("a nurse lists the drills: %v", err)
	}
	size, _, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := audit.ReadEntries(ctx, db, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Entry.Action+" "+e.Entry.Actor+" "+e.Entry.Decision+" "+e.Entry.Rule)
	}
	want := []string{
		"backup.status it_engineer allow allow.permission",
		"backup.status doctor deny deny.no_permission",
		"backup.drills nurse deny deny.no_permission",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGlance: the daily inspection's view of the backups — nothing when
// no schedule runs; late and failing targets counted, the RPO judged;
// healthy only with every target fresh; no read of the log.
func TestGlance(t *testing.T) {
	s, log, _ := open(t)
	if g := s.Glance(); g.Configured || g.OK() {
		t.Fatalf("without a schedule: %+v", g)
	}
	r := &report{st: backup.Status{
		Targets: []backup.TargetStatus{
			{URL: "/mnt/backup-disk", Media: "disk", LastBackup: now.Add(-2 * time.Hour)},
			{URL: "s3://medguard/his", Media: "object-store", OffSite: true, LastBackup: now.Add(-3 * time.Hour)},
		},
		Shipped: now.Add(-time.Minute), RPO: time.Minute, State: backup.State{Copies: 3, Media: 2, OffSite: 1, Met: true},
	}}
	s.Watch(r, backuphealth.Periods{})
	g := s.Glance()
	if !g.OK() || g.Targets != 2 || g.Late != 0 || g.Failing != 0 || g.FullAge != 3*time.Hour || g.RPO != time.Minute || !g.Met321 {
		t.Fatalf("healthy: %+v", g)
	}
	r.st.Targets[1].LastBackup = now.Add(-25 * time.Hour)
	r.st.Targets[0].LastError = "connection refused"
	r.st.RPO = 40 * time.Minute
	if g := s.Glance(); g.OK() || g.Late != 1 || g.Failing != 1 || !g.RPOLate || g.FullAge != 25*time.Hour {
		t.Fatalf("late and failing: %+v", g)
	}
	r.st.Targets = append(r.st.Targets, backup.TargetStatus{URL: "/mnt/third", Media: "disk"})
	if g := s.Glance(); g.Late != 2 {
		t.Fatalf("a target without a full backup is late: %+v", g)
	}
	if size, _, err := log.Head(context.Background()); err != nil || size != 0 {
		t.Fatalf("a glance wrote %d entries (%v)", size, err)
	}
}
