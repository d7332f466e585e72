package console

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/training"
)

// The training register (培训考核, SPEC §10, issue 13): the coverage grid
// with the overdue marked, the courses (and the one required for record
// access), a session with its enrolment and the attendance and scores
// entered, a person's record, the commitment letters, the retraining
// orders and the quarterly staff assessments; and, for every member of
// staff, their own training (/training/me: what they owe, the letter to
// sign, their appeal) with a banner on their home page. The service
// decides and logs; these pages only show and post.

func init() {
	read, manage := []policy.Permission{policy.TrainingRead}, []policy.Permission{policy.TrainingManage}
	register(
		Page{Method: "GET", Path: "/training", Any: read, Nav: &Nav{Key: "nav.training", Order: 38}, Handle: trainingPage},
		Page{Method: "POST", Path: "/training/settings", Any: manage, Handle: trainingSettings},
		Page{Method: "GET", Path: "/training/courses", Any: read, Handle: coursesPage},
		Page{Method: "POST", Path: "/training/courses", Any: manage, Handle: createCourse},
		Page{Method: "GET", Path: "/training/courses/{id}", Any: read, Handle: coursePage},
		Page{Method: "POST", Path: "/training/courses/{id}", Any: manage, Handle: updateCourse},
		Page{Method: "POST", Path: "/training/courses/{id}/required", Any: manage, Handle: requireCourse},
		Page{Method: "POST", Path: "/training/sessions", Any: manage, Handle: createTrainingSession},
		Page{Method: "GET", Path: "/training/sessions/{id}", Any: read, Handle: trainingSessionPage},
		Page{Method: "POST", Path: "/training/sessions/{id}/enrolments", Any: manage, Handle: enrolTraining},
		Page{Method: "POST", Path: "/training/sessions/{id}/results/{user_id}", Any: manage, Handle: recordTrainingResult},
		Page{Method: "GET", Path: "/training/people/{id}", Any: read, Handle: trainingPersonPage},
		Page{Method: "GET", Path: "/training/letters", Any: read, Handle: lettersPage},
		Page{Method: "POST", Path: "/training/letters", Any: manage, Handle: publishLetter},
		Page{Method: "GET", Path: "/training/retraining", Any: read, Handle: retrainingPage},
		Page{Method: "POST", Path: "/training/retraining", Any: manage, Handle: orderRetraining},
		Page{Method: "POST", Path: "/training/retraining/{id}/cancel", Any: manage, Handle: cancelRetraining},
		Page{Method: "GET", Path: "/training/assessments", Any: read, Handle: assessmentsPage},
		Page{Method: "POST", Path: "/training/assessments", Any: manage, Handle: computeAssessments},
		Page{Method: "POST", Path: "/training/assessments/{id}/decision", Any: manage, Handle: decideAssessmentAppeal},
		// Every member of staff's own training.
		Page{Method: "GET", Path: "/training/me", Nav: &Nav{Key: "nav.my_training", Order: 95}, Handle: myTrainingPage},
		Page{Method: "POST", Path: "/training/me/letter", Handle: signLetter},
		Page{Method: "POST", Path: "/training/me/assessments/{id}/appeal", Handle: appealAssessment},
	)
}

// TrainingBanner is the banner of a member of staff's home page: record
// access closed for training, or something owed that will close it.
type TrainingBanner struct {
	Gated   bool
	GatesAt *time.Time
	Items   []string
}

// trainingBanner is the caller's banner, from the register's snapshot in
// memory (no gate passage: it tells the caller only about themselves),
// or nil when they owe nothing due within 30 days.
func (rq *Request) trainingBanner() *TrainingBanner {
	if rq.Deps.Training == nil || rq.Call == nil {
		return nil
	}
	st, ok := rq.Deps.Training.StandingOf(&rq.Call.Actor)
	if !ok {
		return nil
	}
	now := rq.Deps.Clock.Now()
	b := &TrainingBanner{Gated: st.Gated, GatesAt: st.GatesAt()}
	for _, o := range st.Obligations {
		if o.DueAt.After(now.Add(30*24*time.Hour)) && (o.GatesAt == nil || o.GatesAt.After(now.Add(30*24*time.Hour))) {
			continue
		}
		b.Items = append(b.Items, rq.obligationWords(o, nil))
	}
	if len(b.Items) == 0 {
		return nil
	}
	return b
}

// obligationWords says an obligation in words; codes names the courses
// (nil: by the code the standing carries).
func (rq *Request) obligationWords(o training.Obligation, codes map[string]string) string {
	course := o.CourseCode
	if c, ok := codes[o.CourseID]; ok {
		course = c
	}
	when := rq.localText(o.DueAt)
	switch o.Kind {
	case training.ObligationRequiredCourse, training.ObligationFailedExam, training.ObligationRetraining:
		return rq.T("training.owes."+o.Kind, course, when)
	case training.ObligationLetter:
		return rq.T("training.owes."+o.Kind, o.LetterVersion, when)
	}
	return rq.T("training.owes."+o.Kind, when)
}

// standingCell is a standing's state as a tag.
func (rq *Request) standingCell(st training.Standing) Cell {
	switch {
	case st.Gated:
		return tagCell(rq.T("training.status.gated"), "bad")
	case st.Warned:
		return tagCell(rq.T("training.status.warned"), "warn")
	}
	return tagCell(rq.T("training.status.current"), "ok")
}

func (rq *Request) owesCell(st training.Standing) Cell {
	var parts []string
	for _, o := range st.Obligations {
		parts = append(parts, rq.obligationWords(o, nil))
	}
	return Cell{Text: strings.Join(parts, "；")}
}

func gridDone(g *Grid, handled bool, err error) (*Grid, error) {
	if err == nil && handled {
		err = errHandled
	}
	return g, err
}

type trainingView struct {
	Summary     *training.Summary
	Grid        *Grid
	Department  string
	Status      string
	Statuses    []option
	Departments []option
	CanManage   bool
}

func trainingPage(rq *Request) error {
	q := rq.URL.Query()
	v := trainingView{Department: strings.TrimSpace(q.Get("department")), CanManage: rq.Can(policy.TrainingManage)}
	v.Status = statusFilter(q.Get("status"), append([]string{""}, training.Statuses...)...)
	if len(v.Department) > 32 {
		v.Department = ""
	}
	sum, err := rq.Deps.Training.Summarise(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v.Summary = sum
	rows, err := rq.Deps.Training.Coverage(rq.Context(), rq.Call, training.CoverageQuery{Department: v.Department, Status: v.Status})
	if err != nil {
		return err
	}
	v.Statuses = []option{{Value: "", Text: rq.T("training.status.all")}}
	for _, s := range training.Statuses {
		v.Statuses = append(v.Statuses, option{Value: s, Text: rq.T("training.status." + s)})
	}
	if _, deps, err := rq.Deps.Identity.Directory(rq.Context()); err == nil {
		for _, d := range deps {
			v.Departments = append(v.Departments, option{Value: d.Code, Text: d.Name})
		}
	}
	cols := []Column{{Key: "name", Title: "training.col.person", Sort: true}, {Key: "department", Title: "training.col.department", Sort: true},
		{Key: "roles", Title: "training.col.roles"}, {Key: "status", Title: "training.col.status", Sort: true},
		{Key: "last", Title: "training.col.last_trained", Sort: true}, {Key: "next", Title: "training.col.next_due", Sort: true},
		{Key: "owes", Title: "training.col.owes"}, {Key: "gates", Title: "training.col.gates_at", Sort: true}}
	now := rq.Deps.Clock.Now()
	out := make([]Row, 0, len(rows))
	for _, r := range rows {
		st := r.Standing
		status := rq.standingCell(st)
		status.Sort = map[string]string{training.StatusGated: "0", training.StatusWarned: "1", training.StatusCurrent: "2"}[r.Status]
		row := Row{Cells: []Cell{{Text: rq.Person(r.Username), Href: "/training/people/" + r.UserID}, {Text: rq.Dept(r.Department)},
			{Text: rq.roleWords(r.Roles)}, status, {}, {}, rq.owesCell(st), {}}}
		if st.LastTrainedAt != nil {
			row.Cells[4] = rq.TimeCell(*st.LastTrainedAt)
		} else {
			row.Cells[4] = Cell{Text: rq.T("training.never"), Class: "muted", Sort: "0"}
		}
		if st.NextDueAt != nil {
			row.Cells[5] = rq.TimeCell(*st.NextDueAt)
			if st.Overdue {
				row.Cells[5] = Cell{Text: row.Cells[5].Text + " · " + rq.T("training.overdue"), Sort: row.Cells[5].Sort, Class: "bad overdue nowrap"}
			}
		}
		if g := st.GatesAt(); g != nil {
			row.Cells[7] = rq.TimeCell(*g)
			if !g.After(now) {
				row.Cells[7].Class = "bad nowrap"
			}
		}
		switch r.Status {
		case training.StatusGated:
			row.Class = "bad"
		case training.StatusWarned:
			row.Class = "flag"
		}
		out = append(out, row)
	}
	g, err := gridDone(rq.Grid("coverage", cols, out, GridOptions{DefaultSort: "status", Export: "training-coverage", Empty: "training.none"}))
	if err != nil {
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "training", "training.title", v)
}

func formInt(rq *Request, field string) (int, error) {
	n, err := strconv.Atoi(rq.form(field))
	if err != nil {
		return 0, medguard.InvalidField(field, "%s must be a whole number", field)
	}
	return n, nil
}

func trainingSettings(rq *Request) error {
	var in training.Settings
	var err error
	if in.PeriodDays, err = formInt(rq, "period_days"); err != nil {
		return err
	}
	if in.GraceDays, err = formInt(rq, "grace_days"); err != nil {
		return err
	}
	if in.AssessmentPassMark, err = formInt(rq, "assessment_pass_mark"); err != nil {
		return err
	}
	if _, err := rq.Deps.Training.SetSettings(rq.Context(), rq.Call, in); err != nil {
		return err
	}
	return rq.Redirect("/training", "training_settings_saved")
}

type coursesView struct {
	Grid      *Grid
	CanManage bool
	Kinds     []string
	Roles     []option
}

func (rq *Request) roleOptions() []option {
	var out []option
	for _, r := range policy.DefaultRoles {
		out = append(out, option{Value: r.Name, Text: rq.T("role." + r.Name)})
	}
	return out
}

func coursesPage(rq *Request) error {
	cs, err := rq.Deps.Training.ListCourses(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	cols := []Column{{Key: "code", Title: "training.course.code", Sort: true}, {Key: "title", Title: "training.course.title", Sort: true},
		{Key: "kind", Title: "training.course.kind", Sort: true}, {Key: "audience", Title: "training.course.audience"},
		{Key: "pass", Title: "training.course.pass_mark", Num: true}, {Key: "required", Title: "training.course.required", Sort: true}}
	rows := make([]Row, 0, len(cs))
	for _, c := range cs {
		aud := rq.T("training.course.all_staff")
		if len(c.Audience) > 0 {
			aud = rq.roleWords(c.Audience)
		}
		req := Cell{Text: rq.T("training.course.not_required"), Class: "muted"}
		if c.RequiredFrom != nil {
			req = tagCell(rq.T("training.course.required_from", rq.localText(*c.RequiredFrom)), "bad")
		}
		rows = append(rows, Row{Cells: []Cell{{Text: c.Code, Href: "/training/courses/" + c.ID, Class: "mono"}, {Text: c.Title},
			{Text: rq.T("training.kind." + c.Kind)}, {Text: aud}, NumCell(c.PassMark), req}})
	}
	g, err := gridDone(rq.Grid("courses", cols, rows, GridOptions{DefaultSort: "code", Export: "training-courses", Empty: "training.courses.none"}))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "training_courses", "training.courses.title", coursesView{Grid: g, CanManage: rq.Can(policy.TrainingManage),
		Kinds: training.CourseKinds, Roles: rq.roleOptions()})
}

func createCourse(rq *Request) error {
	pass, err := formInt(rq, "pass_mark")
	if err != nil {
		return err
	}
	c, err := rq.Deps.Training.CreateCourse(rq.Context(), rq.Call, training.NewCourse{Code: rq.form("code"), Title: rq.form("title"),
		Kind: rq.form("kind"), Audience: rq.PostForm["audience"], PassMark: pass, Description: rq.PostFormValue("description")})
	if err != nil {
		return err
	}
	return rq.Redirect("/training/courses/"+c.ID, "course_created")
}

type courseView struct {
	C         *training.Course
	Grid      *Grid
	CanManage bool
	Roles     []option
	Today     string
}

func coursePage(rq *Request) error {
	c, err := rq.Deps.Training.GetCourse(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	cols := []Column{{Key: "held", Title: "training.session.held_at", Sort: true}, {Key: "location", Title: "training.session.location"},
		{Key: "trainer", Title: "training.session.trainer"}, {Key: "enrolled", Title: "training.session.enrolled", Num: true, Sort: true},
		{Key: "attended", Title: "training.session.attended", Num: true}, {Key: "passed", Title: "training.session.passed", Num: true},
		{Key: "failed", Title: "training.session.failed", Num: true}}
	rows := make([]Row, 0, len(c.Sessions))
	for _, s := range c.Sessions {
		held := rq.TimeCell(s.HeldAt)
		held.Href = "/training/sessions/" + s.ID
		failed := NumCell(s.Failed)
		if s.Failed > 0 {
			failed.Class = "bad"
		}
		rows = append(rows, Row{Cells: []Cell{held, {Text: s.Location}, {Text: s.Trainer}, NumCell(s.Enrolled), NumCell(s.Attended),
			NumCell(s.Passed), failed}})
	}
	g, err := gridDone(rq.Grid("sessions", cols, rows, GridOptions{DefaultSort: "held", DefaultDesc: true, Export: "training-sessions",
		Empty: "training.sessions.none"}))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "training_course", "training.course.title_page", courseView{C: c, Grid: g,
		CanManage: rq.Can(policy.TrainingManage), Roles: rq.roleOptions(), Today: rq.Deps.Clock.Now().In(rq.c.zone).Format("2006-01-02")})
}

func updateCourse(rq *Request) error {
	id := rq.PathValue("id")
	title, desc := rq.form("title"), rq.PostFormValue("description")
	in := training.CourseChanges{Title: &title, Description: &desc}
	aud := rq.PostForm["audience"]
	in.Audience = &aud
	pass, err := formInt(rq, "pass_mark")
	if err != nil {
		return err
	}
	in.PassMark = &pass
	if _, err := rq.Deps.Training.UpdateCourse(rq.Context(), rq.Call, id, in); err != nil {
		return err
	}
	return rq.Redirect("/training/courses/"+id, "course_updated")
}

func requireCourse(rq *Request) error {
	id := rq.PathValue("id")
	in := training.Requirement{Required: rq.form("required") == "1"}
	if in.Required {
		if v := rq.form("from"); v != "" {
			from, err := time.ParseInLocation("2006-01-02", v, rq.c.zone)
			if err != nil {
				return medguard.InvalidField("from", "from must be a date (YYYY-MM-DD)")
			}
			if now := rq.Deps.Clock.Now(); from.Before(now) {
				from = now // today: from now on
			}
			in.From = from
		}
	}
	if _, err := rq.Deps.Training.SetRequired(rq.Context(), rq.Call, id, in); err != nil {
		return err
	}
	return rq.Redirect("/training/courses/"+id, "course_required")
}

func createTrainingSession(rq *Request) error {
	held, err := rq.localTime("held_at", rq.form("held_at"), false)
	if err != nil {
		return err
	}
	s, err := rq.Deps.Training.CreateSession(rq.Context(), rq.Call, training.NewSession{CourseID: rq.form("course_id"), HeldAt: held,
		Location: rq.form("location"), Trainer: rq.form("trainer")})
	if err != nil {
		return err
	}
	return rq.Redirect("/training/sessions/"+s.ID, "session_created")
}

type trainingSessionView struct {
	S           *training.Session
	Grid        *Grid
	CanManage   bool
	Held        bool
	Departments []option
	Staff       []option
}

func trainingSessionPage(rq *Request) error {
	s, err := rq.Deps.Training.GetSession(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := trainingSessionView{S: s, CanManage: rq.Can(policy.TrainingManage), Held: !rq.Deps.Clock.Now().Before(s.HeldAt)}
	if v.CanManage {
		staff, deps, err := rq.Deps.Identity.Directory(rq.Context())
		if err == nil {
			for _, d := range deps {
				v.Departments = append(v.Departments, option{Value: d.Code, Text: d.Name})
			}
			for _, m := range staff {
				v.Staff = append(v.Staff, option{Value: m.ID, Text: rq.Person(m.Username)})
			}
			slices.SortStableFunc(v.Staff, func(a, b option) int { return strings.Compare(a.Text, b.Text) })
		}
	}
	cols := []Column{{Key: "person", Title: "training.col.person", Sort: true}, {Key: "attended", Title: "training.session.attendance", Sort: true},
		{Key: "score", Title: "training.session.score", Num: true, Sort: true}, {Key: "result", Title: "training.session.result", Sort: true},
		{Key: "recorded", Title: "training.session.recorded_by"}, {Key: "note", Title: "training.session.note"}}
	rows := make([]Row, 0, len(s.Attendance))
	for _, a := range s.Attendance {
		r := Row{Cells: []Cell{{Text: rq.Person(a.Username), Href: "/training/people/" + a.UserID}, {}, {}, {}, {}, {Text: a.Note}}}
		switch {
		case a.RecordedAt == nil && v.CanManage && v.Held && a.UserID != rq.Call.Actor.ID:
			r.Cells[1] = Cell{Text: rq.T("training.session.pending"), HTML: rq.resultForm(s.ID, a.UserID)}
			r.Cells[3] = Cell{Text: rq.T("training.session.pending"), Class: "muted"}
		case a.RecordedAt == nil:
			r.Cells[1] = Cell{Text: rq.T("training.session.pending"), Class: "muted"}
		default:
			if *a.Attended {
				r.Cells[1] = Cell{Text: rq.T("training.session.present")}
			} else {
				r.Cells[1] = tagCell(rq.T("training.session.absent"), "warn")
			}
			if a.Score != nil {
				r.Cells[2] = NumCell(*a.Score)
			}
			switch {
			case a.Passed != nil && *a.Passed:
				r.Cells[3] = tagCell(rq.T("training.session.pass"), "ok")
			case a.Passed != nil:
				r.Cells[3] = tagCell(rq.T("training.session.fail"), "bad")
				r.Class = "bad"
			}
			r.Cells[4] = Cell{Text: rq.Person(a.RecordedBy) + " · " + rq.localText(*a.RecordedAt)}
		}
		rows = append(rows, r)
	}
	g, err := gridDone(rq.Grid("attendance", cols, rows, GridOptions{DefaultSort: "person", Export: "training-attendance",
		Empty: "training.session.nobody"}))
	if err != nil {
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "training_session", "training.session.title", v)
}

// resultForm is a row's form to record attendance and score: the trainer's
// marks, entered by someone other than the person.
func (rq *Request) resultForm(sessionID, userID string) template.HTML {
	e := template.HTMLEscapeString
	return template.HTML(`<form method="post" action="/training/sessions/` + e(sessionID) + `/results/` + e(userID) +
		`" class="inline result-form" id="result-` + e(userID) + `"><input type="hidden" name="csrf_token" value="` + e(rq.CSRFToken()) + `">` +
		`<label><input type="checkbox" name="attended" value="1" checked> ` + e(rq.T("training.session.present")) + `</label> ` +
		`<label class="visually-hidden" for="score-` + e(userID) + `">` + e(rq.T("training.session.score")) + `</label>` +
		`<input type="number" min="0" max="100" name="score" id="score-` + e(userID) + `" class="score" placeholder="` + e(rq.T("training.session.score")) + `"> ` +
		`<input type="text" name="note" maxlength="500" placeholder="` + e(rq.T("training.session.note")) + `"> ` +
		`<button type="submit" class="small">` + e(rq.T("training.session.record")) + `</button></form>`)
}

func enrolTraining(rq *Request) error {
	id := rq.PathValue("id")
	in := training.Enrolment{UserIDs: splitIDs(rq.PostFormValue("user_ids")), Department: rq.form("department")}
	in.UserIDs = append(in.UserIDs, rq.PostForm["user_id"]...)
	in.UserIDs = slices.DeleteFunc(in.UserIDs, func(s string) bool { return strings.TrimSpace(s) == "" })
	if _, err := rq.Deps.Training.Enrol(rq.Context(), rq.Call, id, in); err != nil {
		return err
	}
	return rq.Redirect("/training/sessions/"+id, "training_enrolled")
}

func recordTrainingResult(rq *Request) error {
	id := rq.PathValue("id")
	in := training.NewResult{Attended: rq.form("attended") == "1", Note: rq.PostFormValue("note")}
	if v := rq.form("score"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return medguard.InvalidField("score", "score must be a whole number")
		}
		in.Score = &n
	}
	if _, err := rq.Deps.Training.RecordResult(rq.Context(), rq.Call, id, rq.PathValue("user_id"), in); err != nil {
		return err
	}
	return rq.Redirect("/training/sessions/"+id, "result_recorded")
}

type trainingPersonView struct {
	R         *training.Record
	Owes      []string
	Grid      *Grid
	CanManage bool
	Courses   []training.Course
	Self      bool
}

func (rq *Request) attendanceGrid(id string, as []training.Attendance) (*Grid, error) {
	cols := []Column{{Key: "held", Title: "training.session.held_at", Sort: true}, {Key: "course", Title: "training.course.code", Sort: true},
		{Key: "title", Title: "training.course.title"}, {Key: "attended", Title: "training.session.attendance"},
		{Key: "score", Title: "training.session.score", Num: true}, {Key: "result", Title: "training.session.result", Sort: true}}
	rows := make([]Row, 0, len(as))
	link := rq.Can(policy.TrainingRead)
	for _, a := range as {
		held := rq.TimeCell(a.HeldAt)
		if link {
			held.Href = "/training/sessions/" + a.SessionID
		}
		r := Row{Cells: []Cell{held, {Text: a.CourseCode, Class: "mono"}, {Text: a.CourseTitle}, {}, {}, {}}}
		switch {
		case a.RecordedAt == nil:
			r.Cells[3] = Cell{Text: rq.T("training.session.pending"), Class: "muted"}
		case *a.Attended:
			r.Cells[3] = Cell{Text: rq.T("training.session.present")}
		default:
			r.Cells[3] = tagCell(rq.T("training.session.absent"), "warn")
		}
		if a.Score != nil {
			r.Cells[4] = NumCell(*a.Score)
		}
		if a.Passed != nil {
			if *a.Passed {
				r.Cells[5] = tagCell(rq.T("training.session.pass"), "ok")
			} else {
				r.Cells[5] = tagCell(rq.T("training.session.fail"), "bad")
			}
		}
		rows = append(rows, r)
	}
	return gridDone(rq.Grid(id, cols, rows, GridOptions{DefaultSort: "held", DefaultDesc: true, Export: "training-record",
		Empty: "training.record.no_sessions"}))
}

func (rq *Request) owesList(st training.Standing) []string {
	var out []string
	for _, o := range st.Obligations {
		w := rq.obligationWords(o, nil)
		switch {
		case o.Gating:
			w += " — " + rq.T("training.closes_now")
		case o.GatesAt != nil:
			w += " — " + rq.T("training.closes_at", rq.localText(*o.GatesAt))
		}
		out = append(out, w)
	}
	return out
}

func trainingPersonPage(rq *Request) error {
	r, err := rq.Deps.Training.PersonRecord(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	v := trainingPersonView{R: r, Owes: rq.owesList(r.Standing), CanManage: rq.Can(policy.TrainingManage), Self: r.UserID == rq.Call.Actor.ID}
	if v.Grid, err = rq.attendanceGrid("record", r.Attendance); err != nil {
		return err
	}
	if v.CanManage {
		if v.Courses, err = rq.Deps.Training.ListCourses(rq.Context(), rq.Call); err != nil {
			return err
		}
	}
	return rq.Render(http.StatusOK, "training_person", "training.person.title", v)
}

type lettersView struct {
	Items     []training.Letter
	CanManage bool
}

func lettersPage(rq *Request) error {
	ls, err := rq.Deps.Training.ListLetters(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "training_letters", "training.letters.title", lettersView{Items: ls, CanManage: rq.Can(policy.TrainingManage)})
}

func publishLetter(rq *Request) error {
	in := training.NewLetter{Title: rq.form("title"), Body: rq.PostFormValue("body"), Resign: rq.form("resign") == "1"}
	if v := rq.form("effective_from"); v != "" {
		from, err := time.ParseInLocation("2006-01-02", v, rq.c.zone)
		if err != nil {
			return medguard.InvalidField("effective_from", "effective_from must be a date (YYYY-MM-DD)")
		}
		if now := rq.Deps.Clock.Now(); from.After(now) {
			in.EffectiveFrom = from
		}
	}
	if _, err := rq.Deps.Training.PublishLetter(rq.Context(), rq.Call, in); err != nil {
		return err
	}
	return rq.Redirect("/training/letters", "letter_published")
}

type retrainingView struct {
	Grid *Grid
	Open bool
}

func retrainingPage(rq *Request) error {
	open := rq.URL.Query().Get("open") != "0"
	os, err := rq.Deps.Training.ListOrders(rq.Context(), rq.Call, open)
	if err != nil {
		return err
	}
	manage := rq.Can(policy.TrainingManage)
	cols := []Column{{Key: "person", Title: "training.col.person", Sort: true}, {Key: "course", Title: "training.course.code", Sort: true},
		{Key: "source", Title: "training.order.source", Sort: true}, {Key: "reason", Title: "training.order.reason"},
		{Key: "ordered", Title: "training.order.ordered_at", Sort: true}, {Key: "gates", Title: "training.col.gates_at", Sort: true},
		{Key: "state", Title: "training.col.status", Sort: true}, {Key: "action", Title: "training.order.action"}}
	now := rq.Deps.Clock.Now()
	rows := make([]Row, 0, len(os))
	for _, o := range os {
		state := tagCell(rq.T("training.order.open"), "bad")
		switch {
		case o.SatisfiedAt != nil:
			state = tagCell(rq.T("training.order.satisfied", rq.localText(*o.SatisfiedAt)), "ok")
		case o.CancelledAt != nil:
			state = tagCell(rq.T("training.order.cancelled", rq.Person(o.CancelledBy)), "muted")
		case o.GatesFrom.After(now):
			state = tagCell(rq.T("training.order.warned"), "warn")
		}
		action := Cell{}
		if manage && o.Open && o.UserID != rq.Call.Actor.ID {
			e := template.HTMLEscapeString
			action.HTML = template.HTML(`<form method="post" action="/training/retraining/` + e(o.ID) + `/cancel" class="inline" id="cancel-` + e(o.ID) +
				`"><input type="hidden" name="csrf_token" value="` + e(rq.CSRFToken()) + `"><button type="submit" class="small secondary">` +
				e(rq.T("training.order.cancel")) + `</button></form>`)
		}
		ref := rq.T("training.source." + o.Source)
		if o.Source == training.SourceAccountability && o.Reference != "" {
			ref += " · " + o.Reference
		}
		rows = append(rows, Row{Cells: []Cell{{Text: rq.Person(o.Username), Href: "/training/people/" + o.UserID},
			{Text: o.CourseCode, Class: "mono"}, {Text: ref}, {Text: o.Reason}, rq.TimeCell(o.OrderedAt), rq.TimeCell(o.GatesFrom), state, action}})
	}
	g, err := gridDone(rq.Grid("orders", cols, rows, GridOptions{DefaultSort: "ordered", DefaultDesc: true, Export: "retraining",
		Empty: "training.orders.none"}))
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "training_retraining", "training.orders.title", retrainingView{Grid: g, Open: open})
}

func orderRetraining(rq *Request) error {
	in := training.NewOrder{UserID: rq.form("user_id"), CourseID: rq.form("course_id"), Reason: rq.PostFormValue("reason")}
	if v := rq.form("gates_from"); v != "" {
		from, err := time.ParseInLocation("2006-01-02", v, rq.c.zone)
		if err != nil {
			return medguard.InvalidField("gates_from", "gates_from must be a date (YYYY-MM-DD)")
		}
		if from.After(rq.Deps.Clock.Now()) {
			in.GatesFrom = from
		}
	}
	if _, err := rq.Deps.Training.Retrain(rq.Context(), rq.Call, in); err != nil {
		return err
	}
	return rq.Redirect("/training/people/"+url.PathEscape(in.UserID), "retraining_ordered")
}

func cancelRetraining(rq *Request) error {
	o, err := rq.Deps.Training.CancelOrder(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	return rq.Redirect("/training/people/"+o.UserID, "retraining_cancelled")
}

type assessmentsView struct {
	Quarter   string
	Quarters  []string
	Grid      *Grid
	CanManage bool
	Ended     string // the last ended quarter, to compute
}

func assessmentsPage(rq *Request) error {
	zone := rq.Deps.Training.Location()
	now := rq.Deps.Clock.Now()
	last := training.QuarterOf(now.In(zone).AddDate(0, -3, 0), zone)
	v := assessmentsView{CanManage: rq.Can(policy.TrainingManage), Ended: last}
	for i := 1; i <= 8; i++ {
		v.Quarters = append(v.Quarters, training.QuarterOf(now.In(zone).AddDate(0, -3*i, 0), zone))
	}
	v.Quarter = statusFilter(rq.URL.Query().Get("quarter"), append([]string{last}, v.Quarters...)...)
	as, err := rq.Deps.Training.ListAssessments(rq.Context(), rq.Call, v.Quarter)
	if err != nil {
		return err
	}
	cols := []Column{{Key: "person", Title: "training.col.person", Sort: true}, {Key: "department", Title: "training.col.department", Sort: true},
		{Key: "compliance", Title: "training.assessment.compliance", Num: true, Sort: true},
		{Key: "incidents", Title: "training.assessment.incidents", Num: true, Sort: true},
		{Key: "attendance", Title: "training.assessment.attendance", Num: true, Sort: true},
		{Key: "score", Title: "training.assessment.score", Num: true, Sort: true}, {Key: "status", Title: "training.col.status", Sort: true},
		{Key: "appeal", Title: "training.assessment.appeal"}}
	rows := make([]Row, 0, len(as))
	for _, a := range as {
		status := tagCell(rq.T("training.assessment.status."+a.Status), map[bool]string{true: "ok", false: "bad"}[a.Passed || a.Status == training.AppealOverturned])
		status.Sort = a.Status
		appeal := Cell{Text: a.Appeal}
		if v.CanManage && a.AppealedAt != nil && a.AppealOutcome == "" && a.UserID != rq.Call.Actor.ID {
			appeal.HTML = rq.appealDecisionForm(a)
		} else if a.Decision != "" {
			appeal.Text = a.Appeal + " → " + rq.T("training.assessment.status."+a.AppealOutcome) + "：" + a.Decision
		}
		r := Row{Cells: []Cell{{Text: rq.Person(a.Username), Href: "/training/people/" + a.UserID}, {Text: rq.Dept(a.Department)},
			NumCell(a.Compliance), NumCell(a.Incidents), NumCell(a.Attendance), NumCell(a.Score), status, appeal}}
		if a.Flagged && a.Status != training.AppealOverturned {
			r.Class = "bad"
		}
		rows = append(rows, r)
	}
	g, err := gridDone(rq.Grid("assessments", cols, rows, GridOptions{DefaultSort: "score", Export: "staff-assessments",
		Empty: "training.assessments.none"}))
	if err != nil {
		return err
	}
	v.Grid = g
	return rq.Render(http.StatusOK, "training_assessments", "training.assessments.title", v)
}

func (rq *Request) appealDecisionForm(a training.Assessment) template.HTML {
	e := template.HTMLEscapeString
	return template.HTML(`<p class="record-text">` + e(a.Appeal) + `</p><form method="post" action="/training/assessments/` + e(a.ID) +
		`/decision" class="stack" id="decide-` + e(a.ID) + `"><input type="hidden" name="csrf_token" value="` + e(rq.CSRFToken()) + `">` +
		`<label><input type="radio" name="outcome" value="upheld" required> ` + e(rq.T("training.assessment.status.upheld")) + `</label> ` +
		`<label><input type="radio" name="outcome" value="overturned"> ` + e(rq.T("training.assessment.status.overturned")) + `</label>` +
		`<textarea name="text" rows="2" maxlength="2000" required aria-label="` + e(rq.T("training.assessment.decision")) + `"></textarea>` +
		`<button type="submit" class="small">` + e(rq.T("training.assessment.decide")) + `</button></form>`)
}

func computeAssessments(rq *Request) error {
	q := rq.form("quarter")
	if _, err := rq.Deps.Training.ComputeAssessments(rq.Context(), rq.Call, training.NewAssessments{Quarter: q}); err != nil {
		return err
	}
	return rq.Redirect("/training/assessments?quarter="+url.QueryEscape(q), "assessments_computed")
}

func decideAssessmentAppeal(rq *Request) error {
	a, err := rq.Deps.Training.DecideAppeal(rq.Context(), rq.Call, rq.PathValue("id"), training.AppealDecision{Outcome: rq.form("outcome"),
		Text: rq.PostFormValue("text")})
	if err != nil {
		return err
	}
	return rq.Redirect("/training/assessments?quarter="+url.QueryEscape(a.Quarter), "appeal_decided")
}

type myTrainingView struct {
	R      *training.Record
	Owes   []string
	Letter *training.MyLetter
	Signed bool
	Grid   *Grid
	Now    time.Time
}

func myTrainingPage(rq *Request) error {
	r, err := rq.Deps.Training.MyRecord(rq.Context(), rq.Call)
	if err != nil {
		return err
	}
	v := myTrainingView{R: r, Owes: rq.owesList(r.Standing), Now: rq.Deps.Clock.Now()}
	if v.Letter, err = rq.Deps.Training.MyLetter(rq.Context(), rq.Call); err != nil && !medguard.IsKind(err, medguard.NotFound) {
		return err
	}
	if v.Letter != nil {
		v.Signed = slices.ContainsFunc(v.Letter.Signatures, func(s training.Signature) bool { return s.Version == v.Letter.Letter.Version })
	}
	if v.Grid, err = rq.attendanceGrid("my-sessions", r.Attendance); err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "training_me", "training.me.title", v)
}

func signLetter(rq *Request) error {
	version, err := strconv.Atoi(rq.form("version"))
	if err != nil {
		return medguard.InvalidField("version", "version must be a number")
	}
	if rq.form("agree") != "1" {
		return medguard.InvalidField("agree", "read the letter and tick that you agree to it")
	}
	if _, err := rq.Deps.Training.Sign(rq.Context(), rq.Call, version, training.SignLetter{SHA256: rq.form("sha256")}); err != nil {
		return err
	}
	return rq.Redirect("/training/me", "letter_signed")
}

func appealAssessment(rq *Request) error {
	if _, err := rq.Deps.Training.AppealAssessment(rq.Context(), rq.Call, rq.PathValue("id"),
		training.AssessmentAppeal{Text: rq.PostFormValue("text")}); err != nil {
		return err
	}
	return rq.Redirect("/training/me", "appeal_filed_training")
}

// TrainingTile is the dashboard's training figure: coverage and overdue.
type TrainingTile struct {
	Shown                    bool
	Coverage, Staff, Overdue int
	Gated, Warned            int
	Enforced                 bool
}

// loadTrainingTile reads the training figures for the dashboard.
func loadTrainingTile(rq *Request) (TrainingTile, error) {
	if rq.Deps.Training == nil {
		return TrainingTile{}, nil
	}
	s, err := rq.Deps.Training.Summarise(rq.Context(), rq.Call)
	if err != nil {
		if hidden(err) {
			return TrainingTile{}, nil
		}
		return TrainingTile{}, err
	}
	return TrainingTile{Shown: true, Coverage: s.Coverage, Staff: s.Staff, Overdue: s.Overdue, Gated: s.Gated, Warned: s.Warned,
		Enforced: s.Enforced}, nil
}
