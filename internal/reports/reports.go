package reports

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the reports' table.
func Schema() storage.Schema { return storage.NewSchema("reports", migrations, "migrations") }

// The triggers of a report.
const (
	Scheduled = "scheduled"
	OnDemand  = "on_demand"
)

// Config holds the reports' settings.
type Config struct {
	// Hospital is the hospital's name on every report.
	Hospital string
	// Location is the hospital's zone: periods begin at its midnight.
	Location *time.Location
	// Lang is the language of scheduled reports (default zh-CN).
	Lang string
	// FontPath is the CJK TrueType font of the PDFs (default DefaultFont).
	FontPath string
	// Kinds are the kinds generated on schedule (default all).
	Kinds []string
	// RuleName, if set, names a detection rule in a language ("" when it
	// has no name there: the report shows its code).
	RuleName func(lang, rule string) string
}

// Service keeps the posture reports.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config
	pdf      *Renderer

	mu          sync.Mutex
	src         Sources
	onGenerated []func(context.Context, Report, []byte)
}

// New returns the reports' service.
func New(db *storage.DB, g *gate.Gate, id *identity.Service, cfg Config) *Service {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	cfg.Lang = Lang(cfg.Lang)
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = Kinds
	}
	if cfg.Hospital == "" {
		cfg.Hospital = "medguard"
	}
	return &Service{db: db, gate: g, identity: id, clock: g.Clock(), cfg: cfg, pdf: &Renderer{FontPath: cfg.FontPath}}
}

// Config returns the settings in force.
func (s *Service) Config() Config { return s.cfg }

// CheckFont reads the report font, so that serve says at start when it is
// missing.
func (s *Service) CheckFont() error {
	_, err := s.pdf.Font()
	return err
}

// SetSources sets where the figures come from (the App, while wiring).
func (s *Service) SetSources(src Sources) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
}

// Sources returns where the figures come from.
func (s *Service) Sources() Sources {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src
}

// OnGenerated adds a hook told of every report generated on schedule, with
// its PDF (the App mails it).
func (s *Service) OnGenerated(hook func(context.Context, Report, []byte)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onGenerated = append(s.onGenerated, hook)
}

// Report is a generated report, as listed.
type Report struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Label       string    `json:"label"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Lang        string    `json:"lang"`
	// Trigger is scheduled or on_demand.
	Trigger string `json:"trigger"`
	// Partial is true when the period had not ended at generation.
	Partial     bool      `json:"partial"`
	GeneratedAt time.Time `json:"generated_at"`
	// GeneratedBy is the username who asked for it, or "system".
	GeneratedBy string `json:"generated_by"`
	// ContentSHA256 is the SHA-256 of its figures (shown in the
	// documents); HTMLSHA256 and PDFSHA256 those of the documents, the
	// PDF's being the target of the report.generate audit entry at
	// AuditIndex.
	ContentSHA256 string     `json:"content_sha256"`
	HTMLSHA256    string     `json:"html_sha256"`
	PDFSHA256     string     `json:"pdf_sha256"`
	HTMLSize      int        `json:"html_size"`
	PDFSize       int        `json:"pdf_size"`
	AuditIndex    uint64     `json:"audit_index"`
	MailedAt      *time.Time `json:"mailed_at,omitempty"`
	MailError     string     `json:"mail_error,omitempty"`
	// Figures are the report's content (a single report only).
	Figures *Figures `json:"figures,omitempty"`
}

// Request asks for a report on demand (the body of POST /api/v1/reports).
type Request struct {
	// Kind is weekly, monthly or quarterly.
	Kind string `json:"kind"`
	// Period names the period: its label (2026-W49, 2026-12, 2026-Q4) or a
	// day in it (2026-12-06); empty for the current one (to date).
	Period string `json:"period,omitempty"`
	// Lang is zh-CN (default) or en.
	Lang string `json:"lang,omitempty"`
}

var (
	weekLabel    = regexp.MustCompile(`^(\d{4})-W(\d{2})$`)
	monthLabel   = regexp.MustCompile(`^(\d{4})-(\d{2})$`)
	quarterLabel = regexp.MustCompile(`^(\d{4})-Q([1-4])$`)
)

// ParsePeriod returns the period of kind named by v (a label or a day;
// empty: the one holding now), which must have begun by now.
func ParsePeriod(kind, v string, now time.Time, loc *time.Location) (Period, error) {
	if !slices.Contains(Kinds, kind) {
		return Period{}, medguard.InvalidField("kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	}
	v = strings.TrimSpace(v)
	var at time.Time
	bad := medguard.InvalidField("period", "period must be a %s label (e.g. %s) or a day (YYYY-MM-DD)", kind, PeriodOf(kind, now, loc).Label)
	switch {
	case v == "":
		at = now
	case len(v) == 10:
		d, err := time.ParseInLocation("2006-01-02", v, loc)
		if err != nil {
			return Period{}, bad
		}
		at = d
	case kind == Weekly && weekLabel.MatchString(v):
		m := weekLabel.FindStringSubmatch(v)
		y, _ := strconv.Atoi(m[1])
		w, _ := strconv.Atoi(m[2])
		// The ISO week holding 4 January is week 1.
		jan4 := time.Date(y, 1, 4, 12, 0, 0, 0, loc)
		at = PeriodOf(Weekly, jan4, loc).Start.AddDate(0, 0, 7*(w-1)+1)
		if yy, ww := at.ISOWeek(); yy != y || ww != w {
			return Period{}, bad
		}
	case kind == Monthly && monthLabel.MatchString(v):
		m := monthLabel.FindStringSubmatch(v)
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if mo < 1 || mo > 12 {
			return Period{}, bad
		}
		at = time.Date(y, time.Month(mo), 1, 12, 0, 0, 0, loc)
	case kind == Quarterly && quarterLabel.MatchString(v):
		m := quarterLabel.FindStringSubmatch(v)
		y, _ := strconv.Atoi(m[1])
		q, _ := strconv.Atoi(m[2])
		at = time.Date(y, time.Month(q*3-2), 1, 12, 0, 0, 0, loc)
	default:
		return Period{}, bad
	}
	p := PeriodOf(kind, at, loc)
	if !p.Start.Before(now) {
		return Period{}, medguard.InvalidField("period", "period %s has not begun", p.Label)
	}
	if p.Start.Year() < 2000 {
		return Period{}, bad
	}
	return p, nil
}

// system is medguard itself, generating scheduled reports.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}

// errMade is a scheduled report another server made first.
var errMade = gate.ErrAnnounced

// built is a report rendered, ready to store.
type built struct {
	r         Report
	figures   []byte
	html, pdf []byte
}

// build computes and renders the report of p at now.
func (s *Service) build(ctx context.Context, p Period, lang, trigger, by, byName string, now time.Time) (*built, error) {
	f, err := Compute(ctx, s.Sources(), s.cfg.Hospital, lang, p, now)
	if err != nil {
		return nil, medguard.Wrap("reports.build", err)
	}
	f.GeneratedBy = byName
	if s.cfg.RuleName != nil {
		for i := range f.AlertRules {
			f.AlertRules[i].Title = s.cfg.RuleName(f.Lang, f.AlertRules[i].Name)
		}
	}
	digest, err := f.ContentDigest()
	if err != nil {
		return nil, medguard.Wrap("reports.build", err)
	}
	// Times are shown in the period's zone: the hospital's.
	loc := p.Start.Location()
	html, err := f.HTML(loc, digest)
	if err != nil {
		return nil, medguard.Wrap("reports.build", err)
	}
	pdf, err := s.pdf.PDF(f, loc, digest)
	if err != nil {
		return nil, &medguard.Error{Kind: medguard.Internal, Code: "report_font_missing", Message: err.Error()}
	}
	figures, err := json.Marshal(f)
	if err != nil {
		return nil, medguard.Wrap("reports.build", err)
	}
	b := &built{figures: figures, html: html, pdf: pdf}
	b.r = Report{ID: medguard.NewID(now), Kind: p.Kind, Label: p.Label, PeriodStart: p.Start.UTC(), PeriodEnd: p.End.UTC(), Lang: f.Lang,
		Trigger: trigger, Partial: f.Partial, GeneratedAt: f.GeneratedAt, GeneratedBy: by, ContentSHA256: digest,
		HTMLSHA256: hexSum(html), PDFSHA256: hexSum(pdf), HTMLSize: len(html), PDFSize: len(pdf)}
	return b, nil
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// insert stores a built report in tx, signed by the audit entry at index.
func (s *Service) insert(ctx context.Context, tx *sql.Tx, b *built, slot string, index uint64) error {
	r := b.r
	if r.Trigger == Scheduled {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM reports WHERE slot = $1`, slot).Scan(&one)
		if err == nil {
			return errMade
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	partial := 0
	if r.Partial {
		partial = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO reports (id, kind, label, period_start, period_end, lang, trigger_kind, slot, partial,
		generated_at, generated_by, figures, content_sha256, html, pdf, html_sha256, pdf_sha256, audit_index, mail_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, '')`,
		r.ID, r.Kind, r.Label, medguard.Millis(r.PeriodStart), medguard.Millis(r.PeriodEnd), r.Lang, r.Trigger, slot, partial,
		medguard.Millis(r.GeneratedAt), r.GeneratedBy, string(b.figures), r.ContentSHA256, b.html, b.pdf, r.HTMLSHA256, r.PDFSHA256,
		int64(index))
	if storage.IsConflict(err) && r.Trigger == Scheduled {
		return errMade
	}
	return err
}

// reportPDF is the audit target of a report's generation: the PDF, by its
// SHA-256, so that the log itself signs the document.
func reportPDF(sum string) policy.Resource { return policy.Resource{Type: "report_pdf", ID: sum} }

// Generate generates a report on demand (report.generate) and stores it;
// the audit entry report.generate names the PDF's SHA-256.
func (s *Service) Generate(ctx context.Context, call *medguard.Call, in Request) (*Report, error) {
	now := s.clock.Now()
	lead := gate.Passage{Call: call, Action: policy.ReportGenerate, AuditAction: "report.generate", Resource: policy.Resource{Type: "report"}}
	if d := s.gate.Check(lead); !d.Allowed {
		// Refused before any figure is computed; logged as refused.
		_, _, err := s.gate.Enter(ctx, lead, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
		return nil, err
	}
	p, err := ParsePeriod(in.Kind, in.Period, now, s.cfg.Location)
	if err != nil {
		return nil, err
	}
	if in.Lang != "" && !slices.Contains(Languages, in.Lang) {
		return nil, medguard.InvalidField("lang", "lang must be one of %s", strings.Join(Languages, ", "))
	}
	name := call.Actor.Name
	if s.identity != nil {
		if u, err := s.identity.UserByUsername(ctx, call.Actor.Name); err == nil && u.DisplayName != "" {
			name = u.DisplayName
		}
	}
	b, err := s.build(ctx, p, Lang(in.Lang), OnDemand, call.Actor.Name, name, now)
	if err != nil {
		// A report that could not be made (the font missing, a register
		// failing) is logged with its outcome.
		_, _, gerr := s.gate.Enter(ctx, lead, func(policy.Decision) (audit.Mutation, error) { return nil, err })
		return nil, gerr
	}
	lead.Resource = reportPDF(b.r.PDFSHA256)
	_, rec, err := s.gate.Enter(ctx, lead, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			b.r.AuditIndex = index
			return s.insert(ctx, tx, b, b.r.ID, index)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	b.r.AuditIndex = rec.Index
	return &b.r, nil
}

// slot is the unique slot of a scheduled report.
func slot(p Period) string { return Scheduled + ":" + p.Kind + ":" + p.Label }

// CatchUp generates, as medguard itself, the scheduled report of each
// kind's last complete period that has none yet — the one due today, or
// one missed while the server was down — once, also when several servers
// check at the same time. It returns the reports it made; each is passed
// to the OnGenerated hooks with its PDF.
func (s *Service) CatchUp(ctx context.Context) ([]Report, error) {
	now := s.clock.Now()
	var made []Report
	for _, kind := range s.cfg.Kinds {
		p := LastComplete(kind, now, s.cfg.Location)
		var one int
		err := s.db.QueryRowContext(ctx, `SELECT 1 FROM reports WHERE slot = $1`, slot(p)).Scan(&one)
		if err == nil {
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return made, medguard.Wrap("reports.CatchUp", err)
		}
		r, pdf, err := s.generateScheduled(ctx, p, now)
		if errors.Is(err, errMade) {
			continue
		}
		if err != nil {
			return made, err
		}
		made = append(made, *r)
		s.mu.Lock()
		hooks := slices.Clone(s.onGenerated)
		s.mu.Unlock()
		for _, h := range hooks {
			h(ctx, *r, pdf)
		}
	}
	return made, nil
}

func (s *Service) generateScheduled(ctx context.Context, p Period, now time.Time) (*Report, []byte, error) {
	b, err := s.build(ctx, p, s.cfg.Lang, Scheduled, system.Actor.Name, "", now)
	if err != nil {
		return nil, nil, err
	}
	call := system
	rec, err := s.gate.Record(ctx, gate.Event{Call: &call, Action: "report.generate", TargetType: "report_pdf", TargetID: b.r.PDFSHA256,
		Allowed: true, Rule: "allow.system.schedule:report_" + p.Kind}, func(ctx context.Context, tx *sql.Tx, index uint64) error {
		return s.insert(ctx, tx, b, slot(p), index)
	})
	if err != nil {
		return nil, nil, err
	}
	b.r.AuditIndex = rec.Index
	return &b.r, b.pdf, nil
}

// GenerateAt generates, as medguard itself, the scheduled report of
// period p as if at now (the demo fills a year of them); a period that has
// its report already is skipped (nil).
func (s *Service) GenerateAt(ctx context.Context, p Period, now time.Time) (*Report, error) {
	r, _, err := s.generateScheduled(ctx, p, now)
	if errors.Is(err, errMade) {
		return nil, nil
	}
	return r, err
}

// Run catches up at once and then every interval until ctx ends, passing
// failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CatchUp(ctx)
		return err
	}, onError)
}

const reportColumns = `id, kind, label, period_start, period_end, lang, trigger_kind, partial, generated_at, generated_by,
	content_sha256, html_sha256, pdf_sha256, length(html), length(pdf), audit_index, mailed_at, mail_error`

func scanReport(sc interface{ Scan(...any) error }) (*Report, error) {
	var r Report
	var start, end, at, index int64
	var partial int
	var mailed sql.NullInt64
	if err := sc.Scan(&r.ID, &r.Kind, &r.Label, &start, &end, &r.Lang, &r.Trigger, &partial, &at, &r.GeneratedBy,
		&r.ContentSHA256, &r.HTMLSHA256, &r.PDFSHA256, &r.HTMLSize, &r.PDFSize, &index, &mailed, &r.MailError); err != nil {
		return nil, err
	}
	r.PeriodStart, r.PeriodEnd, r.GeneratedAt = medguard.FromMillis(start), medguard.FromMillis(end), medguard.FromMillis(at)
	r.Partial, r.AuditIndex = partial != 0, uint64(index)
	if mailed.Valid {
		t := medguard.FromMillis(mailed.Int64)
		r.MailedAt = &t
	}
	return &r, nil
}

// Query filters the list. The zero value lists every report.
type Query struct {
	Kind string
	// After is the cursor (a report's id: newest first) and Limit the page.
	After string
	Limit int
}

// List lists the reports, newest first (report.read).
func (s *Service) List(ctx context.Context, call *medguard.Call, q Query) ([]Report, string, error) {
	switch {
	case q.Kind != "" && !slices.Contains(Kinds, q.Kind):
		return nil, "", medguard.InvalidField("kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	case q.After != "" && !medguard.ValidID(q.After):
		return nil, "", medguard.InvalidField("cursor", "cursor is not one this server gave out")
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 500
	}
	var where storage.Where
	if q.Kind != "" {
		where.Add("kind = ?", q.Kind)
	}
	if q.After != "" {
		where.Add("id < ?", q.After)
	}
	query := `SELECT ` + reportColumns + ` FROM reports WHERE ` + where.String() + ` ORDER BY id DESC`
	var out []Report
	var next string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ReportRead, AuditAction: "report.list",
		Resource: policy.Resource{Type: "report"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, next, err = storage.Page(ctx, s.db, query, &where, q.Limit, func(rows *sql.Rows) (Report, error) {
			r, err := scanReport(rows)
			if err != nil {
				return Report{}, err
			}
			return *r, nil
		}, func(r Report) string { return r.ID })
		return nil, err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

var errNoReport = &medguard.Error{Kind: medguard.NotFound, Message: "no such report"}

// The formats a report is downloaded in.
const (
	FormatHTML = "html"
	FormatPDF  = "pdf"
)

// read passes the gate for one report (report.read) and reads it within;
// a missing report is logged and answered 404.
func (s *Service) read(ctx context.Context, call *medguard.Call, action, id string, read func(*Report) error) (*Report, error) {
	var r *Report
	missing := !medguard.ValidID(id)
	if !missing {
		var err error
		r, err = scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+` FROM reports WHERE id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			missing = true
		} else if err != nil {
			return nil, medguard.Wrap("reports.read", err)
		}
	}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ReportRead, AuditAction: action,
		Resource: policy.Resource{Type: "report", ID: id, Missing: missing}}, func(policy.Decision) (audit.Mutation, error) {
		if missing {
			return nil, errNoReport
		}
		return nil, read(r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Get returns a report with its figures (report.read).
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Report, error) {
	return s.read(ctx, call, "report.read", id, func(r *Report) error {
		var text string
		if err := s.db.QueryRowContext(ctx, `SELECT figures FROM reports WHERE id = $1`, r.ID).Scan(&text); err != nil {
			return err
		}
		r.Figures = &Figures{}
		return json.Unmarshal([]byte(text), r.Figures)
	})
}

// Download returns a report's HTML or PDF as generated (report.read,
// audited as report.download).
func (s *Service) Download(ctx context.Context, call *medguard.Call, id, format string) (*Report, []byte, error) {
	if format != FormatHTML && format != FormatPDF {
		return nil, nil, medguard.InvalidField("format", "format must be html or pdf")
	}
	var body []byte
	r, err := s.read(ctx, call, "report.download", id, func(r *Report) error {
		return s.db.QueryRowContext(ctx, `SELECT `+format+` FROM reports WHERE id = $1`, r.ID).Scan(&body)
	})
	if err != nil {
		return nil, nil, err
	}
	return r, body, nil
}

// Mailed records, as medguard itself, that a report was mailed to
// recipients or that mailing failed (report.mail, audited).
func (s *Service) Mailed(ctx context.Context, id string, recipients int, sendErr error) error {
	now := s.clock.Now()
	call := system
	ev := gate.Event{Call: &call, Action: "report.mail", TargetType: "report", TargetID: id, Allowed: true, Rule: "allow.system.delivery",
		Count: recipients}
	msg := ""
	if sendErr != nil {
		ev.Outcome = audit.Failed
		msg = sendErr.Error()
		if len(msg) > 300 {
			msg = msg[:300]
		}
	}
	_, err := s.gate.Record(ctx, ev, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if sendErr != nil {
			_, err := tx.ExecContext(ctx, `UPDATE reports SET mail_error = $1 WHERE id = $2`, msg, id)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE reports SET mailed_at = $1, mail_error = '' WHERE id = $2`, medguard.Millis(now), id)
		return err
	})
	return err
}

// FileName is a report's file name for a download: its kind and period.
func (r *Report) FileName(format string) string {
	return fmt.Sprintf("posture-%s-%s.%s", r.Kind, r.Label, format)
}
