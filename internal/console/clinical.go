package console

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// Clinical work in the console (issue 10): the homes of doctors, nurses,
// department heads and records clerks (home.go), patient registration
// (registration.go), writing and amending records (writing.go), and
// admissions, discharges and archiving (admissions.go). This file holds
// what they share: grids paged by the service, the patient banner, ages,
// 病案号 tails and the words for admission states.

// pagedSource reads one page of a list the service sorts and pages itself:
// the rows from offset, at most limit, and the number of rows in all.
type pagedSource func(sort string, desc bool, offset, limit int) (rows []Row, total int, err error)

// pagedOptions are a server-paged grid's settings.
type pagedOptions struct {
	DefaultSort string
	DefaultDesc bool
	// Sizes are the page sizes offered (default Sizes). Lists that show
	// patients offer small pages only: every patient shown is a
	// disclosure and counts towards the bulk-read rules.
	Sizes []int
	// Export is the CSV file's stem; empty for no CSV and no print view.
	// Only lists without patient data export: every row is read for them.
	Export     string
	SelectName string
	Empty      string
}

// exportChunk is the page the service is asked for when a whole list is
// read for CSV or print.
const exportChunk = records.MaxWorklistPage

// pagedGrid is rq.Grid for a list the service sorts and pages: only the
// page shown is read (and, for patients, disclosed). For ?format=csv it
// writes every row (at most MaxRows) as CSV and reports handled.
func (rq *Request) pagedGrid(id string, cols []Column, o pagedOptions, fetch pagedSource) (*Grid, bool, error) {
	q := rq.URL.Query()
	g := &Grid{ID: id, Columns: cols, Sizes: o.Sizes, Print: rq.print, SelectName: o.SelectName, Empty: o.Empty,
		path: rq.URL.Path, query: q}
	if g.Empty == "" {
		g.Empty = "common.none"
	}
	if len(g.Sizes) == 0 {
		g.Sizes = Sizes
	}
	g.Sort, g.Desc = o.DefaultSort, o.DefaultDesc
	if s := q.Get("sort"); s != "" {
		for _, c := range cols {
			if c.Key == s && c.Sort {
				g.Sort, g.Desc = s, q.Get("desc") == "1"
			}
		}
	}
	if o.Export != "" && (q.Get("format") == "csv" || rq.print) {
		var rows []Row
		total := 0
		for off := 0; off < MaxRows; off += exportChunk {
			rs, t, err := fetch(g.Sort, g.Desc, off, min(exportChunk, MaxRows-off))
			if err != nil {
				return nil, false, err
			}
			rows, total = append(rows, rs...), t
			if len(rs) < exportChunk {
				break
			}
		}
		if q.Get("format") == "csv" {
			return g, true, rq.writeCSV(o.Export, cols, rows)
		}
		g.Rows, g.Total, g.Capped = rows, len(rows), total > len(rows)
		g.Size, g.Page, g.Pages = max(len(rows), 1), 1, 1
		return g, false, nil
	}
	g.Size = g.Sizes[len(g.Sizes)-1]
	for _, n := range g.Sizes {
		if n == PageSize {
			g.Size = n
		}
	}
	if n, err := strconv.Atoi(q.Get("size")); err == nil {
		for _, s := range g.Sizes {
			if s == n {
				g.Size = n
			}
		}
	}
	g.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n >= 1 && n <= MaxRows {
		g.Page = n
	}
	rows, total, err := fetch(g.Sort, g.Desc, (g.Page-1)*g.Size, g.Size)
	if err != nil {
		return nil, false, err
	}
	g.Pages = max((total+g.Size-1)/g.Size, 1)
	if g.Page > g.Pages {
		g.Page = g.Pages
		if rows, total, err = fetch(g.Sort, g.Desc, (g.Page-1)*g.Size, g.Size); err != nil {
			return nil, false, err
		}
	}
	g.Rows, g.Total = rows, total
	if o.Export == "" {
		g.query.Set("noexport", "1")
	}
	return g, false, nil
}

// patientBanner is the patient named at the top of every clinical page:
// name, 病案号, gender, age and the departments holding their data.
type patientBanner struct {
	ID, Name, MRN, Gender, Age string
	Departments                []string // names
}

// banner reads the patient for the banner (an audited read, like any).
func (rq *Request) banner(id string) (*patientBanner, *records.Patient, error) {
	p, err := rq.Deps.Records.GetPatient(rq.Context(), rq.Call, id)
	if err != nil {
		return nil, nil, err
	}
	b := &patientBanner{ID: p.ID, Name: p.Name, MRN: p.MRN, Gender: rq.T("gender." + p.Gender), Age: rq.age(p.BirthDate)}
	for _, d := range p.Departments {
		b.Departments = append(b.Departments, rq.Dept(d))
	}
	return b, p, nil
}

// age says a patient's age in words from a birth date (YYYY-MM-DD): years,
// or months and days for infants; "" when unknown.
func (rq *Request) age(birth string) string {
	b, err := time.Parse(time.DateOnly, birth)
	if err != nil {
		return ""
	}
	now := rq.Deps.Clock.Now().In(rq.c.zone)
	ty, tm, td := now.Date()
	today := time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)
	if today.Before(b) {
		return ""
	}
	years := ty - b.Year()
	if tm < b.Month() || tm == b.Month() && td < b.Day() {
		years--
	}
	if years >= 1 {
		return rq.T("clinical.age.years", years)
	}
	months := (ty-b.Year())*12 + int(tm-b.Month())
	if td < b.Day() {
		months--
	}
	if months >= 1 {
		return rq.T("clinical.age.months", months)
	}
	return rq.T("clinical.age.days", int(today.Sub(b)/(24*time.Hour)))
}

// mrnTail shows the last four characters of a 病案号, enough to tell
// patients apart at a glance: "…0123".
func mrnTail(mrn string) string {
	if utf8.RuneCountInString(mrn) <= 4 {
		return mrn
	}
	r := []rune(mrn)
	return "…" + string(r[len(r)-4:])
}

// recordType names a record type in the page's language.
func (rq *Request) recordType(code string) string {
	rt, ok := policy.LookupRecordType(code)
	switch {
	case !ok:
		return rq.T("clinical.record.unknown_type")
	case rq.Lang == "en":
		return rt.NameEN
	}
	return rt.NameZH
}

// admissionState says an admission's state in words, with the CSS class
// that marks it (an overdue archiving in red).
func (rq *Request) admissionState(a *records.Admission) (text, class string) {
	if a == nil {
		return rq.T("clinical.state.none"), "muted"
	}
	text = rq.T("clinical.status." + a.Status)
	switch a.Status {
	case "overdue", "archived_late":
		class = "tag bad"
	case "admitted":
		class = "tag ok"
	default:
		class = "tag"
	}
	return text, class
}

// deadline says an admission's archiving deadline in words: time left,
// overdue by, or archived (late by).
func (rq *Request) deadline(a *records.Admission, now time.Time) (text, class string) {
	switch {
	case a.ArchiveDueAt == nil:
		return "", ""
	case a.ArchivedAt != nil && a.HoursLate > 0:
		return rq.T("clinical.deadline.archived_late", rq.sayHours(a.HoursLate)), "bad"
	case a.ArchivedAt != nil:
		return rq.T("clinical.deadline.archived"), "ok"
	}
	text = rq.countdown(*a.ArchiveDueAt, now)
	if now.After(*a.ArchiveDueAt) {
		return text, "overdue"
	}
	return text, ""
}

// sayHours says a number of hours in days and hours.
func (rq *Request) sayHours(h int) string {
	if h >= 24 {
		return rq.T("clinical.hours.dh", h/24, h%24)
	}
	return rq.T("clinical.hours.h", h)
}

// clinicalPurpose is the purpose of use of a clinical page: archiving for
// the records office, nursing for nurses, treatment otherwise.
func clinicalPurpose(rq *Request) string {
	switch {
	case hasRole(rq, policy.RecordsClerk):
		return "archiving"
	case hasRole(rq, policy.Nurse) && !rq.Can(policy.RecordWrite):
		return "nursing"
	}
	return "treatment"
}

func hasRole(rq *Request, role string) bool {
	for _, r := range rq.Call.Actor.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// fieldError is a refused input shown next to its field, in words.
type fieldError struct {
	Field string // the form field's name
	Key   string // the catalog key of the message
}

// fieldErrorOf finds the field a refusal names, or reports false for an error
// the framework answers (403, 404, 423 …). prefix names the form's keys:
// prefix.<field>[.<cause>], else prefix.<field>, else prefix.invalid.
func (rq *Request) fieldErrorOf(err error, prefix string) (*fieldError, bool) {
	var me *medguard.Error
	if !errors.As(err, &me) || (me.Kind != medguard.Invalid && me.Kind != medguard.Conflict) {
		return nil, false
	}
	fe := &fieldError{Field: me.Field, Key: prefix + ".invalid"}
	cause := ""
	if me.Kind == medguard.Conflict {
		cause = "taken"
	}
	for code, c := range causeCodes {
		if errors.Is(err, c) {
			cause = code
		}
	}
	keys := []string{prefix + "." + me.Field}
	if me.Field == "" && me.Kind == medguard.Conflict {
		keys = []string{prefix + ".conflict"}
	}
	if cause != "" {
		keys = append([]string{prefix + "." + me.Field + "." + cause}, keys...)
	}
	for _, k := range keys {
		if rq.c.catalog.has(k) {
			fe.Key = k
			break
		}
	}
	return fe, true
}
