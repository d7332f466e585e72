// Package idnum checks and builds Chinese resident identity card numbers
// (居民身份证号码, GB 11643-1999): format, area code, birth date and the
// ISO 7064 MOD 11-2 check character.
//
// It only validates and builds numbers. It must not store or log them, and
// its errors never repeat the number, which is patient data. The area check
// is a format check against the GB/T 2260 province list, not a lookup in the
// full register of counties.
package idnum

import (
	"errors"
	"time"
	"unicode/utf8"
)

// The reasons a number is refused, checked in this order. Callers tell them
// apart with errors.Is; the messages are plain English and never contain
// the number.
var (
	// ErrLength means the number does not have 18 characters.
	ErrLength = errors.New("idnum: a resident ID number has 18 characters")
	// ErrFormat means the number is not 17 digits followed by a digit or X.
	ErrFormat = errors.New("idnum: a resident ID number is 17 digits followed by a digit or X")
	// ErrArea means the first six digits are not a plausible area code.
	ErrArea = errors.New("idnum: the area code is not a valid province-level area code")
	// ErrBirthDate means digits 7-14 are not a real date from 1900 to today.
	ErrBirthDate = errors.New("idnum: the birth date is not a real date between 1900 and today")
	// ErrChecksum means the last character is not the ISO 7064 MOD 11-2
	// check character of the first 17 digits.
	ErrChecksum = errors.New("idnum: the check character does not match (ISO 7064 MOD 11-2)")
	// ErrSequence means Make was given a sequence number outside 0-999.
	ErrSequence = errors.New("idnum: the sequence number must be 0-999")
)

// Info is what a valid number says about its holder.
type Info struct {
	// Normalized is the number with a lower-case x made upper-case.
	Normalized string
	// AreaCode is the first six digits: where the number was first issued.
	AreaCode string
	// BirthDate is the date of birth at midnight UTC.
	BirthDate time.Time
	// Gender is "male" if the 17th digit is odd, else "female".
	Gender string
}

// provinces are the province-level codes of GB/T 2260, with 71 (Taiwan),
// 81 (Hong Kong) and 82 (Macao).
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true,
}

// wholeRegion are the province-level codes whose numbers may carry the
// whole region's code (city part 00), e.g. 810000 for Hong Kong.
var wholeRegion = map[string]bool{"71": true, "81": true, "82": true}

var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const checkChars = "10X98765432"

// CheckDigit computes the check character ('0'-'9' or 'X') of the first 17
// digits of a number. It returns ErrLength or ErrFormat if first17 is not
// exactly 17 ASCII digits.
func CheckDigit(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, ErrLength
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0, ErrFormat
		}
		sum += int(c-'0') * weights[i]
	}
	return checkChars[sum%11], nil
}

// Validate checks a number as of the current time; see ValidateAt.
func Validate(s string) (Info, error) { return ValidateAt(s, time.Now()) }

// ValidateAt checks a number: its length, format, area code, birth date (a
// real date from 1900-01-01 up to now's calendar date in now's location)
// and check character, in that order, and returns the first failure as one
// of ErrLength, ErrFormat, ErrArea, ErrBirthDate or ErrChecksum. A
// lower-case x as the check character is accepted and normalised to X.
func ValidateAt(s string, now time.Time) (Info, error) {
	if utf8.RuneCountInString(s) != 18 {
		return Info{}, ErrLength
	}
	if len(s) != 18 { // 18 characters, but some are not ASCII
		return Info{}, ErrFormat
	}
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return Info{}, ErrFormat
		}
	}
	switch last := s[17]; {
	case last >= '0' && last <= '9', last == 'X':
	case last == 'x':
		s = s[:17] + "X"
	default:
		return Info{}, ErrFormat
	}
	area := s[:6]
	if !validArea(area) {
		return Info{}, ErrArea
	}
	birth, ok := birthDate(s[6:14], now)
	if !ok {
		return Info{}, ErrBirthDate
	}
	if want, _ := CheckDigit(s[:17]); s[17] != want {
		return Info{}, ErrChecksum
	}
	gender := "female"
	if (s[16]-'0')%2 == 1 {
		gender = "male"
	}
	return Info{Normalized: s, AreaCode: area, BirthDate: birth, Gender: gender}, nil
}

// validArea reports whether a six-digit area code has a GB/T 2260 province
// and a city part 01-99 (00 only for Taiwan, Hong Kong and Macao).
func validArea(area string) bool {
	if len(area) != 6 {
		return false
	}
	for i := 0; i < 6; i++ {
		if area[i] < '0' || area[i] > '9' {
			return false
		}
	}
	if !provinces[area[:2]] {
		return false
	}
	return area[2:4] != "00" || wholeRegion[area[:2]]
}

// birthDate parses YYYYMMDD as a real calendar date from 1900 up to now's
// calendar date and returns it at midnight UTC.
func birthDate(yyyymmdd string, now time.Time) (time.Time, bool) {
	d, err := time.Parse("20060102", yyyymmdd)
	if err != nil || d.Year() < 1900 {
		return time.Time{}, false
	}
	y, m, day := now.Date()
	if d.After(time.Date(y, m, day, 0, 0, 0, 0, time.UTC)) {
		return time.Time{}, false
	}
	return d, true
}

// Make builds a valid number from a six-digit area code, a birth date and a
// three-digit sequence number 0-999 (odd for men, even for women). Only the
// calendar date of birth is used. It returns ErrArea, ErrBirthDate (a year
// before 1900 or after 9999) or ErrSequence if an argument cannot appear in
// a valid number; it does not check that the birth date is in the past.
func Make(area string, birth time.Time, seq int) (string, error) {
	if !validArea(area) {
		return "", ErrArea
	}
	if y := birth.Year(); y < 1900 || y > 9999 {
		return "", ErrBirthDate
	}
	if seq < 0 || seq > 999 {
		return "", ErrSequence
	}
	b := make([]byte, 0, 18)
	b = append(b, area...)
	b = birth.AppendFormat(b, "20060102")
	b = append(b, byte('0'+seq/100), byte('0'+seq/10%10), byte('0'+seq%10))
	c, err := CheckDigit(string(b))
	if err != nil {
		return "", err
	}
	return string(append(b, c)), nil
}
