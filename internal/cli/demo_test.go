package cli_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/datause"
	"medguard/internal/identity"
	"medguard/internal/records"
	"medguard/internal/storage/storagetest"
)

// The demo builds a small hospital through the gate: everything it made is
// in the audit log, and a second run into the same installation is refused.
func TestDemoHospital(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	if underRace {
		t.Skip("the demo runs without the race detector (CI runs it in the plain runs)")
	}
	dir := t.TempDir()
	args := []string{"demo", "--data", dir, "--patients", "120", "--records", "400", "--seed", "7"}
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		args = append(args, "--db", storagetest.FreshSchema(t, dsn))
	}
	var out bytes.Buffer
	if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"120 patients", "400 records", "emergency accesses", "Demo#Yiyuan2026", "dept_head",
		"medical_affairs", "leadership", "The partner's researcher", "Data use: 9 paper folders (3 loans, one overdue), 3 record-use requests",
		"Security office: 360 daily inspections", "Training: 5 courses", "is refused records until trained"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out); err == nil ||
		!strings.Contains(err.Error(), "empty installation") {
		t.Fatalf("second run: %v", err)
	}

	cfg := cli.Config{DataDir: dir}
	if i := strings.Index(strings.Join(args, " "), "--db "); i >= 0 {
		cfg.DB = args[len(args)-1]
	}
	app, err := cli.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	size, _, _ := app.Log.Head(context.Background())
	if size < 120+400 {
		t.Fatalf("only %d audit entries", size)
	}
	// The records office can list the late archives the demo made: a
	// clerk of the demo (trained: the demo requires the privacy course for
	// record access).
	staff, err := app.Identity.Roster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(staff, func(m identity.StaffMember) bool { return slices.Equal(m.Roles, []string{"records_clerk"}) })
	if i < 0 {
		t.Fatal("the demo has no records clerk")
	}
	clerk := &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: staff[i].ID, Name: staff[i].Username, Department: "MRD",
		Roles: []string{"records_clerk"}}}
	if _, err := app.Records.LateArchiving(context.Background(), clerk, "", records.Admission{}.AdmittedAt); err != nil {
		t.Fatal(err)
	}
	// and its paper folders, one lent past its due date.
	if overdue, err := app.DataUse.ListFolders(context.Background(), clerk, datause.FolderQuery{Overdue: true}); err != nil || len(overdue) != 1 {
		t.Errorf("overdue folders: %+v, %v", overdue, err)
	}
}
