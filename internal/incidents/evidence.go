package incidents

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

// Evidence is an audit entry attached to an incident with the proof that
// it is in the log: its leaf bytes, its RFC 6962 inclusion proof in the
// tree of TreeSize entries, and the signed checkpoint of that tree. Its ID
// is the SHA-256 of its canonical bytes (EvidenceBytes): the same evidence
// always has the same id, and once attached it never changes.
type Evidence struct {
	ID         string       `json:"id"`
	Index      uint64       `json:"index"`
	Leaf       []byte       `json:"leaf"`
	Entry      audit.Fields `json:"entry"`
	TreeSize   uint64       `json:"tree_size"`
	Root       []byte       `json:"root"`
	Proof      [][]byte     `json:"proof"`
	Checkpoint string       `json:"checkpoint"`
	AttachedBy string       `json:"attached_by"`
	AttachedAt time.Time    `json:"attached_at"`
}

// evidenceBody is what the id covers, in a fixed field order.
type evidenceBody struct {
	Checkpoint string   `json:"checkpoint"`
	Index      uint64   `json:"index"`
	Leaf       []byte   `json:"leaf"`
	Proof      [][]byte `json:"proof"`
	Root       []byte   `json:"root"`
	TreeSize   uint64   `json:"tree_size"`
}

// EvidenceBytes returns the canonical bytes of a piece of evidence: a JSON
// object with the keys checkpoint, index, leaf, proof, root and tree_size in
// that order, bytes in standard base64, no white space.
func EvidenceBytes(e *Evidence) []byte {
	proof := e.Proof
	if proof == nil {
		proof = [][]byte{}
	}
	b, err := json.Marshal(evidenceBody{Checkpoint: e.Checkpoint, Index: e.Index, Leaf: e.Leaf, Proof: proof,
		Root: e.Root, TreeSize: e.TreeSize})
	if err != nil {
		panic("incidents: evidence does not encode: " + err.Error())
	}
	return b
}

// EvidenceID returns the content address of canonical evidence bytes: the
// hex SHA-256.
func EvidenceID(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// MaxEvidence is the most entries one request attaches.
const MaxEvidence = 100

// AttachEvidence attaches audit entries, by index, to an open incident,
// each with its inclusion proof in the tree of the latest signed checkpoint.
// The caller must also be allowed to read the audit log. An entry already
// attached to the incident keeps the evidence first made for it. It returns
// the evidence of every index asked for.
func (s *Service) AttachEvidence(ctx context.Context, call *medguard.Call, id string, indexes []uint64) ([]Evidence, error) {
	var out []Evidence
	_, err := s.change(ctx, call, id, "incident.evidence", func(in *Incident, k *keys.DataKey, now time.Time) (audit.Mutation, error) {
		if d := s.gate.Check(gate.Passage{Call: call, Action: policy.AuditRead, Resource: policy.Resource{Type: "audit_log"}}); !d.Allowed {
			return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: d.Rule, Message: "attaching evidence needs audit.read as well"}
		}
		if len(indexes) == 0 || len(indexes) > MaxEvidence {
			return nil, medguard.InvalidField("indexes", "give 1 to %d audit entry indexes", MaxEvidence)
		}
		if s.checkpoints == nil {
			return nil, medguard.Errorf(medguard.Internal, "no checkpoint signer")
		}
		have, err := s.evidenceOf(ctx, id)
		if err != nil {
			return nil, err
		}
		byIndex := map[uint64]Evidence{}
		for _, e := range have {
			byIndex[e.Index] = e
		}
		cp, err := s.checkpoints.Latest(ctx)
		if err != nil {
			return nil, err
		}
		var fresh []Evidence
		for _, i := range indexes {
			if _, ok := byIndex[i]; ok {
				continue
			}
			if i >= cp.Size {
				return nil, medguard.InvalidField("indexes", "the log has no entry %d yet", i)
			}
			st, err := s.log.Entries(ctx, i, i+1)
			if err != nil {
				return nil, err
			}
			if len(st) != 1 {
				return nil, medguard.InvalidField("indexes", "entry %d is not in the database (archived?)", i)
			}
			proof, err := s.log.InclusionProof(ctx, i, cp.Size)
			if err != nil {
				return nil, err
			}
			e := Evidence{Index: i, Leaf: st[0].Leaf, Entry: st[0].Entry.Fields(), TreeSize: cp.Size, Root: cp.Root,
				Proof: proof, Checkpoint: cp.Note, AttachedBy: call.Actor.Name, AttachedAt: now}
			if e.Proof == nil {
				e.Proof = [][]byte{}
			}
			e.ID = EvidenceID(EvidenceBytes(&e))
			byIndex[i] = e
			fresh = append(fresh, e)
		}
		for _, i := range indexes {
			if !slices.ContainsFunc(out, func(e Evidence) bool { return e.Index == i }) {
				out = append(out, byIndex[i])
			}
		}
		if len(fresh) == 0 {
			return nil, nil
		}
		var note []string
		for _, e := range fresh {
			note = append(note, strconv.FormatUint(e.Index, 10))
		}
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			for _, e := range fresh {
				if _, err := tx.ExecContext(ctx, `INSERT INTO incident_evidence (incident_id, id, entry_index, body, attached_by,
					attached_at) VALUES ($1, $2, $3, $4, $5, $6)`, id, e.ID, int64(e.Index), EvidenceBytes(&e),
					e.AttachedBy, medguard.Millis(now)); err != nil {
					return err
				}
			}
			if err := stillOpen(ctx, tx, `UPDATE incidents SET status = status WHERE id = $1 AND status = 'open'`, id); err != nil {
				return err
			}
			return addUpdate(ctx, tx, k, id, index, "evidence", "audit entries "+strings.Join(note, ", "), call.Actor.Name, call.Actor.ID, now)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// evidenceOf reads an incident's evidence, checking each against its id.
func (s *Service) evidenceOf(ctx context.Context, incidentID string) ([]Evidence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, body, attached_by, attached_at FROM incident_evidence
		WHERE incident_id = $1 ORDER BY entry_index`, incidentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Evidence{}
	for rows.Next() {
		var id, by string
		var body []byte
		var at int64
		if err := rows.Scan(&id, &body, &by, &at); err != nil {
			return nil, err
		}
		e, err := parseEvidence(id, body)
		if err != nil {
			return nil, err
		}
		e.AttachedBy, e.AttachedAt = by, medguard.FromMillis(at)
		out = append(out, *e)
	}
	return out, rows.Err()
}

// parseEvidence decodes stored evidence bytes and checks them against
// their id and the leaf against its canonical form.
func parseEvidence(id string, body []byte) (*Evidence, error) {
	if EvidenceID(body) != id {
		return nil, fmt.Errorf("incidents: evidence %s does not match its id", id)
	}
	var b evidenceBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("incidents: evidence %s: %w", id, err)
	}
	e, err := audit.ParseLeaf(b.Leaf)
	if err != nil {
		return nil, fmt.Errorf("incidents: evidence %s: %w", id, err)
	}
	return &Evidence{ID: id, Index: b.Index, Leaf: b.Leaf, Entry: e.Fields(), TreeSize: b.TreeSize, Root: b.Root,
		Proof: b.Proof, Checkpoint: b.Checkpoint}, nil
}
