package incidents

import (
	"context"

	"medguard"
	"medguard/internal/records"
)

// OpenIncidentSubjects lists the patients and records named by the
// evidence of every open incident (the audit entries attached to it: the
// patient concerned, and the record when the entry's target is one). The
// records service holds them: they cannot be destroyed while the incident
// is open (legal hold, docs/retention.md). Each piece of evidence is
// checked against its id as it is read.
func (s *Service) OpenIncidentSubjects(ctx context.Context) ([]records.IncidentSubject, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT e.incident_id, e.id, e.body, e.attached_at FROM incident_evidence e
		JOIN incidents i ON i.id = e.incident_id WHERE i.status = 'open' ORDER BY e.incident_id, e.entry_index`)
	if err != nil {
		return nil, medguard.Wrap("incidents.OpenIncidentSubjects", err)
	}
	defer rows.Close()
	var out []records.IncidentSubject
	seen := map[records.IncidentSubject]bool{}
	for rows.Next() {
		var incident, id string
		var body []byte
		var at int64
		if err := rows.Scan(&incident, &id, &body, &at); err != nil {
			return nil, medguard.Wrap("incidents.OpenIncidentSubjects", err)
		}
		e, err := parseEvidence(id, body)
		if err != nil {
			return nil, medguard.Wrap("incidents.OpenIncidentSubjects", err)
		}
		add := func(sub records.IncidentSubject) {
			key := sub
			if seen[key] {
				return
			}
			seen[key] = true
			sub.Since = medguard.FromMillis(at)
			out = append(out, sub)
		}
		if medguard.ValidID(e.Entry.PatientID) {
			add(records.IncidentSubject{IncidentID: incident, PatientID: e.Entry.PatientID})
		}
		if e.Entry.TargetType == "record" && medguard.ValidID(e.Entry.TargetID) {
			add(records.IncidentSubject{IncidentID: incident, RecordID: e.Entry.TargetID})
		}
	}
	return out, medguard.Wrap("incidents.OpenIncidentSubjects", rows.Err())
}
