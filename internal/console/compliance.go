package console

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/compliance"
	"medguard/internal/detect"
	"medguard/internal/policy"
)

// The compliance checks (合规检查, issue 14): every check with its
// clauses, status, value and a link to the list behind the number, the
// score's trend as a small SVG; a check's page with its history, the list
// behind its latest number and — for an attested check — its evidence,
// the form to attach new evidence and the second person's signature. The
// service decides and logs; these pages only show and post.

func init() {
	read := []policy.Permission{policy.ComplianceRead}
	register(
		Page{Method: "GET", Path: "/compliance", Any: read, Nav: &Nav{Key: "nav.compliance", Order: 58}, Handle: compliancePage},
		Page{Method: "POST", Path: "/compliance/runs", Any: []policy.Permission{policy.ComplianceRun}, Handle: complianceRun},
		Page{Method: "GET", Path: "/compliance/checks/{id}", Any: read, Handle: complianceCheckPage},
		Page{Method: "POST", Path: "/compliance/checks/{id}/attestations", Any: []policy.Permission{policy.ComplianceAttest},
			MaxForm: compliance.MaxEvidenceFile + 64<<10, Handle: complianceAttest},
		Page{Method: "POST", Path: "/compliance/attestations/{id}/review", Any: []policy.Permission{policy.ComplianceReview},
			Handle: complianceReview},
		Page{Method: "GET", Path: "/compliance/attestations/{id}/file", Any: read, Handle: complianceFile},
	)
	title := func(rq *Request, id string) string {
		if rq.Deps.Compliance != nil {
			if c, ok := rq.Deps.Compliance.Catalogue().Check(id); ok {
				return c.Title.In(rq.Lang)
			}
		}
		return rq.T("compliance.alert_subject")
	}
	noticeWords[compliance.FailedRule] = noticeWord{
		Subject: func(rq *Request, a detect.Alert) string { return title(rq, a.Key) },
		Explain: func(rq *Request, a detect.Alert) string {
			return rq.T("alerts.explain."+compliance.FailedRule, title(rq, a.Key))
		},
	}
}

// ComplianceTile is the dashboard's tile of the compliance checks: the
// newest run's score, the failing checks.
type ComplianceTile struct {
	Shown, Run          bool
	Score               float64
	Fail, NeedsEvidence int
	Failing             []compliance.Result
}

func loadComplianceTile(rq *Request) (ComplianceTile, error) {
	rep, err := rq.Deps.Compliance.LatestReport(rq.Context(), rq.Call, rq.Lang)
	if hidden(err) {
		return ComplianceTile{}, nil
	}
	if err != nil {
		return ComplianceTile{}, err
	}
	if rep == nil {
		return ComplianceTile{Shown: true}, nil
	}
	t := ComplianceTile{Shown: true, Run: true, Score: rep.Score, Fail: rep.Fail, NeedsEvidence: rep.NeedsEvidence}
	for _, r := range rep.Checks {
		if r.Status == compliance.Fail && len(t.Failing) < 5 {
			t.Failing = append(t.Failing, r)
		}
	}
	return t, nil
}

// mayOpen reports whether the caller may open the console page at path
// (a link behind a number is shown only to those it would not refuse).
func (rq *Request) mayOpen(path string) bool {
	u, err := url.Parse(path)
	if err != nil || path == "" {
		return false
	}
	_, pattern := rq.c.mux.Handler(&http.Request{Method: http.MethodGet, URL: u, Host: rq.Host})
	for _, p := range pages {
		if p.Method+" "+p.Path != pattern && !(pattern == p.Path && p.Method == "GET") {
			continue
		}
		if len(p.Any) == 0 {
			return true
		}
		for _, perm := range p.Any {
			if rq.Can(perm) {
				return true
			}
		}
		return false
	}
	return false
}

// complianceRow is a check as the pages show it.
type complianceRow struct {
	compliance.Result
	Link  string
	Items []evidenceLine
}

// evidenceLine is a line of evidence in words.
type evidenceLine struct {
	What, Name, Department, Who, Detail, Ratio string
	At                                         *time.Time
	Link                                       string
}

// evidenceLines says a result's evidence in the page's language: what
// each line is, the person (by name), the department, the date; the
// English detail only on English pages.
func (rq *Request) evidenceLines(r compliance.Result) []evidenceLine {
	var out []evidenceLine
	for _, it := range r.Evidence.Items {
		l := evidenceLine{What: rq.T("compliance.item." + it.Kind), Department: it.Department, Who: it.Who, At: it.At}
		if it.Count != nil && it.Of != nil {
			l.Ratio = fmt.Sprintf("%d / %d", *it.Count, *it.Of)
		}
		switch it.Kind {
		case compliance.ItemStaff:
			l.Who = it.ID
		case compliance.ItemColumn:
			l.Name = rq.T("compliance.column." + strings.ReplaceAll(it.ID, ".", "_"))
		case compliance.ItemDrillKind:
			l.Name = rq.T("drill.kind."+it.ID) + " " + it.Name
		case compliance.ItemInspectionDay:
			l.Name = it.ID + " " + rq.T("compliance.day."+it.Detail)
		case compliance.ItemVuln, compliance.ItemRisk, compliance.ItemPlan:
			l.Name = it.Name
			l.Link = map[string]string{compliance.ItemVuln: "/vulns/", compliance.ItemRisk: "/risks/", compliance.ItemPlan: "/plans/"}[it.Kind] + it.ID
		case compliance.ItemAPIKey, compliance.ItemLink, compliance.ItemBackupTarget:
			l.Name = it.ID
			if it.Kind == compliance.ItemAPIKey {
				l.Name = it.Name
			}
		case compliance.ItemAttestation:
			l.Link = "/compliance/attestations/" + it.ID + "/file"
		default:
			if medguard.ValidID(it.ID) || it.Kind == compliance.ItemReconciliation {
				l.Name = it.ID
			}
		}
		if l.Link != "" && !rq.mayOpen(l.Link) {
			l.Link = ""
		}
		if rq.Lang == "en" {
			l.Detail = it.Detail
		}
		out = append(out, l)
	}
	return out
}

func (rq *Request) complianceRow(r compliance.Result) complianceRow {
	row := complianceRow{Result: r, Items: rq.evidenceLines(r)}
	if rq.mayOpen(r.Evidence.Console) {
		row.Link = r.Evidence.Console
	}
	if rq.Lang != "en" {
		row.Reason = ""
	}
	return row
}

// trend is the score's trend drawn as an SVG polyline.
type trend struct {
	Points       string
	Width        int
	Height       int
	First, Last  string
	Runs         int
	Lowest, Best float64
}

func newTrend(pts []compliance.ScorePoint, zone *time.Location) *trend {
	if len(pts) == 0 {
		return nil
	}
	t := &trend{Width: 320, Height: 64, Runs: len(pts), Lowest: 100}
	var b strings.Builder
	for i, p := range pts {
		x := 0
		if len(pts) > 1 {
			x = i * t.Width / (len(pts) - 1)
		}
		y := t.Height - int(p.Score*float64(t.Height-4)/100) - 2
		fmt.Fprintf(&b, "%d,%d ", x, y)
		t.Lowest, t.Best = min(t.Lowest, p.Score), max(t.Best, p.Score)
	}
	t.Points = strings.TrimSpace(b.String())
	t.First, t.Last = pts[0].At.In(zone).Format("2006-01-02"), pts[len(pts)-1].At.In(zone).Format("2006-01-02")
	return t
}

type complianceView struct {
	Report compliance.Report
	Rows   []complianceRow
	Trend  *trend
	CanRun bool
}

func compliancePage(rq *Request) error {
	if rq.Deps.Compliance == nil {
		return &medguard.Error{Kind: medguard.NotFound, Message: "the compliance checks are not available"}
	}
	rep, err := rq.Deps.Compliance.Report(rq.Context(), rq.Call, rq.Lang)
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	pts, err := rq.Deps.Compliance.ScoreHistory(rq.Context(), rq.Call, now.AddDate(0, 0, -90), now)
	if err != nil {
		return err
	}
	v := complianceView{Report: rep, Trend: newTrend(pts, rq.c.zone), CanRun: rq.Can(policy.ComplianceRun)}
	for _, r := range rep.Checks {
		v.Rows = append(v.Rows, rq.complianceRow(r))
	}
	return rq.Render(http.StatusOK, "compliance", "compliance.title", v)
}

func complianceRun(rq *Request) error {
	if _, err := rq.Deps.Compliance.Run(rq.Context(), rq.Call); err != nil {
		return err
	}
	return rq.Redirect("/compliance", "compliance_run")
}

type complianceCheckView struct {
	Check        compliance.Check
	Title, How   string
	Threshold    string
	Latest       *complianceRow
	History      []complianceRow
	Attestations []compliance.Attestation
	CanAttest    bool
	CanReview    bool
	Kinds        []string
}

func complianceCheckPage(rq *Request) error {
	id := rq.PathValue("id")
	c, ok := rq.Deps.Compliance.Catalogue().Check(id)
	if !ok {
		return &medguard.Error{Kind: medguard.NotFound, Message: "no such compliance check"}
	}
	hist, err := rq.Deps.Compliance.History(rq.Context(), rq.Call, id, rq.Lang, 60)
	if err != nil {
		return err
	}
	v := complianceCheckView{Check: c, Title: c.Title.In(rq.Lang), How: c.How.In(rq.Lang), Threshold: c.Threshold.In(rq.Lang),
		Kinds: compliance.EvidenceKinds}
	for i, r := range hist {
		row := rq.complianceRow(r)
		if i == 0 {
			latest := row
			v.Latest = &latest
		}
		row.Items = nil
		v.History = append(v.History, row)
	}
	if c.Kind == compliance.Attested {
		if v.Attestations, err = rq.Deps.Compliance.Attestations(rq.Context(), rq.Call, id); err != nil {
			return err
		}
		v.CanAttest, v.CanReview = rq.Can(policy.ComplianceAttest), rq.Can(policy.ComplianceReview)
	}
	return rq.Render(http.StatusOK, "compliance_check", "compliance.check_title", v)
}

func complianceAttest(rq *Request) error {
	id := rq.PathValue("id")
	_, err := rq.Deps.Compliance.Attest(rq.Context(), rq.Call, id, func() (compliance.Upload, error) {
		f, h, err := rq.FormFile("file")
		if err != nil {
			return compliance.Upload{}, medguard.InvalidField("file", "choose a file")
		}
		defer f.Close()
		content, err := io.ReadAll(io.LimitReader(f, compliance.MaxEvidenceFile+1))
		if err != nil {
			return compliance.Upload{}, medguard.InvalidField("file", "the file could not be read")
		}
		return compliance.Upload{Kind: rq.form("kind"), Filename: h.Filename, Content: content, Note: rq.PostFormValue("note")}, nil
	})
	if err != nil {
		return err
	}
	return rq.Redirect("/compliance/checks/"+id, "compliance_evidence_attached")
}

func complianceReview(rq *Request) error {
	a, err := rq.Deps.Compliance.Review(rq.Context(), rq.Call, rq.PathValue("id"), rq.PostFormValue("note"))
	if err != nil {
		return err
	}
	return rq.Redirect("/compliance/checks/"+a.CheckID, "compliance_evidence_signed")
}

func complianceFile(rq *Request) error {
	a, content, err := rq.Deps.Compliance.AttestationFile(rq.Context(), rq.Call, rq.PathValue("id"))
	if err != nil {
		return err
	}
	ct := a.ContentType
	if ct == "text/plain" {
		ct = "text/plain; charset=utf-8"
	}
	h := rq.W.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", "attachment; filename=\"evidence\"; filename*=UTF-8''"+url.PathEscape(a.Filename))
	h.Set("Content-Length", strconv.Itoa(len(content)))
	h.Set("X-Content-SHA256", a.SHA256)
	_, err = rq.W.Write(content)
	return err
}
