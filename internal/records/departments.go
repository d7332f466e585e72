package records

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
)

// RestrictedByDefault reports whether a new department is restricted
// unless its creator says otherwise: psychiatry (精神科, 精神卫生, code
// PSYC/PSY), whose records the Mental Health Law protects.
func RestrictedByDefault(code, name string) bool {
	c := strings.ToUpper(code)
	return c == "PSYC" || c == "PSY" || c == "PSYCH" || strings.Contains(name, "精神") ||
		strings.Contains(strings.ToLower(name), "psychiatr")
}

// SetDepartmentRestricted marks a department's records restricted (or, on
// false, no longer): restricted records open only to the department and
// to grants its head approves. Marking is an administrator's (permission
// department.manage); lifting it is a four-eyes request (see package
// approvals), whose approval runs DepartmentRestriction.
func (s *Service) SetDepartmentRestricted(ctx context.Context, call *medguard.Call, code string) error {
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DepartmentManage, AuditAction: "department.restrict",
		Resource: policy.Resource{Type: "department", ID: code}},
		func(policy.Decision) (audit.Mutation, error) {
			if _, err := s.department(ctx, "department", code); err != nil {
				return nil, err
			}
			return s.DepartmentRestriction(code, true, call.Actor.ID), nil
		})
	return err
}

// DepartmentRestriction returns the mutation that marks the department's
// records restricted or lifts the mark, by actor.
func (s *Service) DepartmentRestriction(code string, restricted bool, actor string) audit.Mutation {
	now := s.clock.Now()
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if !restricted {
			_, err := tx.ExecContext(ctx, `DELETE FROM restricted_departments WHERE department = $1`, code)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO restricted_departments (department, since, set_by) VALUES ($1, $2, $3)
			ON CONFLICT (department) DO NOTHING`, code, medguard.Millis(now), actor)
		return err
	}
}

// RestrictedDepartments returns the codes of the restricted departments.
// It reveals no patient data.
func (s *Service) RestrictedDepartments(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT department FROM restricted_departments`)
	if err != nil {
		return nil, medguard.Wrap("records.RestrictedDepartments", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, medguard.Wrap("records.RestrictedDepartments", err)
		}
		out[d] = true
	}
	return out, medguard.Wrap("records.RestrictedDepartments", rows.Err())
}

// visibleDepartments keeps, of the departments holding a patient's data,
// those the caller may know of: a restricted department (精神科) is shown
// only to its own members — that a patient is treated there is itself
// protected.
func (s *Service) visibleDepartments(ctx context.Context, call *medguard.Call, depts []string) ([]string, error) {
	restricted, err := s.RestrictedDepartments(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, d := range depts {
		if !restricted[d] || d == call.Actor.Department {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, nil
}
