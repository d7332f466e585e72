package console

import (
	"net/http"
	"strings"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Writing and amending records (书写病历, SPEC §4): the structured fields of
// each record type in clinical order (主诉, 现病史, 既往史, 体格检查 …), the
// free text, and the classification (数据分级). An amendment is a new
// version, made only from the version the writer saw: if someone else
// saved meanwhile, the page says so (409), keeps what was typed and shows
// the version saved meanwhile. Nurses write nursing notes only; the page
// offers each user the types their roles may write.

func init() {
	write := writePermissions()
	register(
		Page{Method: "GET", Path: "/patients/{id}/records/new", Any: write, Handle: newRecordPage},
		Page{Method: "POST", Path: "/patients/{id}/records/new", Any: write, Handle: writeRecord},
		Page{Method: "GET", Path: "/records/{id}/edit", Any: write, Handle: editRecordPage},
		Page{Method: "POST", Path: "/records/{id}/edit", Any: write, Handle: amendRecord},
	)
}

// writePermissions are record.write and its forms for one record type
// (record.write:nursing_note): holding any lets one write something.
func writePermissions() []policy.Permission {
	out := []policy.Permission{policy.RecordWrite}
	for _, t := range policy.RecordTypes {
		out = append(out, policy.RecordWrite+":"+policy.Permission(t.Name))
	}
	return out
}

// clinicalField is a structured field of a record: its key as stored
// (in Chinese, as the HIS and the demo write them), its code in the
// catalog (clinical.field.<code>), and whether it takes a paragraph.
type clinicalField struct {
	Key, Code string
	Long      bool
}

// formFieldSpecs are the fields the forms know, by code.
var formFieldSpecs = func() map[string]clinicalField {
	m := map[string]clinicalField{}
	for _, f := range []clinicalField{
		{"入院时间", "admitted_time", false}, {"主诉", "chief_complaint", true}, {"现病史", "present_illness", true},
		{"既往史", "past_history", true}, {"体格检查", "physical_exam", true}, {"体温", "temperature", false},
		{"脉搏", "pulse", false}, {"呼吸", "respiration", false}, {"血压", "blood_pressure", false},
		{"心率", "heart_rate", false}, {"血氧饱和度", "spo2", false}, {"辅助检查", "auxiliary_exam", true},
		{"初步诊断", "preliminary_diagnosis", true}, {"诊断", "diagnosis", true}, {"诊疗计划", "plan", true},
		{"处理", "treatment", true}, {"记录类型", "note_kind", false}, {"病情记录", "progress", true},
		{"入院日期", "admission_date", false}, {"出院日期", "discharge_date", false}, {"住院天数", "stay_days", false},
		{"入院诊断", "admission_diagnosis", true}, {"诊疗经过", "course", true}, {"出院诊断", "discharge_diagnosis", true},
		{"出院情况", "discharge_condition", true}, {"出院医嘱", "discharge_orders", true}, {"出院带药", "discharge_medication", true},
		{"手术名称", "operation", false}, {"手术日期", "operation_date", false}, {"术前诊断", "preop_diagnosis", true},
		{"术后诊断", "postop_diagnosis", true}, {"麻醉方式", "anaesthesia", false}, {"手术经过", "procedure", true},
		{"出血量", "blood_loss", false}, {"术者", "surgeon", false}, {"检验项目", "lab_item", false},
		{"标本类型", "specimen", false}, {"采集时间", "collected_at", false}, {"结果", "result", true},
		{"参考范围", "reference_range", false}, {"异常项目", "abnormal", true}, {"报告时间", "reported_at", false},
		{"检查类型", "exam_type", false}, {"检查部位", "body_part", false}, {"检查时间", "exam_time", false},
		{"检查所见", "findings", true}, {"诊断意见", "impression", true}, {"处方类型", "prescription_type", false},
		{"用药", "medication", true}, {"剂量", "dose", false}, {"频次", "frequency", false}, {"途径", "route", false},
		{"护理级别", "nursing_level", false}, {"病情观察", "observation", true}, {"护理措施", "nursing_measures", true},
		{"精神检查", "mental_status", true}, {"量表评估", "scales", true}, {"风险评估", "risk", true},
		{"处理意见", "advice", true}, {"检测项目", "test_item", false}, {"检测方法", "test_method", false},
		{"检测时间", "tested_at", false}, {"结论", "conclusion", true},
	} {
		m[f.Code] = f
	}
	return m
}()

// formOrder is the order of each record type's fields: the order in
// which the note is written.
var formOrder = map[string][]string{
	"admission_note": {"admitted_time", "chief_complaint", "present_illness", "past_history", "physical_exam",
		"temperature", "pulse", "respiration", "blood_pressure", "auxiliary_exam", "preliminary_diagnosis", "plan"},
	"progress_note": {"note_kind", "progress", "blood_pressure", "heart_rate", "auxiliary_exam", "diagnosis", "plan"},
	"discharge_summary": {"admission_date", "discharge_date", "stay_days", "admission_diagnosis", "course",
		"discharge_diagnosis", "discharge_condition", "discharge_orders", "discharge_medication"},
	"operation_note": {"operation", "operation_date", "preop_diagnosis", "postop_diagnosis", "anaesthesia", "procedure",
		"blood_loss", "surgeon"},
	"lab_report":     {"lab_item", "specimen", "collected_at", "result", "reference_range", "abnormal", "reported_at"},
	"imaging_report": {"exam_type", "body_part", "exam_time", "findings", "impression"},
	"prescription":   {"prescription_type", "diagnosis", "medication", "dose", "frequency", "route"},
	"nursing_note": {"nursing_level", "temperature", "pulse", "respiration", "blood_pressure", "spo2", "observation",
		"nursing_measures"},
	"consultation_note": {"chief_complaint", "present_illness", "past_history", "physical_exam", "auxiliary_exam",
		"diagnosis", "treatment"},
	"outpatient_note": {"chief_complaint", "present_illness", "past_history", "physical_exam", "auxiliary_exam",
		"diagnosis", "treatment"},
	"psychiatric_note": {"mental_status", "scales", "risk", "diagnosis", "advice"},
	"hiv_test":         {"test_item", "test_method", "tested_at", "result", "conclusion"},
	"reproductive_note": {"chief_complaint", "present_illness", "past_history", "physical_exam", "auxiliary_exam",
		"diagnosis", "treatment"},
}

// formField is a structured field on the form.
type formField struct {
	Name  string // the form field's name
	Key   string // the stored key
	Label string // the label, in the page's language
	Long  bool
	Value string
}

// typeOption is a record type the user may write.
type typeOption struct {
	Code, Name string
	Current    bool
}

// recordForm is the form for writing or amending a record.
type recordForm struct {
	Banner         *patientBanner
	Action         string
	Amend          bool
	RecordID       string
	Type           string
	TypeName       string
	Types          []typeOption
	Department     string // name
	Title, Text    string
	Classification string
	Classes        []string
	Fields, Extra  []formField
	Admissions     []deptOption // Code: admission id; Name: its description
	Admission      string
	Version        int
	// Based is the version the writer started from, on a conflict.
	Based int
	Error *fieldError
	// Current is the version saved meanwhile, on a conflict.
	Current *records.Record
}

// Bad reports whether the form's refusal names field.
func (f *recordForm) Bad(field string) bool { return f.Error != nil && f.Error.Field == field }

// writableTypes are the record types the user's roles may write.
func (rq *Request) writableTypes() []string {
	var out []string
	for _, t := range policy.RecordTypes {
		if rq.Perms.Has(policy.RecordWrite, t.Name) {
			out = append(out, t.Name)
		}
	}
	return out
}

// noPermission is the refusal of a record type the user may not write.
var noPermission = &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission,
	Message: "your roles may not write records of this type"}

// fill sets the form's type-dependent parts: the classes, and the fields
// in clinical order with values (the rest of values as extra fields).
func (rq *Request) fill(f *recordForm, values map[string]string) {
	rt, _ := policy.LookupRecordType(f.Type)
	f.TypeName = rq.recordType(f.Type)
	f.Classes = policy.Classifications
	if rt.Restricted {
		f.Classes, f.Classification = []string{policy.Core}, policy.Core
	}
	if f.Classification == "" {
		f.Classification = rt.Classification
	}
	used := map[string]bool{}
	for _, code := range formOrder[f.Type] {
		cf := formFieldSpecs[code]
		f.Fields = append(f.Fields, formField{Name: "f_" + code, Key: cf.Key, Label: rq.T("clinical.field." + code), Long: cf.Long,
			Value: values[cf.Key]})
		used[cf.Key] = true
	}
	for k, v := range values {
		if !used[k] {
			f.Extra = append(f.Extra, formField{Name: "xv", Key: k, Label: k, Long: true, Value: v})
		}
	}
	sortFields(f.Extra)
}

func sortFields(fs []formField) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Key < fs[j-1].Key; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// formFields reads the structured fields of a posted form: those of the
// type, and the extra ones carried over from the version amended. Empty
// fields are left out.
func (rq *Request) formFields(typ string) map[string]string {
	out := map[string]string{}
	for _, code := range formOrder[typ] {
		if v := strings.TrimSpace(rq.PostFormValue("f_" + code)); v != "" {
			out[formFieldSpecs[code].Key] = v
		}
	}
	keys, values := rq.PostForm["xk"], rq.PostForm["xv"]
	for i := range keys {
		if i < len(values) && strings.TrimSpace(values[i]) != "" && strings.TrimSpace(keys[i]) != "" {
			out[keys[i]] = strings.TrimSpace(values[i])
		}
	}
	return out
}

// admissionOptions are the patient's admissions to the user's department
// not yet archived, which a new record may belong to; the open one is
// chosen.
func (rq *Request) admissionOptions(patientID string) ([]deptOption, string) {
	as, err := rq.Deps.Records.ListAdmissions(rq.Context(), rq.Call, patientID)
	if err != nil {
		return nil, ""
	}
	var out []deptOption
	chosen := ""
	for i := len(as) - 1; i >= 0; i-- {
		a := as[i]
		if a.Department != rq.Call.Actor.Department || a.ArchivedAt != nil {
			continue
		}
		state, _ := rq.admissionState(&a)
		out = append(out, deptOption{Code: a.ID, Name: rq.T("clinical.record.admission_option", rq.Dept(a.Department),
			a.AdmittedAt.In(rq.c.zone).Format("2006-01-02"), state)})
		if a.Status == "admitted" && chosen == "" {
			chosen = a.ID
		}
	}
	return out, chosen
}

func newRecordPage(rq *Request) error {
	id := rq.PathValue("id")
	types := rq.writableTypes()
	typ := rq.URL.Query().Get("type")
	if typ == "" && len(types) > 0 {
		typ = types[0]
		for _, t := range types {
			if t == "progress_note" {
				typ = t
			}
		}
	}
	if _, ok := policy.LookupRecordType(typ); !ok {
		return &notFound
	}
	if !rq.Perms.Has(policy.RecordWrite, typ) {
		return noPermission
	}
	rq.Call.Purpose = clinicalPurpose(rq)
	b, _, err := rq.banner(id)
	if err != nil {
		return err
	}
	f := &recordForm{Banner: b, Action: "/patients/" + id + "/records/new", Type: typ, Department: rq.Dept(rq.Call.Actor.Department)}
	for _, t := range types {
		f.Types = append(f.Types, typeOption{Code: t, Name: rq.recordType(t), Current: t == typ})
	}
	f.Title = rq.recordType(typ)
	f.Admissions, f.Admission = rq.admissionOptions(id)
	rq.fill(f, nil)
	return rq.Render(http.StatusOK, "record_edit", "clinical.record.new_title", f)
}

func writeRecord(rq *Request) error {
	id := rq.PathValue("id")
	typ := rq.form("type")
	if _, ok := policy.LookupRecordType(typ); !ok {
		return medguard.InvalidField("type", "unknown record type")
	}
	in := records.NewRecord{Type: typ, Department: rq.Call.Actor.Department, Title: rq.form("title"),
		Text: rq.PostFormValue("text"), Classification: rq.form("classification"), Fields: rq.formFields(typ),
		AdmissionID: idPath(rq.form("admission"))}
	rec, err := rq.Deps.Records.CreateRecord(rq.Context(), rq.Call, id, in)
	if err == nil {
		return rq.Redirect("/records/"+rec.ID, "record_written")
	}
	fe, ok := rq.fieldErrorOf(err, "clinical.record.error")
	if !ok {
		return err
	}
	rq.Call.Purpose = clinicalPurpose(rq)
	b, _, berr := rq.banner(id)
	if berr != nil {
		return berr
	}
	f := &recordForm{Banner: b, Action: "/patients/" + id + "/records/new", Type: typ, Department: rq.Dept(rq.Call.Actor.Department),
		Title: in.Title, Text: in.Text, Classification: in.Classification, Admission: in.AdmissionID, Error: fe}
	for _, t := range rq.writableTypes() {
		f.Types = append(f.Types, typeOption{Code: t, Name: rq.recordType(t), Current: t == typ})
	}
	f.Admissions, _ = rq.admissionOptions(id)
	rq.fill(f, in.Fields)
	return rq.Render(http.StatusUnprocessableEntity, "record_edit", "clinical.record.new_title", f)
}

// amendForm is the form to amend rec, with values (rec's own, or posted).
func (rq *Request) amendForm(rec *records.Record, title, text, class string, values map[string]string) (*recordForm, error) {
	b, _, err := rq.banner(rec.PatientID)
	if err != nil {
		return nil, err
	}
	f := &recordForm{Banner: b, Action: "/records/" + rec.ID + "/edit", Amend: true, RecordID: rec.ID, Type: rec.Type,
		Department: rq.Dept(rec.Department), Title: title, Text: text, Classification: class, Version: rec.Version}
	rq.fill(f, values)
	return f, nil
}

func editRecordPage(rq *Request) error {
	rq.Call.Purpose = clinicalPurpose(rq)
	rec, err := rq.Deps.Records.GetRecord(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	if !rq.Perms.Has(policy.RecordWrite, rec.Type) {
		return noPermission
	}
	f, err := rq.amendForm(rec, rec.Title, rec.Text, rec.Classification, rec.Fields)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "record_edit", "clinical.record.edit_title", f)
}

func amendRecord(rq *Request) error {
	id := rq.PathValue("id")
	typ := rq.form("type")
	version, verr := uintValue("version", rq.form("version"))
	if verr != nil || version == 0 {
		return medguard.InvalidField("version", "the form lacks the version amended")
	}
	v := int(version)
	title, text, class := rq.form("title"), rq.PostFormValue("text"), rq.form("classification")
	fields := rq.formFields(typ)
	rec, err := rq.Deps.Records.UpdateRecord(rq.Context(), rq.Call, id, records.RecordChanges{Title: &title, Text: &text,
		Fields: fields, Classification: &class, Version: &v})
	if err == nil {
		return rq.Redirect("/records/"+rec.ID, "record_amended")
	}
	conflict := medguard.IsKind(err, medguard.Conflict)
	fe, ok := rq.fieldErrorOf(err, "clinical.record.error")
	if !ok {
		return err
	}
	// Show the form again with what was typed: on a conflict, next to the
	// version saved meanwhile, and made from it (saving again replaces it,
	// knowingly).
	rq.Call.Purpose = clinicalPurpose(rq)
	cur, gerr := rq.Deps.Records.GetRecord(rq.Context(), rq.Call, id)
	if gerr != nil {
		return gerr
	}
	f, ferr := rq.amendForm(cur, title, text, class, fields)
	if ferr != nil {
		return ferr
	}
	status := http.StatusUnprocessableEntity
	if conflict {
		status = http.StatusConflict
		fe = &fieldError{Field: "version", Key: "clinical.record.error.version.conflict"}
		f.Current, f.Based = cur, v
	} else {
		f.Version = v
	}
	f.Error = fe
	return rq.Render(status, "record_edit", "clinical.record.edit_title", f)
}

// CurrentFields are the fields of the version saved meanwhile, in the
// order of the form.
func (f *recordForm) CurrentFields() []formField {
	if f.Current == nil {
		return nil
	}
	var out []formField
	seen := map[string]bool{}
	for _, ff := range f.Fields {
		if v := f.Current.Fields[ff.Key]; v != "" {
			out = append(out, formField{Key: ff.Key, Label: ff.Label, Value: v})
		}
		seen[ff.Key] = true
	}
	var rest []formField
	for k, v := range f.Current.Fields {
		if !seen[k] {
			rest = append(rest, formField{Key: k, Label: k, Value: v})
		}
	}
	sortFields(rest)
	return append(out, rest...)
}
