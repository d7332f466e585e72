package demo_test

import (
	"context"
	"os"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/identity"
	"medguard/internal/storage/storagetest"
)

// TestLoadOnAwkwardDays builds a small demo hospital (through the real
// services, on SQLite, and on PostgreSQL when MEDGUARD_TEST_POSTGRES is
// set) with the clock on days that once broke it or might: New Year in
// Beijing, a leap day, 6 December 2026, 1 March and today. Each must load,
// and the audit log must show a year that ends before now, with nothing
// done to a patient before the patient was registered.
func TestLoadOnAwkwardDays(t *testing.T) {
	for _, c := range demo.AwkwardDays() {
		t.Run(c.Name, func(t *testing.T) {
			ctx := context.Background()
			clock := &demo.Clock{}
			clock.Set(c.Now.AddDate(-1, 0, -3))
			cfg := cli.Config{DataDir: t.TempDir(), Clock: clock,
				Identity: identity.Config{Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1}}}
			if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
				// One at a time: each installation may open 32
				// connections, and the server allows 100 in all.
				cfg.DB = storagetest.FreshSchema(t, dsn)
			} else {
				t.Parallel()
			}
			app, err := cli.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()
			sum, err := demo.Load(ctx, demo.Services{Identity: app.Identity, Records: app.Records, Approvals: app.Approvals}, clock,
				demo.Options{Seed: 1, Patients: 80, Records: 300, Workers: 8, Now: c.Now, AdminPassword: "Demo#Guanli2026", SecurityPassword: "Demo#Anquan2026",
					StaffPassword: "Demo#Yiyuan2026"})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Patients != 80 || sum.Records != 300 || sum.Admissions == 0 || sum.BreakGlass == 0 {
				t.Errorf("made %+v", sum)
			}

			size, _, err := app.Log.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var entries []audit.Stored
			for len(entries) < int(size) {
				page, err := app.Log.Entries(ctx, uint64(len(entries)), size)
				if err != nil {
					t.Fatal(err)
				}
				entries = append(entries, page...)
			}
			earliest := c.Now.AddDate(-1, 0, -3)
			registered := map[string]time.Time{}
			for _, s := range entries {
				e := s.Entry
				if e.Time.After(c.Now) || e.Time.Before(earliest) {
					t.Fatalf("entry %d (%s) at %v, outside %v to now (%v)", s.Index, e.Action, e.Time, earliest, c.Now)
				}
				if e.PatientID == "" || e.Outcome != audit.Success {
					continue
				}
				if e.Action == "patient.create" {
					registered[e.PatientID] = e.Time
				} else if at, ok := registered[e.PatientID]; !ok || e.Time.Before(at) {
					t.Fatalf("entry %d (%s) at %v, about a patient registered at %v", s.Index, e.Action, e.Time, at)
				}
			}
			if len(registered) != 80 {
				t.Errorf("%d patients registered", len(registered))
			}
		})
	}
}
