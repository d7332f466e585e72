package training

import (
	"slices"
	"time"
)

// The kinds of obligation a member of staff may owe.
const (
	// ObligationRequiredCourse: a course required for record access never
	// passed. It closes access from the day the course is required (a
	// new member of staff: at once).
	ObligationRequiredCourse = "required_course"
	// ObligationFailedExam: the last exam of a course failed after an
	// earlier pass (retraining until passed). For the required course it
	// closes access the grace period after the failure; for another it is
	// only warned of (the periodic training catches it).
	ObligationFailedExam = "failed_exam"
	// ObligationLetter: the commitment letter in force not signed. It
	// closes access from the day the version takes effect.
	ObligationLetter = "commitment_letter"
	// ObligationPeriodic: the twice-yearly training overdue. It closes
	// access the grace period after it fell due.
	ObligationPeriodic = "periodic_training"
	// ObligationRetraining: a retraining order not yet satisfied by a
	// passed exam of its course. It closes access from the order's
	// GatesFrom (an accountability case's: at once).
	ObligationRetraining = "retraining"
)

// ObligationKinds lists the kinds of obligation.
var ObligationKinds = []string{ObligationRequiredCourse, ObligationFailedExam, ObligationLetter, ObligationPeriodic, ObligationRetraining}

// Obligation is something a member of staff owes now.
type Obligation struct {
	Kind     string `json:"kind"`
	CourseID string `json:"course_id,omitempty"`
	// CourseCode names the course.
	CourseCode    string `json:"course_code,omitempty"`
	LetterVersion int    `json:"letter_version,omitempty"`
	OrderID       string `json:"order_id,omitempty"`
	// DueAt is when it fell due (or falls due).
	DueAt time.Time `json:"due_at"`
	// GatesAt is when it closes the person's record access: nil when it
	// never does (not a clinical role, the hospital requires no course,
	// or an obligation that is only warned of).
	GatesAt *time.Time `json:"gates_at,omitempty"`
	// Gating is true when it closes record access now.
	Gating bool `json:"gating"`
}

// Standing is a member of staff's training as of a moment: what they owe,
// and whether record access is closed to them for it.
type Standing struct {
	// Clinical says the person holds a role that opens patient data:
	// only they are ever gated.
	Clinical bool `json:"clinical"`
	// Enforced says the hospital closes record access on training now (a
	// course is required for record access, from a day that has come).
	Enforced bool `json:"enforced"`
	// Gated says record access is closed to them now
	// (deny.training_required).
	Gated bool `json:"gated"`
	// Warned says they owe something that does not close access yet.
	Warned bool `json:"warned"`
	// Overdue says the twice-yearly training is overdue.
	Overdue bool `json:"overdue"`
	// LastTrainedAt is their last passed exam of a course for them;
	// NextDueAt when the next training falls due.
	LastTrainedAt *time.Time `json:"last_trained_at,omitempty"`
	NextDueAt     *time.Time `json:"next_due_at,omitempty"`
	// LetterVersion is the newest commitment letter they signed (0: none).
	LetterVersion int          `json:"letter_version"`
	Obligations   []Obligation `json:"obligations"`
}

// GatesAt is the earliest time an obligation closes access (nil: none).
func (st Standing) GatesAt() *time.Time {
	var first *time.Time
	for _, o := range st.Obligations {
		if o.GatesAt != nil && (first == nil || o.GatesAt.Before(*first)) {
			first = o.GatesAt
		}
	}
	return first
}

// The register's facts, as the evaluation reads them.
type (
	courseRule struct {
		id, code     string
		audience     []string // roles; empty: all staff
		requiredFrom time.Time
	}
	letterRule struct {
		version                    int
		publishedAt, effectiveFrom time.Time
		resign                     bool
	}
	rules struct {
		courses  []courseRule
		letters  []letterRule // by version
		settings Settings
	}
	attempt struct {
		course string
		at     time.Time
		passed bool
	}
	signature struct {
		version int
		at      time.Time
	}
	orderFact struct {
		id, course         string
		at, gatesFrom, end time.Time // end: cancelled (zero: not)
	}
	facts struct {
		createdAt  time.Time
		attempts   []attempt // by time
		signatures []signature
		orders     []orderFact
	}
)

// required reports whether c is required for record access (from some
// day, come or not).
func (c *courseRule) required() bool { return !c.requiredFrom.IsZero() }

// applies reports whether the course is for someone holding roles.
func (c *courseRule) applies(roles []string) bool {
	return len(c.audience) == 0 || slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(c.audience, r) })
}

// enforcedFrom is the first day a course is required for record access
// (zero: none is).
func (r *rules) enforcedFrom() time.Time {
	var first time.Time
	for i := range r.courses {
		if c := &r.courses[i]; c.required() && (first.IsZero() || c.requiredFrom.Before(first)) {
			first = c.requiredFrom
		}
	}
	return first
}

// evaluate is the person's standing at now, from the facts up to now: the
// rule of the register in one place. f may be nil (someone the register
// knows nothing of: a new member of staff).
func evaluate(r *rules, f *facts, roles []string, now time.Time) Standing {
	if f == nil {
		f = &facts{}
	}
	st := Standing{Clinical: clinical(roles), Obligations: []Obligation{}}
	enforce := r.enforcedFrom()
	st.Enforced = !enforce.IsZero() && !now.Before(enforce)
	if !staffMember(roles) {
		return st // a partner's researcher is not the hospital's staff: owes nothing
	}
	add := func(o Obligation, gates time.Time) {
		if st.Clinical && !enforce.IsZero() && !gates.IsZero() {
			if gates.Before(enforce) {
				gates = enforce
			}
			o.GatesAt = &gates
			o.Gating = !now.Before(gates)
		}
		st.Gated = st.Gated || o.Gating
		st.Obligations = append(st.Obligations, o)
	}
	grace := r.settings.Grace()

	// Courses: the required ones passed, the last exam of each not failed.
	var lastPass time.Time
	for i := range r.courses {
		c := &r.courses[i]
		if !c.applies(roles) {
			continue
		}
		var passed bool
		var last *attempt
		for j := range f.attempts {
			a := &f.attempts[j]
			if a.course != c.id || a.at.After(now) {
				continue
			}
			last = a
			if a.passed {
				passed = true
				if a.at.After(lastPass) {
					lastPass = a.at
				}
			}
		}
		switch {
		case c.required() && !passed:
			add(Obligation{Kind: ObligationRequiredCourse, CourseID: c.id, CourseCode: c.code, DueAt: c.requiredFrom}, c.requiredFrom)
		case last != nil && !last.passed:
			var gates time.Time
			if c.required() {
				gates = last.at.Add(grace)
			}
			add(Obligation{Kind: ObligationFailedExam, CourseID: c.id, CourseCode: c.code, DueAt: last.at}, gates)
		}
	}

	// The commitment letter: the newest version that everyone must sign
	// (the first, or one the hospital said requires signing again).
	var need *letterRule
	for i := range r.letters {
		l := &r.letters[i]
		if l.publishedAt.After(now) {
			continue
		}
		if need == nil || l.resign {
			need = l
		}
	}
	for _, sg := range f.signatures {
		if !sg.at.After(now) && sg.version > st.LetterVersion {
			st.LetterVersion = sg.version
		}
	}
	if need != nil && st.LetterVersion < need.version {
		add(Obligation{Kind: ObligationLetter, LetterVersion: need.version, DueAt: need.effectiveFrom}, need.effectiveFrom)
	}

	// The twice-yearly training: due a period after the last passed exam
	// (or after joining, for someone never trained).
	base := lastPass
	if base.IsZero() {
		base = f.createdAt
	}
	if !lastPass.IsZero() {
		st.LastTrainedAt = ptr(lastPass)
	}
	if !base.IsZero() && r.settings.PeriodDays > 0 {
		due := base.Add(r.settings.Period())
		st.NextDueAt = ptr(due)
		if !now.Before(due) {
			st.Overdue = true
			add(Obligation{Kind: ObligationPeriodic, DueAt: due}, due.Add(grace))
		}
	}

	// Retraining orders: open until an exam of their course is passed
	// after the order.
	for _, o := range f.orders {
		if o.at.After(now) || !o.end.IsZero() && !o.end.After(now) {
			continue
		}
		done := false
		for _, a := range f.attempts {
			if a.course == o.course && a.passed && a.at.After(o.at) && !a.at.After(now) {
				done = true
				break
			}
		}
		if !done {
			code := ""
			for i := range r.courses {
				if r.courses[i].id == o.course {
					code = r.courses[i].code
				}
			}
			add(Obligation{Kind: ObligationRetraining, CourseID: o.course, CourseCode: code, OrderID: o.id, DueAt: o.at}, o.gatesFrom)
		}
	}
	st.Warned = !st.Gated && len(st.Obligations) > 0
	return st
}
