// Package plans owns the emergency plans and drills of the security office
// (应急预案与演练, seed 003 §5, issue 13).
//
// The plan library holds plans by type (natural disaster, technical
// failure, human-caused, public health): each with its scenario, the
// responders and their roles, and its steps with their time limits. A plan
// has versions; a published version is never changed — a change is a new
// draft, which goes through the workflow draft → expert review (专家评审,
// plan.review) → leadership approval (领导审批, plan.approve) → published,
// each step signed by someone who neither wrote the draft nor signed an
// earlier step (deny.separation_of_duties). A published plan is reviewed
// yearly; a review that falls due unheld is announced once (an alert).
//
// Drills (演练) record the scenario (a plan's published version), the
// departments and participants, each step's response time against the
// plan's limit, the gaps found and the improvement items with their owner
// and due date (an overdue item is announced). Tabletop drills are due
// every quarter and live drills every six months; a period that ends
// without one is announced. A department that fails two drills in a row is
// flagged for retraining (RetrainingNeeded, OnRetrainingNeeded). The
// restore drills of the backups (恢复演练) are listed with the drills,
// read through the backups' own gated service (SetBackupDrills).
//
// Every operation goes through the gate and into the audit log. Workflow
// notes, drill notes, gaps and improvement items are sealed with a system
// data key. This package never reads patient data, nor another package's
// tables: it reads staff and departments through the identity service.
package plans

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// Schema is the plans' and drills' tables.
func Schema() storage.Schema { return storage.NewSchema("plans", migrations, "migrations") }

// The types of plan (seed 003 §5).
const (
	NaturalDisaster  = "natural_disaster"  // 自然灾害
	TechnicalFailure = "technical_failure" // 技术故障
	HumanCaused      = "human_caused"      // 人为破坏
	PublicHealth     = "public_health"     // 公共卫生
)

// Types lists the types of plan.
var Types = []string{NaturalDisaster, TechnicalFailure, HumanCaused, PublicHealth}

// The states of a plan's version: a draft (editable), in expert review,
// reviewed (waiting for the leadership), published (in force, never
// changed), superseded by a later published version.
const (
	Draft      = "draft"
	InReview   = "in_review"
	Reviewed   = "reviewed"
	Published  = "published"
	Superseded = "superseded"
)

// VersionStatuses lists the states of a version, in workflow order.
var VersionStatuses = []string{Draft, InReview, Reviewed, Published, Superseded}

// Config holds the rules of plans and drills.
type Config struct {
	// ReviewMonths is how long a published plan stays in force before its
	// yearly review (default 12 months).
	ReviewMonths int
	// TabletopMonths and LiveMonths are the drill cadence: a tabletop
	// drill in every period of TabletopMonths (default 3: every calendar
	// quarter), a live drill in every period of LiveMonths (default 6:
	// every half-year), periods counted from 1 January.
	TabletopMonths, LiveMonths int
	// Location is the hospital's time zone, in which periods and review
	// dates are reckoned (default UTC; the App gives the hospital's).
	Location *time.Location
}

func (c *Config) setDefaults() {
	if c.ReviewMonths <= 0 {
		c.ReviewMonths = 12
	}
	if c.TabletopMonths <= 0 || 12%c.TabletopMonths != 0 {
		c.TabletopMonths = 3
	}
	if c.LiveMonths <= 0 || 12%c.LiveMonths != 0 {
		c.LiveMonths = 6
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
}

// Service is the emergency plans and drills.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config

	mu      sync.Mutex
	backups BackupDrills
	hooks   hooks
}

// New returns the plans and drills service.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, identity: id, clock: g.Clock(), cfg: cfg}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

// keyName is the system data key sealing this package's text.
const keyName = "plans"

// sealNote seals a workflow note of a plan ("" stays nil).
func (s *Service) sealNote(ctx context.Context, planID, note string) ([]byte, error) {
	return s.seal(ctx, "plan_events", planID, "note", note)
}

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	if text == "" {
		return nil, nil
	}
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// Responder is one who answers when the plan is started: their role in
// the response (e.g. 总指挥, 技术处置组), who holds it, and their duty.
type Responder struct {
	Role string `json:"role"`
	Name string `json:"name,omitempty"`
	Duty string `json:"duty"`
}

// Step is one step of the response: what is done, by which responder's
// role, and its time limit in minutes from the plan's start.
type Step struct {
	Title        string `json:"title"`
	Action       string `json:"action"`
	Role         string `json:"role,omitempty"`
	LimitMinutes int    `json:"limit_minutes"`
}

// Content is what a version of a plan says.
type Content struct {
	Title      string      `json:"title"`
	Scenario   string      `json:"scenario"`
	Responders []Responder `json:"responders"`
	Steps      []Step      `json:"steps"`
}

// Version is one version of a plan with its workflow's signatures.
type Version struct {
	Version int    `json:"version"`
	Status  string `json:"status"`
	Content
	// Authors wrote or edited the draft, or submitted it (usernames).
	Authors     []string   `json:"authors"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	SubmittedBy string     `json:"submitted_by,omitempty"`
	SubmittedAt *time.Time `json:"submitted_at,omitempty"`
	ReviewedBy  string     `json:"reviewed_by,omitempty"`
	ReviewedAt  *time.Time `json:"reviewed_at,omitempty"`
	// ApprovedBy published it, at ApprovedAt.
	ApprovedBy string     `json:"approved_by,omitempty"`
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
}

// Plan is an emergency plan of the library.
type Plan struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Title is the published version's title (or the first draft's).
	Title     string    `json:"title"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// PublishedVersion is the version in force (0: none yet), published
	// at PublishedAt.
	PublishedVersion int        `json:"published_version"`
	PublishedAt      *time.Time `json:"published_at,omitempty"`
	// ReviewDueAt is when the yearly review is due; ReviewOverdue says it
	// passed unheld. LastReviewedAt and LastReviewedBy are the last
	// yearly review's.
	ReviewDueAt    *time.Time `json:"review_due_at,omitempty"`
	ReviewOverdue  bool       `json:"review_overdue"`
	LastReviewedAt *time.Time `json:"last_reviewed_at,omitempty"`
	LastReviewedBy string     `json:"last_reviewed_by,omitempty"`
	// OpenVersion is the version in the workflow (0: none), in state
	// OpenStatus.
	OpenVersion int    `json:"open_version"`
	OpenStatus  string `json:"open_status,omitempty"`
	// Versions are every version, newest first, and History the
	// workflow's events, oldest first (a single plan only).
	Versions []Version `json:"versions,omitempty"`
	History  []Event   `json:"history,omitempty"`
}

// Event is one step of a plan's workflow.
type Event struct {
	Seq     int       `json:"seq"`
	Version int       `json:"version"`
	Action  string    `json:"action"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
}

// The workflow's events (Event.Action).
const (
	EventCreated          = "created"
	EventEdited           = "edited"
	EventNewVersion       = "new_version"
	EventSubmitted        = "submitted"
	EventReviewed         = "reviewed"
	EventReturned         = "returned"
	EventPublished        = "published"
	EventAnnualReview     = "annual_review"
	EventApprovalReturned = "approval_returned"
)

// EventActions lists the workflow's events.
var EventActions = []string{EventCreated, EventEdited, EventNewVersion, EventSubmitted, EventReviewed, EventReturned, EventPublished,
	EventApprovalReturned, EventAnnualReview}

// NewPlan writes a plan's first draft (the body of POST /api/v1/plans).
type NewPlan struct {
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Scenario   string      `json:"scenario"`
	Responders []Responder `json:"responders"`
	Steps      []Step      `json:"steps"`
}

// DraftChanges replaces a draft's content (the body of PUT
// /api/v1/plans/{id}/versions/{version}).
type DraftChanges struct {
	Title      string      `json:"title"`
	Scenario   string      `json:"scenario"`
	Responders []Responder `json:"responders"`
	Steps      []Step      `json:"steps"`
}

// Decision is an expert review's or the leadership's decision on a version
// (the body of POST …/review and …/approve): approve it, or return it to
// its authors with a note.
type Decision struct {
	Approve bool   `json:"approve"`
	Note    string `json:"note"`
}

// Note is a note with a workflow step (the body of POST …/submit and
// …/annual-review).
type Note struct {
	Note string `json:"note,omitempty"`
}

// MaxText is the longest scenario, note, gap or improvement, in characters.
const MaxText = 4000

// MaxStepMinutes is the longest time limit of a step: a week.
const MaxStepMinutes = 7 * 24 * 60

// checkContent validates a version's content.
func checkContent(c Content) (Content, error) {
	var err error
	if c.Title, err = medguard.Line("title", c.Title, 200, true); err != nil {
		return c, err
	}
	if c.Scenario, err = medguard.Text("scenario", c.Scenario, MaxText, true); err != nil {
		return c, err
	}
	if len(c.Responders) == 0 || len(c.Responders) > 30 {
		return c, medguard.InvalidField("responders", "a plan names 1 to 30 responders")
	}
	roles := map[string]bool{}
	for i := range c.Responders {
		r := &c.Responders[i]
		f := fmt.Sprintf("responders[%d]", i)
		if r.Role, err = medguard.Line(f+".role", r.Role, 50, true); err != nil {
			return c, err
		}
		if r.Name, err = medguard.Line(f+".name", r.Name, 64, false); err != nil {
			return c, err
		}
		if r.Duty, err = medguard.Line(f+".duty", r.Duty, 200, true); err != nil {
			return c, err
		}
		roles[r.Role] = true
	}
	if len(c.Steps) == 0 || len(c.Steps) > 50 {
		return c, medguard.InvalidField("steps", "a plan has 1 to 50 steps")
	}
	for i := range c.Steps {
		st := &c.Steps[i]
		f := fmt.Sprintf("steps[%d]", i)
		if st.Title, err = medguard.Line(f+".title", st.Title, 100, true); err != nil {
			return c, err
		}
		if st.Action, err = medguard.Text(f+".action", st.Action, 1000, true); err != nil {
			return c, err
		}
		if st.Role, err = medguard.Line(f+".role", st.Role, 50, false); err != nil {
			return c, err
		}
		if st.Role != "" && !roles[st.Role] {
			return c, medguard.InvalidField(f+".role", "a step's role must be one of the plan's responders' roles")
		}
		if st.LimitMinutes < 1 || st.LimitMinutes > MaxStepMinutes {
			return c, medguard.InvalidField(f+".limit_minutes", "a step's time limit is 1 to %d minutes from the plan's start", MaxStepMinutes)
		}
	}
	return c, nil
}

// author is one who wrote or submitted a version: id for the policy, name
// for people.
type author struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func addAuthor(as []author, call *medguard.Call) []author {
	if !slices.ContainsFunc(as, func(a author) bool { return a.ID == call.Actor.ID }) {
		as = append(as, author{ID: call.Actor.ID, Name: call.Actor.Name})
	}
	return as
}

var (
	errNoPlan    = &medguard.Error{Kind: medguard.NotFound, Message: "no such plan"}
	errNoVersion = &medguard.Error{Kind: medguard.NotFound, Message: "no such version of the plan"}
	errMoved     = &medguard.Error{Kind: medguard.Conflict, Message: "the plan changed meanwhile: read it again"}
)

func planResource(id string) policy.Resource { return policy.Resource{Type: "plan", ID: id} }

// CreatePlan writes a plan's first draft (plan.manage); the caller is its
// first author.
func (s *Service) CreatePlan(ctx context.Context, call *medguard.Call, in NewPlan) (*Plan, error) {
	if !slices.Contains(Types, in.Type) {
		return nil, medguard.InvalidField("type", "type must be one of %s", strings.Join(Types, ", "))
	}
	c, err := checkContent(Content{Title: in.Title, Scenario: in.Scenario, Responders: in.Responders, Steps: in.Steps})
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	content, _ := json.Marshal(c)
	authors := addAuthor(nil, call)
	raw, _ := json.Marshal(authors)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanManage, AuditAction: "plan.create",
		Resource: planResource(id)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO plans (id, type, title, created_by, created_at, published_version,
				reviewed_by, updated_at) VALUES ($1, $2, $3, $4, $5, 0, '', $5)`, id, in.Type, c.Title, call.Actor.Name,
				medguard.Millis(now)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO plan_versions (plan_id, version, status, title, content, authors, created_at,
				updated_at, submitted_by, reviewed_by, reviewed_by_id, approved_by) VALUES ($1, 1, $2, $3, $4, $5, $6, $6, '', '', '', '')`,
				id, Draft, c.Title, string(content), string(raw), medguard.Millis(now)); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, id, 1, EventCreated, call.Actor.Name, now, nil)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, id, true)
}

// addEvent adds a workflow event to a plan's history within tx, with its
// note sealed beforehand (sealNote): nothing is sealed inside a
// transaction, which may have to make the data key in one of its own.
func (s *Service) addEvent(ctx context.Context, tx *sql.Tx, planID string, version int, action, actor string, at time.Time, sealed []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO plan_events (plan_id, seq, version, action, actor, at, note)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM plan_events WHERE plan_id = $1`,
		planID, version, action, actor, medguard.Millis(at), sealed)
	return err
}

// stored is a plan with what the workflow needs beyond what it shows.
type stored struct {
	Plan
	updatedAt int64
	versions  []storedVersion
}

type storedVersion struct {
	Version
	authors    []author
	reviewerID string
	updatedAt  int64
}

func ms(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := medguard.FromMillis(v.Int64)
	return &t
}

// load reads a plan with its versions; nil when there is none.
func (s *Service) load(ctx context.Context, id string) (*stored, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	var p stored
	var created int64
	var published, due, reviewed sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, type, title, created_by, created_at, published_version, published_at, review_due_at,
		reviewed_at, reviewed_by, updated_at FROM plans WHERE id = $1`, id).Scan(&p.ID, &p.Type, &p.Title, &p.CreatedBy, &created,
		&p.PublishedVersion, &published, &due, &reviewed, &p.LastReviewedBy, &p.updatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("plans.load", err)
	}
	p.CreatedAt, p.PublishedAt, p.ReviewDueAt, p.LastReviewedAt = medguard.FromMillis(created), ms(published), ms(due), ms(reviewed)
	if p.ReviewDueAt != nil && p.PublishedVersion > 0 {
		p.ReviewOverdue = !s.clock.Now().Before(*p.ReviewDueAt)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT version, status, content, authors, created_at, updated_at, submitted_by, submitted_at,
		reviewed_by, reviewed_by_id, reviewed_at, approved_by, approved_at FROM plan_versions WHERE plan_id = $1 ORDER BY version DESC`, id)
	if err != nil {
		return nil, medguard.Wrap("plans.load", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v storedVersion
		var content, authors string
		var created, updated int64
		var submitted, reviewedAt, approved sql.NullInt64
		if err := rows.Scan(&v.Version.Version, &v.Status, &content, &authors, &created, &updated, &v.SubmittedBy, &submitted,
			&v.ReviewedBy, &v.reviewerID, &reviewedAt, &v.ApprovedBy, &approved); err != nil {
			return nil, medguard.Wrap("plans.load", err)
		}
		if err := json.Unmarshal([]byte(content), &v.Content); err != nil {
			return nil, medguard.Wrap("plans.load", err)
		}
		if err := json.Unmarshal([]byte(authors), &v.authors); err != nil {
			return nil, medguard.Wrap("plans.load", err)
		}
		v.Authors = []string{}
		for _, a := range v.authors {
			v.Authors = append(v.Authors, a.Name)
		}
		v.CreatedAt, v.UpdatedAt, v.updatedAt = medguard.FromMillis(created), medguard.FromMillis(updated), updated
		v.SubmittedAt, v.ReviewedAt, v.ApprovedAt = ms(submitted), ms(reviewedAt), ms(approved)
		p.versions = append(p.versions, v)
		if v.Status == Draft || v.Status == InReview || v.Status == Reviewed {
			p.OpenVersion, p.OpenStatus = v.Version.Version, v.Status
		}
	}
	return &p, medguard.Wrap("plans.load", rows.Err())
}

// version returns one of the plan's versions, or nil.
func (p *stored) version(n int) *storedVersion {
	for i := range p.versions {
		if p.versions[i].Version.Version == n {
			return &p.versions[i]
		}
	}
	return nil
}

// plan reads a plan as it is shown: with its versions and history if full.
func (s *Service) plan(ctx context.Context, id string, full bool) (*Plan, error) {
	p, err := s.load(ctx, id)
	if err != nil || p == nil {
		return nil, err
	}
	return s.show(ctx, p, full)
}

func (s *Service) show(ctx context.Context, p *stored, full bool) (*Plan, error) {
	out := p.Plan
	if !full {
		return &out, nil
	}
	out.Versions = []Version{}
	for _, v := range p.versions {
		out.Versions = append(out.Versions, v.Version)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, version, action, actor, at, note FROM plan_events WHERE plan_id = $1 ORDER BY seq`, p.ID)
	if err != nil {
		return nil, medguard.Wrap("plans.show", err)
	}
	defer rows.Close()
	out.History = []Event{}
	for rows.Next() {
		var e Event
		var at int64
		var note []byte
		if err := rows.Scan(&e.Seq, &e.Version, &e.Action, &e.Actor, &at, &note); err != nil {
			return nil, medguard.Wrap("plans.show", err)
		}
		e.At = medguard.FromMillis(at)
		if e.Note, err = s.open(ctx, "plan_events", p.ID, "note", note); err != nil {
			return nil, err
		}
		out.History = append(out.History, e)
	}
	return &out, medguard.Wrap("plans.show", rows.Err())
}

// loadFor reads a plan for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) loadFor(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*stored, error) {
	p, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "plan", ID: id}}, errNoPlan)
	}
	return p, nil
}

// GetPlan returns a plan with every version and its workflow's history
// (plan.read).
func (s *Service) GetPlan(ctx context.Context, call *medguard.Call, id string) (*Plan, error) {
	p, err := s.loadFor(ctx, call, policy.PlanRead, "plan.read", id)
	if err != nil {
		return nil, err
	}
	var out *Plan
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanRead, AuditAction: "plan.read",
		Resource: planResource(p.ID)}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, err = s.show(ctx, p, true)
		return nil, err
	})
	return out, err
}

// PlanQuery filters the library.
type PlanQuery struct {
	Type string
	// Status keeps the plans with a version in this state (published:
	// the plans in force).
	Status string
	// Overdue keeps the plans whose yearly review is overdue.
	Overdue bool
}

// ListPlans lists the plans by type and title (plan.read).
func (s *Service) ListPlans(ctx context.Context, call *medguard.Call, q PlanQuery) ([]Plan, error) {
	switch {
	case q.Type != "" && !slices.Contains(Types, q.Type):
		return nil, medguard.InvalidField("type", "type must be one of %s", strings.Join(Types, ", "))
	case q.Status != "" && !slices.Contains(VersionStatuses, q.Status):
		return nil, medguard.InvalidField("status", "status must be one of %s", strings.Join(VersionStatuses, ", "))
	}
	out := []Plan{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanRead, AuditAction: "plan.list",
		Resource: policy.Resource{Type: "plan"}}, func(policy.Decision) (audit.Mutation, error) {
		ids, err := s.planIDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			p, err := s.load(ctx, id)
			if err != nil {
				return nil, err
			}
			if p == nil || q.Type != "" && p.Type != q.Type || q.Overdue && !p.ReviewOverdue ||
				q.Status != "" && !slices.ContainsFunc(p.versions, func(v storedVersion) bool { return v.Status == q.Status }) {
				continue
			}
			out = append(out, p.Plan)
		}
		return nil, nil
	})
	slices.SortStableFunc(out, func(a, b Plan) int {
		if c := slices.Index(Types, a.Type) - slices.Index(Types, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.Title, b.Title)
	})
	return out, err
}

func (s *Service) planIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM plans ORDER BY id LIMIT 1000`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// loadVersion reads a plan and one of its versions for a step of the
// workflow; a missing plan or version is logged and answered 404.
func (s *Service) loadVersion(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string, version int) (*stored, *storedVersion, error) {
	p, err := s.loadFor(ctx, call, action, auditAction, id)
	if err != nil {
		return nil, nil, err
	}
	v := p.version(version)
	if v == nil {
		return nil, nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "plan", ID: id}}, errNoVersion)
	}
	return p, v, nil
}

// UpdateDraft replaces a draft's content (plan.manage); the caller becomes
// one of its authors. A version past its draft is never changed.
func (s *Service) UpdateDraft(ctx context.Context, call *medguard.Call, id string, version int, in DraftChanges) (*Plan, error) {
	c, err := checkContent(Content(in))
	if err != nil {
		return nil, err
	}
	p, v, err := s.loadVersion(ctx, call, policy.PlanManage, "plan.draft_update", id, version)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	content, _ := json.Marshal(c)
	authors, _ := json.Marshal(addAuthor(v.authors, call))
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanManage, AuditAction: "plan.draft_update",
		Resource: planResource(p.ID)}, func(policy.Decision) (audit.Mutation, error) {
		if v.Status != Draft {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "version_immutable",
				Message: "only a draft is changed: a version in review or published stays as it is (start a new version)"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE plan_versions SET title = $1, content = $2, authors = $3, updated_at = $4
				WHERE plan_id = $5 AND version = $6 AND status = $7 AND updated_at = $8`, c.Title, string(content), string(authors),
				medguard.Millis(now), p.ID, version, Draft, v.updatedAt)
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			if p.PublishedVersion == 0 {
				if _, err := tx.ExecContext(ctx, `UPDATE plans SET title = $1, updated_at = $2 WHERE id = $3`, c.Title,
					medguard.Millis(now), p.ID); err != nil {
					return err
				}
			}
			return s.addEvent(ctx, tx, p.ID, version, EventEdited, call.Actor.Name, now, nil)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, p.ID, true)
}

// NewVersion starts a new draft of a published plan, a copy of the version
// in force (plan.manage): the way to change a published plan. A plan has
// one version in the workflow at a time.
func (s *Service) NewVersion(ctx context.Context, call *medguard.Call, id string) (*Plan, error) {
	p, err := s.loadFor(ctx, call, policy.PlanManage, "plan.version_create", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	next := 1
	if len(p.versions) > 0 {
		next = p.versions[0].Version.Version + 1
	}
	cur := p.version(p.PublishedVersion)
	authors, _ := json.Marshal(addAuthor(nil, call))
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanManage, AuditAction: "plan.version_create",
		Resource: planResource(p.ID)}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case p.OpenVersion != 0:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: fmt.Sprintf("version %d is still in the workflow", p.OpenVersion)}
		case cur == nil:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the plan has no published version to start from"}
		}
		content, _ := json.Marshal(cur.Content)
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO plan_versions (plan_id, version, status, title, content, authors, created_at,
				updated_at, submitted_by, reviewed_by, reviewed_by_id, approved_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, '', '', '', '')`,
				p.ID, next, Draft, cur.Title, string(content), string(authors), medguard.Millis(now))
			if storage.IsConflict(err) {
				return errMoved
			}
			if err != nil {
				return err
			}
			return s.addEvent(ctx, tx, p.ID, next, EventNewVersion, call.Actor.Name, now, nil)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, p.ID, true)
}

// move changes a version's state from one to another within tx.
func move(ctx context.Context, tx *sql.Tx, planID string, version int, from, to string, set string, args ...any) error {
	q := `UPDATE plan_versions SET status = $1` + set + ` WHERE plan_id = $2 AND version = $3 AND status = $4`
	res, err := tx.ExecContext(ctx, q, append([]any{to, planID, version, from}, args...)...)
	return storage.Affected(res, err, errMoved)
}

// Submit sends a draft to expert review (plan.manage); the submitter
// becomes one of its authors.
func (s *Service) Submit(ctx context.Context, call *medguard.Call, id string, version int, in Note) (*Plan, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, false); err != nil {
		return nil, err
	}
	p, v, err := s.loadVersion(ctx, call, policy.PlanManage, "plan.submit", id, version)
	if err != nil {
		return nil, err
	}
	note, err := s.sealNote(ctx, p.ID, in.Note)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	authors, _ := json.Marshal(addAuthor(v.authors, call))
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanManage, AuditAction: "plan.submit",
		Resource: planResource(p.ID)}, func(policy.Decision) (audit.Mutation, error) {
		if v.Status != Draft {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "only a draft is submitted for review"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if err := move(ctx, tx, p.ID, version, Draft, InReview, `, authors = $5, submitted_by = $6, submitted_at = $7, updated_at = $7`,
				string(authors), call.Actor.Name, medguard.Millis(now)); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, p.ID, version, EventSubmitted, call.Actor.Name, now, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, p.ID, true)
}

func ids(as []author) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

// decide begins a decision on a version (the expert review, the
// leadership's approval): the note is required; the audit action is base,
// or base+"_return" for a version sent back; the version is loaded under
// perm and the note sealed.
func (s *Service) decide(ctx context.Context, call *medguard.Call, perm policy.Permission, base, id string, version int,
	in *Decision) (*stored, *storedVersion, string, []byte, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, true); err != nil {
		return nil, nil, "", nil, err
	}
	action := base
	if !in.Approve {
		action = base + "_return"
	}
	p, v, err := s.loadVersion(ctx, call, perm, action, id, version)
	if err != nil {
		return nil, nil, "", nil, err
	}
	note, err := s.sealNote(ctx, p.ID, in.Note)
	if err != nil {
		return nil, nil, "", nil, err
	}
	return p, v, action, note, nil
}

// Review is the expert review of a submitted version (plan.review), never
// by one of its authors: approved, it waits for the leadership; returned,
// it is a draft again. The note is required.
func (s *Service) Review(ctx context.Context, call *medguard.Call, id string, version int, in Decision) (*Plan, error) {
	p, v, action, note, err := s.decide(ctx, call, policy.PlanReview, "plan.review", id, version, &in)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanReview, AuditAction: action,
		Resource: policy.Resource{Type: "plan", ID: p.ID, Signers: ids(v.authors)}}, func(policy.Decision) (audit.Mutation, error) {
		if v.Status != InReview {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the version is not waiting for an expert review"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if in.Approve {
				if err := move(ctx, tx, p.ID, version, InReview, Reviewed, `, reviewed_by = $5, reviewed_by_id = $6, reviewed_at = $7,
					updated_at = $7`, call.Actor.Name, call.Actor.ID, medguard.Millis(now)); err != nil {
					return err
				}
				return s.addEvent(ctx, tx, p.ID, version, EventReviewed, call.Actor.Name, now, note)
			}
			if err := move(ctx, tx, p.ID, version, InReview, Draft, `, submitted_by = '', submitted_at = NULL, updated_at = $5`,
				medguard.Millis(now)); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, p.ID, version, EventReturned, call.Actor.Name, now, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, p.ID, true)
}

// reviewDue is when a plan published or reviewed at t is due for its
// yearly review, in the hospital's calendar (29 February → 1 March).
func (s *Service) reviewDue(t time.Time) time.Time {
	return t.In(s.cfg.Location).AddDate(0, s.cfg.ReviewMonths, 0).UTC()
}

// Approve is the leadership's decision on a reviewed version
// (plan.approve), never by one of its authors or its reviewer: approved,
// it is published — the version in force, the previous one superseded —
// and its yearly review is due ReviewMonths later; returned, it is a
// draft again and needs a new expert review.
func (s *Service) Approve(ctx context.Context, call *medguard.Call, id string, version int, in Decision) (*Plan, error) {
	p, v, action, note, err := s.decide(ctx, call, policy.PlanApprove, "plan.approve", id, version, &in)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	due := s.reviewDue(now)
	signers := append(ids(v.authors), v.reviewerID)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanApprove, AuditAction: action,
		Resource: policy.Resource{Type: "plan", ID: p.ID, Signers: signers}}, func(policy.Decision) (audit.Mutation, error) {
		if v.Status != Reviewed {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the version is not waiting for the leadership's approval"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if !in.Approve {
				if err := move(ctx, tx, p.ID, version, Reviewed, Draft, `, submitted_by = '', submitted_at = NULL, reviewed_by = '',
					reviewed_by_id = '', reviewed_at = NULL, updated_at = $5`, medguard.Millis(now)); err != nil {
					return err
				}
				return s.addEvent(ctx, tx, p.ID, version, EventApprovalReturned, call.Actor.Name, now, note)
			}
			if err := move(ctx, tx, p.ID, version, Reviewed, Published, `, approved_by = $5, approved_at = $6, updated_at = $6`,
				call.Actor.Name, medguard.Millis(now)); err != nil {
				return err
			}
			if p.PublishedVersion > 0 {
				if err := move(ctx, tx, p.ID, p.PublishedVersion, Published, Superseded, ``); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, `UPDATE plans SET title = $1, published_version = $2, published_at = $3, review_due_at = $4,
				review_notified_at = NULL, updated_at = $3 WHERE id = $5 AND updated_at = $6`, v.Title, version, medguard.Millis(now),
				medguard.Millis(due), p.ID, p.updatedAt)
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, p.ID, version, EventPublished, call.Actor.Name, now, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	out, err := s.plan(ctx, p.ID, true)
	if err == nil && in.Approve {
		s.planReviewed(ctx, *out)
	}
	return out, err
}

// AnnualReview records a published plan's yearly review (plan.review),
// never by one of the authors of the version in force: the plan stays as
// it is and its next review is due ReviewMonths later. (A review that
// finds the plan wanting starts a new version instead.) An overdue alert
// about it is resolved.
func (s *Service) AnnualReview(ctx context.Context, call *medguard.Call, id string, in Note) (*Plan, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, true); err != nil {
		return nil, err
	}
	p, err := s.loadFor(ctx, call, policy.PlanReview, "plan.annual_review", id)
	if err != nil {
		return nil, err
	}
	note, err := s.sealNote(ctx, p.ID, in.Note)
	if err != nil {
		return nil, err
	}
	var signers []string
	cur := p.version(p.PublishedVersion)
	if cur != nil {
		signers = ids(cur.authors)
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	due := s.reviewDue(now)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PlanReview, AuditAction: "plan.annual_review",
		Resource: policy.Resource{Type: "plan", ID: p.ID, Signers: signers}}, func(policy.Decision) (audit.Mutation, error) {
		if cur == nil {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the plan has no published version to review"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE plans SET reviewed_at = $1, reviewed_by = $2, review_due_at = $3, review_notified_at = NULL,
				updated_at = $1 WHERE id = $4 AND updated_at = $5`, medguard.Millis(now), call.Actor.Name, medguard.Millis(due), p.ID, p.updatedAt)
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, p.ID, p.PublishedVersion, EventAnnualReview, call.Actor.Name, now, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	out, err := s.plan(ctx, p.ID, true)
	if err == nil {
		s.planReviewed(ctx, *out)
	}
	return out, err
}
