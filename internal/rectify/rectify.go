// Package rectify owns the rectification register (整改, seed 003 §2.1 and
// §6.2, seed 002, issue 14) and the quarterly compliance check (季度合规检查,
// seed 003 §4.2).
//
// A rectification item is a finding that must be put right: a failing
// compliance check (opened by the compliance checks through OpenFrom, as
// medguard itself), a failing finding of a quarterly check, an internal
// audit's finding entered by hand or a third-party audit report imported
// from CSV. Each names its department, its owner (a member of staff), its
// deadline and severity, and moves open → in_progress → done (the owner
// reports what was done, with evidence, sealed) → verified (by someone
// other than the owner and who reported it done: deny.own_rectification)
// or reopened. Every change is kept in its history. An item past its
// deadline is announced once (the rectification_overdue alert), resolved
// when it is done. The monthly review (月度整改评审) counts the items
// opened, closed and overdue by department and source, and the security
// office signs it.
//
// The quarterly check samples at least 30 % of the departments with a
// stored seed (reproducible), records findings per sampled department
// against a checklist whose measured values come from DepartmentFigures
// (the compliance checks), opens an item for each failing finding, and is
// published to every department head, who reads it on the console.
//
// Every operation goes through the gate and into the audit log; free
// text (descriptions, notes, evidence) is sealed with a system data key.
// This package never reads patient data, nor another package's tables: it
// reads staff and departments through the identity service.
package rectify

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
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

// Schema is the register's tables.
func Schema() storage.Schema { return storage.NewSchema("rectify", migrations, "migrations") }

// The sources of an item (its Kind).
const (
	KindCheck         = "check"          // a failing compliance check (合规检查)
	KindQuarterly     = "quarterly"      // a failing finding of a quarterly check (季度合规检查)
	KindInternalAudit = "internal_audit" // an internal audit's finding (内部审计)
	KindThirdParty    = "third_party"    // a third-party audit report (第三方审计, 等保测评)
)

// Kinds lists the sources.
var Kinds = []string{KindCheck, KindQuarterly, KindInternalAudit, KindThirdParty}

// The severities of an item.
const (
	Low      = "low"
	Medium   = "medium"
	High     = "high"
	Critical = "critical"
)

// Severities lists the severities, lowest first.
var Severities = []string{Low, Medium, High, Critical}

// DefaultDue is, by severity, the deadline of an item opened without one:
// critical 7 days, high 30 days, medium 60 days, low 90 days.
var DefaultDue = map[string]time.Duration{
	Critical: 7 * 24 * time.Hour, High: 30 * 24 * time.Hour, Medium: 60 * 24 * time.Hour, Low: 90 * 24 * time.Hour,
}

// The states of an item.
const (
	Open       = "open"        // 待整改
	InProgress = "in_progress" // 整改中
	Done       = "done"        // 已整改, waiting for verification
	Verified   = "verified"    // 已验证 (closed)
	Reopened   = "reopened"    // 退回 (the verification found it not done)
)

// Statuses lists the states.
var Statuses = []string{Open, InProgress, Done, Verified, Reopened}

// pending are the states in which the owner still has work to do (and
// the deadline runs).
var pending = []string{Open, InProgress, Reopened}

// The kinds of event in an item's history.
const (
	EventCreated  = "created"
	EventChanged  = "changed"
	EventStarted  = "started"
	EventDone     = "done"
	EventVerified = "verified"
	EventReopened = "reopened"
	EventOverdue  = "overdue"
)

// EventKinds lists the kinds of event.
var EventKinds = []string{EventCreated, EventChanged, EventStarted, EventDone, EventVerified, EventReopened, EventOverdue}

// Config holds the rules of the register.
type Config struct {
	// MaxEvidence is the largest evidence file, in bytes (default 700 KiB:
	// in base64, it fits the API's 1 MiB JSON body).
	MaxEvidence int
	// Location is the hospital's time zone, in which months and quarters
	// are reckoned (default UTC).
	Location *time.Location
}

func (s *Service) location() *time.Location {
	if s.cfg.Location == nil {
		return time.UTC
	}
	return s.cfg.Location
}

// Service is the rectification register and the quarterly check.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config

	mu        sync.Mutex
	figures   DepartmentFigures
	onOverdue medguard.Hooks[OverdueItem]
	onDone    medguard.Hooks[Item]
}

// New returns the register.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, cfg Config) *Service {
	if cfg.MaxEvidence <= 0 {
		cfg.MaxEvidence = 700 << 10
	}
	return &Service{db: db, gate: g, keys: kr, identity: id, clock: g.Clock(), cfg: cfg}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

const keyName = "rectify"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	if text == "" {
		return nil, nil
	}
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	if len(ct) == 0 {
		return "", nil
	}
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// Item is a rectification item.
type Item struct {
	ID string `json:"id"`
	// Kind is its source (Kinds) and Ref what there names it: a check's
	// id, a quarterly run's finding, an audit report's item number.
	Kind    string   `json:"kind"`
	Ref     string   `json:"ref"`
	Title   string   `json:"title"`
	TitleEN string   `json:"title_en,omitempty"`
	Clauses []string `json:"clauses"`
	// Department is the department answerable, by code ("" for the
	// hospital as a whole).
	Department string `json:"department"`
	// Owner is the username of the member of staff who puts it right (""
	// until the security office assigns one).
	Owner    string    `json:"owner"`
	Severity string    `json:"severity"`
	Status   string    `json:"status"`
	DueAt    time.Time `json:"due_at"`
	// Overdue says the deadline passed while the owner still had work to
	// do.
	Overdue bool `json:"overdue"`
	// Description says what was found (sealed at rest).
	Description string `json:"description,omitempty"`
	// Auditor is who found it: the audit firm, the internal audit team.
	Auditor    string     `json:"auditor,omitempty"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	DoneBy     string     `json:"done_by,omitempty"`
	DoneAt     *time.Time `json:"done_at,omitempty"`
	VerifiedBy string     `json:"verified_by,omitempty"`
	VerifiedAt *time.Time `json:"verified_at,omitempty"`
	// History is every change, oldest first (a single item only).
	History []Event `json:"history,omitempty"`
}

// Event is one change of an item.
type Event struct {
	Seq    int       `json:"seq"`
	Kind   string    `json:"kind"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Owner  string    `json:"owner"`
	DueAt  time.Time `json:"due_at"`
	Note   string    `json:"note,omitempty"`
	// EvidenceName and EvidenceSHA256 describe the evidence file attached
	// (sealed at rest; GET …/evidence/{seq} returns it).
	EvidenceName   string `json:"evidence_name,omitempty"`
	EvidenceSHA256 string `json:"evidence_sha256,omitempty"`
}

// NewItem opens an item by hand (the body of POST /api/v1/rectifications):
// an internal audit's finding or a third-party audit's.
type NewItem struct {
	Kind        string    `json:"kind"`
	Ref         string    `json:"ref,omitempty"`
	Title       string    `json:"title"`
	TitleEN     string    `json:"title_en,omitempty"`
	Clauses     []string  `json:"clauses,omitempty"`
	Department  string    `json:"department,omitempty"`
	Owner       string    `json:"owner"`
	Severity    string    `json:"severity"`
	DueAt       time.Time `json:"due_at,omitzero"`
	Description string    `json:"description,omitempty"`
	Auditor     string    `json:"auditor,omitempty"`
}

// ItemChanges assigns an item (the body of PATCH
// /api/v1/rectifications/{id}): its owner, department, deadline or
// severity, with a note saying why.
type ItemChanges struct {
	Owner      *string    `json:"owner,omitempty"`
	Department *string    `json:"department,omitempty"`
	DueAt      *time.Time `json:"due_at,omitempty"`
	Severity   *string    `json:"severity,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// Progress is the owner's report (the body of POST …/start and …/done):
// a note (required when done: what was done) and, when done, an evidence
// file (its name and content, base64 in JSON).
type Progress struct {
	Note         string `json:"note"`
	EvidenceName string `json:"evidence_name,omitempty"`
	Evidence     []byte `json:"evidence,omitempty"`
}

// Verification verifies an item done or sends it back (the body of POST
// …/verify and …/reopen).
type Verification struct {
	Note string `json:"note"`
}

// MaxText is the longest description or note, in characters.
const MaxText = 2000

func oneOf(field, v string, among []string) error {
	if !slices.Contains(among, v) {
		return medguard.InvalidField(field, "%s must be one of %s", field, strings.Join(among, ", "))
	}
	return nil
}

// clauses checks the clause ids: at most 20, each one line of at most 60.
func clauses(field string, in []string) ([]string, error) {
	out := []string{}
	if len(in) > 20 {
		return nil, medguard.InvalidField(field, "at most 20 clauses")
	}
	for _, c := range in {
		c, err := medguard.Line(field, c, 60, false)
		if err != nil {
			return nil, err
		}
		if strings.Contains(c, "\n") || strings.Contains(c, ";") {
			return nil, medguard.InvalidField(field, "a clause holds no ';'")
		}
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// staff checks that username names an active member of staff and returns
// them.
func (s *Service) staff(ctx context.Context, field, username string) (*identity.User, error) {
	username = strings.TrimSpace(username)
	if username == "" {
		return nil, medguard.InvalidField(field, "%s is required", field)
	}
	if len(username) > 64 {
		return nil, medguard.InvalidField(field, "no active member of staff has this username")
	}
	u, err := s.identity.UserByUsername(ctx, username)
	if identity.IsNotFound(err) || err == nil && u.Status != identity.Active {
		return nil, medguard.InvalidField(field, "no active member of staff has this username")
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// department resolves a department named by its code, id or name to its
// code ("" stays "").
func (s *Service) department(ctx context.Context, field, v string) (string, error) {
	return s.departmentIn(ctx, nil, field, v)
}

// departmentIn is department with the departments read already (nil:
// read them).
func (s *Service) departmentIn(ctx context.Context, deps []identity.Department, field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if deps == nil {
		var err error
		if _, deps, err = s.identity.Directory(ctx); err != nil {
			return "", err
		}
	}
	for _, d := range deps {
		if d.Code == v || d.ID == v || d.Name == v {
			return d.Code, nil
		}
	}
	return "", medguard.InvalidField(field, "no department has this code")
}

// due checks a deadline asked for, or gives the severity's default.
func (s *Service) due(field string, asked time.Time, severity string, now time.Time) (time.Time, error) {
	if asked.IsZero() {
		return now.Add(DefaultDue[severity]).Truncate(time.Millisecond), nil
	}
	asked = asked.UTC().Truncate(time.Millisecond)
	if asked.Year() < 2000 || asked.Year() > 2200 {
		return asked, medguard.InvalidField(field, "%s is not a plausible date", field)
	}
	return asked, nil
}

var errNoItem = &medguard.Error{Kind: medguard.NotFound, Message: "no such rectification item"}

var errMoved = &medguard.Error{Kind: medguard.Conflict, Message: "the item changed meanwhile: read it again"}

// resource is the policy's view of an item.
func (it *stored) resource() policy.Resource {
	r := policy.Resource{Type: "rectification", ID: it.ID, SubjectUserID: it.ownerID, RequestedBy: it.doneByID}
	if it.Department != "" {
		r.Departments = []string{it.Department}
	}
	return r
}

// stored is an item as read, with what the operations need beyond it.
type stored struct {
	Item
	ownerID  string
	doneByID string
}

func openKey(kind, ref string) any {
	if ref == "" {
		return nil
	}
	return kind + "|" + ref
}

// insert adds an item and its creation event within tx.
func (s *Service) insert(ctx context.Context, tx *sql.Tx, it *stored, description []byte) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO rectification_items (id, kind, ref, open_key, title, title_en, clauses, department,
		owner, owner_id, severity, status, due_at, description, auditor, created_by, created_at, updated_at, done_by, done_by_id, verified_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, '', '', '')`,
		it.ID, it.Kind, it.Ref, openKey(it.Kind, it.Ref), it.Title, it.TitleEN, strings.Join(it.Clauses, ";"), it.Department,
		it.Owner, it.ownerID, it.Severity, it.Status, medguard.Millis(it.DueAt), description, it.Auditor, it.CreatedBy,
		medguard.Millis(it.CreatedAt)); err != nil {
		return err
	}
	return s.addEvent(ctx, tx, it.ID, EventCreated, it.CreatedBy, it.CreatedAt, it.Status, it.Owner, it.DueAt, nil, sealedEvidence{})
}

// sealedEvidence is an evidence file sealed for an event.
type sealedEvidence struct {
	name, sum string
	ct        []byte
}

func (s *Service) addEvent(ctx context.Context, tx *sql.Tx, id, kind, actor string, at time.Time, status, owner string, due time.Time,
	note []byte, ev sealedEvidence) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO rectification_events (item_id, seq, kind, actor, at, status, owner, due_at,
		evidence_name, evidence_sha256, note, evidence)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM rectification_events WHERE item_id = $1`,
		id, kind, actor, medguard.Millis(at), status, owner, medguard.Millis(due), ev.name, ev.sum, note, ev.ct)
	return err
}

// CreateItem opens an item by hand (rectification.manage): an internal
// audit's finding or a third-party audit's.
func (s *Service) CreateItem(ctx context.Context, call *medguard.Call, in NewItem) (*Item, error) {
	it, desc, err := s.checkNew(ctx, in, s.clock.Now().Truncate(time.Millisecond), nil)
	if err != nil {
		return nil, err
	}
	it.CreatedBy = call.Actor.Name
	sealed, err := s.seal(ctx, "rectification_items", it.ID, "description", desc)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationManage, AuditAction: "rectification.create",
		Resource: policy.Resource{Type: "rectification", ID: it.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			err := s.insert(ctx, tx, it, sealed)
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "ref", Message: "an item of this source and reference is open already"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.announceNow(ctx, it.DueAt)
	return &it.Item, nil
}

// checkNew validates a new item against the departments deps (nil: read
// them); it returns the item and its description.
func (s *Service) checkNew(ctx context.Context, in NewItem, now time.Time, deps []identity.Department) (*stored, string, error) {
	var err error
	if in.Kind != KindInternalAudit && in.Kind != KindThirdParty {
		return nil, "", medguard.InvalidField("kind", "kind must be internal_audit or third_party (the checks open their own items)")
	}
	if in.Ref, err = medguard.Line("ref", in.Ref, 100, false); err != nil {
		return nil, "", err
	}
	if in.Title, err = medguard.Line("title", in.Title, 200, true); err != nil {
		return nil, "", err
	}
	if in.TitleEN, err = medguard.Line("title_en", in.TitleEN, 200, false); err != nil {
		return nil, "", err
	}
	cl, err := clauses("clauses", in.Clauses)
	if err != nil {
		return nil, "", err
	}
	dept, err := s.departmentIn(ctx, deps, "department", in.Department)
	if err != nil {
		return nil, "", err
	}
	owner, err := s.staff(ctx, "owner", in.Owner)
	if err != nil {
		return nil, "", err
	}
	if err := oneOf("severity", in.Severity, Severities); err != nil {
		return nil, "", err
	}
	due, err := s.due("due_at", in.DueAt, in.Severity, now)
	if err != nil {
		return nil, "", err
	}
	if in.Description, err = medguard.Text("description", in.Description, MaxText, false); err != nil {
		return nil, "", err
	}
	if in.Auditor, err = medguard.Line("auditor", in.Auditor, 100, false); err != nil {
		return nil, "", err
	}
	it := &stored{Item: Item{ID: medguard.NewID(now), Kind: in.Kind, Ref: in.Ref, Title: in.Title, TitleEN: in.TitleEN, Clauses: cl,
		Department: dept, Owner: owner.Username, Severity: in.Severity, Status: Open, DueAt: due, Description: in.Description,
		Auditor: in.Auditor, CreatedAt: now, UpdatedAt: now}, ownerID: owner.ID}
	it.Overdue = !now.Before(due)
	return it, in.Description, nil
}

const itemColumns = `id, kind, ref, title, title_en, clauses, department, owner, owner_id, severity, status, due_at, description,
	auditor, created_by, created_at, updated_at, done_by, done_by_id, done_at, verified_by, verified_at`

func (s *Service) scan(ctx context.Context, sc interface{ Scan(...any) error }, now time.Time, withText bool) (*stored, error) {
	var it stored
	var cl string
	var desc []byte
	var due, created, updated int64
	var doneAt, verifiedAt sql.NullInt64
	if err := sc.Scan(&it.ID, &it.Kind, &it.Ref, &it.Title, &it.TitleEN, &cl, &it.Department, &it.Owner, &it.ownerID, &it.Severity,
		&it.Status, &due, &desc, &it.Auditor, &it.CreatedBy, &created, &updated, &it.DoneBy, &it.doneByID, &doneAt, &it.VerifiedBy,
		&verifiedAt); err != nil {
		return nil, err
	}
	it.Clauses = []string{}
	if cl != "" {
		it.Clauses = strings.Split(cl, ";")
	}
	it.DueAt, it.CreatedAt, it.UpdatedAt = medguard.FromMillis(due), medguard.FromMillis(created), medguard.FromMillis(updated)
	if doneAt.Valid {
		t := medguard.FromMillis(doneAt.Int64)
		it.DoneAt = &t
	}
	if verifiedAt.Valid {
		t := medguard.FromMillis(verifiedAt.Int64)
		it.VerifiedAt = &t
	}
	it.Overdue = slices.Contains(pending, it.Status) && !now.Before(it.DueAt)
	if withText {
		var err error
		if it.Description, err = s.open(ctx, "rectification_items", it.ID, "description", desc); err != nil {
			return nil, err
		}
	}
	return &it, nil
}

func (s *Service) item(ctx context.Context, id string, now time.Time) (*stored, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	it, err := s.scan(ctx, s.db.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM rectification_items WHERE id = $1`, id), now, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return it, medguard.Wrap("rectify.item", err)
}

// load reads an item for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*stored, error) {
	it, err := s.item(ctx, id, s.clock.Now())
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "rectification", ID: id}}, errNoItem)
	}
	return it, nil
}

func (s *Service) history(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, kind, actor, at, status, owner, due_at, evidence_name, evidence_sha256, note
		FROM rectification_events WHERE item_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, medguard.Wrap("rectify.history", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at, due int64
		var note []byte
		if err := rows.Scan(&e.Seq, &e.Kind, &e.Actor, &at, &e.Status, &e.Owner, &due, &e.EvidenceName, &e.EvidenceSHA256, &note); err != nil {
			return nil, medguard.Wrap("rectify.history", err)
		}
		e.At, e.DueAt = medguard.FromMillis(at), medguard.FromMillis(due)
		if e.Note, err = s.open(ctx, "rectification_events", id, "note", note); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, medguard.Wrap("rectify.history", rows.Err())
}

// GetItem returns an item with its history (rectification.read; a
// department head their department's; the owner their own).
func (s *Service) GetItem(ctx context.Context, call *medguard.Call, id string) (*Item, error) {
	it, err := s.load(ctx, call, policy.RectificationRead, "rectification.read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationRead, AuditAction: "rectification.read",
		Resource: it.resource()}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		it.History, err = s.history(ctx, it.ID)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return &it.Item, nil
}

// Evidence returns the evidence file of an item's event
// (rectification.read, as GetItem).
func (s *Service) Evidence(ctx context.Context, call *medguard.Call, id string, seq int) (name string, content []byte, err error) {
	it, err := s.load(ctx, call, policy.RectificationRead, "rectification.evidence_read", id)
	if err != nil {
		return "", nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationRead, AuditAction: "rectification.evidence_read",
		Resource: it.resource()}, func(policy.Decision) (audit.Mutation, error) {
		var ct []byte
		var sum string
		err := s.db.QueryRowContext(ctx, `SELECT evidence_name, evidence_sha256, evidence FROM rectification_events
			WHERE item_id = $1 AND seq = $2`, it.ID, seq).Scan(&name, &sum, &ct)
		if errors.Is(err, sql.ErrNoRows) || err == nil && len(ct) == 0 {
			return nil, &medguard.Error{Kind: medguard.NotFound, Message: "this event has no evidence file"}
		}
		if err != nil {
			return nil, err
		}
		plain, err := s.open(ctx, "rectification_events", it.ID+"/"+sum, "evidence", ct)
		content = []byte(plain)
		return nil, err
	})
	return name, content, err
}

// Query filters the register. The zero value lists every item the caller
// may read.
type Query struct {
	Kind       string
	Status     string
	Severity   string
	Department string
	Owner      string
	// Ref keeps the items of one source reference (a check's id).
	Ref string
	// Overdue keeps the items past their deadline with work to do; Open
	// keeps the items not verified.
	Overdue bool
	Open    bool
	// After is the cursor (an item's id: newest first) and Limit the page.
	After string
	Limit int
}

// permissions are the caller's permissions, as the gate sees them.
func permissions(call *medguard.Call) policy.PermissionSet {
	if call.Actor.Kind == medguard.APIKeyActor {
		return policy.SetOf(call.Actor.Scopes)
	}
	return policy.PermissionsOf(call.Actor.Roles)
}

// ListItems lists the items, newest first, a page at a time: every item
// with rectification.read, a department head's department's items with
// rectification.read_department, otherwise the caller's own items.
func (s *Service) ListItems(ctx context.Context, call *medguard.Call, q Query) ([]Item, string, error) {
	switch {
	case q.Kind != "" && !slices.Contains(Kinds, q.Kind):
		return nil, "", oneOf("kind", q.Kind, Kinds)
	case q.Status != "" && !slices.Contains(Statuses, q.Status):
		return nil, "", oneOf("status", q.Status, Statuses)
	case q.Severity != "" && !slices.Contains(Severities, q.Severity):
		return nil, "", oneOf("severity", q.Severity, Severities)
	case q.After != "" && !medguard.ValidID(q.After):
		return nil, "", medguard.InvalidField("cursor", "cursor is not one this server gave out")
	case len(q.Department) > 64 || len(q.Owner) > 64 || len(q.Ref) > 100:
		return nil, "", medguard.InvalidField("department", "filter too long")
	}
	if q.Limit <= 0 || q.Limit > 2000 {
		q.Limit = 2000
	}
	now := s.clock.Now()
	lead := policy.Resource{Type: "rectification"}
	perms := permissions(call)
	var where storage.Where
	switch {
	case perms[policy.RectificationRead]:
	case perms[policy.RectificationReadDepartment] && call.Actor.Department != "":
		lead.Departments = []string{call.Actor.Department}
		where.Add("department = ?", call.Actor.Department)
	default:
		lead.SubjectUserID = call.Actor.ID
		where.Add("owner_id = ?", call.Actor.ID)
	}
	if q.Kind != "" {
		where.Add("kind = ?", q.Kind)
	}
	if q.Status != "" {
		where.Add("status = ?", q.Status)
	}
	if q.Severity != "" {
		where.Add("severity = ?", q.Severity)
	}
	if q.Department != "" {
		where.Add("department = ?", q.Department)
	}
	if q.Owner != "" {
		where.Add("owner = ?", q.Owner)
	}
	if q.Ref != "" {
		where.Add("ref = ?", q.Ref)
	}
	if q.Overdue {
		where.Fixed("status IN ('open', 'in_progress', 'reopened')")
		where.Add("due_at <= ?", medguard.Millis(now))
	}
	if q.Open {
		where.Add("status <> ?", Verified)
	}
	if q.After != "" {
		where.Add("id < ?", q.After)
	}
	query := `SELECT ` + itemColumns + ` FROM rectification_items WHERE ` + where.String() + ` ORDER BY id DESC`
	var out []Item
	var next string
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationRead, AuditAction: "rectification.list",
		Resource: lead}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, next, err = storage.Page(ctx, s.db, query, &where, q.Limit, func(rows *sql.Rows) (Item, error) {
			it, err := s.scan(ctx, rows, now, false)
			if err != nil {
				return Item{}, err
			}
			return it.Item, nil
		}, func(it Item) string { return it.ID })
		return nil, err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// UpdateItem assigns an item (rectification.manage): its owner,
// department, deadline or severity. A verified item is not changed; a new
// deadline clears its overdue announcement.
func (s *Service) UpdateItem(ctx context.Context, call *medguard.Call, id string, in ItemChanges) (*Item, error) {
	if in.Owner == nil && in.Department == nil && in.DueAt == nil && in.Severity == nil {
		return nil, medguard.InvalidField("body", "nothing to change")
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, false); err != nil {
		return nil, err
	}
	it, err := s.load(ctx, call, policy.RectificationManage, "rectification.update", id)
	if err != nil {
		return nil, err
	}
	before := it.UpdatedAt
	if in.Owner != nil {
		u, err := s.staff(ctx, "owner", *in.Owner)
		if err != nil {
			return nil, err
		}
		it.Owner, it.ownerID = u.Username, u.ID
	}
	if in.Department != nil {
		if it.Department, err = s.department(ctx, "department", *in.Department); err != nil {
			return nil, err
		}
	}
	if in.Severity != nil {
		if err := oneOf("severity", *in.Severity, Severities); err != nil {
			return nil, err
		}
		it.Severity = *in.Severity
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	newDue := false
	if in.DueAt != nil {
		d, err := s.due("due_at", *in.DueAt, it.Severity, now)
		if err != nil {
			return nil, err
		}
		newDue, it.DueAt = !d.Equal(it.DueAt), d
	}
	note, err := s.seal(ctx, "rectification_events", it.ID, "note", in.Note)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationManage, AuditAction: "rectification.update",
		Resource: policy.Resource{Type: "rectification", ID: it.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if it.Status == Verified {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the item is verified"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			q := `UPDATE rectification_items SET owner = $1, owner_id = $2, department = $3, severity = $4, due_at = $5, updated_at = $6`
			if newDue {
				q += `, overdue_notified_at = NULL`
			}
			res, err := tx.ExecContext(ctx, q+` WHERE id = $7 AND updated_at = $8`, it.Owner, it.ownerID, it.Department, it.Severity,
				medguard.Millis(it.DueAt), medguard.Millis(now), it.ID, medguard.Millis(before))
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, it.ID, EventChanged, call.Actor.Name, now, it.Status, it.Owner, it.DueAt, note, sealedEvidence{})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	it.UpdatedAt = now
	it.Overdue = slices.Contains(pending, it.Status) && !now.Before(it.DueAt)
	if newDue && !it.Overdue {
		s.done(ctx, it.Item)
	}
	if newDue && it.Overdue {
		s.announceNow(ctx, it.DueAt)
	}
	return &it.Item, nil
}

// Start records that the owner started the work (the owner alone:
// deny.not_rectification_owner), on an open or reopened item.
func (s *Service) Start(ctx context.Context, call *medguard.Call, id string, in Progress) (*Item, error) {
	return s.progress(ctx, call, id, in, false)
}

// MarkDone records the owner's report that the item is put right (the
// owner alone): what was done, and optionally an evidence file, sealed.
// The item waits for verification; its overdue alert is resolved.
func (s *Service) MarkDone(ctx context.Context, call *medguard.Call, id string, in Progress) (*Item, error) {
	return s.progress(ctx, call, id, in, true)
}

func (s *Service) progress(ctx context.Context, call *medguard.Call, id string, in Progress, done bool) (*Item, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, done); err != nil {
		return nil, err
	}
	if in.EvidenceName, err = medguard.Line("evidence_name", in.EvidenceName, 200, len(in.Evidence) > 0); err != nil {
		return nil, err
	}
	switch {
	case len(in.Evidence) > s.cfg.MaxEvidence:
		return nil, medguard.InvalidField("evidence", "the evidence file may be at most %d bytes", s.cfg.MaxEvidence)
	case !done && len(in.Evidence) > 0:
		return nil, medguard.InvalidField("evidence", "evidence goes with the report that the item is done")
	case in.EvidenceName != "" && len(in.Evidence) == 0:
		return nil, medguard.InvalidField("evidence", "evidence_name names no file")
	case strings.ContainsAny(in.EvidenceName, `/\`):
		return nil, medguard.InvalidField("evidence_name", "evidence_name is a file name, not a path")
	}
	action, kind, status, from := "rectification.start", EventStarted, InProgress, []string{Open, Reopened}
	if done {
		action, kind, status, from = "rectification.done", EventDone, Done, []string{Open, InProgress, Reopened}
	}
	it, err := s.load(ctx, call, policy.RectificationProgress, action, id)
	if err != nil {
		return nil, err
	}
	note, err := s.seal(ctx, "rectification_events", it.ID, "note", in.Note)
	if err != nil {
		return nil, err
	}
	var ev sealedEvidence
	if len(in.Evidence) > 0 {
		sum := sha256.Sum256(in.Evidence)
		ev.name, ev.sum = in.EvidenceName, hex.EncodeToString(sum[:])
		if ev.ct, err = s.seal(ctx, "rectification_events", it.ID+"/"+ev.sum, "evidence", string(in.Evidence)); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	before := it.UpdatedAt
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationProgress, AuditAction: action,
		Resource: it.resource()}, func(policy.Decision) (audit.Mutation, error) {
		if !slices.Contains(from, it.Status) {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the item is " + it.Status}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			q := `UPDATE rectification_items SET status = $1, updated_at = $2`
			args := []any{status, medguard.Millis(now)}
			if done {
				q += `, done_by = $5, done_by_id = $6, done_at = $2`
			}
			args = append(args, it.ID, medguard.Millis(before))
			if done {
				args = append(args, call.Actor.Name, call.Actor.ID)
			}
			res, err := tx.ExecContext(ctx, q+` WHERE id = $3 AND updated_at = $4`, args...)
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, it.ID, kind, call.Actor.Name, now, status, it.Owner, it.DueAt, note, ev)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	it.Status, it.UpdatedAt = status, now
	if done {
		it.DoneBy, it.DoneAt, it.doneByID = call.Actor.Name, &now, call.Actor.ID
	}
	it.Overdue = slices.Contains(pending, it.Status) && !now.Before(it.DueAt)
	if done {
		s.done(ctx, it.Item)
	}
	return &it.Item, nil
}

// Verify verifies an item its owner reported done (rectification.verify;
// never the owner nor who reported it done: deny.own_rectification).
func (s *Service) Verify(ctx context.Context, call *medguard.Call, id string, in Verification) (*Item, error) {
	return s.decide(ctx, call, id, in, true)
}

// Reopen sends an item back to its owner (rectification.verify, under
// the same rule): the rectification was not enough, or a verified item
// came back (a check failing again).
func (s *Service) Reopen(ctx context.Context, call *medguard.Call, id string, in Verification) (*Item, error) {
	return s.decide(ctx, call, id, in, false)
}

func (s *Service) decide(ctx context.Context, call *medguard.Call, id string, in Verification, verify bool) (*Item, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxText, true); err != nil {
		return nil, err
	}
	action, kind, status, from := "rectification.verify", EventVerified, Verified, []string{Done}
	if !verify {
		action, kind, status, from = "rectification.reopen", EventReopened, Reopened, []string{Done, Verified}
	}
	it, err := s.load(ctx, call, policy.RectificationVerify, action, id)
	if err != nil {
		return nil, err
	}
	note, err := s.seal(ctx, "rectification_events", it.ID, "note", in.Note)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	before := it.UpdatedAt
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RectificationVerify, AuditAction: action,
		Resource: it.resource()}, func(policy.Decision) (audit.Mutation, error) {
		if !slices.Contains(from, it.Status) {
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the item is " + it.Status}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			var res sql.Result
			var err error
			if verify {
				res, err = tx.ExecContext(ctx, `UPDATE rectification_items SET status = $1, verified_by = $2, verified_at = $3,
					updated_at = $3, open_key = NULL WHERE id = $4 AND updated_at = $5`,
					status, call.Actor.Name, medguard.Millis(now), it.ID, medguard.Millis(before))
			} else {
				// Back to the owner: the report and any verification are
				// undone, the item is open again under its source (unless
				// another item of the same finding was opened meanwhile),
				// and its deadline may be announced again.
				res, err = tx.ExecContext(ctx, `UPDATE rectification_items SET status = $1, verified_by = '', verified_at = NULL,
					done_by = '', done_by_id = '', done_at = NULL, updated_at = $2, overdue_notified_at = NULL,
					open_key = CASE WHEN rectification_items.ref = '' OR EXISTS (SELECT 1 FROM rectification_items o
						WHERE o.open_key = rectification_items.kind || '|' || rectification_items.ref)
						THEN rectification_items.open_key ELSE rectification_items.kind || '|' || rectification_items.ref END
					WHERE id = $3 AND updated_at = $4`, status, medguard.Millis(now), it.ID, medguard.Millis(before))
			}
			if err := storage.Affected(res, err, errMoved); err != nil {
				return err
			}
			return s.addEvent(ctx, tx, it.ID, kind, call.Actor.Name, now, status, it.Owner, it.DueAt, note, sealedEvidence{})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	it.Status, it.UpdatedAt = status, now
	if verify {
		it.VerifiedBy, it.VerifiedAt = call.Actor.Name, &now
	} else {
		it.DoneBy, it.DoneAt, it.VerifiedBy, it.VerifiedAt = "", nil, "", nil
	}
	it.Overdue = slices.Contains(pending, it.Status) && !now.Before(it.DueAt)
	if !verify {
		s.announceNow(ctx, it.DueAt)
	}
	return &it.Item, nil
}
