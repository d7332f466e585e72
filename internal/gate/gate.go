// Package gate is the one door to medguard's data. Every operation — on
// patient data above all, but also on users, departments and approvals —
// passes through Gate.Enter, which in this order
//
//  1. asks the access policy for a decision on the facts the caller loaded,
//  2. lets the caller do the work (read and decrypt, or validate and encrypt),
//  3. appends the audit entry, durably, together with the work's database
//     changes in one transaction,
//
// and only then lets the caller answer. A denied operation is logged and
// never reaches step 2. Sign-in events, which have no actor yet, are logged
// with Gate.Record. There is no other way for a capability package to reach
// patient data: they call the gate, and the gate is the only caller of the
// policy and the only writer of the audit log.
package gate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
)

// Gate decides, admits and records.
type Gate struct {
	log   *audit.Log
	clock medguard.Clock
	// Screen, if set, judges admitted operations before their work is done
	// (the detection engine's freeze rules): the entries of one operation
	// (one, or a list's items) are judged together, as if done in order; an
	// error refuses the operation, and the entry at index refused is logged
	// with the error's rule as its outcome.
	Screen func(ctx context.Context, es []*audit.Entry) (refused int, err error)
	// Observe, if set, is told of every entry after it is durable (the
	// detection engine listens here).
	Observe func(ctx context.Context, e *audit.Entry, r audit.Receipt)
	// Confirm, if set, is called before anything is decided or logged for
	// a request: a request whose sign-in was judged by a session kept in
	// memory takes the reading that confirms it there (pulse.Confirm), and
	// is refused (pulse.ErrStale) if the session may have changed.
	Confirm func(ctx context.Context) error

	// restrictions are the registers' standing rules (Restrict).
	restrictions []RestrictionSource
}

// A RestrictionSource tells the gate the restrictions a register puts on
// an actor now (own: training not passed, say) and on everyone (all: an
// operation suspended). It is asked on every decision, so it answers from
// memory — a snapshot its register keeps current on its own writes and
// reloads often enough for other servers' writes — and never fails: a
// register that cannot tell restricts rather than opens.
type RestrictionSource func(a *medguard.Actor, now time.Time) (own, all []policy.Restriction)

// Restrict adds a source of restrictions. Call it while wiring, before
// the gate serves.
func (g *Gate) Restrict(src RestrictionSource) { g.restrictions = append(g.restrictions, src) }

// New returns a gate writing to log.
func New(log *audit.Log, clock medguard.Clock) *Gate {
	return &Gate{log: log, clock: clock}
}

// Log returns the audit log the gate writes to.
func (g *Gate) Log() *audit.Log { return g.log }

// Clock returns the gate's clock.
func (g *Gate) Clock() medguard.Clock { return g.clock }

// Passage describes one operation: who (in Call), what (Action), on what
// (Resource), and the relations that may allow it.
type Passage struct {
	Call     *medguard.Call
	Action   policy.Permission
	Resource policy.Resource
	CareTeam []policy.CareTeamMembership
	Grants   []policy.Grant
	// UseGrants are the caller's approved record-use requests for the
	// patient concerned.
	UseGrants []policy.UseGrant
	// ChangedBy lists, for deciding a four-eyes request, the users who
	// created, changed or reset the caller's account.
	ChangedBy []string
	// DeidJob, for medguard itself (a system actor) reading for an approved
	// de-identification job, is the job whose scope opens the read; it is
	// ignored for any other actor.
	DeidJob *policy.DeidJob
	// AuditAction overrides the action recorded in the log (default Action),
	// for operations whose permission is broader than what they do, e.g.
	// "record.attachment.read" under record.read.
	AuditAction string
}

// Work is what the caller does once admitted. It may read and decrypt, or
// validate and encrypt; it must not write to the database itself. It returns
// the database changes to commit together with the audit entry (or nil), or
// an error, which is logged as the outcome and returned to the caller.
type Work func(d policy.Decision) (audit.Mutation, error)

// Enter decides on p, runs work if allowed, and logs the operation. It
// returns the decision and the receipt of the entry. When the policy denies,
// the error is Forbidden with the rule; when the audit entry cannot be made
// durable, the error is Internal and whatever work produced must not be
// released.
func (g *Gate) Enter(ctx context.Context, p Passage, work Work) (policy.Decision, audit.Receipt, error) {
	if err := g.confirm(ctx); err != nil {
		return policy.Decision{}, audit.Receipt{}, err
	}
	now := g.clock.Now()
	d := g.decide(p, now)
	e := g.entry(p, d, now)
	if !d.Allowed {
		e.Outcome = audit.Denied
		r, err := g.append(ctx, e, nil)
		if err != nil {
			return d, r, err
		}
		return d, r, &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Message: "denied by the access policy"}
	}
	if r, err := g.screen(ctx, []*audit.Entry{e}); err != nil {
		return d, r, err
	}
	mutation, werr := work(d)
	if werr != nil {
		refusedBy(e, werr)
		r, err := g.append(ctx, e, nil)
		if err != nil {
			return d, r, err
		}
		return d, r, werr
	}
	r, err := g.append(ctx, e, mutation)
	return d, r, err
}

// Missing passes the gate for an operation on something that does not
// exist: an attempt on a missing target is still the caller's operation,
// decided on the permission alone (p.Resource is marked Missing) and
// logged. It returns the policy's refusal when the caller may not do the
// operation at all (logged denied), and otherwise notFound, logged with
// its outcome (audit.Missing, for a NotFound error) — or, as Enter, the
// screen's refusal or an internal error when the entry cannot be made
// durable. It never returns nil: a nil notFound is a NotFound error naming
// the resource's type.
func (g *Gate) Missing(ctx context.Context, p Passage, notFound error) error {
	if notFound == nil {
		notFound = medguard.Errorf(medguard.NotFound, "no such %s", strings.ReplaceAll(p.Resource.Type, "_", " "))
	}
	p.Resource.Missing = true
	_, _, err := g.Enter(ctx, p, func(policy.Decision) (audit.Mutation, error) { return nil, notFound })
	return err
}

// screen asks the screen about the entries of one operation. When it
// refuses, the refused entry is logged with the screen's rule and outcome,
// and the screen's error is returned (with the receipt of that entry).
func (g *Gate) screen(ctx context.Context, es []*audit.Entry) (audit.Receipt, error) {
	if g.Screen == nil {
		return audit.Receipt{}, nil
	}
	i, err := g.Screen(ctx, es)
	if err == nil {
		return audit.Receipt{}, nil
	}
	e := es[i]
	refusedBy(e, err)
	e.Decision = audit.Deny
	r, aerr := g.append(ctx, e, nil)
	if aerr != nil {
		return r, aerr
	}
	return r, err
}

// refusedBy records err as e's outcome. An operation the policy admitted
// but a rule of the work refused (403 with a rule: a partner agreement
// not covering a job, the placer of a hold approving its lifting) is
// logged as denied by that rule, as the caller was told.
func refusedBy(e *audit.Entry, err error) {
	e.Outcome = audit.OutcomeOf(err)
	if me := (*medguard.Error)(nil); errors.As(err, &me) && me.Rule != "" {
		e.Rule = me.Rule
		if me.Kind == medguard.Forbidden {
			e.Decision = audit.Deny
		}
	}
}

// decide asks the policy about p at now.
func (g *Gate) decide(p Passage, now time.Time) policy.Decision {
	a := p.Call.Actor
	perms := policy.PermissionsOf(a.Roles)
	system := a.Kind == medguard.APIKeyActor
	if system {
		perms = policy.SetOf(a.Scopes)
	}
	var job *policy.DeidJob
	if a.Kind == medguard.SystemActor {
		job = p.DeidJob
	}
	var own, all []policy.Restriction
	for _, src := range g.restrictions {
		o, e := src(&a, now)
		own, all = append(own, o...), append(all, e...)
	}
	return policy.Decide(policy.Request{
		DeidJob:     job,
		Suspensions: all,
		Subject: policy.Subject{ID: a.ID, Department: a.Department, Active: a.ID != "", Permissions: perms,
			System: system, ChangedBy: p.ChangedBy, Restrictions: own},
		Action:     p.Action,
		Resource:   p.Resource,
		BreakGlass: p.Call.BreakGlassReason != "",
		CareTeam:   p.CareTeam,
		Grants:     p.Grants,
		UseGrants:  p.UseGrants,
		Purpose:    p.Call.Purpose,
		Now:        now,
	})
}

// EnterList is Enter for an operation that shows many patients at once (a
// department's patient list, a search's results): lead is the operation
// itself (e.g. listing a department), and load, called once lead is
// allowed, returns one passage per item it would show. Each item is decided
// on its own and logged as its own entry (so each patient listed counts, in
// detection and in the patient's access report), all items are screened
// together — a list that would make a freeze rule fire is refused whole —
// and work gets the items' decisions to show the allowed ones. The lead's
// and the items' entries are committed together, durable before EnterList
// returns.
func (g *Gate) EnterList(ctx context.Context, lead Passage, load func(policy.Decision) ([]Passage, error),
	work func(items []policy.Decision) error) error {
	if err := g.confirm(ctx); err != nil {
		return err
	}
	now := g.clock.Now()
	d := g.decide(lead, now)
	le := g.entry(lead, d, now)
	if !d.Allowed {
		le.Outcome = audit.Denied
		if _, err := g.append(ctx, le, nil); err != nil {
			return err
		}
		return &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Message: "denied by the access policy"}
	}
	fail := func(err error) error {
		refusedBy(le, err)
		if _, aerr := g.append(ctx, le, nil); aerr != nil {
			return aerr
		}
		return err
	}
	items, err := load(d)
	if err != nil {
		return fail(err)
	}
	ds := make([]policy.Decision, len(items))
	es := []*audit.Entry{le}
	var shown []*audit.Entry
	for i, p := range items {
		ds[i] = g.decide(p, now)
		e := g.entry(p, ds[i], now)
		if !ds[i].Allowed {
			e.Outcome = audit.Denied
		} else {
			shown = append(shown, e)
		}
		es = append(es, e)
	}
	if _, err := g.screen(ctx, append([]*audit.Entry{le}, shown...)); err != nil {
		return err
	}
	if werr := work(ds); werr != nil {
		for _, e := range es {
			if e.Outcome == audit.Success {
				e.Outcome = audit.OutcomeOf(werr)
			}
		}
		if _, err := g.appendAll(ctx, es); err != nil {
			return err
		}
		return werr
	}
	_, err = g.appendAll(ctx, es)
	return err
}

// Check returns the policy's decision on p and writes nothing. It is only
// for the items of an operation that was itself admitted and logged by
// Enter — e.g. which of a patient's records a list may name.
func (g *Gate) Check(p Passage) policy.Decision {
	return g.decide(p, g.clock.Now())
}

func (g *Gate) entry(p Passage, d policy.Decision, now time.Time) *audit.Entry {
	c := p.Call
	action := p.AuditAction
	if action == "" {
		action = string(p.Action)
	}
	decision := audit.Allow
	if !d.Allowed {
		decision = audit.Deny
	}
	return &audit.Entry{
		Time: now, Actor: c.Actor.Name, ActorDepartment: c.Actor.Department, ActorRoles: actorRoles(c.Actor),
		IP: c.IP, Action: action, TargetType: p.Resource.Type, TargetID: SafeTargetID(p.Resource.Type, p.Resource.ID),
		PatientID: SafeTargetID("patient", p.Resource.PatientID), Purpose: c.Purpose, Decision: decision, Rule: d.Rule,
		Outcome: audit.Success, BreakGlass: d.BreakGlass, RequestID: c.RequestID, Classification: p.Resource.Classification,
	}
}

// codeTargets are the target types named by a code rather than an opaque
// id: a department's code, a detection rule's or a role's name.
var codeTargets = map[string]bool{"department": true, "detection_rule": true, "role": true, "break_glass_queue": true, "kek": true,
	"audit_key": true, "index_key": true, "drill_cadence": true}

// SafeTargetID returns id if it may go into the permanent log as the
// target of an entry: an opaque id (medguard.ValidID), or — for targets
// named by a code — a short ASCII code, or — for a posture report's PDF —
// its SHA-256 in hex. Anything else a client typed into a path (a name, an
// ID number, 60 KB of junk) is logged as "": the log must never hold
// patient data, nor grow by what a client sends.
func SafeTargetID(typ, id string) string {
	if id == "" || medguard.ValidID(id) {
		return id
	}
	if codeTargets[typ] && len(id) <= 64 && isCode(id) {
		return id
	}
	if typ == "backup" && len(id) <= 96 && isBackupName(id) {
		return id
	}
	if typ == "report_pdf" && isSHA256Hex(id) {
		return id
	}
	return ""
}

// isSHA256Hex reports whether s is a SHA-256 in lowercase hex: a posture
// report's PDF, named in the log by its digest (report.generate).
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isBackupName reports whether s is made of letters, digits, '.', '_' and
// '-' only: a backup's id as internal/backup names it (its time first).
func isBackupName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// isCode reports whether s is a letter followed by letters, digits, '.',
// '_' or '-'.
func isCode(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return s != ""
}

func actorRoles(a medguard.Actor) []string {
	if a.Kind == medguard.APIKeyActor {
		return []string{"api_key"}
	}
	return slices.Clone(a.Roles)
}

// Event is something to log that the policy does not decide: a sign-in
// attempt, a lockout, a sign-out, a session ending.
type Event struct {
	Call       *medguard.Call
	Action     string
	TargetType string
	TargetID   string
	Allowed    bool
	Rule       string
	Outcome    string
	// Count, for an event that summarises many refused requests, says how
	// many it stands for.
	Count int
}

// Record logs an event, committing mutation (if any) with it.
func (g *Gate) Record(ctx context.Context, ev Event, mutation audit.Mutation) (audit.Receipt, error) {
	if err := g.confirm(ctx); err != nil {
		return audit.Receipt{}, err
	}
	decision := audit.Deny
	if ev.Allowed {
		decision = audit.Allow
	}
	c := ev.Call
	e := &audit.Entry{
		Time: g.clock.Now(), Actor: c.Actor.Name, ActorDepartment: c.Actor.Department, ActorRoles: actorRoles(c.Actor),
		IP: c.IP, Action: ev.Action, TargetType: ev.TargetType, TargetID: SafeTargetID(ev.TargetType, ev.TargetID),
		Purpose: c.Purpose, Decision: decision, Rule: ev.Rule, Outcome: ev.Outcome, RequestID: c.RequestID, Count: ev.Count,
	}
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	return g.append(ctx, e, mutation)
}

// confirm calls Confirm, if set.
func (g *Gate) confirm(ctx context.Context) error {
	if g.Confirm == nil {
		return nil
	}
	return medguard.Wrap("gate", g.Confirm(ctx))
}

func (g *Gate) append(ctx context.Context, e *audit.Entry, m audit.Mutation) (audit.Receipt, error) {
	r, err := g.log.Append(ctx, e, m)
	if r.TreeSize == 0 {
		// The entry is not in the log: nothing may be answered but an error.
		return r, medguard.Wrap("gate", err)
	}
	if t := traceFrom(ctx); t != nil {
		t.entries.Add(1)
		t.last.Store(r.Index)
	}
	if g.Observe != nil {
		g.Observe(ctx, e, r)
	}
	return r, err
}

// appendAll appends the entries of one operation in one commit and tells
// the observer of each.
func (g *Gate) appendAll(ctx context.Context, es []*audit.Entry) ([]audit.Receipt, error) {
	rs, err := g.log.AppendBatch(ctx, es)
	if err != nil {
		return rs, medguard.Wrap("gate", err)
	}
	t := traceFrom(ctx)
	for i, r := range rs {
		if t != nil {
			t.entries.Add(1)
			t.last.Store(r.Index)
		}
		if g.Observe != nil {
			g.Observe(ctx, es[i], r)
		}
	}
	return rs, nil
}

// Trace counts the entries one request wrote, so that the web layer can log
// requests that never reached the gate (e.g. malformed bodies).
type Trace struct {
	entries atomic.Int64
	last    atomic.Uint64
}

// Last returns the index of the last entry written under the trace.
func (t *Trace) Last() (uint64, bool) {
	return t.last.Load(), t.entries.Load() > 0
}

// Entries returns the number of entries written under the trace.
func (t *Trace) Entries() int64 { return t.entries.Load() }

type traceKey struct{}

// WithTrace returns a context whose gate passages are counted by the trace.
func WithTrace(ctx context.Context) (context.Context, *Trace) {
	t := &Trace{}
	return context.WithValue(ctx, traceKey{}, t), t
}

func traceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}
