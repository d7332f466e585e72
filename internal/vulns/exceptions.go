package vulns

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Exceptions: a vulnerability that will not be fixed — its risk accepted
// (风险接受), or the finding a false positive (误报) — is closed by a
// four-eyes request (kind vulns.exception) with the reason: asked by a
// holder of vuln.manage, decided by a security officer who did not ask.
// One person alone never makes a vulnerability disappear.

// ExceptionKind is the kind of four-eyes request that closes a
// vulnerability without a fix.
const ExceptionKind = "vulns.exception"

// Exceptions lists the outcomes of an exception: the states it closes a
// vulnerability in.
var Exceptions = []string{StatusAccepted, StatusFalsePositive}

// ExceptionPayload is a request to close a vulnerability without a fix.
type ExceptionPayload struct {
	VulnID  string `json:"vuln_id"`
	Outcome string `json:"outcome"`
}

// NewException asks to close a vulnerability without a fix: outcome
// accepted (the risk is accepted) or false_positive, and why.
type NewException struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// ExceptionRequest is the four-eyes request a NewException for the
// vulnerability files (kind vulns.exception).
func ExceptionRequest(vulnID string, in NewException) (approvals.NewRequest, error) {
	raw, err := json.Marshal(ExceptionPayload{VulnID: vulnID, Outcome: in.Outcome})
	return approvals.NewRequest{Kind: ExceptionKind, Payload: raw, Reason: in.Reason}, err
}

func (s *Service) checkException(ctx context.Context, raw json.RawMessage) (*ExceptionPayload, *Vuln, error) {
	var p ExceptionPayload
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, nil, medguard.InvalidField("payload", "the payload is not an exception")
	}
	if p.Outcome != StatusAccepted && p.Outcome != StatusFalsePositive {
		return nil, nil, medguard.InvalidField("outcome", "outcome must be one of %s", strings.Join(Exceptions, ", "))
	}
	v, err := s.get(ctx, p.VulnID)
	if err != nil {
		return nil, nil, err
	}
	if v == nil {
		return nil, nil, &medguard.Error{Kind: medguard.NotFound, Field: "payload.vuln_id", Message: "no such vulnerability"}
	}
	if !Open(v.Status) {
		return nil, nil, &medguard.Error{Kind: medguard.Conflict, Message: "the vulnerability is " + v.Status + ", not open"}
	}
	return &p, v, nil
}

// VulnExceptionKind is the four-eyes request that closes a vulnerability
// without a fix. Its run closes it, ends the suspensions it holds, and
// then resolves its overdue alert.
func (s *Service) VulnExceptionKind() approvals.Kind {
	return approvals.Kind{
		Name: ExceptionKind, RequestPermission: policy.VulnManage, RunAction: "vuln.exception",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, reason, _ string) (*approvals.Plan, error) {
			p, v, err := s.checkException(ctx, raw)
			if err != nil {
				return nil, err
			}
			if strings.TrimSpace(reason) == "" {
				return nil, medguard.InvalidField("reason", "say why the vulnerability will not be fixed")
			}
			return &approvals.Plan{Payload: p, Approvers: policy.Approvers{Security: true}, TargetType: "vuln", TargetID: v.ID}, nil
		},
		Run: func(ctx context.Context, a *approvals.Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			p, v, err := s.checkException(ctx, a.Payload)
			if err != nil {
				return nil, "", err
			}
			now := s.clock.Now().Truncate(time.Millisecond)
			return func(ctx context.Context, tx *sql.Tx, index uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE vulns SET status = $1, closed_at = $2, updated_at = $2, updated_by = $3
					WHERE id = $4 AND status = $5`, p.Outcome, medguard.Millis(now), approver.Actor.Name, v.ID, v.Status)
				if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the vulnerability changed meanwhile"}); err != nil {
					return err
				}
				if err := addEvent(ctx, tx, index, medguard.NewID(now), v.ID, now, approver.Actor.Name, EventException, v.Status, p.Outcome,
					a.ID, nil); err != nil {
					return err
				}
				_, err = endSuspensions(ctx, tx, v.ID, now, approver.Actor.Name, p.Outcome)
				return err
			}, "", nil
		},
		After: func(ctx context.Context, a *approvals.Approval) {
			var p ExceptionPayload
			if json.Unmarshal(a.Payload, &p) == nil {
				s.resolved(ctx, p.VulnID, nil)
			}
		},
	}
}
