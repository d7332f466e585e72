package console

import (
	"errors"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Patients and records (SPEC §4): search by POST with results that tell
// patients apart, the patient page with the patient banner and the record
// list (newest first, filtered by type), the record page, and break-glass
// (紧急访问): a form that names the patient about to be opened and asks the
// reason and purpose, and opens a window of records.BreakGlassWindow.
// Records open by GET /records/{id}, so that a record can be bookmarked
// and reloaded; the purpose of use travels as a code in the query, never
// free text. Ids in paths are opaque; search terms travel only in POST
// bodies.

func init() {
	register(
		Page{Method: "GET", Path: "/patients/search", Any: []policy.Permission{policy.PatientSearch},
			Nav: &Nav{Key: "nav.search", Order: 20}, Handle: searchPage},
		Page{Method: "POST", Path: "/patients/search", Any: []policy.Permission{policy.PatientSearch}, Handle: search},
		Page{Method: "GET", Path: "/patients/{id}", Any: []policy.Permission{policy.PatientRead}, Handle: patientPage},
		Page{Method: "POST", Path: "/patients/{id}/break-glass", Any: []policy.Permission{policy.BreakGlassUse}, Handle: declarePatientGlass},
		Page{Method: "GET", Path: "/records/{id}", Any: []policy.Permission{policy.RecordRead}, Handle: recordPage},
		Page{Method: "POST", Path: "/records/{id}/break-glass", Any: []policy.Permission{policy.BreakGlassUse}, Handle: declareRecordGlass},
		// The record list's form of earlier versions: now a redirect to the record's page.
		Page{Method: "POST", Path: "/records/open", Any: []policy.Permission{policy.RecordRead}, Handle: openRecord},
	)
}

// searchView is the search form and its results.
type searchView struct {
	Query    records.Search
	Matches  []matchRow
	Searched bool
	Error    string
	// CanRegister offers registration when nothing was found.
	CanRegister bool
}

// matchRow is a search result (or the patient a break-glass would open)
// as the page shows it: masked name, gender, age, the tail of the 病案号
// and the departments by name.
type matchRow struct {
	records.Match
	Age         string
	Departments string
}

func (rq *Request) matchRow(m records.Match) matchRow {
	row := matchRow{Match: m}
	if m.Age != nil {
		row.Age = rq.T("patient.age_years", *m.Age)
	}
	names := make([]string, len(m.Departments))
	for i, d := range m.Departments {
		names[i] = rq.Dept(d)
	}
	row.Departments = strings.Join(names, rq.T("reading.list_sep"))
	return row
}

func searchPage(rq *Request) error {
	return rq.Render(http.StatusOK, "search", "search.title", searchView{})
}

func search(rq *Request) error {
	q := records.Search{IDNumber: rq.form("id_number"), Phone: rq.form("phone"), MRN: rq.form("mrn"), Name: rq.form("name")}
	ms, err := rq.Deps.Records.SearchPatients(rq.Context(), rq.Call, q)
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && me.Kind == medguard.Invalid {
			key := "search.error.one_field"
			if me.Field == "id_number" {
				key = "search.error.id_number"
			} else if me.Field != "query" {
				key = "search.error.invalid"
			}
			return rq.Render(http.StatusUnprocessableEntity, "search", "search.title", searchView{Query: q, Error: key})
		}
		return err
	}
	v := searchView{Query: q, Searched: true, CanRegister: rq.Can(policy.PatientCreate)}
	for _, m := range ms {
		v.Matches = append(v.Matches, rq.matchRow(m))
	}
	return rq.Render(http.StatusOK, "search", "search.title", v)
}

// purposeOf reads a purpose-of-use code, treatment by default.
func purposeOf(v string) string {
	if policy.KnownPurpose(v) {
		return v
	}
	return "treatment"
}

// PatientBanner is the patient's banner at the top of every page about a
// patient or one of their records (templates/_patient.html, {{template
// "patient-banner" .}}): name, 病案号, gender, age and departments by
// name, linking to the patient's page with the page's purpose of use.
type PatientBanner struct {
	ID, Name, MRN, Gender, Age string
	Departments                []string
	Purpose                    string
}

// patientBanner makes the banner of a patient the caller has read.
func (rq *Request) patientBanner(p *records.Patient, purpose string) *PatientBanner {
	b := &PatientBanner{ID: p.ID, Name: p.Name, MRN: p.MRN, Gender: p.Gender, Purpose: purpose}
	if age, ok := records.Age(p.BirthDate, rq.Deps.Clock.Now().In(rq.c.zone)); ok {
		b.Age = rq.T("patient.age_years", age)
	}
	for _, d := range p.Departments {
		b.Departments = append(b.Departments, rq.Dept(d))
	}
	return b
}

// glassNotice is the banner of a read in a break-glass window.
type glassNotice struct {
	*records.BreakGlassNotice
	Left string // the window's time left, in words
}

func (rq *Request) glassNotice(n *records.BreakGlassNotice) *glassNotice {
	if n == nil {
		return nil
	}
	mins := int((n.WindowEndsAt.Sub(rq.Deps.Clock.Now()) + time.Minute - 1) / time.Minute)
	return &glassNotice{BreakGlassNotice: n, Left: rq.T("glass.left", max(mins, 0))}
}

// patientView is a patient's page.
type patientView struct {
	// CanWrite, CanAdmit: the links to writing a record and to the
	// patient's admissions, for those who may use them.
	CanWrite, CanAdmit bool
	Banner             *PatientBanner
	Patient            *records.Patient
	Glass              *glassNotice
	Grid               *Grid
	Types              []string // the record types of the patient's records, for the filter
	Type               string
	Purpose            string
	Purposes           []string
}

func patientPage(rq *Request) error {
	id := rq.PathValue("id")
	q := rq.URL.Query()
	purpose := purposeOf(q.Get("purpose"))
	rq.Call.Purpose = purpose
	p, err := rq.Deps.Records.GetPatient(rq.Context(), rq.Call, id)
	if err != nil {
		return glassOr(rq, err, id, "")
	}
	// Every record the caller may read, at most MaxRows, in one listing.
	rs, next, err := rq.Deps.Records.ListRecords(rq.Context(), rq.Call, id, "", MaxRows)
	if err != nil {
		return err
	}
	v := patientView{CanWrite: len(rq.writableTypes()) > 0 && p.BreakGlass == nil, CanAdmit: rq.Can(policy.AdmissionManage) || rq.Can(policy.RecordArchive),
		Banner: rq.patientBanner(p, purpose), Patient: p, Glass: rq.glassNotice(p.BreakGlass),
		Purpose: purpose, Purposes: policy.Purposes}
	present := map[string]bool{}
	for _, r := range rs {
		present[r.Type] = true
	}
	for _, t := range policy.RecordTypes {
		if present[t.Name] {
			v.Types = append(v.Types, t.Name)
		}
	}
	if t := q.Get("type"); present[t] {
		v.Type = t
	}
	cols := []Column{
		{Key: "time", Title: "record.created", Sort: true},
		{Key: "type", Title: "record.type", Sort: true},
		{Key: "title", Title: "record.title_field", Sort: true},
		{Key: "department", Title: "record.department", Sort: true},
		{Key: "class", Title: "record.classification", Sort: true},
		{Key: "author", Title: "record.author", Sort: true},
	}
	var rows []Row
	for _, r := range rs {
		if v.Type != "" && r.Type != v.Type {
			continue
		}
		title := Cell{Text: r.Title, Href: "/records/" + r.ID + "?purpose=" + url.QueryEscape(purpose)}
		rows = append(rows, Row{Cells: []Cell{rq.TimeCell(r.CreatedAt), {Text: rq.recordType(r.Type)}, title,
			{Text: rq.Dept(r.Department)}, rq.classCell(r.Classification), {Text: rq.Person(r.Author)}}})
	}
	g, _, err := rq.Grid("records", cols, rows, GridOptions{DefaultSort: "time", DefaultDesc: true, Capped: next != "",
		Empty: "patient.no_records"})
	if err != nil {
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "patient", "patient.title", v)
}

// classCell shows a classification (数据分级) as a tag.
func (rq *Request) classCell(c string) Cell {
	text := rq.textOr("class."+c, c)
	return Cell{Text: text, Sort: c, HTML: template.HTML(`<span class="tag ` + html.EscapeString(c) + `">` + html.EscapeString(text) + `</span>`)}
}

// glassView is the break-glass form.
type glassView struct {
	Action   string // the form's target
	Preview  *matchRow
	Rule     string
	Purposes []string
	Purpose  string
	Reason   string
	Window   time.Duration
	Error    string // catalog key, shown at its field
	Field    string // "reason" or "purpose"
}

// glassOr shows the break-glass form when the policy refused for want of a
// relation and the caller may break the glass; otherwise the error. The
// form names the patient about to be opened (patientID, or recordID's
// patient) as a search result would.
func glassOr(rq *Request, err error, patientID, recordID string) error {
	var me *medguard.Error
	if !errors.As(err, &me) || me.Kind != medguard.Forbidden || me.Rule != policy.RuleNoRelation || !rq.Can(policy.BreakGlassUse) {
		return err
	}
	return renderGlass(rq, http.StatusForbidden, patientID, recordID, glassView{Rule: me.Rule, Purpose: "emergency"})
}

func renderGlass(rq *Request, status int, patientID, recordID string, v glassView) error {
	v.Action = "/patients/" + patientID + "/break-glass"
	if recordID != "" {
		v.Action = "/records/" + recordID + "/break-glass"
	}
	v.Purposes, v.Window = policy.Purposes, records.BreakGlassWindow
	if rq.Can(policy.PatientSearch) {
		m, err := rq.Deps.Records.BreakGlassPreview(rq.Context(), rq.Call, patientID, recordID)
		if err != nil && !medguard.IsKind(err, medguard.Forbidden) {
			return err
		}
		if m != nil {
			row := rq.matchRow(*m)
			v.Preview = &row
		}
	}
	return rq.Render(status, "breakglass", "breakglass.title", v)
}

func declarePatientGlass(rq *Request) error { return declareGlass(rq, idPath(rq.PathValue("id")), "") }

func declareRecordGlass(rq *Request) error { return declareGlass(rq, "", idPath(rq.PathValue("id"))) }

// declareGlass opens a break-glass window on the patient (or the record's
// patient) and goes back to the page that was refused, now open.
func declareGlass(rq *Request, patientID, recordID string) error {
	reason, purpose := rq.form("reason"), rq.form("purpose")
	_, err := rq.Deps.Records.DeclareBreakGlass(rq.Context(), rq.Call, records.BreakGlassDeclaration{PatientID: patientID,
		RecordID: recordID, Reason: reason, Purpose: purpose})
	if err != nil {
		var me *medguard.Error
		if errors.As(err, &me) && me.Kind == medguard.Invalid {
			v := glassView{Reason: reason, Purpose: purpose, Field: me.Field, Error: "breakglass.error.reason"}
			if me.Field == "purpose" {
				v.Error = "breakglass.error.purpose"
			}
			return renderGlass(rq, http.StatusUnprocessableEntity, patientID, recordID, v)
		}
		return err
	}
	target := "/patients/" + patientID
	if recordID != "" {
		target = "/records/" + recordID
	}
	return rq.Redirect(target+"?purpose="+url.QueryEscape(purposeOf(purpose)), "")
}

// field is a structured field of a record.
type field struct{ Name, Value string }

// clinicalOrder ranks the structured fields as a clinician reads a note:
// 主诉, 现病史, 既往史, 体格检查 (and the vital signs), 辅助检查 (and the
// results), 诊断, 处理; the rest follow in the order of their names.
var clinicalOrder = map[string]int{}

func init() {
	for i, group := range [][]string{
		{"主诉"},
		{"现病史"},
		{"既往史", "个人史", "婚育史", "月经史", "家族史", "过敏史"},
		{"体格检查", "体温", "脉搏", "心率", "呼吸", "血压", "血氧饱和度", "专科检查", "精神检查"},
		{"辅助检查", "检查类型", "检查部位", "检查时间", "检查所见", "检验项目", "检测项目", "检测方法", "标本类型", "采集时间",
			"检测时间", "报告时间", "结果", "参考范围", "异常项目", "量表评估", "风险评估"},
		{"诊断", "初步诊断", "入院诊断", "术前诊断", "术后诊断", "诊断意见", "结论", "出院诊断"},
		{"处理", "处理意见", "诊疗计划", "诊疗经过", "治疗", "医嘱", "用药", "剂量", "频次", "途径", "处方类型", "护理级别",
			"护理措施", "出院医嘱", "出院带药"},
	} {
		for j, name := range group {
			clinicalOrder[name] = (i+1)*100 + j
		}
	}
}

// clinicalFields returns a record's structured fields in clinical order.
func clinicalFields(fs map[string]string) []field {
	out := make([]field, 0, len(fs))
	for k, v := range fs {
		out = append(out, field{k, v})
	}
	rank := func(name string) int {
		if r, ok := clinicalOrder[name]; ok {
			return r
		}
		return 1 << 20
	}
	slices.SortFunc(out, func(a, b field) int {
		if ra, rb := rank(a.Name), rank(b.Name); ra != rb {
			return ra - rb
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// recordView is a record's page.
type recordView struct {
	// CanAmend: the link to amending the record, for a writer of its type
	// who did not reach it by breaking the glass.
	CanAmend bool
	Banner   *PatientBanner
	Record   *records.Record
	Glass    *glassNotice
	Fields   []field
	Purpose  string
}

func recordPage(rq *Request) error {
	id := rq.PathValue("id")
	purpose := purposeOf(rq.URL.Query().Get("purpose"))
	rq.Call.Purpose = purpose
	rec, err := rq.Deps.Records.GetRecord(rq.Context(), rq.Call, id)
	if err != nil {
		return glassOr(rq, err, "", id)
	}
	v := recordView{Record: rec, Glass: rq.glassNotice(rec.BreakGlass), Fields: clinicalFields(rec.Fields), Purpose: purpose,
		CanAmend: rq.Perms.Has(policy.RecordWrite, rec.Type) && rec.BreakGlass == nil}
	// The banner: the patient's details, as the caller may read them.
	p, err := rq.Deps.Records.GetPatient(rq.Context(), rq.Call, rec.PatientID)
	switch {
	case err == nil:
		v.Banner = rq.patientBanner(p, purpose)
	case !medguard.IsKind(err, medguard.Forbidden):
		return err
	}
	return rq.Render(http.StatusOK, "record", "record.title", v)
}

// openRecord answers the record list's form of earlier versions (and old
// bookmarks of it) with the record's page.
func openRecord(rq *Request) error {
	id := idPath(rq.PostFormValue("record"))
	if id == "" {
		return &medguard.Error{Kind: medguard.NotFound, Message: "no such record"}
	}
	return rq.Redirect("/records/"+id+"?purpose="+url.QueryEscape(purposeOf(rq.PostFormValue("purpose"))), "")
}
