package synth

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// A template is Chinese text with slots in braces, filled when a record is
// written:
//
//	{3-10}        a random integer from 3 to 10
//	{36.2-37.1}   a random decimal with as many places as the bounds have
//	{左|右}       one of the choices, which may hold slots themselves
//	{$1=3-10}     a random value (range or choices), remembered as $1
//	{$1}          the value remembered as $1
//	{w*50}        the patient's weight in kg times 50, rounded (doses)
//	{name}        a value of the record: name, sex, age, pt, hr, bp, t, r, spo2, w
//
// Only choices may hold slots. The tables in this package are checked by the tests,
// so an unknown slot is a programming error and panics.
type expander struct {
	rng    *rand.Rand
	vars   map[string]string
	keys   map[string]string
	weight float64
}

func newExpander(rng *rand.Rand, keys map[string]string, weight float64) *expander {
	return &expander{rng: rng, vars: make(map[string]string, 4), keys: keys, weight: weight}
}

// expand fills every slot of tpl.
func (e *expander) expand(tpl string) string {
	if !strings.Contains(tpl, "{") {
		return tpl
	}
	var b strings.Builder
	b.Grow(len(tpl) + 16)
	for {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		j := closing(tpl, i)
		if j < 0 {
			panic("synth: unclosed slot in template " + strconv.Quote(tpl))
		}
		b.WriteString(tpl[:i])
		b.WriteString(e.slot(tpl[i+1 : j]))
		tpl = tpl[j+1:]
	}
}

// closing returns the index of the brace that closes the one at open, or
// -1.
func closing(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// choices splits a slot at its top-level bars; nil if it has none.
func choices(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if out == nil {
		return nil
	}
	return append(out, s[start:])
}

// expandAll fills each template in order.
func (e *expander) expandAll(tpls []string) []string {
	out := make([]string, len(tpls))
	for i, t := range tpls {
		out[i] = e.expand(t)
	}
	return out
}

func (e *expander) slot(s string) string {
	if name, ok := strings.CutPrefix(s, "$"); ok {
		name, def, isDef := strings.Cut(name, "=")
		if !isDef {
			v, ok := e.vars[name]
			if !ok {
				panic("synth: template uses $" + name + " before defining it")
			}
			return v
		}
		v := e.slot(def)
		e.vars[name] = v
		return v
	}
	if cs := choices(s); cs != nil {
		return e.expand(cs[e.rng.IntN(len(cs))])
	}
	if v, ok := e.rangeSlot(s); ok {
		return v
	}
	if f, ok := strings.CutPrefix(s, "w*"); ok {
		factor, err := strconv.ParseFloat(f, 64)
		if err != nil {
			panic("synth: bad weight slot {" + s + "}")
		}
		return dose(e.weight * factor)
	}
	if v, ok := e.keys[s]; ok {
		return v
	}
	panic("synth: unknown template slot {" + s + "}")
}

// rangeSlot fills a slot of the form N-M.
func (e *expander) rangeSlot(s string) (string, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok || !isNumber(a) || !isNumber(b) {
		return "", false
	}
	places := max(decimals(a), decimals(b))
	lo, _ := strconv.ParseFloat(a, 64)
	hi, _ := strconv.ParseFloat(b, 64)
	if places == 0 {
		l, h := int(lo), int(hi)
		if h <= l {
			return strconv.Itoa(l), true
		}
		return strconv.Itoa(l + e.rng.IntN(h-l+1)), true
	}
	return strconv.FormatFloat(lo+(hi-lo)*e.rng.Float64(), 'f', places, 64), true
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && !dot && i > 0:
			dot = true
		case c < '0' || c > '9':
			return false
		}
	}
	return true
}

func decimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// dose rounds a weight-based dose the way a prescriber writes it: to tens
// above 100, to units above 10, else to one decimal place.
func dose(v float64) string {
	switch {
	case v >= 100:
		return strconv.Itoa(int(math.Round(v/10) * 10))
	case v >= 10:
		return strconv.Itoa(int(math.Round(v)))
	default:
		return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
	}
}
