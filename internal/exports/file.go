package exports

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/detect"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// exportResource is what the policy needs to know of an export to let
// someone take it (build or download its file): its requester, how many
// patients it holds and whether an approved request covers it.
func exportResource(e *Export) policy.Resource {
	approved := e.ApprovalID != "" && e.ApprovedAt != nil // set by the approval's run, never otherwise
	return policy.Resource{Type: "export", ID: e.ID, RequestedBy: e.RequesterID, ExportPatients: e.Patients,
		ExportApproved: approved}
}

// Build builds the file of an approved export, for its requester; the
// answer holds the key, shown this once. Anyone else, or an export not
// (yet) approved, is refused with deny.export_not_approved — which
// freezes the account.
func (s *Service) Build(ctx context.Context, call *medguard.Call, id string) (*Export, error) {
	e, err := s.load(ctx, id)
	if err != nil {
		return nil, s.missing(ctx, call, "export.build", id, err)
	}
	if err := s.show(ctx, e, false); err != nil {
		return nil, err
	}
	if err := s.build(ctx, call, e, false); err != nil {
		return nil, err
	}
	return e, nil
}

// missing logs an attempt on an export that does not exist.
func (s *Service) missing(ctx context.Context, call *medguard.Call, action, id string, cause error) error {
	if !medguard.IsKind(cause, medguard.NotFound) {
		return cause
	}
	return s.gate.Missing(ctx, gate.Passage{Call: call, Action: policy.RecordExport, AuditAction: action,
		Resource: policy.Resource{Type: "export", ID: id}}, cause)
}

// build reads the export's patients through the records capability (one
// entry per patient), writes the content, seals it under a fresh key and
// stores the ciphertext and the manifest with an export.manifest entry.
// fresh says the export is new (one patient, stored now).
func (s *Service) build(ctx context.Context, call *medguard.Call, e *Export, fresh bool) error {
	lead := gate.Passage{Call: call, Action: policy.RecordExport, AuditAction: "export.build", Resource: exportResource(e)}
	action := detect.ApprovedExport
	if e.ApprovalID == "" {
		action = "record.export"
	}
	if fresh {
		lead.Resource.RequestedBy = ""
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var file []byte
	var m Manifest
	err := s.records.ReadForExport(ctx, lead, action, e.plan, func(data []records.ExportedPatient) error {
		if e.Status != Approved {
			return &medguard.Error{Kind: medguard.Conflict, Message: "the export is " + e.Status + ": its file is built once, when approved"}
		}
		content, rows, err := render(data, e.Fields, e.Format, now)
		if err != nil {
			return err
		}
		if len(content) > s.cfg.MaxBytes {
			return &medguard.Error{Kind: medguard.Invalid, Field: "patient_ids",
				Message: "the export is larger than " + strconv.Itoa(s.cfg.MaxBytes>>20) + " MiB; ask for fewer patients, record types or fields"}
		}
		var key string
		if file, key, err = seal(e.ID, e.Cipher, e.Format, content); err != nil {
			return err
		}
		clear(content)
		sum := sha256.Sum256(file)
		m = Manifest{ExportID: e.ID, ApprovalID: e.ApprovalID, ApprovedBy: e.ApprovedBy, Requester: e.Requester,
			Purpose: e.Purpose, Format: e.Format, Cipher: e.Cipher, Fields: e.Fields, RecordTypes: e.RecordTypes,
			Patients: make([]ManifestPatient, len(data)), PatientCount: len(data), Rows: rows, PlainBytes: len(content),
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(file)), BuiltAt: now, ExpiresAt: now.Add(s.cfg.TTL),
			MaxDownloads: e.MaxDownloads}
		for i, d := range data {
			mp := ManifestPatient{PatientID: d.Patient.ID, RecordIDs: make([]string, len(d.Records)), Withheld: d.Withheld}
			for j, r := range d.Records {
				mp.RecordIDs[j] = r.ID
			}
			m.Patients[i] = mp
			m.RecordCount += len(d.Records)
			m.Withheld += d.Withheld
		}
		e.Key = key
		return nil
	})
	if err != nil {
		return err
	}
	rule := policy.RulePermission
	if e.ApprovalID != "" {
		rule = "allow.four_eyes:" + e.ApprovalID
	}
	r, err := s.gate.Record(ctx, gate.Event{Call: call, Action: "export.manifest", TargetType: "export", TargetID: e.ID,
		Allowed: true, Rule: rule}, func(ctx context.Context, tx *sql.Tx, index uint64) error {
		if fresh {
			if err := s.insert(ctx, tx, e); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE exports SET status = $1, built_at = $2, expires_at = $3, manifest = $4,
			sha256 = $5, size = $6, ciphertext = $7, manifest_index = $8 WHERE id = $9 AND status = $10`,
			Ready, medguard.Millis(m.BuiltAt), medguard.Millis(m.ExpiresAt), jsonText(m), m.SHA256, m.Size, file, int64(index),
			e.ID, Approved)
		return storageAffected(res, err)
	})
	if err != nil {
		e.Key = ""
		return err
	}
	e.Status, e.BuiltAt, e.ExpiresAt, e.Manifest, e.SHA256, e.Size = Ready, &m.BuiltAt, &m.ExpiresAt, &m, m.SHA256, m.Size
	e.Available, e.hasFile, e.ManifestIndex = true, true, &r.Index
	return nil
}

// Download returns an export's file (the ciphertext) to its requester,
// counting the download; after the last allowed one the ciphertext is
// deleted. A file used up or expired is Gone (410); anyone else is refused
// with deny.export_not_approved, which freezes the account.
func (s *Service) Download(ctx context.Context, call *medguard.Call, id string) ([]byte, *Export, error) {
	if err := s.purge(ctx); err != nil {
		return nil, nil, err
	}
	e, err := s.load(ctx, id)
	if err != nil {
		return nil, nil, s.missing(ctx, call, "export.download", id, err)
	}
	if err := s.show(ctx, e, false); err != nil {
		return nil, nil, err
	}
	var file []byte
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.RecordExport, AuditAction: "export.download",
		Resource: exportResource(e)}, func(policy.Decision) (audit.Mutation, error) {
		switch e.Status {
		case Ready:
		case Exhausted:
			return nil, &medguard.Error{Kind: medguard.Gone, Code: "downloads_used",
				Message: "the file was downloaded " + strconv.Itoa(e.MaxDownloads) + " times and is deleted"}
		case Expired:
			return nil, &medguard.Error{Kind: medguard.Gone, Code: "expired", Message: "the file expired and is deleted"}
		default:
			return nil, &medguard.Error{Kind: medguard.Conflict, Message: "the export is " + e.Status + ": it has no file"}
		}
		if err := s.db.QueryRowContext(ctx, `SELECT ciphertext FROM exports WHERE id = $1`, e.ID).Scan(&file); err != nil || file == nil {
			return nil, &medguard.Error{Kind: medguard.Gone, Code: "deleted", Message: "the file is deleted"}
		}
		last := e.Downloads+1 >= e.MaxDownloads
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			q := `UPDATE exports SET downloads = downloads + 1 WHERE id = $1 AND downloads = $2`
			if last {
				q = `UPDATE exports SET downloads = downloads + 1, ciphertext = NULL WHERE id = $1 AND downloads = $2`
			}
			res, err := tx.ExecContext(ctx, q, e.ID, e.Downloads)
			return storageAffected(res, err)
		}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	e.Downloads++
	s.show(ctx, e, false)
	return file, e, nil
}

// purge deletes the ciphertext of every file past its expiry, each as an
// export.expire entry of medguard itself.
func (s *Service) purge(ctx context.Context) error {
	now := medguard.Millis(s.clock.Now())
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM exports WHERE ciphertext IS NOT NULL AND expires_at <= $1`, now)
	if err != nil {
		return medguard.Wrap("exports.purge", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return medguard.Wrap("exports.purge", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	system := &medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}
	for _, id := range ids {
		if _, err := s.gate.Record(ctx, gate.Event{Call: system, Action: "export.expire", TargetType: "export", TargetID: id,
			Allowed: true, Rule: "allow.system"}, func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE exports SET ciphertext = NULL WHERE id = $1`, id)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// Query selects the exports listed.
type Query struct {
	// All lists every export (medical affairs, export.approve); otherwise
	// the caller's own.
	All bool
}

// List returns exports, newest first (at most 200): the caller's own, or
// — for medical affairs — all of them, with their manifests.
func (s *Service) List(ctx context.Context, call *medguard.Call, q Query) ([]Export, error) {
	if err := s.purge(ctx); err != nil {
		return nil, err
	}
	action := policy.RecordExport
	if q.All {
		action = policy.ExportApprove
	}
	out := []Export{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: action, AuditAction: "export.list",
		Resource: policy.Resource{Type: "export_list"}}, func(policy.Decision) (audit.Mutation, error) {
		where, args := `requester_id = $1`, []any{call.Actor.ID}
		if q.All {
			where, args = `$1 = $1`, []any{""}
		}
		rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM exports WHERE `+where+` ORDER BY id DESC LIMIT 200`, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, *e)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for i := range out {
			if err := s.show(ctx, &out[i], true); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	return out, err
}

// Get returns one export with its manifest: to its requester, or to
// medical affairs (export.approve).
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Export, error) {
	e, err := s.load(ctx, id)
	if err != nil && !medguard.IsKind(err, medguard.NotFound) {
		return nil, err
	}
	pass := gate.Passage{Call: call, Action: policy.ExportApprove, AuditAction: "export.read",
		Resource: policy.Resource{Type: "export_view", ID: id, Missing: e == nil}}
	own := e != nil && e.RequesterID == call.Actor.ID
	if own || e == nil && !policy.PermissionsOf(call.Actor.Roles)[policy.ExportApprove] {
		pass.Action = policy.RecordExport
	}
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if e == nil {
			return nil, errNoExport
		}
		return nil, s.show(ctx, e, true)
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}
