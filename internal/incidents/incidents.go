// Package incidents owns incident management and accountability (事件管理与
// 责任追究, SPEC §7): incidents with their type, grade, commander, deadlines,
// timeline, handling steps confirmed by a second person, evidence from the
// audit log and external evidence files, 5W1H analysis and corrective
// actions; accountability cases (违规) with their fact-finding clock, the
// person's statement, the decision, the handling opinion with its sanction
// (repeat offences escalate) due within 5 working days, the appeal and its
// review by someone who did not investigate; and the anonymous reporting
// channel (举报), which stores no identity of its reporters
// (anonymous.go; docs/incidents.md).
//
// Every operation passes the gate: the policy decides (incident.read,
// incident.manage, accountability.manage, or the case subject's own
// accountability.respond), the work is done, and the audit entry commits
// with the change. Free text may name patients, so every text column is
// sealed with the incident's or the case's own data key. Nothing here is
// ever deleted — the database refuses it — and evidence and case entries
// never change once written. This package reads the audit log only through
// internal/audit, and late archiving and break-glass reviews only through
// the records service; it never touches another package's tables.
package incidents

import (
	"context"
	"embed"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the incidents package's tables.
func Schema() storage.Schema { return storage.NewSchema("incidents", migrations, "migrations") }

// Records is what the service needs of the records service, each read
// through the records service's own gated operation: the list of late
// archiving (SPEC §4) and the break-glass accesses reviewed as unjustified.
type Records interface {
	LateArchiving(ctx context.Context, call *medguard.Call, department string, since time.Time) ([]records.Admission, error)
	UnjustifiedBreakGlass(ctx context.Context, call *medguard.Call, from, to time.Time) ([]records.BreakGlassEvent, error)
}

// Service is the incidents and accountability capability.
type Service struct {
	db          *storage.DB
	gate        *gate.Gate
	log         *audit.Log
	checkpoints *audit.Checkpoints
	keys        *keys.Keyring
	users       Users
	records     Records
	clock       medguard.Clock

	mu        sync.Mutex
	onOverdue []func(Incident, Deadline)
	onClose   medguard.Hooks[Incident]

	// The hooks of issue 13: an incident reported, its commander assigned,
	// a case's deadline overdue or settled, an anonymous report filed.
	onReported    medguard.Hooks[Incident]
	onCommander   medguard.Hooks[Incident]
	onCaseOverdue []func(Case, Deadline)
	onCaseSettled medguard.Hooks[Case]
	onAnonymous   medguard.Hooks[AnonymousNotice]
	// retrainer orders the retraining a warning comes with (nil until the
	// training register is wired).
	retrainer Retrainer
	// zone is the hospital's time zone: working days and the day of an
	// anonymous report are its.
	zone *time.Location
	// calendar is the working-day calendar of the handling opinion.
	calendar *Calendar
	// anonymous bounds the anonymous channel's use, for everyone at once.
	anonymous *channelLimit
}

// New returns the service. cps signs the checkpoints that evidence is proven
// against; users finds the people cases are about; rec (may be nil) lists
// late archiving and unjustified break-glass for the candidates of cases.
func New(db *storage.DB, g *gate.Gate, cps *audit.Checkpoints, kr *keys.Keyring, users Users, rec Records) *Service {
	return &Service{db: db, gate: g, log: g.Log(), checkpoints: cps, keys: kr, users: users, records: rec,
		clock: g.Clock(), zone: DefaultZone, calendar: ChinaCalendar(), anonymous: newChannelLimit(g.Clock())}
}

// DefaultZone is the hospital's time zone unless SetZone says otherwise:
// China Standard Time.
var DefaultZone = time.FixedZone("CST", 8*60*60)

// SetZone sets the hospital's time zone (nil leaves it). Call it while
// wiring, before the service serves.
func (s *Service) SetZone(zone *time.Location) {
	if zone != nil {
		s.zone = zone
	}
}

// Zone returns the hospital's time zone.
func (s *Service) Zone() *time.Location { return s.zone }

// System is the call of medguard itself, for operations no person asked for
// (an incident opened by a freeze, an overdue deadline announced).
var System = medguard.Call{Actor: medguard.Actor{Kind: medguard.SystemActor, Name: "system"}, IP: "local"}

func incidentOwner(id string) string { return "incident:" + id }

func caseOwner(id string) string { return "case:" + id }

func loc(table, row, column string) keys.Location {
	return keys.Location{Table: table, Row: row, Column: column}
}

// Limits on free text.
const (
	MaxTitle = 200
	MaxText  = 20_000
)

func optTime(ms *int64) *time.Time {
	if ms == nil {
		return nil
	}
	t := medguard.FromMillis(*ms)
	return &t
}

func millisOf(t *time.Time) any {
	if t == nil {
		return nil
	}
	return medguard.Millis(*t)
}
