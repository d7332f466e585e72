// Package records owns the medical-record archive (病案库): patients and
// their identifying data, records with their versions and attachments,
// admissions and the archiving deadline, care teams, access grants and the
// break-glass review queue.
//
// Every identifying field, all free text and every attachment is sealed with
// the patient's own data key before it reaches the database, and bound to its
// table, row and column; exact search goes through keyed blind indexes. Every
// operation goes through the gate: this package loads the facts the access
// policy needs (departments, care team, grants), and the gate decides and
// writes the audit entry with the change. There is no delete path: the one
// way data leaves is destruction at the end of its retention period
// (destroy.go), a four-eyes request that crypto-shreds the record's own key
// and leaves a signed certificate.
package records

import (
	"context"
	"database/sql"
	"embed"
	"slices"
	"time"

	"medguard"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/keys"
	"medguard/internal/policy"
	"medguard/internal/pulse"
	"medguard/internal/retention"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the records package's tables.
func Schema() storage.Schema { return storage.NewSchema("records", migrations, "migrations") }

// Config holds the archive's rules.
type Config struct {
	// ArchiveDeadline is how long after discharge an inpatient record must
	// be archived (default 7 days, SPEC §4).
	ArchiveDeadline time.Duration
	// BreakGlassReview is how long the department head has to review an
	// emergency access (default 24 h, SPEC §3).
	BreakGlassReview time.Duration
	// MaxGrant is the longest access grant (default 30 days).
	MaxGrant time.Duration
	// MaxAttachment is the largest attachment in bytes (default 20 MiB).
	MaxAttachment int64
	// Location is the hospital's time zone, whose calendar day birth dates
	// are checked against (default UTC).
	Location *time.Location
	// BackupRetention is how long backups are kept (default 365 days,
	// retention.DefaultBackupRetention): a destruction certificate says
	// that every backup holding the shredded keys has expired by the
	// destruction plus this. Wire it to the backup schedule's retention.
	BackupRetention time.Duration
}

func (c *Config) setDefaults() {
	if c.ArchiveDeadline == 0 {
		c.ArchiveDeadline = 7 * 24 * time.Hour
	}
	if c.BreakGlassReview == 0 {
		c.BreakGlassReview = 24 * time.Hour
	}
	if c.MaxGrant == 0 {
		c.MaxGrant = 30 * 24 * time.Hour
	}
	if c.MaxAttachment == 0 {
		c.MaxAttachment = 20 << 20
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.BackupRetention == 0 {
		c.BackupRetention = retention.DefaultBackupRetention
	}
}

// Service is the records capability.
type Service struct {
	db       *storage.DB
	gate     *gate.Gate
	keys     *keys.Keyring
	identity *identity.Service
	clock    medguard.Clock
	cfg      Config
	// ledger is the destruction ledger outside the database (nil: no
	// destruction may run).
	ledger *retention.Ledger
	// incidents names the patients and records of open incidents, which
	// are held (holds.go); nil: none.
	incidents IncidentHolds
	// useGrants loads a user's approved record-use requests for a patient
	// (internal/datause owns them); nil: there are none.
	useGrants UseGrantsFunc
	// fresh, if set, takes the reading that confirms a request judged by
	// a session in memory along with the record it reads (UsePulse).
	fresh Freshness
}

// Freshness is what the record read needs of internal/pulse.
type Freshness interface {
	Read(ctx context.Context) (pulse.Reading, error)
	Offer(ctx context.Context, r pulse.Reading, at time.Time) error
}

// UsePulse lets a record read whose request was judged by a session kept
// in memory (pulse.Later) bring the reading that confirms it in its own
// query, instead of a round trip of its own before.
func (s *Service) UsePulse(p Freshness) { s.fresh = p }

// New returns the records service.
func New(db *storage.DB, g *gate.Gate, kr *keys.Keyring, id *identity.Service, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: db, gate: g, keys: kr, identity: id, clock: g.Clock(), cfg: cfg}
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// today is now in the hospital's time zone: dates of birth are checked
// against the hospital's calendar day.
func (s *Service) today() time.Time { return s.clock.Now().In(s.cfg.Location) }

// patientOwner is the key owner of a patient's data key.
func patientOwner(patientID string) string { return "patient:" + patientID }

// recordOwner is the key owner of a record's own data key (its content and
// attachments), which its destruction shreds.
func recordOwner(recordID string) string { return "record:" + recordID }

func loc(table, row, column string) keys.Location {
	return keys.Location{Table: table, Row: row, Column: column}
}

var errNoPatient = &medguard.Error{Kind: medguard.NotFound, Message: "no such patient"}
var errNoRecord = &medguard.Error{Kind: medguard.NotFound, Message: "no such record"}

// patientDepartments returns the departments holding data of a patient.
func (s *Service) patientDepartments(ctx context.Context, patientID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT department FROM patient_departments WHERE patient_id = $1 ORDER BY department`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// patientExists reports whether the patient exists.
// PatientExists reports whether a patient with this id is registered. It
// reveals no patient data; callers use it inside a gated operation (the
// access report) to answer 404 for an unknown patient.
func (s *Service) PatientExists(ctx context.Context, patientID string) (bool, error) {
	return s.patientExists(ctx, patientID)
}

func (s *Service) patientExists(ctx context.Context, patientID string) (bool, error) {
	if !medguard.ValidID(patientID) {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE id = $1`, patientID).Scan(&n)
	return n > 0, err
}

// mustExist returns nil if the patient exists; otherwise it logs the
// attempt to perform action on a missing patient and returns 404.
func (s *Service) mustExist(ctx context.Context, call *medguard.Call, action policy.Permission, patientID string) error {
	if ok, err := s.patientExists(ctx, patientID); err != nil {
		return medguard.Wrap("records.mustExist", err)
	} else if !ok {
		return s.missing(ctx, call, action, "patient", patientID, errNoPatient)
	}
	return nil
}

// onPatient prepares an action on one patient's data: it checks that the
// patient exists (an attempt on a missing one is logged and answered 404)
// and builds the passage with the departments holding the patient's data
// and the caller's relations to the patient.
func (s *Service) onPatient(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, patientID string) (gate.Passage, error) {
	if err := s.mustExist(ctx, call, action, patientID); err != nil {
		return gate.Passage{}, err
	}
	r, err := s.patientResource(ctx, patientID)
	if err != nil {
		return gate.Passage{}, err
	}
	p, err := s.passage(ctx, call, action, r)
	p.AuditAction = auditAction
	return p, err
}

// passage builds the gate passage for an action on a patient's data: it
// loads the caller's care-team memberships and grants for the patient,
// unless the caller's own department already owns the data (the policy
// would allow on that ground first, so the lookups are skipped) — except
// for a write that may make a new relation, which the care team prevents.
func (s *Service) passage(ctx context.Context, call *medguard.Call, action policy.Permission, r policy.Resource) (gate.Passage, error) {
	p := gate.Passage{Call: call, Action: action, Resource: r}
	own := call.Actor.Department != "" && slices.Contains(r.Departments, call.Actor.Department)
	newRelation := own && len(r.HeldBy) > 0 && !slices.Contains(r.HeldBy, call.Actor.Department)
	if call.Actor.Kind != medguard.UserActor || r.PatientID == "" || own && !newRelation {
		return p, nil
	}
	var err error
	if p.CareTeam, err = s.careTeamOf(ctx, call.Actor.ID, r.PatientID); err != nil {
		return p, medguard.Wrap("records.passage", err)
	}
	if p.Grants, err = s.grantsOf(ctx, call.Actor.ID, r.PatientID); err != nil {
		return p, medguard.Wrap("records.passage", err)
	}
	if s.useGrants != nil {
		if p.UseGrants, err = s.useGrants(ctx, call.Actor.ID, r.PatientID); err != nil {
			return p, medguard.Wrap("records.passage", err)
		}
	}
	return p, nil
}

// careTeamOf returns the user's current memberships of the patient's care team.
func (s *Service) careTeamOf(ctx context.Context, userID, patientID string) ([]policy.CareTeamMembership, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT until_at FROM care_team WHERE user_id = $1 AND patient_id = $2 AND removed_at IS NULL`,
		userID, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []policy.CareTeamMembership
	for rows.Next() {
		var until sql.NullInt64
		if err := rows.Scan(&until); err != nil {
			return nil, err
		}
		m := policy.CareTeamMembership{PatientID: patientID}
		if until.Valid {
			m.Until = medguard.FromMillis(until.Int64)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// grantsOf returns the user's access grants for the patient.
func (s *Service) grantsOf(ctx context.Context, userID, patientID string) ([]policy.Grant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT department, starts_at, expires_at, revoked_at FROM access_grants
		WHERE grantee_id = $1 AND patient_id = $2`, userID, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []policy.Grant
	for rows.Next() {
		var g policy.Grant
		var starts, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&g.Department, &starts, &expires, &revoked); err != nil {
			return nil, err
		}
		g.PatientID, g.StartsAt, g.ExpiresAt, g.Revoked = patientID, medguard.FromMillis(starts), medguard.FromMillis(expires), revoked.Valid
		out = append(out, g)
	}
	return out, rows.Err()
}

// addPatientDepartment records that department holds data of the patient.
func addPatientDepartment(ctx context.Context, tx *sql.Tx, patientID, department string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO patient_departments (patient_id, department, since) VALUES ($1, $2, $3)
		ON CONFLICT (patient_id, department) DO NOTHING`, patientID, department, medguard.Millis(now))
	return err
}

// department resolves a department code named in a request, as an Invalid
// error naming field when there is none.
func (s *Service) department(ctx context.Context, field, code string) (string, error) {
	if code == "" {
		return "", medguard.InvalidField(field, "%s is required", field)
	}
	d, err := s.identity.DepartmentByCode(ctx, code)
	if err != nil {
		if medguard.IsKind(err, medguard.NotFound) {
			return "", medguard.InvalidField(field, "no department has this code")
		}
		return "", err
	}
	return d.Code, nil
}

// gatePassage is a passage that needs no care-team or grant facts: actions
// decided on the department alone.
func gatePassage(call *medguard.Call, action policy.Permission, auditAction string, r policy.Resource) gate.Passage {
	return gate.Passage{Call: call, Action: action, AuditAction: auditAction, Resource: r}
}
