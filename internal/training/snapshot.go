package training

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"medguard"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// snapshot is the register as the gate sees it: the rules and every
// member of staff's facts, read at once.
type snapshot struct {
	loadedAt time.Time
	rules    rules
	facts    map[string]*facts // by user id
	staff    []identity.StaffMember
}

// loadFailure is the last reload that failed, for the operators.
type loadFailure struct {
	at  time.Time
	err error
}

// Load reads the register into memory: the rules (settings, courses,
// commitment letters) and every member of staff's attempts, signatures
// and retraining orders. The service calls it after each of its writes,
// and Run every refresh interval for the writes of other servers. When a
// reload fails, the last snapshot stays: whoever it restricted stays
// restricted (and the failure is returned, and kept for LoadError).
func (s *Service) Load(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	snap, err := s.read(ctx)
	if err != nil {
		s.loadErr.Store(&loadFailure{at: s.clock.Now(), err: err})
		return medguard.Wrap("training.Load", err)
	}
	s.snap.Store(snap)
	s.loadErr.Store(nil)
	return nil
}

// LoadError returns the last reload's failure (nil when the snapshot is
// current) and when it happened.
func (s *Service) LoadError() (time.Time, error) {
	if f := s.loadErr.Load(); f != nil {
		return f.at, f.err
	}
	return time.Time{}, nil
}

// reload refreshes the snapshot after one of the service's own writes. A
// failure keeps the last snapshot (Run retries); the write stands.
func (s *Service) reload(ctx context.Context) {
	s.Load(context.WithoutCancel(ctx))
}

func (s *Service) read(ctx context.Context) (*snapshot, error) {
	snap := &snapshot{loadedAt: s.clock.Now(), facts: map[string]*facts{}}
	var err error
	if snap.rules.settings, err = s.settings(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, code, audience, required_from FROM training_courses ORDER BY code`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var c courseRule
		var aud string
		var from sql.NullInt64
		if err := rows.Scan(&c.id, &c.code, &aud, &from); err != nil {
			rows.Close()
			return nil, err
		}
		c.audience = parseList(aud)
		if from.Valid {
			c.requiredFrom = medguard.FromMillis(from.Int64)
		}
		snap.rules.courses = append(snap.rules.courses, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT version, published_at, effective_from, resign FROM training_letters ORDER BY version`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var l letterRule
		var pub, eff int64
		var resign int
		if err := rows.Scan(&l.version, &pub, &eff, &resign); err != nil {
			rows.Close()
			return nil, err
		}
		l.publishedAt, l.effectiveFrom, l.resign = medguard.FromMillis(pub), medguard.FromMillis(eff), resign != 0
		snap.rules.letters = append(snap.rules.letters, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if snap.staff, err = s.staff.Roster(ctx); err != nil {
		return nil, err
	}
	of := func(id string) *facts {
		f := snap.facts[id]
		if f == nil {
			f = &facts{}
			snap.facts[id] = f
		}
		return f
	}
	for _, m := range snap.staff {
		of(m.ID).createdAt = m.CreatedAt
	}
	rows, err = s.db.QueryContext(ctx, `SELECT a.user_id, s.course_id, s.held_at, a.passed FROM training_attendance a
		JOIN training_sessions s ON s.id = a.session_id WHERE a.passed IS NOT NULL ORDER BY s.held_at, a.session_id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var uid string
		var a attempt
		var at int64
		var passed int
		if err := rows.Scan(&uid, &a.course, &at, &passed); err != nil {
			rows.Close()
			return nil, err
		}
		a.at, a.passed = medguard.FromMillis(at), passed != 0
		f := of(uid)
		f.attempts = append(f.attempts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT user_id, version, signed_at FROM training_signatures`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var uid string
		var sg signature
		var at int64
		if err := rows.Scan(&uid, &sg.version, &at); err != nil {
			rows.Close()
			return nil, err
		}
		sg.at = medguard.FromMillis(at)
		f := of(uid)
		f.signatures = append(f.signatures, sg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT id, user_id, course_id, ordered_at, gates_from, cancelled_at FROM training_orders
		ORDER BY ordered_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var o orderFact
		var uid string
		var at, gates int64
		var end sql.NullInt64
		if err := rows.Scan(&o.id, &uid, &o.course, &at, &gates, &end); err != nil {
			return nil, err
		}
		o.at, o.gatesFrom = medguard.FromMillis(at), medguard.FromMillis(gates)
		if end.Valid {
			o.end = medguard.FromMillis(end.Int64)
		}
		f := of(uid)
		f.orders = append(f.orders, o)
	}
	return snap, rows.Err()
}

// settings reads the hospital's training rules (the defaults when never
// set).
func (s *Service) settings(ctx context.Context) (Settings, error) {
	st := DefaultSettings
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT period_days, grace_days, assessment_pass_mark, changed_by, changed_at
		FROM training_settings WHERE id = 1`).Scan(&st.PeriodDays, &st.GraceDays, &st.AssessmentPassMark, &st.ChangedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultSettings, nil
	}
	if err != nil {
		return st, err
	}
	st.ChangedAt = ptr(medguard.FromMillis(at))
	return st, nil
}

// closedActions are what a member of staff gated for training may not
// do: every action on patient data, registering and searching patients,
// and running the training register itself (so that nobody gated lifts
// their own gate).
var closedActions = func() []policy.Permission {
	out := []policy.Permission{policy.PatientCreate, policy.PatientSearch, policy.TrainingManage}
	for _, p := range policy.AllPermissions {
		if policy.PatientData(p) {
			out = append(out, p)
		}
	}
	return out
}()

// Restriction is the restriction a gated member of staff is under: the
// rule deny.training_required on closedActions. It lets an emergency
// through (Emergency): a doctor who has not finished the training still
// saves a life — as break-glass only, with a reason, marked in the audit
// log, alerted and reviewed by the department head within 24 hours (the
// policy never lets the reason open data through the doctor's ordinary
// relations while the restriction holds).
var Restriction = policy.Restriction{Rule: policy.RuleTrainingRequired, Actions: closedActions, Emergency: true}

// Restrictions is the register's gate.RestrictionSource: a member of staff
// with a clinical role whose standing is gated now is under Restriction.
// API keys and medguard itself are systems, not people: they owe no
// training (an API key's scopes are approved by four eyes, and the
// policy never opens restricted data to it). It answers from the
// snapshot in memory: someone the snapshot does not know (a new member
// of staff created since the last reload) is judged as someone with no
// training at all; before the first Load every clinical member of staff
// is refused.
func (s *Service) Restrictions(a *medguard.Actor, now time.Time) (own, all []policy.Restriction) {
	if a.Kind != medguard.UserActor || !clinical(a.Roles) {
		return nil, nil
	}
	snap := s.snap.Load()
	if snap == nil {
		return []policy.Restriction{Restriction}, nil
	}
	if from := snap.rules.enforcedFrom(); from.IsZero() || now.Before(from) {
		return nil, nil // no course is required for record access (yet)
	}
	if st := evaluate(&snap.rules, snap.facts[a.ID], a.Roles, now); st.Gated {
		return []policy.Restriction{Restriction}, nil
	}
	return nil, nil
}

// StandingOf is a member of staff's standing now, from the snapshot in
// memory, without a gate passage: for the banner of their own home page
// (ShowStanding). Anything else shows a standing through the register's
// audited reads.
func (s *Service) StandingOf(a *medguard.Actor) (Standing, bool) {
	snap := s.snap.Load()
	if snap == nil || a.Kind != medguard.UserActor {
		return Standing{}, false
	}
	return evaluate(&snap.rules, snap.facts[a.ID], a.Roles, s.clock.Now()), true
}

// current returns the snapshot, loading it if none was.
func (s *Service) current(ctx context.Context) (*snapshot, error) {
	if snap := s.snap.Load(); snap != nil {
		return snap, nil
	}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	return s.snap.Load(), nil
}

// member finds a member of staff in the snapshot's roster.
func (snap *snapshot) member(id string) (identity.StaffMember, bool) {
	i := slices.IndexFunc(snap.staff, func(m identity.StaffMember) bool { return m.ID == id })
	if i < 0 {
		return identity.StaffMember{}, false
	}
	return snap.staff[i], true
}
