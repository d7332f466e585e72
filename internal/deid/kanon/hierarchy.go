package kanon

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

// Hierarchy is a generalisation hierarchy for one quasi-identifier in ARX's
// layout: one row per original value, Levels[i][0] the value itself and
// each further column a coarser generalisation of it, the last usually "*".
// Every row has the same number of levels.
type Hierarchy struct {
	// Levels holds the rows as read: Levels[i][l] is value i at level l.
	Levels [][]string
}

// Height is the number of levels, the original value included; the highest
// level a transformation can pick is Height()-1.
func (h *Hierarchy) Height() int {
	if h == nil || len(h.Levels) == 0 {
		return 0
	}
	return len(h.Levels[0])
}

// ReadHierarchy reads a hierarchy in ARX's CSV format (sep-separated, one
// row per original value, coarser levels to the right). Errors name the
// line; they never repeat a value, which may be patient data.
func ReadHierarchy(r io.Reader, sep rune) (*Hierarchy, error) {
	cr := csv.NewReader(r)
	cr.Comma = sep
	cr.FieldsPerRecord = 0
	cr.ReuseRecord = false
	var h Hierarchy
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if errors.Is(pe.Err, csv.ErrFieldCount) {
					return nil, invalidf("line %d: %d levels, the first line has %d", pe.Line, len(rec), h.Height())
				}
				return nil, invalidf("line %d: %v", pe.Line, pe.Err)
			}
			return nil, invalidf("%v", err)
		}
		h.Levels = append(h.Levels, rec)
	}
	if len(h.Levels) == 0 {
		return nil, invalidf("no rows")
	}
	return &h, h.Validate()
}

// Validate checks that the hierarchy is one: no value listed twice, and a
// value's generalisation at one level decides its generalisation at every
// coarser level (two values that meet at level l stay together above l).
// Without that, generalising would not be monotone.
func (h *Hierarchy) Validate() error {
	if h == nil || len(h.Levels) == 0 {
		return invalidf("no rows")
	}
	height := len(h.Levels[0])
	if height == 0 {
		return invalidf("line 1: no levels")
	}
	seen := make(map[string]int, len(h.Levels))
	// parent[l] maps a level-l label to the level-(l+1) label it goes to.
	parent := make([]map[string]string, height-1)
	for l := range parent {
		parent[l] = map[string]string{}
	}
	for i, row := range h.Levels {
		if len(row) != height {
			return invalidf("line %d: %d levels, the first line has %d", i+1, len(row), height)
		}
		if j, dup := seen[row[0]]; dup {
			return invalidf("line %d: the value of line %d is listed again", i+1, j+1)
		}
		seen[row[0]] = i
		for l := 0; l+1 < height; l++ {
			up, ok := parent[l][row[l]]
			if !ok {
				parent[l][row[l]] = row[l+1]
			} else if up != row[l+1] {
				return invalidf("line %d: level %d generalises to two different values at level %d (not a hierarchy)", i+1, l, l+1)
			}
		}
	}
	return nil
}

// ErrInvalid is the kind of every error about bad input (table, hierarchy or
// configuration); callers test it with errors.Is.
var ErrInvalid = errors.New("invalid input")

type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Is(target error) bool {
	return target == ErrInvalid
}

func invalidf(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}
