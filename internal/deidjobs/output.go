package deidjobs

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Output formats.
var Formats = []string{"csv", "jsonl"}

var errUsedUp = &medguard.Error{Kind: medguard.Gone, Code: "downloads_used",
	Message: "the output has been downloaded as many times as its approval allows"}
var errExpired = &medguard.Error{Kind: medguard.Gone, Code: "output_expired", Message: "the output has expired"}

// Output returns a job's output in format (csv or jsonl) to its recipient
// alone (the policy: deny.not_recipient), at most max_downloads times
// and before it expires (then 410). Every download, and every refused
// one, is in the audit log (deid.download); the count moves with the
// entry.
func (s *Service) Output(ctx context.Context, call *medguard.Call, id, format string) ([]byte, error) {
	if format == "" {
		format = "csv"
	}
	j, lerr := s.load(ctx, id)
	if lerr != nil && !medguard.IsKind(lerr, medguard.NotFound) {
		return nil, lerr
	}
	res := policy.Resource{Type: "deid_job", ID: id, Missing: j == nil}
	if j != nil {
		res.SubjectUserID = j.RecipientID
	}
	var out []byte
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.DeidRead, AuditAction: "deid.download", Resource: res},
		func(policy.Decision) (audit.Mutation, error) {
			now := s.clock.Now()
			switch {
			case j == nil:
				return nil, lerr
			case format != "csv" && format != "jsonl":
				return nil, medguard.InvalidField("format", "format must be csv or jsonl")
			case j.Status != Done:
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "status", Message: "the job is " + j.Status + ", it has no output"}
			case j.PurgedAt != nil && j.Downloads >= j.MaxDownloads:
				return nil, errUsedUp
			case !now.Before(j.ExpiresAt) || j.PurgedAt != nil:
				return nil, errExpired
			case j.Downloads >= j.MaxDownloads:
				return nil, errUsedUp
			}
			var sealed []byte
			err := s.db.QueryRowContext(ctx, `SELECT sealed FROM deid_outputs WHERE job_id = $1 AND format = $2`, id, format).Scan(&sealed)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, errExpired
			}
			if err != nil {
				return nil, err
			}
			if out, err = s.keys.Open(ctx, keyOwner(id), outputLocation(id, format), sealed); err != nil {
				return nil, err
			}
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				r, err := tx.ExecContext(ctx, `UPDATE deid_jobs SET downloads = downloads + 1 WHERE id = $1 AND downloads < max_downloads`, id)
				return storage.Affected(r, err, errUsedUp)
			}, nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Purge shreds the outputs of done jobs that expired or whose downloads
// are used up: their rows are erased and the job's data key destroyed
// (deid.purge in the audit log). It returns how many it purged.
func (s *Service) Purge(ctx context.Context) (int, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM deid_jobs WHERE status = $1 AND purged_at IS NULL
		AND (downloads >= max_downloads OR expires_at <= $2)`, Done, medguard.Millis(now))
	if err != nil {
		return 0, medguard.Wrap("deidjobs.Purge", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, id := range ids {
		_, err := s.gate.Record(ctx, eventOf(system(id), "deid.purge", id), func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM deid_outputs WHERE job_id = $1`, id); err != nil {
				return err
			}
			if _, err := s.keys.Shred(ctx, tx, keyOwner(id), medguard.Millis(now)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE deid_jobs SET purged_at = $1 WHERE id = $2`, medguard.Millis(now), id)
			return err
		})
		if err != nil {
			return 0, err
		}
		s.keys.Forget(keyOwner(id))
	}
	return len(ids), nil
}
