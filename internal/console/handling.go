package console

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"

	"medguard"
	"medguard/internal/detect"
	"medguard/internal/incidents"
	"medguard/internal/policy"
)

// Incidents and accountability, completed (issue 13): an incident's type
// and commander (assigned with the grade, handed over with a reason), the
// confirmation of each handling step by a second person, external evidence
// files (uploaded here, sealed, downloaded with their SHA-256 checked), and
// an accountability case's handling opinion with its sanction, the
// proposal medguard makes (repeat offences escalate) and its deadline in
// working days.

func init() {
	read := []policy.Permission{policy.IncidentRead}
	manage := []policy.Permission{policy.IncidentManage}
	register(
		Page{Method: "POST", Path: "/incidents/{id}/commander", Any: manage, Handle: changeCommander},
		Page{Method: "POST", Path: "/incidents/{id}/steps/{index}/confirm", Any: manage, Handle: confirmStep},
		Page{Method: "POST", Path: "/incidents/{id}/files", Any: manage, MaxForm: incidents.MaxEvidenceFile + 64<<10, Handle: attachFile},
		// The commander reads the file without incident.read: the service decides.
		Page{Method: "GET", Path: "/incidents/{id}/files/{file}", Handle: downloadFile},
		// The incidents one commands, for those whose roles may command one:
		// the security office and the leadership (incident.read), IT
		// (backup.run) and department heads (approval.decide_department).
		Page{Method: "GET", Path: "/incidents/commanded", Any: append(read, policy.BackupRun, policy.ApprovalDecideDepartment),
			Nav: &Nav{Key: "nav.commanded", Order: 46}, Handle: commandedPage},
		Page{Method: "POST", Path: "/accountability/{id}/opinion", Any: []policy.Permission{policy.AccountabilityManage},
			Handle: caseStep("opinion_given", caseOpinion)},
	)
}

// typeName names an incident's type in the page's language.
func (rq *Request) typeName(code string) string {
	for _, t := range incidents.Types {
		if t.Code == code {
			if rq.Lang == "en" {
				return t.NameEN
			}
			return t.NameZH
		}
	}
	return code
}

// typeOptions are the types of incident for a select.
func (rq *Request) typeOptions() []option {
	out := make([]option, len(incidents.Types))
	for i, t := range incidents.Types {
		out[i] = option{Value: t.Code, Text: rq.typeName(t.Code)}
	}
	return out
}

// fileRow is an evidence file as the incident's page lists it.
type fileRow struct {
	incidents.EvidenceFile
	Kind, By, Size string
}

// handlingView fills in the incident page's type, commander and files.
func (rq *Request) handlingView(in *incidents.Incident, v *incidentView) {
	v.TypeName, v.Types = rq.typeName(in.Type), rq.typeOptions()
	if in.Commander != "" {
		v.Commander = rq.Person(in.Commander)
	}
	if v.CanManage && v.Open {
		v.Staff = rq.staffOptions()
	}
	for _, f := range in.Files {
		v.Files = append(v.Files, fileRow{EvidenceFile: f, Kind: rq.T("file.kind." + f.Kind), By: rq.Person(f.AttachedBy),
			Size: byteSize(f.Size)})
	}
	for _, k := range incidents.FileKinds {
		v.FileKinds = append(v.FileKinds, option{Value: k, Text: rq.T("file.kind." + k)})
	}
	v.MaxFileMB = incidents.MaxEvidenceFile >> 20
}

// byteSize says a size in KiB or MiB.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func changeCommander(rq *Request) error {
	return incidentStep(rq, "incidents.error.commander", "commander_changed", func(id string) error {
		_, err := rq.Deps.Incidents.ChangeCommander(rq.Context(), rq.Call, id, incidents.CommanderChange{
			Commander: rq.form("commander"), Reason: rq.form("reason")})
		return err
	})
}

func confirmStep(rq *Request) error {
	return incidentStep(rq, "incidents.error.step", "step_confirmed", func(id string) error {
		index, err := strconv.ParseUint(rq.PathValue("index"), 10, 63)
		if err != nil {
			return medguard.InvalidField("step", "no such step")
		}
		_, err = rq.Deps.Incidents.ConfirmStep(rq.Context(), rq.Call, id, index)
		return err
	})
}

// attachFile takes an evidence file from the page's upload form (held in
// memory, never in a temporary file).
func attachFile(rq *Request) error {
	return incidentStep(rq, "incidents.error.file", "file_attached", func(id string) error {
		_, err := rq.Deps.Incidents.AttachFile(rq.Context(), rq.Call, id, func() (incidents.FileUpload, error) {
			f, h, err := rq.FormFile("file")
			if err != nil {
				return incidents.FileUpload{}, medguard.InvalidField("file", "choose a file")
			}
			defer f.Close()
			content, err := io.ReadAll(io.LimitReader(f, incidents.MaxEvidenceFile+1))
			if err != nil {
				return incidents.FileUpload{}, medguard.InvalidField("file", "the file could not be read")
			}
			return incidents.FileUpload{Kind: rq.form("kind"), Filename: h.Filename, DeclaredType: h.Header.Get("Content-Type"),
				Content: content}, nil
		})
		return err
	})
}

// downloadFile sends an evidence file (checked against its SHA-256 by the
// service) as an attachment.
func downloadFile(rq *Request) error {
	f, content, err := rq.Deps.Incidents.GetFile(rq.Context(), rq.Call, rq.PathValue("id"), rq.PathValue("file"))
	if err != nil {
		return err
	}
	ct := f.ContentType
	if ct == "text/plain" {
		ct = "text/plain; charset=utf-8"
	}
	h := rq.W.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", "attachment; filename=\"evidence\"; filename*=UTF-8''"+url.PathEscape(f.Filename))
	h.Set("X-Content-SHA256", f.SHA256)
	h.Set("Content-Length", strconv.Itoa(len(content)))
	rq.W.WriteHeader(http.StatusOK)
	_, err = rq.W.Write(content)
	return err
}

// sanctionName names a sanction in the page's language.
func (rq *Request) sanctionName(code string) string {
	for _, s := range incidents.Sanctions {
		if s.Code == code {
			if rq.Lang == "en" {
				return s.NameEN
			}
			return s.NameZH
		}
	}
	return code
}

// sanctionOptions are the sanctions for a select.
func (rq *Request) sanctionOptions() []option {
	out := make([]option, len(incidents.Sanctions))
	for i, s := range incidents.Sanctions {
		out[i] = option{Value: s.Code, Text: rq.sanctionName(s.Code)}
	}
	return out
}

func caseOpinion(rq *Request, id string) error {
	_, err := rq.Deps.Incidents.Opinion(rq.Context(), rq.Call, id, incidents.CaseOpinion{Sanction: rq.form("sanction"),
		Text: rq.form("text")})
	return err
}

// The notices of issue 13 on the alerts' pages: the rules, where each
// leads, what it is about, and why it was raised.
var noticeRules = []string{incidents.ReportedRule, incidents.CommanderRule, incidents.CaseDeadlineOverdueRule, incidents.AnonymousRule}

// noticeHref is where a notice's alert leads: its incident, its case, or
// the reports waiting for triage.
func noticeHref(a detect.Alert) string {
	switch a.Rule {
	case incidents.ReportedRule, incidents.CommanderRule:
		if idPath(a.Key) != "" {
			return "/incidents/" + a.Key
		}
	case incidents.CaseDeadlineOverdueRule:
		if idPath(a.Key) != "" {
			return "/accountability/" + a.Key
		}
	case incidents.AnonymousRule:
		return "/anonymous-reports?status=new"
	}
	return ""
}

// noticeSubject is the catalog key of what a notice is about.
func noticeSubject(a detect.Alert) string {
	switch a.Rule {
	case incidents.ReportedRule, incidents.CommanderRule:
		return "alerts.subject.incident"
	case incidents.CaseDeadlineOverdueRule:
		return "alerts.subject.case"
	case incidents.AnonymousRule:
		return "alerts.subject.anonymous_report"
	}
	return ""
}

var (
	commanderPattern   = regexp.MustCompile(`: commander ([A-Za-z0-9_.-]+)$`)
	caseOverduePattern = regexp.MustCompile(`deadline ([a-z_]+) was due`)
	dayPattern         = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// noticeExplanation says why a notice was raised, in words.
func (rq *Request) noticeExplanation(a detect.Alert) (string, bool) {
	switch a.Rule {
	case incidents.ReportedRule:
		return rq.T("alerts.explain.incident_reported"), true
	case incidents.CommanderRule:
		who := ""
		if m := commanderPattern.FindStringSubmatch(a.Explanation); m != nil {
			who = rq.Person(m[1])
		}
		return rq.T("alerts.explain.incident_commander", who), true
	case incidents.CaseDeadlineOverdueRule:
		name := rq.T("alerts.explain.some_deadline")
		if m := caseOverduePattern.FindStringSubmatch(a.Explanation); m != nil {
			name = rq.textOr("deadline."+m[1], name)
		}
		return rq.T("alerts.explain.case_deadline_overdue", name), true
	case incidents.AnonymousRule:
		day := ""
		if dayPattern.MatchString(a.Key) {
			day = a.Key
		}
		return rq.T("alerts.explain.anonymous_report_received", day), true
	}
	return "", false
}

// commandedPage lists the incidents the caller commands, with their
// nearest deadline.
func commandedPage(rq *Request) error {
	items, err := rq.Deps.Incidents.ListCommanded(rq.Context(), rq.Call, "all")
	if err != nil {
		return err
	}
	cols := []Column{{Key: "title", Title: "incidents.field.title", Sort: true}, {Key: "grade", Title: "incidents.field.grade", Sort: true},
		{Key: "type", Title: "incidents.field.type", Sort: true},
		{Key: "criterion", Title: "incidents.criterion", Sort: true}, {Key: "status", Title: "incidents.col.status", Sort: true},
		{Key: "deadline", Title: "incidents.col.deadline", Sort: true}, {Key: "due", Title: "deadline.col.due", Sort: true},
		{Key: "left", Title: "incidents.col.left"}, {Key: "commander", Title: "incidents.field.commander", Sort: true},
		{Key: "reported_by", Title: "incidents.col.reported_by", Sort: true},
		{Key: "reported_at", Title: "incidents.col.reported_at", Sort: true}}
	rows := make([]Row, 0, len(items))
	for i := range items {
		rows = append(rows, rq.incidentRow(&items[i]))
	}
	g, handled, err := rq.Grid("incidents-commanded", cols, rows, GridOptions{DefaultSort: "reported_at", DefaultDesc: true,
		Export: "incidents-commanded", Empty: "incidents.commanded.none"})
	if err != nil || handled {
		if err == nil {
			err = errHandled
		}
		return err
	}
	return rq.Render(http.StatusOK, "incidents_commanded", "incidents.commanded.title", struct{ Grid *Grid }{g})
}
