package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// RetentionPayload is the payload of a retention.shorten request.
type RetentionPayload struct {
	RecordType string `json:"record_type"`
	Years      int    `json:"years"`
}

// recordsDestroy destroys records whose retention period has ended: asked
// by a records clerk (record.destroy), approved by a security officer —
// never the requester. Both the request and the approval check, as of
// their own moment, that every record named is past its retention; the
// run crypto-shreds their keys and signs the destruction certificate.
func (s *Service) recordsDestroy() Kind {
	return Kind{
		Name: RecordsDestroy, RequestPermission: policy.RecordDestroy, RunAction: "record.destroy",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, id string) (*Plan, error) {
			var p records.DestructionRequest
			if err := strict(raw, &p, `{"record_ids": [ids]}`); err != nil {
				return nil, err
			}
			norm, _, err := s.records.CheckDestruction(ctx, p)
			if err != nil {
				return nil, err
			}
			return &Plan{Payload: norm, Approvers: policy.Approvers{Security: true}, TargetType: "destruction", TargetID: id}, nil
		},
		Run: func(ctx context.Context, a *Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p records.DestructionRequest
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			m, err := s.records.Destroy(ctx, a.ID, p, a.RequestedBy, a.RequestedAt, approver)
			return m, "", err
		},
	}
}

// retentionShorten shortens a record type's retention period (never below
// the law's floor): asked by an administrator (retention.manage), approved
// by a security officer.
func (s *Service) retentionShorten() Kind {
	check := func(ctx context.Context, raw json.RawMessage) (RetentionPayload, error) {
		var p RetentionPayload
		if err := strict(raw, &p, `{"record_type", "years"}`); err != nil {
			return p, err
		}
		shorter, err := s.records.CheckRetentionChange(ctx, p.RecordType, p.Years)
		if me := (*medguard.Error)(nil); err != nil && errors.As(err, &me) && me.Field != "" {
			me2 := *me
			me2.Field = "payload." + me.Field
			return p, &me2
		}
		if err != nil {
			return p, err
		}
		if !shorter {
			return p, &medguard.Error{Kind: medguard.Conflict, Field: "payload.years",
				Message: "this lengthens the period: set it directly, no second person is needed"}
		}
		return p, nil
	}
	return Kind{
		Name: RetentionShorten, RequestPermission: policy.RetentionManage, RunAction: "retention.shorten",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			p, err := check(ctx, raw)
			if err != nil {
				return nil, err
			}
			return &Plan{Payload: p, Approvers: policy.Approvers{Security: true}, TargetType: "retention", TargetID: p.RecordType}, nil
		},
		Run: func(ctx context.Context, a *Approval, _ *medguard.Call, _ string) (audit.Mutation, string, error) {
			p, err := check(ctx, a.Payload)
			if err != nil {
				return nil, "", err
			}
			return records.RetentionChange(p.RecordType, p.Years, a.RequestedBy, s.clock.Now().Truncate(time.Millisecond)), "", nil
		},
	}
}

// HoldLiftPayload is the payload of a retention.hold_lift request.
type HoldLiftPayload struct {
	HoldID string `json:"hold_id"`
}

// holdLift lifts a legal hold: asked by someone who may place holds
// (retention.hold), approved by a security officer who is neither the
// requester nor the person who placed the hold (the policy: the plan
// excludes the placer, 403 deny.own_hold; checked again at the run). The
// hold must still be active then.
func (s *Service) holdLift() Kind {
	return Kind{
		Name: HoldLift, RequestPermission: policy.RetentionHold, RunAction: "retention.hold_lift",
		Check: func(ctx context.Context, _ *medguard.Call, raw json.RawMessage, _, _ string) (*Plan, error) {
			var p HoldLiftPayload
			if err := strict(raw, &p, `{"hold_id"}`); err != nil {
				return nil, err
			}
			h, err := s.records.CheckHoldLift(ctx, p.HoldID)
			if err != nil {
				return nil, err
			}
			return &Plan{Payload: p, Approvers: policy.Approvers{Security: true, Excluded: []string{h.PlacedByID()},
				ExcludedRule: records.RuleOwnHold}, TargetType: "legal_hold", TargetID: p.HoldID}, nil
		},
		Run: func(ctx context.Context, a *Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p HoldLiftPayload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			m, err := s.records.LiftHold(ctx, p.HoldID, a.ID, approver)
			return m, "", err
		},
	}
}
