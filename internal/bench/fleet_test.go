package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The fleet's figures name the bench's operations: reads for bench reads
// (as the README's figures do), operations for a mix.
func TestAddFleet(t *testing.T) {
	for _, tc := range []struct {
		mix              Mix
		key, perOp, text string
	}{
		{ReadsOnly, "reads", "cpu_per_read_ms", "CPU per read: 4.000 ms"},
		{Mix{Read: 80, Create: 10, Search: 10}, "ops", "cpu_per_op_ms", "CPU per op: 4.000 ms"},
	} {
		rep := &Report{Bench: tc.mix.Bench(), Ops: 1000, cpu: CPUUse{Wall: 2 * time.Second, Postgres: time.Second,
			PostgresProcesses: 5, Pids: map[int]time.Duration{11: time.Second, 12: 1500 * time.Millisecond, 13: 500 * time.Millisecond}}}
		rep.AddFleet([]FleetServer{{Pid: 11, Ops: 600, Audit: &FleetAudit{Entries: 600, StatementCommits: 10, LockedCommits: 70, ReadBack: 400}},
			{Pid: 12, Ops: 400, Audit: &FleetAudit{Entries: 400, LockedCommits: 50, IndexEndReads: 1, ReadBack: 600}}},
			13, "HAProxy 2.6", "https://127.0.0.1:8443", true)
		var got struct {
			Fleet map[string]any `json:"fleet"`
		}
		if err := json.Unmarshal([]byte(rep.JSON()), &got); err != nil {
			t.Fatal(err)
		}
		f := got.Fleet
		servers, _ := f["servers"].([]any)
		if len(servers) != 2 || f[tc.perOp] != 4.0 || f["cpu_s"] != 4.0 || f["postgres_processes"] != 5.0 {
			t.Errorf("%s: fleet %v", tc.mix, f)
			continue
		}
		if s := servers[1].(map[string]any); s[tc.key] != 400.0 || s["cpus"] != 0.75 || s["pid"] != 12.0 {
			t.Errorf("%s: server 2 %v", tc.mix, s)
		}
		if a, _ := servers[0].(map[string]any)["audit"].(map[string]any); a["entries_a_commit"] != 7.5 || a["commits_locked"] != 70.0 ||
			a["entries_read_back"] != 400.0 {
			t.Errorf("%s: server 1's audit log %v", tc.mix, a)
		}
		var text bytes.Buffer
		rep.Fleet.WriteText(&text)
		for _, want := range []string{tc.text, "behind HAProxy 2.6 at https://127.0.0.1:8443", "postgres (5 processes)", "    600\n",
			"server 2                       400          0         50        8.0           1         600"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("%s: the table lacks %q:\n%s", tc.mix, want, text.String())
			}
		}
	}
}
