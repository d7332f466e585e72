package demo_test

import (
	"context"
	"os"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/cli"
	"medguard/internal/datause"
	"medguard/internal/deidjobs"
	"medguard/internal/demo"
	"medguard/internal/detect"
	"medguard/internal/identity"
	"medguard/internal/partners"
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
			sum, err := demo.Load(ctx, demo.Services{Identity: app.Identity, Records: app.Records, Approvals: app.Approvals,
				DataUse: app.DataUse, Partners: app.Partners, DeidJobs: app.DeidJobs, Inspections: app.Inspections, Media: app.Media,
				Training: app.Training, Assets: app.Assets, Vulns: app.Vulns, Incidents: app.Incidents, Risks: app.Risks, Plans: app.Plans,
				Reports: app.Reports, Rectify: app.Rectify, Compliance: app.Compliance}, clock,
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
			// The services judge loans, requests and agreements at the
			// real time once the demo is built: the states are the demo's
			// only when it was built for now.
			checkDataUse(t, app, sum, c.Name == "now")
			checkRegisters(t, app, sum, c.Name == "now")
			checkTraining(t, app, sum, c.Name == "now")
			checkVulns(t, app, sum, c.Name == "now")
			checkSecurityOffice(t, app, sum)
			checkRisksAndPlans(t, app, sum, c.Now)
			checkPostureReports(t, app, sum, c.Now)
			checkRectification(t, app, sum, c.Name == "now")
			checkCompliance(t, app, sum)
		})
	}
}

// checkDataUse checks, through the services as the offices would see
// them, the data use the demo made (SPEC §8): the medical-affairs and
// leadership accounts, nine paper folders (two lent, one of them overdue,
// and its alert), a record-use request pending, one in force and one
// expired, a copy, a partner with a live agreement and a linked
// researcher, and a de-identification job done. Without live, the real
// time is not the demo's, and only what does not depend on it is checked.
func checkDataUse(t *testing.T, app *cli.App, sum *demo.Summary, live bool) {
	t.Helper()
	ctx := context.Background()
	probe := func(dept string, roles ...string) *medguard.Call {
		return &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: "probe", Name: "probe", Department: dept, Roles: roles}}
	}
	roles := map[string]string{}
	for _, s := range sum.Examples {
		roles[s.Role] = s.Username
	}
	for _, role := range []string{"medical_affairs", "leadership"} {
		u, err := app.Identity.UserByUsername(ctx, roles[role])
		if err != nil || u.Status != identity.Active || len(u.Roles) != 1 || u.Roles[0] != role {
			t.Errorf("the %s account %q: %+v, %v", role, roles[role], u, err)
		}
	}
	clerk := probe("MRD", "records_clerk")
	folders, err := app.DataUse.ListFolders(ctx, clerk, datause.FolderQuery{})
	if err != nil {
		t.Fatal(err)
	}
	overdue, err := app.DataUse.ListFolders(ctx, clerk, datause.FolderQuery{Overdue: true})
	if err != nil {
		t.Fatal(err)
	}
	lent, err := app.DataUse.ListFolders(ctx, clerk, datause.FolderQuery{Status: datause.Lent})
	if err != nil {
		t.Fatal(err)
	}
	if len(folders) != 9 || len(lent) != 2 || live && len(overdue) != 1 || sum.Folders != 9 || sum.Loans != 3 {
		t.Errorf("%d folders, %d lent, %d overdue; summary %d folders, %d loans", len(folders), len(lent), len(overdue), sum.Folders, sum.Loans)
	}
	alerts, _, err := app.Detect.Alerts(ctx, probe("ITD", "security_officer"), detect.AlertQuery{Rule: datause.OverdueRule})
	if err != nil || len(alerts) != 1 {
		t.Errorf("%d alerts of an overdue folder, %v", len(alerts), err)
	}
	if uses, err := app.DataUse.ListUse(ctx, clerk, datause.UseQuery{}); err != nil || len(uses) != 3 || sum.UseRequests != 3 {
		t.Errorf("record-use requests: %+v, %v", uses, err)
	}
	for _, st := range []string{datause.Pending, datause.Approved, datause.Expired} {
		uses, err := app.DataUse.ListUse(ctx, clerk, datause.UseQuery{Status: st})
		if err != nil || live && (len(uses) != 1 || st == datause.Approved && !uses[0].Active) {
			t.Errorf("record-use requests %s: %+v, %v", st, uses, err)
		}
	}
	if copies, err := app.DataUse.ListCopies(ctx, clerk, ""); err != nil || len(copies) != 1 {
		t.Errorf("copies: %+v, %v", copies, err)
	}
	affairs := probe("MAD", "medical_affairs")
	ps, err := app.Partners.ListPartners(ctx, affairs, "")
	if err != nil || len(ps) != 1 {
		t.Fatalf("partners: %+v, %v", ps, err)
	}
	if p, err := app.Partners.GetPartner(ctx, affairs, ps[0].ID); err != nil || len(p.Agreements) != 1 || len(p.Accounts) != 1 ||
		live && (p.Status != partners.PartnerLive || p.LiveAgreements != 1) {
		t.Errorf("partner: %+v, %v", p, err)
	}
	jobs, err := app.DeidJobs.List(ctx, affairs)
	if err != nil || len(jobs) != 1 || jobs[0].Status != deidjobs.Done {
		t.Errorf("de-identification jobs: %+v, %v", jobs, err)
	}
}
