// Package risks owns the risk register of the security office (风险评估,
// seed 001 §4, SPEC §10, issue 13): each risk names what is at risk (an
// asset of the assets register, by id, or a system by name), the threat
// and the vulnerability it would exploit, its likelihood and impact on a
// 5 × 5 scale, the level their product falls in, the treatment chosen
// (accept, reduce, transfer, avoid), its owner and the date of its next
// review. A review that falls due unheld is announced once (an alert,
// resolved when the risk is reviewed). Accepting a high or critical risk
// is a decision of the leadership group (risk.accept), never of the person
// who proposed it.
//
// It also keeps the risk assessments (a set of risks assessed for one
// system) and the checklist of a new system's introduction (新系统上线检查),
// whose risk-assessment item is satisfied only by linking a completed
// assessment, and whose go-live the leadership decides once every item is
// done.
//
// Every operation goes through the gate and into the audit log; free text
// that could name people (treatment plans, notes, summaries) is sealed
// with a system data key. This package never reads patient data, nor
// another package's tables: it reads staff through the identity service
// and assets through AssetLookup.
package risks

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"regexp"
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

// Schema is the risk register's tables.
func Schema() storage.Schema { return storage.NewSchema("risks", migrations, "migrations") }

// The levels of a risk, by its score (likelihood × impact, 1 to 25).
const (
	Low      = "low"      // 1–4: 低
	Medium   = "medium"   // 5–9: 中
	High     = "high"     // 10–16: 高
	Critical = "critical" // 20–25: 极高
)

// Levels lists the levels, lowest first.
var Levels = []string{Low, Medium, High, Critical}

// Score is a risk's score: likelihood × impact, each from 1 to 5.
func Score(likelihood, impact int) int { return likelihood * impact }

// LevelOf returns the level of a score. The bands split the 5 × 5 matrix
// along its anti-diagonals, as GB/T 20984 and ISO 27005 practice does:
// 1–4 low (nothing worse than unlikely and minor), 5–9 medium (a
// catastrophic impact that is rare, or a minor one that is almost certain,
// up to 3 × 3), 10–16 high (at least likely and major, or possible and
// severe), 20–25 critical (a severe or catastrophic impact that is likely
// or almost certain). No product of two numbers from 1 to 5 falls between
// 16 and 20, so the bands leave no score out.
func LevelOf(score int) string {
	switch {
	case score >= 20:
		return Critical
	case score >= 10:
		return High
	case score >= 5:
		return Medium
	}
	return Low
}

// The treatments of a risk.
const (
	Accept   = "accept"   // 接受
	Reduce   = "reduce"   // 降低
	Transfer = "transfer" // 转移
	Avoid    = "avoid"    // 规避
)

// Treatments lists the treatments.
var Treatments = []string{Accept, Reduce, Transfer, Avoid}

// The states of a risk's acceptance: not asked for (another treatment);
// recorded (a low or medium risk, accepted by whoever manages it); pending
// (a high or critical risk, waiting for the leadership); accepted or
// refused by the leadership (a refused acceptance needs another treatment
// at the next review).
const (
	AcceptanceNone     = "none"
	AcceptanceRecorded = "recorded"
	AcceptancePending  = "pending"
	AcceptanceAccepted = "accepted"
	AcceptanceRefused  = "refused"
)

// AcceptanceStates lists the states of an acceptance.
var AcceptanceStates = []string{AcceptanceNone, AcceptanceRecorded, AcceptancePending, AcceptanceAccepted, AcceptanceRefused}

// The states of a risk: open while it exists, closed once the asset is
// retired or the risk is gone (a closed risk is no longer reviewed).
const (
	Open   = "open"
	Closed = "closed"
)

// Statuses lists the states of a risk.
var Statuses = []string{Open, Closed}

// Config holds the rules of the register.
type Config struct {
	// ReviewEvery is, by level, the longest time until a risk's next
	// review (default: critical 90 days, high 180 days, medium and low
	// 365 days). A review date further off is refused.
	ReviewEvery map[string]time.Duration
}

// DefaultReviewEvery are the default review intervals by level.
var DefaultReviewEvery = map[string]time.Duration{
	Critical: 90 * 24 * time.Hour, High: 180 * 24 * time.Hour, Medium: 365 * 24 * time.Hour, Low: 365 * 24 * time.Hour,
}

func (c *Config) setDefaults() {
	m := map[string]time.Duration{}
	for l, d := range DefaultReviewEvery {
		m[l] = d
		if v := c.ReviewEvery[l]; v > 0 {
			m[l] = v
		}
	}
	c.ReviewEvery = m
}

// AssetLookup is what the register needs of the assets register
// (internal/assets), which the App wires in: the name of an asset by its
// id, and whether it exists. Without it, asset ids and names are stored as
// given.
type AssetLookup interface {
	AssetName(ctx context.Context, id string) (name string, ok bool, err error)
}

// Service is the risk register.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config

	mu         sync.Mutex
	assets     AssetLookup
	onOverdue  medguard.Hooks[OverdueReview]
	onReviewed medguard.Hooks[Risk]
}

// New returns the risk register.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, identity: id, clock: g.Clock(), cfg: cfg}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

// SetAssets makes the register check asset ids against the assets
// register and take their names from it (nil: store them as given).
func (s *Service) SetAssets(a AssetLookup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assets = a
}

// keyName is the system data key sealing this package's text.
const keyName = "risks"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// Risk is a risk of the register.
type Risk struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// AssetID is the asset at risk, by its id in the assets register (or
	// as given), and AssetName its name; either may be empty.
	AssetID       string `json:"asset_id,omitempty"`
	AssetName     string `json:"asset_name,omitempty"`
	Threat        string `json:"threat"`
	Vulnerability string `json:"vulnerability"`
	Likelihood    int    `json:"likelihood"`
	Impact        int    `json:"impact"`
	Score         int    `json:"score"`
	Level         string `json:"level"`
	Treatment     string `json:"treatment"`
	// TreatmentPlan says what is done about it (sealed at rest).
	TreatmentPlan string `json:"treatment_plan"`
	// Acceptance is the state of an acceptance (AcceptanceStates);
	// AcceptanceBy decided it (or recorded it), at AcceptanceAt.
	Acceptance   string     `json:"acceptance"`
	AcceptanceBy string     `json:"acceptance_by,omitempty"`
	AcceptanceAt *time.Time `json:"acceptance_at,omitempty"`
	// Owner is the username of the person answerable for the risk.
	Owner        string `json:"owner"`
	AssessmentID string `json:"assessment_id,omitempty"`
	Status       string `json:"status"`
	// ReviewDueAt is when the next review is due; ReviewOverdue says it
	// passed unheld (an open risk only).
	ReviewDueAt    time.Time  `json:"review_due_at"`
	ReviewOverdue  bool       `json:"review_overdue"`
	LastReviewedAt *time.Time `json:"last_reviewed_at,omitempty"`
	CreatedBy      string     `json:"created_by"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// History is every change, oldest first (a single risk only).
	History []Event `json:"history,omitempty"`
}

// Event is one change of a risk: its creation, a review, a change of its
// description, an acceptance decided, its closing.
type Event struct {
	Seq         int       `json:"seq"`
	Kind        string    `json:"kind"`
	Actor       string    `json:"actor"`
	At          time.Time `json:"at"`
	Likelihood  int       `json:"likelihood"`
	Impact      int       `json:"impact"`
	Level       string    `json:"level"`
	Treatment   string    `json:"treatment"`
	ReviewDueAt time.Time `json:"review_due_at"`
	Note        string    `json:"note,omitempty"`
}

// The kinds of event.
const (
	EventCreated  = "created"
	EventReviewed = "reviewed"
	EventChanged  = "changed"
	EventAccepted = "accepted"
	EventRefused  = "refused"
	EventClosed   = "closed"
)

// EventKinds lists the kinds of event.
var EventKinds = []string{EventCreated, EventReviewed, EventChanged, EventAccepted, EventRefused, EventClosed}

// NewRisk records a risk (the body of POST /api/v1/risks).
type NewRisk struct {
	Title         string `json:"title"`
	AssetID       string `json:"asset_id,omitempty"`
	AssetName     string `json:"asset_name,omitempty"`
	Threat        string `json:"threat"`
	Vulnerability string `json:"vulnerability"`
	Likelihood    int    `json:"likelihood"`
	Impact        int    `json:"impact"`
	Treatment     string `json:"treatment"`
	TreatmentPlan string `json:"treatment_plan"`
	Owner         string `json:"owner"`
	// ReviewAt is the first review's date (default: the level's interval
	// from now, and never later).
	ReviewAt     time.Time `json:"review_at,omitzero"`
	AssessmentID string    `json:"assessment_id,omitempty"`
}

// RiskChanges changes a risk's description and owner (the body of PATCH
// /api/v1/risks/{id}); its scores and treatment change only by a review.
type RiskChanges struct {
	Title         *string `json:"title,omitempty"`
	AssetID       *string `json:"asset_id,omitempty"`
	AssetName     *string `json:"asset_name,omitempty"`
	Threat        *string `json:"threat,omitempty"`
	Vulnerability *string `json:"vulnerability,omitempty"`
	Owner         *string `json:"owner,omitempty"`
	TreatmentPlan *string `json:"treatment_plan,omitempty"`
}

// Review is a risk's review (the body of POST /api/v1/risks/{id}/review):
// its likelihood and impact assessed again, the treatment kept or changed,
// and the next review's date (default: the level's interval).
type Review struct {
	Likelihood    int       `json:"likelihood"`
	Impact        int       `json:"impact"`
	Treatment     string    `json:"treatment"`
	TreatmentPlan string    `json:"treatment_plan,omitempty"`
	Note          string    `json:"note,omitempty"`
	NextReviewAt  time.Time `json:"next_review_at,omitzero"`
}

// AcceptanceDecision decides a high or critical risk's pending acceptance
// (the body of POST /api/v1/risks/{id}/acceptance).
type AcceptanceDecision struct {
	// Accept is true to accept the risk, false to refuse the acceptance.
	Accept bool   `json:"accept"`
	Note   string `json:"note"`
}

// Closing closes a risk (the body of POST /api/v1/risks/{id}/close).
type Closing struct {
	Note string `json:"note"`
}

// MaxText is the longest treatment plan, note or summary, in characters.
const MaxText = 2000

// assetIDPattern is the shape of an asset's id: the assets register's
// opaque ids, or a hospital's own asset tag (e.g. ITD-SRV-0012).
var assetIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// asset checks an asset's id and name; with the assets register wired in,
// the id must be one of its assets and the name defaults to its.
func (s *Service) asset(ctx context.Context, id, name string) (string, string, error) {
	id = strings.TrimSpace(id)
	var err error
	if name, err = medguard.Line("asset_name", name, 100, false); err != nil {
		return id, name, err
	}
	if id == "" {
		return id, name, nil
	}
	if !assetIDPattern.MatchString(id) {
		return id, name, medguard.InvalidField("asset_id", "asset_id must be 1-64 letters, digits, '.', '_' or '-'")
	}
	s.mu.Lock()
	a := s.assets
	s.mu.Unlock()
	if a == nil {
		return id, name, nil
	}
	n, ok, err := a.AssetName(ctx, id)
	if err != nil {
		return id, name, medguard.Wrap("risks.asset", err)
	}
	if !ok {
		return id, name, medguard.InvalidField("asset_id", "no asset has this id")
	}
	if name == "" {
		name = n
	}
	return id, name, nil
}

// owner checks that username names an active member of staff.
func (s *Service) owner(ctx context.Context, field, username string) (string, error) {
	username = strings.TrimSpace(username)
	if username == "" {
		return "", medguard.InvalidField(field, "%s is required", field)
	}
	if len(username) > 64 {
		return "", medguard.InvalidField(field, "no active member of staff has this username")
	}
	u, err := s.identity.UserByUsername(ctx, username)
	if identity.IsNotFound(err) || err == nil && u.Status != identity.Active {
		return "", medguard.InvalidField(field, "no active member of staff has this username")
	}
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

// scale checks a likelihood or an impact.
func scale(field string, v int) error {
	if v < 1 || v > 5 {
		return medguard.InvalidField(field, "%s must be from 1 to 5", field)
	}
	return nil
}

func treatment(field, v string) error {
	if !slices.Contains(Treatments, v) {
		return medguard.InvalidField(field, "%s must be one of %s", field, strings.Join(Treatments, ", "))
	}
	return nil
}

// reviewDue returns the next review's date: the one asked for (which must
// be in the future and within the level's interval) or the interval's end.
func (s *Service) reviewDue(field string, asked time.Time, level string, now time.Time) (time.Time, error) {
	limit := now.Add(s.cfg.ReviewEvery[level])
	if asked.IsZero() {
		return limit.Truncate(time.Millisecond), nil
	}
	asked = asked.UTC().Truncate(time.Millisecond)
	switch {
	case !asked.After(now):
		return asked, medguard.InvalidField(field, "%s must be in the future", field)
	case asked.After(limit):
		return asked, medguard.InvalidField(field, "a %s risk is reviewed within %d days", level, int(s.cfg.ReviewEvery[level].Hours()/24))
	}
	return asked, nil
}

// acceptanceFor is the acceptance state of a risk treated so at score.
func acceptanceFor(treatment string, score int) string {
	switch {
	case treatment != Accept:
		return AcceptanceNone
	case score >= 10:
		return AcceptancePending
	}
	return AcceptanceRecorded
}

var errNoRisk = &medguard.Error{Kind: medguard.NotFound, Message: "no such risk"}

// errMoved is a change that found the risk in another state than it read.
var errMoved = &medguard.Error{Kind: medguard.Conflict, Message: "the risk changed meanwhile: read it again"}

func riskResource(id string) policy.Resource { return policy.Resource{Type: "risk", ID: id} }

// CreateRisk records a risk (risk.manage). A high or critical risk whose
// treatment is acceptance waits for the leadership's decision.
func (s *Service) CreateRisk(ctx context.Context, call *medguard.Call, in NewRisk) (*Risk, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.Title, err = medguard.Line("title", in.Title, 200, true); err != nil {
		return nil, err
	}
	if in.AssetID, in.AssetName, err = s.asset(ctx, in.AssetID, in.AssetName); err != nil {
		return nil, err
	}
	if in.Threat, err = medguard.Line("threat", in.Threat, 200, true); err != nil {
		return nil, err
	}
	if in.Vulnerability, err = medguard.Line("vulnerability", in.Vulnerability, 200, true); err != nil {
		return nil, err
	}
	if err := scale("likelihood", in.Likelihood); err != nil {
		return nil, err
	}
	if err := scale("impact", in.Impact); err != nil {
		return nil, err
	}
	if err := treatment("treatment", in.Treatment); err != nil {
		return nil, err
	}
	if in.TreatmentPlan, err = medguard.Text("treatment_plan", in.TreatmentPlan, MaxText, true); err != nil {
		return nil, err
	}
	if in.Owner, err = s.owner(ctx, "owner", in.Owner); err != nil {
		return nil, err
	}
	score := Score(in.Likelihood, in.Impact)
	level := LevelOf(score)
	due, err := s.reviewDue("review_at", in.ReviewAt, level, now)
	if err != nil {
		return nil, err
	}
	if in.AssessmentID != "" {
		a, err := s.assessment(ctx, in.AssessmentID)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, medguard.InvalidField("assessment_id", "no such risk assessment")
		}
		if a.Status != AssessmentDraft {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "assessment_id", Message: "the assessment is completed: start another"}
		}
	}
	id := medguard.NewID(now)
	plan, err := s.seal(ctx, "risks", id, "treatment_plan", in.TreatmentPlan)
	if err != nil {
		return nil, err
	}
	r := &Risk{ID: id, Title: in.Title, AssetID: in.AssetID, AssetName: in.AssetName, Threat: in.Threat, Vulnerability: in.Vulnerability,
		Likelihood: in.Likelihood, Impact: in.Impact, Score: score, Level: level, Treatment: in.Treatment, TreatmentPlan: in.TreatmentPlan,
		Acceptance: acceptanceFor(in.Treatment, score), Owner: in.Owner, AssessmentID: in.AssessmentID, Status: Open, ReviewDueAt: due,
		CreatedBy: call.Actor.Name, CreatedAt: now, UpdatedAt: now}
	accepted, proposer := 0, ""
	switch r.Acceptance {
	case AcceptanceRecorded:
		accepted, r.AcceptanceBy, r.AcceptanceAt = score, call.Actor.Name, &now
	case AcceptancePending:
		proposer = call.Actor.ID
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.create",
		Resource: riskResource(id)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO risks (id, title, asset_id, asset_name, threat, vulnerability, likelihood,
				impact, score, treatment, treatment_plan, acceptance, acceptance_proposed_by, acceptance_decided_by, acceptance_decided_at,
				accepted_score, owner, assessment_id, status, review_due_at, created_by, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
				id, r.Title, r.AssetID, r.AssetName, r.Threat, r.Vulnerability, r.Likelihood, r.Impact, score, r.Treatment, plan,
				r.Acceptance, proposer, r.AcceptanceBy, millisOrNil(r.AcceptanceAt), accepted, r.Owner, r.AssessmentID, Open,
				medguard.Millis(due), call.Actor.Name, medguard.Millis(now), medguard.Millis(now)); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, id, EventCreated, call.Actor.Name, now, r.Likelihood, r.Impact, r.Treatment, due, nil)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func millisOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return medguard.Millis(*t)
}

// sealNote seals the note of a risk's event ("" stays nil). Nothing is
// sealed inside a transaction, which may have to make the data key in one
// of its own.
func (s *Service) sealNote(ctx context.Context, riskID, note string) ([]byte, error) {
	if note == "" {
		return nil, nil
	}
	return s.seal(ctx, "risk_events", riskID, "note", note)
}

// addEvent adds an event to a risk's history within tx, its note sealed
// beforehand (sealNote).
func (s *Service) addEvent(ctx context.Context, tx *sql.Tx, riskID, kind, actor string, at time.Time, likelihood, impact int,
	treatment string, due time.Time, sealed []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO risk_events (risk_id, seq, kind, actor, at, likelihood, impact, treatment, review_due_at, note)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 FROM risk_events WHERE risk_id = $1`,
		riskID, kind, actor, medguard.Millis(at), likelihood, impact, treatment, medguard.Millis(due), sealed)
	return err
}

const riskColumns = `id, title, asset_id, asset_name, threat, vulnerability, likelihood, impact, score, treatment, treatment_plan,
	acceptance, acceptance_proposed_by, acceptance_decided_by, acceptance_decided_at, accepted_score, owner, assessment_id, status,
	review_due_at, reviewed_at, created_by, created_at, updated_at`

// stored is a risk as read, with what the operations need beyond it.
type stored struct {
	Risk
	proposedBy    string // the id of who proposed a pending acceptance
	acceptedScore int
}

func (s *Service) scanRisk(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time) (*stored, error) {
	var r stored
	var plan []byte
	var decidedAt, reviewedAt sql.NullInt64
	var due, created, updated int64
	if err := sc.Scan(&r.ID, &r.Title, &r.AssetID, &r.AssetName, &r.Threat, &r.Vulnerability, &r.Likelihood, &r.Impact, &r.Score,
		&r.Treatment, &plan, &r.Acceptance, &r.proposedBy, &r.AcceptanceBy, &decidedAt, &r.acceptedScore, &r.Owner, &r.AssessmentID,
		&r.Status, &due, &reviewedAt, &r.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if r.TreatmentPlan, err = s.open(ctx, "risks", r.ID, "treatment_plan", plan); err != nil {
		return nil, err
	}
	r.Level = LevelOf(r.Score)
	r.ReviewDueAt, r.CreatedAt, r.UpdatedAt = medguard.FromMillis(due), medguard.FromMillis(created), medguard.FromMillis(updated)
	if decidedAt.Valid {
		t := medguard.FromMillis(decidedAt.Int64)
		r.AcceptanceAt = &t
	}
	if reviewedAt.Valid {
		t := medguard.FromMillis(reviewedAt.Int64)
		r.LastReviewedAt = &t
	}
	r.ReviewOverdue = r.Status == Open && !now.Before(r.ReviewDueAt)
	return &r, nil
}

// risk reads a risk as of now; nil when there is none.
func (s *Service) risk(ctx context.Context, id string, now time.Time) (*stored, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	r, err := s.scanRisk(ctx, s.db.QueryRowContext(ctx, `SELECT `+riskColumns+` FROM risks WHERE id = $1`, id), now)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, medguard.Wrap("risks.risk", err)
}

// load reads a risk for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*stored, error) {
	r, err := s.risk(ctx, id, s.clock.Now())
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "risk", ID: id}}, errNoRisk)
	}
	return r, nil
}

// history reads a risk's events, oldest first.
func (s *Service) history(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, kind, actor, at, likelihood, impact, treatment, review_due_at, note
		FROM risk_events WHERE risk_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, medguard.Wrap("risks.history", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at, due int64
		var note []byte
		if err := rows.Scan(&e.Seq, &e.Kind, &e.Actor, &at, &e.Likelihood, &e.Impact, &e.Treatment, &due, &note); err != nil {
			return nil, medguard.Wrap("risks.history", err)
		}
		e.At, e.ReviewDueAt, e.Level = medguard.FromMillis(at), medguard.FromMillis(due), LevelOf(Score(e.Likelihood, e.Impact))
		if e.Note, err = s.open(ctx, "risk_events", id, "note", note); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, medguard.Wrap("risks.history", rows.Err())
}

// GetRisk returns a risk with its history (risk.read).
func (s *Service) GetRisk(ctx context.Context, call *medguard.Call, id string) (*Risk, error) {
	r, err := s.load(ctx, call, policy.RiskRead, "risk.read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.read",
		Resource: riskResource(r.ID)}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		r.History, err = s.history(ctx, r.ID)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return &r.Risk, nil
}

// RiskQuery filters the register. The zero value lists every risk.
type RiskQuery struct {
	Status    string
	Level     string
	Treatment string
	// Acceptance keeps the risks whose acceptance is in this state.
	Acceptance string
	// Overdue keeps the open risks whose review is overdue.
	Overdue bool
	AssetID string
	// Likelihood and Impact, if set, keep one cell of the heat map.
	Likelihood, Impact int
	AssessmentID       string
	// After is the cursor (a risk's id: newest first) and Limit the page.
	After string
	Limit int
}

// levelScores are the lowest and highest score of each level.
var levelScores = map[string][2]int{Low: {1, 4}, Medium: {5, 9}, High: {10, 16}, Critical: {20, 25}}

// ListRisks lists the risks, newest first, a page at a time (risk.read);
// next is the cursor of the following page, "" at the end.
func (s *Service) ListRisks(ctx context.Context, call *medguard.Call, q RiskQuery) ([]Risk, string, error) {
	switch {
	case q.Status != "" && !slices.Contains(Statuses, q.Status):
		return nil, "", medguard.InvalidField("status", "status must be one of %s", strings.Join(Statuses, ", "))
	case q.Level != "" && !slices.Contains(Levels, q.Level):
		return nil, "", medguard.InvalidField("level", "level must be one of %s", strings.Join(Levels, ", "))
	case q.Treatment != "" && !slices.Contains(Treatments, q.Treatment):
		return nil, "", medguard.InvalidField("treatment", "treatment must be one of %s", strings.Join(Treatments, ", "))
	case q.Acceptance != "" && !slices.Contains(AcceptanceStates, q.Acceptance):
		return nil, "", medguard.InvalidField("acceptance", "acceptance must be one of %s", strings.Join(AcceptanceStates, ", "))
	case q.Likelihood != 0 && scale("likelihood", q.Likelihood) != nil:
		return nil, "", scale("likelihood", q.Likelihood)
	case q.Impact != 0 && scale("impact", q.Impact) != nil:
		return nil, "", scale("impact", q.Impact)
	case q.AssetID != "" && !assetIDPattern.MatchString(q.AssetID):
		return nil, "", medguard.InvalidField("asset_id", "asset_id must be 1-64 letters, digits, '.', '_' or '-'")
	case q.AssessmentID != "" && !medguard.ValidID(q.AssessmentID):
		return nil, "", medguard.InvalidField("assessment_id", "assessment_id is not an id")
	case q.After != "" && !medguard.ValidID(q.After):
		return nil, "", medguard.InvalidField("cursor", "cursor is not one this server gave out")
	}
	if q.Limit <= 0 || q.Limit > 2000 {
		q.Limit = 2000
	}
	now := s.clock.Now()
	var where storage.Where
	if q.Status != "" {
		where.Add("status = ?", q.Status)
	}
	if q.Level != "" {
		b := levelScores[q.Level]
		where.Add("score >= ?", b[0])
		where.Add("score <= ?", b[1])
	}
	if q.Treatment != "" {
		where.Add("treatment = ?", q.Treatment)
	}
	if q.Acceptance != "" {
		where.Add("acceptance = ?", q.Acceptance)
	}
	if q.Overdue {
		where.Add("status = ?", Open)
		where.Add("review_due_at <= ?", medguard.Millis(now))
	}
	if q.AssetID != "" {
		where.Add("asset_id = ?", q.AssetID)
	}
	if q.Likelihood != 0 {
		where.Add("likelihood = ?", q.Likelihood)
	}
	if q.Impact != 0 {
		where.Add("impact = ?", q.Impact)
	}
	if q.AssessmentID != "" {
		where.Add("assessment_id = ?", q.AssessmentID)
	}
	if q.After != "" {
		where.Add("id < ?", q.After)
	}
	query := `SELECT ` + riskColumns + ` FROM risks WHERE ` + where.String() + ` ORDER BY id DESC`
	var out []Risk
	var next string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.list",
		Resource: policy.Resource{Type: "risk"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, next, err = storage.Page(ctx, s.db, query, &where, q.Limit, func(rows *sql.Rows) (Risk, error) {
			r, err := s.scanRisk(ctx, rows, now)
			if err != nil {
				return Risk{}, err
			}
			return r.Risk, nil
		}, func(r Risk) string { return r.ID })
		return nil, err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// UpdateRisk changes a risk's description, asset, owner or treatment plan
// (risk.manage); its scores and treatment change only by a review.
func (s *Service) UpdateRisk(ctx context.Context, call *medguard.Call, id string, in RiskChanges) (*Risk, error) {
	var err error
	if in.Title == nil && in.AssetID == nil && in.AssetName == nil && in.Threat == nil && in.Vulnerability == nil && in.Owner == nil &&
		in.TreatmentPlan == nil {
		return nil, medguard.InvalidField("body", "nothing to change")
	}
	r, err := s.load(ctx, call, policy.RiskManage, "risk.update", id)
	if err != nil {
		return nil, err
	}
	before := r.Risk
	if in.Title != nil {
		if r.Title, err = medguard.Line("title", *in.Title, 200, true); err != nil {
			return nil, err
		}
	}
	if in.Threat != nil {
		if r.Threat, err = medguard.Line("threat", *in.Threat, 200, true); err != nil {
			return nil, err
		}
	}
	if in.Vulnerability != nil {
		if r.Vulnerability, err = medguard.Line("vulnerability", *in.Vulnerability, 200, true); err != nil {
			return nil, err
		}
	}
	if in.AssetID != nil || in.AssetName != nil {
		id, name := r.AssetID, r.AssetName
		if in.AssetID != nil {
			id = *in.AssetID
			if in.AssetName == nil {
				name = ""
			}
		}
		if in.AssetName != nil {
			name = *in.AssetName
		}
		if r.AssetID, r.AssetName, err = s.asset(ctx, id, name); err != nil {
			return nil, err
		}
	}
	if in.Owner != nil {
		if r.Owner, err = s.owner(ctx, "owner", *in.Owner); err != nil {
			return nil, err
		}
	}
	if in.TreatmentPlan != nil {
		if r.TreatmentPlan, err = medguard.Text("treatment_plan", *in.TreatmentPlan, MaxText, true); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	plan, err := s.seal(ctx, "risks", r.ID, "treatment_plan", r.TreatmentPlan)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.update",
		Resource: riskResource(r.ID)}, func(policy.Decision) (audit.Mutation, error) {
		if r.Status != Open {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the risk is closed"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE risks SET title = $1, asset_id = $2, asset_name = $3, threat = $4, vulnerability = $5,
				owner = $6, treatment_plan = $7, updated_at = $8 WHERE id = $9 AND status = $10 AND updated_at = $11`,
				r.Title, r.AssetID, r.AssetName, r.Threat, r.Vulnerability, r.Owner, plan, medguard.Millis(now), r.ID, Open,
				medguard.Millis(before.UpdatedAt))
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, r.ID, EventChanged, call.Actor.Name, now, r.Likelihood, r.Impact, r.Treatment, r.ReviewDueAt, nil)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	r.UpdatedAt = now
	return &r.Risk, nil
}

// ReviewRisk records a risk's review (risk.manage): its likelihood and
// impact assessed again, the treatment, the next review's date. An
// acceptance the leadership decided holds while the score does not rise
// above the one accepted; otherwise a high or critical risk treated by
// acceptance waits for the leadership again. Once recorded, an overdue
// alert about the risk is resolved (OnReviewed).
func (s *Service) ReviewRisk(ctx context.Context, call *medguard.Call, id string, in Review) (*Risk, error) {
	if err := scale("likelihood", in.Likelihood); err != nil {
		return nil, err
	}
	if err := scale("impact", in.Impact); err != nil {
		return nil, err
	}
	if err := treatment("treatment", in.Treatment); err != nil {
		return nil, err
	}
	var err error
	if in.TreatmentPlan, err = medguard.Text("treatment_plan", in.TreatmentPlan, MaxText, false); err != nil {
		return nil, err
	}
	if in.Note, err = medguard.Text("note", in.Note, MaxText, false); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	score := Score(in.Likelihood, in.Impact)
	due, err := s.reviewDue("next_review_at", in.NextReviewAt, LevelOf(score), now)
	if err != nil {
		return nil, err
	}
	r, err := s.load(ctx, call, policy.RiskManage, "risk.review", id)
	if err != nil {
		return nil, err
	}
	note, err := s.sealNote(ctx, r.ID, in.Note)
	if err != nil {
		return nil, err
	}
	before := r.UpdatedAt
	if in.TreatmentPlan != "" {
		r.TreatmentPlan = in.TreatmentPlan
	}
	plan, err := s.seal(ctx, "risks", r.ID, "treatment_plan", r.TreatmentPlan)
	if err != nil {
		return nil, err
	}
	// The acceptance after the review.
	proposer := r.proposedBy
	switch {
	case in.Treatment != Accept:
		r.Acceptance, r.AcceptanceBy, r.AcceptanceAt, proposer, r.acceptedScore = AcceptanceNone, "", nil, "", 0
	case r.Treatment == Accept && r.Acceptance == AcceptanceAccepted && score <= r.acceptedScore:
		// The leadership's acceptance still covers it.
	case r.Treatment == Accept && r.Acceptance == AcceptancePending && score >= 10:
		// Still waiting: the proposer stays who they were.
	case score >= 10:
		r.Acceptance, r.AcceptanceBy, r.AcceptanceAt, proposer, r.acceptedScore = AcceptancePending, "", nil, call.Actor.ID, 0
	default:
		r.Acceptance, r.AcceptanceBy, r.AcceptanceAt, proposer, r.acceptedScore = AcceptanceRecorded, call.Actor.Name, &now, "", score
	}
	r.Likelihood, r.Impact, r.Score, r.Level, r.Treatment = in.Likelihood, in.Impact, score, LevelOf(score), in.Treatment
	r.ReviewDueAt, r.LastReviewedAt, r.UpdatedAt, r.ReviewOverdue = due, &now, now, false
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.review",
		Resource: riskResource(r.ID)}, func(policy.Decision) (audit.Mutation, error) {
		if r.Status != Open {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the risk is closed"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE risks SET likelihood = $1, impact = $2, score = $3, treatment = $4,
				treatment_plan = $5, acceptance = $6, acceptance_proposed_by = $7, acceptance_decided_by = $8, acceptance_decided_at = $9,
				accepted_score = $10, review_due_at = $11, reviewed_at = $12, review_notified_at = NULL, updated_at = $12
				WHERE id = $13 AND status = $14 AND updated_at = $15`,
				r.Likelihood, r.Impact, score, r.Treatment, plan, r.Acceptance, proposer, r.AcceptanceBy, millisOrNil(r.AcceptanceAt),
				r.acceptedScore, medguard.Millis(due), medguard.Millis(now), r.ID, Open, medguard.Millis(before))
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, r.ID, EventReviewed, call.Actor.Name, now, r.Likelihood, r.Impact, r.Treatment, due, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reviewed(ctx, r.Risk)
	return &r.Risk, nil
}

// DecideAcceptance decides a high or critical risk's pending acceptance
// (risk.accept: the leadership group), never by whoever proposed it
// (deny.separation_of_duties). Refused, the risk stays open with its
// acceptance refused until a review chooses another treatment.
func (s *Service) DecideAcceptance(ctx context.Context, call *medguard.Call, id string, in AcceptanceDecision) (*Risk, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, true); err != nil {
		return nil, err
	}
	action := "risk.accept"
	if !in.Accept {
		action = "risk.refuse"
	}
	r, err := s.load(ctx, call, policy.RiskAccept, action, id)
	if err != nil {
		return nil, err
	}
	note, err := s.sealNote(ctx, r.ID, in.Note)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	before := r.UpdatedAt
	state, kind := AcceptanceAccepted, EventAccepted
	if !in.Accept {
		state, kind = AcceptanceRefused, EventRefused
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskAccept, AuditAction: action,
		Resource: policy.Resource{Type: "risk", ID: r.ID, Signers: nonEmpty(r.proposedBy)}}, func(policy.Decision) (audit.Mutation, error) {
		if r.Status != Open || r.Acceptance != AcceptancePending {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "no acceptance of this risk is waiting for a decision"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			accepted := 0
			if in.Accept {
				accepted = r.Score
			}
			res, err := tx.ExecContext(ctx, `UPDATE risks SET acceptance = $1, acceptance_decided_by = $2, acceptance_decided_at = $3,
				accepted_score = $4, updated_at = $3 WHERE id = $5 AND acceptance = $6 AND updated_at = $7`,
				state, call.Actor.Name, medguard.Millis(now), accepted, r.ID, AcceptancePending, medguard.Millis(before))
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, r.ID, kind, call.Actor.Name, now, r.Likelihood, r.Impact, r.Treatment, r.ReviewDueAt, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	r.Acceptance, r.AcceptanceBy, r.AcceptanceAt, r.UpdatedAt = state, call.Actor.Name, &now, now
	return &r.Risk, nil
}

func nonEmpty(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// CloseRisk closes a risk that no longer exists (the asset retired, the
// threat gone) with a note (risk.manage); it is no longer reviewed, and
// an overdue alert about it is resolved.
func (s *Service) CloseRisk(ctx context.Context, call *medguard.Call, id string, in Closing) (*Risk, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, true); err != nil {
		return nil, err
	}
	r, err := s.load(ctx, call, policy.RiskManage, "risk.close", id)
	if err != nil {
		return nil, err
	}
	note, err := s.sealNote(ctx, r.ID, in.Note)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskManage, AuditAction: "risk.close",
		Resource: riskResource(r.ID)}, func(policy.Decision) (audit.Mutation, error) {
		if r.Status != Open {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the risk is closed already"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE risks SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
				Closed, medguard.Millis(now), r.ID, Open)
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, r.ID, EventClosed, call.Actor.Name, now, r.Likelihood, r.Impact, r.Treatment, r.ReviewDueAt, note)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	r.Status, r.UpdatedAt, r.ReviewOverdue = Closed, now, false
	s.reviewed(ctx, r.Risk)
	return &r.Risk, nil
}

// HeatCell is one cell of the heat map: a likelihood and an impact, their
// score and level, and how many open risks are there.
type HeatCell struct {
	Likelihood int    `json:"likelihood"`
	Impact     int    `json:"impact"`
	Score      int    `json:"score"`
	Level      string `json:"level"`
	Count      int    `json:"count"`
}

// LevelCount is how many open risks a level holds.
type LevelCount struct {
	Level string `json:"level"`
	Count int    `json:"count"`
}

// HeatMap is the open risks on the 5 × 5 matrix, with the figures of the
// register at a glance.
type HeatMap struct {
	// Cells are the 25 cells, by likelihood then impact, 1 to 5 each.
	Cells   []HeatCell   `json:"cells"`
	Levels  []LevelCount `json:"levels"`
	Open    int          `json:"open"`
	Overdue int          `json:"overdue"`
	// PendingAcceptance counts the high and critical risks waiting for
	// the leadership's acceptance.
	PendingAcceptance int `json:"pending_acceptance"`
	// NextReviewAt is the earliest review due of an open risk, if any.
	NextReviewAt *time.Time `json:"next_review_at,omitempty"`
}

// HeatMap counts the open risks by likelihood and impact (risk.read).
func (s *Service) HeatMap(ctx context.Context, call *medguard.Call) (*HeatMap, error) {
	now := s.clock.Now()
	h := &HeatMap{}
	for l := 1; l <= 5; l++ {
		for i := 1; i <= 5; i++ {
			h.Cells = append(h.Cells, HeatCell{Likelihood: l, Impact: i, Score: Score(l, i), Level: LevelOf(Score(l, i))})
		}
	}
	byLevel := map[string]int{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RiskRead, AuditAction: "risk.heatmap",
		Resource: policy.Resource{Type: "risk"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT likelihood, impact, acceptance, review_due_at FROM risks WHERE status = $1`, Open)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var l, i int
			var acceptance string
			var due int64
			if err := rows.Scan(&l, &i, &acceptance, &due); err != nil {
				return nil, err
			}
			if l < 1 || l > 5 || i < 1 || i > 5 {
				continue
			}
			h.Cells[(l-1)*5+i-1].Count++
			byLevel[LevelOf(Score(l, i))]++
			h.Open++
			at := medguard.FromMillis(due)
			if !now.Before(at) {
				h.Overdue++
			}
			if h.NextReviewAt == nil || at.Before(*h.NextReviewAt) {
				h.NextReviewAt = &at
			}
			if acceptance == AcceptancePending {
				h.PendingAcceptance++
			}
		}
		return nil, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	for _, l := range Levels {
		h.Levels = append(h.Levels, LevelCount{Level: l, Count: byLevel[l]})
	}
	return h, nil
}
