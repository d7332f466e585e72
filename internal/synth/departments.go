package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Department is a clinical department of the synthetic hospital.
type Department struct {
	// Code is a short ASCII code, e.g. "CARD".
	Code string
	// Name is the department's Chinese name, e.g. 心内科.
	Name string
	// NameEN is the department's English name.
	NameEN string
}

// Departments returns the hospital's departments in a fixed order. The
// slice is new on each call.
func Departments() []Department {
	depts := loaded().depts
	out := make([]Department, len(depts))
	for i, d := range depts {
		out[i] = d.Department
	}
	return out
}

// profile says which patients a department treats.
type profile struct {
	minAge, maxAge int
	gender         string // "" for either
}

// vitalFlags bend a condition's vital signs away from normal.
type vitalFlags uint8

const (
	vFever vitalFlags = 1 << iota
	vHypertension
	vShock
	vTachy
	vBrady
	vHypoxia
	vDrowsy // consciousness impaired or sedated
)

// vitalNames are the names of vitalFlags in the data files.
var vitalNames = map[string]vitalFlags{
	"fever": vFever, "hypertension": vHypertension, "shock": vShock, "tachycardia": vTachy,
	"bradycardia": vBrady, "hypoxia": vHypoxia, "drowsy": vDrowsy,
}

// med is one drug as a prescriber writes it.
type med struct {
	name  string // 阿司匹林肠溶片
	spec  string // 规格: 100mg×30片
	dose  string // 单次剂量: 100mg (a template)
	route string // 口服, 静脉滴注 …
	freq  string // qd, bid … (see freqText) or free text
}

// imaging is an imaging study and what it showed.
type imaging struct {
	mod  string // CT, MRI, DR, 超声 …
	part string // 检查部位 and technique: 头颅MRI平扫+DWI
	find string // 检查所见 (a template)
	imp  string // 诊断意见 (a template)
}

// procedure is an operation or bedside procedure (data/procedures.json).
type procedure struct {
	name       string
	anesthesia string
	steps      string // 手术经过 (a template)
	loss       string // 出血量 (a template)
	specimen   bool   // tissue is removed and sent to pathology
}

// condition is one presentation a department sees: complaint, history,
// findings, diagnoses, treatment (data/conditions/CODE.json, read as a
// conditionFile). Its strings are templates (template.go).
type condition struct {
	cc      string   // 主诉
	sym     string   // the symptoms in a few words, for progress notes
	hpi     string   // 现病史, without the leading 患者
	history string   // 既往史 relevant to the condition; "" for 既往体健
	exam    string   // 专科查体 (for psychiatry: 精神检查)
	ddx     string   // 鉴别诊断
	dx      []string // diagnoses, main first
	meds    []med
	labs    []string   // lab panels, most telling first
	abn     []abnormal // abnormal lab results
	img     imaging
	op      *procedure // nil: the department's usual procedure
	vit     vitalFlags
	minAge  int
	maxAge  int    // 0 for no limit
	gender  string // "" for either
	scale   string // psychiatry: rating scales
	risk    string // psychiatry: risk assessment
}

// deptData is a department with everything needed to write its records
// (data/departments.json and data/conditions/CODE.json).
type deptData struct {
	Department
	profile
	conds    []condition
	ops      []*procedure // usual procedures for conditions without their own
	nursing  []string     // nursing actions (templates)
	surgical bool
}

// deptByCode finds a department's data; an unknown code gets 急诊科's.
func deptByCode(code string) *deptData {
	t := loaded()
	for _, d := range t.depts {
		if d.Code == code {
			return d
		}
	}
	return t.emergency
}

// profileOf returns which patients the department with code treats.
func profileOf(code string) profile { return deptByCode(code).profile }

// clinical are the tables of departments and what they treat.
type clinical struct {
	depts      []*deptData // in the order Departments returns them
	emergency  *deptData   // for unknown department codes
	procedures map[string]*procedure
	// defaultProcedure is for a condition without a procedure in a
	// department without usual ones.
	defaultProcedure *procedure
}

// The department that unknown department codes get, and the procedure of
// last resort.
const (
	emergencyCode       = "EMER"
	defaultProcedureKey = "central-line"
)

// departmentsFile is data/departments.json: the departments in the order
// Departments returns them. Each department's conditions are in
// data/conditions/CODE.json (a conditionFile each).
type departmentsFile []struct {
	// Code is a short upper-case ASCII code, e.g. CARD.
	Code string `json:"code"`
	// Name is the department's Chinese name, e.g. 心内科.
	Name        string `json:"name"`
	EnglishName string `json:"englishName"`
	// MinAge, MaxAge and Gender (absent for either) say which patients
	// the department treats.
	MinAge int    `json:"minAge"`
	MaxAge int    `json:"maxAge"`
	Gender string `json:"gender"`
	// Surgical departments operate: each of their conditions names its
	// procedure.
	Surgical bool `json:"surgical"`
	// UsualProcedures are keys in procedures.json: the procedures a
	// record is about when its condition names none.
	UsualProcedures []string `json:"usualProcedures"`
	// Nursing are nursing actions (templates); a nursing note gives two.
	Nursing []string `json:"nursing"`
}

// conditionFile is one condition of a department, in
// data/conditions/CODE.json: one presentation the department sees. Its
// strings are templates (template.go). HIV infection is deliberately
// absent from the conditions: it appears only in hiv_test records, the
// restricted type.
type conditionFile struct {
	Complaint string `json:"complaint"` // 主诉
	// Symptoms are the symptoms in a few words, for progress notes.
	Symptoms       string `json:"symptoms"`
	PresentIllness string `json:"presentIllness"` // 现病史, without the leading 患者
	// PastHistory is the 既往史 relevant to the condition; absent for
	// 既往体健.
	PastHistory string `json:"pastHistory"`
	// Examination is the 专科查体 (for psychiatry: 精神检查).
	Examination string `json:"examination"`
	// RatingScales and RiskAssessment are psychiatry's.
	RatingScales          string   `json:"ratingScales"`
	RiskAssessment        string   `json:"riskAssessment"`
	DifferentialDiagnosis string   `json:"differentialDiagnosis"` // 鉴别诊断
	Diagnoses             []string `json:"diagnoses"`             // main first
	// Medicines are each a key in drugs.json or a drug written out (a
	// drugFile) when no other condition uses it.
	Medicines []json.RawMessage `json:"medicines"`
	// LabPanels are names in lab_panels.json, most telling first.
	LabPanels []string `json:"labPanels"`
	// AbnormalResults are the condition's abnormal lab results, each an
	// item key of one of its panels, a space and the value: a range
	// (WBC 11.5-16.8), choices (U-PRO 阳性(+)|阳性(++)) or a template.
	AbnormalResults []string `json:"abnormalResults"`
	// Imaging is a key in imaging.json or a study written out (an
	// imagingFile).
	Imaging json.RawMessage `json:"imaging"`
	// Procedure is a key in procedures.json; absent, the department's
	// usual procedures.
	Procedure string `json:"procedure"`
	// VitalSigns bend the vital signs away from normal: fever,
	// hypertension, shock, tachycardia, bradycardia, hypoxia, drowsy.
	VitalSigns []string `json:"vitalSigns"`
	// MinAge, MaxAge (absent for no limit) and Gender (absent for either)
	// say which patients have the condition.
	MinAge int    `json:"minAge"`
	MaxAge int    `json:"maxAge"`
	Gender string `json:"gender"`
}

// drugFile is a drug as a prescriber writes it, in drugs.json or a
// condition.
type drugFile struct {
	Name          string `json:"name"`          // 阿司匹林肠溶片
	Specification string `json:"specification"` // 规格: 100mg×30片
	Dose          string `json:"dose"`          // 单次剂量 (a template): 100mg; children's per kg, {w*40}mg
	Route         string `json:"route"`         // 口服, 静脉滴注 …
	Frequency     string `json:"frequency"`     // qd, bid … (see freqText) or free text
}

// imagingFile is an imaging study and what it showed, in imaging.json or
// a condition.
type imagingFile struct {
	Modality   string `json:"modality"`   // CT, MRI, DR, 超声 …
	Study      string `json:"study"`      // 检查部位 and technique: 头颅MRI平扫+DWI
	Findings   string `json:"findings"`   // 检查所见 (a template)
	Impression string `json:"impression"` // 诊断意见 (a template)
}

// procedureFile is an operation or bedside procedure in procedures.json.
// Its name and steps are templates; one that names a side uses $s, which
// the conditions it belongs to define in their complaint, and so must not
// be a department's usual procedure.
type procedureFile struct {
	Name       string `json:"name"`
	Anesthesia string `json:"anesthesia"`
	Steps      string `json:"steps"`     // 手术经过
	BloodLoss  string `json:"bloodLoss"` // 出血量
	// SpecimenToPathology is whether tissue is removed and sent to
	// pathology.
	SpecimenToPathology bool `json:"specimenToPathology"`
}

// load reads the departments, their conditions, and the drugs, imaging
// studies and procedures the conditions refer to; panels are the lab
// panels they order.
func (c *clinical) load(fsys fs.FS, panels map[string]panel) error {
	drugs, err := decodeNamed[drugFile](fsys, "data/drugs.json")
	if err != nil {
		return err
	}
	studies, err := decodeNamed[imagingFile](fsys, "data/imaging.json")
	if err != nil {
		return err
	}
	procs, err := decodeNamed[procedureFile](fsys, "data/procedures.json")
	if err != nil {
		return err
	}
	c.procedures = make(map[string]*procedure, len(procs))
	for k, p := range procs {
		c.procedures[k] = &procedure{name: p.Name, anesthesia: p.Anesthesia, steps: p.Steps, loss: p.BloodLoss, specimen: p.SpecimenToPathology}
	}
	if c.defaultProcedure = c.procedures[defaultProcedureKey]; c.defaultProcedure == nil {
		return fmt.Errorf("data/procedures.json: no %q, the procedure of last resort", defaultProcedureKey)
	}
	r := resolver{drugs: drugs, studies: studies, procedures: c.procedures, panels: panels}

	const file = "data/departments.json"
	var depts departmentsFile
	if err := decodeJSON(fsys, file, &depts); err != nil {
		return err
	}
	codes := map[string]bool{}
	for _, d := range depts {
		if codes[d.Code] || d.Code == "" {
			return fmt.Errorf("%s: department code %q is empty or there twice", file, d.Code)
		}
		codes[d.Code] = true
		if d.MinAge < 0 || d.MaxAge < d.MinAge || !validGender(d.Gender) {
			return fmt.Errorf("%s: %s: ages %d-%d or gender %q", file, d.Code, d.MinAge, d.MaxAge, d.Gender)
		}
		if len(d.Nursing) < 2 {
			return fmt.Errorf("%s: %s: fewer than two nursing actions", file, d.Code)
		}
		dd := &deptData{
			Department: Department{Code: d.Code, Name: d.Name, NameEN: d.EnglishName},
			profile:    profile{minAge: d.MinAge, maxAge: d.MaxAge, gender: d.Gender},
			nursing:    d.Nursing,
			surgical:   d.Surgical,
		}
		for _, k := range d.UsualProcedures {
			p := c.procedures[k]
			if p == nil {
				return fmt.Errorf("%s: %s: unknown procedure %q", file, d.Code, k)
			}
			if strings.Contains(p.name+p.steps+p.loss, "{$") {
				return fmt.Errorf("%s: %s: procedure %q uses a condition's variable, so cannot be a usual procedure", file, d.Code, k)
			}
			dd.ops = append(dd.ops, p)
		}
		condFile := "data/conditions/" + d.Code + ".json"
		var conds []conditionFile
		if err := decodeJSON(fsys, condFile, &conds); err != nil {
			return err
		}
		if len(conds) == 0 {
			return fmt.Errorf("%s: no conditions", condFile)
		}
		for i, cf := range conds {
			cond, err := r.condition(cf)
			if err != nil {
				return fmt.Errorf("%s: condition %d (%s): %w", condFile, i+1, cf.Complaint, err)
			}
			if dd.surgical && cond.op == nil {
				return fmt.Errorf("%s: condition %d (%s): no procedure in a surgical department", condFile, i+1, cf.Complaint)
			}
			dd.conds = append(dd.conds, cond)
		}
		c.depts = append(c.depts, dd)
		if d.Code == emergencyCode {
			c.emergency = dd
		}
	}
	if c.emergency == nil {
		return fmt.Errorf("%s: no %s department, which unknown codes get", file, emergencyCode)
	}
	return nil
}

func validGender(g string) bool { return g == "" || g == "male" || g == "female" }

// resolver turns conditions as written in the files into conditions,
// resolving their references to the named drugs, imaging studies,
// procedures and lab panels.
type resolver struct {
	drugs      map[string]drugFile
	studies    map[string]imagingFile
	procedures map[string]*procedure
	panels     map[string]panel
}

func (r resolver) condition(cf conditionFile) (condition, error) {
	c := condition{
		cc: cf.Complaint, sym: cf.Symptoms, hpi: cf.PresentIllness, history: cf.PastHistory,
		exam: cf.Examination, ddx: cf.DifferentialDiagnosis, dx: cf.Diagnoses, labs: cf.LabPanels,
		minAge: cf.MinAge, maxAge: cf.MaxAge, gender: cf.Gender, scale: cf.RatingScales, risk: cf.RiskAssessment,
	}
	if len(c.dx) == 0 || len(cf.Medicines) == 0 || len(c.labs) == 0 {
		return c, errors.New("no diagnoses, medicines or lab panels")
	}
	if c.minAge < 0 || c.maxAge != 0 && c.maxAge < c.minAge || !validGender(c.gender) {
		return c, fmt.Errorf("ages %d-%d or gender %q", c.minAge, c.maxAge, c.gender)
	}
	for _, raw := range cf.Medicines {
		var d drugFile
		var key string
		if json.Unmarshal(raw, &key) == nil {
			var ok bool
			if d, ok = r.drugs[key]; !ok {
				return c, fmt.Errorf("unknown drug %q", key)
			}
		} else if err := strictUnmarshal(raw, &d); err != nil {
			return c, fmt.Errorf("medicine %s: %w", raw, err)
		}
		c.meds = append(c.meds, med{name: d.Name, spec: d.Specification, dose: d.Dose, route: d.Route, freq: d.Frequency})
	}
	if len(cf.Imaging) > 0 {
		var im imagingFile
		var key string
		if json.Unmarshal(cf.Imaging, &key) == nil {
			var ok bool
			if im, ok = r.studies[key]; !ok {
				return c, fmt.Errorf("unknown imaging study %q", key)
			}
		} else if err := strictUnmarshal(cf.Imaging, &im); err != nil {
			return c, fmt.Errorf("imaging: %w", err)
		}
		c.img = imaging{mod: im.Modality, part: im.Study, find: im.Findings, imp: im.Impression}
	}
	if cf.Procedure != "" {
		if c.op = r.procedures[cf.Procedure]; c.op == nil {
			return c, fmt.Errorf("unknown procedure %q", cf.Procedure)
		}
	}
	for _, v := range cf.VitalSigns {
		f, ok := vitalNames[v]
		if !ok {
			return c, fmt.Errorf("unknown vital sign profile %q", v)
		}
		c.vit |= f
	}
	for _, l := range c.labs {
		if _, ok := r.panels[l]; !ok {
			return c, fmt.Errorf("unknown lab panel %q", l)
		}
	}
	for _, a := range cf.AbnormalResults {
		key, value, _ := strings.Cut(strings.TrimSpace(a), " ")
		value = strings.TrimSpace(value)
		if value == "" {
			return c, fmt.Errorf("abnormal result %q has no value", a)
		}
		if !slices.ContainsFunc(c.labs, func(l string) bool {
			return slices.ContainsFunc(r.panels[l].items, func(it labItem) bool { return it.key == key })
		}) {
			return c, fmt.Errorf("abnormal result %q: %s is in none of the condition's lab panels", a, key)
		}
		c.abn = append(c.abn, abnormal{key, value})
	}
	return c, nil
}

// strictUnmarshal decodes the JSON value b into v, refusing fields v does
// not have.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
