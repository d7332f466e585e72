package rectify

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// ChecklistItem is one line of the quarterly check's checklist (seed 003
// §4.2): what is measured in each sampled department, and the target.
type ChecklistItem struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	TitleEN string `json:"title_en"`
	Target  string `json:"target"`
}

// Checklist is the quarterly check's checklist. The figures of
// DepartmentFigures are matched to it by id.
var Checklist = []ChecklistItem{
	{ID: "departed_revoked", Title: "离职人员权限回收率", TitleEN: "Departed staff whose access is revoked", Target: "100%"},
	{ID: "transmission_encrypted", Title: "传输加密率", TitleEN: "Transmission encrypted", Target: "100%"},
	{ID: "paper_electronic_sync", Title: "纸电同步率", TitleEN: "Paper and electronic records in sync", Target: "100%"},
}

// ChecklistIDs lists the checklist's ids.
func ChecklistIDs() []string {
	out := make([]string, len(Checklist))
	for i, c := range Checklist {
		out[i] = c.ID
	}
	return out
}

func checklistItem(id string) (ChecklistItem, bool) {
	for _, c := range Checklist {
		if c.ID == id {
			return c, true
		}
	}
	return ChecklistItem{}, false
}

// Figure is a measured value of a department, computed from live data by
// the compliance checks: its id (a checklist item's), title, value (as
// shown, e.g. "100%" or "98.5% (197/200)"), whether it meets the target,
// and its evidence (a link to the list behind the number, or the query's
// result).
type Figure struct {
	ID       string
	Title    string
	Value    string
	Pass     bool
	Evidence string
}

// DepartmentFigures is what the quarterly check needs of the compliance
// checks (internal/compliance), which the App wires in: the measured
// figures of one department, by the department's id (identity's
// Department.ID), read as the auditor running the check (call). Without
// it, the findings start unmeasured and the auditor records them.
type DepartmentFigures interface {
	Figures(ctx context.Context, call *medguard.Call, deptID string) ([]Figure, error)
}

// SetFigures wires the compliance checks' figures in (nil: none).
func (s *Service) SetFigures(f DepartmentFigures) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.figures = f
}

// The states of a quarterly run.
const (
	RunDraft     = "draft"
	RunPublished = "published"
)

// RunStatuses lists the states of a run.
var RunStatuses = []string{RunDraft, RunPublished}

// The results of a finding.
const (
	ResultPending = "pending"
	ResultPass    = "pass"
	ResultFail    = "fail"
)

// Results lists the results of a finding.
var Results = []string{ResultPending, ResultPass, ResultFail}

// SampleShare is the least share of the departments a run samples.
const SampleShare = 0.30

// MaxSeed is the largest seed: 2⁵³ − 1, so that a seed survives JSON
// readers that hold numbers as doubles (JavaScript, Python's json with
// floats).
const MaxSeed = 1<<53 - 1

// SampleSize is how many of n departments a run samples: 30 % rounded up,
// at least one (none of none).
func SampleSize(n int) int {
	if n <= 0 {
		return 0
	}
	k := (n*30 + 99) / 100
	return max(k, 1)
}

// Sample draws a run's departments: the codes sorted, shuffled by a
// permutation from math/rand/v2's PCG seeded with (seed, seed XOR
// 0x9E3779B97F4A7C15), the first SampleSize taken and sorted again. The
// same seed and the same departments always give the same sample.
func Sample(seed int64, departments []string) []string {
	codes := slices.Clone(departments)
	slices.Sort(codes)
	codes = slices.Compact(codes)
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9E3779B97F4A7C15))
	perm := rng.Perm(len(codes))
	out := make([]string, 0, SampleSize(len(codes)))
	for _, i := range perm[:SampleSize(len(codes))] {
		out = append(out, codes[i])
	}
	slices.Sort(out)
	return out
}

// Run is a quarterly compliance check.
type Run struct {
	ID string `json:"id"`
	// Quarter is the quarter checked, e.g. "2026-Q4".
	Quarter string `json:"quarter"`
	// Seed drew the sample from Departments (every department at the time
	// of the run, by code); Sample(Seed, Departments) gives Sampled again.
	Seed        int64    `json:"seed"`
	Departments []string `json:"departments"`
	Sampled     []string `json:"sampled"`
	// SampledShare is the share of the departments sampled (0 to 1).
	SampledShare float64    `json:"sampled_share"`
	Status       string     `json:"status"`
	CreatedBy    string     `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	PublishedBy  string     `json:"published_by,omitempty"`
	PublishedAt  *time.Time `json:"published_at,omitempty"`
	// Summary counts the findings of the whole hospital.
	Summary Summary `json:"summary"`
	// Findings are the run's findings (a department head sees their own
	// department's only), by department and checklist order.
	Findings []Finding `json:"findings,omitempty"`
	// Recipients are the department heads it was published to, with when
	// each read it (the whole run only).
	Recipients []Recipient `json:"recipients,omitempty"`
	// ReadAt is, for a department head, when they first read it.
	ReadAt *time.Time `json:"read_at,omitempty"`
}

// Summary counts a run's findings.
type Summary struct {
	Findings int `json:"findings"`
	Passed   int `json:"passed"`
	Failed   int `json:"failed"`
	Pending  int `json:"pending"`
	// Items counts them by checklist item.
	Items []ItemSummary `json:"items"`
	// FailingDepartments are the sampled departments with a failing
	// finding.
	FailingDepartments []string `json:"failing_departments"`
}

// ItemSummary counts the findings of one checklist item.
type ItemSummary struct {
	Item   string `json:"item"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
}

// Finding is the result of one checklist item in one sampled department.
type Finding struct {
	Department string `json:"department"`
	Item       string `json:"item"`
	Title      string `json:"title"`
	TitleEN    string `json:"title_en"`
	Target     string `json:"target"`
	// Measured is the value measured from live data (DepartmentFigures)
	// when the run began, MeasuredPass whether it met the target, and
	// Evidence what shows it; empty and nil when nothing was measured.
	Measured     string `json:"measured"`
	MeasuredPass *bool  `json:"measured_pass"`
	Evidence     string `json:"evidence,omitempty"`
	// Result is the auditor's (Results).
	Result     string     `json:"result"`
	Note       string     `json:"note,omitempty"`
	RecordedBy string     `json:"recorded_by,omitempty"`
	RecordedAt *time.Time `json:"recorded_at,omitempty"`
	// RectificationID is the item opened for a failing finding once the
	// run is published.
	RectificationID string `json:"rectification_id,omitempty"`
}

// Recipient is a department head a run was published to.
type Recipient struct {
	Username   string     `json:"username"`
	Department string     `json:"department"`
	ReadAt     *time.Time `json:"read_at,omitempty"`
}

// NewRun begins a quarterly check (the body of POST
// /api/v1/compliance/quarterly).
type NewRun struct {
	Quarter string `json:"quarter"`
	// Seed, if set, draws the sample (to repeat a draw; 0 to MaxSeed);
	// otherwise a random seed is drawn and stored.
	Seed *int64 `json:"seed,omitempty"`
}

// FindingResult records a finding (the body of POST
// /api/v1/compliance/quarterly/{id}/findings).
type FindingResult struct {
	Department string `json:"department"`
	Item       string `json:"item"`
	Result     string `json:"result"`
	Note       string `json:"note,omitempty"`
}

var quarterPattern = regexp.MustCompile(`^(20[0-9]{2})-Q([1-4])$`)

// QuarterOf names the quarter of t in loc, e.g. "2026-Q4".
func QuarterOf(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1)
}

var errNoRun = &medguard.Error{Kind: medguard.NotFound, Message: "no such quarterly check"}

func runResource(id string) policy.Resource { return policy.Resource{Type: "quarterly_check", ID: id} }

// StartRun begins a quarterly check (compliance.quarterly, 质控科): it
// samples the departments and prefills each sampled department's findings
// with the measured figures, if any.
func (s *Service) StartRun(ctx context.Context, call *medguard.Call, in NewRun) (*Run, error) {
	if !quarterPattern.MatchString(in.Quarter) {
		return nil, medguard.InvalidField("quarter", "quarter must look like 2026-Q4")
	}
	var seed int64
	if in.Seed != nil {
		if seed = *in.Seed; seed < 0 || seed > MaxSeed {
			return nil, medguard.InvalidField("seed", "seed must be from 0 to %d", int64(MaxSeed))
		}
	} else {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return nil, medguard.Wrap("rectify.StartRun", err)
		}
		seed = int64(binary.BigEndian.Uint64(b[:]) >> 11)
	}
	_, deps, err := s.identity.Directory(ctx)
	if err != nil {
		return nil, err
	}
	if len(deps) == 0 {
		return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the hospital has no departments to sample"}
	}
	ids := map[string]string{}
	var codes []string
	for _, d := range deps {
		codes = append(codes, d.Code)
		ids[d.Code] = d.ID
	}
	slices.Sort(codes)
	now := s.clock.Now().Truncate(time.Millisecond)
	run := &Run{ID: medguard.NewID(now), Quarter: in.Quarter, Seed: seed, Departments: codes, Sampled: Sample(seed, codes),
		Status: RunDraft, CreatedBy: call.Actor.Name, CreatedAt: now}
	run.SampledShare = float64(len(run.Sampled)) / float64(len(codes))
	s.mu.Lock()
	figures := s.figures
	s.mu.Unlock()
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceQuarterly, AuditAction: "compliance.quarterly_start",
		Resource: runResource(run.ID)}, func(policy.Decision) (audit.Mutation, error) {
		for _, d := range run.Sampled {
			measured := map[string]Figure{}
			if figures != nil {
				fs, err := figures.Figures(ctx, call, ids[d])
				if err != nil {
					return nil, err
				}
				for _, f := range fs {
					measured[f.ID] = f
				}
			}
			for _, c := range Checklist {
				f := Finding{Department: d, Item: c.ID, Title: c.Title, TitleEN: c.TitleEN, Target: c.Target, Result: ResultPending}
				if m, ok := measured[c.ID]; ok {
					pass := m.Pass
					f.Measured, f.MeasuredPass, f.Evidence = clip(m.Value, 200), &pass, clip(m.Evidence, 1000)
				}
				run.Findings = append(run.Findings, f)
			}
		}
		depsJSON, _ := json.Marshal(run.Departments)
		sampledJSON, _ := json.Marshal(run.Sampled)
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO quarterly_runs (id, quarter, seed, departments, sampled, status, created_by,
				created_at, published_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $8)`,
				run.ID, run.Quarter, seed, string(depsJSON), string(sampledJSON), RunDraft, run.CreatedBy, medguard.Millis(now)); err != nil {
				return err
			}
			for _, f := range run.Findings {
				mp := -1
				if f.MeasuredPass != nil {
					mp = 0
					if *f.MeasuredPass {
						mp = 1
					}
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO quarterly_findings (run_id, department, item, measured, measured_pass,
					measured_evidence, result, recorded_by, rectification_id) VALUES ($1, $2, $3, $4, $5, $6, $7, '', '')`,
					run.ID, f.Department, f.Item, f.Measured, mp, f.Evidence, ResultPending); err != nil {
					return err
				}
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	run.Summary = summarise(run.Findings)
	return run, nil
}

// clip keeps the first n characters of a one-line value.
func clip(v string, n int) string {
	v = strings.Join(strings.Fields(strings.ToValidUTF8(v, "")), " ")
	if r := []rune(v); len(r) > n {
		return string(r[:n])
	}
	return v
}

func summarise(fs []Finding) Summary {
	sum := Summary{Items: []ItemSummary{}, FailingDepartments: []string{}}
	by := map[string]*ItemSummary{}
	for _, c := range Checklist {
		sum.Items = append(sum.Items, ItemSummary{Item: c.ID})
	}
	for i := range sum.Items {
		by[sum.Items[i].Item] = &sum.Items[i]
	}
	for _, f := range fs {
		sum.Findings++
		switch f.Result {
		case ResultPass:
			sum.Passed++
			if b := by[f.Item]; b != nil {
				b.Passed++
			}
		case ResultFail:
			sum.Failed++
			if b := by[f.Item]; b != nil {
				b.Failed++
			}
			if !slices.Contains(sum.FailingDepartments, f.Department) {
				sum.FailingDepartments = append(sum.FailingDepartments, f.Department)
			}
		default:
			sum.Pending++
		}
	}
	slices.Sort(sum.FailingDepartments)
	return sum
}

// run reads a run with its findings (notes opened), nil when there is
// none.
func (s *Service) run(ctx context.Context, id string) (*Run, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	var r Run
	var deps, sampled string
	var created int64
	var published sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, quarter, seed, departments, sampled, status, created_by, created_at, published_by,
		published_at FROM quarterly_runs WHERE id = $1`, id).Scan(&r.ID, &r.Quarter, &r.Seed, &deps, &sampled, &r.Status, &r.CreatedBy,
		&created, &r.PublishedBy, &published)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("rectify.run", err)
	}
	if err := json.Unmarshal([]byte(deps), &r.Departments); err != nil {
		return nil, medguard.Wrap("rectify.run", err)
	}
	if err := json.Unmarshal([]byte(sampled), &r.Sampled); err != nil {
		return nil, medguard.Wrap("rectify.run", err)
	}
	if len(r.Departments) > 0 {
		r.SampledShare = float64(len(r.Sampled)) / float64(len(r.Departments))
	}
	r.CreatedAt = medguard.FromMillis(created)
	if published.Valid {
		t := medguard.FromMillis(published.Int64)
		r.PublishedAt = &t
	}
	rows, err := s.db.QueryContext(ctx, `SELECT department, item, measured, measured_pass, measured_evidence, result, note, recorded_by,
		recorded_at, rectification_id FROM quarterly_findings WHERE run_id = $1 ORDER BY department`, id)
	if err != nil {
		return nil, medguard.Wrap("rectify.run", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Finding
		var mp int
		var note []byte
		var at sql.NullInt64
		if err := rows.Scan(&f.Department, &f.Item, &f.Measured, &mp, &f.Evidence, &f.Result, &note, &f.RecordedBy, &at,
			&f.RectificationID); err != nil {
			return nil, medguard.Wrap("rectify.run", err)
		}
		if mp >= 0 {
			pass := mp == 1
			f.MeasuredPass = &pass
		}
		if at.Valid {
			t := medguard.FromMillis(at.Int64)
			f.RecordedAt = &t
		}
		if c, ok := checklistItem(f.Item); ok {
			f.Title, f.TitleEN, f.Target = c.Title, c.TitleEN, c.Target
		}
		if f.Note, err = s.open(ctx, "quarterly_findings", id+"/"+f.Department+"/"+f.Item, "note", note); err != nil {
			return nil, err
		}
		r.Findings = append(r.Findings, f)
	}
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("rectify.run", err)
	}
	order := ChecklistIDs()
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		if c := strings.Compare(a.Department, b.Department); c != 0 {
			return c
		}
		return slices.Index(order, a.Item) - slices.Index(order, b.Item)
	})
	r.Summary = summarise(r.Findings)
	return &r, nil
}

func (s *Service) recipients(ctx context.Context, id string) ([]Recipient, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT username, department, read_at FROM quarterly_recipients WHERE run_id = $1
		ORDER BY department, username`, id)
	if err != nil {
		return nil, medguard.Wrap("rectify.recipients", err)
	}
	defer rows.Close()
	out := []Recipient{}
	for rows.Next() {
		var r Recipient
		var at sql.NullInt64
		if err := rows.Scan(&r.Username, &r.Department, &at); err != nil {
			return nil, medguard.Wrap("rectify.recipients", err)
		}
		if at.Valid {
			t := medguard.FromMillis(at.Int64)
			r.ReadAt = &t
		}
		out = append(out, r)
	}
	return out, medguard.Wrap("rectify.recipients", rows.Err())
}

// loadRun reads a run for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) loadRun(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Run, error) {
	r, err := s.run(ctx, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "quarterly_check", ID: id}}, errNoRun)
	}
	return r, nil
}

// RecordFinding records the auditor's result of one finding of a draft run
// (compliance.quarterly). A measured figure that fails is never recorded
// as a pass.
func (s *Service) RecordFinding(ctx context.Context, call *medguard.Call, id string, in FindingResult) (*Run, error) {
	if err := oneOf("result", in.Result, []string{ResultPass, ResultFail}); err != nil {
		return nil, err
	}
	if _, ok := checklistItem(in.Item); !ok {
		return nil, oneOf("item", in.Item, ChecklistIDs())
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, in.Result == ResultFail); err != nil {
		return nil, err
	}
	r, err := s.loadRun(ctx, call, policy.ComplianceQuarterly, "compliance.quarterly_finding", id)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(r.Findings, func(f Finding) bool { return f.Department == in.Department && f.Item == in.Item })
	if i < 0 {
		return nil, medguard.InvalidField("department", "the department was not sampled in this run")
	}
	f := &r.Findings[i]
	if in.Result == ResultPass && f.MeasuredPass != nil && !*f.MeasuredPass {
		return nil, medguard.InvalidField("result", "the measured value %s fails the target %s: it cannot pass", f.Measured, f.Target)
	}
	note, err := s.seal(ctx, "quarterly_findings", id+"/"+f.Department+"/"+f.Item, "note", in.Note)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceQuarterly, AuditAction: "compliance.quarterly_finding",
		Resource: runResource(id)}, func(policy.Decision) (audit.Mutation, error) {
		if r.Status != RunDraft {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the run is published: its findings are final"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE quarterly_findings SET result = $1, note = $2, recorded_by = $3, recorded_at = $4
				WHERE run_id = $5 AND department = $6 AND item = $7 AND EXISTS (SELECT 1 FROM quarterly_runs WHERE id = $5 AND status = $8)`,
				in.Result, note, call.Actor.Name, medguard.Millis(now), id, f.Department, f.Item, RunDraft)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the run is published: its findings are final"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	f.Result, f.Note, f.RecordedBy, f.RecordedAt = in.Result, in.Note, call.Actor.Name, &now
	r.Summary = summarise(r.Findings)
	return r, nil
}

// Publish publishes a run whose findings are all recorded
// (compliance.quarterly): each failing finding opens a rectification item
// (kind quarterly, owned by the department's head, high severity) and
// every active department head receives the run (their department's
// findings and the hospital's summary), as a notice until they read it.
func (s *Service) Publish(ctx context.Context, call *medguard.Call, id string) (*Run, error) {
	r, err := s.loadRun(ctx, call, policy.ComplianceQuarterly, "compliance.quarterly_publish", id)
	if err != nil {
		return nil, err
	}
	if d := s.gate.Check(gate.Passage{Call: call, Action: policy.ComplianceQuarterly, Resource: runResource(id)}); !d.Allowed {
		_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceQuarterly, AuditAction: "compliance.quarterly_publish",
			Resource: runResource(id)}, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
		return nil, err
	}
	if r.Status != RunDraft {
		return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the run is published already"}
	}
	if r.Summary.Pending > 0 {
		return nil, &medguard.Error{Kind: medguard.Conflict, Message: fmt.Sprintf("%d findings are not recorded yet", r.Summary.Pending)}
	}
	// The items of the failing findings (idempotent: a publication tried
	// again finds them open).
	opened := map[int]string{}
	_, deps, err := s.identity.Directory(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, d := range deps {
		names[d.Code] = d.Name
	}
	for i, f := range r.Findings {
		if f.Result != ResultFail {
			continue
		}
		// The department by name: titles are read as they are.
		dept := names[f.Department]
		if dept == "" {
			dept = f.Department
		}
		title := fmt.Sprintf("%s季度合规检查：%s未达标（%s）", r.Quarter, f.Title, dept)
		titleEN := fmt.Sprintf("Quarterly compliance check %s: %s below target (%s)", r.Quarter, f.TitleEN, dept)
		itemID, _, err := s.OpenFrom(ctx, Origin{Kind: KindQuarterly, Ref: r.ID + "/" + f.Department + "/" + f.Item, Title: title,
			TitleEN: titleEN, Department: f.Department, Severity: High})
		if err != nil {
			return nil, err
		}
		opened[i] = itemID
	}
	staff, err := s.identity.Roster(ctx)
	if err != nil {
		return nil, err
	}
	var heads []Recipient
	var headIDs []string
	for _, m := range staff {
		if m.Active && m.Department != "" && slices.Contains(m.Roles, policy.DeptHead) {
			heads = append(heads, Recipient{Username: m.Username, Department: m.Department})
			headIDs = append(headIDs, m.ID)
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceQuarterly, AuditAction: "compliance.quarterly_publish",
		Resource: runResource(id)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE quarterly_runs SET status = $1, published_by = $2, published_at = $3, updated_at = $3
				WHERE id = $4 AND status = $5`, RunPublished, call.Actor.Name, medguard.Millis(now), id, RunDraft)
			if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the run is published already"}); err != nil {
				return err
			}
			for i, itemID := range opened {
				f := r.Findings[i]
				if _, err := tx.ExecContext(ctx, `UPDATE quarterly_findings SET rectification_id = $1 WHERE run_id = $2 AND department = $3
					AND item = $4`, itemID, id, f.Department, f.Item); err != nil {
					return err
				}
			}
			for i, h := range heads {
				if _, err := tx.ExecContext(ctx, `INSERT INTO quarterly_recipients (run_id, user_id, username, department)
					VALUES ($1, $2, $3, $4)`, id, headIDs[i], h.Username, h.Department); err != nil {
					return err
				}
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	for i, itemID := range opened {
		r.Findings[i].RectificationID = itemID
	}
	r.Status, r.PublishedBy, r.PublishedAt, r.Recipients = RunPublished, call.Actor.Name, &now, heads
	return r, nil
}

// wholeRun reports whether the caller reads whole runs (compliance.read
// or compliance.quarterly) rather than a department head's results.
func wholeRun(call *medguard.Call) bool {
	p := permissions(call)
	return p[policy.ComplianceRead] || p[policy.ComplianceQuarterly]
}

// readAction is the permission a caller reads runs under.
func readAction(call *medguard.Call) policy.Permission {
	p := permissions(call)
	switch {
	case p[policy.ComplianceQuarterly] && !p[policy.ComplianceRead]:
		return policy.ComplianceQuarterly
	case wholeRun(call):
		return policy.ComplianceRead
	}
	return policy.ComplianceQuarterlyResults
}

// GetRun returns a run: the whole of it (compliance.read or
// compliance.quarterly), or, to a department head
// (compliance.quarterly_results), a published run's summary and their own
// department's findings — the first reading is recorded, and the run's
// notice leaves their home page.
func (s *Service) GetRun(ctx context.Context, call *medguard.Call, id string) (*Run, error) {
	action := readAction(call)
	audited := "compliance.quarterly_read"
	if action == policy.ComplianceQuarterlyResults {
		audited = "compliance.quarterly_results_read"
	}
	r, err := s.loadRun(ctx, call, action, audited, id)
	if err != nil {
		return nil, err
	}
	head := action == policy.ComplianceQuarterlyResults
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: audited, Resource: runResource(id)},
		func(policy.Decision) (audit.Mutation, error) {
			if !head {
				var err error
				r.Recipients, err = s.recipients(ctx, id)
				return nil, err
			}
			if r.Status != RunPublished {
				return nil, errNoRun
			}
			var mine []Finding
			for _, f := range r.Findings {
				if f.Department == call.Actor.Department {
					mine = append(mine, f)
				}
			}
			r.Findings = mine
			var at sql.NullInt64
			err := s.db.QueryRowContext(ctx, `SELECT read_at FROM quarterly_recipients WHERE run_id = $1 AND user_id = $2`,
				id, call.Actor.ID).Scan(&at)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return nil, nil
			case err != nil:
				return nil, err
			case at.Valid:
				t := medguard.FromMillis(at.Int64)
				r.ReadAt = &t
				return nil, nil
			}
			r.ReadAt = &now
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `UPDATE quarterly_recipients SET read_at = $1 WHERE run_id = $2 AND user_id = $3
					AND read_at IS NULL`, medguard.Millis(now), id, call.Actor.ID)
				return err
			}, nil
		})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ListRuns lists the runs, newest first: every run to compliance.read and
// compliance.quarterly, the published ones to a department head (with
// when they read each, without findings).
func (s *Service) ListRuns(ctx context.Context, call *medguard.Call) ([]Run, error) {
	action := readAction(call)
	head := action == policy.ComplianceQuarterlyResults
	var out []Run
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: "compliance.quarterly_list",
		Resource: policy.Resource{Type: "quarterly_check"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, err = s.runs(ctx, call, head, false)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Notices returns the published runs a department head has not read yet
// (compliance.quarterly_results), for their home page and dashboard.
func (s *Service) Notices(ctx context.Context, call *medguard.Call) ([]Run, error) {
	var out []Run
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.ComplianceQuarterlyResults,
		AuditAction: "compliance.quarterly_notices", Resource: policy.Resource{Type: "quarterly_check"}},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			out, err = s.runs(ctx, call, true, true)
			return nil, err
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runs lists runs without their findings: every run, or (head) the
// published ones with the caller's reading, only the unread (unread).
func (s *Service) runs(ctx context.Context, call *medguard.Call, head, unread bool) ([]Run, error) {
	q := `SELECT r.id FROM quarterly_runs r ORDER BY r.id DESC LIMIT 200`
	args := []any{}
	if head {
		q = `SELECT r.id FROM quarterly_runs r WHERE r.status = $1 ORDER BY r.id DESC LIMIT 200`
		args = append(args, RunPublished)
		if unread {
			q = `SELECT r.id FROM quarterly_runs r JOIN quarterly_recipients p ON p.run_id = r.id
				WHERE r.status = $1 AND p.user_id = $2 AND p.read_at IS NULL ORDER BY r.id DESC LIMIT 200`
			args = append(args, call.Actor.ID)
		}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []Run{}
	for _, id := range ids {
		r, err := s.run(ctx, id)
		if err != nil {
			return nil, err
		}
		if r == nil {
			continue
		}
		r.Findings = nil
		if head {
			var at sql.NullInt64
			err := s.db.QueryRowContext(ctx, `SELECT read_at FROM quarterly_recipients WHERE run_id = $1 AND user_id = $2`,
				id, call.Actor.ID).Scan(&at)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
			if at.Valid {
				t := medguard.FromMillis(at.Int64)
				r.ReadAt = &t
			}
		}
		out = append(out, *r)
	}
	return out, nil
}
