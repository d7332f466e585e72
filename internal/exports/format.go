package exports

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"slices"
	"time"

	"medguard/internal/records"
)

// The formats of an export's content.
const (
	JSONLines = "jsonl" // one JSON object per patient, per line
	CSV       = "csv"   // one row per record (patient columns repeated)
	FHIR      = "fhir"  // one FHIR R4 Bundle of Patient and DocumentReference
)

// Formats lists the formats an export may ask for.
var Formats = []string{JSONLines, CSV, FHIR}

// The fields an export may hold: the patient's identifying fields and the
// records' content. Ids, record types, departments, classifications and
// times are always in it.
var (
	PatientFields = []string{"name", "gender", "birth_date", "id_number", "phone", "address", "mrn"}
	RecordFields  = []string{"title", "text", "fields"}
)

// AllFields lists every field, in the order of the CSV columns.
var AllFields = append(slices.Clone(PatientFields), RecordFields...)

// patientRow is a patient's fields in the export, as chosen.
func patientRow(p *records.Patient, fields []string) map[string]string {
	all := map[string]string{"name": p.Name, "gender": p.Gender, "birth_date": p.BirthDate, "id_number": p.IDNumber,
		"phone": p.Phone, "address": p.Address, "mrn": p.MRN}
	out := map[string]string{"id": p.ID}
	for _, f := range PatientFields {
		if slices.Contains(fields, f) {
			out[f] = all[f]
		}
	}
	return out
}

// recordRow is a record in the export, with the chosen content fields.
func recordRow(r *records.Record, fields []string) map[string]any {
	out := map[string]any{"id": r.ID, "type": r.Type, "department": r.Department, "classification": r.Classification,
		"version": r.Version, "created_at": r.CreatedAt.UTC().Format(time.RFC3339), "updated_at": r.UpdatedAt.UTC().Format(time.RFC3339)}
	if slices.Contains(fields, "title") {
		out["title"] = r.Title
	}
	if slices.Contains(fields, "text") {
		out["text"] = r.Text
	}
	if slices.Contains(fields, "fields") {
		out["fields"] = r.Fields
	}
	return out
}

// render writes the content of an export and counts its rows (JSON lines:
// patients; CSV: data rows; FHIR: bundle entries).
func render(data []records.ExportedPatient, fields []string, format string, now time.Time) ([]byte, int, error) {
	var buf bytes.Buffer
	switch format {
	case JSONLines:
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for i := range data {
			recs := make([]map[string]any, len(data[i].Records))
			for j := range data[i].Records {
				recs[j] = recordRow(&data[i].Records[j], fields)
			}
			if err := enc.Encode(map[string]any{"patient": patientRow(data[i].Patient, fields), "records": recs}); err != nil {
				return nil, 0, err
			}
		}
		return buf.Bytes(), len(data), nil
	case CSV:
		w := csv.NewWriter(&buf)
		head := []string{"patient_id"}
		for _, f := range PatientFields {
			if slices.Contains(fields, f) {
				head = append(head, f)
			}
		}
		head = append(head, "record_id", "record_type", "department", "classification", "created_at")
		for _, f := range RecordFields {
			if slices.Contains(fields, f) {
				head = append(head, f)
			}
		}
		w.Write(head)
		rows := 0
		for i := range data {
			p := patientRow(data[i].Patient, fields)
			lead := []string{p["id"]}
			for _, f := range PatientFields {
				if slices.Contains(fields, f) {
					lead = append(lead, p[f])
				}
			}
			if len(data[i].Records) == 0 {
				w.Write(append(slices.Clone(lead), make([]string, len(head)-len(lead))...))
				rows++
			}
			for j := range data[i].Records {
				r := &data[i].Records[j]
				row := append(slices.Clone(lead), r.ID, r.Type, r.Department, r.Classification, r.CreatedAt.UTC().Format(time.RFC3339))
				for _, f := range RecordFields {
					if !slices.Contains(fields, f) {
						continue
					}
					switch f {
					case "title":
						row = append(row, r.Title)
					case "text":
						row = append(row, r.Text)
					case "fields":
						b, _ := json.Marshal(r.Fields)
						row = append(row, string(b))
					}
				}
				w.Write(row)
				rows++
			}
		}
		w.Flush()
		return buf.Bytes(), rows, w.Error()
	case FHIR:
		b, n, err := bundle(data, fields, now)
		return b, n, err
	}
	return nil, 0, nil
}

// bundle makes a FHIR R4 Bundle (type collection) of a Patient and its
// DocumentReferences (the record's text as an inline attachment) per
// patient.
func bundle(data []records.ExportedPatient, fields []string, now time.Time) ([]byte, int, error) {
	type entry struct {
		FullURL  string         `json:"fullUrl"`
		Resource map[string]any `json:"resource"`
	}
	var entries []entry
	for i := range data {
		p := data[i].Patient
		pr := map[string]any{"resourceType": "Patient", "id": p.ID}
		if slices.Contains(fields, "name") {
			pr["name"] = []map[string]any{{"text": p.Name}}
		}
		if slices.Contains(fields, "gender") && p.Gender != "" {
			pr["gender"] = p.Gender
		}
		if slices.Contains(fields, "birth_date") && p.BirthDate != "" {
			pr["birthDate"] = p.BirthDate
		}
		var ids []map[string]any
		if slices.Contains(fields, "id_number") && p.IDNumber != "" {
			ids = append(ids, map[string]any{"system": "urn:oid:2.16.156.10011.1.3", "value": p.IDNumber}) // 居民身份证号
		}
		if slices.Contains(fields, "mrn") && p.MRN != "" {
			ids = append(ids, map[string]any{"type": map[string]any{"coding": []map[string]string{{
				"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}}}, "value": p.MRN})
		}
		if ids != nil {
			pr["identifier"] = ids
		}
		if slices.Contains(fields, "phone") && p.Phone != "" {
			pr["telecom"] = []map[string]string{{"system": "phone", "value": p.Phone}}
		}
		if slices.Contains(fields, "address") && p.Address != "" {
			pr["address"] = []map[string]string{{"text": p.Address}}
		}
		entries = append(entries, entry{FullURL: "urn:uuid:patient-" + p.ID, Resource: pr})
		for j := range data[i].Records {
			r := &data[i].Records[j]
			dr := map[string]any{"resourceType": "DocumentReference", "id": r.ID, "status": "current",
				"type":          map[string]any{"text": r.Type},
				"subject":       map[string]string{"reference": "urn:uuid:patient-" + p.ID},
				"date":          r.CreatedAt.UTC().Format(time.RFC3339),
				"custodian":     map[string]string{"display": r.Department},
				"securityLabel": []map[string]any{{"text": r.Classification}}}
			if slices.Contains(fields, "title") {
				dr["description"] = r.Title
			}
			if slices.Contains(fields, "text") {
				dr["content"] = []map[string]any{{"attachment": map[string]string{"contentType": "text/plain; charset=utf-8",
					"data": base64.StdEncoding.EncodeToString([]byte(r.Text)), "title": r.Title}}}
			} else {
				dr["content"] = []map[string]any{{"attachment": map[string]string{"contentType": "text/plain; charset=utf-8"}}}
			}
			entries = append(entries, entry{FullURL: "urn:uuid:record-" + r.ID, Resource: dr})
		}
	}
	if entries == nil {
		entries = []entry{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(map[string]any{"resourceType": "Bundle", "type": "collection",
		"timestamp": now.UTC().Format(time.RFC3339), "entry": entries})
	return buf.Bytes(), len(entries), err
}
