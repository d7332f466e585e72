package records

import (
	"time"
	"unicode/utf8"
)

// Telling patients apart (issue 10): a search result, the break-glass
// preview and the review queue show a patient's age and the tail of their
// 病案号, so that two patients of one name are not mixed up.

// MRNTailLength is how many trailing characters of a 病案号 a search
// result shows.
const MRNTailLength = 4

// Age is a person's age in whole years on the calendar day of today, from
// a birth date "YYYY-MM-DD"; ok is false without a valid date or for a
// date after today.
func Age(birthDate string, today time.Time) (age int, ok bool) {
	b, err := time.Parse(time.DateOnly, birthDate)
	if err != nil {
		return 0, false
	}
	y, m, d := today.Date()
	age = y - b.Year()
	if m < b.Month() || m == b.Month() && d < b.Day() {
		age--
	}
	if age < 0 {
		return 0, false
	}
	return age, true
}

// mrnTail is the last MRNTailLength characters of a 病案号 (all of a
// shorter one).
func mrnTail(mrn string) string {
	n := utf8.RuneCountInString(mrn)
	if n <= MRNTailLength {
		return mrn
	}
	r := []rune(mrn)
	return string(r[n-MRNTailLength:])
}
