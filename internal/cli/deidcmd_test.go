package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// adultDir holds the Adult data set and ARX's hierarchies.
func adultDir(t *testing.T) string {
	d := os.Getenv("MEDGUARD_ADULT_DIR")
	if d == "" {
		d = "/work/shared/data/adult"
	}
	if _, err := os.Stat(filepath.Join(d, "adult.csv")); err != nil {
		t.Skipf("Adult data set not found in %s (set MEDGUARD_ADULT_DIR)", d)
	}
	return d
}

func runDeid(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), append([]string{"deid"}, args...), func(string) string { return "" }, &out, &errb)
	return out.String(), errb.String(), err
}

// TestDeidTableAdult runs the command on Adult with 5 % suppression and
// checks the files it writes: the report's figures are ARX's optimum, the
// output keeps the header, has no class under k, and is short by exactly
// the suppressed rows.
func TestDeidTableAdult(t *testing.T) {
	dir := adultDir(t)
	tmp := t.TempDir()
	out, rep := filepath.Join(tmp, "out.csv"), filepath.Join(tmp, "report.json")
	qis := []string{"age", "education", "marital-status", "native-country", "race", "salary-class", "sex", "workclass"}
	args := []string{"table", "--in", filepath.Join(dir, "adult.csv"), "--sep", ";", "--insensitive", "occupation", "--k", "5", "--suppress", "0.05", "--out", out, "--report", rep}
	for _, q := range qis {
		args = append(args, "--qi", q+"="+filepath.Join(dir, "adult_hierarchy_"+q+".csv"))
	}
	stdout, stderr, err := runDeid(t, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "k=") {
		t.Errorf("stdout %q", stdout)
	}
	var r struct {
		Transformation map[string]int `json:"transformation"`
		Loss           float64        `json:"loss"`
		K              int            `json:"k"`
		Suppressed     int            `json:"suppressed"`
		NodesChecked   int            `json:"nodes_checked"`
		ElapsedMS      *float64       `json:"elapsed_ms"`
	}
	body, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Loss != 170361.99 || r.K < 5 || r.Suppressed == 0 || r.Suppressed > 1508 || r.NodesChecked == 0 || r.ElapsedMS == nil || len(r.Transformation) != 8 {
		t.Fatalf("report %s", body)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = ';'
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ";") != "sex;age;race;marital-status;education;native-country;workclass;occupation;salary-class" {
		t.Errorf("header %q", recs[0])
	}
	if got := len(recs) - 1; got != 30162-r.Suppressed {
		t.Errorf("%d rows out, want 30162 − %d", got, r.Suppressed)
	}
	// Classes by the generalised quasi-identifiers (every column but
	// occupation, index 7).
	size := map[string]int{}
	for _, rec := range recs[1:] {
		key := append(append([]string(nil), rec[:7]...), rec[8])
		size[strings.Join(key, ";")]++
	}
	smallest := 1 << 30
	for _, n := range size {
		smallest = min(smallest, n)
	}
	if smallest < 5 || smallest != r.K {
		t.Errorf("smallest class %d, report k %d", smallest, r.K)
	}
	// education at level 2 and age at level 0 in ARX's optimum.
	if recs[1][1] != "39" || r.Transformation["age"] != 0 {
		t.Errorf("first row %q, transformation %v", recs[1], r.Transformation)
	}
}

// TestDeidTableLDiverse uses l-diversity on a small Chinese table.
func TestDeidTableLDiverse(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	in := write("in.csv", "年龄,性别,诊断\n34,男,高血压\n36,男,糖尿病\n35,女,高血压\n52,女,哮喘\n55,男,高血压\n58,女,高血压\n")
	age := write("age.csv", "34;30-39;*\n35;30-39;*\n36;30-39;*\n52;50-59;*\n55;50-59;*\n58;50-59;*\n")
	sex := write("sex.csv", "男;*\n女;*\n")
	out, rep := filepath.Join(tmp, "out.csv"), filepath.Join(tmp, "r.json")
	_, stderr, err := runDeid(t, "table", "--in", in, "--sep", ",", "--qi", "年龄="+age, "--qi", "性别="+sex,
		"--k", "2", "--l-diverse", "诊断=2", "--out", out, "--report", rep)
	if err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	body, _ := os.ReadFile(out)
	var r map[string]any
	rb, _ := os.ReadFile(rep)
	if err := json.Unmarshal(rb, &r); err != nil {
		t.Fatal(err)
	}
	if r["l"].(float64) < 2 || !strings.HasPrefix(string(body), "年龄,性别,诊断\n") {
		t.Fatalf("report %s\noutput %s", rb, body)
	}
}

// TestDeidTableBadInput: each mistake exits non-zero, names the flag,
// column or line, and writes no output.
func TestDeidTableBadInput(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("in.csv", "年龄;性别;姓名\n34;男;张三\n35;女;李四\n")
	unknown := write("bad.csv", "年龄;性别\n34;男\n99;女\n")
	ragged := write("ragged.csv", "年龄;性别\n34;男\n35\n")
	age := write("age.csv", "34;30-39;*\n35;30-39;*\n")
	sex := write("sex.csv", "男;*\n女;*\n")
	badH := write("badh.csv", "男;*\n女\n")
	out := filepath.Join(tmp, "out.csv")
	base := func(in string, extra ...string) []string {
		return append([]string{"table", "--in", in, "--qi", "年龄=" + age, "--qi", "性别=" + sex, "--k", "2", "--out", out, "--report", filepath.Join(tmp, "r.json")}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unnamed column", base(good), `column "姓名" is neither`},
		{"value not in hierarchy", base(unknown), "line 3, column \"年龄\""},
		{"ragged row", base(ragged), "line 3: 1 columns"},
		{"no k", []string{"table", "--in", good, "--qi", "年龄=" + age, "--out", out, "--report", "r"}, "--k"},
		{"bad qi", base(good, "--qi", "性别"), `--qi "性别"`},
		{"bad suppress", base(good, "--suppress", "1.5", "--insensitive", "姓名"), "--suppress"},
		{"bad l", base(good, "--l-diverse", "姓名=x"), "--l-diverse"},
		{"bad sep", base(good, "--sep", ";;"), "--sep"},
		{"bad hierarchy", []string{"table", "--in", good, "--qi", "性别=" + badH, "--k", "2", "--out", out, "--report", "r"}, "--qi 性别: " + badH + ": line 2"},
		{"missing in", base(filepath.Join(tmp, "none.csv")), "--in"},
		{"no solution", base(good, "--insensitive", "姓名", "--k", "3"), "no transformation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runDeid(t, tc.args...)
			if err == nil || ExitCode(err) == 0 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if msg := strings.ReplaceAll(err.Error(), tmp, ""); strings.Contains(msg, "99") || strings.Contains(msg, "张三") {
				t.Errorf("error repeats a cell: %v", err)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output written despite the error")
			}
		})
	}
}
