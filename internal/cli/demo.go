package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"medguard/internal/demo"
	"medguard/internal/keys"
)

// Demo passwords: printed at the end, meant only for a demonstration.
const (
	demoAdminPassword = "Demo#Guanli2026"
	demoStaffPassword = "Demo#Yiyuan2026"
	// demoSecurityPassword is the security administrator's ("security").
	demoSecurityPassword = "Demo#Anquan2026"
)

// demoCmd runs "medguard demo".
func demoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	var f serveFlags
	commonFlags(fs, &f)
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same hospital")
	patients := fs.Int("patients", 10000, "number of patients")
	recs := fs.Int("records", 50000, "number of records")
	workers := fs.Int("workers", 32, "concurrent loaders")
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard demo [flags]\n\nFills an empty data directory (or database) with a synthetic hospital: departments,\nstaff in every role, patients with a year of admissions and records in Chinese,\nemergency accesses and refusals, paper folders and record-use requests, a partner and\na de-identification job. Then run \"medguard serve\" with the same --data.")
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if *patients < 1 || *recs < *patients {
		return usageError{fmt.Errorf("--records must be at least --patients, and --patients at least 1")}
	}
	alg, err := keys.ParseAlgorithm(f.cipher)
	if err != nil {
		return usageError{err}
	}
	// One reading of the real time for the whole run; the key file is made
	// before the simulated year (which starts a year and a day before now).
	now := time.Now().UTC()
	clock := &demo.Clock{}
	clock.Set(now.AddDate(-1, 0, -3))
	app, err := Open(ctx, Config{DataDir: f.data, DB: f.db, KeyFile: f.keyFile, Keys: getenv("MEDGUARD_KEYS"), Cipher: alg, Clock: clock,
		Reports: ReportsConfig{Hospital: DemoHospital}})
	if err != nil {
		return err
	}
	defer app.Close()
	if has, err := app.Identity.HasUsers(ctx); err != nil {
		return err
	} else if has {
		return fmt.Errorf("demo needs an empty installation, and %s already holds one; choose another --data (or --db)", app.DB.Where)
	}
	adminPassword := getenv("MEDGUARD_ADMIN_PASSWORD")
	if adminPassword == "" {
		adminPassword = demoAdminPassword
	}
	securityPassword := getenv("MEDGUARD_SECURITY_PASSWORD")
	if securityPassword == "" {
		securityPassword = demoSecurityPassword
	}
	fmt.Fprintf(stdout, "Building a synthetic hospital in %s (seed %d, %d patients, %d records)\n", app.DB.Where, *seed, *patients, *recs)
	sum, err := demo.Load(ctx, demo.Services{Identity: app.Identity, Records: app.Records, Approvals: app.Approvals,
		DataUse: app.DataUse, Partners: app.Partners, DeidJobs: app.DeidJobs, Inspections: app.Inspections, Media: app.Media,
		Training: app.Training, Assets: app.Assets, Vulns: app.Vulns, Incidents: app.Incidents, Risks: app.Risks, Plans: app.Plans,
		Reports: app.Reports, Rectify: app.Rectify, Compliance: app.Compliance}, clock,
		demo.Options{Seed: *seed, Patients: *patients, Records: *recs, Workers: *workers, AdminPassword: adminPassword,
			SecurityPassword: securityPassword, StaffPassword: demoStaffPassword, Now: now, Progress: stdout})
	if err != nil {
		return err
	}
	size, _, _ := app.Log.Head(ctx)
	fmt.Fprintf(stdout, "\nDone in %s: %d departments, %d staff, %d patients, %d admissions, %d records,\n"+
		"%d emergency accesses, %d refused reads, %d access grants, %d care-team members, %d late archivings;\n"+
		"%d audit entries.\n\n", sum.Took.Round(time.Second), sum.Departments, sum.Staff, sum.Patients, sum.Admissions,
		sum.Records, sum.BreakGlass, sum.Denied, sum.Grants, sum.CareTeams, sum.LateArchives, size)
	if sum.Folders > 0 {
		fmt.Fprintf(stdout, "Data use: %d paper folders (%d loans, one overdue), %d record-use requests (pending, in force,\n"+
			"expired), %d copy, %d partner with a live agreement and a linked researcher, %d de-identification job.\n\n",
			sum.Folders, sum.Loans, sum.UseRequests, sum.Copies, sum.Partners, sum.DeidJobs)
	}
	if sum.Inspections > 0 {
		fmt.Fprintf(stdout, "Security office: %d daily inspections (%d readings out of range, %d days missed, a checklist\n"+
			"version %d), %d removable media with %d loans (one overdue, one waiting for its borrower's signature).\n\n",
			sum.Inspections, sum.OutOfRange, sum.MissedDays, sum.ChecklistVersions+1, sum.Media, sum.MediaLoans)
	}
	if sum.Courses > 0 {
		fmt.Fprintf(stdout, "Training: %d courses, %d sessions, %d results, %d quarterly assessments; the privacy course is\n"+
			"required for record access, and %s, a doctor who joined yesterday, is refused records until trained.\n\n",
			sum.Courses, sum.TrainingSessions, sum.TrainingResults, sum.Assessments, sum.NewDoctor)
	}
	if sum.Assets > 0 {
		fmt.Fprintf(stdout, "Vulnerabilities: %d assets in the register, %d scans imported over the year, %d vulnerabilities in every\n"+
			"state (overdue ones alerted), %d suspension of exports while Log4Shell was open: console 漏洞管理 (/vulns).\n\n",
			sum.Assets, sum.Scans, sum.Vulns, sum.Suspensions)
	}
	if sum.Incidents > 0 {
		fmt.Fprintf(stdout, "Security office: %d incidents (one still open), %d accountability cases (a repeat offence\n"+
			"among them), %d anonymous reports (one waiting for triage).\n\n", sum.Incidents, sum.Cases, sum.Reports)
	}
	if sum.Risks > 0 {
		fmt.Fprintf(stdout, "Security office: %d risks on the register (reviews overdue, an acceptance waiting for the\n"+
			"leadership), %d emergency plans through review and approval, %d drills with gaps and improvement items.\n\n",
			sum.Risks, sum.Plans, sum.Drills)
	}
	if sum.PostureReports > 0 {
		fmt.Fprintf(stdout, "Leadership: %d posture reports of the last weeks, months and quarters (PDF and HTML, signed in the\n"+
			"audit log): console 安全态势报告 (/reports).\n\n", sum.PostureReports)
	}
	if sum.Rectifications > 0 {
		fmt.Fprintf(stdout, "Rectification: %d items from the MLPS assessment's report, internal audits, failing checks and\n"+
			"quarterly checks (some verified, some waiting, one sent back, a few overdue), %d quarterly compliance checks\n"+
			"published to the department heads, %d monthly reviews signed.\n\n", sum.Rectifications, sum.QuarterlyChecks, sum.Reviews)
	}
	if sum.ComplianceRun != "" {
		fmt.Fprintf(stdout, "Compliance checks: run %s at the end of the year; failing: %s (console 合规检查, /compliance;\n"+
			"GET /api/v1/compliance/report). %s, a departed doctor, left the LIS key he made alive.\n\n",
			sum.ComplianceRun, strings.Join(sum.ComplianceFailing, ", "), sum.DepartedDoctor)
	}
	if len(sum.Frozen) > 0 {
		fmt.Fprintf(stdout, "Detection froze %s after a burst of reads: see GET /api/v1/alerts and /api/v1/incidents\n"+
			"as a security officer, who can release the account (POST /api/v1/users/{id}/release).\n\n", strings.Join(sum.Frozen, ", "))
	}
	serveCmd := "medguard serve --data " + f.data
	if f.db != "" {
		serveCmd += " --db '" + f.db + "'"
	}
	fmt.Fprintf(stdout, "Start it:   %s\nThen sign in at https://127.0.0.1:8443 (POST /api/v1/auth/login):\n\n", serveCmd)
	fmt.Fprintf(stdout, "  %-18s %-16s %-10s %s\n", "role", "username", "department", "password")
	for _, s := range sum.Examples {
		pw := sum.StaffPassword
		switch s.Username {
		case "admin":
			pw = sum.AdminPassword
		case "security":
			pw = sum.SecurityPassword
		}
		fmt.Fprintf(stdout, "  %-18s %-16s %-10s %s\n", s.Role, s.Username, s.Department, pw)
	}
	fmt.Fprintf(stdout, "\nEvery member of staff has the password %s, and everyone — the administrator\n"+
		"and the security administrator included — enrols a TOTP authenticator at the first\n"+
		"sign-in. The administrator asks for roles and resets; the security administrator\n"+
		"(or, for a department's clinical roles, its head) approves them. Medical affairs\n"+
		"(医务科) approves exports and de-identification jobs; the leadership group\n"+
		"(领导小组) reads the security posture. These are demonstration passwords:\n"+
		"never use a demo installation for real patients.\n", strings.TrimSpace(sum.StaffPassword))
	if sum.PartnerResearcher != "" {
		fmt.Fprintf(stdout, "\nThe partner's researcher (合作单位科研人员) is %s: their de-identification job\n"+
			"is done, its output ready to download.\n", sum.PartnerResearcher)
	}
	return nil
}
