package rectify

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Origin is a finding that opens an item without a person: a failing
// compliance check (Kind "check", Ref the check's id), a failing finding of
// a quarterly check ("quarterly"), or an audit's finding passed on by
// another program ("internal_audit", "third_party").
type Origin struct {
	Kind    string
	Ref     string
	Title   string // in Chinese
	TitleEN string
	Clauses []string
	// Department is the department answerable, by id or code ("" for the
	// hospital as a whole).
	Department string
	// DueAt is the deadline; zero gives the severity's default
	// (DefaultDue: critical 7 days, high 30, medium 60, low 90).
	DueAt time.Time
	// Severity is one of Severities ("" is medium).
	Severity string
	// Owner, if set, is the owner's username; otherwise the head of the
	// department (the first active department head by username), or
	// nobody until the security office assigns one.
	Owner string
}

// system is medguard itself, opening items for findings and announcing
// deadlines.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// OpenFrom opens an item for a finding, as medguard itself (logged as
// rectification.open by the system). It is idempotent: while an item of
// the same Kind and Ref is not verified, that item's id is returned with
// created false — also when two servers open it at the same time.
func (s *Service) OpenFrom(ctx context.Context, o Origin) (id string, created bool, err error) {
	if !slices.Contains(Kinds, o.Kind) {
		return "", false, oneOf("kind", o.Kind, Kinds)
	}
	if o.Ref, err = medguard.Line("ref", o.Ref, 100, true); err != nil {
		return "", false, err
	}
	if id, err := s.openByRef(ctx, o.Kind, o.Ref); err != nil || id != "" {
		return id, false, err
	}
	if o.Title, err = medguard.Line("title", o.Title, 200, true); err != nil {
		return "", false, err
	}
	if o.TitleEN, err = medguard.Line("title_en", o.TitleEN, 200, false); err != nil {
		return "", false, err
	}
	cl, err := clauses("clauses", o.Clauses)
	if err != nil {
		return "", false, err
	}
	dept, err := s.department(ctx, "department", o.Department)
	if err != nil {
		return "", false, err
	}
	if o.Severity == "" {
		o.Severity = Medium
	}
	if err := oneOf("severity", o.Severity, Severities); err != nil {
		return "", false, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	due, err := s.due("due_at", o.DueAt, o.Severity, now)
	if err != nil {
		return "", false, err
	}
	owner, ownerID := "", ""
	if o.Owner != "" {
		u, err := s.staff(ctx, "owner", o.Owner)
		if err != nil {
			return "", false, err
		}
		owner, ownerID = u.Username, u.ID
	} else if dept != "" {
		if owner, ownerID, err = s.headOf(ctx, dept); err != nil {
			return "", false, err
		}
	}
	it := &stored{Item: Item{ID: medguard.NewID(now), Kind: o.Kind, Ref: o.Ref, Title: o.Title, TitleEN: o.TitleEN, Clauses: cl,
		Department: dept, Owner: owner, Severity: o.Severity, Status: Open, DueAt: due, CreatedBy: system.Actor.Name,
		CreatedAt: now, UpdatedAt: now}, ownerID: ownerID}
	call := system
	_, err = s.gate.Record(ctx, gate.Event{Call: &call, Action: "rectification.open", TargetType: "rectification", TargetID: it.ID,
		Allowed: true, Rule: "allow.system.finding:" + o.Kind}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		err := s.insert(ctx, tx, it, nil)
		if storage.IsConflict(err) {
			return errOpenAlready
		}
		return err
	})
	if errors.Is(err, errOpenAlready) || medguard.IsKind(err, medguard.Conflict) {
		id, err := s.openByRef(ctx, o.Kind, o.Ref)
		return id, false, err
	}
	if err != nil {
		return "", false, medguard.Wrap("rectify.OpenFrom", err)
	}
	s.announceNow(ctx, it.DueAt)
	return it.ID, true, nil
}

// errOpenAlready is an insert that found the finding's item opened
// meanwhile (by another server).
var errOpenAlready = &medguard.Error{Kind: medguard.Conflict, Code: "open_already", Message: "an item of this finding is open already"}

// openByRef returns the item of kind and ref that is not verified, if any.
func (s *Service) openByRef(ctx context.Context, kind, ref string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM rectification_items WHERE open_key = $1`, kind+"|"+ref).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, medguard.Wrap("rectify.openByRef", err)
}

// headOf returns the first active head of a department, by username.
func (s *Service) headOf(ctx context.Context, dept string) (string, string, error) {
	staff, err := s.identity.Roster(ctx)
	if err != nil {
		return "", "", err
	}
	for _, m := range staff {
		if m.Active && m.Department == dept && slices.Contains(m.Roles, policy.DeptHead) {
			return m.Username, m.ID, nil
		}
	}
	return "", "", nil
}

// trimAll trims every string of xs and drops the empty ones.
func trimAll(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
