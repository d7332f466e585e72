package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/keys"
	"medguard/internal/policy"
)

// Legal holds (诉讼保全 / 封存): while a hold is active, the records it covers
// cannot be destroyed — a destruction request naming one is refused (409,
// code legal_hold, naming the hold) and a pending one cannot be approved.
// A hold covers every record of one patient, or named records. Placing one
// is a protective act one person may do (retention.hold); lifting it is a
// four-eyes request (approvals kind retention.hold_lift) that a security
// officer other than the requester and the person who placed it approves.
// The records and patients named by the evidence of an open incident are
// held as well, for as long as the incident is open.

// Sources of a hold.
const (
	HoldPlaced   = "placed"   // placed by a person (retention.hold)
	HoldIncident = "incident" // named by the evidence of an open incident
)

// Hold is a legal hold as shown. A hold from an incident has no id of its
// own: it is the incident's, and ends when the incident is closed.
type Hold struct {
	ID           string     `json:"id,omitempty"`
	Source       string     `json:"source"`
	IncidentID   string     `json:"incident_id,omitempty"`
	PatientID    string     `json:"patient_id,omitempty"`
	RecordIDs    []string   `json:"record_ids,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	Reference    string     `json:"reference,omitempty"`
	PlacedBy     string     `json:"placed_by,omitempty"`
	PlacedAt     *time.Time `json:"placed_at,omitempty"`
	Active       bool       `json:"active"`
	LiftedBy     string     `json:"lifted_by,omitempty"`
	LiftedAt     *time.Time `json:"lifted_at,omitempty"`
	LiftApproval string     `json:"lift_approval,omitempty"`

	placedByID string
}

// Name is how a refusal names the hold: its id, or its incident's.
func (h Hold) Name() string {
	if h.Source == HoldIncident {
		return "incident " + h.IncidentID
	}
	return h.ID
}

// NewHold is a request to place a legal hold: on one patient's records
// (patient_id) or on named records (record_ids), never both, with a reason
// and a reference (an incident, a dispute or court case number).
type NewHold struct {
	PatientID string   `json:"patient_id,omitempty"`
	RecordIDs []string `json:"record_ids,omitempty"`
	Reason    string   `json:"reason"`
	Reference string   `json:"reference"`
}

// IncidentSubject is a patient or a record named by the evidence of an
// open incident (an audit entry attached to it).
type IncidentSubject struct {
	IncidentID string
	PatientID  string
	RecordID   string
	Since      time.Time
}

// IncidentHolds is what the service needs of incidents: the patients and
// records named by the evidence of every open incident.
type IncidentHolds interface {
	OpenIncidentSubjects(ctx context.Context) ([]IncidentSubject, error)
}

// SetIncidentHolds gives the service the incidents whose subjects are held.
func (s *Service) SetIncidentHolds(h IncidentHolds) { s.incidents = h }

// MaxHoldRecords bounds the records one hold names.
const MaxHoldRecords = MaxDestroy

const holdKey = "legal_holds"

func holdLoc(id, column string) keys.Location { return loc("legal_holds", id, column) }

// PlaceHold places a legal hold, at once (audited retention.hold).
func (s *Service) PlaceHold(ctx context.Context, call *medguard.Call, in NewHold) (*Hold, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	h := &Hold{ID: medguard.NewID(now), Source: HoldPlaced, PatientID: in.PatientID, RecordIDs: sortedUnique(in.RecordIDs),
		Reason: strings.TrimSpace(in.Reason), Reference: strings.TrimSpace(in.Reference), PlacedBy: call.Actor.Name,
		PlacedAt: &now, Active: true}
	if len(h.RecordIDs) == 0 {
		h.RecordIDs = nil
	}
	res := policy.Resource{Type: "legal_hold", ID: h.ID}
	if medguard.ValidID(in.PatientID) {
		res.PatientID = in.PatientID
	}
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionHold, "retention.hold", res),
		func(policy.Decision) (audit.Mutation, error) {
			if err := s.checkHold(ctx, h); err != nil {
				return nil, err
			}
			k, err := s.keys.SystemKey(ctx, holdKey)
			if err != nil {
				return nil, err
			}
			reason, ref := k.SealString(holdLoc(h.ID, "reason"), h.Reason), k.SealString(holdLoc(h.ID, "reference"), h.Reference)
			return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
				var patient any
				if h.PatientID != "" {
					patient = h.PatientID
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (id, patient_id, reason, reference, placed_by,
					placed_by_name, placed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, h.ID, patient, reason, ref,
					call.Actor.ID, call.Actor.Name, medguard.Millis(now)); err != nil {
					return err
				}
				for _, r := range h.RecordIDs {
					if _, err := tx.ExecContext(ctx, `INSERT INTO legal_hold_records (hold_id, record_id) VALUES ($1, $2)`,
						h.ID, r); err != nil {
						return err
					}
				}
				return nil
			}, nil
		})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// checkHold validates a new hold: one patient or 1 to MaxHoldRecords
// records, each existing; a reason and a reference.
func (s *Service) checkHold(ctx context.Context, h *Hold) error {
	switch {
	case h.PatientID != "" && len(h.RecordIDs) > 0:
		return medguard.InvalidField("patient_id", "name a patient or records, not both")
	case h.PatientID == "" && len(h.RecordIDs) == 0:
		return medguard.InvalidField("patient_id", "name the patient (patient_id) or the records (record_ids) to hold")
	case len(h.RecordIDs) > MaxHoldRecords:
		return medguard.InvalidField("record_ids", "name at most %d records", MaxHoldRecords)
	}
	var err error
	if h.Reason, err = medguard.Text("reason", h.Reason, 500, true); err != nil {
		return err
	}
	if h.Reference, err = medguard.Line("reference", h.Reference, 200, true); err != nil {
		return err // the incident, dispute or court case the hold is for
	}
	if h.PatientID != "" {
		ok, err := s.patientExists(ctx, h.PatientID)
		if err != nil {
			return err
		}
		if !ok {
			return medguard.InvalidField("patient_id", "no patient has this id")
		}
		return nil
	}
	for _, id := range h.RecordIDs {
		if !medguard.ValidID(id) {
			return medguard.InvalidField("record_ids", "%q is not a record id", id)
		}
		var destroyed sql.NullInt64
		err := s.db.QueryRowContext(ctx, `SELECT destroyed_at FROM records WHERE id = $1`, id).Scan(&destroyed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return medguard.InvalidField("record_ids", "no record has the id %s", id)
		case err != nil:
			return err
		case destroyed.Valid:
			return &medguard.Error{Kind: medguard.Conflict, Field: "record_ids", Code: "destroyed",
				Message: fmt.Sprintf("record %s is destroyed already", id)}
		}
	}
	return nil
}

// Holds lists the legal holds, newest first: status active (the default:
// placed holds not lifted, and the holds of open incidents), lifted, or
// all. Audited as retention.holds.
func (s *Service) Holds(ctx context.Context, call *medguard.Call, status string) ([]Hold, error) {
	out := []Hold{}
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionRead, "retention.holds", policy.Resource{Type: "legal_hold"}),
		func(policy.Decision) (audit.Mutation, error) {
			if status == "" {
				status = "active"
			}
			if status != "active" && status != "lifted" && status != "all" {
				return nil, medguard.InvalidField("status", "status must be active, lifted or all")
			}
			placed, err := s.placedHolds(ctx, status, "")
			if err != nil {
				return nil, err
			}
			if status != "lifted" {
				inc, err := s.incidentHolds(ctx)
				if err != nil {
					return nil, err
				}
				out = append(out, inc...)
			}
			out = append(out, placed...)
			return nil, nil
		})
	return out, err
}

// placedHolds reads the holds placed by people: active, lifted or all, or
// the one with id.
func (s *Service) placedHolds(ctx context.Context, status, id string) ([]Hold, error) {
	q := `SELECT id, COALESCE(patient_id, ''), reason, reference, placed_by, placed_by_name, placed_at,
		COALESCE(lifted_by_name, ''), lifted_at, COALESCE(lift_approval, '') FROM legal_holds WHERE ($1 = '' OR id = $1)`
	switch status {
	case "active":
		q += ` AND lifted_at IS NULL`
	case "lifted":
		q += ` AND lifted_at IS NOT NULL`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id DESC`, id)
	if err != nil {
		return nil, err
	}
	var out []Hold
	type sealed struct{ reason, ref []byte }
	var text []sealed
	for rows.Next() {
		h := Hold{Source: HoldPlaced}
		var t sealed
		var placed int64
		var lifted sql.NullInt64
		if err := rows.Scan(&h.ID, &h.PatientID, &t.reason, &t.ref, &h.placedByID, &h.PlacedBy, &placed, &h.LiftedBy,
			&lifted, &h.LiftApproval); err != nil {
			rows.Close()
			return nil, err
		}
		pt := medguard.FromMillis(placed)
		h.PlacedAt, h.Active = &pt, !lifted.Valid
		if lifted.Valid {
			lt := medguard.FromMillis(lifted.Int64)
			h.LiftedAt = &lt
		}
		out = append(out, h)
		text = append(text, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		h := &out[i]
		if h.Reason, err = s.keys.OpenString(ctx, "system:"+holdKey, holdLoc(h.ID, "reason"), text[i].reason); err != nil {
			return nil, err
		}
		if h.Reference, err = s.keys.OpenString(ctx, "system:"+holdKey, holdLoc(h.ID, "reference"), text[i].ref); err != nil {
			return nil, err
		}
		if h.PatientID != "" {
			continue
		}
		if h.RecordIDs, err = s.holdRecords(ctx, h.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) holdRecords(ctx context.Context, holdID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT record_id FROM legal_hold_records WHERE hold_id = $1 ORDER BY record_id`, holdID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// incidentHolds groups the subjects of open incidents into holds: one per
// incident and patient, and one per incident for the records it names.
func (s *Service) incidentHolds(ctx context.Context) ([]Hold, error) {
	if s.incidents == nil {
		return nil, nil
	}
	subjects, err := s.incidents.OpenIncidentSubjects(ctx)
	if err != nil {
		return nil, err
	}
	type key struct{ incident, patient string }
	by := map[key]*Hold{}
	var order []key
	for _, sub := range subjects {
		k := key{sub.IncidentID, sub.PatientID}
		h := by[k]
		if h == nil {
			since := sub.Since
			h = &Hold{Source: HoldIncident, IncidentID: sub.IncidentID, PatientID: sub.PatientID, PlacedBy: "system",
				PlacedAt: &since, Active: true, Reference: "incident " + sub.IncidentID}
			by[k] = h
			order = append(order, k)
		}
		if sub.PatientID == "" && !slices.Contains(h.RecordIDs, sub.RecordID) {
			h.RecordIDs = append(h.RecordIDs, sub.RecordID)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].incident != order[j].incident {
			return order[i].incident > order[j].incident
		}
		return order[i].patient < order[j].patient
	})
	var out []Hold
	for _, k := range order {
		h := by[k]
		sort.Strings(h.RecordIDs)
		out = append(out, *h)
	}
	return out, nil
}

// holdIndex says which active hold covers a patient's records or a record.
type holdIndex struct {
	patients map[string]Hold
	records  map[string]Hold
}

func (x holdIndex) of(recordID, patientID string) (Hold, bool) {
	if h, ok := x.records[recordID]; ok {
		return h, true
	}
	h, ok := x.patients[patientID]
	return h, ok
}

// activeHolds indexes every active hold, placed or from an incident.
func (s *Service) activeHolds(ctx context.Context) (holdIndex, error) {
	x := holdIndex{patients: map[string]Hold{}, records: map[string]Hold{}}
	placed, err := s.placedHolds(ctx, "active", "")
	if err != nil {
		return x, err
	}
	inc, err := s.incidentHolds(ctx)
	if err != nil {
		return x, err
	}
	for _, h := range append(inc, placed...) {
		if h.PatientID != "" {
			if _, ok := x.patients[h.PatientID]; !ok {
				x.patients[h.PatientID] = h
			}
		}
		for _, r := range h.RecordIDs {
			if _, ok := x.records[r]; !ok {
				x.records[r] = h
			}
		}
	}
	return x, nil
}

// refuseHeld returns the 409 for the first of the records under an active
// hold, naming the hold (code legal_hold), or nil.
func (s *Service) refuseHeld(ctx context.Context, found []ExpiredRecord) error {
	x, err := s.activeHolds(ctx)
	if err != nil {
		return err
	}
	for _, e := range found {
		if h, ok := x.of(e.ID, e.patientID); ok {
			return &medguard.Error{Kind: medguard.Conflict, Field: "payload.record_ids", Code: "legal_hold", Ref: h.Name(),
				Message: fmt.Sprintf("record %s is under legal hold (%s): it cannot be destroyed until the hold is lifted", e.ID, h.Name())}
		}
	}
	return nil
}

// markHeld sets HeldBy on the records under an active hold.
func (s *Service) markHeld(ctx context.Context, es []ExpiredRecord) error {
	if len(es) == 0 {
		return nil
	}
	x, err := s.activeHolds(ctx)
	if err != nil {
		return err
	}
	for i := range es {
		if h, ok := x.of(es[i].ID, es[i].patientID); ok {
			es[i].HeldBy = h.Name()
		}
	}
	return nil
}

var errNoHold = &medguard.Error{Kind: medguard.NotFound, Message: "no such legal hold"}

// CheckHoldLift validates a request to lift a hold: it exists and is
// active. It returns the hold.
func (s *Service) CheckHoldLift(ctx context.Context, holdID string) (*Hold, error) {
	if !medguard.ValidID(holdID) {
		return nil, medguard.InvalidField("payload.hold_id", "no legal hold has this id")
	}
	hs, err := s.placedHolds(ctx, "all", holdID)
	if err != nil {
		return nil, medguard.Wrap("records.CheckHoldLift", err)
	}
	if len(hs) == 0 {
		return nil, medguard.InvalidField("payload.hold_id", "no legal hold has this id")
	}
	if !hs[0].Active {
		return nil, &medguard.Error{Kind: medguard.Conflict, Field: "payload.hold_id", Code: "lifted",
			Message: "the legal hold is lifted already"}
	}
	return &hs[0], nil
}

// RuleOwnHold refuses the person who placed a legal hold a decision on
// lifting it.
const RuleOwnHold = "deny.own_hold"

// PlacedByID is the user id of the person who placed the hold ("" for an
// incident's hold).
func (h *Hold) PlacedByID() string { return h.placedByID }

// LiftHold returns the mutation that lifts an approved hold, re-checked:
// it is still active, and the approver is not the person who placed it
// (403, rule deny.own_hold).
func (s *Service) LiftHold(ctx context.Context, holdID, approvalID string, approver *medguard.Call) (audit.Mutation, error) {
	h, err := s.CheckHoldLift(ctx, holdID)
	if err != nil {
		return nil, err
	}
	if h.placedByID == approver.Actor.ID {
		return nil, &medguard.Error{Kind: medguard.Forbidden, Rule: RuleOwnHold,
			Message: "the person who placed a legal hold may not approve its lifting"}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		res, err := tx.ExecContext(ctx, `UPDATE legal_holds SET lifted_by_name = $1, lifted_at = $2, lift_approval = $3
			WHERE id = $4 AND lifted_at IS NULL`, approver.Actor.Name, medguard.Millis(now), approvalID, holdID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &medguard.Error{Kind: medguard.Conflict, Message: "the legal hold is lifted already"}
		}
		return nil
	}, nil
}
