// Package partners owns the external partners (合作单位) of SPEC §8 and
// issue 12: research groups outside the hospital that receive
// de-identified data under an agreement. It keeps the partners, their
// agreements — scope (purposes, kinds of data set, the k-anonymity every
// output must reach, departments), purpose, period, confidentiality clause,
// the signed document's SHA-256 — the researchers' accounts linked to a
// partner, and the deletion confirmation (删除确认) the partner signs when
// an agreement ends, with an alert when it is overdue.
//
// An agreement comes into force only through a four-eyes request
// (approvals kind partners.agreement): asked by medical affairs (医务科) or
// a security officer (partner.manage), decided by a security officer who
// did not ask (approval.decide). CheckJob (CheckJobScope with the job's
// department and k) tells the de-identification jobs whether a partner's
// researcher may receive an output now; Activity lists the partner
// accounts' audit entries against the agreements' scope, for the
// unannounced inspection of seed 003 §3.3.2.
//
// Every operation goes through the gate and into the audit log. This
// package never reads patient data, nor another package's tables: it reads
// users through the identity capability and the audit log through its
// search.
package partners

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
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

// Schema is the partners' tables.
func Schema() storage.Schema { return storage.NewSchema("partners", migrations, "migrations") }

// Config holds the rules of partner agreements.
type Config struct {
	// DeletionGrace is how long after an agreement ends the partner's
	// deletion confirmation is due (default 30 days).
	DeletionGrace time.Duration
	// ExpiringWindow is how long before its expiry a live agreement is
	// shown as expiring (default 30 days).
	ExpiringWindow time.Duration
	// MaxTerm is the longest period of an agreement (default 3 years).
	MaxTerm time.Duration
}

func (c *Config) setDefaults() {
	if c.DeletionGrace == 0 {
		c.DeletionGrace = 30 * 24 * time.Hour
	}
	if c.ExpiringWindow == 0 {
		c.ExpiringWindow = 30 * 24 * time.Hour
	}
	if c.MaxTerm == 0 {
		c.MaxTerm = 3 * 366 * 24 * time.Hour
	}
}

// Service is the partners capability.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config

	// approvalKinds names the kind of approvals (SetApprovalKinds); nil:
	// unknown, and a partner's requests are judged as any action.
	approvalKinds func(ctx context.Context, ids ...string) (map[string]string, error)

	mu          sync.Mutex
	onOverdue   medguard.Hooks[OverdueDeletion]
	onConfirmed medguard.Hooks[DeletionConfirmation]
}

// New returns the partners service.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, identity: id, clock: g.Clock(), cfg: cfg}
}

// Config returns the rules in force.
func (s *Service) Config() Config { return s.cfg }

// keyName is the system data key sealing this package's text.
const keyName = "partners"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// Partner is an external partner (合作单位) with its agreements and the
// accounts of its researchers.
type Partner struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	OrgCode string `json:"org_code"`
	// The partner's contact person (sealed at rest).
	ContactName  string    `json:"contact_name"`
	ContactPhone string    `json:"contact_phone,omitempty"`
	ContactEmail string    `json:"contact_email,omitempty"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	// Status is the most pressing state of its agreements now: one of
	// PartnerStatuses.
	Status string `json:"status"`
	// LiveAgreements counts the agreements in force now.
	LiveAgreements int         `json:"live_agreements"`
	Agreements     []Agreement `json:"agreements"`
	Accounts       []Account   `json:"accounts"`
}

// The states of a partner, most pressing first: a deletion confirmation
// overdue, one due, an agreement expiring within Config.ExpiringWindow, an
// agreement live, every agreement ended (and confirmed), no agreement yet.
const (
	PartnerDeletionOverdue = "deletion_overdue"
	PartnerDeletionDue     = "deletion_due"
	PartnerExpiring        = "expiring"
	PartnerLive            = "live"
	PartnerEnded           = "ended"
	PartnerNone            = "none"
)

// PartnerStatuses lists the states of a partner, most pressing first.
var PartnerStatuses = []string{PartnerDeletionOverdue, PartnerDeletionDue, PartnerExpiring, PartnerLive, PartnerEnded, PartnerNone}

// Account is a researcher's account linked to a partner: it receives
// de-identified outputs only within the partner's live agreements.
type Account struct {
	UserID   string    `json:"user_id"`
	Username string    `json:"username"`
	LinkedBy string    `json:"linked_by"`
	LinkedAt time.Time `json:"linked_at"`
}

// NewPartner registers a partner: the organisation's name and code
// (统一社会信用代码 or another registration number) and a contact person.
type NewPartner struct {
	Name         string `json:"name"`
	OrgCode      string `json:"org_code"`
	ContactName  string `json:"contact_name"`
	ContactPhone string `json:"contact_phone,omitempty"`
	ContactEmail string `json:"contact_email,omitempty"`
}

// LinkAccount links a researcher's account to a partner.
type LinkAccount struct {
	UserID string `json:"user_id"`
}

type contact struct {
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

var (
	orgCodePattern = regexp.MustCompile(`^[0-9A-Z][0-9A-Z-]{1,31}$`)
	phonePattern   = regexp.MustCompile(`^\+?[0-9][0-9 -]{4,19}$`)
	emailPattern   = regexp.MustCompile(`^[^@\s]{1,64}@[^@\s]{1,100}\.[^@\s]{1,20}$`)
)

var errNoPartner = &medguard.Error{Kind: medguard.NotFound, Message: "no such partner"}

func partnerResource(id string) policy.Resource { return policy.Resource{Type: "partner", ID: id} }

// CreatePartner registers a partner (partner.manage). No data reaches it
// until an agreement is approved.
func (s *Service) CreatePartner(ctx context.Context, call *medguard.Call, in NewPartner) (*Partner, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.Name, err = medguard.Line("name", in.Name, 100, true); err != nil {
		return nil, err
	}
	in.OrgCode = strings.ToUpper(strings.TrimSpace(in.OrgCode))
	if !orgCodePattern.MatchString(in.OrgCode) {
		return nil, medguard.InvalidField("org_code", "org_code must be 2-32 letters, digits or '-' (e.g. the 统一社会信用代码)")
	}
	if in.ContactName, err = medguard.Line("contact_name", in.ContactName, 64, true); err != nil {
		return nil, err
	}
	in.ContactPhone, in.ContactEmail = strings.TrimSpace(in.ContactPhone), strings.TrimSpace(in.ContactEmail)
	if in.ContactPhone != "" && !phonePattern.MatchString(in.ContactPhone) {
		return nil, medguard.InvalidField("contact_phone", "contact_phone is not a phone number")
	}
	if in.ContactEmail != "" && !emailPattern.MatchString(in.ContactEmail) {
		return nil, medguard.InvalidField("contact_email", "contact_email is not an e-mail address")
	}
	id := medguard.NewID(now)
	raw, _ := json.Marshal(contact{Name: in.ContactName, Phone: in.ContactPhone, Email: in.ContactEmail})
	sealed, err := s.seal(ctx, "partners", id, "contact", string(raw))
	if err != nil {
		return nil, err
	}
	p := &Partner{ID: id, Name: in.Name, OrgCode: in.OrgCode, ContactName: in.ContactName, ContactPhone: in.ContactPhone,
		ContactEmail: in.ContactEmail, CreatedBy: call.Actor.Name, CreatedAt: now, Status: PartnerNone,
		Agreements: []Agreement{}, Accounts: []Account{}}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerManage, AuditAction: "partner.create",
		Resource: partnerResource(id)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO partners (id, name, org_code, contact, created_by, created_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, id, in.Name, in.OrgCode, sealed, call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "org_code", Message: "another partner has this organisation code"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

const partnerColumns = `id, name, org_code, contact, created_by, created_at`

func (s *Service) scanPartner(ctx context.Context, sc interface{ Scan(...any) error }) (*Partner, error) {
	var p Partner
	var sealed []byte
	var created int64
	if err := sc.Scan(&p.ID, &p.Name, &p.OrgCode, &sealed, &p.CreatedBy, &created); err != nil {
		return nil, err
	}
	raw, err := s.open(ctx, "partners", p.ID, "contact", sealed)
	if err != nil {
		return nil, err
	}
	var c contact
	json.Unmarshal([]byte(raw), &c)
	p.ContactName, p.ContactPhone, p.ContactEmail, p.CreatedAt = c.Name, c.Phone, c.Email, medguard.FromMillis(created)
	return &p, nil
}

// partner reads a partner with its agreements and accounts, as of now; nil
// when there is none.
func (s *Service) partner(ctx context.Context, id string, now time.Time) (*Partner, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	p, err := s.scanPartner(ctx, s.db.QueryRowContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, medguard.Wrap("partners.partner", err)
	}
	return p, s.complete(ctx, []*Partner{p}, now)
}

// complete adds their agreements, accounts and state to partners.
func (s *Service) complete(ctx context.Context, ps []*Partner, now time.Time) error {
	for _, p := range ps {
		as, err := s.agreementsOf(ctx, p.ID, now)
		if err != nil {
			return err
		}
		p.Agreements = as
		if p.Accounts, err = s.accountsOf(ctx, p.ID); err != nil {
			return err
		}
		p.Status, p.LiveAgreements = partnerStatus(as)
	}
	return nil
}

// partnerStatus is the most pressing state of a partner's agreements.
func partnerStatus(as []Agreement) (string, int) {
	live := 0
	rank := len(PartnerStatuses) - 1
	worse := func(st string) { rank = min(rank, slices.Index(PartnerStatuses, st)) }
	for _, a := range as {
		switch {
		case a.Deletion == DeletionOverdue:
			worse(PartnerDeletionOverdue)
		case a.Deletion == DeletionDue:
			worse(PartnerDeletionDue)
		case a.Status == Live && a.Expiring:
			worse(PartnerExpiring)
		case a.Status == Live || a.Status == NotStarted:
			worse(PartnerLive)
		default:
			worse(PartnerEnded)
		}
		if a.Status == Live {
			live++
		}
	}
	return PartnerStatuses[rank], live
}

func (s *Service) accountsOf(ctx context.Context, partnerID string) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, username, linked_by, linked_at FROM partner_accounts WHERE partner_id = $1
		ORDER BY username`, partnerID)
	if err != nil {
		return nil, medguard.Wrap("partners.accountsOf", err)
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		var a Account
		var at int64
		if err := rows.Scan(&a.UserID, &a.Username, &a.LinkedBy, &at); err != nil {
			return nil, medguard.Wrap("partners.accountsOf", err)
		}
		a.LinkedAt = medguard.FromMillis(at)
		out = append(out, a)
	}
	return out, medguard.Wrap("partners.accountsOf", rows.Err())
}

// load reads a partner for an operation; an attempt on a missing one is
// logged and answered 404.
func (s *Service) load(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Partner, error) {
	p, err := s.partner(ctx, id, s.clock.Now())
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
			Resource: policy.Resource{Type: "partner", ID: id}}, errNoPartner)
	}
	return p, nil
}

// GetPartner returns a partner with its agreements, their deletion
// confirmations and its accounts (partner.read).
func (s *Service) GetPartner(ctx context.Context, call *medguard.Call, id string) (*Partner, error) {
	p, err := s.load(ctx, call, policy.PartnerRead, "partner.read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerRead, AuditAction: "partner.read",
		Resource: partnerResource(p.ID)}, func(policy.Decision) (audit.Mutation, error) { return nil, nil })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ListPartners lists the partners by name, each with its agreements and
// state (partner.read); status, if set, keeps the partners in that state.
func (s *Service) ListPartners(ctx context.Context, call *medguard.Call, status string) ([]Partner, error) {
	if status != "" && !slices.Contains(PartnerStatuses, status) {
		return nil, medguard.InvalidField("status", "status must be one of %s", strings.Join(PartnerStatuses, ", "))
	}
	out := []Partner{}
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerRead, AuditAction: "partner.list",
		Resource: policy.Resource{Type: "partner"}}, func(policy.Decision) (audit.Mutation, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+partnerColumns+` FROM partners ORDER BY name, id LIMIT 1000`)
		if err != nil {
			return nil, err
		}
		var ps []*Partner
		for rows.Next() {
			p, err := s.scanPartner(ctx, rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			ps = append(ps, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if err := s.complete(ctx, ps, s.clock.Now()); err != nil {
			return nil, err
		}
		for _, p := range ps {
			if status == "" || p.Status == status {
				out = append(out, *p)
			}
		}
		return nil, nil
	})
	return out, err
}

// LinkAccount links a researcher's account to a partner (partner.manage):
// from then on it receives de-identified outputs only within the partner's
// live agreements, and its activity is listed for the inspection. The
// account must be active and hold the researcher role alone; an account
// belongs to one partner. There is no unlinking: an account that leaves
// the partner is deactivated, so that no partner account ever becomes
// internal staff.
func (s *Service) LinkAccount(ctx context.Context, call *medguard.Call, partnerID string, in LinkAccount) (*Account, error) {
	var u *identity.User
	var err error
	if medguard.ValidID(in.UserID) {
		u, err = s.identity.UserByID(ctx, in.UserID)
	}
	if u == nil || err != nil || u.Status != identity.Active {
		return nil, medguard.InvalidField("user_id", "no active user has this id")
	}
	if !slices.Equal(u.Roles, []string{policy.Researcher}) {
		return nil, medguard.InvalidField("user_id", "a partner's account holds the researcher role (科研人员) and no other")
	}
	p, err := s.load(ctx, call, policy.PartnerManage, "partner.link_account", partnerID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	a := &Account{UserID: u.ID, Username: u.Username, LinkedBy: call.Actor.Name, LinkedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.PartnerManage, AuditAction: "partner.link_account",
		Resource: policy.Resource{Type: "partner", ID: p.ID, SubjectUserID: u.ID}}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO partner_accounts (user_id, partner_id, username, linked_by, linked_at)
				VALUES ($1, $2, $3, $4, $5)`, u.ID, p.ID, u.Username, call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "user_id", Message: "the account is linked to a partner already"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// PartnerOf returns the id of the partner a user's account is linked to,
// or "" for a member of the hospital's staff.
func (s *Service) PartnerOf(ctx context.Context, userID string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT partner_id FROM partner_accounts WHERE user_id = $1`, userID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, medguard.Wrap("partners.PartnerOf", err)
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
