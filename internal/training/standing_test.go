package training

import (
	"testing"
	"time"

	"medguard"
	"medguard/internal/policy"
)

// TestEvaluate is the register's rule as a table: for a doctor's facts at
// a moment, whether record access is closed and what is owed.
func TestEvaluate(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 2, 0, 0, 0, time.UTC) }
	priv := courseRule{id: "priv", requiredFrom: day(2028, 1, 1)}
	sec := courseRule{id: "sec"}
	mrd := courseRule{id: "mrd", audience: []string{policy.RecordsClerk}}
	base := rules{courses: []courseRule{priv, sec, mrd}, settings: DefaultSettings,
		letters: []letterRule{{version: 1, publishedAt: day(2027, 12, 1), effectiveFrom: day(2028, 1, 1)}}}
	unrequired := rules{courses: []courseRule{{id: "priv"}, sec}, settings: DefaultSettings}
	signed := []signature{{version: 1, at: day(2027, 12, 2)}}
	passed := func(c string, at time.Time) attempt { return attempt{course: c, at: at, passed: true} }
	failed := func(c string, at time.Time) attempt { return attempt{course: c, at: at} }
	doctor, clerk, officer := []string{policy.Doctor}, []string{policy.RecordsClerk}, []string{policy.SecurityOfficer}
	cases := []struct {
		name  string
		r     rules
		f     facts
		roles []string
		at    time.Time
		gated bool
		owes  []string
	}{
		{"nothing required: nothing gated", unrequired, facts{createdAt: day(2027, 1, 1)}, doctor, day(2028, 3, 1), false,
			[]string{ObligationPeriodic}},
		{"a new doctor owes the course and the letter", base, facts{createdAt: day(2028, 2, 28)}, doctor, day(2028, 2, 29), true,
			[]string{ObligationRequiredCourse, ObligationLetter}},
		{"before the day the course is required: warned", base, facts{}, doctor, day(2027, 12, 31), false,
			[]string{ObligationRequiredCourse, ObligationLetter}},
		{"trained and signed", base, facts{attempts: []attempt{passed("priv", day(2028, 2, 29))}, signatures: signed}, doctor,
			day(2028, 3, 1), false, nil},
		{"a security officer is never gated", base, facts{}, officer, day(2028, 3, 1), false,
			[]string{ObligationRequiredCourse, ObligationLetter}},
		{"a partner's researcher owes nothing", base, facts{}, []string{policy.Researcher}, day(2028, 3, 1), false, nil},
		// 182 days after 29 February 2028 is 29 August 2028.
		{"overdue on the day, warned", base, facts{attempts: []attempt{passed("priv", day(2028, 2, 29))}, signatures: signed}, doctor,
			day(2028, 8, 29), false, []string{ObligationPeriodic}},
		{"overdue past the grace period", base, facts{attempts: []attempt{passed("priv", day(2028, 2, 29))}, signatures: signed}, doctor,
			day(2028, 9, 12), true, []string{ObligationPeriodic}},
		{"a course of another post does not count for a doctor", base, facts{attempts: []attempt{passed("priv", day(2028, 2, 29)),
			passed("mrd", day(2028, 6, 1))}, signatures: signed}, doctor, day(2028, 9, 12), true, []string{ObligationPeriodic}},
		{"it counts for a clerk", base, facts{attempts: []attempt{passed("priv", day(2028, 2, 29)), passed("mrd", day(2028, 6, 1))},
			signatures: signed}, clerk, day(2028, 9, 12), false, nil},
		{"a failed retake of the required course: warned", base, facts{attempts: []attempt{passed("priv", day(2028, 1, 5)),
			failed("priv", day(2028, 6, 1))}, signatures: signed}, doctor, day(2028, 6, 14), false, []string{ObligationFailedExam}},
		{"then gated after the grace period", base, facts{attempts: []attempt{passed("priv", day(2028, 1, 5)),
			failed("priv", day(2028, 6, 1))}, signatures: signed}, doctor, day(2028, 6, 15), true, []string{ObligationFailedExam}},
		{"a failed optional course is only warned of", base, facts{attempts: []attempt{passed("priv", day(2028, 1, 5)),
			failed("sec", day(2028, 2, 1))}, signatures: signed}, doctor, day(2028, 5, 1), false, []string{ObligationFailedExam}},
		{"an exam after now does not count", base, facts{attempts: []attempt{passed("priv", day(2028, 3, 2))}, signatures: signed}, doctor,
			day(2028, 3, 1), true, []string{ObligationRequiredCourse}},
		{"an order closes access from its day", base, facts{attempts: []attempt{passed("priv", day(2028, 1, 5))}, signatures: signed,
			orders: []orderFact{{id: "o1", course: "priv", at: day(2028, 12, 31), gatesFrom: day(2028, 12, 31)}}}, doctor,
			day(2028, 12, 31), true, []string{ObligationPeriodic, ObligationRetraining}},
		{"an order satisfied by a later pass", base, facts{attempts: []attempt{passed("priv", day(2028, 1, 5)), passed("priv", day(2029, 1, 1))},
			signatures: signed, orders: []orderFact{{id: "o1", course: "priv", at: day(2028, 12, 31), gatesFrom: day(2028, 12, 31)}}},
			doctor, day(2029, 1, 2), false, nil},
		{"a lifted order", base, facts{attempts: []attempt{passed("priv", day(2028, 11, 5))}, signatures: signed,
			orders: []orderFact{{id: "o1", course: "priv", at: day(2028, 12, 1), gatesFrom: day(2028, 12, 1), end: day(2028, 12, 2)}}},
			doctor, day(2028, 12, 3), false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := evaluate(&c.r, &c.f, c.roles, c.at)
			var kinds []string
			for _, o := range st.Obligations {
				kinds = append(kinds, o.Kind)
			}
			if st.Gated != c.gated || len(kinds) != len(c.owes) {
				t.Fatalf("gated %v owes %v, want %v %v (%+v)", st.Gated, kinds, c.gated, c.owes, st)
			}
			for i := range kinds {
				if kinds[i] != c.owes[i] {
					t.Fatalf("owes %v, want %v", kinds, c.owes)
				}
			}
			if st.Warned != (!st.Gated && len(kinds) > 0) {
				t.Fatalf("warned %v", st.Warned)
			}
		})
	}
}

// BenchmarkRestrictions is the gate's question on every decision (each
// item of a list too): answered from memory.
func BenchmarkRestrictions(b *testing.B) {
	day := time.Date(2028, 3, 1, 2, 0, 0, 0, time.UTC)
	s := &Service{}
	snap := &snapshot{rules: rules{courses: []courseRule{{id: "priv", requiredFrom: day.AddDate(0, -6, 0)}, {id: "sec"},
		{id: "mrd", audience: []string{policy.RecordsClerk}}}, settings: DefaultSettings,
		letters: []letterRule{{version: 1, publishedAt: day.AddDate(-1, 0, 0), effectiveFrom: day.AddDate(-1, 0, 0)}}},
		facts: map[string]*facts{}}
	f := &facts{signatures: []signature{{version: 1, at: day.AddDate(-1, 0, 0)}}}
	for i := 0; i < 10; i++ {
		f.attempts = append(f.attempts, attempt{course: "priv", at: day.AddDate(0, -6*i, 0), passed: i%3 != 1})
	}
	snap.facts["u1"] = f
	s.snap.Store(snap)
	a := &medguard.Actor{Kind: medguard.UserActor, ID: "u1", Roles: []string{policy.Doctor}}
	b.ReportAllocs()
	for b.Loop() {
		s.Restrictions(a, day)
	}
}
