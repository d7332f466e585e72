package datause

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/idnum"
	"medguard/internal/policy"
)

// Who asks for a copy (复印) of a patient's records.
const (
	RelationSelf    = "self"    // the patient, with their ID card
	RelationFamily  = "family"  // a relative, with proof of the relation (户口本, 委托书 …)
	RelationInsurer = "insurer" // an insurer's agent, with the insurer's letter
)

// Relations lists who may ask for a copy.
var Relations = []string{RelationSelf, RelationFamily, RelationInsurer}

// CopyPurposes are why a copy is made.
var CopyPurposes = []string{"insurance_claim", "further_treatment", "personal_record", "legal", "other"}

// Copy is one copy (复印) of a patient's records handed to a requester.
// The requester's name is sealed; no ID number is kept.
type Copy struct {
	ID            string    `json:"id"`
	PatientID     string    `json:"patient_id"`
	RequesterName string    `json:"requester_name,omitempty"`
	Relation      string    `json:"relation"`
	Proof         string    `json:"proof,omitempty"`
	Purpose       string    `json:"purpose"`
	RecordIDs     []string  `json:"record_ids"`
	Pages         int       `json:"pages"`
	FeeFen        int64     `json:"fee_fen"`
	IdentityCheck string    `json:"identity_checked"`
	CreatedBy     string    `json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
}

// NewCopy records a copy. PatientIDNumber is the ID number on the
// patient's ID card the requester presents, checked against the patient's
// (through the blind index; never stored). RequesterIDNumber is the
// requester's own (for a relative or an insurer's agent; for the patient
// it is the same card), kept only as a blind index.
type NewCopy struct {
	PatientID         string   `json:"patient_id"`
	PatientIDNumber   string   `json:"patient_id_number"`
	RequesterName     string   `json:"requester_name"`
	RequesterIDNumber string   `json:"requester_id_number,omitempty"`
	Relation          string   `json:"relation"`
	Proof             string   `json:"proof,omitempty"`
	Purpose           string   `json:"purpose"`
	RecordIDs         []string `json:"record_ids,omitempty"`
	Pages             int      `json:"pages"`
	FeeFen            int64    `json:"fee_fen"`
}

func idNumber(field, v string, now time.Time) (string, error) {
	info, err := idnum.ValidateAt(strings.TrimSpace(v), now)
	if err != nil {
		return "", medguard.InvalidField(field, "%s is not a valid resident ID number", field)
	}
	return info.Normalized, nil
}

// RecordCopy checks the requester's identity against the patient and
// records the copy (copy.manage). A wrong ID number or, for the patient
// in person, a name that is not the patient's, is refused (409 naming the
// field) and logged.
func (s *Service) RecordCopy(ctx context.Context, call *medguard.Call, in NewCopy) (*Copy, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if ok, err := s.records.PatientExists(ctx, in.PatientID); err != nil {
		return nil, err
	} else if !ok {
		return nil, medguard.InvalidField("patient_id", "no such patient")
	}
	if !slices.Contains(Relations, in.Relation) {
		return nil, medguard.InvalidField("relation", "relation must be self, family or insurer")
	}
	if in.PatientIDNumber, err = idNumber("patient_id_number", in.PatientIDNumber, now); err != nil {
		return nil, err
	}
	if in.RequesterName, err = medguard.Line("requester_name", in.RequesterName, 64, true); err != nil {
		return nil, err
	}
	switch {
	case in.Relation == RelationSelf && in.RequesterIDNumber == "":
		in.RequesterIDNumber = in.PatientIDNumber
	case in.RequesterIDNumber == "":
		return nil, medguard.InvalidField("requester_id_number", "a relative or an insurer's agent shows their own ID card")
	}
	if in.RequesterIDNumber, err = idNumber("requester_id_number", in.RequesterIDNumber, now); err != nil {
		return nil, err
	}
	if in.Proof, err = medguard.Text("proof", in.Proof, MaxReason, in.Relation != RelationSelf); err != nil {
		return nil, err
	}
	if !slices.Contains(CopyPurposes, in.Purpose) {
		return nil, medguard.InvalidField("purpose", "purpose must be one of %s", strings.Join(CopyPurposes, ", "))
	}
	switch {
	case in.Pages < 1 || in.Pages > 5000:
		return nil, medguard.InvalidField("pages", "pages must be 1-5000")
	case in.FeeFen < 0 || in.FeeFen > 10_000_000:
		return nil, medguard.InvalidField("fee_fen", "fee_fen (in fen, 分) must be 0-10000000")
	case len(in.RecordIDs) > 200:
		return nil, medguard.InvalidField("record_ids", "too many records named")
	}
	facts, err := s.records.RecordFacts(ctx, in.RecordIDs)
	if medguard.IsKind(err, medguard.NotFound) {
		return nil, medguard.InvalidField("record_ids", "no such record")
	} else if err != nil {
		return nil, err
	}
	for _, f := range facts {
		if f.PatientID != in.PatientID {
			return nil, medguard.InvalidField("record_ids", "a record named is not the patient's")
		}
	}
	id := medguard.NewID(now)
	name, err := s.seal(ctx, "record_copies", id, "requester_name", in.RequesterName)
	if err != nil {
		return nil, err
	}
	var proof []byte
	if in.Proof != "" {
		if proof, err = s.seal(ctx, "record_copies", id, "proof", in.Proof); err != nil {
			return nil, err
		}
	}
	requesterIdx := s.keys.Index().Of("requester_id_number", in.RequesterIDNumber)
	out := &Copy{ID: id, PatientID: in.PatientID, RequesterName: in.RequesterName, Relation: in.Relation, Proof: in.Proof,
		Purpose: in.Purpose, RecordIDs: nonNil(in.RecordIDs), Pages: in.Pages, FeeFen: in.FeeFen, CreatedBy: call.Actor.Name, CreatedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.CopyManage, AuditAction: "copy.record",
		Resource: policy.Resource{Type: "record_copy", ID: id, PatientID: in.PatientID}}, func(policy.Decision) (audit.Mutation, error) {
		// The check is part of the logged operation: a refused identity
		// is in the audit log, naming the patient.
		ok, err := s.records.PatientMatches(ctx, in.PatientID, "id_number", in.PatientIDNumber)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "patient_id_number", Code: "identity_mismatch",
				Message: "the ID number is not the patient's"}
		}
		out.IdentityCheck = "id_number"
		if in.Relation == RelationSelf {
			if in.RequesterIDNumber != in.PatientIDNumber {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "requester_id_number", Code: "identity_mismatch",
					Message: "the patient in person shows the patient's own ID card"}
			}
			if ok, err := s.records.PatientMatches(ctx, in.PatientID, "name", in.RequesterName); err != nil {
				return nil, err
			} else if !ok {
				return nil, &medguard.Error{Kind: medguard.Conflict, Field: "requester_name", Code: "identity_mismatch",
					Message: "the name is not the patient's"}
			}
			out.IdentityCheck = "id_number+name"
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO record_copies (id, patient_id, requester_name, requester_id_index, proof, relation,
				purpose, record_ids, pages, fee_fen, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				id, in.PatientID, name, requesterIdx, proof, in.Relation, in.Purpose, jsonList(out.RecordIDs), in.Pages, in.FeeFen,
				call.Actor.Name, medguard.Millis(now))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListCopies lists the copies made, newest first, for one patient or all
// (copy.manage). The requesters' names stay sealed: the list shows who
// made each copy, for whom (patient id), the relation, purpose, pages and
// fee.
func (s *Service) ListCopies(ctx context.Context, call *medguard.Call, patientID string) ([]Copy, error) {
	if patientID != "" && !medguard.ValidID(patientID) {
		return nil, medguard.InvalidField("patient_id", "patient_id is not an id")
	}
	where, args := `1 = 1`, []any{}
	if patientID != "" {
		where, args = `patient_id = $1`, []any{patientID}
	}
	out := []Copy{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.CopyManage, AuditAction: "copy.list",
		Resource: policy.Resource{Type: "record_copy", PatientID: patientID}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT id, patient_id, relation, purpose, record_ids, pages, fee_fen, created_by, created_at
			FROM record_copies WHERE `+where+` ORDER BY id DESC LIMIT 1000`, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var c Copy
			var ids string
			var created int64
			if err := rows.Scan(&c.ID, &c.PatientID, &c.Relation, &c.Purpose, &ids, &c.Pages, &c.FeeFen, &c.CreatedBy, &created); err != nil {
				return nil, err
			}
			c.RecordIDs, c.CreatedAt = parseList(ids), medguard.FromMillis(created)
			c.IdentityCheck = "id_number"
			if c.Relation == RelationSelf {
				c.IdentityCheck = "id_number+name"
			}
			out = append(out, c)
		}
		return nil, rows.Err()
	})
	return out, err
}
