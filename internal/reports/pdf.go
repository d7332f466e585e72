package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"codeberg.org/go-pdf/fpdf"
)

// DefaultFont is the CJK TrueType font reports are written in: Droid Sans
// Fallback, from the Debian package fonts-droid-fallback (the Noto CJK
// .ttc collections are not TrueType files fpdf reads).
const DefaultFont = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

// Renderer writes reports as PDF in a CJK TrueType font.
type Renderer struct {
	// FontPath is the font's file (default DefaultFont).
	FontPath string

	once sync.Once
	font []byte
	err  error
}

// ErrNoFont is returned (wrapped) when the report font cannot be read.
var ErrNoFont = errors.New("reports: the report font is missing")

// Font reads the font once; an error says how to install it.
func (r *Renderer) Font() ([]byte, error) {
	r.once.Do(func() {
		path := r.FontPath
		if path == "" {
			path = DefaultFont
		}
		r.font, r.err = os.ReadFile(path)
		switch {
		case errors.Is(r.err, fs.ErrNotExist):
			r.err = fmt.Errorf("%w: %s does not exist (install the Debian package fonts-droid-fallback, or name a CJK TrueType font with --report-font)", ErrNoFont, path)
		case r.err != nil:
			r.err = fmt.Errorf("%w: %s: %v", ErrNoFont, path, r.err)
		case len(r.font) < 12 || !(bytes.HasPrefix(r.font, []byte{0, 1, 0, 0}) || bytes.HasPrefix(r.font, []byte("true"))):
			r.err = fmt.Errorf("%w: %s is not a TrueType font (a .ttc collection or OpenType CFF font is not read; use DroidSansFallbackFull.ttf from fonts-droid-fallback)", ErrNoFont, path)
			r.font = nil
		}
	})
	return r.font, r.err
}

// page sizes, in millimetres.
const (
	pageW, pageH = 210.0, 297.0
	margin       = 16.0
	bodyW        = pageW - 2*margin
	fontName     = "cjk"
)

// doc is a PDF being written.
type doc struct {
	*fpdf.Fpdf
	lang string
	// size is the text's size in points.
	size float64
}

func (r *Renderer) newDoc(lang, title, hospital string, at time.Time) (*doc, error) {
	font, err := r.Font()
	if err != nil {
		return nil, err
	}
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCreationDate(at)
	p.SetModificationDate(at)
	p.SetCatalogSort(true)
	p.SetProducer("medguard", false)
	p.SetTitle(title, true)
	p.SetAuthor(hospital, true)
	p.AddUTF8FontFromBytes(fontName, "", font)
	p.SetMargins(margin, margin, margin)
	p.SetAutoPageBreak(true, margin+6)
	d := &doc{Fpdf: p, lang: lang}
	p.SetFooterFunc(func() {
		d.text(8, muted)
		y := pageH - margin
		d.draw(margin, y, hospital+" | "+title)
		pn := word(lang, "page", p.PageNo())
		d.draw(margin+bodyW-d.width(pn), y, pn)
	})
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoFont, err)
	}
	return d, nil
}

func (d *doc) text(size float64, rgb [3]uint8) {
	d.size = size
	d.SetFont(fontName, "", size)
	d.SetTextColor(int(rgb[0]), int(rgb[1]), int(rgb[2]))
}

// Droid Sans Fallback holds the CJK characters but no Latin letters or
// digits: text is written in runs, ASCII in Helvetica (a PDF core font)
// and the rest in the CJK font.
type run struct {
	latin bool
	s     string
}

func runs(s string) []run {
	var out []run
	for _, r := range s {
		latin := r < 0x80
		if len(out) == 0 || out[len(out)-1].latin != latin {
			out = append(out, run{latin: latin})
		}
		out[len(out)-1].s += string(r)
	}
	return out
}

func (d *doc) font(latin bool) {
	if latin {
		d.SetFont("Helvetica", "", d.size)
	} else {
		d.SetFont(fontName, "", d.size)
	}
}

// width is the width of s at the current size.
func (d *doc) width(s string) float64 {
	w := 0.0
	for _, r := range runs(s) {
		d.font(r.latin)
		w += d.GetStringWidth(r.s)
	}
	return w
}

// draw writes s from x on the baseline y.
func (d *doc) draw(x, y float64, s string) {
	for _, r := range runs(s) {
		d.font(r.latin)
		d.Text(x, y, r.s)
		x += d.GetStringWidth(r.s)
	}
}

// line writes s on a line of height h across w at the current position,
// aligned L, C or R, and moves to the next line.
func (d *doc) line(w, h float64, s, align string) {
	x, y := d.GetX(), d.GetY()
	switch tw := d.width(s); align {
	case "C":
		x += (w - tw) / 2
	case "R":
		x += w - tw
	}
	d.draw(x, y+h/2+d.size*0.35*25.4/72, s)
	d.SetXY(margin, y+h)
}

// wrap splits s into lines at most w wide (and at its line breaks).
func (d *doc) wrap(s string, w float64) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		cur := ""
		for _, r := range para {
			if cur != "" && d.width(cur+string(r)) > w {
				// Break Latin text at its last space if there is one.
				if i := strings.LastIndexByte(cur, ' '); i > 0 && r < 0x80 && r != ' ' {
					out = append(out, cur[:i])
					cur = cur[i+1:]
				} else {
					out = append(out, cur)
					cur = ""
				}
			}
			cur += string(r)
		}
		out = append(out, cur)
	}
	return out
}

var (
	dark  = [3]uint8{0x11, 0x11, 0x11}
	muted = [3]uint8{0x55, 0x55, 0x55}
	rule  = [3]uint8{0xbb, 0xbb, 0xbb}
)

// heading writes a section's heading with a rule under it.
func (d *doc) heading(s string) {
	d.Ln(3)
	d.text(13, dark)
	d.line(bodyW, 8, s, "L")
	y := d.GetY()
	d.SetDrawColor(int(rule[0]), int(rule[1]), int(rule[2]))
	d.SetLineWidth(0.3)
	d.Line(margin, y, margin+bodyW, y)
	d.Ln(2)
}

// table writes rows of cells, the first column of width first.
func (d *doc) table(rows [][]string, widths []float64, header bool) {
	d.SetDrawColor(int(rule[0]), int(rule[1]), int(rule[2]))
	d.SetLineWidth(0.2)
	for i, row := range rows {
		d.text(9, dark)
		h := 6.0
		// Rows whose text is longer than a cell grow to hold its lines.
		lines := 1
		for j, c := range row {
			if n := len(d.wrap(c, widths[j]-2)); n > lines {
				lines = n
			}
		}
		h = max(h, float64(lines)*4.6+1.4)
		if d.GetY()+h > pageH-margin-8 {
			d.AddPage()
		}
		x, y := d.GetX(), d.GetY()
		for j, c := range row {
			if header && i == 0 {
				d.SetFillColor(0xee, 0xf2, 0xf7)
				d.Rect(x, y, widths[j], h, "FD")
			} else {
				d.Rect(x, y, widths[j], h, "D")
			}
			for k, ln := range d.wrap(c, widths[j]-2) {
				d.draw(x+1, y+0.7+4.6*float64(k)+3.4, ln)
			}
			x += widths[j]
		}
		d.SetXY(margin, y+h)
	}
}

// chart draws c in a box of w × h at the current position, with its title
// above.
func (d *doc) chart(c Chart, w, h float64) {
	if d.GetY()+h+10 > pageH-margin-8 {
		d.AddPage()
	}
	d.text(10.5, dark)
	d.line(w, 6, c.Title, "L")
	x0, y0 := margin, d.GetY()
	if c.Note != "" || len(c.Labels) == 0 {
		d.text(9, muted)
		note := c.Note
		if note == "" {
			note = word(d.lang, "none")
		}
		d.line(w, 8, note, "L")
		return
	}
	fs := 3.0 // labels' size, in millimetres (about 8.5 pt)
	l := c.Layout(w, h, fs)
	seg := func(s Segment) {
		d.SetDrawColor(int(s.Colour[0]), int(s.Colour[1]), int(s.Colour[2]))
		d.SetLineWidth(s.Width)
		d.Line(x0+s.X1, y0+s.Y1, x0+s.X2, y0+s.Y2)
	}
	rect := func(r Rect) {
		d.SetFillColor(int(r.Colour[0]), int(r.Colour[1]), int(r.Colour[2]))
		d.Rect(x0+r.X, y0+r.Y, r.W, r.H, "F")
	}
	for _, s := range l.Grid {
		seg(s)
	}
	for _, r := range l.Bars {
		rect(r)
	}
	for _, s := range l.Lines {
		seg(s)
	}
	for _, r := range l.Dots {
		rect(r)
	}
	for _, s := range l.Axes {
		seg(s)
	}
	d.text(fs*72/25.4, dark)
	for _, t := range l.Labels {
		x := x0 + t.X
		switch t.Anchor {
		case "end":
			x -= d.width(t.S)
		case "middle":
			x -= d.width(t.S) / 2
		}
		d.draw(x, y0+t.Y, t.S)
	}
	for _, it := range l.Legend {
		rect(Rect{X: it.X, Y: it.Y - fs*0.8, W: fs, H: fs, Colour: it.Colour})
		d.draw(x0+it.X+fs*1.4, y0+it.Y, it.S)
	}
	d.SetXY(margin, y0+h+2)
}

// PDF renders the report; digest is the SHA-256 of its content
// (ContentDigest), printed on its last page.
func (r *Renderer) PDF(f *Figures, loc *time.Location, digest string) ([]byte, error) {
	l := f.Lang
	d, err := r.newDoc(l, f.Title(), f.Hospital, f.GeneratedAt)
	if err != nil {
		return nil, err
	}
	by := f.GeneratedBy
	if by == "" {
		by = word(l, "scheduled")
	}
	// The cover: hospital, title, period, when and by whom, the headline.
	d.AddPage()
	d.Ln(18)
	d.text(15, muted)
	d.line(bodyW, 9, f.Hospital, "C")
	d.Ln(4)
	d.text(26, dark)
	d.line(bodyW, 14, f.Title(), "C")
	d.Ln(2)
	d.text(12, dark)
	d.line(bodyW, 7, word(l, "period")+"："+periodText(f.Period, loc), "C")
	if f.Partial {
		d.text(9, muted)
		d.line(bodyW, 6, word(l, "partial"), "C")
	}
	d.text(10, muted)
	d.line(bodyW, 6, word(l, "generated_at")+"："+when(f.GeneratedAt, loc)+"    "+word(l, "generated_by")+"："+by, "C")
	d.line(bodyW, 6, word(l, "for"), "C")
	d.Ln(8)
	d.heading(word(l, "headline"))
	var rows [][]string
	for _, h := range f.Headline(loc) {
		rows = append(rows, []string{h.Name, h.Value})
	}
	d.table(rows, []float64{50, bodyW - 50}, false)

	// The trends: two charts a page, each with its figures under it.
	d.AddPage()
	d.heading(trendsWord(l))
	for _, c := range f.Charts() {
		d.chart(c, bodyW, 62)
		if c.Note != "" || len(c.Labels) == 0 {
			continue
		}
		head := append([]string{""}, c.Labels...)
		tab := [][]string{head}
		for _, s := range c.Series {
			row := []string{s.Name}
			for i, v := range s.Values {
				if i < len(s.Missing) && s.Missing[i] {
					row = append(row, "-")
				} else {
					row = append(row, num(v))
				}
			}
			tab = append(tab, row)
		}
		first := 26.0
		cw := (bodyW - first) / float64(len(c.Labels))
		widths := []float64{first}
		for range c.Labels {
			widths = append(widths, cw)
		}
		d.table(tab, widths, true)
		d.Ln(4)
	}

	// The period's alerts by rule, the note, and the content's digest.
	d.heading(word(l, "alert_rules"))
	if len(f.AlertRules) == 0 {
		d.text(10, muted)
		d.line(bodyW, 6, word(l, "none"), "L")
	} else {
		rows = [][]string{{word(l, "alerts"), word(l, "count")}}
		for _, a := range f.AlertRules {
			name := a.Name
			if a.Title != "" {
				name = a.Title
			}
			rows = append(rows, []string{name, fmt.Sprint(a.Count)})
		}
		d.table(rows, []float64{bodyW - 30, 30}, true)
	}
	d.finish(l, digest)
	return d.bytes()
}

// finish writes the closing note and the digest.
func (d *doc) finish(lang, digest string) {
	d.Ln(6)
	d.text(9, muted)
	d.line(bodyW, 5, word(lang, "note"), "L")
	if digest != "" {
		d.line(bodyW, 5, word(lang, "sha256")+"：", "L")
		d.line(bodyW, 5, digest, "L")
	}
}

func (d *doc) bytes() ([]byte, error) {
	var b bytes.Buffer
	if err := d.Output(&b); err != nil {
		return nil, fmt.Errorf("reports: writing the PDF: %w", err)
	}
	return b.Bytes(), nil
}

// ComplianceInput is a compliance report as the compliance register hands
// it over for its PDF (GET /api/v1/compliance/report?format=pdf).
type ComplianceInput struct {
	Hospital    string
	GeneratedAt time.Time
	// Location is the zone times are shown in (default UTC).
	Location *time.Location
	Checks   []ComplianceCheck
}

// ComplianceCheck is one check of a compliance report.
type ComplianceCheck struct {
	ID      string
	TitleZH string
	TitleEN string
	Clauses []string
	// Status is pass, fail, not_applicable or needs_evidence.
	Status string
	Value  string
	// Evidence is the text of its evidence (a query's result, a link, the
	// attestation's note): counts and staff, never patients.
	Evidence string
	// Kind is measured (computed from live data) or attested (evidence
	// attached by a responsible person and signed by a reviewer).
	Kind string
}

var (
	defaultMu       sync.Mutex
	defaultRenderer = &Renderer{}
)

// UseFont sets the font of the package's default renderer (CompliancePDF);
// the App calls it with --report-font.
func UseFont(path string) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	defaultRenderer = &Renderer{FontPath: path}
}

// CompliancePDF renders a compliance report as PDF in lang (zh-CN or en)
// with the default renderer's font.
func CompliancePDF(lang string, in ComplianceInput) ([]byte, error) {
	defaultMu.Lock()
	r := defaultRenderer
	defaultMu.Unlock()
	return r.CompliancePDF(lang, in)
}

// statusColours colour a check's status.
var statusColours = map[string][3]uint8{
	"pass": {0x2e, 0x8b, 0x57}, "fail": {0xc0, 0x39, 0x2b}, "needs_evidence": {0xe0, 0x7b, 0x1a}, "not_applicable": {0x99, 0x99, 0x99},
}

// CompliancePDF renders a compliance report as PDF in lang: a cover with
// the summary as a bar, then every check with its clauses, status, value,
// evidence and kind (measured or attested).
func (r *Renderer) CompliancePDF(lang string, in ComplianceInput) ([]byte, error) {
	lang = Lang(lang)
	loc := in.Location
	if loc == nil {
		loc = time.UTC
	}
	title := word(lang, "title.compliance")
	d, err := r.newDoc(lang, title, in.Hospital, in.GeneratedAt)
	if err != nil {
		return nil, err
	}
	d.AddPage()
	d.text(13, muted)
	d.line(bodyW, 8, in.Hospital, "C")
	d.text(22, dark)
	d.line(bodyW, 12, title, "C")
	d.text(10, muted)
	d.line(bodyW, 6, word(lang, "generated_at")+"："+when(in.GeneratedAt, loc), "C")
	d.Ln(4)
	counts := map[string]int{}
	for _, c := range in.Checks {
		counts[c.Status]++
	}
	d.text(10.5, dark)
	d.line(bodyW, 6, word(lang, "summary", counts["pass"], counts["fail"], counts["needs_evidence"], counts["not_applicable"]), "L")
	// The summary as one bar, a segment per status.
	if n := len(in.Checks); n > 0 {
		x, y := margin, d.GetY()+1
		for _, st := range []string{"pass", "fail", "needs_evidence", "not_applicable"} {
			w := bodyW * float64(counts[st]) / float64(n)
			c := statusColours[st]
			d.SetFillColor(int(c[0]), int(c[1]), int(c[2]))
			d.Rect(x, y, w, 6, "F")
			x += w
		}
		d.SetY(y + 9)
	}
	rows := [][]string{{word(lang, "check"), word(lang, "clauses"), word(lang, "status"), word(lang, "value"), word(lang, "evidence")}}
	for _, c := range in.Checks {
		t := c.TitleZH
		if lang == "en" || t == "" {
			t = c.TitleEN
		}
		kind := c.Kind
		if kind != "" {
			kind = word(lang, "kind."+kind)
		}
		rows = append(rows, []string{c.ID + "\n" + t + "\n(" + kind + ")", strings.Join(c.Clauses, "\n"), word(lang, "status."+c.Status),
			c.Value, c.Evidence})
	}
	d.table(rows, []float64{42, 46, 18, 22, bodyW - 128}, true)
	d.finish(lang, "")
	return d.bytes()
}
