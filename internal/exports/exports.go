// Package exports owns how patient records leave the archive as files
// (SPEC §8, issue 12): an export of one patient's records, allowed to
// whoever may export (record.export) and relates to the patient; an export
// of more than one patient, which is a four-eyes request (approvals kind
// exports.bulk) that medical affairs (医务科, export.approve) decides — a
// security officer too when it holds no core data — never the requester
// nor an account the requester shaped. The patients are fixed when the
// request is filed, and the approver sees them.
//
// The file is built when the requester asks for it: the records are read
// through the records capability, one record.export entry per patient in
// the audit log; the content (JSON lines, CSV or a FHIR R4 Bundle) is
// sealed with AES-256-GCM or SM4-GCM under a fresh random key shown once to
// the requester and never kept; only the ciphertext is stored, downloadable
// a limited number of times until it expires, every download logged, and
// deleted after the last. The manifest (patients, records, fields,
// approval, cipher, SHA-256 of the ciphertext, row counts; ids only) is
// stored, shown, and logged as an export.manifest entry.
//
// Anything else — more than one patient without an approved request, the
// file of a request not yet approved, someone else's export — the policy
// refuses with deny.export_not_approved, and the bulk_export detection
// rule freezes the account on that refusal.
//
// This package never reads patient data itself, and never reaches into
// the records' or the approvals' tables.
package exports

import (
	"context"
	"embed"
	"encoding/json"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the exports' tables.
func Schema() storage.Schema { return storage.NewSchema("exports", migrations, "migrations") }

// Config holds the limits of exports.
type Config struct {
	// TTL is how long a built file may be downloaded (default 7 days).
	TTL time.Duration
	// MaxDownloads is how many times a built file may be downloaded
	// (default 3).
	MaxDownloads int
	// MaxPatients is the most patients one export holds (default 1000).
	MaxPatients int
	// MaxBytes bounds an export's content before encryption (default 64
	// MiB): the file is built and sealed in memory, in one AEAD operation.
	MaxBytes int
}

func (c *Config) setDefaults() {
	if c.TTL == 0 {
		c.TTL = 7 * 24 * time.Hour
	}
	if c.MaxDownloads == 0 {
		c.MaxDownloads = 3
	}
	if c.MaxPatients == 0 {
		c.MaxPatients = records.MaxExportCandidates
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 64 << 20
	}
}

// Service is the exports capability.
type Service struct {
	db        *storage.DB
	gate      *gate.Gate
	keys      *keys.Keyring
	records   *records.Service
	approvals *approvals.Service
	clock     medguard.Clock
	cfg       Config
}

// New returns the exports service and registers the exports.bulk kind of
// four-eyes request with the approvals service.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, rs *records.Service, as *approvals.Service, cfg Config) *Service {
	cfg.setDefaults()
	s := &Service{db: db, gate: g, keys: kr, records: rs, approvals: as, clock: g.Clock(), cfg: cfg}
	as.Register(s.bulkKind())
	return s
}

// keyName is the system data key sealing this package's text.
const keyName = "exports"

func (s *Service) seal(ctx context.Context, id, column, text string) ([]byte, error) {
	k, err := s.keys.SystemKey(ctx, keyName)
	if err != nil {
		return nil, medguard.Wrap("exports.seal", err)
	}
	return k.SealString(keys.Location{Table: "exports", Row: id, Column: column}, text), nil
}

func (s *Service) open(ctx context.Context, id, column string, ct []byte) (string, error) {
	if ct == nil {
		return "", nil
	}
	v, err := s.keys.OpenString(ctx, "system:"+keyName, keys.Location{Table: "exports", Row: id, Column: column}, ct)
	return v, medguard.Wrap("exports.open", err)
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
