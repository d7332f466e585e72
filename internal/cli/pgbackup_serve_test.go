package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/pgbackup/pgtest"
)

// TestServePGBackupSchedule runs serve on PostgreSQL with
// --backup-pg-config: the server takes a full backup with pgBackRest and
// runs a restore drill on its own, and /metrics shows the repository's
// last backup, the achieved RPO and the drill's result with the gauges
// the SQLite schedule uses.
func TestServePGBackupSchedule(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	if underRace {
		t.Skip("runs its own PostgreSQL cluster and pgBackRest processes: once, in the plain runs")
	}
	bin := pgtest.Tools(t)
	dir := pgtest.Dir(t)
	conf := filepath.Join(dir, "pgbackrest.conf")
	port := pgtest.FreePort(t)
	run := func(args ...string) (string, error) {
		var out strings.Builder
		err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &out)
		return out.String(), err
	}
	common := []string{"--pgbackrest-config", conf, "--run-as", pgtest.RunAs()}
	out, err := run(append([]string{"backup-pg", "init", "--pg-data", filepath.Join(dir, "pg"), "--pg-port", strconv.Itoa(port),
		"--pg-socket", dir, "--repo", filepath.Join(dir, "repo")}, common...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var pgconf []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "wal_level = ") || strings.HasPrefix(line, "archive_mode = ") || strings.HasPrefix(line, "archive_command = ") {
			pgconf = append(pgconf, line)
		}
	}
	cluster := pgtest.Init(t, bin, dir, "pg", port, pgconf...)
	cluster.Exec("postgres", "CREATE DATABASE medguard")
	if out, err := run(append([]string{"backup-pg", "check"}, common...)...); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}

	s := start(t, "--db", cluster.DSN("medguard"), "--backup-pg-config", conf, "--backup-pg-run-as", pgtest.RunAs(), "--backup-pg-bin", bin)
	target := `target="pgbackrest:` + filepath.Join(dir, "repo") + `"`
	deadline := time.Now().Add(3 * time.Minute)
	var body []byte
	for {
		_, _, body = s.do("GET", "/metrics", "", nil)
		if bytes.Contains(body, []byte("\nmedguard_backup_last_drill_ok 1\n")) && bytes.Contains(body, []byte("medguard_backup_target_failing{"+target+"} 0")) &&
			!bytes.Contains(body, []byte("medguard_backup_last_age_seconds{"+target+"} -1")) {
			break
		}
		if time.Now().After(deadline) || bytes.Contains(body, []byte("\nmedguard_backup_last_drill_ok 0\n")) {
			t.Fatalf("the schedule did not back up and drill in 3 minutes:\n%s\n%s", grepLines(body, "medguard_backup_"), s.logs)
		}
		time.Sleep(250 * time.Millisecond) // polling the schedule, not timing it
	}
	t.Logf("%s", grepLines(body, "medguard_backup_"))
	drills, _ := filepath.Glob(filepath.Join(dir, "repo", "medguard", "medguard", "drills", "*.drill"))
	if len(drills) != 1 {
		t.Fatalf("drill records: %v", drills)
	}
}

func grepLines(b []byte, prefix string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
