package console

import (
	"net/http"
	"slices"

	"medguard"
	"medguard/internal/policy"
	"medguard/internal/reports"
	"medguard/internal/web"
)

// The leadership's posture reports (安全态势报告, issue 14): the list of the
// reports generated, on schedule and on demand, with their period, who
// asked, the PDF's SHA-256 (the target of the report's audit entry), a
// link to view the HTML and one to download the PDF, both exactly as
// generated; and, for the leadership and the security office, the form
// that generates one now. The service decides and logs every read and
// download; these pages only show and post.

func init() {
	read := []policy.Permission{policy.ReportRead}
	register(
		Page{Method: "GET", Path: "/reports", Any: read, Nav: &Nav{Key: "nav.posture", Order: 64}, Handle: posturePage},
		Page{Method: "POST", Path: "/reports", Any: []policy.Permission{policy.ReportGenerate}, Handle: generatePosture},
		Page{Method: "GET", Path: "/reports/{id}/html", Any: read, Handle: postureDocument(reports.FormatHTML)},
		Page{Method: "GET", Path: "/reports/{id}/pdf", Any: read, Handle: postureDocument(reports.FormatPDF)},
	)
}

// errNoReports answers the pages of a console without the reports.
var errNoReports = &medguard.Error{Kind: medguard.NotFound, Message: "no posture reports on this server"}

type postureView struct {
	Reports     []reports.Report
	Kind        string
	Kinds       []string
	Languages   []string
	Next        string
	CanGenerate bool
	// Current are the labels of the current periods, as the form's hints.
	Current map[string]string
}

func posturePage(rq *Request) error {
	kind := rq.URL.Query().Get("kind")
	if !slices.Contains(reports.Kinds, kind) {
		kind = ""
	}
	v := &postureView{Kind: kind, Kinds: reports.Kinds, Languages: reports.Languages, CanGenerate: rq.Can(policy.ReportGenerate),
		Current: map[string]string{}}
	if rq.Deps.Reports == nil {
		return rq.Render(http.StatusOK, "reports", "posture.title", v)
	}
	var err error
	v.Reports, v.Next, err = rq.Deps.Reports.List(rq.Context(), rq.Call, reports.Query{Kind: kind, After: rq.Cursor(), Limit: PageSize})
	if err != nil {
		return err
	}
	now := rq.Deps.Clock.Now()
	for _, k := range reports.Kinds {
		v.Current[k] = reports.PeriodOf(k, now, rq.c.zone).Label
	}
	return rq.Render(http.StatusOK, "reports", "posture.title", v)
}

func generatePosture(rq *Request) error {
	if rq.Deps.Reports == nil {
		return errNoReports
	}
	if _, err := rq.Deps.Reports.Generate(rq.Context(), rq.Call, reports.Request{Kind: rq.form("kind"), Period: rq.form("period"),
		Lang: rq.form("lang")}); err != nil {
		return err
	}
	return rq.Redirect("/reports", "report_generated")
}

// postureDocument answers with a report's HTML (to view) or PDF (to
// download), exactly as generated.
func postureDocument(format string) func(*Request) error {
	return func(rq *Request) error {
		if rq.Deps.Reports == nil {
			return errNoReports
		}
		r, body, err := rq.Deps.Reports.Download(rq.Context(), rq.Call, rq.PathValue("id"), format)
		if err != nil {
			return err
		}
		web.WriteReport(rq.W, r, format, body)
		return nil
	}
}

// PostureTile is the dashboard's link to the posture reports: the newest
// report, if any.
type PostureTile struct {
	Shown  bool
	Latest *reports.Report
}

func loadPostureTile(rq *Request) (PostureTile, error) {
	if rq.Deps.Reports == nil || !rq.Can(policy.ReportRead) {
		return PostureTile{}, nil
	}
	rs, _, err := rq.Deps.Reports.List(rq.Context(), rq.Call, reports.Query{Limit: 1})
	if hidden(err) {
		return PostureTile{}, nil
	}
	if err != nil {
		return PostureTile{}, err
	}
	t := PostureTile{Shown: true}
	if len(rs) > 0 {
		t.Latest = &rs[0]
	}
	return t, nil
}
