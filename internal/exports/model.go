package exports

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/records"
	"medguard/internal/storage"
)

// The states of an export. Refused, Cancelled and Expired come from the
// four-eyes request an export waits on (never stored here); Exhausted and
// Expired are shown for a built file whose downloads are used up or whose
// time has passed (its ciphertext is then deleted).
const (
	Pending   = "pending"  // waiting for the four-eyes decision
	Approved  = "approved" // may be built by its requester
	Ready     = "ready"    // built: the file may be downloaded
	Exhausted = "exhausted"
	Expired   = "expired"
	Refused   = "refused"
	Cancelled = "cancelled"
)

// Export is an export as the API shows it: ids, codes and counts; the
// reason (sealed at rest) only to its requester and approvers.
type Export struct {
	ID           string     `json:"id"`
	Requester    string     `json:"requester"`
	RequesterID  string     `json:"requester_id"`
	Department   string     `json:"department,omitempty"`
	ApprovalID   string     `json:"approval_id,omitempty"`
	Status       string     `json:"status"`
	Patients     int        `json:"patients"`
	PatientIDs   []string   `json:"patient_ids"`
	Records      int        `json:"records"`
	RecordTypes  []string   `json:"record_types"`
	Fields       []string   `json:"fields"`
	Format       string     `json:"format"`
	Cipher       string     `json:"cipher"`
	Purpose      string     `json:"purpose"`
	Reason       string     `json:"reason,omitempty"`
	ContainsCore bool       `json:"contains_core"`
	CreatedAt    time.Time  `json:"created_at"`
	ApprovedBy   string     `json:"approved_by,omitempty"`
	ApprovedAt   *time.Time `json:"approved_at,omitempty"`
	BuiltAt      *time.Time `json:"built_at,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	Downloads    int        `json:"downloads"`
	MaxDownloads int        `json:"max_downloads"`
	SHA256       string     `json:"sha256,omitempty"`
	Size         int64      `json:"size,omitempty"`
	// Manifest is the built file's manifest; ManifestIndex the index of
	// its export.manifest entry in the audit log.
	Manifest      *Manifest `json:"manifest,omitempty"`
	ManifestIndex *uint64   `json:"manifest_index,omitempty"`
	// Key opens the file: shown once, in the answer that built it, and
	// never stored.
	Key string `json:"key,omitempty"`
	// Available says the file may be downloaded now.
	Available bool `json:"available"`

	plan         []records.ExportPatientFact
	sealedReason []byte
	hasFile      bool
}

// Manifest says what a built file holds: ids, codes, counts, the approval,
// the cipher and the SHA-256 of the ciphertext — never patient data.
type Manifest struct {
	ExportID     string            `json:"export_id"`
	ApprovalID   string            `json:"approval_id,omitempty"`
	ApprovedBy   string            `json:"approved_by,omitempty"`
	Requester    string            `json:"requester"`
	Purpose      string            `json:"purpose"`
	Format       string            `json:"format"`
	Cipher       string            `json:"cipher"`
	Fields       []string          `json:"fields"`
	RecordTypes  []string          `json:"record_types"`
	Patients     []ManifestPatient `json:"patients"`
	PatientCount int               `json:"patient_count"`
	RecordCount  int               `json:"record_count"`
	Withheld     int               `json:"records_withheld"`
	Rows         int               `json:"rows"`
	PlainBytes   int               `json:"plain_bytes"`
	SHA256       string            `json:"sha256"`
	Size         int64             `json:"size"`
	BuiltAt      time.Time         `json:"built_at"`
	ExpiresAt    time.Time         `json:"expires_at"`
	MaxDownloads int               `json:"max_downloads"`
}

// ManifestPatient is one patient in a manifest: their id and their
// records' ids.
type ManifestPatient struct {
	PatientID string   `json:"patient_id"`
	RecordIDs []string `json:"record_ids"`
	Withheld  int      `json:"records_withheld,omitempty"`
}

var errNoExport = &medguard.Error{Kind: medguard.NotFound, Message: "no such export"}

const columns = `id, requester_id, requester, requester_department, COALESCE(approval_id, ''), status, patients, plan,
	record_types, fields, format, cipher, purpose, contains_core, created_at, COALESCE(approved_by, ''), approved_at,
	built_at, expires_at, max_downloads, downloads, manifest, COALESCE(sha256, ''), COALESCE(size, 0), manifest_index,
	reason, ciphertext IS NOT NULL`

func scan(sc interface{ Scan(...any) error }) (*Export, error) {
	var e Export
	var planText, types, fields string
	var core int
	var created int64
	var approvedAt, builtAt, expiresAt, index sql.NullInt64
	var manifest sql.NullString
	err := sc.Scan(&e.ID, &e.RequesterID, &e.Requester, &e.Department, &e.ApprovalID, &e.Status, &e.Patients, &planText,
		&types, &fields, &e.Format, &e.Cipher, &e.Purpose, &core, &created, &e.ApprovedBy, &approvedAt, &builtAt, &expiresAt,
		&e.MaxDownloads, &e.Downloads, &manifest, &e.SHA256, &e.Size, &index, &e.sealedReason, &e.hasFile)
	if err != nil {
		return nil, err
	}
	e.ContainsCore, e.CreatedAt = core != 0, medguard.FromMillis(created)
	json.Unmarshal([]byte(planText), &e.plan)
	json.Unmarshal([]byte(types), &e.RecordTypes)
	json.Unmarshal([]byte(fields), &e.Fields)
	e.PatientIDs = make([]string, len(e.plan))
	for i, p := range e.plan {
		e.PatientIDs[i] = p.PatientID
		e.Records += len(p.Records)
	}
	at := func(v sql.NullInt64) *time.Time {
		if !v.Valid {
			return nil
		}
		t := medguard.FromMillis(v.Int64)
		return &t
	}
	e.ApprovedAt, e.BuiltAt, e.ExpiresAt = at(approvedAt), at(builtAt), at(expiresAt)
	if manifest.Valid {
		e.Manifest = &Manifest{}
		json.Unmarshal([]byte(manifest.String), e.Manifest)
	}
	if index.Valid {
		i := uint64(index.Int64)
		e.ManifestIndex = &i
	}
	return &e, nil
}

func (s *Service) load(ctx context.Context, id string) (*Export, error) {
	if !medguard.ValidID(id) {
		return nil, errNoExport
	}
	e, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM exports WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoExport
	}
	return e, medguard.Wrap("exports.load", err)
}

// show works out the state shown (from the request an export waits on,
// the file's downloads and expiry) and, if withReason, opens the reason.
func (s *Service) show(ctx context.Context, e *Export, withReason bool) error {
	now := s.clock.Now()
	switch {
	case e.Status == Pending && e.ApprovalID != "":
		sts, err := s.approvals.StatusOf(ctx, e.ApprovalID)
		if err != nil {
			return err
		}
		switch sts[e.ApprovalID] {
		case approvals.Refused:
			e.Status = Refused
		case approvals.Cancelled:
			e.Status = Cancelled
		case approvals.Expired:
			e.Status = Expired
		}
	case e.Status == Ready && e.ExpiresAt != nil && !now.Before(*e.ExpiresAt):
		e.Status = Expired
	case e.Status == Ready && e.Downloads >= e.MaxDownloads:
		e.Status = Exhausted
	}
	e.Available = e.Status == Ready && e.hasFile
	if withReason {
		r, err := s.open(ctx, e.ID, "reason", e.sealedReason)
		if err != nil {
			return err
		}
		e.Reason = r
	}
	return nil
}

// insert stores a new export (a request waiting on approval, or a
// one-patient export with its file).
func (s *Service) insert(ctx context.Context, tx *sql.Tx, e *Export) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO exports (id, requester_id, requester, requester_department, approval_id, status,
		patients, plan, record_types, fields, format, cipher, purpose, contains_core, created_at, max_downloads, downloads, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, $17)`,
		e.ID, e.RequesterID, e.Requester, e.Department, storage.NullString(e.ApprovalID), e.Status, e.Patients,
		jsonText(e.plan), jsonText(e.RecordTypes), jsonText(e.Fields), e.Format, e.Cipher, e.Purpose, boolInt(e.ContainsCore),
		medguard.Millis(e.CreatedAt), e.MaxDownloads, e.sealedReason)
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// storageAffected turns an update that changed nothing into a conflict.
func storageAffected(res sql.Result, err error) error {
	return storage.Affected(res, err, &medguard.Error{Kind: medguard.Conflict, Message: "the export changed meanwhile; reload it"})
}
