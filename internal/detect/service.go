package detect

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
	"medguard/internal/pulse"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the detection tables.
func Schema() storage.Schema { return storage.NewSchema("detect", migrations, "migrations") }

// Alert states.
const (
	StatusNew           = "new"
	StatusAcknowledged  = "acknowledged"
	StatusFalsePositive = "false_positive"
	StatusEscalated     = "escalated"
)

// Alert is a firing as stored, with its state.
type Alert struct {
	ID          string    `json:"id"`
	Rule        string    `json:"rule"`
	Action      string    `json:"action"`
	Username    string    `json:"username"`
	Key         string    `json:"key"`
	Count       int       `json:"count"`
	Threshold   int       `json:"threshold"`
	Window      Duration  `json:"window"`
	FirstAt     time.Time `json:"first_at"`
	TriggerAt   time.Time `json:"trigger_at"`
	RequestID   string    `json:"request_id"`
	Explanation string    `json:"explanation"`
	Severity    string    `json:"severity"`
	Status      string    `json:"status"`
	Frozen      bool      `json:"frozen"`
	FreezeID    string    `json:"freeze_id,omitempty"`
	IncidentID  string    `json:"incident_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
}

// Service runs detection on the gate's entries and keeps alerts.
type Service struct {
	db     *storage.DB
	gate   *gate.Gate
	id     *identity.Service
	clock  medguard.Clock
	logger *slog.Logger

	mu     sync.Mutex
	engine *Engine
	// next is the index of the next audit entry the engine counts: entries
	// are counted in the log's order, each once, whichever server wrote
	// them; pending holds entries that arrived ahead of a gap.
	next    uint64
	pending map[uint64]*audit.Entry
	// shared is true when other servers write to the same log
	// (PostgreSQL): before screening, the engine catches up with the
	// entries they wrote, so one user's reads are counted together on
	// every server.
	shared bool
	// catching lets one catch-up read the log at a time.
	catching sync.Mutex
	// pulse, if set, reads the log's size for catch-ups, shared among the
	// requests waiting at the same moment (internal/pulse).
	pulse Freshness
	// read and readTook count the entries catch-ups read back from the
	// log, and the time it took (CatchUps).
	read     atomic.Uint64
	readTook atomic.Int64

	// OnFreeze, if set, is told of every freeze (incidents open one).
	OnFreeze func(ctx context.Context, a Alert)
	// Notify, if set, is told of every alert raised (webhook, email, syslog).
	Notify func(ctx context.Context, a Alert)
}

// New returns the detection service for the rules stored in db (and the
// defaults), and hooks it into the gate: operations are screened before
// they are done and every written entry is observed.
func New(ctx context.Context, db *storage.DB, g *gate.Gate, id *identity.Service, zone *time.Location, logger *slog.Logger) (*Service, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{db: db, gate: g, id: id, clock: g.Clock(), logger: logger, pending: map[uint64]*audit.Entry{},
		shared: db.Shared()}
	rules, err := LoadRules(ctx, db)
	if err != nil {
		return nil, err
	}
	s.engine = NewEngine(rules, zone)
	if s.next, err = s.warm(ctx); err != nil {
		return nil, err
	}
	g.Screen = s.screen
	g.Observe = s.observe
	return s, nil
}

// Run keeps the engine caught up with the log until ctx ends: entries that
// other servers wrote (on PostgreSQL), and any gap left behind, are counted
// within interval, so that their alerts are raised even when this server
// is idle.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			idle := !s.shared && len(s.pending) == 0
			s.mu.Unlock()
			if idle {
				continue
			}
			if err := s.CatchUp(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("detection could not catch up with the audit log", "error", err.Error())
			}
		}
	}
}

// CatchUp counts every entry the log holds that the engine has not counted
// yet, in order, and raises the alerts they fire. One catch-up runs at a
// time — a caller that waited for another finds its work done — and the
// entries are read without holding the engine, so that this server's own
// entries keep being counted meanwhile.
func (s *Service) CatchUp(ctx context.Context) error {
	size, err := s.logSize(ctx)
	if err != nil {
		return medguard.Wrap("detect.CatchUp", err)
	}
	s.catching.Lock()
	defer s.catching.Unlock()
	var fired []Firing
	for {
		s.mu.Lock()
		from := s.next
		s.mu.Unlock()
		if from >= size {
			break
		}
		// This server's own entries, committed but not yet reported by
		// the requests that wrote them, come from memory; the rest (other
		// servers', or older) are read back.
		start := time.Now()
		got := s.gate.Log().Recent(from, size)
		if len(got) == 0 {
			var err error
			if got, err = audit.ReadEntries(ctx, s.db, from, size); err != nil || len(got) == 0 {
				return medguard.Wrap("detect.CatchUp", err)
			}
			s.read.Add(uint64(len(got)))
		}
		s.mu.Lock()
		if s.next < got[0].Index {
			s.next = got[0].Index // entries that left the database (archived)
		}
		for _, st := range got {
			if _, ok := s.pending[st.Index]; !ok && st.Index >= s.next {
				s.pending[st.Index] = st.Entry
			}
		}
		fired = append(fired, s.drain()...)
		s.mu.Unlock()
		s.readTook.Add(int64(time.Since(start)))
	}
	s.raiseAll(ctx, fired)
	return nil
}

// CatchUpCounts are what this server's catch-ups have read back from the
// log since it started: the entries other servers wrote (each server counts
// every user's reads, wherever they were served) and, after a start, those
// written before it.
type CatchUpCounts struct {
	Entries uint64
	Took    time.Duration // reading and counting them
}

// CatchUps returns the catch-ups' counts so far.
func (s *Service) CatchUps() CatchUpCounts {
	return CatchUpCounts{Entries: s.read.Load(), Took: time.Duration(s.readTook.Load())}
}

// Freshness reads the shared database's counters (internal/pulse).
type Freshness interface {
	Read(ctx context.Context) (pulse.Reading, error)
}

// UsePulse lets catch-ups learn the log's size from p: one read serves
// every request waiting at that moment, and within a request the reading
// its sign-in check took.
func (s *Service) UsePulse(p Freshness) { s.pulse = p }

// logSize is the size of the log, read after the call began.
func (s *Service) logSize(ctx context.Context) (uint64, error) {
	if s.pulse != nil {
		r, err := s.pulse.Read(ctx)
		return r.AuditSize, err
	}
	size, _, err := audit.HeadOf(ctx, s.db)
	return size, err
}

// drain counts the pending entries that come next in the log's order and
// returns the alert rules' firings. Called with mu held.
func (s *Service) drain() []Firing {
	var out []Firing
	for {
		e, ok := s.pending[s.next]
		if !ok {
			return out
		}
		delete(s.pending, s.next)
		for _, f := range s.engine.Observe(e) {
			f.Index = s.next
			out = append(out, f)
		}
		s.next++
		if s.engine.seen%sweepEvery == 0 {
			s.engine.Sweep(e.Time) // memory follows the active keys only
		}
	}
}

// warmLimit is the most entries read to warm the baselines at start.
const warmLimit = 2_000_000

// warm teaches the baselines the last BaselineWeeks weeks of the log (at
// most warmLimit entries), so that a restart does not forget what is usual,
// and returns the size of the log it learnt from: the engine counts from
// there.
func (s *Service) warm(ctx context.Context) (uint64, error) {
	size, _, err := audit.HeadOf(ctx, s.db)
	if err != nil || size == 0 {
		return size, err
	}
	first, err := audit.ArchivedEnd(ctx, s.db)
	if err != nil {
		return 0, err
	}
	if size-first > warmLimit {
		first = size - warmLimit
	}
	cut := s.clock.Now().Add(-BaselineWeeks * 7 * 24 * time.Hour)
	// Entries' times follow their indexes closely: find the start by bisection.
	lo, hi := first, size
	for lo < hi {
		mid := lo + (hi-lo)/2
		got, err := audit.ReadEntries(ctx, s.db, mid, mid+1)
		if err != nil {
			return 0, err
		}
		if len(got) == 1 && got[0].Entry.Time.Before(cut) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < size; {
		got, err := audit.ReadEntries(ctx, s.db, i, size)
		if err != nil || len(got) == 0 {
			return size, err
		}
		for _, st := range got {
			if st.Entry.Actor != "system" {
				s.engine.Learn(st.Entry)
			}
		}
		i = got[len(got)-1].Index + 1
	}
	return size, nil
}

// LoadRules returns the rules in force in db: the defaults, with the stored
// ones in their place.
func LoadRules(ctx context.Context, db *storage.DB) ([]Rule, error) {
	rules := DefaultRules()
	rows, err := db.QueryContext(ctx, `SELECT definition FROM detect_rules ORDER BY name`)
	if err != nil {
		return nil, medguard.Wrap("detect.loadRules", err)
	}
	defer rows.Close()
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, err
		}
		var r Rule
		if err := json.Unmarshal([]byte(def), &r); err != nil {
			return nil, medguard.Wrap("detect.loadRules", err)
		}
		if i := slices.IndexFunc(rules, func(d Rule) bool { return d.Name == r.Name }); i >= 0 {
			rules[i] = r
		} else {
			rules = append(rules, r)
		}
	}
	return rules, rows.Err()
}

// screen is the gate's screen: an operation that would make a freeze rule
// fire is refused (423) and the account frozen before the answer. With
// other servers on the same log, the engine first counts what they wrote,
// so that a user spread over several servers is frozen at the same read
// as on one.
func (s *Service) screen(ctx context.Context, es []*audit.Entry) (int, error) {
	if s.shared && s.screened(es) {
		if err := s.CatchUp(ctx); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	i, f := s.engine.Screen(es)
	s.mu.Unlock()
	if f == nil {
		return 0, nil
	}
	if _, err := s.raise(ctx, *f); err != nil {
		s.logger.Error("raising an alert failed", "rule", f.Rule, "error", err.Error())
		return i, medguard.Wrap("detect", err)
	}
	return i, &medguard.Error{Kind: medguard.Locked, Code: "account_frozen", Rule: "detect." + f.Rule,
		Message: "this account is frozen after suspicious activity; a security officer must release it"}
}

// screened reports whether a freeze rule could judge any of es, so that
// only those operations wait for the catch-up.
func (s *Service) screened(es []*audit.Entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		for i := range s.engine.rules {
			if r := &s.engine.rules[i]; r.Action == ActFreeze && s.engine.matches(r, e, true) {
				return true
			}
		}
	}
	return false
}

// observe is the gate's observer: every written entry is counted, in the
// log's order, and the alert rules that fire raise their alerts.
func (s *Service) observe(ctx context.Context, e *audit.Entry, r audit.Receipt) {
	s.mu.Lock()
	if r.Index < s.next {
		s.mu.Unlock() // counted already, by a catch-up
		return
	}
	s.pending[r.Index] = e
	fs := s.drain()
	s.mu.Unlock()
	s.raiseAll(context.WithoutCancel(ctx), fs)
}

func (s *Service) raiseAll(ctx context.Context, fs []Firing) {
	for _, f := range fs {
		if _, err := s.raise(ctx, f); err != nil {
			s.logger.Error("raising an alert failed", "rule", f.Rule, "error", err.Error())
		}
	}
}

// sweepEvery is how many entries pass between sweeps of idle windows.
const sweepEvery = 10000

var system = &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}

// raise stores the alert for a firing (as medguard itself, logged), freezes
// the account for a freeze rule, and tells OnFreeze and Notify. A firing
// raised after its entry was written is raised once, whichever server saw
// it first: the others find it stored.
func (s *Service) raise(ctx context.Context, f Firing) (Alert, error) {
	return s.raiseExplained(ctx, f, f.Explain())
}

// errRaisedAlready tells raiseExplained that another server raised the alert.
var errRaisedAlready = &medguard.Error{Kind: medguard.Conflict, Code: "alert_raised", Message: "raised by another server"}

func (s *Service) raiseExplained(ctx context.Context, f Firing, explanation string) (Alert, error) {
	now := s.clock.Now()
	if f.Severity == "" {
		f.Severity = SeverityMedium
	}
	a := Alert{ID: medguard.NewID(now), Rule: f.Rule, Action: f.Action, Username: f.Username, Key: f.Key, Count: f.Count,
		Threshold: f.Threshold, Window: f.Window, FirstAt: f.From, TriggerAt: f.At, RequestID: f.RequestID,
		Explanation: explanation, Severity: f.Severity, Status: StatusNew, CreatedAt: now, UpdatedAt: now, UpdatedBy: "system"}
	trigger := sql.NullInt64{Int64: int64(f.Index), Valid: !f.Screened && f.Username != "system"}
	if trigger.Valid {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM detect_alerts WHERE rule = $1 AND trigger_index = $2`,
			f.Rule, trigger.Int64).Scan(&n); err != nil {
			return a, medguard.Wrap("detect.raise", err)
		}
		if n > 0 {
			return a, nil
		}
	}
	call := *system
	call.RequestID = f.RequestID
	if f.Action == ActFreeze {
		// The freeze first, so that the alert names it.
		freezeID, froze, err := s.id.FreezeAccount(ctx, f.Username, "detect."+f.Rule, a.ID, f.RequestID)
		if err != nil {
			return a, err
		}
		a.Frozen, a.FreezeID = froze, freezeID
	}
	_, err := s.gate.Record(ctx, gate.Event{Call: &call, Action: "alert.raise", TargetType: "alert", TargetID: a.ID,
		Allowed: true, Rule: "detect." + f.Rule}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO detect_alerts (id, rule, action, username, key_value, count, threshold,
			window_ms, first_at, trigger_at, request_id, explanation, status, created_at, updated_at, updated_by, severity,
			trigger_index, freeze_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, 'system', $15, $16, $17)
			ON CONFLICT (rule, trigger_index) DO NOTHING`,
			a.ID, a.Rule, a.Action, a.Username, a.Key, a.Count, a.Threshold, time.Duration(a.Window).Milliseconds(),
			medguard.Millis(a.FirstAt), medguard.Millis(a.TriggerAt), a.RequestID, a.Explanation, a.Status, medguard.Millis(now),
			a.Severity, trigger, storage.NullString(a.FreezeID))
		return storage.Affected(res, err, errRaisedAlready)
	})
	if errors.Is(err, errRaisedAlready) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	if a.Frozen && s.OnFreeze != nil {
		s.OnFreeze(ctx, a)
	}
	if s.Notify != nil {
		s.Notify(ctx, a)
	}
	return a, nil
}

// LinkIncident records the incident an alert opened (a freeze's), as
// medguard itself, in the audit log.
func (s *Service) LinkIncident(ctx context.Context, alertID, incidentID string) error {
	_, err := s.gate.Record(ctx, gate.Event{Call: system, Action: "alert.link_incident", TargetType: "alert", TargetID: alertID,
		Allowed: true, Rule: "allow.system"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `UPDATE detect_alerts SET incident_id = $1 WHERE id = $2`, incidentID, alertID)
		return err
	})
	return err
}

// RaiseNotice raises an alert that no rule on the audit stream fired — an
// incident's overdue deadline — keyed by what it concerns (an id), as
// medguard itself. It is logged and notified like any alert.
func (s *Service) RaiseNotice(ctx context.Context, rule, key, explanation string) error {
	now := s.clock.Now()
	_, err := s.raiseExplained(ctx, Firing{Rule: rule, Action: ActAlert, Key: key, Username: "system", Count: 1, Threshold: 1,
		From: now, At: now}, explanation)
	return err
}

// Rules returns the rules in force (permission alert.read).
func (s *Service) Rules(ctx context.Context, call *medguard.Call) ([]Rule, error) {
	var out []Rule
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AlertRead, AuditAction: "detect.rule.list",
		Resource: policy.Resource{Type: "detection_rule"}}, func(policy.Decision) (audit.Mutation, error) {
		s.mu.Lock()
		out = s.engine.Rules()
		s.mu.Unlock()
		return nil, nil
	})
	return out, err
}

// SetRule stores a rule — a change of a built-in one, or a new one — and
// puts it in force at once (permission rule.manage; logged).
func (s *Service) SetRule(ctx context.Context, call *medguard.Call, r Rule) (Rule, error) {
	if err := r.Validate(); err != nil {
		return r, err
	}
	def, _ := json.Marshal(r)
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RuleManage, AuditAction: "detect.rule.set",
		Resource: policy.Resource{Type: "detection_rule", ID: r.Name}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO detect_rules (name, definition, updated_at, updated_by) VALUES ($1, $2, $3, $4)
				ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at,
				updated_by = excluded.updated_by`, r.Name, string(def), medguard.Millis(now), call.Actor.Name)
			return err
		}, nil
	})
	if err != nil {
		return r, err
	}
	rules, err := LoadRules(ctx, s.db)
	if err != nil {
		return r, err
	}
	s.mu.Lock()
	s.engine.SetRules(rules)
	s.mu.Unlock()
	return r, nil
}

// AlertQuery filters alerts; After is the cursor (an alert id).
type AlertQuery struct {
	Status, Rule, Username string
	// Severity, if set, keeps the alerts of one severity.
	Severity string
	// From and To, if set, bound the time the alert was triggered (To
	// exclusive).
	From, To time.Time
	After    string
	// Limit is the page's length: at most MaxAlertPage (the API asks for
	// at most 200); default 50.
	Limit int
}

// MaxAlertPage is the most alerts one call lists.
const MaxAlertPage = 2000

const alertColumns = `id, rule, action, username, key_value, count, threshold, window_ms, first_at, trigger_at, request_id,
	explanation, severity, status, COALESCE(freeze_id, ''), COALESCE(incident_id, ''), created_at, updated_at, updated_by`

func scanAlert(row interface{ Scan(...any) error }) (Alert, error) {
	var a Alert
	var window, first, trigger, created, updated int64
	err := row.Scan(&a.ID, &a.Rule, &a.Action, &a.Username, &a.Key, &a.Count, &a.Threshold, &window, &first, &trigger,
		&a.RequestID, &a.Explanation, &a.Severity, &a.Status, &a.FreezeID, &a.IncidentID, &created, &updated, &a.UpdatedBy)
	a.Window = Duration(time.Duration(window) * time.Millisecond)
	a.FirstAt, a.TriggerAt = medguard.FromMillis(first), medguard.FromMillis(trigger)
	a.CreatedAt, a.UpdatedAt = medguard.FromMillis(created), medguard.FromMillis(updated)
	a.Frozen = a.FreezeID != ""
	return a, err
}

// Alerts lists alerts, newest first (permission alert.read), and the
// cursor of the next page ("" at the end).
func (s *Service) Alerts(ctx context.Context, call *medguard.Call, q AlertQuery) ([]Alert, string, error) {
	if q.Limit <= 0 || q.Limit > MaxAlertPage {
		q.Limit = 50
	}
	var out []Alert
	next := ""
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AlertRead, AuditAction: "alert.list",
		Resource: policy.Resource{Type: "alert"}}, func(policy.Decision) (audit.Mutation, error) {
		where, args := "1 = 1", []any{}
		add := func(cond string, v any) {
			args = append(args, v)
			where += " AND " + cond + " $" + strconv.Itoa(len(args))
		}
		if q.Status != "" {
			add("status =", q.Status)
		}
		if q.Rule != "" {
			add("rule =", q.Rule)
		}
		if q.Username != "" {
			add("username =", q.Username)
		}
		if q.Severity != "" {
			add("severity =", q.Severity)
		}
		if !q.From.IsZero() {
			add("trigger_at >=", medguard.Millis(q.From))
		}
		if !q.To.IsZero() {
			add("trigger_at <", medguard.Millis(q.To))
		}
		if q.After != "" {
			add("id <", q.After)
		}
		args = append(args, q.Limit+1)
		rows, err := s.db.QueryContext(ctx, `SELECT `+alertColumns+` FROM detect_alerts WHERE `+where+
			` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAlert(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		if len(out) > q.Limit {
			out, next = out[:q.Limit], out[q.Limit-1].ID
		}
		return nil, rows.Err()
	})
	return out, next, err
}

var errNoAlert = &medguard.Error{Kind: medguard.NotFound, Message: "no such alert"}

// Alert returns one alert (permission alert.read).
func (s *Service) Alert(ctx context.Context, call *medguard.Call, alertID string) (Alert, error) {
	res := policy.Resource{Type: "alert"}
	if medguard.ValidID(alertID) {
		res.ID = alertID
	}
	var out Alert
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AlertRead, AuditAction: "alert.read", Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM detect_alerts WHERE id = $1`, alertID))
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errNoAlert
			}
			out = a
			return nil, err
		})
	return out, err
}

// ResolveNotices acknowledges, as medguard itself, the new alerts of a
// rule about one key — the overdue deadlines of an incident that was
// closed — each in the audit log (alert.acknowledged, rule
// allow.system.<why>). It returns how many it acknowledged.
func (s *Service) ResolveNotices(ctx context.Context, rule, key, why string) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM detect_alerts WHERE rule = $1 AND key_value = $2 AND status = $3 ORDER BY id`,
		rule, key, StatusNew)
	if err != nil {
		return 0, medguard.Wrap("detect.ResolveNotices", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, medguard.Wrap("detect.ResolveNotices", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, medguard.Wrap("detect.ResolveNotices", err)
	}
	n := 0
	for _, id := range ids {
		now := s.clock.Now()
		_, err := s.gate.Record(ctx, gate.Event{Call: system, Action: "alert." + StatusAcknowledged, TargetType: "alert", TargetID: id,
			Allowed: true, Rule: "allow.system." + why}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE detect_alerts SET status = $1, updated_at = $2, updated_by = 'system'
				WHERE id = $3 AND status = $4`, StatusAcknowledged, medguard.Millis(now), id, StatusNew)
			return storage.Affected(res, err, errRaisedAlready)
		})
		switch {
		case errors.Is(err, errRaisedAlready):
			// Moved on meanwhile by someone else: nothing to do.
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

// transitions are the alert states each state may move to.
var transitions = map[string][]string{
	StatusNew:          {StatusAcknowledged, StatusFalsePositive, StatusEscalated},
	StatusAcknowledged: {StatusFalsePositive, StatusEscalated},
}

// SetStatus moves an alert to a new state (permission alert.manage):
// acknowledged, false_positive or escalated; incidentID links an
// escalated alert to its incident.
func (s *Service) SetStatus(ctx context.Context, call *medguard.Call, alertID, status, incidentID string) (Alert, error) {
	if status != StatusAcknowledged && status != StatusFalsePositive && status != StatusEscalated {
		return Alert{}, medguard.InvalidField("status", "status must be acknowledged, false_positive or escalated")
	}
	res := policy.Resource{Type: "alert"}
	if medguard.ValidID(alertID) {
		res.ID = alertID
	}
	var out Alert
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.AlertManage, AuditAction: "alert." + status, Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM detect_alerts WHERE id = $1`, alertID))
			if errors.Is(err, sql.ErrNoRows) {
				return nil, &medguard.Error{Kind: medguard.NotFound, Message: "no such alert"}
			}
			if err != nil {
				return nil, err
			}
			if !slices.Contains(transitions[a.Status], status) {
				return nil, &medguard.Error{Kind: medguard.Conflict, Message: "an alert that is " + a.Status + " cannot become " + status}
			}
			was := a.Status
			a.Status, a.UpdatedAt, a.UpdatedBy = status, now, call.Actor.Name
			if incidentID != "" {
				a.IncidentID = incidentID
			}
			out = a
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE detect_alerts SET status = $1, updated_at = $2, updated_by = $3,
					incident_id = COALESCE(NULLIF($4, ''), incident_id) WHERE id = $5 AND status = $6`,
					status, medguard.Millis(now), call.Actor.Name, incidentID, alertID, was)
				return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the alert changed meanwhile"})
			}, nil
		})
	return out, err
}

// Replay runs the rules in force over the stored entries with index in
// [start, end) whose time is in [from, to), from empty windows, and
// returns what fired — exactly what the live path raised over the same
// entries.
func Replay(ctx context.Context, db *storage.DB, rules []Rule, zone *time.Location, from, to time.Time, start, end uint64) ([]Firing, error) {
	e := NewEngine(rules, zone)
	var out []Firing
	for i := start; i < end; {
		got, err := audit.ReadEntries(ctx, db, i, end)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			break
		}
		for _, st := range got {
			if (!from.IsZero() && st.Entry.Time.Before(from)) || (!to.IsZero() && !st.Entry.Time.Before(to)) {
				continue
			}
			if st.Entry.Actor == "system" {
				continue
			}
			out = append(out, e.Replay(st.Entry)...)
		}
		i = got[len(got)-1].Index + 1
	}
	return out, nil
}
