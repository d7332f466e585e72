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
	// Screen, if set, judges every admitted operation before its work is
	// done (the detection engine's freeze rules): an error refuses it, and
	// is logged as its outcome with the error's rule.
	Screen func(ctx context.Context, e *audit.Entry) error
	// Observe, if set, is told of every entry after it is durable (the
	// detection engine listens here).
	Observe func(ctx context.Context, e *audit.Entry, r audit.Receipt)
}

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
	if g.Screen != nil {
		if err := g.Screen(ctx, e); err != nil {
			e.Decision, e.Outcome = audit.Deny, audit.OutcomeOf(err)
			if me := (*medguard.Error)(nil); errors.As(err, &me) && me.Rule != "" {
				e.Rule = me.Rule
			}
			r, aerr := g.append(ctx, e, nil)
			if aerr != nil {
				return d, r, aerr
			}
			return d, r, err
		}
	}
	mutation, werr := work(d)
	if werr != nil {
		e.Outcome = audit.OutcomeOf(werr)
		r, err := g.append(ctx, e, nil)
		if err != nil {
			return d, r, err
		}
		return d, r, werr
	}
	r, err := g.append(ctx, e, mutation)
	return d, r, err
}

// decide asks the policy about p at now.
func (g *Gate) decide(p Passage, now time.Time) policy.Decision {
	a := p.Call.Actor
	perms := policy.PermissionsOf(a.Roles)
	if a.Kind == medguard.APIKeyActor {
		perms = policy.SetOf(a.Scopes)
	}
	return policy.Decide(policy.Request{
		Subject:    policy.Subject{ID: a.ID, Department: a.Department, Active: a.ID != "", Permissions: perms},
		Action:     p.Action,
		Resource:   p.Resource,
		BreakGlass: p.Call.BreakGlassReason != "",
		CareTeam:   p.CareTeam,
		Grants:     p.Grants,
		Now:        now,
	})
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
		IP: c.IP, Action: action, TargetType: p.Resource.Type, TargetID: p.Resource.ID,
		PatientID: p.Resource.PatientID, Purpose: c.Purpose, Decision: decision, Rule: d.Rule,
		Outcome: audit.Success, BreakGlass: d.BreakGlass, RequestID: c.RequestID,
	}
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
}

// Record logs an event, committing mutation (if any) with it.
func (g *Gate) Record(ctx context.Context, ev Event, mutation audit.Mutation) (audit.Receipt, error) {
	decision := audit.Deny
	if ev.Allowed {
		decision = audit.Allow
	}
	c := ev.Call
	e := &audit.Entry{
		Time: g.clock.Now(), Actor: c.Actor.Name, ActorDepartment: c.Actor.Department, ActorRoles: actorRoles(c.Actor),
		IP: c.IP, Action: ev.Action, TargetType: ev.TargetType, TargetID: ev.TargetID, Purpose: c.Purpose,
		Decision: decision, Rule: ev.Rule, Outcome: ev.Outcome, RequestID: c.RequestID,
	}
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	return g.append(ctx, e, mutation)
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
