package records

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/pulse"
	"medguard/internal/storage"
)

var errRecordChanged = &medguard.Error{Kind: medguard.Conflict, Field: "version",
	Message: "the record was changed meanwhile; reload and retry"}

// Record is a medical record at one version, decrypted.
type Record struct {
	ID             string            `json:"id"`
	PatientID      string            `json:"patient_id"`
	AdmissionID    string            `json:"admission_id,omitempty"`
	Type           string            `json:"type"`
	Department     string            `json:"department"`
	Classification string            `json:"classification"`
	Title          string            `json:"title"`
	Text           string            `json:"text"`
	Fields         map[string]string `json:"fields"`
	Version        int               `json:"version"`
	Author         string            `json:"author"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Attachments    []AttachmentInfo  `json:"attachments"`
	// BreakGlass is set when this read was an emergency access; it names the
	// review that will follow.
	BreakGlass *BreakGlassNotice `json:"break_glass,omitempty"`
}

// BreakGlassNotice tells the reader that their emergency access is logged
// and will be reviewed: it names the break-glass window (the event) the
// read belongs to and when the window closes.
type BreakGlassNotice struct {
	EventID      string    `json:"event_id"`
	ReviewDueAt  time.Time `json:"review_due_at"`
	WindowEndsAt time.Time `json:"window_ends_at"`
}

// NewRecord is a request to add a record (Appendix A).
type NewRecord struct {
	Type           string            `json:"type"`
	Department     string            `json:"department"`
	Title          string            `json:"title"`
	Text           string            `json:"text"`
	Classification string            `json:"classification"`
	Fields         map[string]string `json:"fields"`
	AdmissionID    string            `json:"admission_id"`
}

// RecordChanges is a new version of a record's content.
type RecordChanges struct {
	Title          *string           `json:"title"`
	Text           *string           `json:"text"`
	Fields         map[string]string `json:"fields"`
	Classification *string           `json:"classification"`
	// Version, if set, must be the record's current version (else 409).
	Version *int `json:"version"`
}

// Limits on record content.
const (
	MaxTitle      = 200
	MaxText       = 200_000
	MaxFields     = 100
	MaxFieldKey   = 64
	MaxFieldValue = 4000
)

func checkContent(title, body string, fields map[string]string) error {
	if err := required("title", title); err != nil {
		return err
	}
	if err := text("title", title, MaxTitle, false); err != nil {
		return err
	}
	if err := text("text", body, MaxText, true); err != nil {
		return err
	}
	if len(fields) > MaxFields {
		return medguard.InvalidField("fields", "at most %d fields", MaxFields)
	}
	for k, v := range fields {
		if strings.TrimSpace(k) == "" {
			return medguard.InvalidField("fields", "field names must not be empty")
		}
		if err := text("fields", k, MaxFieldKey, false); err != nil {
			return err
		}
		if err := text("fields", v, MaxFieldValue, true); err != nil {
			return err
		}
	}
	return nil
}

func checkClassification(c string) error {
	for _, x := range policy.Classifications {
		if c == x {
			return nil
		}
	}
	return medguard.InvalidField("classification", "classification must be core, important or general")
}

// CreateRecord adds a record for a patient.
func (s *Service) CreateRecord(ctx context.Context, call *medguard.Call, patientID string, in NewRecord) (*Record, error) {
	if err := s.mustExist(ctx, call, policy.RecordWrite, patientID); err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	id := medguard.NewID(now)
	in.Title, in.Department = strings.TrimSpace(in.Title), strings.TrimSpace(in.Department)
	rt, known := policy.LookupRecordType(in.Type)
	held, err := s.patientDepartments(ctx, patientID)
	if err != nil {
		return nil, medguard.Wrap("records.CreateRecord", err)
	}
	classification := in.Classification
	if classification == "" {
		classification = rt.Classification
	}
	resource := policy.Resource{Type: "record", ID: id, PatientID: patientID, Departments: []string{in.Department},
		RecordType: in.Type, HeldBy: held, Classification: classification}
	pass, err := s.passage(ctx, call, policy.RecordWrite, resource)
	if err != nil {
		return nil, err
	}
	pass.AuditAction = "record.create"
	var out *Record
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if !known {
			return nil, medguard.InvalidField("type", "unknown record type")
		}
		dept, err := s.department(ctx, "department", in.Department)
		if err != nil {
			return nil, err
		}
		if in.Classification == "" {
			in.Classification = rt.Classification
		}
		if err := checkClassification(in.Classification); err != nil {
			return nil, err
		}
		if rt.Restricted && in.Classification != policy.Core {
			return nil, medguard.InvalidField("classification", "restricted record types are always classified core")
		}
		if err := checkContent(in.Title, in.Text, in.Fields); err != nil {
			return nil, err
		}
		if in.AdmissionID != "" {
			if err := s.checkAdmission(ctx, in.AdmissionID, patientID); err != nil {
				return nil, err
			}
		}
		// The record's content has its own data key, so that destroying
		// the record at the end of its retention shreds that key alone.
		k, err := s.keys.NewDataKey(recordOwner(id))
		if err != nil {
			return nil, medguard.Wrap("records.CreateRecord", err)
		}
		title, body, fields, err := s.sealContent(k, id, 1, in.Title, in.Text, in.Fields)
		if err != nil {
			return nil, err
		}
		out = &Record{ID: id, PatientID: patientID, AdmissionID: in.AdmissionID, Type: in.Type, Department: dept,
			Classification: in.Classification, Title: in.Title, Text: in.Text, Fields: nonNil(in.Fields), Version: 1,
			Author: call.Actor.Name, CreatedAt: now, UpdatedAt: now, Attachments: []AttachmentInfo{}}
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			if err := s.keys.Save(ctx, tx, k); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO records (id, patient_id, admission_id, type, department, classification,
				version, author, created_at, updated_at, content_key) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $8, $9)`,
				id, patientID, nullable(in.AdmissionID), in.Type, dept, in.Classification, call.Actor.Name, medguard.Millis(now),
				k.Owner); err != nil {
				return err
			}
			if err := insertVersion(ctx, tx, id, 1, title, body, fields, in.Classification, call.Actor.Name, now); err != nil {
				return err
			}
			return addPatientDepartment(ctx, tx, patientID, dept, now)
		}, nil
	})
	return out, err
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// versionRow is the row key of a record version's sealed columns.
func versionRow(recordID string, version int) string {
	return recordID + "/" + strconv.Itoa(version)
}

// sealContent seals a version's title, text and structured fields.
func (s *Service) sealContent(k *keys.DataKey, recordID string, version int, title, body string, fields map[string]string) ([]byte, []byte, []byte, error) {
	row := versionRow(recordID, version)
	var sealedFields []byte
	if len(fields) > 0 {
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, nil, nil, err
		}
		sealedFields = k.Seal(loc("record_versions", row, "fields"), b)
	}
	return k.SealString(loc("record_versions", row, "title"), title), k.SealString(loc("record_versions", row, "body"), body),
		sealedFields, nil
}

func insertVersion(ctx context.Context, tx *sql.Tx, recordID string, version int, title, body, fields []byte,
	classification, author string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO record_versions (record_id, version, title, body, fields, classification,
		author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		recordID, version, title, body, fields, classification, author, medguard.Millis(now))
	return err
}

// storedRecord is a record row with one version's sealed content.
type storedRecord struct {
	id, patientID, typ, department, classification, author string
	admissionID                                            sql.NullString
	version                                                int
	created, updated                                       int64
	title, body, fields                                    []byte
	versionAuthor                                          string
	versionCreated                                         int64
	attachments                                            int
	// restricted is true for a record of a restricted department.
	restricted bool
	// contentKey is the owner of the key sealing the content (NULL: the
	// patient's, for a record made before records had their own keys);
	// destroyedAt and destructionID are set once it is destroyed.
	contentKey    sql.NullString
	destroyedAt   sql.NullInt64
	destructionID sql.NullString
}

// owner is the key owner that sealed the record's content.
func (r *storedRecord) owner() string {
	if r.contentKey.Valid {
		return r.contentKey.String
	}
	return patientOwner(r.patientID)
}

// gone is the answer for a destroyed record: 410, naming its certificate.
func (r *storedRecord) gone() error {
	if !r.destroyedAt.Valid {
		return nil
	}
	return &medguard.Error{Kind: medguard.Gone, Code: "destroyed", Ref: r.destructionID.String,
		Message: "the record was destroyed at the end of its retention period; its destruction certificate is " +
			r.destructionID.String}
}

// loadRecord reads a record with the content of the given version (0: the
// current one).
func (s *Service) loadRecord(ctx context.Context, id string, version int) (*storedRecord, error) {
	if !medguard.ValidID(id) {
		return nil, errNoRecord
	}
	var r storedRecord
	var v, restricted int
	dest := []any{&r.id, &r.patientID, &r.admissionID, &r.typ, &r.department,
		&r.classification, &r.author, &r.version, &r.created, &r.updated, &r.title, &r.body, &r.fields,
		&r.versionAuthor, &r.versionCreated, &v, &r.attachments, &restricted, &r.contentKey, &r.destroyedAt, &r.destructionID}
	// A request judged by a session in memory takes the reading that
	// confirms it here, in the same statement, before anything is decided.
	confirm := s.fresh != nil && pulse.Pending(ctx)
	reading := ""
	var size, epoch int64
	if confirm {
		reading = pulse.Query + ", "
		dest = append([]any{&size, &epoch}, dest...)
	}
	q := `SELECT ` + reading + `r.id, r.patient_id, r.admission_id, r.type, r.department, v.classification, r.author, r.version,
		r.created_at, r.updated_at, v.title, v.body, v.fields, v.author, v.created_at, v.version,
		(SELECT count(*) FROM attachments a WHERE a.record_id = r.id),
		(SELECT count(*) FROM restricted_departments x WHERE x.department = r.department),
		r.content_key, r.destroyed_at, r.destruction_id
		FROM records r JOIN record_versions v ON v.record_id = r.id AND v.version = `
	args := []any{id}
	if version == 0 {
		q += `r.version WHERE r.id = $1`
	} else {
		q += `$2 WHERE r.id = $1`
		args = append(args, version)
	}
	at := time.Now()
	err := s.db.QueryRowContext(ctx, q, args...).Scan(dest...)
	r.restricted = restricted > 0
	if confirm && err == nil {
		err = s.fresh.Offer(ctx, pulse.Reading{AuditSize: uint64(size), IdentityEpoch: epoch}, at)
	}
	if errors.Is(err, sql.ErrNoRows) {
		if confirm {
			// No row, no reading: take one before the miss is logged.
			if _, err := s.fresh.Read(ctx); err != nil {
				return nil, err
			}
		}
		return nil, errNoRecord
	}
	if err != nil {
		return nil, medguard.Wrap("records.loadRecord", err)
	}
	if version != 0 {
		r.version = v
	}
	return &r, nil
}

func (r *storedRecord) resource() policy.Resource {
	return policy.Resource{Type: "record", ID: r.id, PatientID: r.patientID, Departments: []string{r.department}, RecordType: r.typ,
		Restricted: r.restricted, Classification: r.classification}
}

// openRecord decrypts a stored record version.
func (s *Service) openRecord(ctx context.Context, r *storedRecord) (*Record, error) {
	if err := r.gone(); err != nil {
		return nil, err
	}
	owner, row := r.owner(), versionRow(r.id, r.version)
	title, err := s.keys.OpenString(ctx, owner, loc("record_versions", row, "title"), r.title)
	if err != nil {
		return nil, medguard.Wrap("records.openRecord", err)
	}
	body, err := s.keys.OpenString(ctx, owner, loc("record_versions", row, "body"), r.body)
	if err != nil {
		return nil, medguard.Wrap("records.openRecord", err)
	}
	fields := map[string]string{}
	if r.fields != nil {
		b, err := s.keys.Open(ctx, owner, loc("record_versions", row, "fields"), r.fields)
		if err != nil {
			return nil, medguard.Wrap("records.openRecord", err)
		}
		if err := json.Unmarshal(b, &fields); err != nil {
			return nil, medguard.Wrap("records.openRecord", err)
		}
	}
	return &Record{ID: r.id, PatientID: r.patientID, AdmissionID: r.admissionID.String, Type: r.typ,
		Department: r.department, Classification: r.classification, Title: title, Text: body, Fields: fields,
		Version: r.version, Author: r.versionAuthor, CreatedAt: medguard.FromMillis(r.created),
		UpdatedAt: medguard.FromMillis(r.versionCreated)}, nil
}

// GetRecord returns a record's current version. If the caller gave a
// break-glass reason and has no other relation, the read is an emergency
// access: allowed (never for restricted types), marked in the audit log, and
// queued for review by the head of the record's department.
func (s *Service) GetRecord(ctx context.Context, call *medguard.Call, id string) (*Record, error) {
	return s.readRecord(ctx, call, id, 0, policy.RecordRead)
}

// GetRecordVersion returns an earlier version of a record, for those who may
// read a record's history.
func (s *Service) GetRecordVersion(ctx context.Context, call *medguard.Call, id string, version int) (*Record, error) {
	if version < 1 {
		return nil, medguard.InvalidField("version", "version must be a positive number")
	}
	return s.readRecord(ctx, call, id, version, policy.RecordReadHistory)
}

func (s *Service) readRecord(ctx context.Context, call *medguard.Call, id string, version int, action policy.Permission) (*Record, error) {
	r, err := s.loadRecord(ctx, id, version)
	if err != nil {
		return nil, s.missing(ctx, call, action, "record", id, err)
	}
	pass, err := s.passage(ctx, call, action, r.resource())
	if err != nil {
		return nil, err
	}
	var w *window
	if action == policy.RecordRead {
		if pass, w, err = s.withWindow(ctx, pass); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *Record
	_, _, err = s.gate.Enter(ctx, pass, func(d policy.Decision) (audit.Mutation, error) {
		var err error
		if out, err = s.openRecord(ctx, r); err != nil {
			return nil, err
		}
		out.Attachments = []AttachmentInfo{}
		if r.attachments > 0 {
			if out.Attachments, err = s.attachmentsOf(ctx, r.id, r.owner()); err != nil {
				return nil, err
			}
		}
		if !d.BreakGlass {
			return nil, nil
		}
		return s.breakGlass(ctx, pass.Call, w, touch{patientID: r.patientID, action: "record.read", recordID: r.id,
			departments: []string{r.department}}, now, &out.BreakGlass)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateRecord stores a new version of a record's content. Type, patient and
// department do not change; the old versions stay.
func (s *Service) UpdateRecord(ctx context.Context, call *medguard.Call, id string, ch RecordChanges) (*Record, error) {
	r, err := s.loadRecord(ctx, id, 0)
	if err != nil {
		return nil, s.missing(ctx, call, policy.RecordWrite, "record", id, err)
	}
	pass, err := s.passage(ctx, call, policy.RecordWrite, r.resource())
	if err != nil {
		return nil, err
	}
	pass.AuditAction = "record.update"
	now := s.clock.Now().Truncate(time.Millisecond)
	var out *Record
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if ch.Version != nil && *ch.Version != r.version {
			return nil, errRecordChanged
		}
		cur, err := s.openRecord(ctx, r)
		if err != nil {
			return nil, err
		}
		if ch.Title != nil {
			cur.Title = strings.TrimSpace(*ch.Title)
		}
		if ch.Text != nil {
			cur.Text = *ch.Text
		}
		if ch.Fields != nil {
			cur.Fields = ch.Fields
		}
		if ch.Classification != nil {
			if err := checkClassification(*ch.Classification); err != nil {
				return nil, err
			}
			if policy.Restricted(r.typ) && *ch.Classification != policy.Core {
				return nil, medguard.InvalidField("classification", "restricted record types are always classified core")
			}
			cur.Classification = *ch.Classification
		}
		if err := checkContent(cur.Title, cur.Text, cur.Fields); err != nil {
			return nil, err
		}
		k, err := s.keys.Current(ctx, r.owner())
		if err != nil {
			return nil, medguard.Wrap("records.UpdateRecord", err)
		}
		next := r.version + 1
		title, body, fields, err := s.sealContent(k, id, next, cur.Title, cur.Text, cur.Fields)
		if err != nil {
			return nil, err
		}
		cur.Version, cur.Author, cur.UpdatedAt = next, call.Actor.Name, now
		if cur.Attachments, err = s.attachmentsOf(ctx, id, r.owner()); err != nil {
			return nil, err
		}
		out = cur
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			res, err := tx.ExecContext(ctx, `UPDATE records SET version = $1, classification = $2, updated_at = $3
				WHERE id = $4 AND version = $5 AND destroyed_at IS NULL`, next, cur.Classification, medguard.Millis(now), id, r.version)
			if err := storage.Affected(res, err, errRecordChanged); err != nil {
				return err
			}
			return insertVersion(ctx, tx, id, next, title, body, fields, cur.Classification, call.Actor.Name, now)
		}, nil
	})
	return out, err
}

// RecordSummary is a line of a patient's record list.
type RecordSummary struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Department     string    `json:"department"`
	Classification string    `json:"classification"`
	Title          string    `json:"title"`
	Version        int       `json:"version"`
	Author         string    `json:"author"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Destroyed, for a record destroyed at the end of its retention, names
	// when and its certificate; its title is gone with it.
	Destroyed *Destruction `json:"destroyed,omitempty"`
}

// Destruction says when a record was destroyed and which certificate
// (销毁证明) proves it.
type Destruction struct {
	At          time.Time `json:"at"`
	Certificate string    `json:"certificate"`
}

// ListRecords lists a patient's records that the caller may read, a page at
// a time. Records the caller could not open (another department's, or a
// restricted type without a relation) are left out, not even named.
func (s *Service) ListRecords(ctx context.Context, call *medguard.Call, patientID, after string, limit int) ([]RecordSummary, string, error) {
	pass, err := s.onPatient(ctx, call, policy.RecordList, "", patientID)
	if err != nil {
		return nil, "", err
	}
	pass, w, err := s.withWindow(ctx, pass)
	if err != nil {
		return nil, "", err
	}
	out := []RecordSummary{}
	var next string
	now := s.clock.Now().Truncate(time.Millisecond)
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		var glassDepts []string // departments whose records were listed by breaking the glass
		rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.patient_id, r.admission_id, r.type, r.department, v.classification,
			r.author, r.version, r.created_at, r.updated_at, v.title, v.author, v.created_at,
			(SELECT count(*) FROM restricted_departments x WHERE x.department = r.department),
			r.content_key, r.destroyed_at, r.destruction_id
			FROM records r JOIN record_versions v ON v.record_id = r.id AND v.version = r.version
			WHERE r.patient_id = $1 AND r.id > $2 ORDER BY r.id`, patientID, after)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var sr storedRecord
			var restricted int
			if err := rows.Scan(&sr.id, &sr.patientID, &sr.admissionID, &sr.typ, &sr.department, &sr.classification,
				&sr.author, &sr.version, &sr.created, &sr.updated, &sr.title, &sr.versionAuthor, &sr.versionCreated,
				&restricted, &sr.contentKey, &sr.destroyedAt, &sr.destructionID); err != nil {
				return nil, err
			}
			sr.restricted = restricted > 0
			item := pass
			item.Action, item.Resource = policy.RecordRead, sr.resource()
			d := s.gate.Check(item)
			if !d.Allowed {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			sum := RecordSummary{ID: sr.id, Type: sr.typ, Department: sr.department, Classification: sr.classification,
				Version: sr.version, Author: sr.versionAuthor, CreatedAt: medguard.FromMillis(sr.created),
				UpdatedAt: medguard.FromMillis(sr.versionCreated)}
			if sr.destroyedAt.Valid {
				sum.Destroyed = &Destruction{At: medguard.FromMillis(sr.destroyedAt.Int64), Certificate: sr.destructionID.String}
			} else if sum.Title, err = s.keys.OpenString(ctx, sr.owner(), loc("record_versions", versionRow(sr.id, sr.version), "title"), sr.title); err != nil {
				return nil, err
			}
			out = append(out, sum)
			if d.BreakGlass && !slices.Contains(glassDepts, sr.department) {
				glassDepts = append(glassDepts, sr.department)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(glassDepts) == 0 {
			return nil, nil
		}
		var notice *BreakGlassNotice
		return s.breakGlass(ctx, pass.Call, w, touch{patientID: patientID, action: "record.list", departments: glassDepts}, now, &notice)
	})
	return out, next, err
}

// VersionInfo describes one version of a record.
type VersionInfo struct {
	Version        int       `json:"version"`
	Classification string    `json:"classification"`
	Author         string    `json:"author"`
	CreatedAt      time.Time `json:"created_at"`
}

// ListVersions lists a record's versions, for those who may read its history.
func (s *Service) ListVersions(ctx context.Context, call *medguard.Call, id string) ([]VersionInfo, error) {
	r, err := s.loadRecord(ctx, id, 0)
	if err != nil {
		return nil, s.missing(ctx, call, policy.RecordReadHistory, "record", id, err)
	}
	pass, err := s.passage(ctx, call, policy.RecordReadHistory, r.resource())
	if err != nil {
		return nil, err
	}
	pass.AuditAction = "record.versions"
	out := []VersionInfo{}
	_, _, err = s.gate.Enter(ctx, pass, func(policy.Decision) (audit.Mutation, error) {
		if err := r.gone(); err != nil {
			return nil, err
		}
		rows, err := s.db.QueryContext(ctx, `SELECT version, classification, author, created_at FROM record_versions
			WHERE record_id = $1 ORDER BY version`, id)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var v VersionInfo
			var created int64
			if err := rows.Scan(&v.Version, &v.Classification, &v.Author, &created); err != nil {
				return nil, err
			}
			v.CreatedAt = medguard.FromMillis(created)
			out = append(out, v)
		}
		return nil, rows.Err()
	})
	return out, err
}
