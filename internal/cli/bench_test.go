package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// benchReads runs "medguard bench reads" briefly with extra arguments and
// returns its JSON line.
func benchReads(t *testing.T, env map[string]string, extra ...string) map[string]any {
	t.Helper()
	args := append([]string{"bench", "reads", "--duration", "1s", "--warmup", "0", "--doctors", "2",
		"--patients", "20", "--records", "50", "--concurrency", "4", "--json"}, extra...)
	var out, errs bytes.Buffer
	if err := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errs); err != nil {
		t.Fatalf("bench reads: %v\n%s\n%s", err, out.String(), errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, out.String())
	}
	for _, want := range []string{"reads/s", "p99.9", "errors", "load generator"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	if rps, _ := rep["reads_per_s"].(float64); rps <= 0 {
		t.Errorf("reads_per_s = %v, want > 0\n%s", rep["reads_per_s"], out.String())
	}
	if n, _ := rep["reads"].(float64); n <= 0 {
		t.Errorf("reads = %v, want > 0", rep["reads"])
	}
	if errMap, _ := rep["errors"].(map[string]any); len(errMap) != 0 || rep["error_rate"] != float64(0) {
		t.Errorf("errors %v (rate %v), want none\n%s", rep["errors"], rep["error_rate"], out.String())
	}
	return rep
}

func TestBenchReadsClosedLoop(t *testing.T) {
	var extra []string
	db := "sqlite"
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		extra, db = append(extra, "--db", dsn), "postgres"
	}
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	rep := benchReads(t, nil, append(extra, "--cpuprofile", profile)...)
	if rep["database"] != db || rep["server"] != "in-process" || rep["mode"] != "closed" || rep["workers"] != float64(4) {
		t.Errorf("report %v", rep)
	}
	if rss, _ := rep["peak_rss_mb"].(float64); rss <= 0 {
		t.Errorf("peak_rss_mb = %v, want > 0", rep["peak_rss_mb"])
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("CPU profile: %v", err)
	}
}

func TestBenchReadsOpenLoop(t *testing.T) {
	var extra []string
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		extra = append(extra, "--db", dsn)
	}
	// Flags may come from their environment twins. A disk probe runs
	// through the measured window and is lined up with the slowest answers.
	probeDir := t.TempDir()
	rep := benchReads(t, map[string]string{"MEDGUARD_RATE": "50"}, append(extra, "--disk-probe", probeDir)...)
	if rep["mode"] != "open" || rep["rate"] != float64(50) {
		t.Errorf("report %v", rep)
	}
	probe, _ := rep["disk_probe"].(map[string]any)
	if probe["dir"] != probeDir || probe["syncs"].(float64) < 10 || probe["tail"].(float64) < 1 || probe["slow_from_ms"] != float64(5) {
		t.Errorf("disk probe %v", probe)
	}
	if left, _ := os.ReadDir(probeDir); len(left) != 0 {
		t.Errorf("the probe's file was left: %v", left)
	}
}

// An existing server, reached by --url with its certificate.
func TestBenchReadsAgainstServer(t *testing.T) {
	s := start(t)
	rep := benchReads(t, map[string]string{"MEDGUARD_ADMIN_PASSWORD": adminPassword, "MEDGUARD_SECURITY_PASSWORD": securityPassword},
		"--url", s.base, "--ca", filepath.Join(s.dir, "tls", "cert.pem"))
	if rep["server"] != s.base {
		t.Errorf("server %v, want %s", rep["server"], s.base)
	}
	if _, ok := rep["peak_rss_mb"]; ok {
		t.Error("memory reported for a server in another process")
	}
}

func TestBenchUsage(t *testing.T) {
	var out, errs bytes.Buffer
	err := cli.Run(context.Background(), []string{"bench", "reads", "--help"}, func(string) string { return "" }, &out, &errs)
	if cli.ExitCode(err) != 2 {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"--db", "--url", "--admin-password", "--insecure", "--ca", "--concurrency", "--duration",
		"--warmup", "--rate", "--doctors", "--patients", "--records", "--json", "--cpuprofile", "--memprofile", "--trace", "--disk-probe", "MEDGUARD_RATE", "coordinated omission",
		"--servers", "HAProxy", "CPU per read"} {
		if !strings.Contains(errs.String(), flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
	for _, args := range [][]string{{"bench"}, {"bench", "nosuch"}, {"bench", "reads", "--url", "https://x:1"},
		{"bench", "reads", "--url", "https://x:1", "--admin-password", "p", "--db", "postgres://x/y"},
		{"bench", "reads", "--concurrency", "0"}} {
		if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &errs); cli.ExitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// --servers names what it lacks.
func TestBenchServersUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--servers", "2"}, "--servers needs --db"},
		{[]string{"--servers", "2", "--url", "https://x:1", "--admin-password", "p", "--security-password", "q"}, "--servers and --url"},
		{[]string{"--serve-binary", "/bin/true"}, "--serve-binary is for --servers"},
	} {
		var out, errs bytes.Buffer
		err := cli.Run(context.Background(), append([]string{"bench", "reads"}, c.args...), func(string) string { return "" }, &out, &errs)
		if cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %q", c.args, err, c.want)
		}
	}
}

// Continuous backup must not stall the server: Litestream holds a read
// transaction on the WAL and checkpoints it itself, and a TRUNCATE
// checkpoint of the server's own (once the WAL passed its limit) held the
// write lock while it waited for that reader — every commit, so every
// audited read, stopped behind them (no read answered). The bench writes
// enough (5,000 records) to pass the limit, then reads with continuous
// backup on; any failed read fails the bench.
func TestBenchReadsWithContinuousBackup(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" || underRace {
		t.Skip("continuous backup is SQLite's; once, in the plain runs")
	}
	rep := benchReads(t, nil, "--patients", "500", "--records", "5000", "--concurrency", "16", "--duration", "3s",
		"--backup-to", filepath.Join(t.TempDir(), "beifen"))
	if errs, _ := rep["errors"].(map[string]any); len(errs) != 0 || rep["error_rate"] != float64(0) {
		t.Errorf("reads failed with continuous backup on: %v", rep)
	}
}

// Two servers of the bench's own on one PostgreSQL schema, behind HAProxy:
// the reads go through the balancer and both servers answer some, and the
// report gives each one's audit log.
func TestBenchReadsServers(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("servers share PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	rep := benchReads(t, nil, "--db", dsn, "--servers", "2", "--serve-binary", benchServeBinary(t), "--duration", "2s")
	fleet, _ := rep["fleet"].(map[string]any)
	servers, _ := fleet["servers"].([]any)
	if len(servers) != 2 {
		t.Fatalf("fleet %v", rep["fleet"])
	}
	var readBack float64
	for i, s := range servers {
		s := s.(map[string]any)
		if reads, _ := s["reads"].(float64); reads <= 0 {
			t.Errorf("server %d answered no reads: %v", i+1, s)
		}
		if s["pid"] == nil || s["peak_rss_mb"] == nil {
			t.Errorf("server %d: %v", i+1, s)
		}
		// Its audit log, from its /metrics: an entry for every read it
		// answered, in batches, and the other server's entries read back
		// for detection.
		a, _ := s["audit"].(map[string]any)
		entries, _ := a["entries"].(float64)
		reads, _ := s["reads"].(float64)
		perCommit, _ := a["entries_a_commit"].(float64)
		if entries < reads || perCommit <= 0 {
			t.Errorf("server %d's audit log: %v", i+1, a)
		}
		back, _ := a["entries_read_back"].(float64)
		readBack += back
	}
	if readBack == 0 {
		t.Errorf("neither server read back the other's entries: %v", servers)
	}
	if _, ok := fleet["cpu_per_read_ms"].(float64); !ok || rep["database"] != "postgres" {
		t.Errorf("report %v", rep)
	}
}

// benchServeBinary builds the medguard executable the servers of --servers
// run (this test binary is not one), once haproxy is known to be there.
func benchServeBinary(t *testing.T) string {
	t.Helper()
	needHAProxy(t)
	bin := filepath.Join(t.TempDir(), "medguard")
	if out, err := exec.Command("go", "build", "-o", bin, "medguard/cmd/medguard").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// bench disk probes a directory's syncs, leaves nothing behind and refuses
// nonsense.
func TestBenchDisk(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	err := cli.Run(context.Background(), []string{"bench", "disk", "--dir", dir, "--duration", "300ms", "--json"},
		func(string) string { return "" }, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	for _, want := range []string{"p99.9", `"bench":"disk"`, `"p99_ms":`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %s in\n%s", want, out.String())
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	for _, args := range [][]string{{"bench", "disk", "--size", "0"}, {"bench", "disk", "--duration", "0s"}, {"bench", "disk", "x"}} {
		if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &errs); cli.ExitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
