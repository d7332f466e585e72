package incidents

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"medguard"
	"medguard/internal/gate"
)

// The clocks of accountability cases — the 72-hour fact-finding and the
// handling opinion within 5 working days — are announced when overdue,
// like an incident's: once each, in the audit log as
// accountability.deadline_overdue, and to the OnCaseOverdue hooks (the
// application raises an alert, CaseDeadlineOverdueRule). When a decision
// or an opinion leaves a case with nothing overdue, the OnCaseSettled hooks
// are told (its alerts are cleared).

// CaseDeadlineOverdueRule is the alert rule of an overdue case deadline;
// the key is the case's id, and the explanation names the deadline
// ("… deadline <name> was due <time>") but never the person.
const CaseDeadlineOverdueRule = "case_deadline_overdue"

// OnCaseOverdue adds a hook told once of every case deadline that becomes
// overdue. The case carries no free text.
func (s *Service) OnCaseOverdue(hook func(Case, Deadline)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCaseOverdue = append(s.onCaseOverdue, hook)
}

// OnCaseSettled adds a hook told when a step leaves a case with no overdue
// deadline.
func (s *Service) OnCaseSettled(hook func(context.Context, Case)) { s.onCaseSettled.Add(hook) }

// bareCase is a case without its free text.
func bareCase(c Case) Case {
	c.Summary, c.Findings, c.Statement, c.Decision, c.Opinion, c.Appeal, c.Review = "", nil, nil, nil, nil, nil, nil
	return c
}

// caseSettled tells the OnCaseSettled hooks if nothing of the case is
// overdue any more.
func (s *Service) caseSettled(ctx context.Context, c *Case) {
	for _, d := range c.Deadlines {
		if d.State == Overdue {
			return
		}
	}
	s.onCaseSettled.Tell(ctx, bareCase(*c))
}

// CaseOverdueItem is one overdue deadline of a case.
type CaseOverdueItem struct {
	Case     Case     `json:"case"`
	Deadline Deadline `json:"deadline"`
}

// CaseOverdue lists the overdue deadlines of the cases still running at
// now (under investigation, or upheld and waiting for the opinion), oldest
// due first. It reads no free text and logs nothing.
func (s *Service) CaseOverdue(ctx context.Context, now time.Time) ([]CaseOverdueItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+caseColumns+` FROM accountability_cases
		WHERE status = 'investigating' OR (status = 'decided' AND outcome = 'upheld' AND opinion_at IS NULL) ORDER BY id`)
	if err != nil {
		return nil, medguard.Wrap("incidents.CaseOverdue", err)
	}
	defer rows.Close()
	var out []CaseOverdueItem
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, medguard.Wrap("incidents.CaseOverdue", err)
		}
		s.finish(c, now)
		for _, d := range c.Deadlines {
			if d.State == Overdue {
				out = append(out, CaseOverdueItem{Case: bareCase(*c), Deadline: d})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("incidents.CaseOverdue", err)
	}
	slices.SortStableFunc(out, func(a, b CaseOverdueItem) int { return a.Deadline.DueAt.Compare(b.Deadline.DueAt) })
	return out, nil
}

// CheckCaseOverdue announces the case deadlines overdue now and not
// announced before (logged as medguard, and passed to the OnCaseOverdue
// hooks, once each).
func (s *Service) CheckCaseOverdue(ctx context.Context) ([]CaseOverdueItem, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	items, err := s.CaseOverdue(ctx, now)
	if err != nil {
		return nil, err
	}
	var fresh []CaseOverdueItem
	for _, it := range items {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM accountability_overdue_notices
			WHERE case_id = $1 AND deadline = $2 AND due_at = $3`,
			it.Case.ID, it.Deadline.Name, medguard.Millis(it.Deadline.DueAt)).Scan(&n); err != nil {
			return nil, medguard.Wrap("incidents.CheckCaseOverdue", err)
		}
		if n > 0 {
			continue
		}
		call := System
		it := it
		if _, err := s.gate.Record(ctx, gate.Event{Call: &call, Action: "accountability.deadline_overdue", TargetType: "accountability_case",
			TargetID: it.Case.ID, Allowed: true, Rule: "allow.system.deadline:" + it.Deadline.Name},
			func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO accountability_overdue_notices (case_id, deadline, due_at, notified_at)
					VALUES ($1, $2, $3, $4) ON CONFLICT (case_id, deadline, due_at) DO NOTHING`,
					it.Case.ID, it.Deadline.Name, medguard.Millis(it.Deadline.DueAt), medguard.Millis(now))
				return err
			}); err != nil {
			return nil, err
		}
		fresh = append(fresh, it)
	}
	s.mu.Lock()
	hooks := slices.Clone(s.onCaseOverdue)
	s.mu.Unlock()
	for _, it := range fresh {
		for _, h := range hooks {
			h(it.Case, it.Deadline)
		}
	}
	return fresh, nil
}
