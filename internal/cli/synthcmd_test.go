package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard/internal/cli"
	"medguard/internal/idnum"
	"medguard/internal/testkit"
)

// medguard synth writes a synthetic data set for test environments: the
// patients and records it says, valid ID numbers, Chinese text that names
// its patient, the same files for the same seed, other files for another.
func TestSynthCommand(t *testing.T) {
	run := func(dir string, seed string) {
		var out testkit.Buffer
		err := cli.Run(context.Background(), []string{"synth", "--patients", "40", "--records-per-patient", "3", "--seed", seed,
			"--out", dir}, func(string) string { return "" }, &out, &out)
		if err != nil {
			t.Fatalf("synth: %v\n%s", err, &out)
		}
		if !strings.Contains(out.String(), "wrote 40 patients and 120 records") {
			t.Fatalf("synth said %s", &out)
		}
	}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	run(a, "7")
	run(b, "7")
	run(c, "8")
	for _, name := range []string{"patients.csv", "patients.jsonl", "records.csv", "records.jsonl"} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		z, _ := os.ReadFile(filepath.Join(c, name))
		if len(x) == 0 || !bytes.Equal(x, y) || bytes.Equal(x, z) {
			t.Errorf("%s: %d bytes, same seed equal %v, other seed equal %v", name, len(x), bytes.Equal(x, y), bytes.Equal(x, z))
		}
	}
	f, _ := os.Open(filepath.Join(a, "patients.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 41 || rows[0][1] != "name" {
		t.Fatalf("patients.csv: %v, %d rows", err, len(rows))
	}
	names := map[string]string{}
	for _, r := range rows[1:] {
		if _, err := idnum.ValidateAt(r[4], time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Errorf("ID number of %s: %v", r[0], err)
		}
		if len([]rune(r[1])) < 2 || !strings.Contains(r[6], "市") {
			t.Errorf("patient %v", r)
		}
		names[r[0]] = r[1]
	}
	rf, _ := os.Open(filepath.Join(a, "records.jsonl"))
	defer rf.Close()
	sc := bufio.NewScanner(rf)
	sc.Buffer(nil, 1<<20)
	n, named := 0, 0
	for sc.Scan() {
		var r struct {
			PatientID string `json:"patient_id"`
			Type      string `json:"type"`
			Text      string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if names[r.PatientID] == "" || r.Type == "" || r.Text == "" {
			t.Fatalf("record %+v", r)
		}
		if strings.Contains(r.Text, names[r.PatientID]) {
			named++
		}
		n++
	}
	if n != 120 || named < n/3 {
		t.Fatalf("%d records, %d name their patient", n, named)
	}
	var out testkit.Buffer
	if err := cli.Run(context.Background(), []string{"synth", "--patients", "3"}, func(string) string { return "" }, &out, &out); cli.ExitCode(err) != 2 {
		t.Fatalf("synth without --out: %v", err)
	}
}
