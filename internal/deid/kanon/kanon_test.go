package kanon

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// hier builds a hierarchy from rows written as "v;l1;l2".
func hier(rows ...string) *Hierarchy {
	h := &Hierarchy{}
	for _, r := range rows {
		h.Levels = append(h.Levels, strings.Split(r, ";"))
	}
	return h
}

// A small ward list with Chinese values, checked by hand.
var (
	wardTable = &Table{
		Columns: []string{"年龄", "性别", "区", "诊断"},
		Rows: [][]string{
			{"34", "男", "海淀区", "高血压"},
			{"36", "男", "海淀区", "糖尿病"},
			{"35", "女", "朝阳区", "高血压"},
			{"52", "女", "朝阳区", "哮喘"},
			{"55", "男", "海淀区", "高血压"},
			{"58", "女", "朝阳区", "高血压"},
		},
	}
	ageH = hier("34;30-39;*", "35;30-39;*", "36;30-39;*", "52;50-59;*", "55;50-59;*", "58;50-59;*")
	sexH = hier("男;*", "女;*")
	disH = hier("海淀区;北京市;*", "朝阳区;北京市;*")
)

func wardConfig(k int) Config {
	return Config{
		QuasiIdentifiers: []QuasiIdentifier{{"年龄", ageH}, {"性别", sexH}, {"区", disH}},
		Insensitive:      []string{"诊断"},
		K:                k,
	}
}

// Hand check, k=3. Losses per attribute: age to decades 6·log2(3) = 9.51
// (six values of one row, each in a decade of three), age to * 6·log2(6)
// = 15.51, sex or district to * 3+3 = 6 each. Sex and district are aligned
// (男 = 海淀区). (1,0,0) has classes of 2 and 1; (1,0,1) and (1,1,0) cost
// 15.51 but still have classes of 2 (30-39 男) and 1; (2,0,0) costs 15.51
// and has two classes of 3. Nothing cheaper is 3-anonymous, and (2,0,0)
// is the lowest of the ties that are anonymous.
func TestWardK3(t *testing.T) {
	res, err := Anonymize(wardTable, wardConfig(3))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res.Transformation)
	if got != "[{年龄 2} {性别 0} {区 0}]" {
		t.Fatalf("transformation %s", got)
	}
	want := 6 * math.Log2(6)
	if math.Abs(res.Loss-want) > 1e-9 {
		t.Errorf("loss %v, want %v", res.Loss, want)
	}
	if res.K != 3 || res.Suppressed != 0 || res.Classes != 2 {
		t.Errorf("k %d suppressed %d classes %d", res.K, res.Suppressed, res.Classes)
	}
	out := res.Output()
	if out.Rows[0][0] != "*" || out.Rows[0][1] != "男" || out.Rows[0][2] != "海淀区" || out.Rows[0][3] != "高血压" {
		t.Errorf("first row %q", out.Rows[0])
	}
}

// With a suppression budget of one row in six, k=2 keeps districts and
// sexes and suppresses nothing it need not.
func TestWardSuppression(t *testing.T) {
	cfg := wardConfig(2)
	cfg.SuppressionLimit = 0.2 // floor(1.2) = 1 row
	res, err := Anonymize(wardTable, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Ages to decades split rows into (30-39,男,海淀)×2, (30-39,女,朝阳)×1,
	// (50-59,女,朝阳)×2, (50-59,男,海淀)×1: two outliers, over budget. So
	// something else must go too; the check is against brute force.
	bf := bruteForce(t, wardTable, cfg)
	if fmt.Sprint(res.Transformation) != fmt.Sprint(bf.Transformation) || res.Suppressed != bf.Suppressed {
		t.Fatalf("search %v (suppressed %d), brute force %v (suppressed %d)", res.Transformation, res.Suppressed, bf.Transformation, bf.Suppressed)
	}
	if res.Suppressed > 1 || res.Retained()+res.Suppressed != 6 {
		t.Errorf("suppressed %d retained %d", res.Suppressed, res.Retained())
	}
}

// l-diversity: with k=2 the optimum (age to *, loss 15.51) has two classes
// with 2 distinct diagnoses each; l=3 on 诊断 needs all six rows in one
// class (3 diagnoses): decades alone leave 高血压/糖尿病 in 30-39, and sex
// alone still splits by district, so age, sex and district all go to *
// (loss 15.51 + 6 + 6 = 27.51).
func TestWardLDiversity(t *testing.T) {
	cfg := wardConfig(2)
	cfg.Insensitive = nil
	cfg.Sensitive, cfg.L = "诊断", 3
	res, err := Anonymize(wardTable, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.L != 3 || math.Abs(res.Loss-(6*math.Log2(6)+12)) > 1e-9 {
		t.Fatalf("l reached %d, loss %v", res.L, res.Loss)
	}
	checkClasses(t, res.Output(), []int{0, 1, 2}, 3, 2, 3)
	// Without l-diversity the optimum is lower (less loss).
	plain := wardConfig(2)
	pr, err := Anonymize(wardTable, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !(pr.Loss < res.Loss) {
		t.Errorf("loss with l-diversity %v, without %v: l-diversity should cost more here", res.Loss, pr.Loss)
	}
	bf := bruteForce(t, wardTable, cfg)
	if fmt.Sprint(res.Transformation) != fmt.Sprint(bf.Transformation) {
		t.Errorf("search %v, brute force %v", res.Transformation, bf.Transformation)
	}
}

// checkClasses groups out by the columns qi and fails if a class has fewer
// than k rows or fewer than l distinct values in column sens.
func checkClasses(t *testing.T, out *Table, qi []int, sens, k, l int) {
	t.Helper()
	size := map[string]int{}
	dist := map[string]map[string]bool{}
	for _, r := range out.Rows {
		var key []string
		for _, c := range qi {
			key = append(key, r[c])
		}
		ks := strings.Join(key, "\x00")
		size[ks]++
		if sens >= 0 {
			if dist[ks] == nil {
				dist[ks] = map[string]bool{}
			}
			dist[ks][r[sens]] = true
		}
	}
	for ks, n := range size {
		if n < k {
			t.Errorf("class %q has %d rows < k=%d", ks, n, k)
		}
		if sens >= 0 && len(dist[ks]) < l {
			t.Errorf("class %q has %d distinct sensitive values < l=%d", ks, len(dist[ks]), l)
		}
	}
}

// bruteForce checks every node of the lattice with the engine's own
// grouping from the base (no roll-up, no bounds, no pruning) and returns
// the anonymous node of least loss, ties to the lower, then
// lexicographically smaller node.
func bruteForce(t *testing.T, tab *Table, cfg Config) *Result {
	t.Helper()
	e, err := newEngine(tab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var best *candidate
	node := make([]int, len(e.attrs))
	var walk func(q int)
	walk = func(q int) {
		if q == len(node) {
			v := naiveCheck(e, tab, cfg, node)
			if !v {
				return
			}
			c := candidate{loss: e.lossOf(node), height: height(node), node: append([]int(nil), node...)}
			if best == nil || queue(nil).Less2(c, *best) {
				best = &c
			}
			return
		}
		for l := 0; l < e.attrs[q].height; l++ {
			node[q] = l
			walk(q + 1)
		}
	}
	walk(0)
	if best == nil {
		return nil
	}
	return e.apply(tab, best.node)
}

// naiveCheck decides anonymity with maps of strings, independently of the
// engine's encoding.
func naiveCheck(e *engine, tab *Table, cfg Config, node []int) bool {
	gen := make([]map[string]string, len(node))
	for q, qi := range cfg.QuasiIdentifiers {
		gen[q] = map[string]string{}
		for _, row := range qi.Hierarchy.Levels {
			gen[q][row[0]] = row[node[q]]
		}
	}
	col := map[string]int{}
	for i, c := range tab.Columns {
		col[c] = i
	}
	size := map[string]int{}
	dist := map[string]map[string]bool{}
	keys := make([]string, len(tab.Rows))
	for r, row := range tab.Rows {
		var k []string
		for q, qi := range cfg.QuasiIdentifiers {
			k = append(k, gen[q][row[col[qi.Column]]])
		}
		ks := strings.Join(k, "\x00")
		keys[r] = ks
		size[ks]++
		if cfg.Sensitive != "" {
			if dist[ks] == nil {
				dist[ks] = map[string]bool{}
			}
			dist[ks][row[col[cfg.Sensitive]]] = true
		}
	}
	out := 0
	for _, ks := range keys {
		if size[ks] < cfg.K || (cfg.Sensitive != "" && len(dist[ks]) < cfg.L) {
			out++
		}
	}
	return out <= int(math.Floor(cfg.SuppressionLimit*float64(len(tab.Rows))))
}

// randomCase makes a random table of 3–5 quasi-identifiers with random
// hierarchies of 1–4 levels and 20–400 rows.
func randomCase(rng *rand.Rand) (*Table, Config) {
	nq := 3 + rng.IntN(3)
	cfg := Config{K: 1 + rng.IntN(6)}
	if rng.IntN(2) == 0 {
		cfg.SuppressionLimit = float64(rng.IntN(20)) / 100
	}
	tab := &Table{}
	var domains [][]string
	for q := 0; q < nq; q++ {
		name := fmt.Sprintf("q%d", q)
		tab.Columns = append(tab.Columns, name)
		height := 1 + rng.IntN(4)
		nv := 2 + rng.IntN(12)
		h := &Hierarchy{}
		var dom []string
		divs := []int{1}
		for l := 1; l < height; l++ {
			divs = append(divs, divs[l-1]*(2+rng.IntN(2)))
		}
		for v := 0; v < nv; v++ {
			row := []string{fmt.Sprintf("%s-v%d", name, v)}
			for l := 1; l < height; l++ {
				if l == height-1 {
					row = append(row, "*")
					continue
				}
				row = append(row, fmt.Sprintf("L%d-%d", l, v/divs[l]))
			}
			h.Levels = append(h.Levels, row)
			dom = append(dom, row[0])
		}
		domains = append(domains, dom)
		cfg.QuasiIdentifiers = append(cfg.QuasiIdentifiers, QuasiIdentifier{Column: name, Hierarchy: h})
	}
	tab.Columns = append(tab.Columns, "dx")
	if rng.IntN(3) == 0 {
		cfg.Sensitive, cfg.L = "dx", 1+rng.IntN(3)
	} else {
		cfg.Insensitive = []string{"dx"}
	}
	n := 20 + rng.IntN(380)
	for r := 0; r < n; r++ {
		var row []string
		for _, dom := range domains {
			// Skewed: low values more often.
			row = append(row, dom[int(float64(len(dom))*math.Pow(rng.Float64(), 2))])
		}
		row = append(row, fmt.Sprintf("dx%d", rng.IntN(4)))
		tab.Rows = append(tab.Rows, row)
	}
	return tab, cfg
}

// TestSearchEqualsBruteForce: on random tables the search finds the same
// optimum (node, loss, suppressed rows) as checking every node naively.
func TestSearchEqualsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 5))
	cases := 150
	if testing.Short() {
		cases = 40
	}
	for i := 0; i < cases; i++ {
		tab, cfg := randomCase(rng)
		bf := bruteForce(t, tab, cfg)
		res, err := Anonymize(tab, cfg)
		if bf == nil {
			if !errors.Is(err, ErrNoSolution) {
				t.Fatalf("case %d: brute force finds nothing, search says %v", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if fmt.Sprint(res.Transformation) != fmt.Sprint(bf.Transformation) || res.Loss != bf.Loss || res.Suppressed != bf.Suppressed {
			t.Fatalf("case %d (k=%d, supp=%v, l=%d): search %v loss %v supp %d; brute force %v loss %v supp %d",
				i, cfg.K, cfg.SuppressionLimit, cfg.L, res.Transformation, res.Loss, res.Suppressed, bf.Transformation, bf.Loss, bf.Suppressed)
		}
		qi := make([]int, len(cfg.QuasiIdentifiers))
		for q := range qi {
			qi[q] = q
		}
		sens := -1
		if cfg.Sensitive != "" {
			sens = len(qi)
		}
		checkClasses(t, res.Output(), qi, sens, cfg.K, cfg.L)
	}
}

func TestBadInput(t *testing.T) {
	base := func() Config { return wardConfig(2) }
	cases := []struct {
		name string
		mod  func(*Config, *Table)
		want string
	}{
		{"unnamed column", func(c *Config, _ *Table) { c.Insensitive = nil }, `column "诊断" is neither`},
		{"k zero", func(c *Config, _ *Table) { c.K = 0 }, "k must be at least 1"},
		{"suppression 1", func(c *Config, _ *Table) { c.SuppressionLimit = 1 }, "suppression limit"},
		{"unknown qi", func(c *Config, _ *Table) { c.QuasiIdentifiers[0].Column = "身高" }, `"身高" is not in the table`},
		{"twice", func(c *Config, _ *Table) { c.Insensitive = []string{"诊断", "性别"} }, `column "性别" is named twice`},
		{"value not in hierarchy", func(_ *Config, tb *Table) { tb.Rows[3][0] = "99" }, `column "年龄", row 4: value not in`},
		{"short row", func(_ *Config, tb *Table) { tb.Rows[2] = tb.Rows[2][:3] }, "row 3: 3 cells"},
		{"l without sensitive", func(c *Config, _ *Table) { c.L = 2 }, "l-diversity needs a sensitive column"},
		{"not a hierarchy", func(c *Config, _ *Table) {
			c.QuasiIdentifiers[2].Hierarchy = hier("海淀区;北京市;*", "朝阳区;北京市;全国")
		}, "not a hierarchy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			cfg.QuasiIdentifiers = append([]QuasiIdentifier(nil), cfg.QuasiIdentifiers...)
			tb := &Table{Columns: wardTable.Columns}
			for _, r := range wardTable.Rows {
				tb.Rows = append(tb.Rows, append([]string(nil), r...))
			}
			tc.mod(&cfg, tb)
			_, err := Anonymize(tb, cfg)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "99") {
				t.Errorf("error repeats the cell's value: %v", err)
			}
		})
	}
}

func TestReadHierarchy(t *testing.T) {
	h, err := ReadHierarchy(strings.NewReader("男;*\n女;*\n"), ';')
	if err != nil || h.Height() != 2 || len(h.Levels) != 2 {
		t.Fatalf("%v %v", h, err)
	}
	for _, bad := range []string{"", "a;x;*\nb;*\n", "a;*\na;*\n"} {
		if _, err := ReadHierarchy(strings.NewReader(bad), ';'); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzReadHierarchy(f *testing.F) {
	f.Add("男;*\n女;*\n")
	f.Add("34;30-39;*\n35;30-39;*\n52;50-59;*\n")
	f.Add("\"a;b\";x;*\n")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ReadHierarchy(strings.NewReader(s), ';')
		if err != nil {
			return
		}
		if h.Validate() != nil {
			t.Fatal("read but invalid")
		}
	})
}

// sorted is used by tests that compare sets.
var _ = sort.Strings

// TestMixedRadixKeys: the class keys built without fixed strides (the path
// for domains whose product overflows 64 bits) find the same optimum as
// those with strides, on random tables.
func TestMixedRadixKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 60; i++ {
		tab, cfg := randomCase(rng)
		want, werr := Anonymize(tab, cfg)
		e, err := newEngine(tab, cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.strides, e.base.key = nil, nil
		node, err := e.search()
		if (err != nil) != (werr != nil) {
			t.Fatalf("case %d: mixed radix %v, strides %v", i, err, werr)
		}
		if err != nil {
			continue
		}
		got := e.apply(tab, node)
		if fmt.Sprint(got.Transformation) != fmt.Sprint(want.Transformation) || got.Suppressed != want.Suppressed || got.Classes != want.Classes {
			t.Fatalf("case %d: mixed radix %v supp %d classes %d; strides %v supp %d classes %d",
				i, got.Transformation, got.Suppressed, got.Classes, want.Transformation, want.Suppressed, want.Classes)
		}
	}
}
