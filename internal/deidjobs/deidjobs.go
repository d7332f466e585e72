// Package deidjobs owns de-identification jobs (脱敏任务, SPEC §8, issue
// 12): a researcher asks for a de-identified extract of chosen records
// and fields; medical affairs (医务科, deid.approve) approves it as a
// four-eyes request (approvals kind deid.job), never the requester nor
// the recipient; medguard then reads the scope through the records
// service under the job's approval (one deid.read_source entry per
// patient, rule allow.deid_job:<job>), masks the fields by their rules
// (internal/deid/mask), scrubs free text (internal/deid/scrub), makes the
// patients k-anonymous (and l-diverse) over the chosen quasi-identifiers
// (internal/deid/kanon, hierarchies in hierarchies.json), seals the
// output (CSV and JSON lines) with the job's own data key, and signs a
// manifest with the audit log's key. The recipient alone downloads the
// output, at most max_downloads times and before it expires; every
// download is audited (deid.download), and afterwards the job's key is
// shredded.
//
// It never reads the records tables itself, and it never keeps patient
// data in clear: the output is sealed, the date-shift secret lives only
// while the job runs, and the manifest holds rules, counts and checksums.
package deidjobs

import (
	"context"
	"embed"
	"encoding/json"
	"sync"
	"time"

	"medguard"
	"medguard/internal/approvals"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the de-identification jobs' tables.
func Schema() storage.Schema { return storage.NewSchema("deidjobs", migrations, "migrations") }

// The states of a job. A job is pending until medical affairs decides its
// approval; refused, cancelled and expired are its approval's states.
const (
	Pending   = "pending"
	Approved  = "approved"
	Running   = "running"
	Done      = "done"
	Failed    = "failed"
	Refused   = "refused"
	Cancelled = "cancelled"
	Expired   = "expired"
)

// Config bounds the jobs.
type Config struct {
	// MaxRecords is the most records one job may read (default 20,000);
	// MaxPatients the most patients (default 5,000). A larger scope is
	// refused when asked (422 scope).
	MaxRecords, MaxPatients int
	// MaxDownloads is the most downloads a job may allow (default 10).
	MaxDownloads int
	// MaxLifetime is the longest an output may stay downloadable (default
	// 90 days).
	MaxLifetime time.Duration
	// RunWindow is how long after its approval a job may read (default
	// 24 h): the approval's relation closes then.
	RunWindow time.Duration
	// RunLease is how long a job may stay running before another run takes
	// it back (default 30 min): a server stopped mid-job (a crash, a
	// restart) leaves it running, and its output is only ever written
	// whole, in the transaction that marks it done.
	RunLease time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxRecords == 0 {
		c.MaxRecords = 20000
	}
	if c.MaxPatients == 0 {
		c.MaxPatients = 5000
	}
	if c.MaxDownloads == 0 {
		c.MaxDownloads = 10
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 90 * 24 * time.Hour
	}
	if c.RunWindow == 0 {
		c.RunWindow = 24 * time.Hour
	}
	if c.RunLease == 0 {
		c.RunLease = 30 * time.Minute
	}
}

// Agreements is the partners capability as a job needs it: a partner
// account (合作单位) may ask for or receive a job only within a live
// agreement that covers the purpose, the department read ("" for a job
// not limited to one) and the k-anonymity asked (0 for none).
// CheckJobScope returns the agreement's id ("" for an account that is no
// partner's), or an error (a Forbidden one for a partner without a live
// agreement covering the job).
type Agreements interface {
	CheckJobScope(ctx context.Context, userID, purpose, department string, k int, at time.Time) (agreementID string, err error)
}

// Service is the de-identification jobs capability.
type Service struct {
	db        *storage.DB
	gate      *gate.Gate
	keys      *keys.Keyring
	records   *records.Service
	identity  *identity.Service
	approvals *approvals.Service
	signer    func() *audit.Signer
	clock     medguard.Clock
	cfg       Config

	mu         sync.Mutex
	agreements Agreements
	kick       chan struct{}
}

// New returns the service and registers the deid.job kind of four-eyes
// request with the approvals service. signer returns the audit log's
// signing key, which signs the manifests.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, rs *records.Service, id *identity.Service, ap *approvals.Service,
	signer func() *audit.Signer, cfg Config) *Service {
	cfg.setDefaults()
	s := &Service{db: db, gate: g, keys: kr, records: rs, identity: id, approvals: ap, signer: signer, clock: g.Clock(), cfg: cfg,
		kick: make(chan struct{}, 1)}
	ap.Register(s.kind())
	return s
}

// SetAgreements makes partner accounts need a live agreement to ask for
// or receive a job (nil: no partner check).
func (s *Service) SetAgreements(a Agreements) {
	s.mu.Lock()
	s.agreements = a
	s.mu.Unlock()
}

func (s *Service) agreementsOf() Agreements {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agreements
}

// Job is a de-identification job as the API shows it.
type Job struct {
	ID          string     `json:"id"`
	ApprovalID  string     `json:"approval_id"`
	Status      string     `json:"status"`
	Purpose     string     `json:"purpose"`
	Spec        Spec       `json:"spec"`
	Requester   string     `json:"requester"`
	RequesterID string     `json:"requester_id"`
	Recipient   string     `json:"recipient"`
	RecipientID string     `json:"recipient_id"`
	AgreementID string     `json:"agreement_id,omitempty"`
	ApprovedBy  string     `json:"approved_by,omitempty"`
	ApprovedAt  *time.Time `json:"approved_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Error       string     `json:"error,omitempty"`
	// MaxDownloads and Downloads count the recipient's downloads;
	// DownloadsLeft is what remains (0 once expired or purged).
	MaxDownloads  int       `json:"max_downloads"`
	Downloads     int       `json:"downloads"`
	DownloadsLeft int       `json:"downloads_left"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Available says the recipient may download the output now.
	Available bool       `json:"available"`
	PurgedAt  *time.Time `json:"purged_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	// Manifest is the signed manifest, once the job is done.
	Manifest *SignedManifest `json:"manifest,omitempty"`
}

func nullTime(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := medguard.FromMillis(*v)
	return &t
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
