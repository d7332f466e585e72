package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// benchSuite runs "medguard bench NAME" with args (and --db when
// PostgreSQL is configured) and returns its JSON line and its table.
func benchSuite(t *testing.T, name string, args ...string) (map[string]any, string) {
	t.Helper()
	args = append([]string{"bench", name, "--json"}, args...)
	if dsn := os.Getenv(storagetest.PostgresEnv); dsn != "" {
		args = append(args, "--db", dsn)
	}
	var out, errs bytes.Buffer
	if err := cli.Run(context.Background(), args, func(string) string { return "" }, &out, &errs); err != nil {
		t.Fatalf("bench %s: %v\n%s\n%s", name, err, out.String(), errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, out.String())
	}
	db := "sqlite"
	if os.Getenv(storagetest.PostgresEnv) != "" {
		db = "postgres"
	}
	if rep["bench"] != name || rep["database"] != db {
		t.Errorf("bench %v on %v, want %s on %s", rep["bench"], rep["database"], name, db)
	}
	return rep, out.String()
}

// A tiny hospital, loaded for a moment by four doctors' clients.
var tinyLoad = []string{"--duration", "1s", "--warmup", "0", "--doctors", "2", "--patients", "20", "--records", "50", "--concurrency", "4"}

// checkLoad checks a load benchmark's report: operations answered, none
// failed, every kind of the mix reported, CPU per operation given.
func checkLoad(t *testing.T, rep map[string]any, table string, kinds ...string) {
	t.Helper()
	if n, _ := rep["ops"].(float64); n <= 0 {
		t.Errorf("ops = %v, want > 0\n%s", rep["ops"], table)
	}
	if errMap, _ := rep["errors"].(map[string]any); len(errMap) != 0 || rep["error_rate"] != float64(0) {
		t.Errorf("errors %v (rate %v), want none\n%s", rep["errors"], rep["error_rate"], table)
	}
	var got []string
	var sum float64
	list, _ := rep["kinds"].([]any)
	for _, k := range list {
		k, _ := k.(map[string]any)
		name, _ := k["kind"].(string)
		got = append(got, name)
		n, _ := k["ops"].(float64)
		sum += n
		if errMap, _ := k["errors"].(map[string]any); len(errMap) != 0 {
			t.Errorf("%s: errors %v", name, errMap)
		}
	}
	if strings.Join(got, ",") != strings.Join(kinds, ",") {
		t.Errorf("kinds %v, want %v", got, kinds)
	}
	if sum != rep["ops"] {
		t.Errorf("the kinds' operations add up to %v, not %v", sum, rep["ops"])
	}
	if c, _ := rep["cpu_ms_per_op"].(float64); c <= 0 {
		t.Errorf("cpu_ms_per_op = %v, want > 0", rep["cpu_ms_per_op"])
	}
	if os.Getenv(storagetest.PostgresEnv) != "" && rep["server"] == "in-process" {
		// The test database is on this machine: its CPU counts.
		if rep["local_postgres"] != true {
			t.Errorf("local_postgres = %v, want true", rep["local_postgres"])
		}
	}
	for _, want := range []string{"p99.9", "errors", "per op", "load generator"} {
		if !strings.Contains(table, want) && !(want == "per op" && strings.Contains(table, " ms per ")) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}

func TestBenchWrites(t *testing.T) {
	rep, table := benchSuite(t, "writes", tinyLoad...)
	checkLoad(t, rep, table, "create", "update")
	if n, _ := rep["writes"].(float64); n <= 0 || rep["writes"] != rep["ops"] {
		t.Errorf("writes = %v of %v operations", rep["writes"], rep["ops"])
	}
	if !strings.Contains(table, "writes/s") || !strings.Contains(table, "ms per write") {
		t.Errorf("table:\n%s", table)
	}
}

// Every kind a doctor's client makes, in an open loop.
func TestBenchMixed(t *testing.T) {
	rep, table := benchSuite(t, "mixed", append([]string{"--mix", "read=50,write=20,search=10,list=10,chart=10", "--rate", "40"}, tinyLoad...)...)
	checkLoad(t, rep, table, "read", "create", "update", "search", "list", "chart")
	if rep["mode"] != "open" || rep["mix"] != "read=50,create=10,update=10,search=10,list=10,chart=10" {
		t.Errorf("mode %v, mix %v", rep["mode"], rep["mix"])
	}
}

// The default mix; only new versions, against records no worker shares.
func TestBenchMixedDefault(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("the mix is the engine's least concern; once, on SQLite")
	}
	rep, table := benchSuite(t, "mixed", tinyLoad...)
	checkLoad(t, rep, table, "read", "create", "update", "search", "list")
	rep, table = benchSuite(t, "writes", append([]string{"--new", "0"}, tinyLoad...)...)
	checkLoad(t, rep, table, "update")
}

// The default mix through two servers of the bench's own on one
// PostgreSQL schema, behind HAProxy: both answer some of it, and the fleet
// is reported as for reads, in operations.
func TestBenchMixedServers(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) == "" {
		t.Skip("servers share PostgreSQL: set MEDGUARD_TEST_POSTGRES")
	}
	rep, table := benchSuite(t, "mixed", append([]string{"--servers", "2", "--serve-binary", benchServeBinary(t)}, tinyLoad...)...)
	checkLoad(t, rep, table, "read", "create", "update", "search", "list")
	fleet, _ := rep["fleet"].(map[string]any)
	servers, _ := fleet["servers"].([]any)
	if len(servers) != 2 {
		t.Fatalf("fleet %v", rep["fleet"])
	}
	for i, s := range servers {
		if ops, _ := s.(map[string]any)["ops"].(float64); ops <= 0 {
			t.Errorf("server %d answered no operation: %v", i+1, s)
		}
	}
	if _, ok := fleet["cpu_per_op_ms"].(float64); !ok || !strings.Contains(table, "CPU per op:") {
		t.Errorf("fleet %v\n%s", fleet, table)
	}
}

// An existing server, reached by --url with its certificate: every kind
// of operation, its memory not reported (another process).
func TestBenchMixedAgainstServer(t *testing.T) {
	s := start(t)
	args := append([]string{"bench", "mixed", "--json", "--mix", "read=40,write=30,search=10,list=10,chart=10",
		"--url", s.base, "--ca", filepath.Join(s.dir, "tls", "cert.pem")}, tinyLoad...)
	env := map[string]string{"MEDGUARD_ADMIN_PASSWORD": adminPassword, "MEDGUARD_SECURITY_PASSWORD": securityPassword}
	var out, errs bytes.Buffer
	if err := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errs); err != nil {
		t.Fatalf("bench mixed --url: %v\n%s\n%s", err, out.String(), errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, out.String())
	}
	checkLoad(t, rep, out.String(), "read", "create", "update", "search", "list", "chart")
	if _, ok := rep["peak_rss_mb"]; ok || rep["server"] != s.base {
		t.Errorf("server %v, memory %v", rep["server"], rep["peak_rss_mb"])
	}
	if !strings.Contains(out.String(), "the server's CPU is not counted") {
		t.Errorf("the table does not say whose CPU it counts:\n%s", out.String())
	}
}

func TestBenchAudit(t *testing.T) {
	rep, table := benchSuite(t, "audit", "--entries", "2500", "--batch", "1000")
	for _, k := range []string{"entries_per_s", "verify_entries_per_s", "cpu_us_per_entry", "verify_peak_rss_mb"} {
		if v, _ := rep[k].(float64); v <= 0 {
			t.Errorf("%s = %v, want > 0\n%s", k, rep[k], table)
		}
	}
	if rep["entries"] != float64(2500) || rep["verified_entries"] != float64(2500) || rep["transactions"] != float64(3) {
		t.Errorf("report %v", rep)
	}
	for _, want := range []string{"entries/s", "verify", "commit p99"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}

func TestBenchSuiteUsage(t *testing.T) {
	run := func(args ...string) (stdout, stderr string, err error) {
		var out, errs bytes.Buffer
		err = cli.Run(context.Background(), args, func(string) string { return "" }, &out, &errs)
		return out.String(), errs.String(), err
	}
	out, _, err := run("bench", "--help")
	if err != nil {
		t.Fatalf("bench --help: %v", err)
	}
	for _, name := range []string{"reads", "writes", "mixed", "audit"} {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("bench --help does not list %s:\n%s", name, out)
		}
	}
	for name, flags := range map[string][]string{
		"writes": {"--new", "--db", "--url", "--rate", "--concurrency", "--json", "optimistic"},
		"mixed":  {"--mix", "--db", "--url", "--rate", "search", "list", "chart", "病案号"},
		"audit":  {"--entries", "--batch", "--db", "--json", "verify", "peak RSS"},
	} {
		_, help, err := run("bench", name, "--help")
		if cli.ExitCode(err) != 2 {
			t.Errorf("bench %s --help: %v", name, err)
		}
		for _, f := range flags {
			if !strings.Contains(help, f) {
				t.Errorf("bench %s --help lacks %s", name, f)
			}
		}
	}
	if _, help, err := run("bench", "tiaoshi"); cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), `"tiaoshi"`) || !strings.Contains(help, "mixed") {
		t.Errorf("unknown benchmark: %v", err)
	}
	for _, args := range [][]string{
		{"bench", "mixed", "--mix", "read=80,audit=20"}, {"bench", "mixed", "--mix", "read=-1"}, {"bench", "mixed", "--mix", ""},
		{"bench", "writes", "--new", "120"}, {"bench", "writes", "--concurrency", "0"},
		{"bench", "mixed", "--url", "https://x:1", "--admin-password", "p", "--security-password", "q", "--db", "postgres://x/y"},
		{"bench", "audit", "--entries", "0"}, {"bench", "audit", "extra"},
	} {
		if _, _, err := run(args...); cli.ExitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
