// Package media owns the removable media register (移动存储介质登记, seed
// 003, issue 13): the hospital's USB drives, portable disks, optical
// discs and memory cards, each labelled with an id and recorded as
// encrypted or not; their loans, each with two signatures — the lender's
// (a custodian with media.manage, who records the loan) and then the
// borrower's own (the named borrower signs for the device with their
// account; only then is it handed over and the due date runs) — returned
// to a custodian other than the borrower, and alerted once when overdue;
// their erasure (method, operator, witness) after every return, before the
// device is lent again; their disposal, before a witness.
//
// An unencrypted device may be registered — the register must know every
// device, a confiscated one too — but is flagged and never lent.
//
// Every operation goes through the gate and into the audit log. This
// package holds no patient data and reads no other package's tables: it
// finds people through the identity capability.
package media

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the media register's tables.
func Schema() storage.Schema { return storage.NewSchema("media", migrations, "migrations") }

// Staff finds members of staff by username (consumer side:
// *identity.Service).
type Staff interface {
	UserByUsername(ctx context.Context, username string) (*identity.User, error)
}

// Config holds the rules of the register.
type Config struct {
	// MaxLoan is the longest a device is lent for (default 30 days).
	MaxLoan time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxLoan <= 0 {
		c.MaxLoan = 30 * 24 * time.Hour
	}
}

// Service is the removable media register.
type Service struct {
	db    *storage.DB
	gate  *gate.Gate
	keys  *keys.Keyring
	staff Staff
	clock medguard.Clock
	cfg   Config

	mu         sync.Mutex
	onOverdue  medguard.Hooks[OverdueLoan]
	onReturned medguard.Hooks[Loan]
}

// New returns the register.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, staff Staff, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, staff: staff, clock: g.Clock(), cfg: cfg}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

// keyName is the system data key sealing this package's text.
const keyName = "media"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	if text == "" {
		return nil, nil
	}
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// The kinds of removable media.
const (
	USBDrive     = "usb_drive"
	PortableDisk = "portable_disk"
	OpticalDisc  = "optical_disc"
	MemoryCard   = "memory_card"
	OtherKind    = "other"
)

// Kinds lists the kinds of removable media.
var Kinds = []string{USBDrive, PortableDisk, OpticalDisc, MemoryCard, OtherKind}

// The states of a device: in the store, ready to lend; lent (its loan
// waiting for the borrower's signature, or out); returned and waiting for
// its erasure; disposed of.
const (
	Available         = "available"
	Lent              = "lent"
	AwaitingErasure   = "awaiting_erasure"
	Disposed          = "disposed"
	OverdueFilter     = "overdue"
	UnencryptedFilter = "unencrypted"
)

// Statuses lists the states of a device.
var Statuses = []string{Available, Lent, AwaitingErasure, Disposed}

// Device is a device of the register, with its loan under way, its last
// erasure and its disposal; Loans and Erasures (its history) are given by
// Get.
type Device struct {
	ID string `json:"id"`
	// Label is the id on the device's label (资产标签), e.g. "YD-2026-007".
	Label      string `json:"label"`
	Kind       string `json:"kind"`
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	CapacityGB int    `json:"capacity_gb"`
	// Encrypted is false for a device without encryption: it is flagged
	// and never lent. Encryption says how (e.g. "硬件 AES-256").
	Encrypted    bool      `json:"encrypted"`
	Encryption   string    `json:"encryption,omitempty"`
	Status       string    `json:"status"`
	RegisteredBy string    `json:"registered_by"`
	RegisteredAt time.Time `json:"registered_at"`
	// Loan is the loan under way (awaiting the borrower or out), if any.
	Loan        *Loan     `json:"loan"`
	LastErasure *Erasure  `json:"last_erasure"`
	Disposal    *Disposal `json:"disposal"`
	Loans       []Loan    `json:"loans,omitempty"`
	Erasures    []Erasure `json:"erasures,omitempty"`
}

// NewDevice registers a device.
type NewDevice struct {
	Label      string `json:"label"`
	Kind       string `json:"kind"`
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	CapacityGB int    `json:"capacity_gb"`
	Encrypted  bool   `json:"encrypted"`
	Encryption string `json:"encryption,omitempty"`
}

var labelPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{2,31}$`)

// MaxNote is the longest note or purpose, in characters.
const MaxNote = 500

var errNoDevice = &medguard.Error{Kind: medguard.NotFound, Message: "no such device"}

// Register records a device (media.manage). An unencrypted one is
// registered, flagged, and never lent.
func (s *Service) Register(ctx context.Context, call *medguard.Call, in NewDevice) (*Device, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	in.Label = strings.ToUpper(strings.TrimSpace(in.Label))
	if !labelPattern.MatchString(in.Label) {
		return nil, medguard.InvalidField("label", "label must be 3 to 32 capital letters, digits or '-' (the id on the device's label)")
	}
	if !slices.Contains(Kinds, in.Kind) {
		return nil, medguard.InvalidField("kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	}
	var err error
	if in.Model, err = medguard.Line("model", in.Model, 64, true); err != nil {
		return nil, err
	}
	if in.Serial, err = medguard.Line("serial", in.Serial, 64, true); err != nil {
		return nil, err
	}
	if in.CapacityGB < 1 || in.CapacityGB > 1_000_000 {
		return nil, medguard.InvalidField("capacity_gb", "capacity_gb must be between 1 and 1000000")
	}
	if in.Encryption, err = medguard.Line("encryption", in.Encryption, 64, in.Encrypted); err != nil {
		return nil, err
	}
	if !in.Encrypted && in.Encryption != "" {
		return nil, medguard.InvalidField("encryption", "an unencrypted device has no encryption method")
	}
	id := medguard.NewID(now)
	d := &Device{ID: id, Label: in.Label, Kind: in.Kind, Model: in.Model, Serial: in.Serial, CapacityGB: in.CapacityGB,
		Encrypted: in.Encrypted, Encryption: in.Encryption, Status: Available, RegisteredBy: call.Actor.Name, RegisteredAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaManage, AuditAction: "media.register",
		Resource: policy.Resource{Type: "media", ID: id}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO media_devices (id, label, kind, model, serial, capacity_gb, encrypted, encryption,
				status, registered_by, registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				id, d.Label, d.Kind, d.Model, d.Serial, d.CapacityGB, boolInt(d.Encrypted), d.Encryption, d.Status, call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "label", Message: "another device has this label"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

const deviceColumns = `id, label, kind, model, serial, capacity_gb, encrypted, encryption, status, registered_by, registered_at,
	disposal_method, disposed_by, disposed_at, disposal_witness, disposal_note`

func (s *Service) scanDevice(ctx context.Context, sc interface{ Scan(...any) error }) (*Device, error) {
	var d Device
	var at int64
	var method, by, witness sql.NullString
	var disposed sql.NullInt64
	var dnote []byte
	var encrypted int
	if err := sc.Scan(&d.ID, &d.Label, &d.Kind, &d.Model, &d.Serial, &d.CapacityGB, &encrypted, &d.Encryption, &d.Status,
		&d.RegisteredBy, &at, &method, &by, &disposed, &witness, &dnote); err != nil {
		return nil, err
	}
	d.Encrypted = encrypted != 0
	d.RegisteredAt = medguard.FromMillis(at)
	if disposed.Valid {
		n, err := s.open(ctx, "media_devices", d.ID, "disposal_note", dnote)
		if err != nil {
			return nil, err
		}
		d.Disposal = &Disposal{Method: method.String, DisposedBy: by.String, DisposedAt: medguard.FromMillis(disposed.Int64),
			Witness: witness.String, Note: n}
	}
	return &d, nil
}

// device reads a device with its loan under way and last erasure; nil
// when there is none.
func (s *Service) device(ctx context.Context, id string, now time.Time) (*Device, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	d, err := s.scanDevice(ctx, s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM media_devices WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("media.device", err)
	}
	return d, s.complete(ctx, []*Device{d}, now, false)
}

// complete adds their loan under way and last erasure to devices (and,
// with history, every loan and erasure).
func (s *Service) complete(ctx context.Context, ds []*Device, now time.Time, history bool) error {
	for _, d := range ds {
		ls, err := s.loansWhere(ctx, `l.device_id = $1`, []any{d.ID}, now)
		if err != nil {
			return err
		}
		for i := range ls {
			if (ls[i].Status == AwaitingBorrower || ls[i].Status == Out) && d.Loan == nil {
				d.Loan = &ls[i]
			}
		}
		es, err := s.erasuresOf(ctx, d.ID)
		if err != nil {
			return err
		}
		if len(es) > 0 {
			d.LastErasure = &es[0]
		}
		if history {
			d.Loans, d.Erasures = ls, es
		}
	}
	return nil
}

// load reads a device for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Device, error) {
	d, err := s.device(ctx, id, s.clock.Now())
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "media", ID: id}}, errNoDevice)
	}
	return d, nil
}

// Get returns a device with its whole history: loans, erasures,
// disposal (media.read).
func (s *Service) Get(ctx context.Context, call *medguard.Call, id string) (*Device, error) {
	d, err := s.load(ctx, call, policy.MediaRead, "media.read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaRead, AuditAction: "media.read",
		Resource: policy.Resource{Type: "media", ID: d.ID}}, func(policy.Decision) (audit.Mutation, error) {
		d.Loan, d.LastErasure = nil, nil
		return nil, s.complete(ctx, []*Device{d}, s.clock.Now(), true)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// List lists the devices by label, each with its loan under way and last
// erasure (media.read); status keeps those in one state, or — with
// OverdueFilter or UnencryptedFilter — those overdue or unencrypted.
func (s *Service) List(ctx context.Context, call *medguard.Call, status string) ([]Device, error) {
	if status != "" && status != OverdueFilter && status != UnencryptedFilter && !slices.Contains(Statuses, status) {
		return nil, medguard.InvalidField("status", "status must be one of %s, %s, %s", strings.Join(Statuses, ", "), OverdueFilter, UnencryptedFilter)
	}
	out := []Device{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.MediaRead, AuditAction: "media.list",
		Resource: policy.Resource{Type: "media"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+` FROM media_devices ORDER BY label LIMIT 2000`)
		if err != nil {
			return nil, err
		}
		var ds []*Device
		for rows.Next() {
			d, err := s.scanDevice(ctx, rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			ds = append(ds, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if err := s.complete(ctx, ds, s.clock.Now(), false); err != nil {
			return nil, err
		}
		for _, d := range ds {
			keep := status == "" || d.Status == status || status == OverdueFilter && d.Loan != nil && d.Loan.Overdue ||
				status == UnencryptedFilter && !d.Encrypted
			if keep {
				out = append(out, *d)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, medguard.Wrap("media.List", err)
	}
	return out, nil
}

// person finds an active member of staff by username, for a second
// signature; field names the input.
func (s *Service) person(ctx context.Context, field, username string) (*identity.User, error) {
	username = strings.TrimSpace(username)
	if username == "" {
		return nil, medguard.InvalidField(field, "%s is required (a username)", field)
	}
	if len(username) > 64 {
		return nil, medguard.InvalidField(field, "no active member of staff has this username")
	}
	u, err := s.staff.UserByUsername(ctx, username)
	if medguard.IsKind(err, medguard.NotFound) || err == nil && (u == nil || u.Status != identity.Active) {
		return nil, medguard.InvalidField(field, "no active member of staff has this username")
	}
	return u, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
