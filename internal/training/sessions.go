package training

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/identity"
	"medguard/internal/policy"
)

// Session is one sitting of a course, with its exam.
type Session struct {
	ID          string    `json:"id"`
	CourseID    string    `json:"course_id"`
	CourseCode  string    `json:"course_code"`
	CourseTitle string    `json:"course_title"`
	HeldAt      time.Time `json:"held_at"`
	Location    string    `json:"location"`
	Trainer     string    `json:"trainer"`
	// PassMark is the course's pass mark when the session was created.
	PassMark  int       `json:"pass_mark"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	// Enrolled, Attended, Passed and Failed count the session's people.
	Enrolled int `json:"enrolled"`
	Attended int `json:"attended"`
	Passed   int `json:"passed"`
	Failed   int `json:"failed"`
	// Attendance lists the people enrolled, by username (GetSession only).
	Attendance []Attendance `json:"attendance,omitempty"`
}

// Attendance is one person at a session: enrolled, and once recorded,
// present or absent, with their exam score and whether it passed.
type Attendance struct {
	SessionID   string     `json:"session_id"`
	CourseID    string     `json:"course_id"`
	CourseCode  string     `json:"course_code"`
	CourseTitle string     `json:"course_title"`
	HeldAt      time.Time  `json:"held_at"`
	UserID      string     `json:"user_id"`
	Username    string     `json:"username"`
	EnrolledBy  string     `json:"enrolled_by"`
	EnrolledAt  time.Time  `json:"enrolled_at"`
	Attended    *bool      `json:"attended,omitempty"`
	Score       *int       `json:"score,omitempty"`
	Passed      *bool      `json:"passed,omitempty"`
	Note        string     `json:"note,omitempty"`
	RecordedBy  string     `json:"recorded_by,omitempty"`
	RecordedAt  *time.Time `json:"recorded_at,omitempty"`
}

// NewSession schedules a session of a course (or records one held).
type NewSession struct {
	CourseID string    `json:"course_id"`
	HeldAt   time.Time `json:"held_at"`
	Location string    `json:"location"`
	Trainer  string    `json:"trainer"`
}

// Enrolment enrols people in a session: by id, and every active member of
// staff of a department for whom the course is.
type Enrolment struct {
	UserIDs    []string `json:"user_ids,omitempty"`
	Department string   `json:"department,omitempty"`
}

// NewResult records a person's attendance and exam score: present with a
// score from 0 to 100 (passed when it reaches the session's pass mark),
// or absent without one; Note is sealed.
type NewResult struct {
	Attended bool   `json:"attended"`
	Score    *int   `json:"score,omitempty"`
	Note     string `json:"note,omitempty"`
}

// MaxEnrolment is the most people one enrolment adds.
const MaxEnrolment = 500

var errNoSession = &medguard.Error{Kind: medguard.NotFound, Message: "no such training session"}

func sessionResource(id, subject string) policy.Resource {
	return policy.Resource{Type: "training_session", ID: id, SubjectUserID: subject}
}

// CreateSession schedules a session of a course — or records one held,
// from the paper sign-in sheet — with its place and trainer
// (training.manage). Its pass mark is the course's now.
func (s *Service) CreateSession(ctx context.Context, call *medguard.Call, in NewSession) (*Session, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	var err error
	if in.HeldAt.IsZero() {
		return nil, medguard.InvalidField("held_at", "held_at is required")
	}
	in.HeldAt = in.HeldAt.UTC().Truncate(time.Millisecond)
	if in.HeldAt.Before(now.AddDate(-2, 0, 0)) || in.HeldAt.After(now.AddDate(1, 0, 0)) {
		return nil, medguard.InvalidField("held_at", "held_at must be within two years before and a year after now")
	}
	if in.Location, err = medguard.Line("location", in.Location, 100, true); err != nil {
		return nil, err
	}
	if in.Trainer, err = medguard.Line("trainer", in.Trainer, 64, true); err != nil {
		return nil, err
	}
	c, err := s.loadCourse(ctx, call, policy.TrainingManage, "training.session_create", in.CourseID)
	if err != nil {
		return nil, err
	}
	id := medguard.NewID(now)
	ss := &Session{ID: id, CourseID: c.ID, CourseCode: c.Code, CourseTitle: c.Title, HeldAt: in.HeldAt, Location: in.Location,
		Trainer: in.Trainer, PassMark: c.PassMark, CreatedBy: call.Actor.Name, CreatedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.session_create",
		Resource: sessionResource(id, "")}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO training_sessions (id, course_id, held_at, location, trainer, pass_mark,
				created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, id, c.ID, medguard.Millis(in.HeldAt), in.Location,
				in.Trainer, c.PassMark, call.Actor.Name, medguard.Millis(now))
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return ss, nil
}

const sessionColumns = `s.id, s.course_id, c.code, c.title, s.held_at, s.location, s.trainer, s.pass_mark, s.created_by, s.created_at,
	(SELECT count(*) FROM training_attendance a WHERE a.session_id = s.id),
	(SELECT count(*) FROM training_attendance a WHERE a.session_id = s.id AND a.attended = 1),
	(SELECT count(*) FROM training_attendance a WHERE a.session_id = s.id AND a.passed = 1),
	(SELECT count(*) FROM training_attendance a WHERE a.session_id = s.id AND a.passed = 0)`

const sessionFrom = ` FROM training_sessions s JOIN training_courses c ON c.id = s.course_id`

func scanSession(sc interface{ Scan(...any) error }) (*Session, error) {
	var ss Session
	var held, created int64
	if err := sc.Scan(&ss.ID, &ss.CourseID, &ss.CourseCode, &ss.CourseTitle, &held, &ss.Location, &ss.Trainer, &ss.PassMark,
		&ss.CreatedBy, &created, &ss.Enrolled, &ss.Attended, &ss.Passed, &ss.Failed); err != nil {
		return nil, err
	}
	ss.HeldAt, ss.CreatedAt = medguard.FromMillis(held), medguard.FromMillis(created)
	return &ss, nil
}

// session reads a session; nil when there is none.
func (s *Service) session(ctx context.Context, id string) (*Session, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	ss, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+sessionFrom+` WHERE s.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return ss, medguard.Wrap("training.session", err)
}

// sessions reads the sessions of a course (all: ""), newest first.
func (s *Service) sessions(ctx context.Context, courseID string, limit int) ([]Session, error) {
	q := `SELECT ` + sessionColumns + sessionFrom
	args := []any{}
	if courseID != "" {
		q += ` WHERE s.course_id = $1`
		args = append(args, courseID)
	}
	args = append(args, limit)
	q += ` ORDER BY s.held_at DESC, s.id DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, medguard.Wrap("training.sessions", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, medguard.Wrap("training.sessions", err)
		}
		out = append(out, *ss)
	}
	return out, medguard.Wrap("training.sessions", rows.Err())
}

// loadSession reads a session for an operation; an attempt on a missing
// one is logged and answered 404.
func (s *Service) loadSession(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Session, error) {
	ss, err := s.session(ctx, id)
	if err != nil {
		return nil, err
	}
	if ss == nil {
		return nil, s.missing(ctx, call, action, auditAction, "training_session", id, errNoSession)
	}
	return ss, nil
}

// ListSessions lists the sessions, newest first, of one course or all
// (training.read).
func (s *Service) ListSessions(ctx context.Context, call *medguard.Call, courseID string) ([]Session, error) {
	if courseID != "" && !medguard.ValidID(courseID) {
		return nil, medguard.InvalidField("course_id", "course_id is not an id")
	}
	var out []Session
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.session_list",
		Resource: policy.Resource{Type: "training_session"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, err = s.sessions(ctx, courseID, 2000)
		return nil, err
	})
	return out, err
}

// GetSession returns a session with its attendance (training.read).
func (s *Service) GetSession(ctx context.Context, call *medguard.Call, id string) (*Session, error) {
	ss, err := s.loadSession(ctx, call, policy.TrainingRead, "training.session_read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.session_read",
		Resource: sessionResource(ss.ID, "")}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		ss.Attendance, err = s.attendance(ctx, `a.session_id = $1`, ss.ID)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// attendance reads attendance rows matching where (on a, with $1).
func (s *Service) attendance(ctx context.Context, where string, arg any) ([]Attendance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.session_id, s.course_id, c.code, c.title, s.held_at, a.user_id, a.username,
		a.enrolled_by, a.enrolled_at, a.attended, a.score, a.passed, a.note, COALESCE(a.recorded_by, ''), a.recorded_at
		FROM training_attendance a JOIN training_sessions s ON s.id = a.session_id JOIN training_courses c ON c.id = s.course_id
		WHERE `+where+` ORDER BY s.held_at DESC, a.username`, arg)
	if err != nil {
		return nil, medguard.Wrap("training.attendance", err)
	}
	type row struct {
		a    Attendance
		note []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		var enrolled, held int64
		var attended, score, passed, recorded sql.NullInt64
		if err := rows.Scan(&r.a.SessionID, &r.a.CourseID, &r.a.CourseCode, &r.a.CourseTitle, &held, &r.a.UserID, &r.a.Username,
			&r.a.EnrolledBy, &enrolled, &attended, &score, &passed, &r.note, &r.a.RecordedBy, &recorded); err != nil {
			rows.Close()
			return nil, medguard.Wrap("training.attendance", err)
		}
		r.a.EnrolledAt, r.a.HeldAt = medguard.FromMillis(enrolled), medguard.FromMillis(held)
		if attended.Valid {
			v := attended.Int64 != 0
			r.a.Attended = &v
		}
		if score.Valid {
			v := int(score.Int64)
			r.a.Score = &v
		}
		if passed.Valid {
			v := passed.Int64 != 0
			r.a.Passed = &v
		}
		if recorded.Valid {
			r.a.RecordedAt = ptr(medguard.FromMillis(recorded.Int64))
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, medguard.Wrap("training.attendance", err)
	}
	out := make([]Attendance, 0, len(rs))
	for _, r := range rs {
		if r.a.Note, err = s.open(ctx, "training_attendance", r.a.SessionID+"/"+r.a.UserID, "note", r.note); err != nil {
			return nil, err
		}
		out = append(out, r.a)
	}
	return out, nil
}

// Enrol enrols people in a session (training.manage): named members of
// staff, and every active member of staff of a department for whom the
// course is. People enrolled already stay as they are. It returns the
// session with its attendance.
func (s *Service) Enrol(ctx context.Context, call *medguard.Call, sessionID string, in Enrolment) (*Session, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	if len(in.UserIDs) == 0 && in.Department == "" {
		return nil, medguard.InvalidField("user_ids", "name the people to enrol, or a department")
	}
	if len(in.UserIDs) > MaxEnrolment {
		return nil, medguard.InvalidField("user_ids", "at most %d people at once", MaxEnrolment)
	}
	ss, err := s.loadSession(ctx, call, policy.TrainingManage, "training.enrol", sessionID)
	if err != nil {
		return nil, err
	}
	snap, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range in.UserIDs {
		if _, ok := snap.member(id); !ok {
			// Someone created since the snapshot: read again.
			if err := s.Load(ctx); err != nil {
				return nil, err
			}
			snap = s.snap.Load()
			break
		}
	}
	var course *courseRule
	for i := range snap.rules.courses {
		if snap.rules.courses[i].id == ss.CourseID {
			course = &snap.rules.courses[i]
		}
	}
	var who []identity.StaffMember
	for _, id := range in.UserIDs {
		m, ok := snap.member(id)
		if !ok || !m.Active || !staffMember(m.Roles) {
			return nil, medguard.InvalidField("user_ids", "an id names no active member of staff")
		}
		who = append(who, m)
	}
	if in.Department != "" {
		found := false
		for _, m := range snap.staff {
			if m.Department != in.Department || !m.Active || !staffMember(m.Roles) {
				continue
			}
			found = true
			if course == nil || course.applies(m.Roles) {
				who = append(who, m)
			}
		}
		if !found {
			return nil, medguard.InvalidField("department", "the department has no active member of staff")
		}
	}
	slices.SortFunc(who, func(a, b identity.StaffMember) int { return compare(a.Username, b.Username) })
	who = slices.CompactFunc(who, func(a, b identity.StaffMember) bool { return a.ID == b.ID })
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.enrol",
		Resource: sessionResource(ss.ID, "")}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			for _, m := range who {
				if _, err := tx.ExecContext(ctx, `INSERT INTO training_attendance (session_id, user_id, username, enrolled_by, enrolled_at)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, user_id) DO NOTHING`, ss.ID, m.ID, m.Username, call.Actor.Name,
					medguard.Millis(now)); err != nil {
					return err
				}
			}
			return nil
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if ss, err = s.session(ctx, ss.ID); err != nil {
		return nil, err
	}
	ss.Attendance, err = s.attendance(ctx, `a.session_id = $1`, ss.ID)
	return ss, err
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RecordResult records one person's attendance and exam score at a
// session held (training.manage): present with a score, passed when it
// reaches the session's pass mark; or absent. Nobody records their own
// result (policy rule deny.own_training). A result is recorded once and
// kept as recorded: a failed exam is retaken at another session.
func (s *Service) RecordResult(ctx context.Context, call *medguard.Call, sessionID, userID string, in NewResult) (*Attendance, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	switch {
	case in.Attended && in.Score == nil:
		return nil, medguard.InvalidField("score", "the exam score of a person present is required")
	case in.Attended && (*in.Score < 0 || *in.Score > 100):
		return nil, medguard.InvalidField("score", "score must be between 0 and 100")
	case !in.Attended && in.Score != nil:
		return nil, medguard.InvalidField("score", "a person absent has no score")
	}
	var err error
	if in.Note, err = medguard.Text("note", in.Note, 500, false); err != nil {
		return nil, err
	}
	if !medguard.ValidID(userID) {
		return nil, medguard.InvalidField("user_id", "user_id is not an id")
	}
	ss, err := s.loadSession(ctx, call, policy.TrainingManage, "training.result", sessionID)
	if err != nil {
		return nil, err
	}
	rows, err := s.attendance(ctx, `a.session_id = $1`, ss.ID)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(rows, func(a Attendance) bool { return a.UserID == userID })
	note, err := s.seal(ctx, "training_attendance", ss.ID+"/"+userID, "note", in.Note)
	if err != nil {
		return nil, err
	}
	passed := in.Attended && *in.Score >= ss.PassMark
	var out *Attendance
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.result",
		Resource: sessionResource(ss.ID, userID)}, func(policy.Decision) (audit.Mutation, error) {
		switch {
		case i < 0:
			return nil, medguard.InvalidField("user_id", "the person is not enrolled in the session")
		case now.Before(ss.HeldAt):
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "not_held", Message: "the session has not been held yet"}
		case rows[i].RecordedAt != nil:
			return nil, &medguard.Error{Kind: medguard.Conflict, Code: "recorded", Message: "the result was recorded already: results are kept as recorded, and a failed exam is retaken at another session"}
		}
		a := rows[i]
		a.Attended, a.Note, a.RecordedBy, a.RecordedAt, a.Score = &in.Attended, in.Note, call.Actor.Name, &now, in.Score
		// An absence is no attempt: only an exam sat passes or fails.
		score, pass := sql.NullInt64{}, sql.NullInt64{}
		if in.Attended {
			a.Passed = &passed
			score = sql.NullInt64{Int64: int64(*in.Score), Valid: true}
			pass = sql.NullInt64{Int64: int64(boolInt(passed)), Valid: true}
		}
		out = &a
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE training_attendance SET attended = $1, score = $2, passed = $3, note = $4,
				recorded_by = $5, recorded_at = $6 WHERE session_id = $7 AND user_id = $8 AND recorded_at IS NULL`,
				boolInt(in.Attended), score, pass, note, call.Actor.Name, medguard.Millis(now), ss.ID, userID)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	s.settle(ctx, userID)
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
