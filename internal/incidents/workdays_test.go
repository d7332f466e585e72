package incidents_test

import (
	"strings"
	"testing"
	"time"

	"medguard/internal/incidents"
)

var cst = time.FixedZone("CST", 8*60*60)

// TestFiveWorkingDays: the handling opinion is due at the end of the 5th
// working day after the day of the opening, in the hospital's time zone,
// skipping weekends and public holidays and counting the weekend days the
// State Council makes working days (调休).
func TestFiveWorkingDays(t *testing.T) {
	cal := incidents.ChinaCalendar()
	local := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, cst) }
	for _, c := range []struct {
		name    string
		from    time.Time
		due     time.Time
		covered bool
	}{
		{"Monday afternoon", local(2026, 11, 23, 17, 0), local(2026, 12, 1, 0, 0), true},
		{"Monday just after midnight in Beijing (Sunday in UTC)", time.Date(2026, 11, 22, 16, 30, 0, 0, time.UTC), local(2026, 12, 1, 0, 0), true},
		{"Sunday just before midnight", local(2026, 11, 22, 23, 59), local(2026, 11, 28, 0, 0), true},
		{"Friday: the weekend does not count", local(2026, 11, 27, 10, 0), local(2026, 12, 5, 0, 0), true},
		{"Saturday: counted from Monday", local(2026, 11, 28, 9, 0), local(2026, 12, 5, 0, 0), true},
		{"before National Day: the week off, the Saturday worked", local(2026, 9, 29, 9, 0), local(2026, 10, 13, 0, 0), true},
		{"before the Spring Festival: the Saturday worked, nine days off", local(2026, 2, 13, 9, 0), local(2026, 2, 28, 0, 0), true},
		{"31 December: New Year's days off, the Sunday worked", local(2025, 12, 31, 15, 0), local(2026, 1, 9, 0, 0), true},
		{"29 February of a covered year", local(2024, 2, 29, 11, 0), local(2024, 3, 8, 0, 0), true},
		{"29 February of a year the calendar lacks", local(2028, 2, 29, 11, 0), local(2028, 3, 8, 0, 0), false},
		{"31 December into a year the calendar lacks", local(2026, 12, 31, 11, 0), local(2027, 1, 8, 0, 0), false},
		{"1 January on a public holiday", local(2025, 1, 1, 8, 0), local(2025, 1, 9, 0, 0), true},
		{"the day before the Dragon Boat weekend", local(2025, 5, 30, 8, 0), local(2025, 6, 10, 0, 0), true},
	} {
		due, covered := cal.AddWorkingDays(c.from, incidents.HandlingOpinionWorkingDays, cst)
		if !due.Equal(c.due) || covered != c.covered {
			t.Errorf("%s: due %s (covered %v), want %s (%v)", c.name, due.In(cst), covered, c.due, c.covered)
		}
	}
	for _, d := range []struct {
		day     string
		working bool
	}{
		{"2026-10-10", true}, {"2026-10-07", false}, {"2026-10-11", false}, {"2026-10-12", true},
		{"2025-01-26", true}, {"2025-01-28", false}, {"2027-01-01", true}, // 2027 is not listed: Monday to Friday only
	} {
		day, _ := time.Parse(time.DateOnly, d.day)
		if got := cal.Working(day); got != d.working {
			t.Errorf("%s working: %v, want %v", d.day, got, d.working)
		}
	}
	for _, y := range []int{2024, 2025, 2026} {
		if !cal.Covers(y) {
			t.Errorf("the calendar does not cover %d", y)
		}
	}
}

func TestParseCalendar(t *testing.T) {
	good := "# a comment\n\n2026-10-10 workday 国庆节调休\n2026-10-01 holiday 国庆节\n"
	c, err := incidents.ParseCalendar(good)
	if err != nil || !c.Covers(2026) || c.Covers(2025) {
		t.Fatalf("%v", err)
	}
	for _, bad := range []string{
		"2026-10-32 holiday x",
		"2026-10-09 workday 周五不能调休",
		"2026-10-01 holiday\n2026-10-01 holiday",
		"2026-10-01 vacation",
		"2026-10-01",
	} {
		if _, err := incidents.ParseCalendar(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func FuzzParseCalendar(f *testing.F) {
	f.Add("2026-10-10 workday 国庆节调休\n2026-10-01 holiday 国庆节\n")
	f.Add("# x\n2024-02-29 holiday 闰日")
	f.Add("2026-13-01 holiday x")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := incidents.ParseCalendar(text)
		if err != nil {
			return
		}
		// Whatever it accepted, counting ends, later than it began.
		from := time.Date(2026, 5, 1, 9, 0, 0, 0, cst)
		if due, _ := c.AddWorkingDays(from, 5, cst); !due.After(from) || due.Sub(from) > 370*24*time.Hour {
			t.Fatalf("due %s", due)
		}
	})
}

func FuzzNormalizeReceipt(f *testing.F) {
	f.Add("K7QM-2XHD-9PWA-T4NE-RB6C")
	f.Add("k7qm 2xhd 9pwa t4ne rb6c")
	f.Add("K7QM2XHD9PWAT4NERB6C0")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := incidents.NormalizeReceipt(s)
		if !ok {
			return
		}
		if len(c) != 24 || strings.Count(c, "-") != 4 {
			t.Fatalf("%q normalised to %q", s, c)
		}
		if again, ok := incidents.NormalizeReceipt(c); !ok || again != c {
			t.Fatalf("%q does not normalise to itself: %q", c, again)
		}
	})
}
