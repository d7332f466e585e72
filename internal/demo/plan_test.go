package demo

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"medguard/internal/synth"
)

// AwkwardDays are the days on which the demo has been built in its tests:
// New Year in Beijing (still 31 December in UTC), a leap day, the day a
// user first met the newborn registered before birth, the day after
// February in a common year, and today.
func AwkwardDays() []struct {
	Name string
	Now  time.Time
} {
	cst := time.FixedZone("CST", 8*60*60)
	return []struct {
		Name string
		Now  time.Time
	}{
		{"new year in Beijing", time.Date(2027, 1, 1, 0, 0, 0, 0, cst)},
		{"leap day", time.Date(2028, 2, 29, 12, 0, 0, 0, cst)},
		{"2026-12-06", time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)},
		{"first of March", time.Date(2026, 3, 1, 12, 0, 0, 0, cst)},
		{"now", time.Now()},
	}
}

var (
	stampPattern  = regexp.MustCompile(`(\d{4})-(\d{2})-(\d{2})`)
	cnDatePattern = regexp.MustCompile(`(\d{4})年(\d{1,2})月(\d{1,2})日`)
)

// TestPlanKeepsToTheCalendar plans a hospital of the default size on
// awkward days and checks every planned date against the calendar and the
// simulated clock: the year ends yesterday; no one is registered, admitted
// or written about before birth; stays, records, discharges and archiving
// keep their order; no record mentions a date before the patient's birth
// or after its own day.
func TestPlanKeepsToTheCalendar(t *testing.T) {
	for _, c := range AwkwardDays() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			n := 10000 // as "medguard demo" makes
			if testing.Short() {
				n = 2000
			}
			l := newLoader(Services{}, nil, Options{Seed: 1, Patients: n, Records: 5 * n, Now: c.Now})
			fakeStaff(l)
			// The year is 365 whole days (no daylight saving in Beijing)
			// ending at today's midnight, before now.
			today := l.dayStart(days)
			if y, m, d := c.Now.In(hospitalZone).Date(); !today.Equal(time.Date(y, m, d, 0, 0, 0, 0, hospitalZone)) ||
				today.Sub(l.dayStart(0)) != days*24*time.Hour || today.After(c.Now) {
				t.Fatalf("the year runs from %v to %v, now is %v", l.dayStart(0), today, c.Now)
			}
			if end := l.dayStart(lastDay).Add(workStart + workday); !end.Before(c.Now) {
				t.Fatalf("the last day's work ends at %v, after now (%v)", end, c.Now)
			}
			visits := l.plan()
			newborns := 0
			for i, v := range visits {
				born := l.dayOf(v.person.BirthDate)
				if born > lastDay-30 {
					newborns++
				}
				if born > lastDay {
					t.Fatalf("visit %d: born on %s, after the last day (%s)", i, v.person.BirthDate.Format(time.DateOnly), l.dayStart(lastDay).Format(time.DateOnly))
				}
				if v.day < born || v.day > lastDay {
					t.Fatalf("visit %d: born on day %d (%s), first seen on day %d", i, born, v.person.BirthDate.Format(time.DateOnly), v.day)
				}
				discharged := v.inpatient && v.day+v.stay <= lastDay
				for k, r := range v.records {
					if r.day < v.day || r.day > lastDay || v.inpatient && r.day > v.day+v.stay {
						t.Fatalf("visit %d (days %d+%d): record %d on day %d", i, v.day, v.stay, k, r.day)
					}
					if r.at.Before(l.dayStart(r.day).Add(workStart)) || !r.at.Add(synth.MaxReportDelay).Before(l.dayStart(r.day+1)) {
						t.Fatalf("visit %d: record %d of day %d written at %v", i, k, r.day, r.at)
					}
					if r.typ == "admission_note" && (!v.inpatient || r.day != v.day) {
						t.Fatalf("visit %d (inpatient %v, day %d): admission note on day %d", i, v.inpatient, v.day, r.day)
					}
					if r.typ == "discharge_summary" {
						if !discharged || r.day != v.day+v.stay {
							t.Fatalf("visit %d (days %d+%d): discharge summary on day %d", i, v.day, v.stay, r.day)
						}
						if got, want := r.text.Fields["入院日期"], l.dayStart(v.day).Format(time.DateOnly); got != want {
							t.Fatalf("visit %d: discharge summary says admitted %s, was admitted %s", i, got, want)
						}
					}
					if born > -30 { // the young, for whom a date before birth is likely
						checkDates(t, v.person.BirthDate, l.dayStart(r.day), r.text)
					}
				}
			}
			if newborns == 0 && !testing.Short() {
				t.Errorf("no one born in the last 30 days: the plan does not test the newborns")
			}
			t.Logf("%d visits, %d of them of babies born in the last 30 days", len(visits), newborns)
		})
	}
}

// checkDates checks that the dates in a record (text and fields) fall from
// the birth date to day.
func checkDates(t *testing.T, birth, day time.Time, r synth.RecordText) {
	t.Helper()
	all := r.Text
	for k, v := range r.Fields {
		all += "\n" + k + "：" + v
	}
	first := birth.Format(time.DateOnly)
	last := day.Format(time.DateOnly)
	for _, p := range []*regexp.Regexp{stampPattern, cnDatePattern} {
		for _, m := range p.FindAllStringSubmatch(all, -1) {
			n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
			d := time.Date(n(1), time.Month(n(2)), n(3), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			if d < first || d > last {
				t.Fatalf("a record of %s for a patient born %s mentions %s:\n%s", last, first, m[0], r.Text)
			}
		}
	}
}

// fakeStaff gives l the staff plan needs, without creating anyone.
func fakeStaff(l *loader) {
	for _, d := range synth.Departments() {
		for _, role := range []string{"dept_head", "doctor", "doctor", "nurse"} {
			s := &Staff{Username: role + strconv.Itoa(len(l.staff[d.Code])), Department: d.Code, Role: role}
			l.staff[d.Code] = append(l.staff[d.Code], s)
			l.roles[role] = append(l.roles[role], s)
		}
	}
	l.roles["records_clerk"] = []*Staff{{Username: "clerk", Department: "MRD", Role: "records_clerk"}}
}
