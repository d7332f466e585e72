// Package vulns owns vulnerability management (漏洞管理, seed 003 §3.4.1;
// SPEC §10; issue 13): the findings of scanner reports — SARIF 2.1.0,
// Trivy JSON, Greenbone/OpenVAS XML, CSV — imported per asset of the
// register (package assets), deduplicated across scans by a fingerprint of
// the rule and the stable part of the location, with every sighting
// kept; a finding absent from a later full scan of the same asset by the
// same tool is proposed as fixed, never closed by itself.
//
// Each vulnerability is due by its severity (critical and high 48 hours,
// medium 7 days, low 30 days from the scan that found it; configurable)
// and moves new → confirmed → fixing → fixed → verified in test →
// deployed (the seed: verify the fix in a test environment, then release
// it in stages); the fix is verified by someone other than who fixed it.
// Accepting the risk or calling a finding a false positive is a four-eyes
// request a security officer decides (kind vulns.exception). An open
// vulnerability past its due date is announced once (vuln.overdue) and
// raises an alert, resolved when it is fixed or closed.
//
// A security officer may suspend named operations — exports, record
// writes, archiving, destruction, copies, de-identification — while a
// critical vulnerability of an asset of the records system is open
// (病案室暂停相关操作): the gate refuses them with deny.operation_suspended
// (Restrictions, a gate.RestrictionSource answering from memory). The
// suspension ends when the vulnerability is fixed or closed, or early by a
// four-eyes request (kind vulns.suspension_lift): it restricts, so one
// security officer sets it; lifting it opens, so two decide.
//
// An asset in use that no scan reached for a week (configurable) is
// listed (Cadence).
//
// Every operation goes through the gate and into the audit log. This
// package holds no patient data and reads no other package's tables: the
// assets come from the register's Lookup and InUse.
package vulns

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"medguard"
	"medguard/internal/assets"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the vulnerabilities' tables.
func Schema() storage.Schema { return storage.NewSchema("vulns", migrations, "migrations") }

// The states of a vulnerability. StatusNew, StatusConfirmed and StatusFixing are open; the
// others are resolved: fixed (and on to verified in test and deployed),
// or closed by an approved exception.
const (
	StatusNew           = "new"
	StatusConfirmed     = "confirmed"
	StatusFixing        = "fixing"
	StatusFixed         = "fixed"
	StatusVerified      = "verified_in_test"
	StatusDeployed      = "deployed"
	StatusAccepted      = "accepted"
	StatusFalsePositive = "false_positive"
)

// Statuses lists the states, in their order.
var Statuses = []string{StatusNew, StatusConfirmed, StatusFixing, StatusFixed, StatusVerified, StatusDeployed, StatusAccepted, StatusFalsePositive}

// OpenStatuses are the states of a vulnerability not yet fixed.
var OpenStatuses = []string{StatusNew, StatusConfirmed, StatusFixing}

// Open reports whether a state is open.
func Open(status string) bool { return slices.Contains(OpenStatuses, status) }

// transitions are the states each state may move to by hand: one step
// forward, or — a fix that failed — back from fixed to fixing. A
// vulnerability proposed as fixed (absent from a later full scan) may go
// to fixed from any open state.
var transitions = map[string][]string{
	StatusNew:       {StatusConfirmed},
	StatusConfirmed: {StatusFixing},
	StatusFixing:    {StatusFixed},
	StatusFixed:     {StatusVerified, StatusFixing},
	StatusVerified:  {StatusDeployed},
}

// Config holds the rules of vulnerability management.
type Config struct {
	// Critical, High, Medium and Low are how long after the scan that found
	// it a vulnerability of that severity is due (default 48 h, 48 h, 7 days
	// and 30 days).
	Critical, High, Medium, Low time.Duration
	// ScanCadence is how often each asset in use is scanned: one not
	// scanned for longer is listed (default 7 days).
	ScanCadence time.Duration
	// MaxReport is the largest scanner report imported, in bytes (default
	// 16 MiB).
	MaxReport int64
}

func (c *Config) setDefaults() {
	if c.Critical <= 0 {
		c.Critical = 48 * time.Hour
	}
	if c.High <= 0 {
		c.High = 48 * time.Hour
	}
	if c.Medium <= 0 {
		c.Medium = 7 * 24 * time.Hour
	}
	if c.Low <= 0 {
		c.Low = 30 * 24 * time.Hour
	}
	if c.ScanCadence <= 0 {
		c.ScanCadence = 7 * 24 * time.Hour
	}
	if c.MaxReport <= 0 {
		c.MaxReport = 16 << 20
	}
}

// SLA is how long after it is found a vulnerability of a severity is due.
func (c Config) SLA(severity string) time.Duration {
	switch severity {
	case Critical:
		return c.Critical
	case High:
		return c.High
	case Medium:
		return c.Medium
	}
	return c.Low
}

// AssetRegister is what vulnerability management needs of the asset
// register (package assets).
type AssetRegister interface {
	Lookup(ctx context.Context, ids ...string) (map[string]assets.Ref, error)
	InUse(ctx context.Context) ([]assets.Ref, error)
}

// Service is vulnerability management.
type Service struct {
	db     *storage.DB
	gate   *gate.Gate
	keys   *keys.Keyring
	assets AssetRegister
	clock  medguard.Clock
	cfg    Config

	mu         sync.Mutex
	onOverdue  medguard.Hooks[OverdueVuln]
	onResolved medguard.Hooks[string]

	// suspended is the snapshot of the operations suspended now, which the
	// gate asks on every decision (Restrictions).
	susMu     sync.RWMutex
	suspended []policy.Permission
	// unknown is true until the first reload succeeds, and after a reload
	// fails: every suspendable operation is then refused.
	unknown bool
}

// New returns vulnerability management.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, reg AssetRegister, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, assets: reg, clock: g.Clock(), cfg: cfg, unknown: true}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

// keyName is the system data key sealing this package's text.
const keyName = "vulns"

func (s *Service) sealer(ctx context.Context) (*keys.DataKey, error) {
	k, err := s.keys.SystemKey(ctx, keyName)
	return k, medguard.Wrap("vulns.seal", err)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// Vuln is a vulnerability of an asset, as lists show it.
type Vuln struct {
	ID       string `json:"id"`
	AssetID  string `json:"asset_id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	Status   string `json:"status"`
	// DueAt is when it is due: its severity's time after the scan that
	// found it (or found it again after a fix).
	DueAt time.Time `json:"due_at"`
	// SLAHours is its severity's time in hours; DueInHours the whole
	// hours left now (negative once overdue; 0 once resolved), Overdue
	// whether it is open past its due date.
	SLAHours   int  `json:"sla_hours"`
	DueInHours int  `json:"due_in_hours"`
	Overdue    bool `json:"overdue"`
	// RuleID is the CVE or the scanner's rule; CVEs the CVE ids it names.
	RuleID string   `json:"rule_id"`
	CVEs   []string `json:"cves"`
	// Score is the CVSS or security-severity score (0: none given).
	Score            float64 `json:"score"`
	Location         string  `json:"location"`
	Package          string  `json:"package"`
	InstalledVersion string  `json:"installed_version"`
	FixedVersion     string  `json:"fixed_version"`
	Reference        string  `json:"reference"`
	// Tool is the scanner that first found it.
	Tool      string    `json:"tool"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Sightings counts the scans that found it.
	Sightings int `json:"sightings"`
	// ProposedFixedAt is set while a later full scan did not find it: a
	// proposal to move it to fixed, which a person confirms.
	ProposedFixedAt *time.Time `json:"proposed_fixed_at,omitempty"`
	FixedAt         *time.Time `json:"fixed_at,omitempty"`
	FixedBy         string     `json:"fixed_by,omitempty"`
	// Suspending is true while it suspends operations.
	Suspending bool      `json:"suspending"`
	UpdatedAt  time.Time `json:"updated_at"`
	UpdatedBy  string    `json:"updated_by"`
}

// Detail is a vulnerability with its description, the scans that found
// it, its history, its suspensions and the states it may move to now.
type Detail struct {
	Vuln
	Description string       `json:"description"`
	Scans       []Sighting   `json:"scans"`
	History     []Event      `json:"history"`
	Suspensions []Suspension `json:"suspensions"`
	// Next are the states a person may move it to now.
	Next []string `json:"next"`
}

// Sighting is a scan that found a vulnerability.
type Sighting struct {
	ScanID     string    `json:"scan_id"`
	ScannedAt  time.Time `json:"scanned_at"`
	Tool       string    `json:"tool"`
	Format     string    `json:"format"`
	ImportedBy string    `json:"imported_by"`
}

// The kinds of event in a vulnerability's history.
const (
	EventState             = "state"              // a person moved it
	EventReopened          = "reopened"           // a scan found it again after its fix
	EventProposedFixed     = "proposed_fixed"     // a full scan did not find it
	EventProposalWithdrawn = "proposal_withdrawn" // a scan found it again after the proposal
	EventSeverity          = "severity"           // a scan rated it more severe
	EventException         = "exception"          // an approved exception closed it
)

// Event is a step of a vulnerability's history.
type Event struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
	Kind  string    `json:"kind"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	// Ref is the scan or the four-eyes request concerned, if any.
	Ref  string `json:"ref,omitempty"`
	Note string `json:"note,omitempty"`
}

var errNoVuln = &medguard.Error{Kind: medguard.NotFound, Message: "no such vulnerability"}

func vulnResource(id string) policy.Resource { return policy.Resource{Type: "vuln", ID: id} }

const vulnColumns = `v.id, v.asset_id, v.tool, v.rule_id, v.cves, v.title, v.severity, v.score, v.location, v.package,
	v.installed_version, v.fixed_version, v.reference, v.status, v.first_seen, v.last_seen, v.due_at, v.proposed_fixed_at,
	v.fixed_at, v.fixed_by, v.updated_at, v.updated_by,
	(SELECT count(*) FROM vuln_sightings s WHERE s.vuln_id = v.id),
	(SELECT count(*) FROM vuln_suspensions p WHERE p.vuln_id = v.id AND p.lifted_at IS NULL)`

func (s *Service) scanVuln(sc interface{ Scan(...any) error }, now time.Time) (*Vuln, error) {
	var v Vuln
	var cveList string
	var score int
	var first, last, due, updated int64
	var proposed, fixed sql.NullInt64
	var fixedBy sql.NullString
	var suspending int
	if err := sc.Scan(&v.ID, &v.AssetID, &v.Tool, &v.RuleID, &cveList, &v.Title, &v.Severity, &score, &v.Location, &v.Package,
		&v.InstalledVersion, &v.FixedVersion, &v.Reference, &v.Status, &first, &last, &due, &proposed, &fixed, &fixedBy,
		&updated, &v.UpdatedBy, &v.Sightings, &suspending); err != nil {
		return nil, err
	}
	v.CVEs = []string{}
	json.Unmarshal([]byte(cveList), &v.CVEs)
	v.Score = float64(score) / 10
	v.FirstSeen, v.LastSeen, v.DueAt, v.UpdatedAt = medguard.FromMillis(first), medguard.FromMillis(last), medguard.FromMillis(due),
		medguard.FromMillis(updated)
	if proposed.Valid {
		t := medguard.FromMillis(proposed.Int64)
		v.ProposedFixedAt = &t
	}
	if fixed.Valid {
		t := medguard.FromMillis(fixed.Int64)
		v.FixedAt = &t
	}
	v.FixedBy, v.Suspending = fixedBy.String, suspending > 0 && Open(v.Status)
	s.complete(&v, now)
	return &v, nil
}

// complete adds what is computed at a time: hours left, overdue.
func (s *Service) complete(v *Vuln, now time.Time) {
	v.SLAHours = int(s.cfg.SLA(v.Severity) / time.Hour)
	v.DueInHours, v.Overdue = 0, false
	if Open(v.Status) {
		v.DueInHours = int(v.DueAt.Sub(now) / time.Hour)
		v.Overdue = !now.Before(v.DueAt)
	}
}

// get reads a vulnerability, nil when there is none.
func (s *Service) get(ctx context.Context, id string) (*Vuln, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	v, err := s.scanVuln(s.db.QueryRowContext(ctx, `SELECT `+vulnColumns+` FROM vulns v WHERE v.id = $1`, id), s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, medguard.Wrap("vulns.get", err)
}

// load reads a vulnerability for an operation; an attempt on a missing one
// is logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Vuln, error) {
	v, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "vuln", ID: id}}, errNoVuln)
	}
	return v, nil
}

// Get returns a vulnerability with its description, sightings, history
// and suspensions (vuln.read).
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Detail, error) {
	v, err := s.load(ctx, call, policy.VulnRead, "vuln.read", id)
	if err != nil {
		return nil, err
	}
	d := &Detail{Vuln: *v}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnRead, AuditAction: "vuln.read",
		Resource: vulnResource(v.ID)}, func(policy.Decision) (audit.Mutation, error) {
		return nil, s.detail(ctx, d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (s *Service) detail(ctx context.Context, d *Detail) error {
	var sealed []byte
	if err := s.db.QueryRowContext(ctx, `SELECT description FROM vulns WHERE id = $1`, d.ID).Scan(&sealed); err != nil {
		return err
	}
	var err error
	if d.Description, err = s.open(ctx, "vulns", d.ID, "description", sealed); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.scanned_at, c.tool, c.format, c.imported_by FROM vuln_sightings s
		JOIN vuln_scans c ON c.id = s.scan_id WHERE s.vuln_id = $1 ORDER BY c.scanned_at DESC, c.id LIMIT 500`, d.ID)
	if err != nil {
		return err
	}
	d.Scans = []Sighting{}
	for rows.Next() {
		var sg Sighting
		var at int64
		if err := rows.Scan(&sg.ScanID, &at, &sg.Tool, &sg.Format, &sg.ImportedBy); err != nil {
			rows.Close()
			return err
		}
		sg.ScannedAt = medguard.FromMillis(at)
		d.Scans = append(d.Scans, sg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if d.History, err = s.history(ctx, d.ID); err != nil {
		return err
	}
	if d.Suspensions, err = s.suspensionsOf(ctx, d.ID); err != nil {
		return err
	}
	d.Next = nextStates(&d.Vuln)
	return nil
}

// nextStates are the states a person may move v to now.
func nextStates(v *Vuln) []string {
	next := slices.Clone(transitions[v.Status])
	if Open(v.Status) && v.ProposedFixedAt != nil && !slices.Contains(next, StatusFixed) {
		next = append(next, StatusFixed)
	}
	if next == nil {
		next = []string{}
	}
	return next
}

func (s *Service) history(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, kind, from_status, to_status, ref, note FROM vuln_events
		WHERE vuln_id = $1 ORDER BY at, audit_index, id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var eid string
		var at int64
		var note []byte
		if err := rows.Scan(&eid, &at, &e.Actor, &e.Kind, &e.From, &e.To, &e.Ref, &note); err != nil {
			return nil, err
		}
		e.At = medguard.FromMillis(at)
		if e.Note, err = s.open(ctx, "vuln_events", eid, "note", note); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Query filters the vulnerabilities.
type Query struct {
	AssetID string
	// Status is a state, or "open" (new, confirmed, fixing) or "resolved".
	Status   string
	Severity string
	// Overdue keeps the open vulnerabilities past their due date;
	// Proposed those proposed as fixed.
	Overdue, Proposed bool
	// Text keeps those whose rule, title, location or CVEs hold it.
	Text string
	// After is the id of the last vulnerability of the previous page;
	// Limit the page's size (at most MaxList).
	After string
	Limit int
}

// Statuses a query may name besides the states.
const (
	QueryOpen     = "open"
	QueryResolved = "resolved"
)

// MaxList is the longest page of vulnerabilities.
const MaxList = 2000

// List lists vulnerabilities by id, oldest first (vuln.read); next is the
// cursor of the next page, "" at the end.
func (s *Service) List(ctx context.Context, call *medguard.Call, q Query) (out []Vuln, next string, err error) {
	switch {
	case q.Status != "" && q.Status != QueryOpen && q.Status != QueryResolved && !slices.Contains(Statuses, q.Status):
		return nil, "", medguard.InvalidField("status", "status must be open, resolved or one of %s", strings.Join(Statuses, ", "))
	case q.Severity != "" && !slices.Contains(Severities, q.Severity):
		return nil, "", medguard.InvalidField("severity", "severity must be one of %s", strings.Join(Severities, ", "))
	case q.AssetID != "" && !medguard.ValidID(q.AssetID):
		return nil, "", medguard.InvalidField("asset", "asset must be an asset's id")
	case q.After != "" && !medguard.ValidID(q.After):
		return nil, "", medguard.InvalidField("cursor", "cursor is not one this server gave out")
	case utf8.RuneCountInString(q.Text) > 100:
		return nil, "", medguard.InvalidField("q", "q may be at most 100 characters")
	}
	if q.Limit <= 0 || q.Limit > MaxList {
		q.Limit = MaxList
	}
	now := s.clock.Now()
	out = []Vuln{}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnRead, AuditAction: "vuln.list",
		Resource: policy.Resource{Type: "vuln", ID: q.AssetID}}, func(policy.Decision) (audit.Mutation, error) {
		where, args := []string{"v.id > $1"}, []any{q.After}
		add := func(cond string, vs ...any) {
			for _, v := range vs {
				args = append(args, v)
				cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
			}
			where = append(where, cond)
		}
		if q.AssetID != "" {
			add("v.asset_id = ?", q.AssetID)
		}
		switch {
		case q.Status == QueryOpen || q.Overdue:
			add("v.status IN (?, ?, ?)", StatusNew, StatusConfirmed, StatusFixing)
		case q.Status == QueryResolved:
			add("v.status NOT IN (?, ?, ?)", StatusNew, StatusConfirmed, StatusFixing)
		}
		if q.Status != "" && q.Status != QueryOpen && q.Status != QueryResolved {
			add("v.status = ?", q.Status)
		}
		if q.Severity != "" {
			add("v.severity = ?", q.Severity)
		}
		if q.Overdue {
			add("v.due_at <= ?", medguard.Millis(now))
		}
		if q.Proposed {
			where = append(where, "v.proposed_fixed_at IS NOT NULL")
		}
		if t := strings.TrimSpace(q.Text); t != "" {
			like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(t)) + "%"
			add(`(lower(v.rule_id) LIKE ? ESCAPE '\' OR lower(v.title) LIKE ? ESCAPE '\' OR lower(v.location) LIKE ? ESCAPE '\'
				OR lower(v.cves) LIKE ? ESCAPE '\')`, like, like, like, like)
		}
		args = append(args, q.Limit+1)
		rows, err := s.db.QueryContext(ctx, `SELECT `+vulnColumns+` FROM vulns v WHERE `+strings.Join(where, " AND ")+
			` ORDER BY v.id LIMIT $`+strconv.Itoa(len(args)), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := s.scanVuln(rows, now)
			if err != nil {
				return nil, err
			}
			if len(out) == q.Limit {
				next = out[len(out)-1].ID
				break
			}
			out = append(out, *v)
		}
		return nil, rows.Err()
	})
	return out, next, err
}

// Transition moves a vulnerability to another state.
type Transition struct {
	Status string `json:"status"`
	// Note says why (sealed); needed to move a fix back to fixing.
	Note string `json:"note,omitempty"`
}

// MaxNote is the longest note, in characters.
const MaxNote = 2000

// RuleOwnFix refuses the verification of a fix by the person who marked it
// fixed: the fix is verified in a test environment by someone else.
const RuleOwnFix = "deny.own_fix"

// SetStatus moves a vulnerability on (vuln.manage): one step forward, back
// from fixed to fixing (with a note), or to fixed from any open state once
// a full scan proposed it. The fix is verified in test by someone other
// than who marked it fixed (deny.own_fix). Once it leaves the open states
// its overdue alert is resolved and the operations it suspended are open
// again.
func (s *Service) SetStatus(ctx context.Context, call *medguard.Call, id string, in Transition) (*Vuln, error) {
	v, err := s.load(ctx, call, policy.VulnManage, "vuln.transition", id)
	if err != nil {
		return nil, err
	}
	note, err := medguard.Text("note", in.Note, MaxNote, v.Status == StatusFixed && in.Status == StatusFixing)
	if err != nil {
		return nil, err
	}
	k, err := s.sealer(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	eventID := medguard.NewID(now)
	var sealedNote []byte
	if note != "" {
		sealedNote = k.SealString(keys.Location{Table: "vuln_events", Row: eventID, Column: "note"}, note)
	}
	from := v.Status
	var ended []string
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.VulnManage, AuditAction: "vuln.transition",
		Resource: vulnResource(v.ID)}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case !slices.Contains(Statuses, in.Status):
			return nil, medguard.InvalidField("status", "status must be one of %s", strings.Join(Statuses, ", "))
		case !slices.Contains(nextStates(v), in.Status):
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Code: "transition",
				Message: "a vulnerability that is " + from + " cannot become " + in.Status}
		case in.Status == StatusVerified && v.FixedBy == call.Actor.Name:
			return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: RuleOwnFix,
				Message: "the fix is verified in test by someone other than who fixed it"}
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			set := `status = $1, updated_at = $2, updated_by = $3`
			switch {
			case in.Status == StatusFixed:
				set += `, fixed_at = $2, fixed_by = $3, closed_at = $2, proposed_fixed_at = NULL`
			case from == StatusFixed && in.Status == StatusFixing:
				set += `, fixed_at = NULL, fixed_by = NULL, closed_at = NULL`
			}
			res, err := tx.ExecContext(ctx, `UPDATE vulns SET `+set+` WHERE id = $4 AND status = $5`, in.Status, medguard.Millis(now),
				call.Actor.Name, v.ID, from)
			if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the vulnerability changed meanwhile"}); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, index, eventID, v.ID, now, call.Actor.Name, EventState, from, in.Status, "", sealedNote); err != nil {
				return err
			}
			if !Open(in.Status) && Open(from) {
				ended, err = endSuspensions(ctx, tx, v.ID, now, call.Actor.Name, in.Status)
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if Open(from) && !Open(in.Status) {
		s.resolved(ctx, v.ID, ended)
	}
	return s.get(ctx, v.ID)
}

// addEvent adds a step to a vulnerability's history; index is the audit
// entry of the operation, which orders steps of the same millisecond.
func addEvent(ctx context.Context, tx *sql.Tx, index uint64, id, vulnID string, at time.Time, actor, kind, from, to, ref string, note []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO vuln_events (id, vuln_id, at, audit_index, actor, kind, from_status, to_status, ref, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, vulnID, medguard.Millis(at), int64(index), actor, kind, from, to, ref, note)
	return err
}

// system is medguard itself, announcing overdue vulnerabilities and
// ending the suspensions of fixed ones.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// resolved tells the hooks that a vulnerability left the open states
// (its alert is resolved), logs the end of the suspensions it held, and
// reloads the suspensions in force.
func (s *Service) resolved(ctx context.Context, vulnID string, ended []string) {
	ctx = context.WithoutCancel(ctx)
	for _, id := range ended {
		call := system
		s.gate.Record(ctx, gate.Event{Call: &call, Action: "vuln.suspension_end", TargetType: "suspension", TargetID: id,
			Allowed: true, Rule: "allow.system.vuln_resolved"}, nil)
	}
	s.onResolved.Tell(ctx, vulnID)
	s.Reload(ctx)
}
