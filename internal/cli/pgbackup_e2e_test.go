package cli_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"medguard/internal/cli"
	"medguard/internal/pgbackup/pgtest"
)

// TestBackupPGCommands is an information engineer's path with pgBackRest:
// init writes the configuration and says what postgresql.conf needs; the
// demo hospital goes into the database; check, create (full then incr),
// list, verify; a tampered repository file makes verify and restore refuse
// (exit 3) before anything is written; restored, the cluster is started
// on another port and its audit log and key file check out.
func TestBackupPGCommands(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	if underRace {
		t.Skip("runs its own PostgreSQL cluster and pgBackRest processes: once, in the plain runs")
	}
	bin := pgtest.Tools(t)
	dir := pgtest.Dir(t)
	data := t.TempDir()
	conf := filepath.Join(dir, "pgbackrest.conf")
	port := pgtest.FreePort(t)
	run := func(args ...string) (string, error) {
		var out strings.Builder
		err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out)
		return out.String(), err
	}
	common := []string{"--pgbackrest-config", conf, "--data", data, "--run-as", pgtest.RunAs()}

	out, err := run(append([]string{"backup-pg", "init", "--pg-data", filepath.Join(dir, "pg"), "--pg-port", strconv.Itoa(port),
		"--pg-socket", dir, "--repo", filepath.Join(dir, "repo")}, common...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var pgconf []string
	for _, line := range strings.Split(out, "\n") {
		for _, k := range []string{"wal_level", "archive_mode", "archive_command"} {
			if strings.HasPrefix(line, k+" = ") {
				pgconf = append(pgconf, line)
			}
		}
	}
	if len(pgconf) != 3 {
		t.Fatalf("init did not say what postgresql.conf needs:\n%s", out)
	}
	if b, err := os.ReadFile(conf); err != nil || !strings.Contains(string(b), "repo1-cipher-type=aes-256-cbc") {
		t.Fatalf("the configuration: %v\n%s", err, b)
	}
	cluster := pgtest.Init(t, bin, dir, "pg", port, pgconf...)
	cluster.Exec("postgres", "CREATE DATABASE medguard")
	dsn := cluster.DSN("medguard")
	if out, err := run("demo", "--data", data, "--db", dsn, "--patients", "20", "--records", "40", "--workers", "2"); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if out, err := run(append([]string{"backup-pg", "check"}, common...)...); err != nil || !strings.Contains(out, "archiving works") {
		t.Fatalf("check: %v\n%s", err, out)
	}
	out, err = run(append([]string{"backup-pg", "create", "--db", dsn, "--type", "full"}, common...)...)
	if err != nil || !strings.Contains(out, "backup ") || !strings.Contains(out, "KEK versions v1 ") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fullManifest := lines[len(lines)-1]
	full := strings.TrimSuffix(filepath.Base(fullManifest), ".manifest")
	out, err = run(append([]string{"backup-pg", "create", "--db", dsn, "--type", "incr"}, common...)...)
	if err != nil {
		t.Fatalf("create incr: %v\n%s", err, out)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	incr := strings.TrimSuffix(filepath.Base(lines[len(lines)-1]), ".manifest")

	out, err = run(append([]string{"backup-pg", "list"}, common...)...)
	if err != nil || !listed(out, full, "full") || !listed(out, incr, "incr") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = run(append([]string{"backup-pg", "verify", incr}, common...)...)
	if err != nil || !strings.Contains(out, incr+" ← "+full) || !strings.Contains(out, "pgbackrest verify: ok") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	// One byte changed in the full backup: verify and restore refuse.
	files, _ := filepath.Glob(filepath.Join(dir, "repo", "backup", "medguard", full, "pg_data", "base", "*", "*.gz"))
	victim := files[len(files)/2]
	orig, _ := os.ReadFile(victim)
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 0x80
	os.WriteFile(victim, bad, 0o640)
	rel, _ := filepath.Rel(filepath.Join(dir, "repo"), victim)
	var exit *cli.ExitError
	out, err = run(append([]string{"backup-pg", "verify", fullManifest}, common...)...)
	if !errors.As(err, &exit) || exit.Code != cli.ExitTampered || !strings.Contains(out, "changed: "+rel) {
		t.Fatalf("verify of a tampered backup: %v\n%s", err, out)
	}
	restored := filepath.Join(dir, "restored")
	out, err = run(append([]string{"backup-pg", "restore", incr, "--pg-data", restored, "--port", strconv.Itoa(pgtest.FreePort(t))}, common...)...)
	if !errors.As(err, &exit) || exit.Code != cli.ExitTampered || !strings.Contains(out, "changed: "+rel) {
		t.Fatalf("restore of a tampered backup: %v\n%s", err, out)
	}
	if _, err := os.Stat(restored); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore wrote %s: %v", restored, err)
	}
	// A drill of the tampered backup fails before restoring and is
	// recorded as failed; once repaired, a drill of the latest passes.
	out, err = run(append([]string{"backup-pg", "drill", incr, "--pg-bin", bin}, common...)...)
	if !errors.As(err, &exit) || exit.Code != cli.ExitTampered || !strings.Contains(out, "DRILL FAILED") || !strings.Contains(out, "changed: "+rel) {
		t.Fatalf("drill of a tampered backup: %v\n%s", err, out)
	}
	os.WriteFile(victim, orig, 0o640)
	out, err = run(append([]string{"backup-pg", "drill", "--latest", "--pg-bin", bin}, common...)...)
	if err != nil || !strings.Contains(out, "drill passed: backup "+incr) || !strings.Contains(out, "20 patients, 40 records") {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	t.Logf("drill:\n%s", out)
	drills, _ := filepath.Glob(filepath.Join(dir, "repo", "medguard", "medguard", "drills", "*.drill"))
	if len(drills) != 2 {
		t.Fatalf("drill records: %v", drills)
	}

	rport := pgtest.FreePort(t)
	out, err = run(append([]string{"backup-pg", "restore", incr, "--pg-data", restored, "--port", strconv.Itoa(rport), "--pg-bin", bin}, common...)...)
	t.Cleanup(pgtest.Attach(t, bin, restored, rport, dir).Stop)
	if err != nil || !strings.Contains(out, "audit log intact") || !strings.Contains(out, "the key file opens its data keys") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("restore:\n%s", out)
	// The restored cluster answers "medguard audit verify" too.
	out, err = run("audit", "verify", "--data", data, "--db", strings.Replace(dsn, strconv.Itoa(port), strconv.Itoa(rport), 1))
	if err != nil || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify of the restored cluster: %v\n%s", err, out)
	}
}

// listed reports whether the list shows a backup with its type.
func listed(out, label, typ string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == label && f[1] == typ {
			return true
		}
	}
	return false
}
