package medguard

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line checks a one-line text field a user sent (a title, a name, a
// role) and returns it with its runs of whitespace collapsed to one space
// and trimmed at both ends; nothing else in it is ever changed. It is
// refused with an Invalid error naming field when it is not valid UTF-8
// (bad bytes are never dropped or replaced), when it holds any control
// character (unicode.IsControl: below U+0020, U+007F and U+0080–U+009F,
// so line breaks and tabs too), when it is empty and required, or when
// what is left is longer than max characters (runes, not bytes). The
// messages never repeat the value: it may be patient data.
func Line(field, v string, max int, required bool) (string, error) {
	if err := checkChars(field, v, false); err != nil {
		return "", err
	}
	return checkLength(field, strings.Join(strings.Fields(v), " "), max, required)
}

// Text checks a free text of several lines a user sent (a note, a
// scenario, a description) and returns it trimmed of whitespace at both
// ends; nothing else in it is ever changed: inner spaces, blank lines and
// "\r\n" line ends are kept as sent. Line breaks ("\n" or "\r\n") and tabs
// are its only allowed control characters. It is refused with an Invalid
// error naming field when it is not valid UTF-8 (bad bytes are never
// dropped or replaced), when it holds any other control character
// (unicode.IsControl, a lone "\r" included), when it is empty and
// required, or when what is left is longer than max characters (runes,
// not bytes). The messages never repeat the value.
func Text(field, v string, max int, required bool) (string, error) {
	if err := checkChars(field, v, true); err != nil {
		return "", err
	}
	return checkLength(field, strings.TrimSpace(v), max, required)
}

// checkChars refuses v, as sent, when it is not valid UTF-8 or holds a
// control character other than, in a multi-line text, "\n", "\r\n" and
// "\t".
func checkChars(field, v string, multiline bool) error {
	if !utf8.ValidString(v) {
		return InvalidField(field, "%s is not valid UTF-8", field)
	}
	for i, r := range v {
		if !unicode.IsControl(r) {
			continue
		}
		if multiline && (r == '\n' || r == '\t' || (r == '\r' && strings.HasPrefix(v[i+1:], "\n"))) {
			continue
		}
		return InvalidField(field, "%s holds control characters", field)
	}
	return nil
}

// checkLength refuses the trimmed v when it is empty and required, or
// longer than max characters.
func checkLength(field, v string, max int, required bool) (string, error) {
	switch {
	case v == "" && required:
		return "", InvalidField(field, "%s is required", field)
	case utf8.RuneCountInString(v) > max:
		return "", InvalidField(field, "%s may be at most %d characters", field, max)
	}
	return v, nil
}
