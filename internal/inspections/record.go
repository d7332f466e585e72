package inspections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// Who gave a reading: the inspector, or medguard itself.
const (
	SourceInspector = "inspector"
	SourceSystem    = "system"
)

// The states of an inspection: signed by its inspector and waiting for
// the reviewer's countersignature, or signed by both (and closed).
const (
	AwaitingReview = "awaiting_review"
	Signed         = "signed"
)

// Reading is one item of an inspection as it was read: the item's label,
// unit and range as the checklist had them then, the value (a reading)
// or whether it was in order (a check), whether it is out of range, who
// gave it, the figures medguard read for a system item, and a note.
type Reading struct {
	Key   string   `json:"key"`
	Label string   `json:"label"`
	Kind  string   `json:"kind"`
	Unit  string   `json:"unit,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	Value *float64 `json:"value,omitempty"`
	OK    *bool    `json:"ok,omitempty"`
	// OutOfRange is true for a reading outside its range or a check not in
	// order.
	OutOfRange bool   `json:"out_of_range"`
	Source     string `json:"source"`
	// Facts are the figures medguard read for a system item (FactLoad15,
	// FactFreeBytes…), or why it could not (FactUnreadable, FactBackups 0).
	Facts map[string]float64 `json:"facts,omitempty"`
	Note  string             `json:"note,omitempty"`
}

func (r Reading) item() Item {
	return Item{Key: r.Key, Label: r.Label, Kind: r.Kind, Unit: r.Unit, Min: r.Min, Max: r.Max}
}

// Range says the reading's range in figures (Item.Range).
func (r Reading) Range() string { return r.item().Range() }

// Shown says the reading in figures: "25.3 °C"; "" for a check.
func (r Reading) Shown() string {
	if r.Value == nil {
		return ""
	}
	if r.Unit == "" {
		return Figure(*r.Value)
	}
	return Figure(*r.Value) + " " + r.Unit
}

func (r Reading) outOfRange() bool {
	switch r.Kind {
	case KindReading:
		return r.Value != nil && !r.item().InRange(*r.Value)
	case KindCheck:
		return r.OK != nil && !*r.OK
	}
	return false
}

// Inspection is one day's inspection: its readings, the inspector's
// signature and, once given, the reviewer's.
type Inspection struct {
	ID string `json:"id"`
	// Day is the hospital's calendar day (YYYY-MM-DD) it was made on.
	Day             string    `json:"day"`
	TemplateVersion int       `json:"template_version"`
	Readings        []Reading `json:"readings"`
	// OutOfRange counts the readings out of range.
	OutOfRange  int        `json:"out_of_range"`
	Note        string     `json:"note,omitempty"`
	Inspector   string     `json:"inspector"`
	InspectedAt time.Time  `json:"inspected_at"`
	Reviewer    string     `json:"reviewer,omitempty"`
	ReviewedAt  *time.Time `json:"reviewed_at"`
	ReviewNote  string     `json:"review_note,omitempty"`
	// Status is AwaitingReview or Signed.
	Status string `json:"status"`

	inspectorID string
}

// ReadingInput is the inspector's reading of one item: a value for a
// reading, ok for a check, and a note (required when a check is not in
// order: what is wrong).
type ReadingInput struct {
	Key   string   `json:"key"`
	Value *float64 `json:"value,omitempty"`
	OK    *bool    `json:"ok,omitempty"`
	Note  string   `json:"note,omitempty"`
}

// NewInspection is the day's inspection as the inspector signs it: a
// reading of every item of the checklist in force but those medguard
// fills in itself, and a note.
type NewInspection struct {
	Readings []ReadingInput `json:"readings"`
	Note     string         `json:"note,omitempty"`
}

// Review is the reviewer's countersignature, with a note (what was done
// about a reading out of range, say).
type Review struct {
	Note string `json:"note,omitempty"`
}

// OutOfRange is a reading out of its range, or a check not in order, of
// an inspection just signed.
type OutOfRange struct {
	InspectionID string
	Day          string
	Reading      Reading
}

// BackInRange is an item whose reading, in an inspection just signed, is
// within its range again.
type BackInRange struct {
	InspectionID string
	Day          string
	Key          string
}

var errNoInspection = &medguard.Error{Kind: medguard.NotFound, Message: "no such inspection"}

// readings checks the inspector's readings against the checklist and adds
// medguard's own: every item read once, values within bounds, a note when
// a check is not in order.
func (s *Service) readings(ctx context.Context, tpl *Template, in []ReadingInput) ([]Reading, error) {
	given := map[string]ReadingInput{}
	for _, r := range in {
		if _, ok := tpl.Item(r.Key); !ok {
			return nil, medguard.InvalidField("readings", "the checklist in force (version %d) has no item %q", tpl.Version, truncate(r.Key, 32))
		}
		if _, dup := given[r.Key]; dup {
			return nil, medguard.InvalidField("readings."+r.Key, "%s is read twice", r.Key)
		}
		given[r.Key] = r
	}
	out := make([]Reading, 0, len(tpl.Items))
	for _, it := range tpl.Items {
		field := "readings." + it.Key
		in, ok := given[it.Key]
		r := Reading{Key: it.Key, Label: it.Label, Kind: it.Kind, Unit: it.Unit, Min: it.Min, Max: it.Max, Source: SourceInspector}
		if it.System {
			r = s.systemReading(ctx, it)
		}
		if r.Source == SourceSystem && (in.Value != nil || in.OK != nil) {
			return nil, medguard.InvalidField(field, "medguard fills %s in itself", it.Key)
		}
		if r.Source == SourceInspector {
			switch {
			case !ok:
				return nil, medguard.InvalidField(field, "%s is required", it.Key)
			case it.Kind == KindReading && in.Value == nil:
				return nil, medguard.InvalidField(field+".value", "%s needs a value in %s", it.Key, it.Unit)
			case it.Kind == KindReading && (math.IsNaN(*in.Value) || math.IsInf(*in.Value, 0) || math.Abs(*in.Value) > bound):
				return nil, medguard.InvalidField(field+".value", "the value of %s is not a plausible number", it.Key)
			case it.Kind == KindReading && in.OK != nil:
				return nil, medguard.InvalidField(field+".ok", "%s is a reading: give a value", it.Key)
			case it.Kind == KindCheck && in.OK == nil:
				return nil, medguard.InvalidField(field+".ok", "%s needs ok: true or false", it.Key)
			case it.Kind == KindCheck && in.Value != nil:
				return nil, medguard.InvalidField(field+".value", "%s is a check: give ok", it.Key)
			}
			r.Value, r.OK = in.Value, in.OK
			if r.Value != nil {
				v := *r.Value
				r.Value = &v
			}
		}
		var err error
		if r.Note, err = medguard.Text(field+".note", in.Note, MaxNote, false); err != nil {
			return nil, err
		}
		r.OutOfRange = r.outOfRange()
		if r.Kind == KindCheck && r.OutOfRange && r.Source == SourceInspector && r.Note == "" {
			return nil, medguard.InvalidField(field+".note", "say what is wrong with %s", it.Key)
		}
		out = append(out, r)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// Record records and signs, as its inspector, the inspection of today —
// the hospital's calendar day now (inspection.perform). There is one
// inspection a day: a second answers 409. Readings out of range are passed
// to the OnOutOfRange hooks, readings in range to OnBackInRange.
func (s *Service) Record(ctx context.Context, call *medguard.Call, in NewInspection) (*Inspection, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	day := s.dayOf(now)
	tpl, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := s.readings(ctx, tpl, in.Readings)
	if err != nil {
		return nil, err
	}
	if in.Note, err = medguard.Text("note", in.Note, MaxNote, false); err != nil {
		return nil, err
	}
	id := medguard.NewID(now)
	ins := &Inspection{ID: id, Day: day.String(), TemplateVersion: tpl.Version, Readings: rs, Note: in.Note,
		Inspector: call.Actor.Name, InspectedAt: now, Status: AwaitingReview, inspectorID: call.Actor.ID}
	notes := map[string]string{}
	if in.Note != "" {
		notes[""] = in.Note
	}
	stored := make([]Reading, len(rs))
	for i, r := range rs {
		if r.OutOfRange {
			ins.OutOfRange++
		}
		if r.Note != "" {
			notes[r.Key] = r.Note
		}
		stored[i] = r
		stored[i].Note = ""
	}
	raw, _ := json.Marshal(stored)
	var sealed []byte
	if len(notes) > 0 {
		b, _ := json.Marshal(notes)
		if sealed, err = s.seal(ctx, "inspections", id, "notes", string(b)); err != nil {
			return nil, err
		}
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionPerform, AuditAction: "inspection.record",
		Resource: policy.Resource{Type: "inspection", ID: id}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO inspections (id, day, template_version, readings, out_of_range, notes,
				inspector_id, inspector, inspected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				id, ins.Day, tpl.Version, string(raw), ins.OutOfRange, sealed, call.Actor.ID, call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Code: "inspected_already",
					Message: "today's inspection was recorded already: it is signed and cannot be changed"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.OutOfRange {
			s.onOut.Tell(ctx, OutOfRange{InspectionID: id, Day: ins.Day, Reading: r})
		} else if r.Value != nil || r.OK != nil {
			s.onBack.Tell(ctx, BackInRange{InspectionID: id, Day: ins.Day, Key: r.Key})
		}
	}
	return ins, nil
}

const inspectionColumns = `id, day, template_version, readings, out_of_range, notes, inspector_id, inspector, inspected_at,
	reviewer, reviewed_at, review_note`

// scan reads an inspection row and opens its notes.
func (s *Service) scan(ctx context.Context, sc interface{ Scan(...any) error }) (*Inspection, error) {
	var in Inspection
	var raw string
	var notes, review []byte
	var inspected int64
	var reviewer sql.NullString
	var reviewed sql.NullInt64
	if err := sc.Scan(&in.ID, &in.Day, &in.TemplateVersion, &raw, &in.OutOfRange, &notes, &in.inspectorID, &in.Inspector, &inspected,
		&reviewer, &reviewed, &review); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(raw), &in.Readings); err != nil {
		return nil, err
	}
	in.InspectedAt, in.Status = medguard.FromMillis(inspected), AwaitingReview
	if reviewed.Valid {
		at := medguard.FromMillis(reviewed.Int64)
		in.Reviewer, in.ReviewedAt, in.Status = reviewer.String, &at, Signed
	}
	if notes != nil {
		text, err := s.open(ctx, "inspections", in.ID, "notes", notes)
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		json.Unmarshal([]byte(text), &m)
		in.Note = m[""]
		for i := range in.Readings {
			in.Readings[i].Note = m[in.Readings[i].Key]
		}
	}
	var err error
	if in.ReviewNote, err = s.open(ctx, "inspections", in.ID, "review_note", review); err != nil {
		return nil, err
	}
	return &in, nil
}

// inspection reads an inspection by id; nil when there is none.
func (s *Service) inspection(ctx context.Context, id string) (*Inspection, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	in, err := s.scan(ctx, s.db.QueryRowContext(ctx, `SELECT `+inspectionColumns+` FROM inspections WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return in, medguard.Wrap("inspections.inspection", err)
}

// load reads an inspection for an operation; an attempt on a missing one
// is logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Inspection, error) {
	in, err := s.inspection(ctx, id)
	if err != nil {
		return nil, err
	}
	if in == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "inspection", ID: id}}, errNoInspection)
	}
	return in, nil
}

// Get returns an inspection with its readings and signatures
// (inspection.read).
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Inspection, error) {
	in, err := s.load(ctx, call, policy.InspectionRead, "inspection.read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionRead, AuditAction: "inspection.read",
		Resource: policy.Resource{Type: "inspection", ID: in.ID}}, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
	if err != nil {
		return nil, err
	}
	return in, nil
}

// Countersign signs an inspection as its reviewer (inspection.review):
// never its inspector (deny.same_signatory), once (a second answers 409).
// From then on the inspection is closed.
func (s *Service) Countersign(ctx context.Context, call *medguard.Call, id string, in Review) (*Inspection, error) {
	var err error
	if in.Note, err = medguard.Text("note", in.Note, MaxNote, false); err != nil {
		return nil, err
	}
	ins, err := s.load(ctx, call, policy.InspectionReview, "inspection.review", id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var sealed []byte
	if in.Note != "" {
		if sealed, err = s.seal(ctx, "inspections", ins.ID, "review_note", in.Note); err != nil {
			return nil, err
		}
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.InspectionReview, AuditAction: "inspection.review",
		Resource: policy.Resource{Type: "inspection", ID: ins.ID, RequestedBy: ins.inspectorID}}, func(policy.Decision) (audit.Mutation, error) {
		if ins.ReviewedAt != nil {
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "signed_already", Message: "the inspection is signed by its reviewer already"}
		}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE inspections SET reviewer_id = $1, reviewer = $2, reviewed_at = $3, review_note = $4
				WHERE id = $5 AND reviewed_at IS NULL AND inspector_id <> $1`, call.Actor.ID, call.Actor.Name, medguard.Millis(now), sealed, ins.ID)
			return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Code: "signed_already",
				Message: "the inspection is signed by its reviewer already"})
		}, nil
	})
	if err != nil {
		return nil, err
	}
	ins.Reviewer, ins.ReviewedAt, ins.ReviewNote, ins.Status = call.Actor.Name, &now, in.Note, Signed
	s.onReviewed.Tell(ctx, *ins)
	return ins, nil
}
