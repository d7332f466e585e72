// Package inspections owns the security office's daily inspection (巡查,
// seed 003 §4.1.1, SPEC §10, issue 13): the checklist template, versioned
// and edited by the security office (the archive room's temperature,
// 22 ± 2 °C, and humidity, 45–60 %; fire, anti-theft and access devices;
// storage devices; the server's load and free space and the backups'
// status, which medguard fills in itself); one inspection per hospital
// day, with its readings against their ranges, signed by its inspector and
// countersigned by a reviewer who is someone else; the days on which no
// inspection was recorded; and the weekly summary.
//
// A reading out of its range (or a check that failed) is announced to the
// OnOutOfRange hooks (the detection engine raises an alert), and a later
// reading of the same item back in range to the OnBackInRange hooks (the
// alert is resolved); a hospital day that ends without an inspection is
// announced once to the OnMissed hooks by CheckMissed, which Run calls
// periodically. Days are the hospital's calendar days, in Config.Zone.
//
// Every operation goes through the gate and into the audit log. A signed
// inspection is never changed: the only write after the inspector's
// signature is the reviewer's, once. This package holds no patient data,
// and reads nothing of other packages' tables: the server's state comes
// through the Host and Backups interfaces.
package inspections

import (
	"context"
	"embed"
	"sync"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the inspections' tables.
func Schema() storage.Schema { return storage.NewSchema("inspections", migrations, "migrations") }

// DefaultZone is the hospital's time zone when none is configured: China
// Standard Time, which has had no daylight saving since 1991.
var DefaultZone = time.FixedZone("CST", 8*60*60)

// Config holds the rules of the daily inspection.
type Config struct {
	// Zone is the hospital's time zone, whose calendar days are the
	// inspection days (default DefaultZone).
	Zone *time.Location
	// MissedLookback is how many days back CheckMissed looks for days
	// without an inspection (default 35): a server stopped for longer
	// announces the last ones only; the weekly summary counts them all.
	MissedLookback int
}

func (c *Config) setDefaults() {
	if c.Zone == nil {
		c.Zone = DefaultZone
	}
	if c.MissedLookback <= 0 {
		c.MissedLookback = 35
	}
}

// Service is the inspections capability.
type Service struct {
	db    *storage.DB
	gate  *gate.Gate
	keys  *keys.Keyring
	clock medguard.Clock
	cfg   Config

	mu         sync.Mutex
	host       Host
	backups    Backups
	onOut      medguard.Hooks[OutOfRange]
	onBack     medguard.Hooks[BackInRange]
	onMissed   medguard.Hooks[MissedDay]
	onReviewed medguard.Hooks[Inspection]
}

// New returns the inspections service. The system items read nothing
// until SetSystem gives them a host and the backups.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, clock: g.Clock(), cfg: cfg}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

// SetSystem gives the system items what they read: the host medguard runs
// on and the backups' health (either may be nil: the item then says it
// could not be read, and the inspector checks it by hand). It returns the
// previous pair, for a caller that lends the service a simulated server
// (the demo) and gives the real one back.
func (s *Service) SetSystem(h Host, b Backups) (Host, Backups) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ph, pb := s.host, s.backups
	s.host, s.backups = h, b
	return ph, pb
}

func (s *Service) system() (Host, Backups) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host, s.backups
}

// OnOutOfRange adds a hook told of every reading out of its range (and
// every check that failed) of an inspection just signed (the detection
// engine raises an alert).
func (s *Service) OnOutOfRange(hook func(context.Context, OutOfRange)) { s.onOut.Add(hook) }

// OnBackInRange adds a hook told of every item whose reading in an
// inspection just signed is within its range (the detection engine
// resolves the item's earlier alerts).
func (s *Service) OnBackInRange(hook func(context.Context, BackInRange)) { s.onBack.Add(hook) }

// OnMissed adds a hook told once of every hospital day that ended without
// an inspection (the detection engine raises an alert).
func (s *Service) OnMissed(hook func(context.Context, MissedDay)) { s.onMissed.Add(hook) }

// OnReviewed adds a hook told of every inspection countersigned.
func (s *Service) OnReviewed(hook func(context.Context, Inspection)) { s.onReviewed.Add(hook) }

// keyName is the system data key sealing this package's notes.
const keyName = "inspections"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// MaxNote is the longest note, in characters.
const MaxNote = 500

// system is medguard itself, announcing missed days.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}
