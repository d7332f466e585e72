package deidjobs

import (
	_ "embed"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"medguard/internal/deid/kanon"
	"medguard/internal/deid/mask"
)

// The generalisation hierarchies of the quasi-identifiers a job exposes,
// as data (hierarchies.json): age bands, gender, the administrative units
// of an address, the parts of a date. A job builds each quasi-identifier's
// hierarchy from the values its output holds, level 0 being the value as
// its field rule wrote it, the last level "*".

//go:embed hierarchies.json
var hierarchiesJSON []byte

type hierarchySpec struct {
	Bands []int `json:"bands"`
	Top   int   `json:"top"`
}

var hierarchies = func() map[string]hierarchySpec {
	m := map[string]hierarchySpec{}
	if err := json.Unmarshal(hierarchiesJSON, &m); err != nil {
		panic("deidjobs: hierarchies.json: " + err.Error())
	}
	return m
}()

// ageBand writes the band of width n holding age a: "40-44", or "80+" for
// the band that reaches top.
func ageBand(a, n, top int) string {
	lo := a / n * n
	if lo+n-1 >= top {
		return strconv.Itoa(lo) + "+"
	}
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+n-1)
}

// levelsOf returns a value's generalisations for the quasi-identifier q,
// finest first and "*" last. address is the patient's original address
// (for the coarser units), rule the field's rule.
func levelsOf(q, rule, value, address string) []string {
	switch q {
	case "age":
		h := hierarchies["age"]
		a, err := strconv.Atoi(strings.TrimSuffix(value, "+"))
		out := []string{value}
		for _, n := range h.Bands {
			switch {
			case err != nil:
				out = append(out, value)
			default:
				out = append(out, ageBand(min(a, h.Top), n, h.Top))
			}
		}
		return append(out, "*")
	case "address":
		p, c, _ := mask.AddressLevels(address)
		switch rule {
		case "district":
			return []string{value, c, p, "*"}
		case "city":
			return []string{value, p, "*"}
		}
		return []string{value, "*"}
	case "birth_date":
		if rule == "shift" {
			month, year := value, value
			if len(value) >= 7 {
				month, year = value[:7], value[:4]
			}
			return []string{value, month, year, "*"}
		}
		return []string{value, "*"}
	}
	return []string{value, "*"}
}

// buildHierarchy makes the hierarchy of one quasi-identifier from the
// levels of each value it holds.
func buildHierarchy(levels map[string][]string) *kanon.Hierarchy {
	keys := make([]string, 0, len(levels))
	for v := range levels {
		keys = append(keys, v)
	}
	slices.Sort(keys)
	h := &kanon.Hierarchy{}
	for _, v := range keys {
		h.Levels = append(h.Levels, levels[v])
	}
	return h
}
