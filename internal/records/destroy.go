package records

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/retention"
)

// MaxDestroy bounds the records one destruction request names.
const MaxDestroy = 500

// SetLedger gives the service the destruction ledger (DATA/destructions.log);
// without one no destruction runs.
func (s *Service) SetLedger(l *retention.Ledger) { s.ledger = l }

// DestructionRequest is the payload of a records.destroy request.
type DestructionRequest struct {
	RecordIDs []string `json:"record_ids"`
}

// CheckDestruction validates a destruction request as of now: between 1
// and MaxDestroy records, each existing, not destroyed yet, past the end
// of its retention period and under no legal hold. A record whose
// retention has not ended is a 422 naming payload.record_ids (code
// retention_not_ended); a record under a hold is a 409 naming the hold
// (code legal_hold).
func (s *Service) CheckDestruction(ctx context.Context, req DestructionRequest) (DestructionRequest, []ExpiredRecord, error) {
	ids := sortedUnique(req.RecordIDs)
	if len(ids) == 0 || len(ids) > MaxDestroy {
		return req, nil, medguard.InvalidField("payload.record_ids", "name 1 to %d records", MaxDestroy)
	}
	for _, id := range ids {
		if !medguard.ValidID(id) {
			return req, nil, medguard.InvalidField("payload.record_ids", "%q is not a record id", id)
		}
	}
	now := s.clock.Now()
	found, _, err := s.expired(ctx, now, "", 0, ids)
	if err != nil {
		return req, nil, medguard.Wrap("records.CheckDestruction", err)
	}
	if len(found) == len(ids) {
		if err := s.refuseHeld(ctx, found); err != nil {
			return req, nil, medguard.Wrap("records.CheckDestruction", err)
		}
		return DestructionRequest{RecordIDs: ids}, found, nil
	}
	have := map[string]bool{}
	for _, e := range found {
		have[e.ID] = true
	}
	periods, err := s.periods(ctx)
	if err != nil {
		return req, nil, medguard.Wrap("records.CheckDestruction", err)
	}
	for _, id := range ids {
		if have[id] {
			continue
		}
		var typ string
		var admission sql.NullString
		var created int64
		var discharged, destroyed sql.NullInt64
		err := s.db.QueryRowContext(ctx, `SELECT r.type, r.admission_id, r.created_at, a.discharged_at, r.destroyed_at
			FROM records r LEFT JOIN admissions a ON a.id = r.admission_id WHERE r.id = $1`, id).Scan(
			&typ, &admission, &created, &discharged, &destroyed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return req, nil, medguard.InvalidField("payload.record_ids", "no record has the id %s", id)
		case err != nil:
			return req, nil, medguard.Wrap("records.CheckDestruction", err)
		case destroyed.Valid:
			return req, nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.record_ids", Code: "destroyed",
				Message: fmt.Sprintf("record %s is destroyed already", id)}
		}
		_, _, ends, ok := retentionOf(typ, admission, created, discharged, periods)
		msg := fmt.Sprintf("the retention period of record %s has not ended: it ends on %s", id, ends.Format("2006-01-02"))
		if !ok {
			msg = fmt.Sprintf("the retention period of record %s has not started: its admission has no discharge", id)
		}
		return req, nil, &medguard.Error{Kind: medguard.Invalid, Field: "payload.record_ids", Code: "retention_not_ended", Message: msg}
	}
	return req, nil, medguard.InvalidField("payload.record_ids", "a record cannot be destroyed")
}

// Destroy returns the mutation that destroys the records of an approved
// request, re-checked as of now (a period lengthened meanwhile stops it):
// inside the approval's transaction it signs the certificate (with the
// approval's audit index), appends it to the ledger and syncs it, shreds
// each record's own data key, erases the sealed content and attachments,
// and marks the records destroyed. The ledger is written first: a
// destruction whose transaction then fails is completed at the next start.
func (s *Service) Destroy(ctx context.Context, approvalID string, req DestructionRequest, requestedBy string,
	requestedAt time.Time, approver *medguard.Call) (audit.Mutation, error) {
	if s.ledger == nil {
		return nil, &medguard.Error{Kind: medguard.Conflict, Message: "this server has no destruction ledger"}
	}
	_, found, err := s.CheckDestruction(ctx, req)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond).UTC()
	c := retention.Certificate{ID: approvalID, Origin: s.ledgerOrigin(), DestroyedAt: now, ApprovalID: approvalID,
		RequestedBy: requestedBy, RequestedAt: requestedAt.UTC(), ApprovedBy: approver.Actor.Name, Counts: map[string]int{},
		KeysShredded: []string{}, BackupRetentionDays: int(s.cfg.BackupRetention / (24 * time.Hour)),
		BackupsExpireBy: now.Add(s.cfg.BackupRetention)}
	for _, e := range found {
		d := retention.DestroyedRecord{ID: e.ID, Type: e.Type, Department: e.Department, Class: e.Class,
			RecordDate: e.RecordDate.UTC(), RetentionYears: e.RetentionYears, RetentionEnded: e.RetentionEnded.UTC(),
			Versions: e.Versions, Attachments: e.Attachments, Method: retention.Erase}
		if e.contentKey != "" {
			d.Method, d.KeyID = retention.CryptoShred, e.contentKey
			c.KeysShredded = append(c.KeysShredded, e.contentKey)
		}
		c.Records = append(c.Records, d)
		c.Counts[e.Type]++
	}
	return func(ctx context.Context, tx *sql.Tx, index uint64) error {
		c.AuditIndex = index
		signed, err := s.ledger.Sign(c)
		if err != nil {
			return err
		}
		if err := s.ledger.Append(signed); err != nil {
			return err
		}
		return s.applyDestruction(ctx, tx, signed)
	}, nil
}

func (s *Service) ledgerOrigin() string {
	if s.ledger == nil {
		return ""
	}
	return s.ledger.Origin()
}

// applyDestruction carries out a signed destruction in tx; it does nothing
// twice (the ledger's re-application runs it again on a restored database).
func (s *Service) applyDestruction(ctx context.Context, tx *sql.Tx, signed retention.Signed) error {
	c := signed.Certificate
	at := medguard.Millis(c.DestroyedAt)
	empty := []byte{}
	for _, r := range c.Records {
		if r.KeyID != "" {
			if _, err := s.keys.Shred(ctx, tx, r.KeyID, at); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE record_versions SET title = $1, body = $1, fields = NULL WHERE record_id = $2`,
			empty, r.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE attachments SET filename = $1, content = $1 WHERE record_id = $2`, empty, r.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET destroyed_at = $1, destruction_id = $2 WHERE id = $3 AND destroyed_at IS NULL`,
			at, c.ID, r.ID); err != nil {
			return err
		}
	}
	body, err := json.Marshal(signed)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO destructions (id, destroyed_at, record_count, certificate) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, c.ID, at, len(c.Records), string(body))
	return err
}

// pending reports whether a destruction of the ledger is not (wholly) in
// the database: a record not marked, a key not shredded, or no row.
func (s *Service) pending(ctx context.Context, c retention.Certificate) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM destructions WHERE id = $1`, c.ID).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	for _, r := range c.Records {
		var live int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE id = $1 AND destroyed_at IS NULL`, r.ID).Scan(&live); err != nil {
			return false, err
		}
		if live > 0 {
			return true, nil
		}
		if r.KeyID != "" {
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE owner = $1 AND wrapped IS NOT NULL`, r.KeyID).Scan(&live); err != nil {
				return false, err
			}
			if live > 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// ReapplyDestructions makes the database agree with the ledger, at start:
// every destruction the ledger holds that the database does not (a
// database restored from a backup older than it, or a destruction whose
// transaction failed after its ledger line) is carried out again, each
// logged as record.destroy_reapply; and every destruction the database
// holds that the ledger lacks (a lost or older ledger) is written back to
// it. It returns how many destructions it re-applied.
func (s *Service) ReapplyDestructions(ctx context.Context) (int, error) {
	if s.ledger == nil {
		return 0, nil
	}
	ledger, err := s.ledger.Read()
	if err != nil {
		return 0, err
	}
	system := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	inLedger := map[string]bool{}
	n := 0
	for _, signed := range ledger {
		inLedger[signed.Certificate.ID] = true
		todo, err := s.pending(ctx, signed.Certificate)
		if err != nil {
			return n, medguard.Wrap("records.ReapplyDestructions", err)
		}
		if !todo {
			continue
		}
		if _, err := s.gate.Record(ctx, gate.Event{Call: system, Action: "record.destroy_reapply", TargetType: "destruction",
			TargetID: signed.Certificate.ID, Allowed: true, Rule: "allow.destruction_ledger"},
			func(ctx context.Context, tx *sql.Tx, _ uint64) error { return s.applyDestruction(ctx, tx, signed) }); err != nil {
			return n, err
		}
		for _, r := range signed.Certificate.Records {
			if r.KeyID != "" {
				s.keys.Forget(r.KeyID)
			}
		}
		n++
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, certificate FROM destructions ORDER BY id`)
	if err != nil {
		return n, medguard.Wrap("records.ReapplyDestructions", err)
	}
	var missing []retention.Signed
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			rows.Close()
			return n, medguard.Wrap("records.ReapplyDestructions", err)
		}
		if inLedger[id] {
			continue
		}
		signed, err := retention.Parse([]byte(body))
		if err != nil {
			rows.Close()
			return n, err
		}
		missing = append(missing, signed)
	}
	rows.Close()
	for _, signed := range missing {
		if err := s.ledger.Append(signed); err != nil {
			return n, err
		}
		if _, err := s.gate.Record(ctx, gate.Event{Call: system, Action: "retention.ledger_repair", TargetType: "destruction",
			TargetID: signed.Certificate.ID, Allowed: true, Rule: "allow.destruction_ledger"}, nil); err != nil {
			return n, err
		}
	}
	return n, nil
}

// CertificateSummary is a line of the list of destruction certificates.
type CertificateSummary struct {
	ID              string    `json:"id"`
	DestroyedAt     time.Time `json:"destroyed_at"`
	Records         int       `json:"records"`
	RequestedBy     string    `json:"requested_by"`
	ApprovedBy      string    `json:"approved_by"`
	BackupsExpireBy time.Time `json:"backups_expire_by"`
}

// Certificates lists the destruction certificates, newest first.
func (s *Service) Certificates(ctx context.Context, call *medguard.Call, before string, limit int) ([]CertificateSummary, string, error) {
	out := []CertificateSummary{}
	var next string
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionRead, "retention.certificates", policy.Resource{Type: "destruction"}),
		func(policy.Decision) (audit.Mutation, error) {
			rows, err := s.db.QueryContext(ctx, `SELECT id, certificate FROM destructions WHERE ($1 = '' OR id < $1)
				ORDER BY id DESC LIMIT $2`, before, limit+1)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				var id, body string
				if err := rows.Scan(&id, &body); err != nil {
					return nil, err
				}
				if len(out) == limit {
					next = out[len(out)-1].ID
					break
				}
				signed, err := retention.Parse([]byte(body))
				if err != nil {
					return nil, err
				}
				c := signed.Certificate
				out = append(out, CertificateSummary{ID: c.ID, DestroyedAt: c.DestroyedAt, Records: len(c.Records),
					RequestedBy: c.RequestedBy, ApprovedBy: c.ApprovedBy, BackupsExpireBy: c.BackupsExpireBy})
			}
			return nil, rows.Err()
		})
	return out, next, err
}

var errNoCertificate = &medguard.Error{Kind: medguard.NotFound, Message: "no such destruction certificate"}

// Certificate returns one signed destruction certificate, as downloaded
// (JSON), logged as retention.certificate_read.
func (s *Service) Certificate(ctx context.Context, call *medguard.Call, id string) ([]byte, *retention.Signed, error) {
	var body []byte
	var signed retention.Signed
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionRead, "retention.certificate_read",
		policy.Resource{Type: "destruction", ID: id}), func(policy.Decision) (audit.Mutation, error) {
		if !medguard.ValidID(id) {
			return nil, errNoCertificate
		}
		var text string
		err := s.db.QueryRowContext(ctx, `SELECT certificate FROM destructions WHERE id = $1`, id).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, errNoCertificate
		}
		if err != nil {
			return nil, err
		}
		body = []byte(text)
		signed, err = retention.Parse(body)
		return nil, err
	})
	if err != nil {
		return nil, nil, err
	}
	return body, &signed, nil
}
