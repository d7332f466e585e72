package incidents

import (
	_ "embed"
	"fmt"
	"strings"
	"time"
)

// Working days (工作日), for the accountability case's handling opinion,
// due within 5 working days of the case's opening.
//
// A working day is Monday to Friday in the hospital's time zone, except a
// public holiday, plus the Saturdays and Sundays the State Council makes
// working days to make up for a holiday (调休上班). The calendar is a small
// embedded file, calendar/cn.txt, one date a line; it covers the years it
// lists. For a year it does not list, medguard counts Monday to Friday
// only and says so (Case.CalendarCovered), so that a missing year shows
// rather than silently shifting a deadline: the file is extended each year
// when the notice is published. Deadlines in working days end at midnight
// (the end of the last working day), in the hospital's time zone.

//go:embed calendar/cn.txt
var chinaCalendar string

// Calendar tells working days apart from the rest.
type Calendar struct {
	holidays map[string]bool // YYYY-MM-DD
	workdays map[string]bool // weekend days worked (调休)
	years    map[int]bool
}

// ParseCalendar reads a calendar: lines "YYYY-MM-DD holiday|workday name",
// blank lines and lines starting with '#' ignored. A holiday on a weekend
// or a workday on a weekday is refused (it would say nothing), as is a
// date given twice.
func ParseCalendar(text string) (*Calendar, error) {
	c := &Calendar{holidays: map[string]bool{}, workdays: map[string]bool{}, years: map[int]bool{}}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("calendar line %d: want a date and holiday or workday", n+1)
		}
		d, err := time.Parse(time.DateOnly, f[0])
		if err != nil {
			return nil, fmt.Errorf("calendar line %d: %q is not a date (YYYY-MM-DD)", n+1, f[0])
		}
		key := d.Format(time.DateOnly)
		if c.holidays[key] || c.workdays[key] {
			return nil, fmt.Errorf("calendar line %d: %s is listed twice", n+1, key)
		}
		weekend := d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
		switch f[1] {
		case "holiday":
			c.holidays[key] = true
		case "workday":
			if !weekend {
				return nil, fmt.Errorf("calendar line %d: %s is a weekday; only a Saturday or Sunday is made a working day", n+1, key)
			}
			c.workdays[key] = true
		default:
			return nil, fmt.Errorf("calendar line %d: %q is neither holiday nor workday", n+1, f[1])
		}
		c.years[d.Year()] = true
	}
	return c, nil
}

// ChinaCalendar returns the embedded calendar of mainland China.
func ChinaCalendar() *Calendar {
	c, err := ParseCalendar(chinaCalendar)
	if err != nil {
		panic("incidents: the embedded calendar: " + err.Error())
	}
	return c
}

// Covers reports whether the calendar lists the holidays of year.
func (c *Calendar) Covers(year int) bool { return c.years[year] }

// Working reports whether the day (a date; the clock time is ignored) is
// a working day.
func (c *Calendar) Working(day time.Time) bool {
	key := day.Format(time.DateOnly)
	switch {
	case c.workdays[key]:
		return true
	case c.holidays[key]:
		return false
	}
	wd := day.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// AddWorkingDays returns the end of the n-th working day after the day
// of from in zone: midnight, in zone, at the start of the following day.
// The day of from never counts, whatever the hour. covered says whether
// the calendar listed every year crossed.
func (c *Calendar) AddWorkingDays(from time.Time, n int, zone *time.Location) (due time.Time, covered bool) {
	y, m, d := from.In(zone).Date()
	covered = c.Covers(y)
	day := time.Date(y, m, d, 12, 0, 0, 0, zone) // noon: whole days, whatever a zone's clock changes do
	for count := 0; count < n; {
		day = day.AddDate(0, 0, 1)
		covered = covered && c.Covers(day.Year())
		if c.Working(day) {
			count++
		}
	}
	y, m, d = day.AddDate(0, 0, 1).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, zone), covered
}
