package deidjobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"medguard/internal/audit"
)

// ManifestFormat names the manifest's layout; it is the signed note's
// first line.
const ManifestFormat = "medguard de-identification manifest v1"

// Manifest says what a job made and on whose word (SPEC §8): the rules
// per field, the anonymity reached, the rows suppressed and the loss, who
// asked, who approved, who receives it, and the SHA-256 of each output
// file. It names people by username and holds no patient data.
type Manifest struct {
	Format      string    `json:"format"`
	JobID       string    `json:"job_id"`
	ApprovalID  string    `json:"approval_id"`
	Origin      string    `json:"origin"`
	Purpose     string    `json:"purpose"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ApprovedBy  string    `json:"approved_by"`
	ApprovedAt  time.Time `json:"approved_at"`
	Recipient   string    `json:"recipient"`
	AgreementID string    `json:"agreement_id,omitempty"`
	Scope       Scope     `json:"scope"`
	// PatientIDsNamed is how many patients the request named (their ids
	// are in the approval, not here).
	PatientIDsNamed int `json:"patient_ids_named,omitempty"`
	// Fields are the rules per output field; fields not named were left out.
	Fields map[string]string `json:"fields"`
	// DateShift says how dates were shifted: per patient, by an offset
	// from a secret the job drew and discarded.
	DateShift string `json:"date_shift,omitempty"`
	// Anonymity is the k-anonymity (and l-diversity) result, if asked.
	Anonymity *Anonymity `json:"anonymity,omitempty"`
	// PatientsRead and RecordsRead are what the job read; RecordsWithheld
	// the records of the scope the policy did not open to it (restricted
	// ones); PatientsOut and RowsOut what the output holds.
	PatientsRead    int          `json:"patients_read"`
	RecordsRead     int          `json:"records_read"`
	RecordsWithheld int          `json:"records_withheld"`
	PatientsOut     int          `json:"patients_out"`
	RowsOut         int          `json:"rows_out"`
	Outputs         []OutputFile `json:"outputs"`
	MaxDownloads    int          `json:"max_downloads"`
	ExpiresAt       time.Time    `json:"expires_at"`
	CreatedAt       time.Time    `json:"created_at"`
}

// Anonymity is what k-anonymity reached.
type Anonymity struct {
	QuasiIdentifiers []string       `json:"quasi_identifiers"`
	KRequested       int            `json:"k_requested"`
	KReached         int            `json:"k_reached"`
	LDiverse         *LDiverse      `json:"l_diverse,omitempty"`
	LReached         int            `json:"l_reached,omitempty"`
	SuppressionLimit float64        `json:"suppression_limit"`
	Suppressed       int            `json:"suppressed"`
	Transformation   map[string]int `json:"transformation"`
	Loss             float64        `json:"loss"`
	LossMetric       string         `json:"loss_metric"`
	Classes          int            `json:"classes"`
	NodesChecked     int            `json:"nodes_checked"`
}

// OutputFile is one output file: its format, size and checksum.
type OutputFile struct {
	Format string `json:"format"`
	Rows   int    `json:"rows"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// SignedManifest is a manifest as the API shows it and as it is
// downloaded: the manifest, the signed note over it (C2SP signed note by
// the audit log's Ed25519 key, as destruction certificates are) and the
// verifier key that signed it.
type SignedManifest struct {
	Manifest    Manifest `json:"manifest"`
	Note        string   `json:"signed_note"`
	VerifierKey string   `json:"verifier_key"`
}

// SignManifest signs a manifest with the audit log's key.
func SignManifest(s *audit.Signer, m Manifest) (SignedManifest, error) {
	m.Format = ManifestFormat
	m.Origin = s.Origin()
	n, err := s.SignDocument(ManifestFormat, m)
	if err != nil {
		return SignedManifest{}, err
	}
	return SignedManifest{Manifest: m, Note: n, VerifierKey: s.VerifierKey()}, nil
}

// ErrBadManifest is returned for a manifest that does not verify.
var ErrBadManifest = errors.New("deidjobs: the manifest does not verify")

// VerifyManifest checks a manifest file offline (the signed manifest as
// GET /api/v1/deid/jobs/{id}/manifest gives it, or a job as GET
// /api/v1/deid/jobs/{id} gives it): the signed note verifies with
// verifierKey (the one the file names if ""), and says exactly what the
// manifest says.
func VerifyManifest(data []byte, verifierKey string) (*Manifest, error) {
	var s SignedManifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || s.Note == "" {
		var j struct {
			Manifest *SignedManifest `json:"manifest"`
		}
		if json.Unmarshal(data, &j) != nil || j.Manifest == nil {
			return nil, fmt.Errorf("%w: not a manifest file", ErrBadManifest)
		}
		s = *j.Manifest
	}
	if verifierKey == "" {
		verifierKey = s.VerifierKey
	}
	switch err := audit.OpenDocument(s.Note, verifierKey, ManifestFormat, s.Manifest); {
	case errors.Is(err, audit.ErrDocumentKind):
		return nil, fmt.Errorf("%w: the signed note is not a de-identification manifest", ErrBadManifest)
	case errors.Is(err, audit.ErrDocumentChanged):
		return nil, fmt.Errorf("%w: the manifest differs from what was signed", ErrBadManifest)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	return &s.Manifest, nil
}
