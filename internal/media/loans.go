package media

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The states of a loan: signed by the lender and waiting for the
// borrower's signature (the device is not handed over yet); signed by
// both and out; returned; cancelled before the borrower signed.
const (
	AwaitingBorrower = "awaiting_borrower"
	Out              = "out"
	Returned         = "returned"
	Cancelled        = "cancelled"
)

// LoanStatuses lists the states of a loan.
var LoanStatuses = []string{AwaitingBorrower, Out, Returned, Cancelled}

// Loan is a device lent: the lender's signature (who recorded it, when),
// the borrower and theirs, the purpose, the due date, the return.
type Loan struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id"`
	Label    string    `json:"label"`
	Lender   string    `json:"lender"`
	LentAt   time.Time `json:"lent_at"`
	Borrower string    `json:"borrower"`
	// SignedAt is the borrower's signature; the device is handed over then.
	SignedAt *time.Time `json:"signed_at"`
	Purpose  string     `json:"purpose"`
	DueAt    time.Time  `json:"due_at"`
	Status   string     `json:"status"`
	// Overdue is true for a loan out past its due date.
	Overdue     bool       `json:"overdue"`
	ReturnedAt  *time.Time `json:"returned_at"`
	ReturnedTo  string     `json:"returned_to,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	CancelledBy string     `json:"cancelled_by,omitempty"`

	lenderID, borrowerID string
}

// NewLoan lends a device: to whom (a username; they hold media.borrow),
// what for, until when (at most Config.MaxLoan ahead).
type NewLoan struct {
	Borrower string    `json:"borrower"`
	Purpose  string    `json:"purpose"`
	DueAt    time.Time `json:"due_at"`
}

var errNoLoan = &medguard.Error{Kind: medguard.NotFound, Message: "no such loan"}

const loanColumns = `l.id, l.device_id, d.label, l.lender_id, l.lender, l.lent_at, l.borrower_id, l.borrower, l.purpose, l.due_at,
	l.signed_at, l.cancelled_at, l.cancelled_by, l.returned_at, l.returned_to`

// loansWhere reads the loans matching where (on media_loans l joined to
// media_devices d), newest first, as of now.
func (s *Service) loansWhere(ctx context.Context, where string, args []any, now time.Time) ([]Loan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+loanColumns+` FROM media_loans l JOIN media_devices d ON d.id = l.device_id
		WHERE `+where+` ORDER BY l.lent_at DESC, l.id DESC LIMIT 2000`, args...)
	if err != nil {
		return nil, medguard.Wrap("media.loans", err)
	}
	defer rows.Close()
	out := []Loan{}
	for rows.Next() {
		var l Loan
		var purpose []byte
		var lent, due int64
		var signed, cancelled, returned sql.NullInt64
		var cancelledBy, returnedTo sql.NullString
		if err := rows.Scan(&l.ID, &l.DeviceID, &l.Label, &l.lenderID, &l.Lender, &lent, &l.borrowerID, &l.Borrower, &purpose, &due,
			&signed, &cancelled, &cancelledBy, &returned, &returnedTo); err != nil {
			return nil, medguard.Wrap("media.loans", err)
		}
		if l.Purpose, err = s.open(ctx, "media_loans", l.ID, "purpose", purpose); err != nil {
			return nil, err
		}
		l.LentAt, l.DueAt, l.Status = medguard.FromMillis(lent), medguard.FromMillis(due), AwaitingBorrower
		at := func(v sql.NullInt64) *time.Time {
			if !v.Valid {
				return nil
			}
			t := medguard.FromMillis(v.Int64)
			return &t
		}
		l.SignedAt, l.CancelledAt, l.ReturnedAt = at(signed), at(cancelled), at(returned)
		l.CancelledBy, l.ReturnedTo = cancelledBy.String, returnedTo.String
		switch {
		case l.ReturnedAt != nil:
			l.Status = Returned
		case l.CancelledAt != nil:
			l.Status = Cancelled
		case l.SignedAt != nil:
			l.Status = Out
			l.Overdue = now.After(l.DueAt)
		}
		out = append(out, l)
	}
	return out, medguard.Wrap("media.loans", rows.Err())
}

// loan reads a loan by id; nil when there is none.
func (s *Service) loan(ctx context.Context, id string) (*Loan, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	ls, err := s.loansWhere(ctx, `l.id = $1`, []any{id}, s.clock.Now())
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	return &ls[0], nil
}

// loadLoan reads a loan for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) loadLoan(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Loan, error) {
	l, err := s.loan(ctx, id)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "media_loan", ID: id}}, errNoLoan)
	}
	return l, nil
}

// Lend records a loan and signs it as its lender (media.manage): never to
// oneself (deny.same_signatory), only an encrypted device in the store,
// only to a member of staff who may borrow (media.borrow). The loan then
// waits for the borrower's own signature (Sign) before the device is
// handed over.
func (s *Service) Lend(ctx context.Context, call *medguard.Call, deviceID string, in NewLoan) (*Loan, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.Purpose, err = medguard.Text("purpose", in.Purpose, MaxNote, true); err != nil {
		return nil, err
	}
	in.DueAt = in.DueAt.UTC().Truncate(time.Millisecond)
	switch {
	case in.DueAt.IsZero():
		return nil, medguard.InvalidField("due_at", "due_at is required")
	case !in.DueAt.After(now):
		return nil, medguard.InvalidField("due_at", "due_at must be in the future")
	case in.DueAt.Sub(now) > s.cfg.MaxLoan:
		return nil, medguard.InvalidField("due_at", "a device is lent for at most %d days", int(s.cfg.MaxLoan/(24*time.Hour)))
	}
	u, err := s.person(ctx, "borrower", in.Borrower)
	if err != nil {
		return nil, err
	}
	if !policy.PermissionsOf(u.Roles)[policy.MediaBorrow] {
		return nil, medguard.InvalidField("borrower", "the borrower's roles do not let them borrow removable media")
	}
	d, err := s.load(ctx, call, policy.MediaManage, "media.lend", deviceID)
	if err != nil {
		return nil, err
	}
	id := medguard.NewID(now)
	purpose, err := s.seal(ctx, "media_loans", id, "purpose", in.Purpose)
	if err != nil {
		return nil, err
	}
	l := &Loan{ID: id, DeviceID: d.ID, Label: d.Label, Lender: call.Actor.Name, LentAt: now, Borrower: u.Username, Purpose: in.Purpose,
		DueAt: in.DueAt, Status: AwaitingBorrower, lenderID: call.Actor.ID, borrowerID: u.ID}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaManage, AuditAction: "media.lend",
		Resource: policy.Resource{Type: "media", ID: d.ID, SubjectUserID: u.ID}}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case !d.Encrypted:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "unencrypted", Message: "an unencrypted device is never lent"}
		case d.Status != Available:
			return nil, deviceNot(d.Status)
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE media_devices SET status = $1 WHERE id = $2 AND status = $3`, Lent, d.ID, Available)
			if err := storage.Affected(res, err, deviceNot(Lent)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO media_loans (id, device_id, lender_id, lender, lent_at, borrower_id, borrower, purpose, due_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, d.ID, call.Actor.ID, call.Actor.Name, medguard.Millis(now), u.ID, u.Username,
				purpose, medguard.Millis(in.DueAt))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// deviceNot is the conflict of an operation on a device in the wrong
// state.
func deviceNot(status string) error {
	msg := map[string]string{
		Lent:            "the device is lent",
		AwaitingErasure: "the device was returned and must be erased first",
		Disposed:        "the device was disposed of",
		Available:       "the device is in the store",
	}[status]
	return &medguard.Error{Kind: medguard.Conflict, Code: "device_" + status, Message: msg}
}

// Sign is the borrower's signature of a loan (media.borrow): the named
// borrower's alone (deny.not_borrower), never the lender's
// (deny.same_signatory). The device is handed over then; the due date
// runs.
func (s *Service) Sign(ctx context.Context, call *medguard.Call, loanID string) (*Loan, error) {
	l, err := s.loadLoan(ctx, call, policy.MediaBorrow, "media.loan_sign", loanID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaBorrow, AuditAction: "media.loan_sign",
		Resource: policy.Resource{Type: "media_loan", ID: l.ID, RequestedBy: l.lenderID, SubjectUserID: l.borrowerID}},
		func(policy.Decision) (audit.Mutation, error) {
			if l.Status != AwaitingBorrower {
				return nil, loanNot(l.Status)
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE media_loans SET signed_at = $1 WHERE id = $2 AND signed_at IS NULL
					AND cancelled_at IS NULL AND borrower_id = $3`, medguard.Millis(now), l.ID, call.Actor.ID)
				return storage.Affected(res, err, loanNot(Out))
			}, nil
		})
	if err != nil {
		return nil, err
	}
	l.SignedAt, l.Status, l.Overdue = &now, Out, now.After(l.DueAt)
	return l, nil
}

// loanNot is the conflict of an operation on a loan in the wrong state.
func loanNot(status string) error {
	msg := map[string]string{
		AwaitingBorrower: "the loan waits for the borrower's signature",
		Out:              "the borrower signed the loan already",
		Returned:         "the device was returned",
		Cancelled:        "the loan was cancelled",
	}[status]
	return &medguard.Error{Kind: medguard.Conflict, Code: "loan_" + status, Message: msg}
}

// Cancel withdraws a loan the borrower has not signed (media.manage): the
// device was never handed over and is back in the store.
func (s *Service) Cancel(ctx context.Context, call *medguard.Call, loanID string) (*Loan, error) {
	l, err := s.loadLoan(ctx, call, policy.MediaManage, "media.loan_cancel", loanID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaManage, AuditAction: "media.loan_cancel",
		Resource: policy.Resource{Type: "media_loan", ID: l.ID}}, func(policy.Decision) (audit.Mutation, error) {
		if l.Status != AwaitingBorrower {
			return nil, loanNot(l.Status)
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE media_loans SET cancelled_at = $1, cancelled_by = $2 WHERE id = $3
				AND signed_at IS NULL AND cancelled_at IS NULL`, medguard.Millis(now), call.Actor.Name, l.ID)
			if err := storage.Affected(res, err, loanNot(Out)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE media_devices SET status = $1 WHERE id = $2 AND status = $3`, Available, l.DeviceID, Lent)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	l.CancelledAt, l.CancelledBy, l.Status = &now, call.Actor.Name, Cancelled
	return l, nil
}

// Return takes a device back (media.manage): a custodian other than its
// borrower (deny.same_signatory) receives it, and it waits for its erasure
// before it is lent again. An overdue alert about it is resolved
// (OnReturned).
func (s *Service) Return(ctx context.Context, call *medguard.Call, loanID string) (*Loan, error) {
	l, err := s.loadLoan(ctx, call, policy.MediaManage, "media.return", loanID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaManage, AuditAction: "media.return",
		Resource: policy.Resource{Type: "media_loan", ID: l.ID, SubjectUserID: l.borrowerID}}, func(policy.Decision) (audit.Mutation, error) {
		if l.Status != Out {
			return nil, loanNot(l.Status)
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE media_loans SET returned_at = $1, returned_to = $2 WHERE id = $3
				AND signed_at IS NOT NULL AND returned_at IS NULL`, medguard.Millis(now), call.Actor.Name, l.ID)
			if err := storage.Affected(res, err, loanNot(Returned)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE media_devices SET status = $1 WHERE id = $2 AND status = $3`, AwaitingErasure, l.DeviceID, Lent)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	l.ReturnedAt, l.ReturnedTo, l.Status, l.Overdue = &now, call.Actor.Name, Returned, false
	s.onReturned.Tell(ctx, *l)
	return l, nil
}

// LoanQuery selects loans: Mine lists the caller's own (media.borrow),
// otherwise every loan (media.read); Status keeps one state, or the
// overdue ones (OverdueFilter).
type LoanQuery struct {
	Mine   bool
	Status string
}

// Loans lists loans, newest first.
func (s *Service) Loans(ctx context.Context, call *medguard.Call, q LoanQuery) ([]Loan, error) {
	if q.Status != "" && q.Status != OverdueFilter && !slices.Contains(LoanStatuses, q.Status) {
		return nil, medguard.InvalidField("status", "status must be one of %s, %s", strings.Join(LoanStatuses, ", "), OverdueFilter)
	}
	action, auditAction, where, args := policy.MediaRead, "media.loans", `1 = 1`, []any{}
	if q.Mine {
		action, auditAction, where, args = policy.MediaBorrow, "media.loans_mine", `l.borrower_id = $1`, []any{call.Actor.ID}
	}
	out := []Loan{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
		Resource: policy.Resource{Type: "media_loan"}}, func(policy.Decision) (audit.Mutation, error) {
		ls, err := s.loansWhere(ctx, where, args, s.clock.Now())
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if q.Status == "" || l.Status == q.Status || q.Status == OverdueFilter && l.Overdue {
				out = append(out, l)
			}
		}
		return nil, nil
	})
	return out, err
}

// OverdueRule is the detection rule of the alerts raised for a device not
// returned by its due date: the alert's key is the device's label.
const OverdueRule = "media_loan_overdue"

// OverdueLoan is a loan out past its due date, announced once.
type OverdueLoan struct {
	LoanID, DeviceID, Label, Borrower string
	DueAt                             time.Time
}

// OnOverdue adds a hook told once of every loan that becomes overdue (the
// detection engine raises an alert).
func (s *Service) OnOverdue(hook func(context.Context, OverdueLoan)) { s.onOverdue.Add(hook) }

// OnReturned adds a hook told of every device returned (the detection
// engine resolves its overdue alert).
func (s *Service) OnReturned(hook func(context.Context, Loan)) { s.onReturned.Add(hook) }

// system is medguard itself, announcing overdue loans.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// CheckOverdue announces the loans out past their due date that were not
// announced before: each is logged (media.loan_overdue, as the system) and
// passed to the OnOverdue hooks, once — also when several servers check at
// the same time (the loan is claimed in the database).
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueLoan, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT l.id, l.device_id, d.label, l.borrower, l.due_at FROM media_loans l
		JOIN media_devices d ON d.id = l.device_id
		WHERE l.signed_at IS NOT NULL AND l.returned_at IS NULL AND l.cancelled_at IS NULL AND l.due_at < $1
		AND l.overdue_notified_at IS NULL ORDER BY l.due_at, l.id`, medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("media.CheckOverdue", err)
	}
	var due []OverdueLoan
	for rows.Next() {
		var o OverdueLoan
		var at int64
		if err := rows.Scan(&o.LoanID, &o.DeviceID, &o.Label, &o.Borrower, &at); err != nil {
			rows.Close()
			return nil, medguard.Wrap("media.CheckOverdue", err)
		}
		o.DueAt = medguard.FromMillis(at)
		due = append(due, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("media.CheckOverdue", err)
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(o OverdueLoan) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "media.loan_overdue", TargetType: "media_loan", TargetID: o.LoanID,
			Allowed: true, Rule: "allow.system.deadline:media_loan_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueLoan) error {
		res, err := tx.ExecContext(ctx, `UPDATE media_loans SET overdue_notified_at = $1 WHERE id = $2 AND overdue_notified_at IS NULL`,
			medguard.Millis(now), o.LoanID)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	s.onOverdue.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for overdue loans at once and then every interval until ctx
// ends, passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckOverdue(ctx)
		return err
	}, onError)
}
