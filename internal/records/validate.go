package records

import (
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"medguard"
	"medguard/internal/idnum"
)

// Causes of refused patient fields, kept in the Invalid error (errors.Is
// finds them) for callers that explain a refusal in words, as the console
// does; an ID number's cause is one of package idnum's errors. They hold
// no patient data.
var (
	ErrDateFormat        = errors.New("records: not a date as YYYY-MM-DD")
	ErrBirthDateRange    = errors.New("records: the birth date is not between 1900 and today")
	ErrBirthDateMismatch = errors.New("records: the birth date differs from the one in the ID number")
	ErrGenderMismatch    = errors.New("records: the gender differs from the one in the ID number")
)

// Genders a patient may have (Appendix A).
var Genders = []string{"male", "female", "other", "unknown"}

var (
	mobilePattern   = regexp.MustCompile(`^(\+?86)?1[3-9][0-9]{9}$`)
	landlinePattern = regexp.MustCompile(`^(\+?86)?0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?$`)
	mrnPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,31}$`)
)

// text checks a free-text field: valid UTF-8, at most max characters, and
// no control characters other than line breaks and tabs (when multiline).
// The message never repeats the value: it may be patient data.
func text(field, v string, max int, multiline bool) error {
	if !utf8.ValidString(v) {
		return medguard.InvalidField(field, "%s must be valid UTF-8 text", field)
	}
	if utf8.RuneCountInString(v) > max {
		return medguard.InvalidField(field, "%s must be at most %d characters", field, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return medguard.InvalidField(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return medguard.InvalidField(field, "%s is required", field)
	}
	return nil
}

// checkIDNumber validates a resident ID number, returning it normalised.
func checkIDNumber(v string, now time.Time) (string, *idnum.Info, error) {
	info, err := idnum.ValidateAt(strings.TrimSpace(v), now)
	if err != nil {
		msg := "id_number is not a valid resident ID number"
		switch {
		case errors.Is(err, idnum.ErrLength), errors.Is(err, idnum.ErrFormat):
			msg += ": it must be 17 digits followed by a digit or X"
		case errors.Is(err, idnum.ErrArea):
			msg += ": the area code is not valid"
		case errors.Is(err, idnum.ErrBirthDate):
			msg += ": the birth date in it is not a real date"
		case errors.Is(err, idnum.ErrChecksum):
			msg += ": the check digit (ISO 7064 MOD 11-2) does not match"
		}
		return "", nil, &medguard.Error{Kind: medguard.Invalid, Field: "id_number", Message: msg, Err: err}
	}
	return info.Normalized, &info, nil
}

func checkGender(v string) error {
	for _, g := range Genders {
		if v == g {
			return nil
		}
	}
	return medguard.InvalidField("gender", "gender must be one of male, female, other, unknown")
}

func checkBirthDate(v string, now time.Time) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, &medguard.Error{Kind: medguard.Invalid, Field: "birth_date",
			Message: "birth_date must be a date as YYYY-MM-DD", Err: ErrDateFormat}
	}
	// Today is the hospital's calendar day (now is in its time zone): a
	// baby born this morning in Beijing is not born "tomorrow" in UTC.
	y, m, day := now.Date()
	if d.After(time.Date(y, m, day, 0, 0, 0, 0, time.UTC)) || d.Year() < 1900 {
		return time.Time{}, &medguard.Error{Kind: medguard.Invalid, Field: "birth_date",
			Message: "birth_date must be between 1900 and today", Err: ErrBirthDateRange}
	}
	return d, nil
}

func checkPhone(v string) (string, error) {
	p := strings.NewReplacer(" ", "", "(", "", ")", "").Replace(strings.TrimSpace(v))
	if !mobilePattern.MatchString(p) && !landlinePattern.MatchString(p) {
		return "", medguard.InvalidField("phone", "phone must be a mainland mobile (11 digits starting 13-19) or landline number")
	}
	return p, nil
}

func checkMRN(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !mrnPattern.MatchString(v) {
		return "", medguard.InvalidField("mrn", "mrn (病案号) must be 1-32 letters, digits or '-'")
	}
	return v, nil
}

// maskName shows the first character and stars for the rest: 张伟 → 张*.
func maskName(name string) string {
	r := []rune(name)
	if len(r) == 0 {
		return ""
	}
	return string(r[0]) + strings.Repeat("*", max(1, len(r)-1))
}
