// Package compliance computes the compliance checks (合规检查, SPEC §10,
// issue 14): a catalogue of checks, kept as data (catalogue.yaml, embedded
// and versioned), each mapped to the clauses of GB/T 22239-2019 level 3,
// GB/T 39786-2021 level 3 and the seeds it evidences. Measured checks are
// computed from live data — never typed in — by reading the other
// registers through small interfaces (sources.go); each result carries its
// value, the list behind the number and a link to where it can be seen.
// Attested checks — what software cannot measure, a machine room's
// grounding — are evidence a responsible person attaches and a second
// person signs, due again when it expires.
//
// A run computes every check at one moment and keeps the results, so that
// trends can be drawn: once a hospital day from serve (across servers),
// and on demand. A measured check that turns to fail opens a
// rectification item (Rectifier) and raises an alert once; it is resolved
// when the check passes again.
//
// Every operation goes through the gate and into the audit log.
package compliance

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the compliance checks' tables.
func Schema() storage.Schema { return storage.NewSchema("compliance", migrations, "migrations") }

// FailedRule is the detection rule of the alert a failing check raises,
// keyed by the check's id.
const FailedRule = "compliance_check_failed"

// Finding is a measured check that turned to fail, for the rectification
// register.
type Finding struct {
	CheckID    string
	Title      Words
	Clauses    []string
	Value      string
	Reason     string
	Department string
	DetectedAt time.Time
	RunID      string
}

// Rectifier opens a rectification item (整改) for a failed check. It is
// defined here, where it is used; the rectification register implements
// it.
type Rectifier interface {
	OpenForCheck(ctx context.Context, f Finding) error
}

// Config holds the rules of the checks.
type Config struct {
	// Location is the hospital's time zone: a scheduled run happens once
	// per hospital day (default UTC).
	Location *time.Location
	// Catalogue is the catalogue of checks (default the embedded one).
	Catalogue *Catalogue
	// Logger receives what cannot be answered to anyone: a rectification
	// item that could not be opened (default: discarded).
	Logger *slog.Logger
}

// Service computes, keeps and shows the compliance checks.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config

	mu        sync.Mutex
	src       Sources
	rectifier Rectifier
	onFailing []func(context.Context, Finding)
	onPassing []func(ctx context.Context, checkID string)
}

// New returns the compliance checks.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, cfg Config) *Service {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Catalogue == nil {
		cfg.Catalogue = DefaultCatalogue()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, gate: g, keys: kr, identity: id, clock: g.Clock(), cfg: cfg}
}

// Catalogue returns the catalogue in force.
func (s *Service) Catalogue() *Catalogue { return s.cfg.Catalogue }

// SetSources sets what the measures read.
func (s *Service) SetSources(src Sources) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
}

// SetRectifier sets the rectification register (nil: no item is opened).
func (s *Service) SetRectifier(r Rectifier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rectifier = r
}

// OnFailing adds a hook told of each measured check that turned to fail.
func (s *Service) OnFailing(h func(context.Context, Finding)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onFailing = append(s.onFailing, h)
}

// OnPassing adds a hook told of each measured check that failed at the
// previous run and no longer does.
func (s *Service) OnPassing(h func(ctx context.Context, checkID string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPassing = append(s.onPassing, h)
}

// keyName is the system data key sealing this package's files and notes.
const keyName = "compliance"

var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// Run is one computation of every check.
type Run struct {
	ID               string    `json:"id"`
	At               time.Time `json:"at"`
	Trigger          string    `json:"trigger"`
	RunBy            string    `json:"run_by"`
	CatalogueVersion string    `json:"catalogue_version"`
	Pass             int       `json:"pass"`
	Fail             int       `json:"fail"`
	NotApplicable    int       `json:"not_applicable"`
	NeedsEvidence    int       `json:"needs_evidence"`
	// Score is the passing share of the applicable checks, 0–100.
	Score      float64  `json:"score"`
	AuditIndex uint64   `json:"audit_index"`
	Results    []Result `json:"results,omitempty"`
}

// The triggers of a run.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Score is the passing share of the applicable checks (0–100; 100 when
// nothing applies).
func Score(pass, fail, needsEvidence int) float64 {
	n := pass + fail + needsEvidence
	if n == 0 {
		return 100
	}
	return float64(pass*1000/n) / 10
}

// compute computes every check of the catalogue at now.
func (s *Service) compute(ctx context.Context, now time.Time) ([]Result, error) {
	s.mu.Lock()
	src := s.src
	s.mu.Unlock()
	e := &env{src: memo(src), now: now}
	att, err := s.inForce(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(s.cfg.Catalogue.Checks))
	for _, c := range s.cfg.Catalogue.Checks {
		r := Result{ID: c.ID, Kind: c.Kind, Clauses: c.Clauses, At: now, Evidence: Evidence{Items: []Item{}}}
		r.Evidence.Console, r.Evidence.API = links(c.ID)
		if c.Kind == Attested {
			attested(&r, att[c.ID], now)
		} else {
			m := measures[c.ID]
			if m == nil {
				return nil, medguard.Errorf(medguard.Internal, "compliance: no measure for %s", c.ID)
			}
			if err := m(ctx, e, &r); err != nil {
				// A source that cannot be read is a finding, not a crash:
				// the check fails and says why.
				r.Status, r.Value, r.Reason = Fail, "—", "could not be measured: "+medguard.Wrap("compliance."+c.ID, err).Error()
			}
		}
		if r.Evidence.Items == nil {
			r.Evidence.Items = []Item{}
		}
		out = append(out, r)
	}
	return out, nil
}

func tally(rs []Result) (pass, fail, na, ne int) {
	for _, r := range rs {
		switch r.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		case NotApplicable:
			na++
		case NeedsEvidence:
			ne++
		}
	}
	return
}

func newRun(rs []Result, now time.Time, trigger, by, version string) *Run {
	r := &Run{ID: medguard.NewID(now), At: now, Trigger: trigger, RunBy: by, CatalogueVersion: version, Results: rs}
	r.Pass, r.Fail, r.NotApplicable, r.NeedsEvidence = tally(rs)
	r.Score = Score(r.Pass, r.Fail, r.NeedsEvidence)
	return r
}

// store is the mutation that keeps a run and its results; day, if not
// empty, claims the hospital day of a scheduled run.
func store(run *Run, day string) audit.Mutation {
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		run.AuditIndex = index
		var sday any
		if day != "" {
			sday = day
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO compliance_runs (id, at, trigger_kind, run_by, scheduled_day, catalogue_version,
			passed, failed, not_applicable, needs_evidence, score_permille, audit_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (scheduled_day) DO NOTHING`,
			run.ID, medguard.Millis(run.At), run.Trigger, run.RunBy, sday, run.CatalogueVersion, run.Pass, run.Fail, run.NotApplicable,
			run.NeedsEvidence, int64(run.Score*10), int64(index))
		if err := storage.Affected(res, err, gate.ErrAnnounced); err != nil {
			return err
		}
		for _, r := range run.Results {
			b, err := json.Marshal(stripWords(r))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO compliance_results (run_id, check_id, at, status, value, result)
				VALUES ($1, $2, $3, $4, $5, $6)`, run.ID, r.ID, medguard.Millis(run.At), r.Status, r.Value, string(b)); err != nil {
				return err
			}
		}
		return nil
	}
}

// stripWords drops the catalogue's words from a stored result: they are
// filled in the reader's language when it is read.
func stripWords(r Result) Result {
	r.Title, r.How, r.Threshold = "", "", ""
	return r
}

// Run computes every check now and keeps the results (compliance.run).
func (s *Service) Run(ctx context.Context, call *medguard.Call) (*Run, error) {
	var run *Run
	var prev map[string]string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceRun, AuditAction: "compliance.run",
		Resource: policy.Resource{Type: "compliance_run"}}, func(policy.Decision) (audit.Mutation, error) {
		now := s.clock.Now().Truncate(time.Millisecond)
		rs, err := s.compute(ctx, now)
		if err != nil {
			return nil, err
		}
		if prev, err = s.latestStatuses(ctx); err != nil {
			return nil, err
		}
		run = newRun(rs, now, TriggerManual, call.Actor.Name, s.cfg.Catalogue.Version)
		return store(run, ""), nil
	})
	if err != nil {
		return nil, err
	}
	s.transitions(ctx, run, prev)
	s.localise(run.Results, "en")
	return run, nil
}

// RunDaily runs the day's scheduled run if no server has run it yet this
// hospital day; it returns nil when it had already run.
func (s *Service) RunDaily(ctx context.Context) (*Run, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	day := now.In(s.cfg.Location).Format(time.DateOnly)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM compliance_runs WHERE scheduled_day = $1`, day).Scan(&n); err != nil {
		return nil, medguard.Wrap("compliance.RunDaily", err)
	}
	if n > 0 {
		return nil, nil
	}
	rs, err := s.compute(ctx, now)
	if err != nil {
		return nil, medguard.Wrap("compliance.RunDaily", err)
	}
	prev, err := s.latestStatuses(ctx)
	if err != nil {
		return nil, medguard.Wrap("compliance.RunDaily", err)
	}
	run := newRun(rs, now, TriggerSchedule, "system", s.cfg.Catalogue.Version)
	call := system
	_, err = s.gate.Record(ctx, gate.Event{Call: &call, Action: "compliance.run", TargetType: "compliance_run", TargetID: run.ID,
		Allowed: true, Rule: "allow.system.schedule:compliance_daily"}, store(run, day))
	if errors.Is(err, gate.ErrAnnounced) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.transitions(ctx, run, prev)
	return run, nil
}

// Schedule runs RunDaily after first (a server just started has not had
// the time to take its first backups) and then every interval until ctx
// ends, passing failures to onError (may be nil).
func (s *Service) Schedule(ctx context.Context, first, every time.Duration, onError func(error)) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(first):
	}
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.RunDaily(ctx)
		return err
	}, onError)
}

// latestStatuses returns the statuses of the newest stored run, by check.
func (s *Service) latestStatuses(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	rows, err := s.db.QueryContext(ctx, `SELECT check_id, status FROM compliance_results WHERE run_id = (
		SELECT id FROM compliance_runs ORDER BY at DESC, id DESC LIMIT 1)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}

// transitions tells the rectification register and the hooks of the
// measured checks that turned to fail or back, once each.
func (s *Service) transitions(ctx context.Context, run *Run, prev map[string]string) {
	s.mu.Lock()
	rect, failing, passing := s.rectifier, slices.Clone(s.onFailing), slices.Clone(s.onPassing)
	s.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, r := range run.Results {
		if r.Kind != Measured {
			continue
		}
		was := prev[r.ID]
		switch {
		case r.Status == Fail && was != Fail:
			c, _ := s.cfg.Catalogue.Check(r.ID)
			f := Finding{CheckID: r.ID, Title: c.Title, Clauses: r.Clauses, Value: r.Value, Reason: r.Reason,
				DetectedAt: run.At, RunID: run.ID, Department: soleDepartment(r)}
			if rect != nil {
				if err := rect.OpenForCheck(ctx, f); err != nil {
					// The failure stays in the report and its alert.
					s.cfg.Logger.Error("opening the rectification item of a failing compliance check failed", "check", f.CheckID,
						"run", f.RunID, "error", err.Error())
				}
			}
			for _, h := range failing {
				h(ctx, f)
			}
		case r.Status != Fail && was == Fail:
			for _, h := range passing {
				h(ctx, r.ID)
			}
		}
	}
}

// soleDepartment is the department of a failing check's evidence when it
// all lies in one department.
func soleDepartment(r Result) string {
	d := ""
	for _, it := range r.Evidence.Items {
		switch {
		case it.Department == "":
			return ""
		case d == "":
			d = it.Department
		case d != it.Department:
			return ""
		}
	}
	return d
}

// links are the console page and the API list behind a check's number.
func links(id string) (console, api string) {
	switch id {
	case "departed_staff_access", "privileged_second_factor", "separation_of_duties", "unused_accounts":
		return "/admin/users", "/api/v1/users"
	case "departed_owner_api_keys":
		return "/compliance/checks/" + id, "/api/v1/api-keys"
	case "sensitive_fields_encrypted":
		return "/keys", ""
	case "audit_tree_verified":
		return "/audit", "/api/v1/audit/entries"
	case "audit_retention":
		return "/retention", ""
	case "backup_age", "backup_321":
		return "/backups", "/api/v1/backups"
	case "restore_drill":
		return "/backups/drills", "/api/v1/backups/drills"
	case "vulns_past_due":
		return "/vulns", "/api/v1/vulns"
	case "training_coverage", "training_overdue", "commitment_letters":
		return "/training", "/api/v1/training/coverage"
	case "breakglass_reviews_overdue":
		return "/break-glass", ""
	case "records_archived_late":
		return "/admissions", ""
	case "paper_sync_rate":
		return "/folders/reconciliation", ""
	case "inspections_signed":
		return "/inspections/history", "/api/v1/inspections"
	case "risks_past_review":
		return "/risks", "/api/v1/risks"
	case "plans_past_review":
		return "/plans", "/api/v1/plans"
	case "drills_on_cadence":
		return "/drills", "/api/v1/drills"
	}
	return "/compliance/checks/" + id, "/api/v1/compliance/checks/" + id
}

// memo wraps the sources so that one run reads each once (the audit log
// is verified once, the accounts listed once).
func memo(src Sources) Sources {
	if src.Staff != nil {
		src.Staff = &memoStaff{Staff: src.Staff}
	}
	if src.Audit != nil {
		src.Audit = &memoAudit{AuditLog: src.Audit}
	}
	if src.Backups != nil {
		src.Backups = &memoBackups{Backups: src.Backups}
	}
	if src.Registers != nil {
		src.Registers = &memoRegisters{Registers: src.Registers}
	}
	return src
}

type memoStaff struct {
	Staff
	accounts []Account
	keys     []APIKey
	aerr     error
	kerr     error
	aok, kok bool
}

func (m *memoStaff) Accounts(ctx context.Context) ([]Account, error) {
	if !m.aok {
		m.accounts, m.aerr, m.aok = nil, nil, true
		m.accounts, m.aerr = m.Staff.Accounts(ctx)
	}
	return m.accounts, m.aerr
}

func (m *memoStaff) APIKeys(ctx context.Context) ([]APIKey, error) {
	if !m.kok {
		m.kok = true
		m.keys, m.kerr = m.Staff.APIKeys(ctx)
	}
	return m.keys, m.kerr
}

type memoAudit struct {
	AuditLog
	st  AuditState
	err error
	ok  bool
}

func (m *memoAudit) VerifyAudit(ctx context.Context) (AuditState, error) {
	if !m.ok {
		m.ok = true
		m.st, m.err = m.AuditLog.VerifyAudit(ctx)
	}
	return m.st, m.err
}

type memoBackups struct {
	Backups
	st  BackupState
	err error
	ok  bool
}

func (m *memoBackups) BackupState(ctx context.Context) (BackupState, error) {
	if !m.ok {
		m.ok = true
		m.st, m.err = m.Backups.BackupState(ctx)
	}
	return m.st, m.err
}

type memoRegisters struct {
	Registers
	st  []Standing
	err error
	ok  bool
}

func (m *memoRegisters) TrainingStandings(ctx context.Context) ([]Standing, error) {
	if !m.ok {
		m.ok = true
		m.st, m.err = m.Registers.TrainingStandings(ctx)
	}
	return m.st, m.err
}
