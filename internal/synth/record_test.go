package synth

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

var recordTime = time.Date(2025, 3, 14, 10, 25, 0, 0, time.UTC)

// checkRecord checks what every record must be: Chinese text of 150-800
// characters naming the patient, no unfilled slots, a title without patient
// data, and structured fields.
func checkRecord(t *testing.T, what string, p Person, r RecordText) {
	t.Helper()
	n := utf8.RuneCountInString(r.Text)
	if n < 150 || n > maxText {
		t.Errorf("%s: text has %d characters:\n%s", what, n, r.Text)
	}
	if !strings.Contains(r.Text, p.Name) {
		t.Errorf("%s: text does not name the patient %s:\n%s", what, p.Name, r.Text)
	}
	han := 0
	for _, c := range r.Text {
		if unicode.Is(unicode.Han, c) {
			han++
		}
	}
	if han < n/4 {
		t.Errorf("%s: only %d of %d characters are Chinese", what, han, n)
	}
	if strings.ContainsAny(r.Text, "{}") || strings.Contains(r.Text, "$") {
		t.Errorf("%s: unfilled template slot:\n%s", what, r.Text)
	}
	if r.Title == "" || strings.Contains(r.Title, p.Name) || strings.ContainsAny(r.Title, "{}") {
		t.Errorf("%s: title %q", what, r.Title)
	}
	if len(r.Fields) < 3 {
		t.Errorf("%s: only %d fields", what, len(r.Fields))
	}
	for k, v := range r.Fields {
		if strings.ContainsAny(k+v, "{}") {
			t.Errorf("%s: field %s = %q has an unfilled slot", what, k, v)
		}
	}
}

// TestEveryConditionAndRecordType writes every record type for every
// condition of every department, so that each template in the tables is
// filled at least once.
func TestEveryConditionAndRecordType(t *testing.T) {
	g := New(11)
	psyc := deptByCode("PSYC")
	for _, d := range loaded().depts {
		t.Run(d.Code, func(t *testing.T) {
			if len(d.conds) < 6 {
				t.Errorf("%d conditions, want at least 6", len(d.conds))
			}
			for ci := range d.conds {
				c := &d.conds[ci]
				for _, rt := range recordTypes {
					cond := c
					if rt == "psychiatric_note" {
						cond = &psyc.conds[ci%len(psyc.conds)]
					}
					for range 4 { // different draws of the choices
						p := g.person(cond.minAge, ageLimit(cond.maxAge), cond.gender)
						r := g.write(d, d.Name, cond, rt, p, recordTime)
						checkRecord(t, d.Code+"/"+strconv.Itoa(ci)+"/"+rt, p, r)
					}
				}
			}
		})
	}
}

func ageLimit(maxAge int) int {
	if maxAge == 0 {
		return 95
	}
	return maxAge
}

// TestRecordsForRandomPatients goes through the public API the way medguard
// demo does, including patients who do not fit the department.
func TestRecordsForRandomPatients(t *testing.T) {
	g := New(12)
	for _, d := range Departments() {
		for _, rt := range RecordTypes() {
			for i := range 10 {
				p := g.PersonFor(d)
				if i%3 == 0 {
					p = g.Person()
				}
				at := recordTime.Add(time.Duration(i) * 97 * time.Hour)
				checkRecord(t, d.Code+"/"+rt, p, g.Record(d, rt, p, at))
			}
		}
	}
	// An unknown department and an unknown type still give a record.
	p := g.Person()
	r := g.Record(Department{Code: "DERM", Name: "皮肤科"}, "unknown", p, recordTime)
	checkRecord(t, "DERM/unknown", p, r)
	if !strings.Contains(r.Title, "病程记录") {
		t.Errorf("unknown type gave %q", r.Title)
	}
}

func TestRecordContents(t *testing.T) {
	g := New(13)
	card := Departments()[0]
	p := g.PersonFor(card)
	cases := []struct {
		recordType string
		title      string
		text       []string // must appear in the text
		fields     []string // must be present and non-empty
	}{
		{"admission_note", "入院记录", []string{"主诉：", "现病史：", "体格检查：", "初步诊断：", p.IDNumber, p.Phone, p.Address, p.MRN, "患者" + p.Name[:0]}, []string{"主诉", "现病史", "初步诊断", "血压", "体温"}},
		{"progress_note", "病程记录", []string{p.Name}, []string{"记录类型", "病情记录", "诊断"}},
		{"discharge_summary", "出院小结", []string{"入院诊断：", "出院诊断：", "出院医嘱：", p.MRN}, []string{"入院日期", "出院日期", "诊疗经过", "出院诊断"}},
		{"operation_note", "手术记录", []string{"手术名称：", "麻醉方式：", "手术经过："}, []string{"手术名称", "麻醉方式", "手术经过", "出血量"}},
		{"lab_report", "检验报告", []string{"检验项目：", "参考范围"}, []string{"检验项目", "结果", "参考范围", "标本类型"}},
		{"imaging_report", "影像报告", []string{"检查所见：", "诊断意见："}, []string{"检查类型", "检查部位", "检查所见", "诊断意见"}},
		{"prescription", "处方", []string{"Rp：", "用法："}, []string{"用药", "剂量", "频次", "诊断"}},
		{"nursing_note", "护理记录", []string{"护理级别", "护士签名："}[1:], []string{"体温", "血压", "护理措施"}},
		{"psychiatric_note", "精神科", []string{"精神检查：", "风险评估："}, []string{"精神检查", "诊断"}},
		{"hiv_test", "HIV检测", []string{"检测结果：", "知情同意"}, []string{"检测项目", "结果", "结论"}},
	}
	for _, c := range cases {
		t.Run(c.recordType, func(t *testing.T) {
			r := g.Record(card, c.recordType, p, recordTime)
			if !strings.Contains(r.Title, c.title) {
				t.Errorf("title %q, want %q in it", r.Title, c.title)
			}
			for _, s := range c.text {
				if !strings.Contains(r.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, r.Text)
				}
			}
			for _, k := range c.fields {
				if r.Fields[k] == "" {
					t.Errorf("field %s missing: %v", k, r.Fields)
				}
			}
		})
	}
}

func TestOneIllnessPerPatientAndDepartment(t *testing.T) {
	g := New(14)
	for _, d := range Departments() {
		p := g.PersonFor(d)
		a := g.Record(d, "admission_note", p, recordTime)
		b := g.Record(d, "admission_note", p, recordTime.AddDate(0, 0, 1))
		if a.Fields["主诉"] != b.Fields["主诉"] || a.Fields["初步诊断"] != b.Fields["初步诊断"] {
			t.Errorf("%s: two notes of one patient tell different stories: %q / %q", d.Code, a.Fields["主诉"], b.Fields["主诉"])
		}
	}
}

var (
	stampPattern  = regexp.MustCompile(`(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}))?`)
	cnDatePattern = regexp.MustCompile(`(\d{4})年(\d{1,2})月(\d{1,2})日`)
)

// checkDates checks that every date and time written in r (text and
// fields) is on or after the birth date and no later than at plus
// MaxReportDelay, reading them in at's location.
func checkDates(t *testing.T, what string, p Person, at time.Time, r RecordText) {
	t.Helper()
	all := r.Text
	for k, v := range r.Fields {
		all += "\n" + k + "：" + v
	}
	latest := at.Add(MaxReportDelay)
	check := func(s string, m []string) {
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		day := time.Date(n(1), time.Month(n(2)), n(3), 0, 0, 0, 0, at.Location())
		if day.Day() != n(3) {
			t.Errorf("%s: %q is not a real date", what, s)
			return
		}
		if calendarDays(p.BirthDate, day) < 0 {
			t.Errorf("%s: %q is before the birth date %s:\n%s", what, s, p.BirthDate.Format(time.DateOnly), r.Text)
		}
		if len(m) > 4 && m[4] != "" {
			if tm := day.Add(time.Duration(n(4))*time.Hour + time.Duration(n(5))*time.Minute); tm.After(latest) {
				t.Errorf("%s: %q is after %s:\n%s", what, s, stamp(latest), r.Text)
			}
		} else if calendarDays(latest, day) > 0 {
			t.Errorf("%s: %q is after %s:\n%s", what, s, dateOnly(latest), r.Text)
		}
	}
	for _, m := range stampPattern.FindAllStringSubmatch(all, -1) {
		check(m[0], m)
	}
	for _, m := range cnDatePattern.FindAllStringSubmatch(all, -1) {
		check(m[0], m)
	}
}

// TestRecordDatesFollowBirth writes every record type for newborns and
// infants at awkward moments (the day of birth, a leap day, New Year's
// Eve in Beijing) and checks that no date in a record comes before the
// birth or after the record's time plus MaxReportDelay.
func TestRecordDatesFollowBirth(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	ats := []time.Time{
		time.Date(2026, 12, 31, 13, 59, 0, 0, cst),
		time.Date(2028, 2, 29, 8, 0, 0, 0, cst),
		time.Date(2027, 1, 1, 8, 30, 0, 0, cst),
		time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
	}
	for _, at := range ats {
		for _, d := range Departments() {
			for _, ageDays := range []int{0, 1, 2, 5, 40, 400} {
				g := NewAt(uint64(ageDays)+1, at.AddDate(0, 0, -ageDays))
				for _, rt := range recordTypes {
					p := g.person(0, 0, "")
					r := g.Record(d, rt, p, at)
					checkDates(t, fmt.Sprintf("%s/%s/%s, born %s", at.Format(time.RFC3339), d.Code, rt, p.BirthDate.Format(time.DateOnly)), p, at, r)
				}
			}
		}
	}
}

// TestStayRecord checks that a discharge summary written for a known stay
// gives its admission date and length, counting a same-day stay as one day.
func TestStayRecord(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	g := NewAt(21, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	card := Departments()[0]
	p := g.PersonFor(card)
	cases := []struct {
		admitted, at time.Time
		date, days   string
	}{
		{time.Date(2026, 12, 28, 9, 0, 0, 0, cst), time.Date(2027, 1, 4, 10, 0, 0, 0, cst), "2026-12-28", "7"},
		{time.Date(2028, 2, 27, 23, 30, 0, 0, cst), time.Date(2028, 3, 1, 8, 0, 0, 0, cst), "2028-02-27", "3"},
		{time.Date(2027, 1, 1, 8, 0, 0, 0, cst), time.Date(2027, 1, 1, 13, 0, 0, 0, cst), "2027-01-01", "1"},
		// In UTC the admission (16:30 on 31 December) is already 1 January in Beijing.
		{time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), time.Date(2027, 1, 3, 9, 0, 0, 0, cst), "2027-01-01", "2"},
	}
	for _, c := range cases {
		r := g.StayRecord(card, "discharge_summary", p, c.admitted, c.at)
		if r.Fields["入院日期"] != c.date || r.Fields["住院天数"] != c.days || r.Fields["出院日期"] != dateOnly(c.at) {
			t.Errorf("admitted %v, discharged %v: 入院日期 %s, 出院日期 %s, 住院天数 %s; want %s, %s, %s", c.admitted, c.at,
				r.Fields["入院日期"], r.Fields["出院日期"], r.Fields["住院天数"], c.date, dateOnly(c.at), c.days)
		}
		checkDates(t, "stay", p, c.at, r)
	}
}

func TestRecordTypeFrequencies(t *testing.T) {
	g := New(15)
	count := func(code string) map[string]int {
		m := map[string]int{}
		for range 20000 {
			m[g.RecordType(Department{Code: code})]++
		}
		return m
	}
	all := map[string]map[string]int{}
	for _, d := range Departments() {
		all[d.Code] = count(d.Code)
		for rt := range all[d.Code] {
			if !slices.Contains(recordTypes, rt) {
				t.Errorf("%s: unknown type %s", d.Code, rt)
			}
		}
	}
	for code, m := range all {
		if code == "PSYC" {
			continue
		}
		for rt, n := range m {
			if rt != "progress_note" && n >= m["progress_note"] {
				t.Errorf("%s: %s (%d) as common as progress notes (%d)", code, rt, n, m["progress_note"])
			}
		}
		if m["psychiatric_note"] > 200 || m["hiv_test"] > 1000 {
			t.Errorf("%s: %d psychiatric notes and %d HIV tests in 20000", code, m["psychiatric_note"], m["hiv_test"])
		}
	}
	if all["PSYC"]["psychiatric_note"] < 3000 {
		t.Errorf("PSYC: only %d psychiatric notes in 20000", all["PSYC"]["psychiatric_note"])
	}
	if all["INFD"]["hiv_test"] <= 10*all["CARD"]["hiv_test"] || all["INFD"]["hiv_test"] < 400 {
		t.Errorf("HIV tests: INFD %d, CARD %d", all["INFD"]["hiv_test"], all["CARD"]["hiv_test"])
	}
	if all["ORTH"]["operation_note"] <= all["RESP"]["operation_note"] {
		t.Errorf("operation notes: ORTH %d, RESP %d", all["ORTH"]["operation_note"], all["RESP"]["operation_note"])
	}
}

func TestDepartmentTables(t *testing.T) {
	depts := Departments()
	if len(depts) < 12 {
		t.Fatalf("%d departments, want at least 12", len(depts))
	}
	codes := map[string]bool{}
	for _, d := range depts {
		if codes[d.Code] {
			t.Errorf("department %s twice", d.Code)
		}
		codes[d.Code] = true
		for _, r := range d.Code {
			if r < 'A' || r > 'Z' {
				t.Errorf("code %q is not upper-case ASCII", d.Code)
			}
		}
		if !isChineseName(d.Name[:0]+d.Name) && utf8.RuneCountInString(d.Name) < 2 || d.NameEN == "" {
			t.Errorf("department %+v", d)
		}
	}
	depts[0].Name = "changed"
	if Departments()[0].Name == "changed" {
		t.Error("Departments returns shared state")
	}
	for _, d := range loaded().depts {
		for i, c := range d.conds {
			where := d.Code + "/" + strconv.Itoa(i)
			if c.cc == "" || c.sym == "" || c.hpi == "" || c.exam == "" || c.ddx == "" || len(c.dx) == 0 || len(c.meds) == 0 {
				t.Errorf("%s: incomplete condition", where)
			}
			if c.img.part == "" || c.img.find == "" || c.img.imp == "" {
				t.Errorf("%s: no imaging", where)
			}
			if len(c.labs) == 0 {
				t.Errorf("%s: no labs", where)
			}
			for _, l := range c.labs {
				if _, ok := loaded().panels[l]; !ok {
					t.Errorf("%s: unknown panel %s", where, l)
				}
			}
			// Each abnormal result must belong to a panel the condition orders.
			for _, a := range c.abn {
				found := false
				for _, l := range c.labs {
					for _, it := range loaded().panels[l].items {
						found = found || it.key == a.key
					}
				}
				if !found {
					t.Errorf("%s: abnormal %s is in none of its panels", where, a.key)
				}
			}
			if d.Code == "PSYC" && (c.scale == "" || c.risk == "") {
				t.Errorf("%s: psychiatric condition without scales or risk", where)
			}
			if d.surgical && c.op == nil {
				t.Errorf("%s: surgical condition without an operation", where)
			}
		}
		if !d.surgical && len(d.ops) == 0 {
			t.Errorf("%s: no usual procedure", d.Code)
		}
	}
}

func TestExpander(t *testing.T) {
	e := newExpander(rand.New(rand.NewPCG(1, 2)), map[string]string{"name": "张伟"}, 12.3)
	cases := []struct {
		tpl   string
		check func(string) bool
	}{
		{"无槽位", func(s string) bool { return s == "无槽位" }},
		{"{name}入院", func(s string) bool { return s == "张伟入院" }},
		{"{3-5}天", func(s string) bool { return s == "3天" || s == "4天" || s == "5天" }},
		{"{36.2-37.1}", func(s string) bool {
			v, err := strconv.ParseFloat(s, 64)
			return err == nil && v >= 36.2 && v <= 37.1 && len(s) == 4
		}},
		{"{左|右}侧", func(s string) bool { return s == "左侧" || s == "右侧" }},
		{"{$s=左|右}髋，{$s}下肢", func(s string) bool { return s == "左髋，左下肢" || s == "右髋，右下肢" }},
		{"{无|约{10-12}ml}", func(s string) bool { return s == "无" || s == "约10ml" || s == "约11ml" || s == "约12ml" }},
		{"{有|}", func(s string) bool { return s == "有" || s == "" }},
		{"{w*50}mg", func(s string) bool { return s == "620mg" }},
		{"{w*0.5}ml", func(s string) bool { return s == "6.2ml" }},
		{"{V1-V5|V2-V4}", func(s string) bool { return s == "V1-V5" || s == "V2-V4" }},
	}
	for _, c := range cases {
		for range 20 {
			if got := e.expand(c.tpl); !c.check(got) {
				t.Errorf("expand(%q) = %q", c.tpl, got)
				break
			}
		}
	}
	for _, bad := range []string{"{nokey}", "{$undefined}", "{unclosed"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("expand(%q) did not panic", bad)
				}
			}()
			e.expand(bad)
		}()
	}
}

func BenchmarkRecord(b *testing.B) {
	g := New(16)
	depts := Departments()
	people := make([]Person, 64)
	for i := range people {
		people[i] = g.PersonFor(depts[i%len(depts)])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := depts[i%len(depts)]
		p := people[i%len(people)]
		g.Record(d, g.RecordType(d), p, recordTime)
		i++
	}
}

func BenchmarkPerson(b *testing.B) {
	g := New(17)
	b.ReportAllocs()
	for b.Loop() {
		g.Person()
	}
}
