package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/detect"
	"medguard/internal/incidents"
	"medguard/internal/policy"
	"medguard/internal/records"
	"medguard/internal/trail"
)

// The dashboard (SPEC §11): the security posture as figures and charts,
// each shown only to those whose permissions cover it. Every figure is read
// through the services, so the dashboard's reads are in the audit log too.

func init() {
	register(
		Page{Method: "GET", Path: "/{$}", Nav: &Nav{Key: "nav.dashboard", Order: 10}, Handle: dashboard},
	)
}

// Bounds of the dashboard's reads: beyond them a figure shows "at least".
const (
	maxReadPages  = 5 // of audit.MaxEntries entries
	maxAlertPages = 5 // of 200 alerts
)

// Figure is a number on the dashboard; More means "at least Value".
type Figure struct {
	Shown bool
	Value int
	More  bool
}

// Dashboard is what the dashboard shows.
type Dashboard struct {
	AuditEntries     Figure
	CheckpointOK     bool
	CheckpointAt     time.Time
	OpenAlerts       Figure
	Frozen           Figure
	OpenIncidents    Figure
	NearestDeadline  *incidents.Deadline
	DeadlineIncident string
	// DeadlineName and DeadlineLeft say the nearest deadline in words:
	// what is due, and how long is left or how long it is overdue.
	DeadlineName, DeadlineLeft string
	DeadlineOverdue            bool
	// OverdueIncidents counts the open incidents with an overdue deadline.
	OverdueIncidents Figure
	PendingApprovals Figure
	GlassPending     Figure
	GlassOverdue     Figure
	Reads            *Chart // record reads per hour, last 24 h
	AlertsByRule     *Chart
	IncidentsByGrade *Chart
	// Backups is the backup health tile (backups.go).
	Backups BackupTile
	Empty   bool // nothing to show for this role

	// Inspection is today's inspection, signed or not (inspections.go).
	Inspection *InspectionTile
	// Training is the training tile: coverage and overdue (training.go).
	Training TrainingTile
	// Vulns is the tile of the vulnerabilities overdue by severity
	// (vulns.go); nil when not shown.
	Vulns *VulnTile
	// Risks and Drills are the risk register's and the drills' tiles
	// (risks.go, plans.go; _registers.html).
	Risks  RiskTile
	Drills DrillTile
	// Reports links the posture reports (reports.go; _registers.html).
	Reports PostureTile
	// Rectify is the rectification register's tile (rectify.go); nil when
	// not shown.
	Rectify *RectifyTile
	// Compliance is the compliance checks' tile (compliance.go), for
	// the security office, the auditors and the leadership.
	Compliance ComplianceTile
}

func dashboard(rq *Request) error {
	if clinicalHome(rq) {
		return home(rq) // doctors, nurses, department heads, records clerks: home.go
	}
	d, err := LoadDashboard(rq)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "dashboard", "dashboard.title", d)
}

// hidden reports whether err is a refusal that just hides a figure.
func hidden(err error) bool {
	var me *medguard.Error
	return errors.As(err, &me) && me.Kind == medguard.Forbidden
}

// LoadDashboard reads the figures the caller may see.
func LoadDashboard(rq *Request) (*Dashboard, error) {
	ctx, call, deps := rq.Context(), rq.Call, rq.Deps
	now := deps.Clock.Now()
	d := &Dashboard{Empty: true}
	if rq.Can(policy.AuditRead) {
		d.Empty = false
		cp, err := deps.Trail.Checkpoint(ctx, call)
		if err != nil && !hidden(err) {
			return nil, err
		}
		if err == nil {
			d.AuditEntries = Figure{Shown: true, Value: int(cp.Size)}
			d.CheckpointAt = cp.SignedAt
			if key, err := deps.Trail.VerifierKey(ctx, call); err == nil {
				_, size, _, verr := audit.OpenCheckpoint([]byte(cp.Note), key)
				d.CheckpointOK = verr == nil && size == cp.Size
			}
		}
		reads, err := readsPerHour(rq, now)
		if err != nil && !hidden(err) {
			return nil, err
		}
		d.Reads = reads
	}
	if rq.Can(policy.AlertRead) {
		d.Empty = false
		byRule := map[string]int{}
		after, n, more := "", 0, false
		for page := 0; ; page++ {
			as, next, err := deps.Detect.Alerts(ctx, call, detect.AlertQuery{Status: detect.StatusNew, After: after, Limit: 200})
			if err != nil {
				return nil, err
			}
			for _, a := range as {
				byRule[a.Rule]++
			}
			n += len(as)
			if next == "" {
				break
			}
			if page+1 == maxAlertPages {
				more = true
				break
			}
			after = next
		}
		d.OpenAlerts = Figure{Shown: true, Value: n, More: more}
		d.AlertsByRule = categoryChart(byRule, rq.detectRule)
		d.AlertsByRule.link(func(k string) string {
			return "/alerts?" + url.Values{"status": {detect.StatusNew}, "rule": {k}}.Encode()
		})
		fs, err := deps.Identity.Freezes(ctx, call, true)
		if err != nil && !hidden(err) {
			return nil, err
		}
		if err == nil {
			d.Frozen = Figure{Shown: true, Value: len(fs)}
		}
	}
	if rq.Can(policy.IncidentRead) {
		d.Empty = false
		byGrade := map[string]int{}
		after, n, overdue := "", 0, 0
		for {
			items, next, err := deps.Incidents.List(ctx, call, incidents.Open, after, 200)
			if err != nil {
				return nil, err
			}
			for i := range items {
				inc := &items[i]
				byGrade[fmt.Sprint(inc.Grade)]++
				late := false
				for j := range inc.Deadlines {
					dl := &inc.Deadlines[j]
					if dl.MetAt != nil {
						continue
					}
					late = late || dl.State == incidents.Overdue
					if d.NearestDeadline == nil || dl.DueAt.Before(d.NearestDeadline.DueAt) {
						d.NearestDeadline, d.DeadlineIncident = dl, inc.ID
					}
				}
				if late {
					overdue++
				}
			}
			n += len(items)
			if next == "" || n >= 1000 {
				break
			}
			after = next
		}
		d.OpenIncidents = Figure{Shown: true, Value: n}
		d.OverdueIncidents = Figure{Shown: true, Value: overdue}
		if dl := d.NearestDeadline; dl != nil {
			d.DeadlineName = rq.textOr("deadline."+dl.Name, rq.T("alerts.explain.some_deadline"))
			d.DeadlineLeft = rq.countdown(dl.DueAt, now)
			d.DeadlineOverdue = dl.State == incidents.Overdue || dl.DueAt.Before(now)
		}
		d.IncidentsByGrade = categoryChart(byGrade, func(k string) string { return rq.T("dashboard.grade", k) })
		d.IncidentsByGrade.link(func(k string) string {
			return "/incidents?" + url.Values{"status": {incidents.Open}, "grade": {k}}.Encode()
		})
	}
	if rq.Can(policy.ApprovalDecide) {
		d.Empty = false
		items, next, err := deps.Approvals.List(ctx, call, approvals.Pending, "", 200)
		if err != nil {
			return nil, err
		}
		d.PendingApprovals = Figure{Shown: true, Value: len(items), More: next != ""}
	}
	if rq.Can(policy.BackupRead) {
		d.Empty = false
		t, err := loadBackupTile(rq, now)
		if err != nil {
			return nil, err
		}
		d.Backups = t
	}
	if rq.Can(policy.InspectionRead) {
		d.Empty = false
		t, err := loadInspectionTile(rq)
		if err != nil {
			return nil, err
		}
		d.Inspection = t
	}
	if rq.Can(policy.TrainingRead) {
		d.Empty = false
		t, err := loadTrainingTile(rq)
		if err != nil {
			return nil, err
		}
		d.Training = t
	}
	if rq.Can(policy.VulnRead) && deps.Vulns != nil {
		d.Empty = false
		t, err := loadVulnTile(rq)
		if err != nil {
			return nil, err
		}
		d.Vulns = t
	}
	if rq.Can(policy.RiskRead) || rq.Can(policy.PlanRead) {
		var err error
		if d.Risks, err = loadRiskTile(rq, now); err != nil {
			return nil, err
		}
		if d.Drills, err = loadDrillTile(rq, now); err != nil {
			return nil, err
		}
		d.Empty = d.Empty && !d.Risks.Shown && !d.Drills.Shown
	}
	if rq.Can(policy.ReportRead) {
		var err error
		if d.Reports, err = loadPostureTile(rq); err != nil {
			return nil, err
		}
		d.Empty = d.Empty && !d.Reports.Shown
	}
	// The register's tile, or an owner's own items (rectify.go).
	rt, err := loadRectifyTile(rq)
	if err != nil {
		return nil, err
	}
	if rt != nil {
		d.Rectify, d.Empty = rt, false
	}
	if rq.Can(policy.ComplianceRead) && deps.Compliance != nil {
		var err error
		if d.Compliance, err = loadComplianceTile(rq); err != nil {
			return nil, err
		}
		d.Empty = d.Empty && !d.Compliance.Shown
	}
	if rq.Can(policy.BreakGlassReview) || rq.Can(policy.BreakGlassRead) {
		d.Empty = false
		for _, f := range []struct {
			status string
			fig    *Figure
		}{{"pending", &d.GlassPending}, {"overdue", &d.GlassOverdue}} {
			items, next, err := deps.Records.ListBreakGlass(ctx, call, records.BreakGlassFilter{Status: f.status, Limit: 200})
			if err != nil && !hidden(err) {
				return nil, err
			}
			if err == nil {
				*f.fig = Figure{Shown: true, Value: len(items), More: next != ""}
			}
		}
	}
	return d, nil
}

// readsPerHour counts record reads in each of the last 24 hours.
func readsPerHour(rq *Request, now time.Time) (*Chart, error) {
	zone := rq.Deps.Trail.Zone()
	end := now.In(zone).Truncate(time.Hour).Add(time.Hour)
	from := end.Add(-24 * time.Hour)
	counts := make([]int, 24)
	var before uint64
	more := false
	for page := 0; ; page++ {
		es, next, err := rq.Deps.Trail.Search(rq.Context(), rq.Call, trail.Query{Action: "record.read", From: from, To: end,
			Before: before, Limit: audit.MaxEntries})
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			at, err := time.Parse(time.RFC3339Nano, e.Entry.Time)
			if err != nil {
				continue
			}
			if h := int(at.Sub(from) / time.Hour); h >= 0 && h < 24 {
				counts[h]++
			}
		}
		if next == 0 {
			break
		}
		if page+1 == maxReadPages {
			more = true
			break
		}
		before = next
	}
	labels := make([]string, 24)
	for i := range labels {
		labels[i] = from.Add(time.Duration(i) * time.Hour).Format("15")
	}
	c := columnChart(labels, counts)
	c.AtLeast = more
	for i := range c.Bars {
		start := from.Add(time.Duration(i) * time.Hour)
		c.Bars[i].Href = "/audit/search?" + url.Values{"action": {"record.read"}, "from": {start.Format("2006-01-02T15:04")},
			"to": {start.Add(time.Hour).Format("2006-01-02T15:04")}}.Encode()
	}
	return c, nil
}

// Chart is an SVG bar chart drawn by the template: the geometry is worked
// out here, the drawing there.
type Chart struct {
	Width, Height int
	Bars          []Bar
	Max           int
	Total         int
	AtLeast       bool // the counts were capped
	Ticks         []Tick
}

// Bar is one bar with its label.
type Bar struct {
	X, Y, W, H     int
	Label          string
	Value          int
	LabelX, LabelY int
	ShowLabel      bool
	// Href is the list the bar stands for, filtered to it.
	Href string
	key  string
}

// link makes each bar of a category chart a link to href(its category).
func (c *Chart) link(href func(key string) string) {
	for i := range c.Bars {
		c.Bars[i].Href = href(c.Bars[i].key)
	}
}

// Tick is a horizontal grid line with its value.
type Tick struct {
	Y     int
	Value int
}

// columnChart draws vertical bars (e.g. per hour).
func columnChart(labels []string, values []int) *Chart {
	const w, h, left, bottom, top = 720, 220, 40, 24, 10
	c := &Chart{Width: w, Height: h}
	for _, v := range values {
		c.Max = max(c.Max, v)
		c.Total += v
	}
	scale := niceMax(c.Max)
	plotH := h - bottom - top
	slot := (w - left) / max(len(values), 1)
	for i, v := range values {
		bh := v * plotH / scale
		c.Bars = append(c.Bars, Bar{X: left + i*slot + 2, Y: top + plotH - bh, W: slot - 4, H: bh, Label: labels[i], Value: v,
			LabelX: left + i*slot + slot/2, LabelY: h - 6, ShowLabel: i%3 == 0})
	}
	for _, f := range []int{0, 2, 4} {
		val := scale * f / 4
		c.Ticks = append(c.Ticks, Tick{Y: top + plotH - val*plotH/scale, Value: val})
	}
	return c
}

// categoryChart draws horizontal bars, largest first.
func categoryChart(counts map[string]int, label func(string) string) *Chart {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > 10 {
		keys = keys[:10]
	}
	const w, left, row = 720, 260, 26
	c := &Chart{Width: w, Height: max(len(keys), 1)*row + 10}
	for _, k := range keys {
		c.Max = max(c.Max, counts[k])
		c.Total += counts[k]
	}
	scale := niceMax(c.Max)
	for i, k := range keys {
		bw := counts[k] * (w - left - 60) / scale
		c.Bars = append(c.Bars, Bar{X: left, Y: 5 + i*row, W: max(bw, 1), H: row - 8, Label: label(k), Value: counts[k],
			LabelX: left - 8, LabelY: 5 + i*row + row/2 + 1, ShowLabel: true, key: k})
	}
	return c
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten (at least 4,
// so that quarter ticks are whole numbers).
func niceMax(m int) int {
	if m <= 4 {
		return 4
	}
	p := 1
	for p*10 < m {
		p *= 10
	}
	for _, f := range []int{1, 2, 4, 5, 10} {
		if f*p >= m && f*p%4 == 0 {
			return f * p
		}
	}
	return 10 * p
}
