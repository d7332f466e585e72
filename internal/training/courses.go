package training

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/policy"
	"medguard/internal/storage"
)

// The kinds of course.
const (
	// General is training for all staff (patient privacy, information
	// security awareness).
	General = "general"
	// Special is training for sensitive posts (the records office, system
	// administrators): its audience names their roles.
	Special = "special"
)

// CourseKinds lists the kinds of course.
var CourseKinds = []string{General, Special}

// Course is a course of the register.
type Course struct {
	ID    string `json:"id"`
	Code  string `json:"code"`
	Title string `json:"title"`
	Kind  string `json:"kind"`
	// Audience are the roles the course is for; empty: all staff.
	Audience    []string `json:"audience"`
	PassMark    int      `json:"pass_mark"`
	Description string   `json:"description,omitempty"`
	// RequiredFrom, if set, is the day from which the course is required
	// for record access: a member of staff with a clinical role who has
	// not passed it gets no patient data from then on.
	RequiredFrom *time.Time `json:"required_from,omitempty"`
	RequiredBy   string     `json:"required_by,omitempty"`
	CreatedBy    string     `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	// Sessions are the course's sessions, newest first (GetCourse only).
	Sessions []Session `json:"sessions,omitempty"`
}

// NewCourse creates a course.
type NewCourse struct {
	Code        string   `json:"code"`
	Title       string   `json:"title"`
	Kind        string   `json:"kind"`
	Audience    []string `json:"audience"`
	PassMark    int      `json:"pass_mark"`
	Description string   `json:"description,omitempty"`
}

// CourseChanges change a course's title, description, audience or pass
// mark (for sessions created from then on); nil fields stay.
type CourseChanges struct {
	Title       *string   `json:"title,omitempty"`
	Description *string   `json:"description,omitempty"`
	Audience    *[]string `json:"audience,omitempty"`
	PassMark    *int      `json:"pass_mark,omitempty"`
}

// Requirement marks a course as required for record access from a day
// (From: default now; a later day gives the staff time to pass it, with
// a warning meanwhile), or no longer required (Required false).
type Requirement struct {
	Required bool      `json:"required"`
	From     time.Time `json:"from,omitzero"`
}

// MaxDescription is the longest course description, in characters.
const MaxDescription = 2000

var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9-]{1,23}$`)

var errNoCourse = &medguard.Error{Kind: medguard.NotFound, Message: "no such course"}

func checkAudience(field string, roles []string, kind string) ([]string, error) {
	out := []string{}
	for _, r := range roles {
		r = strings.TrimSpace(r)
		if _, ok := policy.LookupRole(r); !ok {
			return nil, medguard.InvalidField(field, "%s names an unknown role", field)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	if kind == Special && len(out) == 0 {
		return nil, medguard.InvalidField(field, "a special course names the roles of the sensitive posts it is for")
	}
	return out, nil
}

func checkPassMark(field string, n int) error {
	if n < 1 || n > 100 {
		return medguard.InvalidField(field, "%s must be between 1 and 100", field)
	}
	return nil
}

func courseResource(id string) policy.Resource {
	return policy.Resource{Type: "training_course", ID: id}
}

// CreateCourse creates a course (training.manage).
func (s *Service) CreateCourse(ctx context.Context, call *medguard.Call, in NewCourse) (*Course, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	in.Code = strings.ToUpper(strings.TrimSpace(in.Code))
	if !codePattern.MatchString(in.Code) {
		return nil, medguard.InvalidField("code", "code must be 2-24 capital letters, digits or '-', starting with a letter (e.g. PRIV-101)")
	}
	var err error
	if in.Title, err = medguard.Line("title", in.Title, 100, true); err != nil {
		return nil, err
	}
	if !slices.Contains(CourseKinds, in.Kind) {
		return nil, medguard.InvalidField("kind", "kind must be general or special")
	}
	if in.Audience, err = checkAudience("audience", in.Audience, in.Kind); err != nil {
		return nil, err
	}
	if err := checkPassMark("pass_mark", in.PassMark); err != nil {
		return nil, err
	}
	if in.Description, err = medguard.Text("description", in.Description, MaxDescription, false); err != nil {
		return nil, err
	}
	id := medguard.NewID(now)
	c := &Course{ID: id, Code: in.Code, Title: in.Title, Kind: in.Kind, Audience: in.Audience, PassMark: in.PassMark,
		Description: in.Description, CreatedBy: call.Actor.Name, CreatedAt: now}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.course_create",
		Resource: courseResource(id)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO training_courses (id, code, title, kind, audience, pass_mark, description,
				created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, in.Code, in.Title, in.Kind,
				jsonList(in.Audience), in.PassMark, in.Description, call.Actor.Name, medguard.Millis(now))
			if storage.IsConflict(err) {
				return &medguard.Error{Kind: medguard.Conflict, Field: "code", Message: "another course has this code"}
			}
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return c, nil
}

const courseColumns = `id, code, title, kind, audience, pass_mark, description, required_from, COALESCE(required_by, ''),
	created_by, created_at`

func scanCourse(sc interface{ Scan(...any) error }) (*Course, error) {
	var c Course
	var aud string
	var from sql.NullInt64
	var created int64
	if err := sc.Scan(&c.ID, &c.Code, &c.Title, &c.Kind, &aud, &c.PassMark, &c.Description, &from, &c.RequiredBy,
		&c.CreatedBy, &created); err != nil {
		return nil, err
	}
	c.Audience, c.CreatedAt = parseList(aud), medguard.FromMillis(created)
	if from.Valid {
		c.RequiredFrom = ptr(medguard.FromMillis(from.Int64))
	}
	return &c, nil
}

// course reads a course; nil when there is none.
func (s *Service) course(ctx context.Context, id string) (*Course, error) {
	if !medguard.ValidID(id) {
		return nil, nil
	}
	c, err := scanCourse(s.db.QueryRowContext(ctx, `SELECT `+courseColumns+` FROM training_courses WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c, medguard.Wrap("training.course", err)
}

// courses reads every course, by code.
func (s *Service) courses(ctx context.Context) ([]Course, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+courseColumns+` FROM training_courses ORDER BY code`)
	if err != nil {
		return nil, medguard.Wrap("training.courses", err)
	}
	defer rows.Close()
	out := []Course{}
	for rows.Next() {
		c, err := scanCourse(rows)
		if err != nil {
			return nil, medguard.Wrap("training.courses", err)
		}
		out = append(out, *c)
	}
	return out, medguard.Wrap("training.courses", rows.Err())
}

// missing logs an attempt on something that does not exist and answers
// with notFound (or the refusal, for a caller without the permission).
func (s *Service) missing(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, typ, id string,
	notFound error) error {
	return s.gate.Missing(ctx, gate.Passage{Call: call, Action: action, AuditAction: auditAction,
		Resource: policy.Resource{Type: typ, ID: id}}, notFound)
}

// loadCourse reads a course for an operation; an attempt on a missing one
// is logged and answered 404.
func (s *Service) loadCourse(ctx context.Context, call *medguard.Call, action policy.Permission, auditAction, id string) (*Course, error) {
	c, err := s.course(ctx, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, s.missing(ctx, call, action, auditAction, "training_course", id, errNoCourse)
	}
	return c, nil
}

// ListCourses lists the courses by code (training.read).
func (s *Service) ListCourses(ctx context.Context, call *medguard.Call) ([]Course, error) {
	var out []Course
	_, _, err := s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.course_list",
		Resource: policy.Resource{Type: "training_course"}}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		out, err = s.courses(ctx)
		return nil, err
	})
	return out, err
}

// GetCourse returns a course with its sessions (training.read).
func (s *Service) GetCourse(ctx context.Context, call *medguard.Call, id string) (*Course, error) {
	c, err := s.loadCourse(ctx, call, policy.TrainingRead, "training.course_read", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingRead, AuditAction: "training.course_read",
		Resource: courseResource(c.ID)}, func(policy.Decision) (audit.Mutation, error) {
		var err error
		c.Sessions, err = s.sessions(ctx, c.ID, 500)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// UpdateCourse changes a course's title, description, audience or pass
// mark (training.manage). A new pass mark applies to the sessions created
// from then on; the results recorded stay as they were judged.
func (s *Service) UpdateCourse(ctx context.Context, call *medguard.Call, id string, in CourseChanges) (*Course, error) {
	c, err := s.loadCourse(ctx, call, policy.TrainingManage, "training.course_update", id)
	if err != nil {
		return nil, err
	}
	if in.Title != nil {
		if c.Title, err = medguard.Line("title", *in.Title, 100, true); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		if c.Description, err = medguard.Text("description", *in.Description, MaxDescription, false); err != nil {
			return nil, err
		}
	}
	if in.Audience != nil {
		if c.Audience, err = checkAudience("audience", *in.Audience, c.Kind); err != nil {
			return nil, err
		}
	}
	if in.PassMark != nil {
		if err := checkPassMark("pass_mark", *in.PassMark); err != nil {
			return nil, err
		}
		c.PassMark = *in.PassMark
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.course_update",
		Resource: courseResource(c.ID)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE training_courses SET title = $1, description = $2, audience = $3, pass_mark = $4
				WHERE id = $5`, c.Title, c.Description, jsonList(c.Audience), c.PassMark, c.ID)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	s.reload(ctx)
	return c, nil
}

// SetRequired marks a course as required for record access from a day, or
// no longer required (training.manage). From the first day a course is
// required, record access is gated on training (Restrictions): a new
// installation requires none, so that nobody is locked out on day one.
// The day may not be in the past (the staff who have not passed the
// course are warned until it comes).
func (s *Service) SetRequired(ctx context.Context, call *medguard.Call, id string, in Requirement) (*Course, error) {
	now := s.clock.Now().Truncate(time.Millisecond)
	from := sql.NullInt64{}
	if in.Required {
		if in.From.IsZero() {
			in.From = now
		}
		in.From = in.From.UTC().Truncate(time.Millisecond)
		if in.From.Before(now.Add(-time.Minute)) {
			return nil, medguard.InvalidField("from", "from may not be in the past")
		}
		if in.From.After(now.AddDate(1, 0, 0)) {
			return nil, medguard.InvalidField("from", "from must be within a year")
		}
		from = sql.NullInt64{Int64: medguard.Millis(in.From), Valid: true}
	} else if !in.From.IsZero() {
		return nil, medguard.InvalidField("from", "from goes with required: true")
	}
	c, err := s.loadCourse(ctx, call, policy.TrainingManage, "training.course_require", id)
	if err != nil {
		return nil, err
	}
	_, _, err = s.gate.Enter(ctx, gate.Passage{Call: call, Action: policy.TrainingManage, AuditAction: "training.course_require",
		Resource: courseResource(c.ID)}, func(policy.Decision) (audit.Mutation, error) {
		return func(ctx context.Context, tx *sql.Tx, _ uint64) error {
			_, err := tx.ExecContext(ctx, `UPDATE training_courses SET required_from = $1, required_by = $2 WHERE id = $3`,
				from, storage.NullString(call.Actor.Name), c.ID)
			return err
		}, nil
	})
	if err != nil {
		return nil, err
	}
	c.RequiredFrom, c.RequiredBy = nil, ""
	if in.Required {
		c.RequiredFrom, c.RequiredBy = ptr(in.From), call.Actor.Name
	}
	s.reload(ctx)
	return c, nil
}

// defaultCourse is the course a retraining order names when none is
// given: the earliest course required for record access that is for
// someone holding roles, or else the first course for them of all staff.
func (snap *snapshot) defaultCourse(roles []string) string {
	var first *courseRule
	for i := range snap.rules.courses {
		c := &snap.rules.courses[i]
		if c.required() && c.applies(roles) && (first == nil || c.requiredFrom.Before(first.requiredFrom)) {
			first = c
		}
	}
	if first != nil {
		return first.id
	}
	for i := range snap.rules.courses {
		if len(snap.rules.courses[i].audience) == 0 {
			return snap.rules.courses[i].id
		}
	}
	return ""
}
