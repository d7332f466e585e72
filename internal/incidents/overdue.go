package incidents

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// OverdueItem is one overdue deadline of an open incident. Incident carries
// no free text (title and description are left empty), so that hooks may
// pass it on to alerting channels.
type OverdueItem struct {
	Incident Incident `json:"incident"`
	Deadline Deadline `json:"deadline"`
}

// Overdue lists the overdue deadlines of open incidents at now, oldest due
// first. It reads no free text and logs nothing: it is for the service's
// own overdue check and the detection engine; people use ListOverdue.
func (s *Service) Overdue(ctx context.Context, now time.Time) ([]OverdueItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE status = 'open' ORDER BY id`)
	if err != nil {
		return nil, medguard.Wrap("incidents.Overdue", err)
	}
	defer rows.Close()
	var out []OverdueItem
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, medguard.Wrap("incidents.Overdue", err)
		}
		in.title, in.description, in.analysis = nil, nil, nil
		in.Deadlines = in.deadlines(now)
		for _, d := range in.Deadlines {
			if d.State == Overdue {
				out = append(out, OverdueItem{Incident: *in, Deadline: d})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("incidents.Overdue", err)
	}
	slices.SortStableFunc(out, func(a, b OverdueItem) int { return a.Deadline.DueAt.Compare(b.Deadline.DueAt) })
	return out, nil
}

// ListOverdue lists the overdue deadlines of open incidents, for people
// who may read incidents (the console's deadline list).
func (s *Service) ListOverdue(ctx context.Context, call *medguard.Call) ([]OverdueItem, error) {
	var out []OverdueItem
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.IncidentRead, AuditAction: "incident.overdue",
		Resource: policy.Resource{Type: "incident"}},
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			out, err = s.Overdue(ctx, s.clock.Now())
			return nil, err
		})
	if out == nil {
		out = []OverdueItem{}
	}
	return out, err
}

// OnOverdue adds a hook told once of every deadline that becomes overdue
// (the detection engine raises an alert). Hooks run in CheckOverdue, after
// the announcement is in the audit log.
func (s *Service) OnOverdue(hook func(Incident, Deadline)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onOverdue = append(s.onOverdue, hook)
}

// CheckOverdue announces the deadlines that are overdue now and were not
// announced before: each is logged (action incident.deadline_overdue, as
// the system) and passed to the OnOverdue hooks, once. A progress update
// missed again two hours later is a new deadline and is announced again.
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueItem, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	items, err := s.Overdue(ctx, now)
	if err != nil {
		return nil, err
	}
	var fresh []OverdueItem
	for _, it := range items {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM incident_overdue_notices
			WHERE incident_id = $1 AND deadline = $2 AND due_at = $3`,
			it.Incident.ID, it.Deadline.Name, medguard.Millis(it.Deadline.DueAt)).Scan(&n); err != nil {
			return nil, medguard.Wrap("incidents.CheckOverdue", err)
		}
		if n > 0 {
			continue
		}
		call := System
		it := it
		if _, err := s.gate.Record(ctx, gate.Event{Call: &call, Action: "incident.deadline_overdue", TargetType: "incident",
			TargetID: it.Incident.ID, Allowed: true, Rule: "allow.system.deadline:" + it.Deadline.Name},
			func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO incident_overdue_notices (incident_id, deadline, due_at, notified_at)
					VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id, deadline, due_at) DO NOTHING`,
					it.Incident.ID, it.Deadline.Name, medguard.Millis(it.Deadline.DueAt), medguard.Millis(now))
				return err
			}); err != nil {
			return nil, err
		}
		fresh = append(fresh, it)
	}
	s.mu.Lock()
	hooks := append([]func(Incident, Deadline){}, s.onOverdue...)
	s.mu.Unlock()
	for _, it := range fresh {
		for _, h := range hooks {
			h(it.Incident, it.Deadline)
		}
	}
	return fresh, nil
}

// Run checks for overdue deadlines (of incidents and of accountability
// cases) at once and then every interval until ctx ends, and hands the
// retraining orders still pending to the training register, passing
// failures to onError (may be nil): deadlines that fell due while no
// server ran are alerted as soon as one starts.
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckOverdue(ctx)
		if _, cerr := s.CheckCaseOverdue(ctx); err == nil {
			err = cerr
		}
		if _, rerr := s.RetryRetraining(ctx); err == nil {
			err = rerr
		}
		return err
	}, onError)
}
