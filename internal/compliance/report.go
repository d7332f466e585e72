package compliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// Report is the compliance report: every check of the newest run (or,
// before the first run, computed now and not kept), in the reader's
// language.
type Report struct {
	GeneratedAt      time.Time `json:"generated_at"`
	RunID            string    `json:"run_id,omitempty"`
	Trigger          string    `json:"trigger,omitempty"`
	CatalogueVersion string    `json:"catalogue_version"`
	Score            float64   `json:"score"`
	Pass             int       `json:"pass"`
	Fail             int       `json:"fail"`
	NotApplicable    int       `json:"not_applicable"`
	NeedsEvidence    int       `json:"needs_evidence"`
	Checks           []Result  `json:"checks"`
}

// ScorePoint is a run's score, for the trend.
type ScorePoint struct {
	At            time.Time `json:"at"`
	RunID         string    `json:"run_id"`
	Score         float64   `json:"score"`
	Pass          int       `json:"pass"`
	Fail          int       `json:"fail"`
	NeedsEvidence int       `json:"needs_evidence"`
}

// localise fills the catalogue's words in lang.
func (s *Service) localise(rs []Result, lang string) {
	for i := range rs {
		c, ok := s.cfg.Catalogue.Check(rs[i].ID)
		if !ok {
			continue
		}
		rs[i].Title, rs[i].How, rs[i].Threshold = c.Title.In(lang), c.How.In(lang), c.Threshold.In(lang)
		if rs[i].Kind == "" {
			rs[i].Kind = c.Kind
		}
	}
}

func (s *Service) read(ctx context.Context, call *medguard.Call, action string, id string, work func() error) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceRead, AuditAction: action,
		Resource: policy.Resource{Type: "compliance_check", ID: id}}, func(policy.Decision) (audit.Mutation, error) {
		return nil, work()
	})
	return err
}

// latestRun reads the newest run with its results (nil: none yet).
func (s *Service) latestRun(ctx context.Context) (*Run, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM compliance_runs ORDER BY at DESC, id DESC LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.loadRun(ctx, id)
}

const runColumns = `id, at, trigger_kind, run_by, catalogue_version, passed, failed, not_applicable, needs_evidence, score_permille, audit_index`

func scanRun(sc interface{ Scan(...any) error }) (*Run, error) {
	var r Run
	var at, score, index int64
	if err := sc.Scan(&r.ID, &at, &r.Trigger, &r.RunBy, &r.CatalogueVersion, &r.Pass, &r.Fail, &r.NotApplicable, &r.NeedsEvidence,
		&score, &index); err != nil {
		return nil, err
	}
	r.At, r.Score, r.AuditIndex = medguard.FromMillis(at), float64(score)/10, uint64(index)
	return &r, nil
}

func (s *Service) loadRun(ctx context.Context, id string) (*Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM compliance_runs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such compliance run"}
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT result FROM compliance_results WHERE run_id = $1`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := map[string]Result{}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var res Result
		if err := json.Unmarshal([]byte(b), &res); err != nil {
			return nil, err
		}
		byID[res.ID] = res
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// In the catalogue's order; a check no longer in the catalogue is
	// shown last.
	for _, c := range s.cfg.Catalogue.Checks {
		if res, ok := byID[c.ID]; ok {
			r.Results = append(r.Results, res)
			delete(byID, c.ID)
		}
	}
	for _, res := range byID {
		r.Results = append(r.Results, res)
	}
	return r, nil
}

func reportOf(run *Run) Report {
	rep := Report{GeneratedAt: run.At, RunID: run.ID, Trigger: run.Trigger, CatalogueVersion: run.CatalogueVersion, Score: run.Score,
		Pass: run.Pass, Fail: run.Fail, NotApplicable: run.NotApplicable, NeedsEvidence: run.NeedsEvidence, Checks: run.Results}
	if rep.Checks == nil {
		rep.Checks = []Result{}
	}
	return rep
}

// Report returns the compliance report in lang (compliance.read): the
// newest run's results, or — before any run — every check computed now
// (not kept: a run is compliance.run).
func (s *Service) Report(ctx context.Context, call *medguard.Call, lang string) (Report, error) {
	var rep Report
	err := s.read(ctx, call, "compliance.report", "", func() error {
		run, err := s.latestRun(ctx)
		if err != nil {
			return err
		}
		if run == nil {
			now := s.clock.Now().Truncate(time.Millisecond)
			rs, err := s.compute(ctx, now)
			if err != nil {
				return err
			}
			run = newRun(rs, now, "", "", s.cfg.Catalogue.Version)
			run.ID = ""
		}
		rep = reportOf(run)
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	s.localise(rep.Checks, lang)
	return rep, nil
}

// LatestReport returns the newest run's report in lang, or nil before
// the first run — never computing anything (compliance.read): for the
// dashboard, which must stay cheap.
func (s *Service) LatestReport(ctx context.Context, call *medguard.Call, lang string) (*Report, error) {
	var rep *Report
	err := s.read(ctx, call, "compliance.report", "", func() error {
		run, err := s.latestRun(ctx)
		if err != nil || run == nil {
			return err
		}
		r := reportOf(run)
		rep = &r
		return nil
	})
	if err != nil || rep == nil {
		return nil, err
	}
	s.localise(rep.Checks, lang)
	return rep, nil
}

// History returns a check's results from the newest, at most limit
// (compliance.read).
func (s *Service) History(ctx context.Context, call *medguard.Call, checkID, lang string, limit int) ([]Result, error) {
	if _, ok := s.cfg.Catalogue.Check(checkID); !ok {
		return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such compliance check"}
	}
	if limit <= 0 || limit > 400 {
		limit = 90
	}
	out := []Result{}
	err := s.read(ctx, call, "compliance.history", checkID, func() error {
		rows, err := s.db.QueryContext(ctx, `SELECT result FROM compliance_results WHERE check_id = $1 ORDER BY at DESC, run_id DESC LIMIT $2`,
			checkID, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				return err
			}
			var r Result
			if err := json.Unmarshal([]byte(b), &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	s.localise(out, lang)
	return out, nil
}

// ScoreHistory returns the score of every run from from to to, oldest
// first (compliance.read).
func (s *Service) ScoreHistory(ctx context.Context, call *medguard.Call, from, to time.Time) ([]ScorePoint, error) {
	if to.Before(from) {
		return nil, medguard.InvalidField("from", "from is after to")
	}
	var out []ScorePoint
	err := s.read(ctx, call, "compliance.scores", "", func() (err error) {
		out, err = s.Scores(ctx, from, to)
		return err
	})
	return out, err
}

// Scores returns the score of every run from from to to, oldest first,
// without a gate passage: medguard's own read for the posture reports,
// which log their generation (scores only: no evidence, no staff).
func (s *Service) Scores(ctx context.Context, from, to time.Time) ([]ScorePoint, error) {
	out := []ScorePoint{}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM compliance_runs WHERE at >= $1 AND at <= $2 ORDER BY at, id LIMIT 2000`,
		medguard.Millis(from), medguard.Millis(to))
	if err != nil {
		return nil, medguard.Wrap("compliance.Scores", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, medguard.Wrap("compliance.Scores", err)
		}
		out = append(out, ScorePoint{At: r.At, RunID: r.ID, Score: r.Score, Pass: r.Pass, Fail: r.Fail, NeedsEvidence: r.NeedsEvidence})
	}
	return out, rows.Err()
}

// Runs lists the runs from the newest, at most limit (compliance.read).
func (s *Service) Runs(ctx context.Context, call *medguard.Call, limit int) ([]Run, error) {
	if limit <= 0 || limit > 400 {
		limit = 30
	}
	out := []Run{}
	err := s.read(ctx, call, "compliance.runs", "", func() error {
		rows, err := s.db.QueryContext(ctx, `SELECT `+runColumns+` FROM compliance_runs ORDER BY at DESC, id DESC LIMIT $1`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return rows.Err()
	})
	return out, err
}

// DepartmentFigures returns, from the newest run, the checks that have a
// figure per department (departed staff, training coverage, records
// archived late), each narrowed to the department whose code is dept:
// its value, status and the evidence of that department only
// (compliance.read). The quarterly compliance check reads it.
func (s *Service) DepartmentFigures(ctx context.Context, call *medguard.Call, dept string) ([]Result, error) {
	if dept == "" {
		return nil, medguard.InvalidField("department", "a department is needed")
	}
	out := []Result{}
	err := s.read(ctx, call, "compliance.department_figures", "", func() error {
		if s.identity != nil {
			if _, err := s.identity.DepartmentByCode(ctx, dept); err != nil {
				return err
			}
		}
		run, err := s.latestRun(ctx)
		if err != nil || run == nil {
			return err
		}
		for _, r := range run.Results {
			c, ok := s.cfg.Catalogue.Check(r.ID)
			if !ok || !c.Department {
				continue
			}
			r.Status, r.Value, r.Reason = Pass, "0", ""
			r.Numerator, r.Denominator = ptr(0), nil
			if c.ID == "training_coverage" {
				r.Status, r.Value = NotApplicable, "—"
			}
			for _, d := range r.Departments {
				if d.Department == dept {
					r.Status, r.Value, r.Numerator, r.Denominator = d.Status, d.Value, ptr(d.Numerator), ptr(d.Denominator)
				}
			}
			items := []Item{}
			for _, it := range r.Evidence.Items {
				if it.Department == dept {
					items = append(items, it)
				}
			}
			r.Evidence.Items, r.Departments = items, nil
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.localise(out, "en")
	return out, nil
}
