// Package datause owns how patient data may be used outside the ordinary
// care relations (SPEC §8, issue 12): record-use requests (借阅/调阅) that
// open named records for a purpose and a period once the records office
// (or, for restricted records, the owning department's head) approves;
// the paper folders (纸质病案), their loans with due dates and the
// borrower's signature, and the overdue alerts; copies (复印) for patients
// and insurers after the requester's identity is checked against the
// patient's ID number; and the daily paper–electronic reconciliation.
//
// Every operation goes through the gate and into the audit log. This
// package never reads patient data: it asks the records capability for
// facts (ids, types, departments, a yes or no from a blind index), and the
// records capability asks it, at each read, for the caller's approved
// requests (GrantsOf), which the policy weighs with the time of the read.
// It must not reach into the records tables.
package datause

import (
	"context"
	"embed"
	"encoding/json"
	"sync"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the data-use tables.
func Schema() storage.Schema { return storage.NewSchema("datause", migrations, "migrations") }

// Config holds the rules of data use.
type Config struct {
	// MaxUse is the longest period of a record-use request (default 30 days).
	MaxUse time.Duration
	// MaxLoan is the longest loan of a paper folder (default 30 days).
	MaxLoan time.Duration
	// Location is the hospital's time zone: the daily reconciliation
	// runs once per day of its calendar (default UTC).
	Location *time.Location
}

func (c *Config) setDefaults() {
	if c.MaxUse == 0 {
		c.MaxUse = 30 * 24 * time.Hour
	}
	if c.MaxLoan == 0 {
		c.MaxLoan = 30 * 24 * time.Hour
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
}

// Service is the data-use capability.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	records  *records.Service
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config

	mu           sync.Mutex
	onOverdue    medguard.Hooks[OverdueLoan]
	onReconciled medguard.Hooks[DailyReconciliation]
}

// New returns the data-use service.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, rs *records.Service, id *identity.Service, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, records: rs, identity: id, clock: g.Clock(), cfg: cfg}
}

// keyName is the system data key sealing this package's text.
const keyName = "datause"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

func jsonList(xs []string) string {
	if xs == nil {
		xs = []string{}
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

func parseList(s string) []string {
	out := []string{}
	json.Unmarshal([]byte(s), &out)
	return out
}

func nullTime(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := medguard.FromMillis(*v)
	return &t
}
