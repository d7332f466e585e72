package records

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/policy"
	"medguard/internal/retention"
)

// RetentionPeriod is how long the records of one type are kept.
type RetentionPeriod struct {
	RecordType string          `json:"record_type"`
	Class      retention.Class `json:"class"`
	Years      int             `json:"years"`
	// FloorYears is the shortest period the law allows for the type's
	// class; Default is true while no period was set.
	FloorYears int        `json:"floor_years"`
	Default    bool       `json:"default"`
	SetBy      string     `json:"set_by,omitempty"`
	SetAt      *time.Time `json:"set_at,omitempty"`
}

// configuredPeriods reads the periods set per record type.
func (s *Service) configuredPeriods(ctx context.Context) (map[string]RetentionPeriod, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT record_type, years, set_by, set_at FROM retention_periods`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]RetentionPeriod{}
	for rows.Next() {
		var p RetentionPeriod
		var at int64
		if err := rows.Scan(&p.RecordType, &p.Years, &p.SetBy, &at); err != nil {
			return nil, err
		}
		t := medguard.FromMillis(at)
		p.SetAt = &t
		out[p.RecordType] = p
	}
	return out, rows.Err()
}

// periods returns every record type's period.
func (s *Service) periods(ctx context.Context) (map[string]RetentionPeriod, error) {
	set, err := s.configuredPeriods(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]RetentionPeriod{}
	for _, t := range policy.RecordTypes {
		class := retention.TypeClass(t.Name)
		p, ok := set[t.Name]
		if !ok {
			p = RetentionPeriod{RecordType: t.Name, Years: retention.DefaultYears(t.Name), Default: true}
		}
		p.Class, p.FloorYears = class, retention.Floors[class]
		out[t.Name] = p
	}
	return out, nil
}

// RetentionPeriods lists the retention period of every record type.
func (s *Service) RetentionPeriods(ctx context.Context, call *medguard.Call) ([]RetentionPeriod, error) {
	var out []RetentionPeriod
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionRead, "retention.periods", policy.Resource{Type: "retention"}),
		func(policy.Decision) (audit.Mutation, error) {
			ps, err := s.periods(ctx)
			if err != nil {
				return nil, err
			}
			for _, t := range policy.RecordTypes {
				out = append(out, ps[t.Name])
			}
			return nil, nil
		})
	return out, err
}

// CheckRetentionChange validates a new period for a record type and says
// whether it shortens the current one (a four-eyes change).
func (s *Service) CheckRetentionChange(ctx context.Context, recordType string, years int) (shorter bool, err error) {
	if !policy.KnownRecordType(recordType) {
		return false, medguard.InvalidField("record_type", "unknown record type")
	}
	floor := retention.DefaultYears(recordType)
	if years < floor || years > 200 {
		return false, medguard.InvalidField("years", "the retention period of this record type must be %d to 200 years (the law's floor for its class)", floor)
	}
	ps, err := s.periods(ctx)
	if err != nil {
		return false, medguard.Wrap("records.CheckRetentionChange", err)
	}
	cur := ps[recordType].Years
	if years == cur {
		return false, &medguard.Error{Kind: medguard.Conflict, Field: "years", Message: "the period is already this long"}
	}
	return years < cur, nil
}

// RetentionChange is the mutation that sets a record type's period (run
// directly for a lengthening, by the approval for a shortening).
func RetentionChange(recordType string, years int, by string, at time.Time) audit.Mutation {
	return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO retention_periods (record_type, years, set_by, set_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (record_type) DO UPDATE SET years = excluded.years, set_by = excluded.set_by, set_at = excluded.set_at`,
			recordType, years, by, medguard.Millis(at))
		return err
	}
}

// LengthenRetention lengthens a record type's retention period. A
// shortening is refused here (409, code shortening_needs_approval): it is
// a four-eyes request (approvals kind retention.shorten).
func (s *Service) LengthenRetention(ctx context.Context, call *medguard.Call, recordType string, years int) (*RetentionPeriod, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *RetentionPeriod
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionManage, "retention.lengthen",
		policy.Resource{Type: "retention", ID: recordType}), func(policy.Decision) (audit.Mutation, error) {
		shorter, err := s.CheckRetentionChange(ctx, recordType, years)
		if err != nil {
			return nil, err
		}
		if shorter {
			return nil, &medguard.Error{Kind: medguard.Conflict, Field: "years", Code: "shortening_needs_approval",
				Message: "a shorter retention period needs a second person: ask for it as a four-eyes request"}
		}
		class := retention.TypeClass(recordType)
		out = &RetentionPeriod{RecordType: recordType, Class: class, Years: years, FloorYears: retention.Floors[class],
			SetBy: call.Actor.Name, SetAt: &now}
		return RetentionChange(recordType, years, call.Actor.Name, now), nil
	})
	return out, err
}

// ExpiredRecord is a record whose retention period has ended: opaque ids,
// type, department and dates only — no patient data, not even the patient.
type ExpiredRecord struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Department     string          `json:"department"`
	Class          retention.Class `json:"class"`
	AdmissionID    string          `json:"admission_id,omitempty"`
	RecordDate     time.Time       `json:"record_date"`
	RetentionYears int             `json:"retention_years"`
	RetentionEnded time.Time       `json:"retention_ended"`
	Versions       int             `json:"versions"`
	Attachments    int             `json:"attachments"`
	// HeldBy names the legal hold (holds.go) that stops the record's
	// destruction: a hold's id, or "incident <id>"; "" when none.
	HeldBy     string `json:"held_by,omitempty"`
	contentKey string
	patientID  string
}

// retentionOf computes when a record's retention ends: from the discharge
// of its admission (an inpatient record; never while the patient is still
// in) or from the record's own date. ok is false while it cannot end.
func retentionOf(typ string, admission sql.NullString, created int64, discharged sql.NullInt64,
	periods map[string]RetentionPeriod) (start time.Time, years int, ends time.Time, ok bool) {
	start = medguard.FromMillis(created)
	if admission.Valid {
		if !discharged.Valid {
			return start, 0, time.Time{}, false
		}
		start = medguard.FromMillis(discharged.Int64)
	}
	years = retention.Years(periods[typ].Years, typ, admission.Valid)
	return start, years, retention.Ends(start, years), true
}

// expired lists the records (not destroyed) whose retention ended by now,
// after the given id, at most limit (0: all of ids, when ids is set).
func (s *Service) expired(ctx context.Context, now time.Time, after string, limit int, ids []string) ([]ExpiredRecord, string, error) {
	periods, err := s.periods(ctx)
	if err != nil {
		return nil, "", err
	}
	minYears := retention.Floors[retention.Outpatient]
	q := `SELECT r.id, r.type, r.department, r.admission_id, r.created_at, a.discharged_at, COALESCE(r.content_key, ''), r.patient_id,
		(SELECT count(*) FROM record_versions v WHERE v.record_id = r.id),
		(SELECT count(*) FROM attachments x WHERE x.record_id = r.id)
		FROM records r LEFT JOIN admissions a ON a.id = r.admission_id
		WHERE r.destroyed_at IS NULL AND r.created_at <= $1 AND r.id > $2`
	args := []any{medguard.Millis(retention.Ends(now, -minYears)), after}
	if len(ids) > 0 {
		var ph []string
		for _, id := range ids {
			args = append(args, id)
			ph = append(ph, "$"+itoa(len(args)))
		}
		q += ` AND r.id IN (` + strings.Join(ph, ", ") + `)`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY r.id`, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []ExpiredRecord{}
	var next string
	for rows.Next() {
		var e ExpiredRecord
		var admission sql.NullString
		var created int64
		var discharged sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Type, &e.Department, &admission, &created, &discharged, &e.contentKey,
			&e.patientID, &e.Versions, &e.Attachments); err != nil {
			return nil, "", err
		}
		start, years, ends, ok := retentionOf(e.Type, admission, created, discharged, periods)
		if !ok || ends.After(now) {
			continue
		}
		if limit > 0 && len(out) == limit {
			next = out[len(out)-1].ID
			break
		}
		e.AdmissionID, e.Class = admission.String, retention.ClassOf(e.Type, admission.Valid)
		e.RecordDate, e.RetentionYears, e.RetentionEnded = start, years, ends
		out = append(out, e)
	}
	return out, next, rows.Err()
}

// ExpiredRecords lists the records whose retention period has ended and
// that are not destroyed yet, a page at a time (audited as
// retention.expired); a record under a legal hold names it (HeldBy).
func (s *Service) ExpiredRecords(ctx context.Context, call *medguard.Call, after string, limit int) ([]ExpiredRecord, string, error) {
	var out []ExpiredRecord
	var next string
	now := s.clock.Now()
	_, _, err := s.gate.Enter(ctx, gatePassage(call, policy.RetentionRead, "retention.expired", policy.Resource{Type: "record"}),
		func(policy.Decision) (audit.Mutation, error) {
			var err error
			out, next, err = s.expired(ctx, now, after, limit, nil)
			if err != nil {
				return nil, err
			}
			return nil, s.markHeld(ctx, out)
		})
	return out, next, err
}

// sortedUnique sorts ids and drops repeats.
func sortedUnique(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	j := 0
	for i, id := range out {
		if i == 0 || id != out[j-1] {
			out[j] = id
			j++
		}
	}
	return out[:j]
}
