package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/records"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// The retention period may only rise, and "medguard audit archive" moves
// only entries older than it into signed files that "audit verify" checks.
func TestAuditArchiveCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := cli.Config{DataDir: dir}
	var dbArgs []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		cfg.DB = storagetest.FreshSchema(t, dsn)
		dbArgs = []string{"--db", cfg.DB}
	}
	his := &medguard.Call{Actor: medguard.Actor{Kind: medguard.APIKeyActor, ID: "k", Name: "apikey:his",
		Scopes: []string{"patient.create"}}}
	// A year and more ago, the hospital registered patients; and today too.
	clock := testkit.NewClock(time.Now().Add(-400 * 24 * time.Hour))
	cfg.Clock = clock
	for _, when := range []time.Duration{0, 300 * 24 * time.Hour, 100 * 24 * time.Hour} {
		clock.Advance(when)
		app, err := cli.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"王秀英", "李建国", "张伟"} {
			if _, err := app.Records.CreatePatient(ctx, his, records.NewPatient{Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := app.Checkpoints.Latest(ctx); err != nil {
			t.Fatal(err)
		}
		app.Close()
	}

	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cli.Run(ctx, append(args, dbArgs...), func(string) string { return "" }, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	cfg.Clock = medguard.SystemClock{}
	cfg.AuditRetentionDays = 90
	if _, err := cli.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "at least 180") {
		t.Fatalf("90 days accepted: %v", err)
	}
	out, err := run("audit", "archive", "--data", dir, "--before", time.Now().Add(24*time.Hour).Format(time.DateOnly))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "retention 180 days") || !strings.Contains(out, "archived entries 0 to 2 ") {
		t.Fatalf("archive:\n%s", out)
	}
	out, err = run("audit", "verify", "--data", dir)
	if err != nil || !strings.Contains(out, "audit log intact: 9 entries") || !strings.Contains(out, "3 entries [0, 3) from the archive files") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	// A changed archive file fails verification (exit 3); lost files cannot be verified (exit 1).
	files, _ := filepath.Glob(filepath.Join(dir, "audit-archive", "*.jsonl"))
	orig, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], bytes.Replace(orig, []byte(`"apikey:his"`), []byte(`"apikey:hiz"`), 1), 0o600)
	out, err = run("audit", "verify", "--data", dir)
	var exit *cli.ExitError
	if !errors.As(err, &exit) || exit.Code != cli.ExitTampered || !strings.Contains(out, "first bad index: 0") {
		t.Fatalf("tampered archive: %v\n%s", err, out)
	}
	os.Rename(filepath.Join(dir, "audit-archive"), filepath.Join(dir, "elsewhere"))
	if out, err = run("audit", "verify", "--data", dir); err == nil || !strings.Contains(err.Error(), "archive files") {
		t.Fatalf("verify without the archive: %v\n%s", err, out)
	}

	// Raised to a year, it cannot be lowered again.
	cfg.AuditRetentionDays = 365
	app, err := cli.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
	cfg.AuditRetentionDays = 200
	if _, err := cli.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "never lowered") {
		t.Fatalf("lowered to 200 days: %v", err)
	}
}
