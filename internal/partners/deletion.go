package partners

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// DeletionConfirmation is the partner's confirmation (删除确认) that it
// deleted every data set it received under an agreement: who signed it for
// the partner, when, the signed statement or the SHA-256 of the signed
// document, and the member of staff who received it.
type DeletionConfirmation struct {
	AgreementID    string    `json:"agreement_id"`
	Representative string    `json:"representative"`
	DeletedAt      time.Time `json:"deleted_at"`
	Statement      string    `json:"statement,omitempty"`
	DocumentSHA256 string    `json:"document_sha256,omitempty"`
	ReceivedBy     string    `json:"received_by"`
	RecordedAt     time.Time `json:"recorded_at"`
}

// NewDeletionConfirmation records a deletion confirmation: the partner's
// representative (full name), when they signed (default now), and the
// signed statement's text or the SHA-256 of the signed document (one at
// least).
type NewDeletionConfirmation struct {
	Representative string    `json:"representative"`
	DeletedAt      time.Time `json:"deleted_at,omitzero"`
	Statement      string    `json:"statement,omitempty"`
	DocumentSHA256 string    `json:"document_sha256,omitempty"`
}

// MaxStatement is the longest signed statement, in characters.
const MaxStatement = 2000

// ConfirmDeletion records the partner's deletion confirmation of an ended
// agreement (partner.manage); the caller is the hospital's receiver. Once
// recorded, an overdue alert about it is resolved (OnConfirmed).
func (s *Service) ConfirmDeletion(ctx context.Context, call *medguard.Call, agreementID string, in NewDeletionConfirmation) (*DeletionConfirmation, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.Representative, err = medguard.Line("representative", in.Representative, 64, true); err != nil {
		return nil, err
	}
	if in.Statement, err = medguard.Text("statement", in.Statement, MaxStatement, false); err != nil {
		return nil, err
	}
	in.DocumentSHA256 = strings.ToLower(strings.TrimSpace(in.DocumentSHA256))
	switch {
	case in.DocumentSHA256 != "" && !sha256Pattern.MatchString(in.DocumentSHA256):
		return nil, medguard.InvalidField("document_sha256", "document_sha256 must be 64 hexadecimal digits")
	case in.Statement == "" && in.DocumentSHA256 == "":
		return nil, medguard.InvalidField("statement", "the signed statement or the signed document's SHA-256 is required")
	}
	if in.DeletedAt.IsZero() {
		in.DeletedAt = now
	}
	in.DeletedAt = in.DeletedAt.UTC().Truncate(time.Millisecond)
	if in.DeletedAt.After(now.Add(time.Minute)) {
		return nil, medguard.InvalidField("deleted_at", "deleted_at may not be in the future")
	}
	a, err := s.loadAgreement(ctx, call, policy.PartnerManage, "partner.deletion_confirm", agreementID)
	if err != nil {
		return nil, err
	}
	rep, err := s.seal(ctx, "partner_deletions", a.ID, "representative", in.Representative)
	if err != nil {
		return nil, err
	}
	var statement []byte
	if in.Statement != "" {
		if statement, err = s.seal(ctx, "partner_deletions", a.ID, "statement", in.Statement); err != nil {
			return nil, err
		}
	}
	c := &DeletionConfirmation{AgreementID: a.ID, Representative: in.Representative, DeletedAt: in.DeletedAt, Statement: in.Statement,
		DocumentSHA256: in.DocumentSHA256, ReceivedBy: call.Actor.Name, RecordedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerManage, AuditAction: "partner.deletion_confirm",
		Resource: policy.Resource{Type: "agreement", ID: a.ID}}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case a.Confirmation != nil:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the deletion was confirmed already"}
		case a.Deletion == DeletionNotDue:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the agreement is still in force: terminate it first"}
		case in.DeletedAt.Before(a.StartsAt):
			return nil, medguard.InvalidField("deleted_at", "deleted_at is before the agreement started")
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO partner_deletions (agreement_id, representative, statement, document_sha256,
				deleted_at, received_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, rep, statement, in.DocumentSHA256,
				medguard.Millis(in.DeletedAt), call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Message: "the deletion was confirmed already"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.onConfirmed.Tell(ctx, *c)
	return c, nil
}

// DeletionOverdueRule is the detection rule of the alerts raised for a
// deletion confirmation not recorded DeletionGrace after its agreement
// ended: the alert's key is the agreement's id.
const DeletionOverdueRule = "partner_deletion_overdue"

// OverdueDeletion is an ended agreement whose deletion confirmation is
// overdue, announced once.
type OverdueDeletion struct {
	AgreementID string
	PartnerID   string
	OrgCode     string
	EndsAt      time.Time
	DueAt       time.Time
}

// OnOverdue adds a hook told once of every deletion confirmation that
// becomes overdue (the detection engine raises an alert).
func (s *Service) OnOverdue(hook func(context.Context, OverdueDeletion)) { s.onOverdue.Add(hook) }

// OnConfirmed adds a hook told of every deletion confirmation recorded
// (the detection engine resolves the overdue alert).
func (s *Service) OnConfirmed(hook func(context.Context, DeletionConfirmation)) {
	s.onConfirmed.Add(hook)
}

// system is medguard itself, announcing overdue confirmations.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

// CheckOverdue announces the deletion confirmations that are overdue now
// and were not announced before: each is logged (partner.deletion_overdue,
// as the system) and passed to the OnOverdue hooks, once — also when
// several servers check at the same time (the notice is claimed in the
// database).
func (s *Service) CheckOverdue(ctx context.Context) ([]OverdueDeletion, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.partner_id, p.org_code, a.ends_at FROM partner_agreements a
		JOIN partners p ON p.id = a.partner_id
		LEFT JOIN partner_deletions d ON d.agreement_id = a.id
		WHERE d.agreement_id IS NULL AND a.ends_at <= $1 AND a.deletion_notified_at IS NULL ORDER BY a.ends_at, a.id`,
		medguard.Millis(now.Add(-s.cfg.DeletionGrace)))
	if err != nil {
		return nil, medguard.Wrap("partners.CheckOverdue", err)
	}
	var due []OverdueDeletion
	for rows.Next() {
		var o OverdueDeletion
		var ends int64
		if err := rows.Scan(&o.AgreementID, &o.PartnerID, &o.OrgCode, &ends); err != nil {
			rows.Close()
			return nil, medguard.Wrap("partners.CheckOverdue", err)
		}
		o.EndsAt = medguard.FromMillis(ends)
		o.DueAt = o.EndsAt.Add(s.cfg.DeletionGrace)
		due = append(due, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("partners.CheckOverdue", err)
	}
	fresh, err := gate.Announce(ctx, s.gate, due, func(o OverdueDeletion) gate.Event {
		call := system
		return gate.Event{Call: &call, Action: "partner.deletion_overdue", TargetType: "agreement",
			TargetID: o.AgreementID, Allowed: true, Rule: "allow.system.deadline:partner_deletion_due"}
	}, func(ctx context.Context, tx *sql.Tx, o OverdueDeletion) error {
		res, err := tx.ExecContext(ctx, `UPDATE partner_agreements SET deletion_notified_at = $1 WHERE id = $2
			AND deletion_notified_at IS NULL`, medguard.Millis(now), o.AgreementID)
		return storage.Affected(res, err, gate.ErrAnnounced)
	})
	s.onOverdue.Tell(ctx, fresh...)
	return fresh, err
}

// Run checks for overdue deletion confirmations at once and then every
// interval until ctx ends, passing failures to onError (may be nil).
func (s *Service) Run(ctx context.Context, every time.Duration, onError func(error)) {
	medguard.Every(ctx, every, func(ctx context.Context) error {
		_, err := s.CheckOverdue(ctx)
		return err
	}, onError)
}
