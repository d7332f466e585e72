package console

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/inspections"
	"medguard/internal/policy"
)

// The daily inspection (巡查, issue 13): today's form with every item's
// range shown and medguard's own readings filled in; an inspection's page
// with its readings (out of range marked) and the reviewer's
// countersignature; the history of days (missed days marked) and the
// weekly summary as grids with CSV export; the checklist's versions and
// the security office's editor. The service decides and logs; these pages
// only show and post.

func init() {
	register(
		Page{Method: "GET", Path: "/inspections", Any: []policy.Permission{policy.InspectionRead, policy.InspectionPerform},
			Nav: &Nav{Key: "nav.inspections", Order: 59}, Handle: inspectionTodayPage},
		Page{Method: "POST", Path: "/inspections", Any: []policy.Permission{policy.InspectionPerform}, Handle: recordInspection},
		Page{Method: "GET", Path: "/inspections/history", Any: []policy.Permission{policy.InspectionRead}, Handle: inspectionHistoryPage},
		Page{Method: "GET", Path: "/inspections/weeks", Any: []policy.Permission{policy.InspectionRead}, Handle: inspectionWeeksPage},
		Page{Method: "GET", Path: "/inspections/templates", Any: []policy.Permission{policy.InspectionRead}, Handle: inspectionTemplatesPage},
		Page{Method: "POST", Path: "/inspections/templates", Any: []policy.Permission{policy.InspectionManage}, Handle: saveInspectionTemplate},
		Page{Method: "GET", Path: "/inspections/{id}", Any: []policy.Permission{policy.InspectionRead}, Handle: inspectionPage},
		Page{Method: "POST", Path: "/inspections/{id}/review", Any: []policy.Permission{policy.InspectionReview}, Handle: reviewInspection},
	)
	noticeWords[inspections.OutOfRangeRule] = noticeWord{
		Subject: func(rq *Request, a detect.Alert) string {
			if _, label, _, _, ok := inspections.ParseExplanation(a.Explanation); ok {
				return label
			}
			return rq.T("inspection.alert_subject")
		},
		Explain: func(rq *Request, a detect.Alert) string {
			day, _, value, rng, ok := inspections.ParseExplanation(a.Explanation)
			switch {
			case !ok:
				return rq.T("alerts.explain.inspection_out_of_range_other")
			case value == "":
				return rq.T("alerts.explain.inspection_check_failed", day)
			}
			return rq.T("alerts.explain.inspection_out_of_range", day, value, rng)
		},
	}
	noticeWords[inspections.MissedRule] = noticeWord{
		Subject: func(rq *Request, a detect.Alert) string { return rq.T("inspection.alert_subject") },
		Explain: func(rq *Request, a detect.Alert) string { return rq.T("alerts.explain.inspection_missed", a.Key) },
	}
}

// readingRow is one item of the checklist on a page: its range, and — on
// today's form — the input, or medguard's own reading; on an inspection's
// page, the reading.
type readingRow struct {
	Key, Label, Kind, Unit, Range string
	// ByHand is true for an item the inspector fills in.
	ByHand bool
	// System marks the items medguard fills in itself; Facts says what it
	// read (or why it could not).
	System bool
	Facts  string
	Value  string
	Out    bool
	Note   string
	// Posted and PostedOK are what was typed in a form sent back; Bad
	// marks the item at fault.
	Posted, PostedOK string
	Bad              bool
}

// readingRows turns readings into rows in the page's language.
func (rq *Request) readingRows(rs []inspections.Reading) []readingRow {
	out := make([]readingRow, 0, len(rs))
	for _, r := range rs {
		row := readingRow{Key: r.Key, Label: r.Label, Kind: r.Kind, Unit: r.Unit, Range: r.Range(), ByHand: r.Source == inspections.SourceInspector,
			System: inspections.IsSystem(r.Key), Facts: rq.readingFacts(r), Out: r.OutOfRange, Note: r.Note}
		switch {
		case r.Value != nil:
			row.Value = r.Shown()
		case r.OK != nil && *r.OK:
			row.Value = rq.T("inspection.ok")
		case r.OK != nil:
			row.Value = rq.T("inspection.not_ok")
		}
		out = append(out, row)
	}
	return out
}

// readingFacts says what medguard read for a system item, or why it could
// not.
func (rq *Request) readingFacts(r inspections.Reading) string {
	f := r.Facts
	gb := func(b float64) string { return strconv.FormatFloat(b/(1<<30), 'f', 1, 64) }
	switch {
	case len(f) == 0:
		return ""
	case f[inspections.FactUnreadable] == 1:
		return rq.T("inspection.facts.unreadable")
	case r.Key == inspections.BackupStatus && f[inspections.FactBackups] == 0:
		return rq.T("inspection.facts.no_backups")
	case r.Key == inspections.ServerLoad:
		return rq.T("inspection.facts.load", strconv.FormatFloat(f[inspections.FactLoad15], 'f', 2, 64), int(f[inspections.FactCPUs]))
	case r.Key == inspections.FreeSpace:
		return rq.T("inspection.facts.space", gb(f[inspections.FactFreeBytes]), gb(f[inspections.FactTotalBytes]))
	case r.Key == inspections.BackupStatus:
		return rq.T("inspection.facts.backups", int(f[inspections.FactTargets]), int(f[inspections.FactLate]), int(f[inspections.FactFailing]),
			rq.span(f[inspections.FactRPOSeconds]), rq.span(f[inspections.FactFullAgeSeconds]))
	}
	return ""
}

// problemOf turns an Invalid or Conflict error into the words the page
// shows next to its form: prefix.<field> or prefix.conflict.<code> when the
// catalog has them, else prefix.other or prefix.conflict; and the status to
// answer. It reports false for any other error, which the framework
// answers (403, 404, 423…).
func (rq *Request) problemOf(err error, prefix string) (string, int, bool) {
	var me *medguard.Error
	if !errors.As(err, &me) {
		return "", 0, false
	}
	switch me.Kind {
	case medguard.Invalid:
		return rq.textOr(prefix+"."+me.Field, rq.T(prefix+".other")), http.StatusUnprocessableEntity, true
	case medguard.Conflict:
		code := me.Code
		if code == "" {
			code = me.Field
		}
		return rq.textOr(prefix+".conflict."+code, rq.T(prefix+".conflict")), http.StatusConflict, true
	}
	return "", 0, false
}

// readingProblem says what is wrong with an item of today's form, from the
// field the service named (readings.<key>[.value|.ok|.note]).
func (rq *Request) readingProblem(err error, t *inspections.Today) (string, string, int, bool) {
	var me *medguard.Error
	if !errors.As(err, &me) || me.Kind != medguard.Invalid {
		msg, status, ok := rq.problemOf(err, "inspection.error")
		return msg, "", status, ok
	}
	rest, ok := strings.CutPrefix(me.Field, "readings.")
	if !ok {
		msg, status, ok := rq.problemOf(err, "inspection.error")
		return msg, "", status, ok
	}
	key, part, _ := strings.Cut(rest, ".")
	label := key
	if it, ok := t.Template.Item(key); ok {
		label = it.Label
	}
	if part == "" {
		part = "missing"
	}
	return rq.T("inspection.error.reading."+part, label), key, http.StatusUnprocessableEntity, true
}

type inspectionTodayView struct {
	T          *inspections.Today
	Rows       []readingRow
	Done       []readingRow
	Left       string
	CanPerform bool
	CanReview  bool
	// Own is true when the caller signed today's inspection: they may not
	// countersign it.
	Own    bool
	Checks []option
	// Problem is what is wrong with a form sent back (and Bad its item);
	// the values typed stay in the form.
	Problem, Bad string
	Note         string
}

func inspectionTodayPage(rq *Request) error { return renderInspectionToday(rq, nil) }

// renderInspectionToday shows today's page; after a refused form, with
// what is wrong and the values typed.
func renderInspectionToday(rq *Request, refused error) error {
	t, err := rq.Deps.Inspections.Today(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v := inspectionTodayView{T: t, CanPerform: rq.Can(policy.InspectionPerform), CanReview: rq.Can(policy.InspectionReview),
		Left: rq.countdown(t.DueAt, rq.Deps.Clock.Now()), Checks: rq.checkOptions()}
	status := http.StatusOK
	if refused != nil {
		msg, bad, st, ok := rq.readingProblem(refused, t)
		if !ok {
			return refused
		}
		v.Problem, v.Bad, status, v.Note = msg, bad, st, rq.PostFormValue("note")
	}
	system := map[string]inspections.Reading{}
	for _, r := range t.System {
		system[r.Key] = r
	}
	for _, it := range t.Template.Items {
		r, ok := system[it.Key]
		if !ok {
			r = inspections.Reading{Key: it.Key, Label: it.Label, Kind: it.Kind, Unit: it.Unit, Min: it.Min, Max: it.Max, Source: inspections.SourceInspector}
		}
		row := rq.readingRows([]inspections.Reading{r})[0]
		if refused != nil && row.ByHand {
			row.Posted, row.PostedOK = rq.PostFormValue("value."+it.Key), rq.PostFormValue("ok."+it.Key)
		}
		if refused != nil {
			row.Note = rq.PostFormValue("note." + it.Key)
		}
		row.Bad = it.Key == v.Bad
		v.Rows = append(v.Rows, row)
	}
	if t.Inspection != nil {
		v.Done = rq.readingRows(t.Inspection.Readings)
		v.Own = t.Inspection.Inspector == rq.Call.Actor.Name
	}
	return rq.Render(status, "inspections", "inspection.title", v)
}

// recordInspection reads today's form: value.<key>, ok.<key> and
// note.<key> for each item, and note.
func recordInspection(rq *Request) error {
	if err := rq.ParseForm(); err != nil {
		return medguard.InvalidField("readings", "the form could not be read")
	}
	if len(rq.PostForm) > 4*(inspections.MaxItems+2) {
		return medguard.InvalidField("readings", "the form holds too many fields")
	}
	byKey := map[string]*inspections.ReadingInput{}
	var keys []string
	input := func(key string) *inspections.ReadingInput {
		if in, ok := byKey[key]; ok {
			return in
		}
		in := &inspections.ReadingInput{Key: key}
		byKey[key] = in
		keys = append(keys, key)
		return in
	}
	for name, vs := range rq.PostForm {
		kind, key, ok := strings.Cut(name, ".")
		if !ok || key == "" || len(vs) == 0 {
			continue
		}
		v := strings.TrimSpace(vs[0])
		switch kind {
		case "value":
			if v == "" {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return renderInspectionToday(rq, medguard.InvalidField("readings."+key+".value", "the value of %s is not a number", key))
			}
			input(key).Value = &f
		case "ok":
			switch v {
			case "true", "false":
				b := v == "true"
				input(key).OK = &b
			}
		case "note":
			if v != "" {
				input(key).Note = v
			}
		}
	}
	sort.Strings(keys)
	in := inspections.NewInspection{Note: rq.PostFormValue("note")}
	for _, k := range keys {
		in.Readings = append(in.Readings, *byKey[k])
	}
	ins, err := rq.Deps.Inspections.Record(rq.Context(), rq.Call, in)
	if err != nil {
		return renderInspectionToday(rq, err)
	}
	flash := "inspection_recorded"
	if ins.OutOfRange > 0 {
		flash = "inspection_recorded_out_of_range"
	}
	return rq.Redirect("/inspections/"+ins.ID, flash)
}

type inspectionView struct {
	I         *inspections.Inspection
	Rows      []readingRow
	CanReview bool
	Own       bool
}

func inspectionPage(rq *Request) error {
	in, err := rq.Deps.Inspections.Get(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "inspection", "inspection.one_title", inspectionView{I: in, Rows: rq.readingRows(in.Readings),
		CanReview: rq.Can(policy.InspectionReview), Own: in.Inspector == rq.Call.Actor.Name})
}

func reviewInspection(rq *Request) error {
	id := rq.PathValue("id")
	if _, err := rq.Deps.Inspections.Countersign(rq.Context(), rq.Call, id, inspections.Review{Note: rq.PostFormValue("note")}); err != nil {
		return err
	}
	return rq.Redirect("/inspections/"+id, "inspection_countersigned")
}

type inspectionHistoryView struct {
	Grid             *Grid
	From, To, Status string
	Statuses         []option
}

// inspectionHistoryPage is the history of days as a grid: missed days and
// readings out of range marked.
func inspectionHistoryPage(rq *Request) error {
	q := rq.URL.Query()
	v := inspectionHistoryView{From: q.Get("from"), To: q.Get("to"), Status: q.Get("status")}
	v.Statuses = append(v.Statuses, option{Value: "", Text: rq.T("inspection.status.all")})
	for _, s := range append(append([]string{}, inspections.DayStatuses...), inspections.OutOfRangeFilter) {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("inspection.status." + s)})
	}
	if v.From == "" && v.To == "" {
		v.From = inspections.DateOf(rq.Deps.Clock.Now(), rq.c.zone).AddDays(-90).String()
	}
	days, next, err := rq.Deps.Inspections.Days(rq.Context(), rq.Call, inspections.DayQuery{From: v.From, To: v.To, Status: v.Status,
		Limit: inspections.MaxDays})
	if err != nil {
		return err
	}
	cols := []Column{{Key: "day", Title: "inspection.col.day", Sort: true}, {Key: "status", Title: "inspection.col.status", Sort: true},
		{Key: "temperature", Title: "inspection.col.temperature"}, {Key: "humidity", Title: "inspection.col.humidity"},
		{Key: "out", Title: "inspection.col.out_of_range", Sort: true, Num: true}, {Key: "inspector", Title: "inspection.col.inspector", Sort: true},
		{Key: "reviewer", Title: "inspection.col.reviewer", Sort: true}}
	rows := make([]Row, 0, len(days))
	for _, d := range days {
		status := Cell{Text: rq.T("inspection.status." + d.Status), Sort: d.Status}
		switch d.Status {
		case inspections.DayMissed:
			status.Class = "bad"
		case inspections.DayAwaitingReview, inspections.DayDue:
			status.Class = "warn"
		}
		cells := []Cell{{Text: d.Day, Class: "nowrap"}, status, {}, {}, NumCell(0), {}, {}}
		r := Row{Cells: cells}
		if d.Status == inspections.DayMissed {
			r.Class = "flag"
		}
		if in := d.Inspection; in != nil {
			cells[0].Href = "/inspections/" + in.ID
			for _, rd := range in.Readings {
				c := Cell{Text: rd.Shown()}
				if rd.OutOfRange {
					c.Class, c.Title = "bad", rq.T("inspection.out_of_range_title", rd.Range())
				}
				switch rd.Key {
				case inspections.RoomTemperature:
					cells[2] = c
				case inspections.RoomHumidity:
					cells[3] = c
				}
			}
			cells[4] = NumCell(in.OutOfRange)
			if in.OutOfRange > 0 {
				cells[4].Class = "bad"
				r.Class = "flag"
			}
			cells[5] = Cell{Text: rq.Person(in.Inspector)}
			if in.Reviewer != "" {
				cells[6] = Cell{Text: rq.Person(in.Reviewer)}
			}
		}
		rows = append(rows, r)
	}
	g, handled, err := rq.Grid("inspection-days", cols, rows, GridOptions{DefaultSort: "day", DefaultDesc: true, Capped: next != "",
		Export: "inspections", Empty: "inspection.history_none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "inspection_history", "inspection.history_title", v)
}

type inspectionWeeksView struct {
	Grid     *Grid
	From, To string
}

// inspectionWeeksPage is the weekly summary as a grid.
func inspectionWeeksPage(rq *Request) error {
	q := rq.URL.Query()
	v := inspectionWeeksView{From: q.Get("from"), To: q.Get("to")}
	weeks, err := rq.Deps.Inspections.Weeks(rq.Context(), rq.Call, v.From, v.To)
	if err != nil {
		return err
	}
	cols := []Column{{Key: "week", Title: "inspection.col.week", Sort: true}, {Key: "days", Title: "inspection.col.days", Num: true},
		{Key: "inspected", Title: "inspection.col.inspected", Sort: true, Num: true}, {Key: "missed", Title: "inspection.col.missed", Sort: true, Num: true},
		{Key: "out", Title: "inspection.col.out_of_range", Sort: true, Num: true}, {Key: "unsigned", Title: "inspection.col.unsigned", Sort: true, Num: true}}
	rows := make([]Row, 0, len(weeks))
	for _, w := range weeks {
		r := Row{Cells: []Cell{{Text: rq.T("inspection.week", w.Week, w.From, w.To), Sort: w.Week,
			Href: "/inspections/history?" + "from=" + w.From + "&to=" + w.To}, NumCell(w.Days), NumCell(w.Inspected), NumCell(w.Missed),
			NumCell(w.OutOfRange), NumCell(w.Unsigned)}}
		for i, n := range []int{w.Missed, w.OutOfRange, w.Unsigned} {
			if n > 0 {
				r.Cells[3+i].Class = "bad"
			}
		}
		if w.Missed > 0 || w.OutOfRange > 0 {
			r.Class = "flag"
		}
		rows = append(rows, r)
	}
	g, handled, err := rq.Grid("inspection-weeks", cols, rows, GridOptions{DefaultSort: "week", DefaultDesc: true,
		Export: "inspection-weeks", Empty: "inspection.weeks_none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "inspection_weeks", "inspection.weeks_title", v)
}

type templateRow struct {
	N                          int
	Key, Label, Kind, Unit     string
	Min, Max                   string
	System, BuiltIn, Removable bool
}

type inspectionTemplatesView struct {
	Versions  []inspections.Template
	Current   inspections.Template
	Rows      []templateRow
	CanManage bool
	Kinds     []string
	Problem   string
}

func figureOf(v *float64) string {
	if v == nil {
		return ""
	}
	return inspections.Figure(*v)
}

func inspectionTemplatesPage(rq *Request) error { return renderInspectionTemplates(rq, nil) }

// itemField reads a field of the checklist's editor as the service names
// it: items[N].part.
var itemField = regexp.MustCompile(`^items\[(\d+)\]\.([a-z]+)$`)

func renderInspectionTemplates(rq *Request, refused error) error {
	status := http.StatusOK
	problem := ""
	if refused != nil {
		var me *medguard.Error
		msg, st, ok := rq.problemOf(refused, "inspection.error.template")
		if !ok {
			return refused
		}
		problem, status = msg, st
		if errors.As(refused, &me) {
			if m := itemField.FindStringSubmatch(me.Field); m != nil {
				n, _ := strconv.Atoi(m[1])
				problem = rq.T("inspection.error.template.item", n+1, rq.textOr("inspection.error.template.part."+m[2], m[2]))
			}
		}
	}
	ts, err := rq.Deps.Inspections.Templates(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v := inspectionTemplatesView{Versions: ts, Current: ts[0], CanManage: rq.Can(policy.InspectionManage), Kinds: inspections.Kinds,
		Problem: problem}
	builtIn := map[string]bool{}
	for _, it := range inspections.DefaultTemplate().Items {
		builtIn[it.Key] = true
	}
	for i, it := range ts[0].Items {
		v.Rows = append(v.Rows, templateRow{N: i, Key: it.Key, Label: it.Label, Kind: it.Kind, Unit: it.Unit, Min: figureOf(it.Min),
			Max: figureOf(it.Max), System: it.System, BuiltIn: builtIn[it.Key], Removable: !builtIn[it.Key]})
	}
	return rq.Render(status, "inspection_templates", "inspection.templates_title", v)
}

// saveInspectionTemplate reads the editor: key.N, label.N, kind.N,
// unit.N, min.N, max.N and remove.N for each row, and the same with
// ".new" for an item to add.
func saveInspectionTemplate(rq *Request) error {
	num := func(field, v string) (*float64, error) {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, medguard.InvalidField(field, "%s is not a number", field)
		}
		return &f, nil
	}
	var items []inspections.Item
	for i := 0; i <= inspections.MaxItems; i++ {
		n := strconv.Itoa(i)
		if i == inspections.MaxItems {
			n = "new"
		}
		key := rq.form("key." + n)
		if key == "" || rq.form("remove."+n) != "" {
			continue
		}
		it := inspections.Item{Key: key, Label: rq.PostFormValue("label." + n), Kind: rq.form("kind." + n), Unit: rq.form("unit." + n)}
		var err error
		if it.Min, err = num(fmt.Sprintf("items[%d].min", len(items)), rq.PostFormValue("min."+n)); err != nil {
			return renderInspectionTemplates(rq, err)
		}
		if it.Max, err = num(fmt.Sprintf("items[%d].max", len(items)), rq.PostFormValue("max."+n)); err != nil {
			return renderInspectionTemplates(rq, err)
		}
		items = append(items, it)
	}
	if _, err := rq.Deps.Inspections.SaveTemplate(rq.Context(), rq.Call, inspections.NewTemplate{Items: items}); err != nil {
		return renderInspectionTemplates(rq, err)
	}
	return rq.Redirect("/inspections/templates", "inspection_template_saved")
}

// InspectionTile is the dashboard's figure of today's inspection.
type InspectionTile struct {
	Status string
	// Missed counts the days of the last seven that ended without one.
	Missed     int
	OutOfRange int
	Href       string
}

// loadInspectionTile reads today's inspection for the dashboard (nil when
// the caller may not see it).
func loadInspectionTile(rq *Request) (*InspectionTile, error) {
	if rq.Deps.Inspections == nil || !rq.Can(policy.InspectionRead) {
		return nil, nil
	}
	t, err := rq.Deps.Inspections.Today(rq.Context(), rq.Call)
	if err != nil {
		if hidden(err) {
			return nil, nil
		}
		return nil, err
	}
	tile := &InspectionTile{Status: t.Status, Missed: t.Missed, Href: "/inspections"}
	if t.Inspection != nil {
		tile.OutOfRange, tile.Href = t.Inspection.OutOfRange, "/inspections/"+t.Inspection.ID
	}
	return tile, nil
}

// checkOptions are a check's choices on today's form.
func (rq *Request) checkOptions() []option {
	return []option{{Value: "", Text: rq.T("inspection.choose")}, {Value: "true", Text: rq.T("inspection.ok")},
		{Value: "false", Text: rq.T("inspection.not_ok")}}
}
