package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/pgbackup/pgtest"
)

// TestBackupPGTwoRepositories is the 3-2-1 path on PostgreSQL: init
// writes a second repository on a real S3-compatible store (versitygw
// over TLS with its own certificate authority; the keys through their
// MEDGUARD_* environment twins); serve backs up into both and
// GET /api/v1/backups shows two targets, the S3 one off-site, and 3-2-1
// met; list shows both repositories; a drill restores from the S3
// repository (--repo 2).
func TestBackupPGTwoRepositories(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	if underRace {
		t.Skip("runs its own PostgreSQL cluster and pgBackRest processes: once, in the plain runs")
	}
	bin := pgtest.Tools(t)
	dir := pgtest.Dir(t)
	s3 := pgtest.StartS3(t, dir)
	conf := filepath.Join(dir, "pgbackrest.conf")
	port := pgtest.FreePort(t)
	env := map[string]string{"MEDGUARD_REPO2_S3_KEY": s3.Key, "MEDGUARD_REPO2_S3_KEY_SECRET": s3.Secret}
	run := func(args ...string) (string, error) {
		var out strings.Builder
		err := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &out)
		return out.String(), err
	}
	common := []string{"--pgbackrest-config", conf, "--run-as", pgtest.RunAs()}
	// The store runs on this machine in the test: declared off-site as an
	// operator declares a store in another building.
	out, err := run(append([]string{"backup-pg", "init", "--pg-data", filepath.Join(dir, "pg"), "--pg-port", strconv.Itoa(port),
		"--pg-socket", dir, "--repo", filepath.Join(dir, "repo"), "--repo2-s3-bucket", s3.Bucket,
		"--repo2-s3-endpoint", s3.Endpoint + ":" + strconv.Itoa(s3.Port), "--repo2-s3-ca-file", s3.CAFile, "--repo2-path", "/pg",
		"--repo2-off-site", "y"}, common...)...)
	if err != nil || !strings.Contains(out, "second repository: pgbackrest:s3://medguard-pg/pg?endpoint=localhost:") ||
		!strings.Contains(out, "object-store, off-site") {
		t.Fatalf("init: %v\n%s", err, out)
	}
	text, _ := os.ReadFile(conf)
	if !strings.Contains(string(text), "repo2-s3-key-secret="+s3.Secret+"\n") || !strings.Contains(string(text), "repo2-cipher-pass=") {
		t.Fatalf("the configuration:\n%s", text)
	}
	if p1, p2 := cipherOf(text, "repo1"), cipherOf(text, "repo2"); p1 == "" || p1 == p2 {
		t.Fatalf("the repositories' passphrases: %q and %q", p1, p2)
	}
	var pgconf []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "wal_level = ") || strings.HasPrefix(line, "archive_mode = ") || strings.HasPrefix(line, "archive_command = ") {
			pgconf = append(pgconf, line)
		}
	}
	cluster := pgtest.Init(t, bin, dir, "pg", port, pgconf...)
	cluster.Exec("postgres", "CREATE DATABASE medguard")
	if out, err := run(append([]string{"backup-pg", "check"}, common...)...); err != nil || !strings.Contains(out, " and s3://medguard-pg/pg?") {
		t.Fatalf("check: %v\n%s", err, out)
	}

	s := start(t, "--db", cluster.DSN("medguard"), "--backup-pg-config", conf, "--backup-pg-run-as", pgtest.RunAs(),
		"--backup-pg-bin", bin, "--backup-drill-every", "0")
	s.json(201, "POST", "/api/v1/departments", s.admin(), map[string]string{"code": "INFO", "name": "信息科"})
	s.staff("zhaolei", "赵磊", "INFO", "it_engineer", "Xinxi#Ke2026")
	eng := s.token("zhaolei", "Xinxi#Ke2026")
	deadline := time.Now().Add(4 * time.Minute)
	var h map[string]any
	for {
		h = s.json(200, "GET", "/api/v1/backups", eng, nil)
		if ts, _ := h["targets"].([]any); len(ts) == 2 && ts[0].(map[string]any)["last_backup"] != nil && ts[1].(map[string]any)["last_backup"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule did not back up into both repositories: %v\n%s", h, s.logs)
		}
		time.Sleep(250 * time.Millisecond) // polling the schedule, not timing it
	}
	ts := h["targets"].([]any)
	t0, t1 := ts[0].(map[string]any), ts[1].(map[string]any)
	if t0["url"] != "pgbackrest:"+filepath.Join(dir, "repo") || t0["media"] != "disk" || t0["off_site"] != false ||
		!strings.HasPrefix(t1["url"].(string), "pgbackrest:s3://medguard-pg/pg?endpoint=localhost") || t1["media"] != "object-store" ||
		t1["off_site"] != true || t1["last_error"] != nil || strings.Contains(t1["url"].(string), s3.Key) {
		t.Fatalf("targets: %v", ts)
	}
	st := h["state_321"].(map[string]any)
	if st["copies"] != float64(3) || st["media"] != float64(2) || st["off_site"] != float64(1) || st["met"] != true {
		t.Fatalf("3-2-1 with a directory and an off-site S3 repository: %v", st)
	}
	t.Logf("targets %v; 3-2-1 %v", ts, st)
	s.stop()
	s.stop = nil

	data := s.dir
	common = append(common, "--data", data)
	out, err = run(append([]string{"backup-pg", "list"}, common...)...)
	if err != nil || !strings.Contains(out, "repository 1: "+filepath.Join(dir, "repo")+", disk, on site, aes-256-cbc, 1 backups") ||
		!strings.Contains(out, "repository 2: s3://medguard-pg/pg?endpoint=localhost") || !strings.Contains(out, "object-store, off-site, aes-256-cbc, 1 backups") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	t.Logf("list:\n%s", out)
	out, err = run(append([]string{"backup-pg", "verify", "--latest"}, common...)...)
	if err != nil || strings.Count(out, "pgbackrest verify: ok") != 2 || !strings.Contains(out, "in repository 2 (s3://") {
		t.Fatalf("verify --latest: %v\n%s", err, out)
	}
	out, err = run(append([]string{"backup-pg", "drill", "--latest", "--repo", "2", "--pg-bin", bin}, common...)...)
	if err != nil || !strings.Contains(out, "restored from s3://medguard-pg/pg?endpoint=localhost") {
		t.Fatalf("drill from repo2: %v\n%s", err, out)
	}
	t.Logf("drill:\n%s", out)
}

// cipherOf is repoN-cipher-pass in a pgBackRest configuration.
func cipherOf(conf []byte, repo string) string {
	for _, l := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(l, repo+"-cipher-pass="); ok {
			return v
		}
	}
	return ""
}
