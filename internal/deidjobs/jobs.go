package deidjobs

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// payload is a deid.job approval's payload: the job and its spec.
type payload struct {
	JobID        string    `json:"job_id"`
	Purpose      string    `json:"purpose"`
	Spec         Spec      `json:"spec"`
	RecipientID  string    `json:"recipient_id"`
	MaxDownloads int       `json:"max_downloads"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// kind is the deid.job kind of four-eyes request: asked with deid.run,
// decided by the holders of deid.approve (medical affairs) — never the
// requester, nor the recipient (the approval's subject). The request
// files the job (pending); the approval marks it approved, and the worker
// runs it.
func (s *Service) kind() approvals.Kind {
	return approvals.Kind{
		Name: approvals.DeidJob, RequestPermission: policy.DeidRun, RunAction: "deid.approve", Approver: policy.DeidApprove,
		Check: func(ctx context.Context, call *medguard.Call, raw json.RawMessage, _, approvalID string) (*approvals.Plan, error) {
			var in NewJob
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return nil, medguard.InvalidField("payload", "payload must be a de-identification job")
			}
			now := s.clock.Now().Truncate(time.Millisecond)
			if call.Actor.Kind != medguard.UserActor {
				return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNoPermission, Message: "only people ask for jobs"}
			}
			sp, recipient, agreement, err := s.check(ctx, call, in, now)
			if err != nil {
				return nil, err
			}
			maxDownloads, expires, err := s.bounds(in, now)
			if err != nil {
				return nil, err
			}
			id := medguard.NewID(now)
			p := payload{JobID: id, Purpose: in.Purpose, Spec: *sp, RecipientID: recipient.ID, MaxDownloads: maxDownloads, ExpiresAt: expires}
			a := call.Actor
			insert := func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO deid_jobs (id, approval_id, requester_id, requester, recipient_id, recipient,
					purpose, spec, agreement_id, status, max_downloads, downloads, expires_at, created_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13)`,
					id, approvalID, a.ID, a.Name, recipient.ID, recipient.Username, in.Purpose, mustJSON(sp),
					storage.NullString(agreement), Pending, maxDownloads, medguard.Millis(expires), medguard.Millis(now))
				return err
			}
			return &approvals.Plan{Subject: recipient.ID, Payload: p, TargetType: "deid_job", TargetID: id, OnRequest: insert}, nil
		},
		Run: func(ctx context.Context, a *approvals.Approval, approver *medguard.Call, _ string) (audit.Mutation, string, error) {
			var p payload
			if err := json.Unmarshal(a.Payload, &p); err != nil {
				return nil, "", err
			}
			now := s.clock.Now().Truncate(time.Millisecond)
			if !now.Before(p.ExpiresAt) {
				return nil, "", &medguard.Error{Kind: medguard.Conflict, Message: "the job's output would already have expired"}
			}
			u, err := s.identity.UserByID(ctx, p.RecipientID)
			if err != nil || !policy.PermissionsOf(u.Roles)[policy.DeidRead] {
				return nil, "", &medguard.Error{Kind: medguard.Conflict, Message: "the recipient may no longer receive de-identified data"}
			}
			if _, err := s.checkPartners(ctx, p.Purpose, &p.Spec, now, p.RecipientID); err != nil {
				return nil, "", err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				res, err := tx.ExecContext(ctx, `UPDATE deid_jobs SET status = $1, approved_by = $2, approved_at = $3
					WHERE id = $4 AND status = $5`, Approved, approver.Actor.Name, medguard.Millis(now), p.JobID, Pending)
				if err := storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the job is no longer pending"}); err != nil {
					return err
				}
				s.Kick()
				return nil
			}, "", nil
		},
	}
}

// Ask files a job as a four-eyes request (deid.run) and returns it,
// pending medical affairs' decision.
func (s *Service) Ask(ctx context.Context, call *medguard.Call, in NewJob) (*Job, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, medguard.InvalidField("payload", "payload must be a de-identification job")
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		reason = "de-identification job: " + in.Purpose
	}
	a, err := s.approvals.Request(ctx, call, approvals.NewRequest{Kind: approvals.DeidJob, Payload: raw, Reason: reason})
	if err != nil {
		return nil, err
	}
	j, err := s.load(ctx, a.TargetID)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// Kick wakes the worker: a job was approved.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

const jobColumns = `id, approval_id, requester_id, requester, recipient_id, recipient, purpose, spec, agreement_id, status,
	approved_by, approved_at, started_at, finished_at, error, max_downloads, downloads, expires_at, manifest, purged_at, created_at`

func (s *Service) scan(sc interface{ Scan(...any) error }, now time.Time) (*Job, error) {
	var j Job
	var spec string
	var agreement, approvedBy, errText, manifest sql.NullString
	var approvedAt, startedAt, finishedAt, purgedAt sql.NullInt64
	var expires, created int64
	if err := sc.Scan(&j.ID, &j.ApprovalID, &j.RequesterID, &j.Requester, &j.RecipientID, &j.Recipient, &j.Purpose, &spec,
		&agreement, &j.Status, &approvedBy, &approvedAt, &startedAt, &finishedAt, &errText, &j.MaxDownloads, &j.Downloads,
		&expires, &manifest, &purgedAt, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &j.Spec); err != nil {
		return nil, err
	}
	j.AgreementID, j.ApprovedBy, j.Error = agreement.String, approvedBy.String, errText.String
	ptr := func(v sql.NullInt64) *time.Time {
		if !v.Valid {
			return nil
		}
		return nullTime(&v.Int64)
	}
	j.ApprovedAt, j.StartedAt, j.FinishedAt, j.PurgedAt = ptr(approvedAt), ptr(startedAt), ptr(finishedAt), ptr(purgedAt)
	j.ExpiresAt, j.CreatedAt = medguard.FromMillis(expires), medguard.FromMillis(created)
	if manifest.Valid {
		var m SignedManifest
		if err := json.Unmarshal([]byte(manifest.String), &m); err != nil {
			return nil, err
		}
		j.Manifest = &m
	}
	j.Available = j.Status == Done && j.PurgedAt == nil && j.Downloads < j.MaxDownloads && now.Before(j.ExpiresAt)
	if j.Available {
		j.DownloadsLeft = j.MaxDownloads - j.Downloads
	}
	return &j, nil
}

var errNoJob = &medguard.Error{Kind: medguard.NotFound, Message: "no such de-identification job"}

func (s *Service) load(ctx context.Context, id string) (*Job, error) {
	if !medguard.ValidID(id) {
		return nil, errNoJob
	}
	j, err := s.scan(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM deid_jobs WHERE id = $1`, id), s.clock.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoJob
	}
	if err != nil {
		return nil, medguard.Wrap("deidjobs.load", err)
	}
	return j, s.withApproval(ctx, []*Job{j})
}

// withApproval shows a pending job as its approval stands: refused,
// cancelled or expired.
func (s *Service) withApproval(ctx context.Context, js []*Job) error {
	var ids []string
	for _, j := range js {
		if j.Status == Pending {
			ids = append(ids, j.ApprovalID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	st, err := s.approvals.StatusOf(ctx, ids...)
	if err != nil {
		return err
	}
	for _, j := range js {
		if j.Status != Pending {
			continue
		}
		switch st[j.ApprovalID] {
		case approvals.Refused:
			j.Status = Refused
		case approvals.Cancelled:
			j.Status = Cancelled
		case approvals.Expired:
			j.Status = Expired
		}
	}
	return nil
}

// mayOversee reports whether the caller sees every job (medical affairs).
func mayOversee(call *medguard.Call) bool {
	return call.Actor.Kind == medguard.UserActor && policy.PermissionsOf(call.Actor.Roles)[policy.DeidApprove]
}

// List lists the caller's jobs (asked or received), newest first; medical
// affairs (deid.approve) sees every job.
func (s *Service) List(ctx context.Context, call *medguard.Call) ([]Job, error) {
	out := []Job{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DeidRead, AuditAction: "deid.list",
		Resource: policy.Resource{Type: "deid_job"}}, func(policy.Decision) (audit.Mutation, error) {
		q, args := `SELECT `+jobColumns+` FROM deid_jobs WHERE requester_id = $1 OR recipient_id = $1 ORDER BY id DESC LIMIT 500`,
			[]any{call.Actor.ID}
		if mayOversee(call) {
			q, args = `SELECT `+jobColumns+` FROM deid_jobs ORDER BY id DESC LIMIT 500`, nil
		}
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		now := s.clock.Now()
		var js []*Job
		for rows.Next() {
			j, err := s.scan(rows, now)
			if err != nil {
				return nil, err
			}
			js = append(js, j)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if err := s.withApproval(ctx, js); err != nil {
			return nil, err
		}
		for _, j := range js {
			j.Manifest = nil // the list is a summary; the job shows its manifest
			out = append(out, *j)
		}
		return nil, nil
	})
	return out, err
}

// errNotYours refuses a job to someone who neither asked for it, nor
// receives it, nor oversees jobs.
var errNotYours = &medguard.Error{Kind: medguard.Forbidden, Rule: policy.RuleNotOwnRequest,
	Message: "only the requester, the recipient and medical affairs see a job"}

// Get returns one job with its signed manifest.
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Job, error) {
	j, lerr := s.load(ctx, id)
	if lerr != nil && !medguard.IsKind(lerr, medguard.NotFound) {
		return nil, lerr
	}
	res := policy.Resource{Type: "deid_job", ID: id, Missing: j == nil}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DeidRead, AuditAction: "deid.read", Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			switch {
			case j == nil:
				return nil, lerr
			case j.RequesterID != call.Actor.ID && j.RecipientID != call.Actor.ID && !mayOversee(call):
				return nil, errNotYours
			}
			return nil, nil
		})
	if err != nil {
		return nil, err
	}
	return j, nil
}
