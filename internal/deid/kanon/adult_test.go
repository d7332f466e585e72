package kanon

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// adultDir is the Adult data set with ARX's hierarchies, shared by the
// project (30,162 rows).
var adultDir = func() string {
	if d := os.Getenv("MEDGUARD_ADULT_DIR"); d != "" {
		return d
	}
	return "/work/shared/data/adult"
}()

var adultQIs = []string{"age", "education", "marital-status", "native-country", "race", "salary-class", "sex", "workclass"}

// loadAdult reads the Adult table and its hierarchies, or skips the test
// when the data set is not on this machine.
func loadAdult(tb testing.TB) (*Table, []QuasiIdentifier) {
	tb.Helper()
	f, err := os.Open(filepath.Join(adultDir, "adult.csv"))
	if os.IsNotExist(err) {
		tb.Skipf("Adult data set not found in %s (set MEDGUARD_ADULT_DIR)", adultDir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.Comma = ';'
	recs, err := cr.ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	t := &Table{Columns: recs[0], Rows: recs[1:]}
	var qis []QuasiIdentifier
	for _, q := range adultQIs {
		hf, err := os.Open(filepath.Join(adultDir, "adult_hierarchy_"+q+".csv"))
		if err != nil {
			tb.Fatal(err)
		}
		h, err := ReadHierarchy(hf, ';')
		hf.Close()
		if err != nil {
			tb.Fatalf("hierarchy %s: %v", q, err)
		}
		qis = append(qis, QuasiIdentifier{Column: q, Hierarchy: h})
	}
	return t, qis
}

func adultConfig(qis []QuasiIdentifier, suppress float64) Config {
	return Config{QuasiIdentifiers: qis, Insensitive: []string{"occupation"}, K: 5, SuppressionLimit: suppress}
}

func levels(r *Result) map[string]int {
	m := map[string]int{}
	for _, l := range r.Transformation {
		m[l.Column] = l.Level
	}
	return m
}

// TestAdultAnchorK5 is ARX's optimum on Adult, k=5, no suppression: the
// same transformation and the same loss to 2 decimals.
func TestAdultAnchorK5(t *testing.T) {
	tab, qis := loadAdult(t)
	res, err := Anonymize(tab, adultConfig(qis, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"sex": 1, "age": 1, "race": 1, "marital-status": 1, "education": 3, "native-country": 2, "workclass": 2, "salary-class": 1}
	got := levels(res)
	for c, l := range want {
		if got[c] != l {
			t.Errorf("level of %s = %d, want %d (transformation %v)", c, got[c], l, got)
		}
	}
	if math.Round(res.Loss*100) != 32462053 {
		t.Errorf("loss = %.4f, want 324620.53", res.Loss)
	}
	t.Logf("loss %.4f k %d suppressed %d checked %d of %.0f, %v", res.Loss, res.K, res.Suppressed, res.NodesChecked, res.LatticeSize, res.Elapsed)
}

// TestAdultAnchorK5Suppress5 is ARX's optimum on Adult, k=5 with at most
// 5 % of the rows suppressed.
func TestAdultAnchorK5Suppress5(t *testing.T) {
	tab, qis := loadAdult(t)
	res, err := Anonymize(tab, adultConfig(qis, 0.05))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("transformation %v loss %.4f k %d suppressed %d checked %d of %.0f, %v", levels(res), res.Loss, res.K, res.Suppressed, res.NodesChecked, res.LatticeSize, res.Elapsed)
	if math.Round(res.Loss*100) != 17036199 {
		t.Errorf("loss = %.4f, want 170361.99", res.Loss)
	}
}

func BenchmarkAdultK5(b *testing.B) { benchAdult(b, 0) }

func BenchmarkAdultK5Suppress5(b *testing.B) { benchAdult(b, 0.05) }

func benchAdult(b *testing.B, suppress float64) {
	tab, qis := loadAdult(b)
	cfg := adultConfig(qis, suppress)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	var checked int
	for i := 0; i < b.N; i++ {
		res, err := Anonymize(tab, cfg)
		if err != nil {
			b.Fatal(err)
		}
		checked = res.NodesChecked
	}
	b.ReportMetric(float64(checked), "nodes")
	b.ReportMetric((cpuSeconds()-cpu0)*1e3/float64(b.N), "cpu-ms/op")
}

// cpuSeconds is the CPU time (user and system) this process has used: on a
// shared machine it measures the work better than the wall clock.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
