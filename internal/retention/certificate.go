package retention

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"medguard/internal/audit"
)

// Format names the certificate's layout; it is the signed note's first line.
const Format = "medguard destruction certificate v1"

// Methods of destruction, per record.
const (
	// CryptoShred: the record's own data key was destroyed (and its sealed
	// content erased): no copy of the database can open it once every
	// backup holding the key has expired.
	CryptoShred = "crypto_shred"
	// Erase: a record sealed before records had their own keys (under its
	// patient's key, which the patient's other records still need): its
	// sealed content was erased from the database; copies made before hold
	// it until they expire, like the keys of a shredded record.
	Erase = "erase"
)

// Certificate is a destruction certificate (销毁证明): what was destroyed,
// when, on whose request and approval, which keys were shredded, and the
// date by which every backup holding them has expired. It names records by
// their opaque ids, types, departments and dates only: no patient data.
type Certificate struct {
	Format      string    `json:"format"`
	ID          string    `json:"id"`
	Origin      string    `json:"origin"`
	DestroyedAt time.Time `json:"destroyed_at"`
	// ApprovalID is the four-eyes request; RequestedBy asked, ApprovedBy
	// (another person) approved.
	ApprovalID  string    `json:"approval_id"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ApprovedBy  string    `json:"approved_by"`
	// AuditIndex is the audit log entry of the approval that ran it.
	AuditIndex uint64            `json:"audit_index"`
	Records    []DestroyedRecord `json:"records"`
	// Counts are the records destroyed per record type.
	Counts map[string]int `json:"counts"`
	// KeysShredded are the data keys destroyed ("record:<id>").
	KeysShredded []string `json:"keys_shredded"`
	// BackupRetentionDays is the backup schedule's retention; every backup
	// holding the shredded keys has expired by BackupsExpireBy.
	BackupRetentionDays int       `json:"backup_retention_days"`
	BackupsExpireBy     time.Time `json:"backups_expire_by"`
}

// DestroyedRecord is one record a certificate names.
type DestroyedRecord struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Department string `json:"department"`
	Class      Class  `json:"class"`
	// RecordDate is when its retention started counting (the discharge of
	// its admission, or the record's own date); RetentionEnded when it
	// ended, after RetentionYears.
	RecordDate     time.Time `json:"record_date"`
	RetentionYears int       `json:"retention_years"`
	RetentionEnded time.Time `json:"retention_ended"`
	Versions       int       `json:"versions"`
	Attachments    int       `json:"attachments"`
	Method         string    `json:"method"`
	KeyID          string    `json:"key_id,omitempty"`
}

// Signed is a certificate as downloaded and as the ledger keeps it: the
// certificate, the signed note over it (C2SP signed note by the audit log's
// Ed25519 key) and the verifier key that signed it.
type Signed struct {
	Certificate Certificate `json:"certificate"`
	Note        string      `json:"signed_note"`
	VerifierKey string      `json:"verifier_key"`
}

// Sign signs a certificate with the audit log's key.
func Sign(s *audit.Signer, c Certificate) (Signed, error) {
	c.Format = Format
	n, err := s.SignDocument(Format, c)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Certificate: c, Note: n, VerifierKey: s.VerifierKey()}, nil
}

// ErrBadCertificate is returned for a certificate that does not verify.
var ErrBadCertificate = errors.New("retention: the destruction certificate does not verify")

// Parse reads a downloaded certificate without verifying it; unknown fields
// are refused (a field added after signing is a change).
func Parse(data []byte) (Signed, error) {
	var s Signed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Signed{}, fmt.Errorf("%w: not a certificate file: %v", ErrBadCertificate, err)
	}
	return s, nil
}

// Verify checks a certificate file offline: the signed note verifies with
// verifierKey (the one the file names if ""), and says exactly what the
// certificate says. It returns the certificate.
func Verify(data []byte, verifierKey string) (*Certificate, error) {
	s, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if verifierKey == "" {
		verifierKey = s.VerifierKey
	}
	switch err := audit.OpenDocument(s.Note, verifierKey, Format, s.Certificate); {
	case errors.Is(err, audit.ErrDocumentKind):
		return nil, fmt.Errorf("%w: the signed note is not a destruction certificate", ErrBadCertificate)
	case errors.Is(err, audit.ErrDocumentChanged):
		return nil, fmt.Errorf("%w: the certificate differs from what was signed", ErrBadCertificate)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	return &s.Certificate, nil
}
