package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"time"
)

// htmlReport is the report as a standalone HTML document: its charts are
// SVG written by the template, its style inline, no script.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"rgb": func(c [3]uint8) string { return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2]) },
	"f":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<title>{{.Title}} {{.Period}}</title>
<style>
body{font-family:"Noto Sans CJK SC","Droid Sans Fallback","Microsoft YaHei",sans-serif;margin:2em auto;max-width:60em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
td.n{text-align:right}.meta{color:#555}.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}
figcaption{font-weight:bold;margin-bottom:.2em}.note{color:#666;font-size:.9em}code{font-size:.85em;word-break:break-all}
</style>
</head>
<body>
<header>
<p class="meta">{{.Hospital}} · {{.For}}</p>
<h1>{{.Title}}</h1>
<p class="meta">{{.PeriodWord}}：{{.Period}}{{if .Partial}} {{.PartialNote}}{{end}}<br>
{{.GeneratedAtWord}}：{{.GeneratedAt}} · {{.GeneratedByWord}}：{{.GeneratedBy}}</p>
</header>
<h2>{{.HeadlineWord}}</h2>
<table>
{{range .Headline}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
<h2>{{.TrendsWord}}</h2>
<div class="charts">
{{range .Charts}}<figure>
<figcaption>{{.Title}}</figcaption>
{{if .Note}}<p class="note">{{.Note}}</p>{{else}}<svg xmlns="http://www.w3.org/2000/svg" width="{{f .L.W}}" height="{{f .L.H}}" viewBox="0 0 {{f .L.W}} {{f .L.H}}" role="img" aria-label="{{.Title}}">
{{range .L.Grid}}<line x1="{{f .X1}}" y1="{{f .Y1}}" x2="{{f .X2}}" y2="{{f .Y2}}" stroke="{{rgb .Colour}}" stroke-width="{{f .Width}}"/>
{{end}}{{range .L.Bars}}<rect x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}" fill="{{rgb .Colour}}"/>
{{end}}{{range .L.Lines}}<line x1="{{f .X1}}" y1="{{f .Y1}}" x2="{{f .X2}}" y2="{{f .Y2}}" stroke="{{rgb .Colour}}" stroke-width="{{f .Width}}"/>
{{end}}{{range .L.Dots}}<rect x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f .H}}" fill="{{rgb .Colour}}"/>
{{end}}{{range .L.Axes}}<line x1="{{f .X1}}" y1="{{f .Y1}}" x2="{{f .X2}}" y2="{{f .Y2}}" stroke="{{rgb .Colour}}" stroke-width="{{f .Width}}"/>
{{end}}{{range .L.Labels}}<text x="{{f .X}}" y="{{f .Y}}" text-anchor="{{.Anchor}}" font-size="11">{{.S}}</text>
{{end}}{{range .L.Legend}}<rect x="{{f .X}}" y="{{f .Y}}" width="10" height="10" fill="{{rgb .Colour}}"/><text x="{{f .X}}" dx="14" y="{{f .Y}}" dy="9" font-size="11">{{.S}}</text>
{{end}}</svg>{{end}}
<table><tr><th></th>{{range .Labels}}<th>{{.}}</th>{{end}}</tr>
{{range .Series}}<tr><th>{{.Name}}</th>{{range .Cells}}<td class="n">{{.}}</td>{{end}}</tr>
{{end}}</table>
</figure>
{{end}}</div>
<h2>{{.AlertRulesWord}}</h2>
{{if .AlertRules}}<table>{{range .AlertRules}}<tr><td>{{if .Title}}{{.Title}}{{else}}<code>{{.Name}}</code>{{end}}</td><td class="n">{{.Count}}</td></tr>{{end}}</table>{{else}}<p>{{.None}}</p>{{end}}
<footer>
<p class="note">{{.Note}}</p>
<p class="note">{{.SHAWord}}: <code>{{.SHA256}}</code></p>
</footer>
</body>
</html>
`))

// HeadlineItem is a line of a report's headline.
type HeadlineItem struct{ Name, Value string }

// Headline returns the report's headline figures, in its language.
func (f *Figures) Headline(loc *time.Location) []HeadlineItem {
	l := f.Lang
	c := f.Current
	items := []HeadlineItem{
		{word(l, "alerts"), fmt.Sprint(c.AlertsTotal)},
		{word(l, "incidents"), fmt.Sprintf("%d (%s %d / %s %d / %s %d)", c.IncidentsTotal, word(l, "grade.1"), c.Incidents[0],
			word(l, "grade.2"), c.Incidents[1], word(l, "grade.3"), c.Incidents[2])},
		{word(l, "vulns_open"), fmt.Sprint(c.VulnsOpenTotal)},
		{word(l, "vulns_overdue"), fmt.Sprint(f.VulnsOverdue)},
	}
	if c.TrainingCoverage >= 0 {
		items = append(items, HeadlineItem{word(l, "training"), fmt.Sprintf("%d%% (%d / %d)", c.TrainingCoverage, f.TrainingCurrent, f.TrainingStaff)})
	}
	switch {
	case f.Compliance != nil:
		items = append(items, HeadlineItem{word(l, "compliance"), word(l, "compliance.line", f.Compliance.Score, f.Compliance.Passed,
			f.Compliance.Total, day(f.Compliance.At, loc))})
	default:
		items = append(items, HeadlineItem{word(l, "compliance"), word(l, "compliance.none")})
	}
	items = append(items, HeadlineItem{word(l, "risks"), fmt.Sprint(c.RisksTotal)})
	if k := f.Continuity; k != nil {
		b := word(l, "backups.none")
		if k.BackupsConfigured {
			b = word(l, "backups.line", k.BackupTargets, k.BackupsLate, k.BackupsFailing, k.RPOMinutes)
		}
		items = append(items, HeadlineItem{word(l, "backups"), b}, HeadlineItem{word(l, "drills"), word(l, "drills.line", k.DrillsHeld, k.DrillsPassed)})
	}
	if r := f.Rectification; r != nil {
		items = append(items, HeadlineItem{word(l, "rectification"), word(l, "rect.line", r.Open, r.Overdue, r.Opened, r.Closed)})
	} else {
		items = append(items, HeadlineItem{word(l, "rectification"), word(l, "rect.none")})
	}
	return items
}

// Title returns the report's title in its language.
func (f *Figures) Title() string { return word(f.Lang, "title."+f.Kind) }

type htmlChart struct {
	Chart
	L      Layout
	Series []htmlRow
}

type htmlRow struct {
	Name  string
	Cells []string
}

// HTML renders the report as a standalone HTML document; digest is the
// SHA-256 of its content (ContentDigest) it shows at its foot.
func (f *Figures) HTML(loc *time.Location, digest string) ([]byte, error) {
	l := f.Lang
	by := f.GeneratedBy
	if by == "" {
		by = word(l, "scheduled")
	}
	data := map[string]any{
		"Lang": Lang(l), "Title": f.Title(), "Hospital": f.Hospital, "For": word(l, "for"),
		"PeriodWord": word(l, "period"), "Period": periodText(f.Period, loc), "Partial": f.Partial, "PartialNote": word(l, "partial"),
		"GeneratedAtWord": word(l, "generated_at"), "GeneratedAt": when(f.GeneratedAt, loc),
		"GeneratedByWord": word(l, "generated_by"), "GeneratedBy": by,
		"HeadlineWord": word(l, "headline"), "Headline": f.Headline(loc),
		"TrendsWord": trendsWord(l), "AlertRulesWord": word(l, "alert_rules"), "None": word(l, "none"),
		"AlertRules": f.AlertRules, "Note": word(l, "note"), "SHAWord": word(l, "sha256"), "SHA256": digest,
	}
	var charts []htmlChart
	for _, c := range f.Charts() {
		hc := htmlChart{Chart: c, L: c.Layout(440, 220, 11)}
		for _, s := range c.Series {
			row := htmlRow{Name: s.Name}
			for i, v := range s.Values {
				if i < len(s.Missing) && s.Missing[i] {
					row.Cells = append(row.Cells, "–")
				} else {
					row.Cells = append(row.Cells, num(v))
				}
			}
			hc.Series = append(hc.Series, row)
		}
		charts = append(charts, hc)
	}
	data["Charts"] = charts
	var b bytes.Buffer
	if err := htmlReport.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func trendsWord(lang string) string {
	if Lang(lang) == "en" {
		return "Trends"
	}
	return "趋势"
}
