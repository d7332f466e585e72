package synth

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// RecordText is the content of one synthetic clinical record.
type RecordText struct {
	// Title names the record, e.g. 入院记录 or 检验报告：血常规. It never
	// contains patient data.
	Title string
	// Text is the record as a clinician would write it: 150-800
	// characters of Chinese with the patient's name and, depending on the
	// type, other identifiers (ID number, phone, address, MRN).
	Text string
	// Fields are the record's structured fields, keyed in Chinese
	// (主诉, 诊断, 血压, 检验项目, 用药 …); which keys appear depends on the
	// record type.
	Fields map[string]string
}

// The record types Record writes, in the names medguard's policy uses.
var recordTypes = []string{
	"admission_note",    // 入院记录
	"progress_note",     // 病程记录
	"discharge_summary", // 出院小结
	"operation_note",    // 手术记录
	"lab_report",        // 检验报告
	"imaging_report",    // 影像报告
	"prescription",      // 处方
	"nursing_note",      // 护理记录
	"psychiatric_note",  // 精神科记录 (restricted)
	"hiv_test",          // HIV检测 (restricted)
}

// RecordTypes returns the record types Record writes, in a fixed order.
func RecordTypes() []string { return slices.Clone(recordTypes) }

// maxText is the longest Text a record may have, in characters.
const maxText = 800

// typeWeights returns how often each of recordTypes is written in a
// department, per mille or so.
func typeWeights(code string) []int {
	//          adm prog dis  op  lab img rx nurs psy hiv
	w := []int{60, 300, 60, 20, 140, 80, 100, 160, 1, 1}
	switch code {
	case "ORTH", "GSUR", "OBGY":
		w[3] = 80
	case "CARD", "NEUR", "GAST", "ONCO", "ICU":
		w[3] = 40
	case "EMER":
		w[0], w[2], w[3] = 30, 20, 30
	case "PSYC":
		w[3], w[4], w[5], w[8] = 5, 80, 20, 250
	}
	switch code {
	case "INFD":
		w[9] = 40
	case "OBGY": // HIV, syphilis and hepatitis B screening in pregnancy
		w[9] = 15
	case "NEUR", "ICU", "EMER":
		w[8] = 4 // psychiatric consultations
	}
	return w
}

// RecordType picks a record type for a record in dept with realistic
// frequencies: progress notes are the most common; psychiatric notes come
// mostly from 精神科 and HIV tests, rarely, mostly from 感染科 and 妇产科.
func (g *Generator) RecordType(dept Department) string {
	return recordTypes[g.weighted(typeWeights(dept.Code))]
}

// MaxReportDelay is the furthest a record's text reaches past its time at:
// a report is issued, a note signed or an operation ends at most this long
// after the sample, the examination or the start. No date or time in a
// record is before the patient's birth date or after at+MaxReportDelay.
const MaxReportDelay = 10 * time.Hour

// Record writes a clinical record of recordType (one of RecordTypes; any
// other type is written as a progress note) for patient p in dept at time
// at. The text follows the department's conditions and the patient's age
// and gender; a psychiatric_note written outside 精神科 is a psychiatric
// consultation. Ages are counted at at, and times are written in at's
// location.
func (g *Generator) Record(dept Department, recordType string, p Person, at time.Time) RecordText {
	return g.StayRecord(dept, recordType, p, time.Time{}, at)
}

// StayRecord is Record for a record written at at during an inpatient stay
// that began at admitted: a discharge summary gives that admission date and
// the length of stay from it. A zero admitted (or one after at) lets the
// generator choose a plausible stay, as Record does.
func (g *Generator) StayRecord(dept Department, recordType string, p Person, admitted, at time.Time) RecordText {
	d := deptByCode(dept.Code)
	name := dept.Name
	if name == "" {
		name = d.Name
	}
	conds := d
	if recordType == "psychiatric_note" {
		conds = deptByCode("PSYC")
	}
	in := g.newInstance(d, name, conditionFor(conds, p, at), p, at)
	if admitted.After(at) {
		admitted = time.Time{}
	}
	in.admitted = admitted
	return in.write(recordType)
}

// write writes a record of recordType about condition c.
func (g *Generator) write(d *deptData, deptName string, c *condition, recordType string, p Person, at time.Time) RecordText {
	return g.newInstance(d, deptName, c, p, at).write(recordType)
}

// write writes a record of recordType.
func (in *instance) write(recordType string) RecordText {
	switch recordType {
	case "admission_note":
		return in.admissionNote()
	case "discharge_summary":
		return in.dischargeSummary()
	case "operation_note":
		return in.operationNote()
	case "lab_report":
		return in.labReport()
	case "imaging_report":
		return in.imagingReport()
	case "prescription":
		return in.prescription()
	case "nursing_note":
		return in.nursingNote()
	case "psychiatric_note":
		return in.psychiatricNote()
	case "hiv_test":
		return in.hivTest()
	default:
		return in.progressNote()
	}
}

// conditionFor picks one of d's conditions that suits the patient's age and
// gender; if none does, any of them. The choice depends only on the patient
// and the department, so that all of a patient's records in a department
// are about the same illness.
func conditionFor(d *deptData, p Person, at time.Time) *condition {
	age := p.AgeAt(at)
	fits := make([]int, 0, len(d.conds))
	for i := range d.conds {
		c := &d.conds[i]
		if age >= c.minAge && (c.maxAge == 0 || age <= c.maxAge) && (c.gender == "" || c.gender == p.Gender) {
			fits = append(fits, i)
		}
	}
	h := splitmix(idHash(p.IDNumber) ^ idHash(d.Code))
	if len(fits) == 0 {
		return &d.conds[h%uint64(len(d.conds))]
	}
	return &d.conds[fits[h%uint64(len(fits))]]
}

// vitalSigns are one set of observations.
type vitalSigns struct {
	temp          string // ℃, one decimal
	hr, rr        int
	sys, dia      int
	spo2          int
	weight        float64
	weightPrinted string
}

func (v vitalSigns) bp() string { return strconv.Itoa(v.sys) + "/" + strconv.Itoa(v.dia) }

// vitals returns observations for a patient of age with condition flags.
// build (0 to 1) places the patient's weight in the range for their age, so
// that one patient weighs about the same in every record.
func (g *Generator) vitals(age int, female bool, f vitalFlags, build float64) vitalSigns {
	var v vitalSigns
	t := 36.2 + g.rng.Float64()
	if f&vFever != 0 {
		t = 37.8 + 1.8*g.rng.Float64()
	}
	v.temp = strconv.FormatFloat(t, 'f', 1, 64)
	switch {
	case age < 1:
		v.hr, v.rr, v.sys, v.dia = g.intn(110, 150), g.intn(30, 45), g.intn(70, 90), g.intn(40, 55)
		v.weight = 3.3 + 0.55*float64(int(build*12))
	case age < 6:
		v.hr, v.rr, v.sys, v.dia = g.intn(90, 125), g.intn(22, 30), g.intn(85, 100), g.intn(50, 65)
		v.weight = float64(2*age+8) + float64(int(build*25)-10)/10
	case age < 15:
		v.hr, v.rr, v.sys, v.dia = g.intn(75, 105), g.intn(18, 24), g.intn(95, 115), g.intn(55, 72)
		v.weight = float64(2*age+8) + float64(int(build*60)-20)/10
	default:
		v.hr, v.rr, v.sys, v.dia = g.intn(62, 92), g.intn(16, 20), g.intn(105, 138), g.intn(62, 88)
		if age >= 60 {
			v.sys = g.intn(115, 145)
		}
		if female {
			v.weight = float64(460+int(build*260)) / 10
		} else {
			v.weight = float64(560+int(build*320)) / 10
		}
	}
	v.spo2 = g.intn(95, 99)
	if f&vFever != 0 {
		v.hr += 10
	}
	if f&vTachy != 0 {
		v.hr = g.intn(102, 135)
	}
	if f&vBrady != 0 {
		v.hr = g.intn(38, 50)
	}
	if f&vHypertension != 0 && age >= 15 {
		v.sys, v.dia = g.intn(148, 188), g.intn(88, 112)
	}
	if f&vShock != 0 {
		v.sys, v.dia = g.intn(72, 88), g.intn(38, 52)
	}
	if f&vHypoxia != 0 {
		v.spo2 = g.intn(84, 92)
		if age >= 15 {
			v.rr = g.intn(22, 30)
		}
	}
	v.weightPrinted = strconv.FormatFloat(v.weight, 'f', -1, 64)
	return v
}

// traits are a patient's social facts, derived from the ID number so that
// every record of one patient agrees.
type traits struct {
	ethnicity    string
	allergy      string
	smoker       bool
	smokeYears   int
	cigs         int
	drinker      bool
	drinkYears   int
	children     string
	parents      string
	occupation   string  // for working-age adults
	marriedYoung bool    // married if in their twenties
	build        float64 // 0-1: light to heavy for their age
}

var (
	ethnicities  = []string{"汉族", "回族", "满族", "壮族", "土家族", "蒙古族", "苗族"}
	ethWeights   = []int{920, 25, 20, 12, 8, 8, 7}
	occupations  = []string{"职员", "工人", "农民", "教师", "个体经营者", "自由职业者", "公务员", "工程师", "司机", "医务人员", "服务业人员", "无业"}
	allergies    = []string{"青霉素过敏", "头孢类抗生素过敏", "磺胺类药物过敏", "对海鲜过敏"}
	childrenText = []string{"育有1子", "育有1女", "育有1子1女", "育有2子", "育有2女", "育有1子2女"}
)

// idHash is the FNV-1a hash of s.
func idHash(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func traitsOf(p Person) traits {
	h := idHash(p.IDNumber)
	r := rand.New(rand.NewPCG(h, h^streamMix))
	w := slices.Clone(ethWeights)
	switch p.IDNumber[:min(2, len(p.IDNumber))] {
	case "64": // 宁夏
		w[1] = 350
	case "45": // 广西
		w[3] = 300
	case "15": // 内蒙古
		w[5] = 180
	}
	total := 0
	for _, x := range w {
		total += x
	}
	n, eth := r.IntN(total), ethnicities[0]
	for i, x := range w {
		if n < x {
			eth = ethnicities[i]
			break
		}
		n -= x
	}
	t := traits{ethnicity: eth, allergy: "否认药物、食物过敏史"}
	if r.Float64() < 0.08 {
		t.allergy = "有" + allergies[r.IntN(len(allergies))] + "史"
	}
	smokeP := 0.08
	if p.Gender == "male" {
		smokeP = 0.45
	}
	t.smoker = r.Float64() < smokeP
	t.smokeYears, t.cigs = 5+r.IntN(35), []int{5, 10, 10, 20, 20, 30}[r.IntN(6)]
	t.drinker = p.Gender == "male" && r.Float64() < 0.3
	t.drinkYears = 5 + r.IntN(30)
	t.children = childrenText[r.IntN(len(childrenText))]
	t.parents = []string{"父母体健", "父亲已故，母亲体健", "父母均已故", "父亲患高血压病，母亲体健", "母亲患2型糖尿病，父亲体健"}[r.IntN(5)]
	t.occupation = occupations[r.IntN(len(occupations))]
	t.marriedYoung = r.Float64() < 0.5
	t.build = r.Float64()
	return t
}

// instance is one record being written: a patient, a condition and the
// values chosen for them.
type instance struct {
	g        *Generator
	d        *deptData
	deptName string
	c        *condition
	p        Person
	at       time.Time
	admitted time.Time // the stay's start, if known
	age      int
	ageText  string
	sex      string // 男 or 女
	pt       string // 患者 or 患儿
	female   bool
	child    bool
	e        *expander
	v        vitalSigns
	tr       traits
	abn      []abnormal

	cc, hpi, history, exam, ddx string
	dx                          []string
}

func (g *Generator) newInstance(d *deptData, deptName string, c *condition, p Person, at time.Time) *instance {
	in := &instance{g: g, d: d, deptName: deptName, c: c, p: p, at: at,
		age: p.AgeAt(at), female: p.Gender == "female", tr: traitsOf(p)}
	in.child = in.age < 14
	in.ageText = ageText(p.BirthDate, at)
	in.sex, in.pt = "男", "患者"
	if in.female {
		in.sex = "女"
	}
	if in.child {
		in.pt = "患儿"
	}
	in.v = g.vitals(in.age, in.female, c.vit, in.tr.build)
	keys := map[string]string{
		"name": p.Name, "sex": in.sex, "age": in.ageText, "pt": in.pt,
		"hr": strconv.Itoa(in.v.hr), "bp": in.v.bp(), "t": in.v.temp,
		"r": strconv.Itoa(in.v.rr), "spo2": strconv.Itoa(in.v.spo2), "w": in.v.weightPrinted,
	}
	// The case (complaint, history, diagnoses and their variables such as
	// the side) belongs to the patient's illness, so it is drawn from a
	// source seeded by the patient and department: every record of the
	// illness tells the same story. Findings and results vary by record.
	h := splitmix(idHash(p.IDNumber) ^ idHash(d.Code) ^ idHash(c.cc))
	in.e = newExpander(rand.New(rand.NewPCG(h, h^streamMix)), keys, in.v.weight)
	in.cc = in.e.expand(c.cc)
	in.hpi = in.e.expand(c.hpi)
	in.history = in.e.expand(c.history)
	in.dx = in.e.expandAll(c.dx)
	in.ddx = in.e.expand(c.ddx)
	in.e.rng = g.rng
	in.exam = in.e.expand(c.exam)
	in.abn = c.abn
	return in
}

// ageText writes an age as Chinese records do: 56岁, 8个月, 12天.
func ageText(birth, at time.Time) string {
	if y := ageAt(birth, at); y >= 1 {
		return strconv.Itoa(y) + "岁"
	}
	months := (at.Year()-birth.Year())*12 + int(at.Month()) - int(birth.Month())
	if at.Day() < birth.Day() {
		months--
	}
	if months >= 1 {
		return strconv.Itoa(months) + "个月"
	}
	days := int(at.Sub(birth).Hours() / 24)
	return strconv.Itoa(max(days, 1)) + "天"
}

// calendarDays returns how many calendar days b's date is after a's, each
// read in its own location (b before a gives a negative count).
func calendarDays(a, b time.Time) int {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	d := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC).Sub(time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC))
	return int(d.Round(time.Hour) / (24 * time.Hour))
}

// Formatting helpers.
func stamp(t time.Time) string    { return t.Format("2006-01-02 15:04") }
func dateOnly(t time.Time) string { return t.Format("2006-01-02") }
func cnDate(t time.Time) string   { return t.Format("2006年1月2日") }

// freqText spells a Latin frequency in Chinese.
var freqText = map[string]string{
	"qd": "每日1次", "bid": "每日2次", "tid": "每日3次", "qid": "每日4次", "qn": "每晚1次",
	"q6h": "每6小时1次", "q8h": "每8小时1次", "q12h": "每12小时1次", "qod": "隔日1次",
	"qw": "每周1次", "q2w": "每2周1次", "q3w": "每3周1次", "q4w": "每4周1次",
	"prn": "必要时", "st": "立即", "持续": "持续",
}

func freqCN(f string) string {
	if s, ok := freqText[f]; ok {
		return s
	}
	return f
}

// medLine writes a drug as in an order: 阿司匹林肠溶片 100mg 口服 每日1次.
func (in *instance) medLine(m med) string {
	return m.name + " " + in.e.expand(m.dose) + " " + m.route + " " + freqCN(m.freq)
}

func (in *instance) medNames(n int) string {
	var names []string
	for i, m := range in.c.meds {
		if i == n {
			break
		}
		names = append(names, m.name)
	}
	return strings.Join(names, "、")
}

// procedure returns the operation this record is about.
func (in *instance) procedure() *procedure {
	if in.c.op != nil {
		return in.c.op
	}
	if len(in.d.ops) > 0 {
		return pick(in.g, in.d.ops)
	}
	return in.g.t.defaultProcedure
}

func (in *instance) doctor() string { return in.g.StaffName() }

// header is the identification block most records start with.
func (in *instance) header() string {
	return "姓名：" + in.p.Name + "　性别：" + in.sex + "　年龄：" + in.ageText + "　病案号：" + in.p.MRN
}

// vitalsLine writes the vital signs as in an examination.
func (in *instance) vitalsLine() string {
	return "T " + in.v.temp + "℃，P " + strconv.Itoa(in.v.hr) + "次/分，R " + strconv.Itoa(in.v.rr) +
		"次/分，BP " + in.v.bp() + "mmHg"
}

func (in *instance) vitalFields(f map[string]string) {
	f["体温"] = in.v.temp + "℃"
	f["脉搏"] = strconv.Itoa(in.v.hr) + "次/分"
	f["呼吸"] = strconv.Itoa(in.v.rr) + "次/分"
	f["血压"] = in.v.bp() + "mmHg"
}

// general is the general appearance before the condition's findings.
func (in *instance) general() string {
	if in.c.vit&vDrowsy != 0 {
		return "" // the condition's exam describes consciousness
	}
	if in.child {
		return "神志清楚，精神反应{可|稍差}，查体{合作|欠合作}。"
	}
	return "神志清楚，精神{可|尚可|欠佳}，自主体位，查体合作。"
}

// examText is the physical (and for psychiatry mental) examination.
func (in *instance) examText() string {
	if in.d.Code == "PSYC" {
		return in.vitalsLine() + "。" + in.e.expand(in.general()) + "心肺腹查体未见明显异常，神经系统查体阴性。精神检查：" + in.exam
	}
	return in.vitalsLine() + "。" + in.e.expand(in.general()) + in.exam
}

// imaging returns the condition's imaging study with its slots filled.
func (in *instance) imaging() (mod, part, find, imp string) {
	im := in.c.img
	return im.mod, in.e.expand(im.part), in.e.expand(im.find), in.e.expand(im.imp)
}

// opName is the name of an operation, with the side filled in.
func (in *instance) opName(op *procedure) string { return in.e.expand(op.name) }

// numbered writes a list as 1.… 2.…
func numbered(items []string, sep string) string {
	var b strings.Builder
	for i, s := range items {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(".")
		b.WriteString(s)
	}
	return b.String()
}

// section is part of a record's text; optional sections (drop > 0) are
// left out, highest drop first, when the text would be too long.
type section struct {
	text string
	drop int
}

func compose(secs []section) string {
	for {
		n := 0
		for _, s := range secs {
			n += utf8.RuneCountInString(s.text) + 1
		}
		if n-1 <= maxText {
			break
		}
		worst := -1
		for i, s := range secs {
			if s.drop > 0 && (worst < 0 || s.drop > secs[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			break
		}
		secs = slices.Delete(secs, worst, worst+1)
	}
	parts := make([]string, 0, len(secs))
	for _, s := range secs {
		if s.text != "" {
			parts = append(parts, s.text)
		}
	}
	return strings.Join(parts, "\n")
}

// auxResults summarises the condition's abnormal results for a note.
func (in *instance) auxResults() string {
	var parts []string
	for _, a := range in.abn {
		if len(parts) == 2 {
			break
		}
		for _, pn := range in.c.labs {
			for _, it := range in.g.t.panels[pn].items {
				if it.key == a.key {
					tpl := a.tpl
					if strings.ContainsAny(tpl, "|-") && !strings.Contains(tpl, "{") {
						tpl = "{" + tpl + "}"
					}
					parts = append(parts, shortName(it.name)+" "+in.e.expand(tpl)+it.unit)
				}
			}
		}
	}
	_, part, _, imp := in.imaging()
	s := ""
	if len(parts) > 0 {
		s = strings.Join(parts, "，") + "；"
	}
	if part != "" {
		s += part + "示：" + strings.TrimSuffix(imp, "。") + "。"
	}
	return s
}

// shortName drops the abbreviation from a lab item's printed name.
func shortName(n string) string {
	if i := strings.Index(n, "("); i > 0 {
		return n[:i]
	}
	return n
}

func (in *instance) admissionNote() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	rec := in.at.Add(time.Duration(g.intn(60, 180)) * time.Minute)
	narrator := "患者本人，可靠"
	if in.child {
		narrator = "患儿{母亲|父亲}，可靠"
	} else if in.c.vit&vDrowsy != 0 || in.d.Code == "PSYC" {
		narrator = "患者{家属|配偶|子女}，基本可靠"
	}
	history := in.history
	if history == "" {
		history = "既往体健。"
	}
	if in.infectious() {
		history += "否认其他传染病史，"
	} else {
		history += "否认肝炎、结核等传染病史，"
	}
	if !strings.Contains(history, "术") {
		history += "否认手术、外伤及输血史，"
	} else {
		history += "否认外伤及输血史，"
	}
	history += in.tr.allergy + "。"
	personal := in.personal()
	social := "婚姻：" + in.marital() + "　职业：" + in.occupation()
	if in.child {
		social = "职业：" + in.occupation()
	}
	secs := []section{
		{"入院记录", 0},
		{in.header(), 0},
		{"民族：" + in.tr.ethnicity + "　" + social, 0},
		{"身份证号：" + in.p.IDNumber + "　联系电话：" + in.p.Phone, 0},
		{"出生地：" + in.birthplace(), 7},
		{"住址：" + in.p.Address, 0},
		{in.contact(), 5},
		{"入院时间：" + stamp(in.at) + "　记录时间：" + stamp(rec) + "　病史陈述者：" + e.expand(narrator), 0},
		{"主诉：" + in.cc + "。", 0},
		{"现病史：" + in.pt + in.hpi + e.expand(in.hpiTail()), 0},
		{"既往史：" + e.expand(history), 0},
		{"个人史：" + personal, 3},
		{in.marriage(), 4},
		{"家族史：" + in.tr.parents + "，否认家族遗传性疾病史。", 6},
		{"体格检查：" + in.examText(), 0},
		{"辅助检查：" + in.auxResults(), 2},
		{"初步诊断：" + numbered(in.dx, "　"), 0},
		{"住院医师：" + in.doctor(), 0},
	}
	f["主诉"] = in.cc
	f["现病史"] = in.pt + in.hpi
	f["既往史"] = history
	f["体格检查"] = in.exam
	f["初步诊断"] = strings.Join(in.dx, "；")
	f["入院时间"] = stamp(in.at)
	in.vitalFields(f)
	return RecordText{Title: "入院记录", Text: compose(secs), Fields: f}
}

// infectious reports whether the case itself is about an infection that a
// past history would otherwise deny (hepatitis B, tuberculosis …).
func (in *instance) infectious() bool {
	if in.d.Code == "INFD" {
		return true
	}
	text := in.hpi + in.history + strings.Join(in.dx, "")
	for _, w := range []string{"乙肝", "乙型", "HBsAg", "结核"} {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}

// hpiTail ends the history of present illness: how the patient came to
// the ward and how they have been since.
func (in *instance) hpiTail() string {
	var s string
	switch {
	case strings.Contains(in.hpi, "我科") || strings.Contains(in.hpi, "入院"):
	case strings.Contains(in.hpi, "我院"):
		s = "急诊以“" + in.dx[0] + "”收入我科。"
	default:
		s = "为进一步诊治来我院，{门诊|门诊|急诊}以“" + in.dx[0] + "”收入我科。"
	}
	if in.c.vit&vDrowsy != 0 {
		return s + "自发病以来，{未进食|进食少}，{尿量减少|留置导尿}。"
	}
	s += "自发病以来，精神{尚可|欠佳|一般}，食欲{一般|欠佳|尚可}，睡眠{一般|欠佳|尚可}，大小便{正常|如常}"
	if strings.Contains(in.hpi, "体重") {
		return s + "。"
	}
	return s + "，体重无明显变化。"
}

func (in *instance) personal() string {
	if in.child {
		return in.e.expand("第{1|1|2}胎第{1|1|2}产，足月{顺产|剖宫产}，出生体重{2.9-3.8}kg，生长发育与同龄儿相仿，按计划预防接种。")
	}
	s := "生于" + in.birthplace() + "，久居当地，无疫区、疫水接触史。"
	if in.tr.smoker && in.age >= 18 {
		s += fmt.Sprintf("吸烟%d年，平均%d支/日", min(in.tr.smokeYears, in.age-16), in.tr.cigs)
	} else {
		s += "否认吸烟史"
	}
	if years := min(in.tr.drinkYears, in.age-18); in.tr.drinker && years >= 2 {
		s += "，饮酒史" + strconv.Itoa(years) + "年，平均每日白酒约{1-4}两。"
	} else {
		s += "，{否认饮酒史|偶有少量饮酒}。"
	}
	return in.e.expand(s)
}

func (in *instance) marital() string {
	switch {
	case in.age < 22:
		return "未婚"
	case in.age < 30 && !in.tr.marriedYoung:
		return "未婚"
	case in.age < 30:
		return "已婚"
	case in.age >= 70 && in.tr.children == "育有2女":
		return "丧偶"
	default:
		return "已婚"
	}
}

func (in *instance) marriage() string {
	if in.child || in.marital() == "未婚" {
		return ""
	}
	s := "婚育史：" + in.marital() + "，" + in.tr.children + "，配偶及子女体健。"
	if in.female && in.d.Code == "OBGY" {
		s += in.e.expand("月经史：{12-15}岁初潮，经期{4-7}天，周期{26-32}天，")
		if in.age >= 50 {
			s += in.e.expand("{49-53}岁绝经。")
		} else {
			s += "末次月经" + cnDate(in.at.AddDate(0, 0, -in.g.intn(10, 25))) + "。"
		}
	}
	return s
}

func (in *instance) occupation() string {
	switch {
	case in.age < 3:
		return "散居儿童"
	case in.age < 7:
		return "幼托儿童"
	case in.age < 19:
		return "学生"
	case in.age >= 60 || in.female && in.age >= 55:
		if in.tr.occupation == "农民" {
			return "农民"
		}
		return "离退休人员"
	default:
		return in.tr.occupation
	}
}

// birthplace is where the ID number was issued: province and city.
func (in *instance) birthplace() string {
	for _, a := range in.g.t.areas {
		if strings.HasPrefix(in.p.IDNumber, a.code) {
			return birthplace(a)
		}
	}
	if name, ok := in.g.t.provinceNames[in.p.IDNumber[:min(2, len(in.p.IDNumber))]]; ok {
		return name
	}
	return "不详"
}

// contact names the next of kin with a phone number.
func (in *instance) contact() string {
	g := in.g
	surname := []rune(in.p.Name)[0:1]
	for _, s := range g.t.compoundSurnames {
		if strings.HasPrefix(in.p.Name, s) {
			surname = []rune(s)
		}
	}
	var name, rel string
	switch {
	case in.child:
		if g.chance(0.5) {
			name, rel = string(surname)+g.givenName("male", in.p.BirthDate.Year()-30), "父亲"
		} else {
			name, rel = g.name("female", in.p.BirthDate.Year()-28), "母亲"
		}
	case in.age >= 65 && g.chance(0.6):
		if g.chance(0.5) {
			name, rel = string(surname)+g.givenName("male", in.p.BirthDate.Year()+28), "儿子"
		} else {
			name, rel = g.name("female", in.p.BirthDate.Year()+28), "女儿"
		}
	case in.marital() == "已婚":
		if in.female {
			name, rel = g.name("male", in.p.BirthDate.Year()-2), "丈夫"
		} else {
			name, rel = g.name("female", in.p.BirthDate.Year()+2), "妻子"
		}
	default:
		name, rel = string(surname)+g.givenName("male", in.p.BirthDate.Year()-28), "父亲"
	}
	return "联系人：" + name + "（" + rel + "）　联系电话：" + g.phone()
}

func (in *instance) progressNote() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	doc := in.doctor()
	var kind, body string
	plan := "继续予" + in.medNames(3) + "等治疗，密切观察病情变化。"
	switch r := g.rng.Float64(); {
	case r < 0.2:
		kind = "首次病程记录"
		var labs []string
		for i, l := range in.c.labs {
			if i == 3 {
				break
			}
			labs = append(labs, l)
		}
		_, part, _, _ := in.imaging()
		if part != "" {
			labs = append(labs, part)
		}
		plan = "1.完善" + strings.Join(labs, "、") + "等检查；2.予" + in.medNames(3) + "等治疗；3.密切观察病情变化，及时调整治疗方案。"
		body = in.pt + in.p.Name + "，" + in.sex + "，" + in.ageText + "，因“" + in.cc + "”于" + stamp(in.at) + "入院。\n" +
			"病例特点：1." + in.ageText + in.sex + "性，主要表现为" + in.c.sym + "。2.查体：" + in.vitalsLine() + "，" + in.exam + "\n" +
			"初步诊断：" + numbered(in.dx, "　") + "\n" +
			"鉴别诊断：需与" + in.ddx + "相鉴别。\n" +
			"诊疗计划：" + plan
	case r < 0.55 && (in.d.surgical || in.c.op != nil):
		op := in.procedure()
		kind = "术后病程记录"
		body = in.pt + in.p.Name + "行" + in.opName(op) + "后第" + strconv.Itoa(g.intn(1, 5)) + "天，" +
			e.expand("生命体征平稳，诉{切口轻度疼痛，可耐受|切口疼痛较前减轻|无明显不适}，"+in.postOpProgress()+"。") +
			"查体：" + in.vitalsLine() + e.expand("，切口敷料干燥，无渗血渗液，{切口无红肿|引流管通畅，引流出淡血性液体约{10-60}ml}。") +
			"目前诊断：" + in.dx[0] + "，术后恢复顺利。" +
			e.expand("予切口换药，{继续预防感染、补液等对症支持治疗|嘱逐步恢复饮食，加强功能锻炼}，注意观察病情变化。")
		plan = "切口换药，对症支持治疗"
	case r < 0.7:
		title := pick(g, []string{"主治医师", "副主任医师", "主任医师"})
		senior := g.StaffName()
		kind = title + "查房记录"
		body = "今日" + senior + title + "查房，听取病史汇报并查看" + in.pt + in.p.Name + "后指出：" + in.pt +
			e.expand("{目前|入院后}"+in.c.sym+"{较前好转|较前明显缓解|仍有反复}，") +
			"查体：" + in.vitalsLine() + "。结合病史、查体及辅助检查，目前诊断" + in.dx[0] + "明确，需与" + in.ddx + "相鉴别。" +
			"诊疗意见：" + plan + "遵嘱执行。"
	default:
		kind = "日常病程记录"
		body = in.pt + in.p.Name + e.expand("入院第{2-10}天，诉"+in.c.sym+"{较前减轻|较前缓解|较前好转|仍有反复}，{饮食、睡眠可|夜间睡眠欠佳|食欲欠佳}，大小便{正常|如常}。") +
			"查体：" + in.vitalsLine() + "，" + in.exam
		if aux := in.auxResults(); aux != "" {
			body += "辅助检查回报：" + aux
		}
		body += "目前诊断：" + in.dx[0] + "。" + plan
	}
	f["记录类型"] = kind
	f["病情记录"] = body
	f["诊断"] = strings.Join(in.dx, "；")
	f["诊疗计划"] = plan
	f["血压"] = in.v.bp() + "mmHg"
	f["心率"] = strconv.Itoa(in.v.hr) + "次/分"
	text := compose([]section{
		{stamp(in.at) + "　" + kind, 0},
		{body, 0},
		{"医师签名：" + doc, 0},
	})
	return RecordText{Title: "病程记录（" + kind + "）", Text: text, Fields: f}
}

// postOpProgress is how a patient is getting on after an operation.
func (in *instance) postOpProgress() string {
	if in.d.Code == "GSUR" || in.d.Code == "OBGY" {
		return "{已肛门排气|已肛门排气，已进流质饮食|已下床活动}"
	}
	return "{饮食、睡眠可|已下床活动|饮食、二便正常}"
}

func (in *instance) dischargeSummary() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	los := g.intn(3, 12)
	switch {
	case in.d.surgical:
		los = g.intn(5, 14)
	case in.d.Code == "EMER": // 急诊留观
		los = g.intn(1, 3)
	}
	admit := time.Date(in.at.Year(), in.at.Month(), in.at.Day()-los, g.intn(8, 16), g.intn(0, 59), 0, 0, in.at.Location())
	if !in.admitted.IsZero() {
		admit = in.admitted.In(in.at.Location())
	}
	if b := in.p.BirthDate; calendarDays(b, admit) < 0 { // no one is admitted before they are born
		admit = time.Date(b.Year(), b.Month(), b.Day(), admit.Hour(), admit.Minute(), 0, 0, admit.Location())
	}
	// 住院天数 counts calendar days; a stay that ends the day it began is one.
	stayed := calendarDays(admit, in.at)
	los = max(1, stayed)
	_, part, _, imp := in.imaging()
	course := "入院后完善" + strings.Join(in.c.labs[:min(3, len(in.c.labs))], "、") + "等检查"
	if part != "" {
		course += "，" + part + "示：" + strings.TrimSuffix(imp, "。")
	}
	course += "。"
	if in.d.surgical || in.c.op != nil {
		op := in.procedure()
		course += "于" + cnDate(admit.AddDate(0, 0, min(stayed, g.intn(1, max(1, los/2))))) + "在" + op.anesthesia + "下行" + in.opName(op) + "，手术顺利，术后予对症支持治疗。"
	}
	course += "予" + in.medNames(4) + "等治疗，" + in.pt + in.c.sym + "明显好转。"
	var take []string
	for _, m := range in.c.meds {
		if m.route == "口服" || m.route == "吸入" || m.route == "皮下注射" {
			take = append(take, in.medLine(m))
		}
	}
	orders := e.expand("注意休息，{避免劳累|清淡饮食|低盐低脂饮食}；")
	if len(take) > 0 {
		orders = "出院带药：" + strings.Join(take, "；") + "；" + orders
	}
	orders += e.expand("{1|2}周后") + "门诊复查" + in.c.labs[0] + "，如有不适及时就诊。"
	outcome := e.expand("出院时" + in.pt + "一般情况可，" + in.c.sym + "{明显缓解|基本消失|较入院时明显好转}，生命体征平稳，{饮食、睡眠可|饮食、二便正常}。")
	if in.d.surgical {
		outcome += e.expand("切口愈合良好，{已拆线|无红肿渗出}。")
	}
	dx := numbered(in.dx, "　")
	secs := []section{
		{"出院小结", 0},
		{in.header() + "　科室：" + in.deptName, 0},
		{"入院日期：" + dateOnly(admit) + "　出院日期：" + dateOnly(in.at) + "　住院天数：" + strconv.Itoa(los) + "天", 0},
		{"入院诊断：" + dx, 0},
		{"入院情况：" + in.pt + in.p.Name + "因“" + in.cc + "”入院。查体：" + in.vitalsLine() + "。", 0},
		{"诊疗经过：" + course, 0},
		{"出院诊断：" + dx, 0},
		{"出院情况：" + outcome, 0},
		{"出院医嘱：" + orders, 0},
		{"医师签名：" + in.doctor(), 0},
	}
	f["入院日期"] = dateOnly(admit)
	f["出院日期"] = dateOnly(in.at)
	f["住院天数"] = strconv.Itoa(los)
	f["入院诊断"] = strings.Join(in.dx, "；")
	f["出院诊断"] = strings.Join(in.dx, "；")
	f["诊疗经过"] = course
	f["出院情况"] = outcome
	f["出院医嘱"] = orders
	f["出院带药"] = strings.Join(take, "；")
	return RecordText{Title: "出院小结", Text: compose(secs), Fields: f}
}

func (in *instance) operationNote() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	op := in.procedure()
	opName := in.opName(op)
	end := in.at.Add(time.Duration(g.intn(40, 150)) * time.Minute)
	surgeon, assistant, anaes := g.StaffName(), g.StaffName(), g.StaffName()
	steps := e.expand(op.steps)
	loss := e.expand(op.loss)
	var after string
	if strings.Contains(op.anesthesia, "全身麻醉") || strings.Contains(op.anesthesia, "腰硬") {
		after = e.expand("术中出血" + loss + "，{未输血|未输血，补液{500-1500}ml}。术后" + in.pt + "{安返病房|送麻醉恢复室，清醒后安返病房}。")
	} else {
		after = "术中出血" + loss + "，术程顺利，" + in.pt + "无不适，术后安返病房。"
	}
	if op.specimen {
		after += e.expand("{切除标本送病理检查|标本经家属过目后送病理检查}。")
	}
	anaesLine := "麻醉方式：" + op.anesthesia
	if op.anesthesia != "局部麻醉" {
		anaesLine += "　麻醉医师：" + anaes
	}
	secs := []section{
		{"手术记录", 0},
		{in.header() + "　科室：" + in.deptName, 0},
		{"手术日期：" + dateOnly(in.at) + "　开始时间：" + in.at.Format("15:04") + "　结束时间：" + end.Format("15:04"), 0},
		{"术前诊断：" + in.dx[0], 0},
		{"术后诊断：" + in.dx[0] + "（同术前）", 0},
		{"手术名称：" + opName, 0},
		{"手术者：" + surgeon + "　助手：" + assistant, 0},
		{anaesLine, 0},
		{"手术经过：" + steps, 0},
		{after, 0},
		{"记录者：" + surgeon, 0},
	}
	f["手术名称"] = opName
	f["手术日期"] = dateOnly(in.at)
	f["术前诊断"] = in.dx[0]
	f["术后诊断"] = in.dx[0]
	f["麻醉方式"] = op.anesthesia
	f["手术经过"] = steps
	f["出血量"] = loss
	f["术者"] = surgeon
	return RecordText{Title: "手术记录：" + opName, Text: compose(secs), Fields: f}
}

func (in *instance) labReport() RecordText {
	g := in.g
	f := map[string]string{}
	name := "血常规"
	if len(in.c.labs) > 0 {
		// The most telling panel first, the others less often.
		w := make([]int, len(in.c.labs))
		for i := range w {
			w[i] = 10 - min(i, 3)*2
		}
		name = in.c.labs[g.weighted(w)]
	}
	pn := g.t.panels[name]
	res := g.results(pn, in.female, in.abn, in.e)
	report := in.at.Add(time.Duration(g.intn(60, 300)) * time.Minute)
	var lines, vals, refs, flagged []string
	lines = append(lines, "项目　结果　单位　参考范围")
	for _, r := range res {
		lines = append(lines, r.item.name+"　"+r.value+r.flag+"　"+r.item.unit+"　"+r.ref)
		vals = append(vals, shortName(r.item.name)+" "+r.value+r.item.unit+r.flag)
		refs = append(refs, shortName(r.item.name)+" "+r.ref)
		if r.flag != "" {
			flagged = append(flagged, shortName(r.item.name))
		}
	}
	bed := "门诊"
	if g.chance(0.7) {
		bed = strconv.Itoa(g.intn(1, 45)) + "床"
	}
	secs := []section{
		{"检验报告单", 0},
		{in.header(), 0},
		{"科室：" + in.deptName + "　床号：" + bed + "　标本类型：" + pn.specimen, 0},
		{"检验项目：" + pn.name + "　采集时间：" + stamp(in.at) + "　报告时间：" + stamp(report), 0},
		{strings.Join(lines, "\n"), 0},
		{"检验者：" + g.StaffName() + "　审核者：" + g.StaffName(), 0},
		{"备注：本报告仅对所检标本负责，结果请结合临床。", 1},
	}
	f["检验项目"] = pn.name
	f["标本类型"] = pn.specimen
	f["结果"] = strings.Join(vals, "；")
	f["参考范围"] = strings.Join(refs, "；")
	f["异常项目"] = strings.Join(flagged, "、")
	f["采集时间"] = stamp(in.at)
	f["报告时间"] = stamp(report)
	return RecordText{Title: "检验报告：" + pn.name, Text: compose(secs), Fields: f}
}

func (in *instance) imagingReport() RecordText {
	g := in.g
	f := map[string]string{}
	mod, part, find, imp := in.imaging()
	if part == "" {
		mod, part = "DR", "胸部正位片"
		find, imp = "双肺纹理清晰，未见明显实变影，双肺门影不大，心影大小形态未见异常，双侧膈面光整，肋膈角锐利。", "心肺膈未见明显异常。"
	}
	code := map[string]string{"CT": "CT", "CTA": "CT", "MRI": "MR", "MRCP": "MR", "DR": "DR", "超声": "US", "DSA": "DSA"}[mod]
	if code == "" {
		code = "RIS"
	}
	accession := code + in.at.Format("20060102") + fmt.Sprintf("%04d", g.intn(1, 9999))
	report := in.at.Add(time.Duration(g.intn(30, 240)) * time.Minute)
	secs := []section{
		{mod + "检查报告单", 0},
		{in.header(), 0},
		{"科室：" + in.deptName + "　检查号：" + accession, 0},
		{"检查部位：" + part + "　检查时间：" + stamp(in.at), 0},
		{"检查所见：" + find, 0},
		{"诊断意见：" + imp, 0},
		{"报告医师：" + g.StaffName() + "　审核医师：" + g.StaffName() + "　报告时间：" + stamp(report), 0},
	}
	f["检查类型"] = mod
	f["检查部位"] = part
	f["检查所见"] = find
	f["诊断意见"] = imp
	f["检查时间"] = stamp(in.at)
	return RecordText{Title: "影像报告：" + part, Text: compose(secs), Fields: f}
}

func (in *instance) prescription() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	kind := "普通处方"
	switch {
	case in.child:
		kind = "儿科处方"
	case in.d.Code == "EMER":
		kind = "急诊处方"
	}
	var rx, names, doses, freqs, routes []string
	for i, m := range in.c.meds {
		if i == 4 {
			break
		}
		unit := "盒"
		switch {
		case strings.HasSuffix(m.spec, "支"):
			unit = "支"
		case strings.HasSuffix(m.spec, "瓶"):
			unit = "瓶"
		case strings.HasSuffix(m.spec, "袋") && !strings.Contains(m.spec, "×"):
			unit = "袋"
		}
		dose := e.expand(m.dose)
		rx = append(rx, fmt.Sprintf("%d.%s　%s　×%d%s\n　用法：%s　%s　%s", i+1, m.name, m.spec, g.intn(1, 3), unit, dose, m.route, m.freq))
		names = append(names, m.name)
		doses = append(doses, dose)
		freqs = append(freqs, m.freq)
		routes = append(routes, m.route)
	}
	secs := []section{
		{kind + "笺", 0},
		{"科别：" + in.deptName + "　费别：" + pick(g, []string{"职工医保", "居民医保", "自费", "职工医保"}) + "　处方编号：" + in.at.Format("20060102") + fmt.Sprintf("%05d", g.intn(1, 99999)), 0},
		{in.header(), 0},
		{"临床诊断：" + strings.Join(in.dx[:min(2, len(in.dx))], "；"), 0},
		{"Rp：\n" + strings.Join(rx, "\n"), 0},
		{"医师：" + in.doctor() + "　审核药师：" + g.StaffName() + "　调配/核对：" + g.StaffName(), 0},
		{"开具日期：" + dateOnly(in.at), 0},
	}
	f["处方类型"] = kind
	f["诊断"] = strings.Join(in.dx, "；")
	f["用药"] = strings.Join(names, "；")
	f["剂量"] = strings.Join(doses, "；")
	f["频次"] = strings.Join(freqs, "；")
	f["途径"] = strings.Join(routes, "；")
	return RecordText{Title: kind, Text: compose(secs), Fields: f}
}

func (in *instance) nursingNote() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	level := "一级护理"
	switch {
	case in.d.Code == "ICU":
		level = "特级护理"
	case g.chance(0.4):
		level = "二级护理"
	}
	state := e.expand("神志清楚，精神{可|一般|欠佳}，诉" + in.c.sym + "{较前减轻|仍存在|明显缓解}。")
	if in.c.vit&vDrowsy != 0 {
		state = e.expand("{嗜睡|镇静状态}，RASS评分{-1|-2|-3}分，双侧瞳孔等大等圆，对光反射{灵敏|迟钝}。")
	} else if in.child {
		state = e.expand("精神反应{可|稍差}，{哭闹时可安抚|安静入睡|进食可}。")
	}
	acts := slices.Clone(in.d.nursing)
	g.rng.Shuffle(len(acts), func(i, j int) { acts[i], acts[j] = acts[j], acts[i] })
	care := e.expand(acts[0]) + "。" + e.expand(acts[1]) + "。"
	m := in.c.meds[0]
	given := "遵医嘱予" + in.medLine(m) + e.expand("，{过程顺利|输液通畅}，未见不良反应。")
	risk := e.expand("跌倒风险评估（Morse）{15-55}分，压力性损伤风险评估（Braden）{13-21}分，已落实相应预防措施，已向" + in.pt + "及家属{交代相关注意事项|进行健康宣教}，表示理解。")
	spo2 := strconv.Itoa(in.v.spo2)
	secs := []section{
		{"护理记录", 0},
		{stamp(in.at) + "　T " + in.v.temp + "℃　P " + strconv.Itoa(in.v.hr) + "次/分　R " + strconv.Itoa(in.v.rr) + "次/分　BP " + in.v.bp() + "mmHg　SpO2 " + spo2 + "%", 0},
		{in.pt + in.p.Name + "，" + in.ageText + "，" + level + "，" + state, 0},
		{care + given, 0},
		{risk, 1},
		{"护士签名：" + g.StaffName(), 0},
	}
	in.vitalFields(f)
	f["血氧饱和度"] = spo2 + "%"
	f["护理级别"] = level
	f["病情观察"] = state
	f["护理措施"] = care + given
	return RecordText{Title: "护理记录", Text: compose(secs), Fields: f}
}

func (in *instance) psychiatricNote() RecordText {
	e := in.e
	f := map[string]string{}
	consult := in.d.Code != "PSYC"
	title := "精神科病程记录"
	var intro string
	if consult {
		title = "精神科会诊记录"
		intro = in.deptName + "请会诊：" + in.pt + in.p.Name + "，" + in.sex + "，" + in.ageText + "，住院期间出现" + in.c.sym + "，请我科协助诊治。"
	} else {
		intro = in.pt + in.p.Name + "，" + in.sex + "，" + in.ageText + "，因“" + in.cc + "”入院，" + e.expand("今为入院第{3-21}天。")
	}
	scale := e.expand(in.c.scale)
	risk := e.expand(in.c.risk)
	var meds []string
	for i, m := range in.c.meds {
		if i == 3 {
			break
		}
		meds = append(meds, in.medLine(m))
	}
	plan := "予" + strings.Join(meds, "，") + e.expand("；{配合支持性心理治疗|配合认知行为治疗|加强心理疏导}，{定期复查血常规、肝功能及心电图|注意观察药物不良反应}。")
	if consult {
		plan = "建议：" + plan + e.expand("{必要时转精神专科进一步治疗|请随诊}。")
	}
	secs := []section{
		{title, 0},
		{stamp(in.at), 0},
		{intro, 0},
		{"精神检查：" + in.exam, 0},
		{"量表评估：" + scale, 0},
		{"风险评估：" + risk, 0},
		{"诊断：" + in.dx[0], 0},
		{"处理意见：" + plan, 0},
		{"医师签名：" + in.doctor(), 0},
	}
	f["精神检查"] = in.exam
	f["量表评估"] = scale
	f["风险评估"] = risk
	f["诊断"] = in.dx[0]
	f["处理意见"] = plan
	return RecordText{Title: title, Text: compose(secs), Fields: f}
}

func (in *instance) hivTest() RecordText {
	g, e := in.g, in.e
	f := map[string]string{}
	item, method, result, conclusion := "HIV-1/2抗原抗体联合检测（初筛）", "化学发光法", "", ""
	reactive, monitored := 0.01, 0.0
	if in.d.Code == "INFD" {
		reactive, monitored = 0.1, 0.2
	}
	switch r := g.rng.Float64(); {
	case r < monitored:
		item, method = "HIV-1 RNA定量及CD4+T淋巴细胞计数（抗病毒治疗随访）", "实时荧光定量PCR法；流式细胞术"
		load := "<20 copies/mL（低于检测下限）"
		if g.chance(0.3) {
			load = e.expand("{40-900} copies/mL")
		}
		result = "HIV-1 RNA " + load + e.expand("；CD4+T淋巴细胞计数 {180-650} cells/μL（参考范围410-1590）")
		conclusion = "抗病毒治疗随访，请结合临床评估疗效。"
	case r < monitored+reactive:
		result = e.expand("有反应（S/CO {6.5-85.0}，参考值<1.00）")
		conclusion = "HIV抗体待复查。已按规定送确证实验室复检，结果以确证实验为准；请由专人告知，注意保护受检者隐私。"
	default:
		result = e.expand("阴性（S/CO {0.08-0.45}，参考值<1.00）")
		conclusion = e.expand("未检出HIV-1/2抗体及p24抗原。如处于窗口期，建议{2-4}周后复查。")
	}
	report := in.at.Add(time.Duration(g.intn(120, 600)) * time.Minute)
	secs := []section{
		{"HIV检测报告单", 0},
		{in.header(), 0},
		{"送检科室：" + in.deptName + "　标本类型：血清　采集时间：" + stamp(in.at) + "　报告时间：" + stamp(report), 0},
		{"检测项目：" + item, 0},
		{"检测方法：" + method, 0},
		{"检测结果：" + result, 0},
		{"结论：" + conclusion, 0},
		{"备注：检测前已签署知情同意书。HIV检测结果属于受保护的个人隐私，未经本人同意不得向无关人员透露。", 1},
		{"检验者：" + g.StaffName() + "　审核者：" + g.StaffName(), 0},
	}
	f["检测项目"] = item
	f["检测方法"] = method
	f["结果"] = result
	f["结论"] = conclusion
	f["检测时间"] = stamp(in.at)
	return RecordText{Title: "HIV检测报告", Text: compose(secs), Fields: f}
}
