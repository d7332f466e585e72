package identity

import (
	"context"
	"database/sql"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// An administrator's other work on an account: moving it to another
// department and lifting a sign-in lockout.
//
// A department is where a clinical account reaches patient data, so moving
// an account that reaches patient data or privilege is a four-eyes request
// (package approvals, kind user.department_change), whose run is
// DepartmentChange; accounts that reach neither move at once
// (ChangeDepartment).

// ChangeDepartment moves a user who reaches neither patient data nor
// privilege to the department with the given code (by an administrator);
// accounts that do are refused with approval_required, for their move is
// a four-eyes request. Nobody moves their own account (deny.own_account).
func (s *Service) ChangeDepartment(ctx context.Context, call *medguard.Call, userID, code string) error {
	return s.credentialChange(ctx, call, userID, "user.department_change", func(u *User) (audit.Mutation, error) {
		d, err := s.departmentFor(ctx, u, code)
		if err != nil {
			return nil, err
		}
		return s.DepartmentChange(userID, call.Actor.ID, d.ID), nil
	})
}

// CheckDepartmentChange checks that the user of userID is active and may
// be moved to the department with the given code, and returns the user and
// the department (for the approvals capability, which files the request).
func (s *Service) CheckDepartmentChange(ctx context.Context, userID, code string) (*User, *Department, error) {
	u, err := s.lookupUser(ctx, userID)
	if err != nil || u.Status != Active {
		return nil, nil, medguard.InvalidField("payload.user_id", "no active user has this id")
	}
	d, err := s.departmentFor(ctx, u, code)
	if err != nil {
		return nil, nil, err
	}
	return u, d, nil
}

// departmentFor checks a move of u to the department of code.
func (s *Service) departmentFor(ctx context.Context, u *User, code string) (*Department, error) {
	if u.Status != Active {
		return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the user is deactivated"}
	}
	d, err := s.DepartmentByCode(ctx, code)
	if err != nil {
		return nil, medguard.InvalidField("department", "no department has this code")
	}
	if d.Code == u.Department {
		return nil, &medguard.Error{Kind: medguard.Conflict, Field: "department", Message: "the user is in this department already"}
	}
	return d, nil
}

// DepartmentChange returns the mutation that moves the user of userID to
// the department of departmentID, asked by requester (committed with the
// approval's decision, or with the direct change's audit entry). The move
// takes effect at the user's next request: each request reads the user's
// department afresh.
func (s *Service) DepartmentChange(userID, requester, departmentID string) audit.Mutation {
	now := s.clock.Now()
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		if err := activeUser(ctx, tx, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET department_id = $1 WHERE id = $2`, departmentID, userID)
		if err := storage.Affected(res, err, errNotFound); err != nil {
			return err
		}
		return recordChange(ctx, tx, userID, requester, ChangeDepartmentMoved, now)
	}
}

// Unlock lifts the sign-in lockout of a user's username (after five failed
// sign-ins) before it ends by itself, and forgets the failures counted
// towards the next one (by an administrator, user.manage). It refuses with
// a Conflict when the username is not locked out.
func (s *Service) Unlock(ctx context.Context, call *medguard.Call, userID string) error {
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.UserManage, AuditAction: "user.unlock",
		Resource: userResource(userID)},
		func(policy.Decision) (audit.Mutation, error) {
			u, err := s.lookupUser(ctx, userID)
			if err != nil {
				return nil, err
			}
			if u.LockedUntil == nil {
				return nil, &medguard.Error{Kind: medguard.Conflict, Code: "not_locked_out", Message: "the user is not locked out"}
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `DELETE FROM signin_lockouts WHERE username = $1 AND locked_until > $2`,
					u.Username, medguard.Millis(now))
				if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Code: "not_locked_out",
					Message: "the user is not locked out"}); err != nil {
					return err
				}
				_, err = tx.ExecContext(ctx, `DELETE FROM signin_failures WHERE username = $1`, u.Username)
				return err
			}, nil
		})
	return err
}
