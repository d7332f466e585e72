// Package mask owns the per-field masking rules of de-identification jobs
// (SPEC §8): partial masking of resident ID numbers and phones, names with
// only the surname kept, addresses cut to the district, dates shifted per
// patient by a secret but consistent offset, ages over 89 grouped, and the
// generic drop and keep.
//
// It is pure: no storage, no clock, no logging. It must not decide who may
// run a job or keep the job secret: callers (the de-identification job)
// pass the secret in and keep the output. Its errors never repeat a value,
// which is patient data.
package mask

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Rule names how one field is masked.
type Rule string

// The rules a job may give a field.
const (
	// Keep copies the value unchanged.
	Keep Rule = "keep"
	// Drop removes the field from the output.
	Drop Rule = "drop"
	// IDNumber keeps the first 6 and last 4 characters of a resident ID
	// number and stars the rest: 110105********1234.
	IDNumber Rule = "id_number"
	// Phone keeps the first 3 and last 4 digits of a mobile number
	// (139****5678), or the area code and last 2 digits of a landline.
	Phone Rule = "phone"
	// Name keeps the surname (one or two characters for 欧阳, 司马 …) and
	// stars every other character: 张**.
	Name Rule = "name"
	// Address keeps the province, city and district (区/县/旗/county-level
	// 市) and drops the town, street and house.
	Address Rule = "address"
	// DateShift moves a date by the patient's secret offset.
	DateShift Rule = "date_shift"
	// Age keeps ages up to 89 and writes 90+ for older ones.
	Age Rule = "age"
)

// Rules lists every rule in a fixed order.
func Rules() []Rule {
	return []Rule{Keep, Drop, IDNumber, Phone, Name, Address, DateShift, Age}
}

// ErrRule means a rule name is not one of Rules.
var ErrRule = errors.New("mask: unknown masking rule")

// ParseRule returns the rule named s (case-insensitive, surrounding space
// ignored) or ErrRule.
func ParseRule(s string) (Rule, error) {
	r := Rule(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Rules() {
		if r == k {
			return r, nil
		}
	}
	return "", ErrRule
}

// Masker applies a job's rules to a patient's fields. It is safe for
// concurrent use.
type Masker struct {
	rules map[string]Rule
	dates *DateShifter
}

// NewMasker returns a Masker for rules (field name → rule) with the job's
// date shifter, which may be nil if no field uses DateShift.
func NewMasker(rules map[string]Rule, dates *DateShifter) (*Masker, error) {
	cp := make(map[string]Rule, len(rules))
	names := make([]string, 0, len(rules))
	for f := range rules {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		r, err := ParseRule(string(rules[f]))
		if err != nil {
			return nil, fmt.Errorf("mask: field %q: %w", f, err)
		}
		if r == DateShift && dates == nil {
			return nil, fmt.Errorf("mask: field %q: date_shift needs a job secret", f)
		}
		cp[f] = r
	}
	return &Masker{rules: cp, dates: dates}, nil
}

// Mask returns the masked fields of one patient. A field without a rule is
// dropped, so that a field added to the source later never leaks by
// default. A value a rule cannot read (a date that is no date) is dropped
// too and its field name returned in dropped.
func (m *Masker) Mask(patientID string, fields map[string]string) (out map[string]string, dropped []string) {
	out = make(map[string]string, len(fields))
	for f, v := range fields {
		r, ok := m.rules[f]
		if !ok || r == Drop {
			continue
		}
		mv, ok := m.apply(r, patientID, v)
		if !ok {
			dropped = append(dropped, f)
			continue
		}
		out[f] = mv
	}
	sort.Strings(dropped)
	return out, dropped
}

func (m *Masker) apply(r Rule, patientID, v string) (string, bool) {
	switch r {
	case Keep:
		return v, true
	case IDNumber:
		return MaskIDNumber(v), true
	case Phone:
		return MaskPhone(v), true
	case Name:
		return MaskName(v), true
	case Address:
		a := MaskAddress(v)
		return a, a != ""
	case DateShift:
		s, err := m.dates.ShiftString(patientID, v)
		return s, err == nil
	case Age:
		return GroupAge(v)
	}
	return "", false
}

// MaskIDNumber keeps the first 6 and the last 4 characters of a resident
// ID number and writes one star for each character between:
// 110105194912310021 → 110105********0021. Spaces and dashes are removed
// first. A value of 10 characters or fewer is all stars.
func MaskIDNumber(s string) string {
	r := []rune(compact(s))
	if len(r) <= 10 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:6]) + strings.Repeat("*", len(r)-10) + string(r[len(r)-4:])
}

// MaskPhone masks a phone number. A mainland mobile number (11 digits from
// 1, after an optional +86) keeps its first 3 and last 4 digits:
// 139****5678. A landline with an area code (010-…, 0755 …) keeps the area
// code and the last 2 digits. Anything else keeps its last 2 digits. The
// country code and separators are dropped.
func MaskPhone(s string) string {
	d := digits(s)
	if strings.HasPrefix(d, "86") && len(d) == 13 {
		d = d[2:]
	}
	switch {
	case len(d) == 11 && d[0] == '1':
		return d[:3] + "****" + d[7:]
	case len(d) >= 10 && d[0] == '0':
		area := 4
		if d[1] == '1' || d[1] == '2' { // 010, 02x
			area = 3
		}
		return d[:area] + "-" + strings.Repeat("*", len(d)-area-2) + d[len(d)-2:]
	case len(d) > 2:
		return strings.Repeat("*", len(d)-2) + d[len(d)-2:]
	}
	return strings.Repeat("*", len(d))
}

// MaskName keeps the surname of a Chinese name and writes one star for each
// other character: 张三丰 → 张**, 欧阳明华 → 欧阳**. A compound surname
// (欧阳, 司马 …) is kept whole when the name has at least three characters.
// A name in Latin letters keeps its first letter: John Smith → J*********.
func MaskName(s string) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) == 0 {
		return ""
	}
	if !unicode.Is(unicode.Han, r[0]) {
		out := []rune{r[0]}
		for _, c := range r[1:] {
			if c == ' ' {
				out = append(out, ' ')
			} else {
				out = append(out, '*')
			}
		}
		return string(out)
	}
	keep := 1
	if len(r) >= 3 && IsCompoundSurname(string(r[:2])) {
		keep = 2
	}
	return string(r[:keep]) + strings.Repeat("*", len(r)-keep)
}

// IsCompoundSurname reports whether s is one of the two-character
// surnames in compound_surnames.txt.
func IsCompoundSurname(s string) bool { return compoundSurnames[s] }

// GroupAge returns an age as written, or "90+" for ages over 89. The age
// may carry a unit (岁, 周岁, y, years); ages in months or days (婴儿的
// 3月龄) are kept. It returns false if s holds no age.
func GroupAge(s string) (string, bool) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", false
	}
	n := 0
	for _, c := range t[:i] {
		n = n*10 + int(c-'0')
		if n > 1000 {
			break
		}
	}
	if n > 89 {
		return "90+", true
	}
	return t, true
}

// compact removes spaces and dashes.
func compact(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '　' {
			return -1
		}
		return r
	}, s)
}

// digits returns the ASCII digits of s.
func digits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
