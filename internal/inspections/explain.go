package inspections

import (
	"regexp"
	"strconv"
)

// Explain is the explanation of the alert raised for a reading out of
// range, in figures and the checklist's words, which ParseExplanation
// reads back (the console says it in the reader's language):
//
//	inspection of 2026-03-02: "病案库房温度（22 ± 2 °C）" reads 25.3 °C (range 20–24 °C)
//	inspection of 2026-03-02: "消防设施完好" is not in order
func Explain(o OutOfRange) string {
	head := "inspection of " + o.Day + ": " + strconv.Quote(o.Reading.Label)
	if o.Reading.Kind == KindCheck {
		return head + " is not in order"
	}
	return head + " reads " + o.Reading.Shown() + " (range " + o.Reading.Range() + ")"
}

var explanation = regexp.MustCompile(`^inspection of (\d{4}-\d{2}-\d{2}): ("(?:[^"\\]|\\.)*") (?:reads (.*) \(range (.*)\)|is not in order)$`)

// ParseExplanation reads an explanation Explain wrote: the day, the
// item's label, and — for a reading — the value and the range in figures
// (empty for a check). ok is false for any other text.
func ParseExplanation(s string) (day, label, value, rng string, ok bool) {
	m := explanation.FindStringSubmatch(s)
	if m == nil {
		return "", "", "", "", false
	}
	label, err := strconv.Unquote(m[2])
	if err != nil {
		return "", "", "", "", false
	}
	return m[1], label, m[3], m[4], true
}
