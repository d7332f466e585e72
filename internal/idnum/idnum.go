// Package idnum checks Chinese resident identity card numbers (居民身份证号码,
// GB 11643-1999): format, area code, birth date and the ISO 7064 MOD 11-2
// check character. It only validates and builds numbers; it never stores or
// logs them, and its errors never repeat the number, which is patient data.
package idnum

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The reasons a number is refused, in the order they are checked.
var (
	ErrLength    = errors.New("idnum: a resident ID number has 18 characters")
	ErrFormat    = errors.New("idnum: a resident ID number is 17 digits followed by a digit or X")
	ErrArea      = errors.New("idnum: the area code is not a valid province-level code")
	ErrBirthDate = errors.New("idnum: the birth date is not a real date between 1900 and today")
	ErrChecksum  = errors.New("idnum: the check character does not match (ISO 7064 MOD 11-2)")
)

// Info is what a valid number says.
type Info struct {
	Normalized string    // upper-case X
	AreaCode   string    // the first six digits
	BirthDate  time.Time // UTC midnight
	Gender     string    // "male" if the 17th digit is odd, else "female"
}

// provinces are the province-level codes of GB/T 2260.
var provinces = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true,
}

var weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const checkChars = "10X98765432"

// CheckDigit computes the check character of the first 17 digits.
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

// Validate checks a number as of now.
func Validate(s string) (Info, error) { return ValidateAt(s, time.Now()) }

// ValidateAt checks a number; the birth date may not be after now.
func ValidateAt(s string, now time.Time) (Info, error) {
	if len(s) != 18 {
		return Info{}, ErrLength
	}
	s = strings.ToUpper(s)
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return Info{}, ErrFormat
		}
	}
	if last := s[17]; (last < '0' || last > '9') && last != 'X' {
		return Info{}, ErrFormat
	}
	area := s[:6]
	if !provinces[area[:2]] || area[2:] == "0000" && area[:2] != "71" && area[:2] != "81" && area[:2] != "82" {
		return Info{}, ErrArea
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1900 || birth.After(now) {
		return Info{}, ErrBirthDate
	}
	want, _ := CheckDigit(s[:17])
	if s[17] != want {
		return Info{}, ErrChecksum
	}
	gender := "female"
	if (s[16]-'0')%2 == 1 {
		gender = "male"
	}
	return Info{Normalized: s, AreaCode: area, BirthDate: birth, Gender: gender}, nil
}

// Make builds a valid number from a six-digit area code, a birth date and a
// sequence number 0-999 (odd for men, even for women).
func Make(area string, birth time.Time, seq int) (string, error) {
	if len(area) != 6 || !provinces[area[:2]] {
		return "", ErrArea
	}
	if seq < 0 || seq > 999 {
		return "", fmt.Errorf("idnum: sequence %d is not 0-999", seq)
	}
	first := fmt.Sprintf("%s%s%03d", area, birth.Format("20060102"), seq)
	c, err := CheckDigit(first)
	if err != nil {
		return "", err
	}
	return first + string(c), nil
}
