package reports

import (
	"fmt"
	"math"
	"strconv"
)

// Chart is a chart of a report: bars (stacked) or lines over the periods
// of a trend. The HTML writes its Layout as SVG and the PDF draws it with
// the same geometry.
type Chart struct {
	Title  string
	Labels []string
	Series []Series
	// Line draws lines instead of stacked bars; Max fixes the top of the
	// scale (0: from the data).
	Line bool
	Max  float64
	// Note replaces the chart when there is nothing to draw.
	Note string
}

// Series is one series of a chart.
type Series struct {
	Name   string
	Colour [3]uint8
	Values []float64
	// Missing marks values that do not exist (no compliance run yet).
	Missing []bool
}

// Rect, Segment, Text and Layout are a chart's geometry, in the units it
// was laid out in (pixels for SVG, millimetres for PDF), y growing down.
type (
	Rect struct {
		X, Y, W, H float64
		Colour     [3]uint8
	}
	Segment struct {
		X1, Y1, X2, Y2 float64
		Colour         [3]uint8
		Width          float64
	}
	Text struct {
		X, Y   float64
		S      string
		Anchor string // start, middle, end
	}
	Layout struct {
		W, H   float64
		Axes   []Segment
		Grid   []Segment
		Bars   []Rect
		Lines  []Segment
		Dots   []Rect
		Labels []Text
		Legend []LegendItem
	}
	LegendItem struct {
		X, Y   float64
		Colour [3]uint8
		S      string
	}
)

// Layout lays c out in a box of w × h; fontSize is the labels' size in the
// same unit (it sizes the margins).
func (c Chart) Layout(w, h, fontSize float64) Layout {
	l := Layout{W: w, H: h}
	left, right, top, bottom := fontSize*3.2, fontSize*0.8, fontSize*0.8, fontSize*4.2
	pw, ph := w-left-right, h-top-bottom
	n := len(c.Labels)
	if n == 0 || pw <= 0 || ph <= 0 {
		return l
	}
	top0 := c.Max
	if top0 == 0 {
		for i := range n {
			sum, most := 0.0, 0.0
			for _, s := range c.Series {
				if i < len(s.Values) {
					sum += s.Values[i]
					most = math.Max(most, s.Values[i])
				}
			}
			if c.Line {
				sum = most
			}
			top0 = math.Max(top0, sum)
		}
	}
	scaleTop, step := niceScale(top0)
	y := func(v float64) float64 { return top + ph - v/scaleTop*ph }
	grey := [3]uint8{0xcc, 0xcc, 0xcc}
	black := [3]uint8{0x33, 0x33, 0x33}
	for v := 0.0; v <= scaleTop+1e-9; v += step {
		l.Grid = append(l.Grid, Segment{X1: left, Y1: y(v), X2: left + pw, Y2: y(v), Colour: grey, Width: fontSize / 20})
		l.Labels = append(l.Labels, Text{X: left - fontSize*0.3, Y: y(v) + fontSize*0.35, S: num(v), Anchor: "end"})
	}
	l.Axes = []Segment{{X1: left, Y1: top, X2: left, Y2: top + ph, Colour: black, Width: fontSize / 12},
		{X1: left, Y1: top + ph, X2: left + pw, Y2: top + ph, Colour: black, Width: fontSize / 12}}
	slot := pw / float64(n)
	every := 1
	if lw := fontSize * 0.6 * float64(len(c.Labels[0])); lw > slot {
		every = int(math.Ceil(lw / slot))
	}
	for i, lab := range c.Labels {
		if (n-1-i)%every == 0 {
			l.Labels = append(l.Labels, Text{X: left + slot*(float64(i)+0.5), Y: top + ph + fontSize*1.2, S: lab, Anchor: "middle"})
		}
	}
	if c.Line {
		for _, s := range c.Series {
			px, py, have := 0.0, 0.0, false
			for i, v := range s.Values {
				if i < len(s.Missing) && s.Missing[i] {
					have = false
					continue
				}
				x, yy := left+slot*(float64(i)+0.5), y(v)
				if have {
					l.Lines = append(l.Lines, Segment{X1: px, Y1: py, X2: x, Y2: yy, Colour: s.Colour, Width: fontSize / 6})
				}
				d := fontSize * 0.35
				l.Dots = append(l.Dots, Rect{X: x - d/2, Y: yy - d/2, W: d, H: d, Colour: s.Colour})
				px, py, have = x, yy, true
			}
		}
	} else {
		bw := slot * 0.64
		for i := range n {
			base := 0.0
			for _, s := range c.Series {
				if i >= len(s.Values) || s.Values[i] <= 0 {
					continue
				}
				y0, y1 := y(base), y(base+s.Values[i])
				l.Bars = append(l.Bars, Rect{X: left + slot*float64(i) + (slot-bw)/2, Y: y1, W: bw, H: y0 - y1, Colour: s.Colour})
				base += s.Values[i]
			}
		}
	}
	lx, ly := left, top+ph+fontSize*2.6
	for _, s := range c.Series {
		l.Legend = append(l.Legend, LegendItem{X: lx, Y: ly, Colour: s.Colour, S: s.Name})
		lx += fontSize * (1.8 + 0.62*float64(textWidth(s.Name)))
	}
	return l
}

// textWidth is a label's width in ems, wide characters counting two halves.
func textWidth(s string) float64 {
	w := 0.0
	for _, r := range s {
		if r > 0x2e80 {
			w += 1.6
		} else {
			w += 1
		}
	}
	return w
}

// niceScale returns the top of a scale holding max and its step: 1, 2 or 5
// times a power of ten, five steps at most.
func niceScale(max float64) (float64, float64) {
	if max <= 0 {
		return 5, 1
	}
	raw := max / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	if step < 1 {
		step = 1
	}
	return math.Ceil(max/step) * step, step
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return strconv.Itoa(int(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// Charts returns the charts of a report, in order.
func (f *Figures) Charts() []Chart {
	lang := f.Lang
	var labels []string
	for _, p := range f.Trend {
		labels = append(labels, shortLabel(p.Label))
	}
	series := func(names []string, prefix string, get func(PeriodFigures, int) float64, colour func(int, string) [3]uint8) []Series {
		var out []Series
		for j, n := range names {
			s := Series{Name: word(lang, prefix+n), Colour: colour(j, n)}
			for _, p := range f.Trend {
				s.Values = append(s.Values, get(p, j))
			}
			out = append(out, s)
		}
		return out
	}
	byPalette := func(j int, _ string) [3]uint8 { return Palette[j%len(Palette)] }
	bySeverity := func(_ int, n string) [3]uint8 { return seriesColours[n] }
	countAt := func(cs []Count, j int) float64 {
		if j < len(cs) {
			return float64(cs[j].Count)
		}
		return 0
	}
	var charts []Chart
	charts = append(charts, Chart{Title: word(lang, "trend.alerts"), Labels: labels,
		Series: series(Families, "family.", func(p PeriodFigures, j int) float64 { return countAt(p.Alerts, j) }, byPalette)})
	charts = append(charts, Chart{Title: word(lang, "trend.incidents"), Labels: labels,
		Series: series([]string{"1", "2", "3"}, "grade.", func(p PeriodFigures, j int) float64 { return float64(p.Incidents[j]) },
			func(j int, _ string) [3]uint8 {
				return [][3]uint8{seriesColours["critical"], seriesColours["high"], seriesColours["medium"]}[j]
			})})
	charts = append(charts, Chart{Title: word(lang, "trend.vulns"), Labels: labels,
		Series: series(Severities, "severity.", func(p PeriodFigures, j int) float64 { return countAt(p.VulnsOpen, j) }, bySeverity)})
	training := Chart{Title: word(lang, "trend.training"), Labels: labels, Line: true, Max: 100}
	ts := Series{Name: word(lang, "training"), Colour: Palette[0]}
	for _, p := range f.Trend {
		ts.Values = append(ts.Values, float64(max(p.TrainingCoverage, 0)))
		ts.Missing = append(ts.Missing, p.TrainingCoverage < 0)
	}
	training.Series = []Series{ts}
	charts = append(charts, training)
	compliance := Chart{Title: word(lang, "trend.compliance"), Labels: labels, Line: true, Max: 100}
	cs := Series{Name: word(lang, "compliance"), Colour: Palette[3]}
	any := false
	for _, p := range f.Trend {
		v := 0.0
		if p.Compliance != nil {
			v, any = float64(*p.Compliance), true
		}
		cs.Values = append(cs.Values, v)
		cs.Missing = append(cs.Missing, p.Compliance == nil)
	}
	compliance.Series = []Series{cs}
	if !any {
		compliance.Note = word(lang, "compliance.none")
	}
	charts = append(charts, compliance)
	charts = append(charts, Chart{Title: word(lang, "trend.risks"), Labels: labels,
		Series: series(RiskLevels, "level.", func(p PeriodFigures, j int) float64 { return countAt(p.Risks, j) }, bySeverity)})
	ages := Chart{Title: word(lang, "vuln_ages"), Labels: AgeBuckets}
	for j, s := range Severities {
		sr := Series{Name: word(lang, "severity."+s), Colour: seriesColours[s]}
		for _, row := range f.VulnAges {
			sr.Values = append(sr.Values, float64(row.Counts[j]))
		}
		ages.Series = append(ages.Series, sr)
	}
	if len(f.VulnAges) == 0 {
		ages.Labels = nil
		ages.Note = word(lang, "none")
	}
	charts = append(charts, ages)
	return charts
}

// shortLabel shortens a period's label for an axis: W49, 12, Q4 (the year
// shown where it changes would crowd the axis; the table has it).
func shortLabel(l string) string {
	if len(l) > 5 && l[4] == '-' {
		return l[2:]
	}
	return l
}
