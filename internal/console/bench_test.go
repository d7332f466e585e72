package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/demo"
	"medguard/internal/identity"
	"medguard/internal/storage/storagetest"
)

// Render benchmarks (issue 5, item 7): the server-side time of the
// dashboard and of a record page, from request to the last byte, through
// the whole handler (session, policy, decryption, audit append, template).
// They run on the demo hospital (package demo, as "medguard demo" builds
// it), sized by MEDGUARD_BENCH_PATIENTS (default 300 patients, five records
// each; "medguard demo" makes 10,000):
//
//	go test -run '^$' -bench 'Dashboard|RecordPage' -benchtime 200x ./internal/console/
//	MEDGUARD_BENCH_PATIENTS=10000 go test -run '^$' -bench 'Dashboard|RecordPage' -benchtime 200x -timeout 1h ./internal/console/

type demoHospital struct {
	handler http.Handler
	officer string // a security officer's session token (the fullest dashboard)
	doctor  string // a doctor's session token
	record  string // a record of the doctor's department
}

func openDemo(b *testing.B) *demoHospital {
	b.Helper()
	n := 300
	if v := os.Getenv("MEDGUARD_BENCH_PATIENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("MEDGUARD_BENCH_PATIENTS=%q", v)
		}
	}
	ctx := context.Background()
	app, sum := loadDemo(b, n)
	d := &demoHospital{handler: app.Web.Handler()}
	var doctor *demo.Staff
	for i, s := range sum.Examples {
		switch s.Role {
		case "security_officer":
			d.officer = signInDemo(b, app, s.Username)
		case "doctor":
			if doctor == nil {
				doctor = &sum.Examples[i]
			}
		}
	}
	if d.officer == "" || doctor == nil {
		b.Fatalf("the demo has no security officer or doctor: %+v", sum.Examples)
	}
	d.doctor = signInDemo(b, app, doctor.Username)
	p, err := app.Identity.Authenticate(ctx, d.doctor, "127.0.0.1", "")
	if err != nil {
		b.Fatal(err)
	}
	call := &medguard.Call{Actor: p.Actor, IP: "127.0.0.1", Purpose: "treatment"}
	ps, _, err := app.Records.ListPatients(ctx, call, "", "", 50)
	if err != nil {
		b.Fatal(err)
	}
	for _, pt := range ps {
		rs, _, err := app.Records.ListRecords(ctx, call, pt.ID, "", 1)
		if err == nil && len(rs) > 0 {
			d.record = rs[0].ID
			break
		}
	}
	if d.record == "" {
		b.Fatal("no record for the doctor")
	}
	return d
}

// loadDemo builds the demo hospital with n patients (five records each)
// over the year that ended yesterday, then lets its clock run live.
func loadDemo(b testing.TB, n int) (*cli.App, demo.Summary) {
	b.Helper()
	ctx := context.Background()
	clock := &demo.Clock{}
	clock.Set(time.Now().AddDate(-1, 0, -1))
	cfg := cli.Config{DataDir: b.TempDir(), Clock: clock}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		cfg.DB = storagetest.FreshSchema(b, dsn)
	}
	app, err := cli.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { app.Close() })
	sum, err := demo.Load(ctx, demo.Services{Identity: app.Identity, Records: app.Records, Approvals: app.Approvals,
		Inspections: app.Inspections, Media: app.Media, Assets: app.Assets, Vulns: app.Vulns,
		Risks: app.Risks, Plans: app.Plans, Training: app.Training, Reports: app.Reports, Rectify: app.Rectify,
		Compliance: app.Compliance}, clock,
		demo.Options{Seed: 1, Patients: n, Records: 5 * n, AdminPassword: adminPassword, SecurityPassword: securityPassword, StaffPassword: staffPassword})
	if err != nil {
		b.Fatal(err)
	}
	clock.Live()
	return app, *sum
}

// signInDemo signs a member of the demo's staff in through the services,
// enrolling TOTP when their role needs it, and returns the session token.
func signInDemo(b testing.TB, app *cli.App, username string) string {
	b.Helper()
	ctx := context.Background()
	call := &medguard.Call{IP: "127.0.0.1"}
	password := map[string]string{"admin": adminPassword, "security": securityPassword}[username]
	if password == "" {
		password = staffPassword
	}
	in, err := app.Identity.Login(ctx, call, identity.Credentials{Username: username, Password: password})
	if err != nil {
		b.Fatalf("%s: %v", username, err)
	}
	if !in.MFAEnrollmentRequired {
		return in.Token
	}
	p, err := app.Identity.Authenticate(ctx, in.Token, "127.0.0.1", "")
	if err != nil {
		b.Fatal(err)
	}
	call = &medguard.Call{Actor: p.Actor, IP: "127.0.0.1"}
	enr, err := app.Identity.StartTOTP(ctx, call)
	if err != nil {
		b.Fatal(err)
	}
	code, _ := totp.GenerateCode(enr.Secret, time.Now())
	full, err := app.Identity.ConfirmTOTP(ctx, call, code)
	if err != nil {
		b.Fatal(err)
	}
	return full.Token
}

func benchPage(b *testing.B, h http.Handler, token, path string) {
	b.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Accept-Language", "zh-CN")
	req.AddCookie(&http.Cookie{Name: "__Host-mg_session", Value: token})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
	}
}

// BenchmarkDashboard renders the security officer's dashboard: figures,
// record reads per hour over 24 h from the audit log, alerts and
// incidents, each read through the gate (and so audited).
func BenchmarkDashboard(b *testing.B) {
	d := openDemo(b)
	benchPage(b, d.handler, d.officer, "/")
}

// BenchmarkRecordPage renders a record for a doctor of its department:
// policy decision, decryption, durable audit append, template.
func BenchmarkRecordPage(b *testing.B) {
	d := openDemo(b)
	benchPage(b, d.handler, d.doctor, "/records/"+d.record)
}
