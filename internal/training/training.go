// Package training owns the training register (培训考核, SPEC §10, issue
// 13; seed 003 §2.2, seed 002): courses by role — general privacy training
// for all staff, special training for sensitive posts — their sessions,
// attendance and exam scores against a pass mark (failing means retraining
// until passed), the training every member of staff owes twice a year (a
// configurable period, overdue computed and alerted), the commitment
// letters (安全承诺书) signed before starting, with their versions,
// retraining orders (from an accountability case, a department failing its
// drills, or the security office), and the quarterly staff assessment
// (compliance, incidents, attendance) whose second consecutive failure
// proposes the person's removal from the post, with an appeal decided by
// someone else.
//
// It also closes record access (gating): once the hospital marks a course
// as required for record access, a member of staff with a clinical role
// who has not passed it, has not signed the commitment letter in force, is
// overdue for the twice-yearly training past the grace period, or owes a
// retraining, is refused patient data with the policy rule
// deny.training_required (Restrictions, a gate.RestrictionSource). The
// gate asks on every decision, so the service answers from a snapshot in
// memory, reloaded after its own writes and every refresh interval for
// the writes of other servers, and kept — never dropped — when a reload
// fails.
//
// Every operation goes through the gate and into the audit log. This
// package reads no patient data and no other package's tables: it reads
// the staff through the identity capability and the accountability cases
// through a consumer-side interface (Conduct).
package training

import (
	"context"
	"embed"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the training register's tables.
func Schema() storage.Schema { return storage.NewSchema("training", migrations, "migrations") }

// Staff is the identity capability as the register needs it: the roster
// (who, which roles, since when) and one account.
type Staff interface {
	Roster(ctx context.Context) ([]identity.StaffMember, error)
	UserByID(ctx context.Context, id string) (*identity.User, error)
}

// Conduct tells the quarterly assessment how many accountability cases
// were upheld against each member of staff (by user id) that were decided
// in [from, to): the incidents capability.
type Conduct interface {
	UpheldCases(ctx context.Context, from, to time.Time) (map[string]int, error)
}

// Config tunes the service; the hospital's rules (the training period,
// the grace period, the assessment's pass mark) are Settings, kept in the
// database and changed through the register.
type Config struct {
	// Location is the hospital's time zone, whose quarters the staff
	// assessment counts (default UTC).
	Location *time.Location
}

// Service is the training register.
type Service struct {
	db    *storage.DB
	gate  *gate.Gate
	keys  *keys.Keyring
	staff Staff
	clock medguard.Clock
	cfg   Config

	conduct Conduct

	// snap is the snapshot the gate's questions are answered from.
	snap    atomic.Pointer[snapshot]
	loadMu  sync.Mutex
	loadErr atomic.Pointer[loadFailure]

	mu              sync.Mutex
	onOverdue       medguard.Hooks[OverdueNotice]
	onCleared       medguard.Hooks[string]
	onFlagged       medguard.Hooks[Assessment]
	onAssessmentDue medguard.Hooks[AssessmentDue]
	onAssessed      medguard.Hooks[string]
}

// New returns the training register. It answers the gate only once Load
// has read the register (Restrictions refuses clinical staff until then).
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, staff Staff, cfg Config) *Service {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Service{db: db, gate: g, keys: kr, staff: staff, clock: g.Clock(), cfg: cfg}
}

func (s *Service) loc() *time.Location { return s.cfg.Location }

// Location is the hospital's time zone.
func (s *Service) Location() *time.Location { return s.cfg.Location }

// SetConduct gives the quarterly assessment the accountability cases
// (nil: the incidents factor counts none).
func (s *Service) SetConduct(c Conduct) { s.conduct = c }

// keyName is the system data key sealing this package's text.
const keyName = "training"

func (s *Service) seal(ctx context.Context, table, row, column, text string) ([]byte, error) {
	if text == "" {
		return nil, nil
	}
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Seal(ctx, table, row, column, text)
}

func (s *Service) open(ctx context.Context, table, row, column string, ct []byte) (string, error) {
	return keys.SystemText{Keyring: s.keys, Name: keyName}.Open(ctx, table, row, column, ct)
}

// Settings are the hospital's training rules.
type Settings struct {
	// PeriodDays is how often every member of staff is trained: twice a
	// year (182 days) by default. The training is overdue PeriodDays
	// after the last passed exam.
	PeriodDays int `json:"period_days"`
	// GraceDays is how long overdue training, a failed retake of the
	// required course and a department's retraining are warned of before
	// record access closes (default 14).
	GraceDays int `json:"grace_days"`
	// AssessmentPassMark is the quarterly assessment's pass mark out of
	// 100 (default 60).
	AssessmentPassMark int `json:"assessment_pass_mark"`
	// ChangedBy and ChangedAt say who last changed them (empty: the
	// defaults).
	ChangedBy string     `json:"changed_by,omitempty"`
	ChangedAt *time.Time `json:"changed_at,omitempty"`
}

// DefaultSettings are the rules of a new installation.
var DefaultSettings = Settings{PeriodDays: 182, GraceDays: 14, AssessmentPassMark: 60}

// Period and Grace are the settings as durations.
func (st Settings) Period() time.Duration { return time.Duration(st.PeriodDays) * 24 * time.Hour }

// Grace is the grace period as a duration.
func (st Settings) Grace() time.Duration { return time.Duration(st.GraceDays) * 24 * time.Hour }

// system is medguard itself, announcing overdue training.
var system = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}}

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

// clinical reports whether roles open patient data (a clinical role).
func clinical(roles []string) bool { return slices.ContainsFunc(roles, policy.Clinical) }

// staffRoles are the roles of the hospital's own staff: everyone but the
// researchers of external partners (who hold the researcher role alone).
func staffMember(roles []string) bool {
	return len(roles) > 0 && !slices.Equal(roles, []string{policy.Researcher})
}

func ptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
