package synth

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// labItem is one line of a laboratory report.
type labItem struct {
	key      string  // unique key used in conditions' abn strings
	name     string  // as printed: 白细胞计数(WBC)
	unit     string  // ×10^9/L
	lo, hi   float64 // reference range; hi 0 means no upper limit
	flo, fhi float64 // women's range, when it differs
	places   int     // decimal places printed
	ref      string  // reference range as printed, when not lo-hi
	typLo    float64 // usual values of healthy people, when the range
	typHi    float64 // is one-sided (<5.2) and lo-hi would look odd
	normal   string  // qualitative items: the normal result, e.g. 阴性(-)
}

// panel is a set of tests ordered and reported together.
type panel struct {
	name     string
	specimen string
	items    []labItem
}

// labPanelsFile is data/lab_panels.json: the panels, each with its items
// in the order they are printed.
type labPanelsFile []struct {
	// Name is the panel's name, by which conditions order it.
	Name string `json:"name"`
	// Specimen is what is tested, as printed: 血清, 静脉血（EDTA抗凝）…
	Specimen string `json:"specimen"`
	Items    []struct {
		// Key names the item in conditions' abnormalResults; it is
		// unique among all the panels' items.
		Key string `json:"key"`
		// Name is the item as printed: 白细胞计数(WBC).
		Name string `json:"name"`
		Unit string `json:"unit"`
		// Low and High are the reference range; High 0 (or absent) means
		// no upper limit. Qualitative items (with Normal) have none.
		Low  float64 `json:"low"`
		High float64 `json:"high"`
		// FemaleLow and FemaleHigh are women's range, when it differs.
		FemaleLow  float64 `json:"femaleLow"`
		FemaleHigh float64 `json:"femaleHigh"`
		// Decimals is how many decimal places results are printed with.
		Decimals int `json:"decimals"`
		// Reference is the reference range as printed, when it is not
		// Low-High (<5.20).
		Reference string `json:"reference"`
		// TypicalLow and TypicalHigh are the usual results of healthy
		// people, when the range is one-sided and Low-High would look odd.
		TypicalLow  float64 `json:"typicalLow"`
		TypicalHigh float64 `json:"typicalHigh"`
		// Normal is a qualitative item's normal result: 阴性(-).
		Normal string `json:"normal"`
	} `json:"items"`
}

// loadPanels reads data/lab_panels.json.
func loadPanels(fsys fs.FS) (map[string]panel, error) {
	const file = "data/lab_panels.json"
	var f labPanelsFile
	if err := decodeJSON(fsys, file, &f); err != nil {
		return nil, err
	}
	panels := make(map[string]panel, len(f))
	keys := map[string]string{}
	for _, p := range f {
		if _, dup := panels[p.Name]; dup || p.Name == "" {
			return nil, fmt.Errorf("%s: panel %q is there twice or has no name", file, p.Name)
		}
		if len(p.Items) == 0 {
			return nil, fmt.Errorf("%s: panel %s has no items", file, p.Name)
		}
		pn := panel{name: p.Name, specimen: p.Specimen}
		for _, it := range p.Items {
			if other, dup := keys[it.Key]; dup || it.Key == "" {
				return nil, fmt.Errorf("%s: panel %s: item key %q is empty or also in %s", file, p.Name, it.Key, other)
			}
			keys[it.Key] = p.Name
			pn.items = append(pn.items, labItem{key: it.Key, name: it.Name, unit: it.Unit,
				lo: it.Low, hi: it.High, flo: it.FemaleLow, fhi: it.FemaleHigh, places: it.Decimals,
				ref: it.Reference, typLo: it.TypicalLow, typHi: it.TypicalHigh, normal: it.Normal})
		}
		panels[p.Name] = pn
	}
	return panels, nil
}

// abnormal is one abnormal result a condition produces: the item's key
// and its value, a range (11.5-16.8), choices (阳性(+)|阳性(++)) or a
// template.
type abnormal struct{ key, tpl string }

// labResult is one printed result.
type labResult struct {
	item  labItem
	value string
	flag  string // ↑, ↓, * or ""
	ref   string
}

// results fills in a panel for a patient; abn overrides the normal values.
func (g *Generator) results(p panel, female bool, abn []abnormal, e *expander) []labResult {
	out := make([]labResult, 0, len(p.items))
	for _, it := range p.items {
		lo, hi := it.lo, it.hi
		if female && (it.flo != 0 || it.fhi != 0) {
			lo, hi = it.flo, it.fhi
		}
		ref := it.ref
		if ref == "" && it.normal == "" {
			ref = strconv.FormatFloat(lo, 'f', it.places, 64) + "-" + strconv.FormatFloat(hi, 'f', it.places, 64)
		}
		if it.normal != "" && ref == "" {
			ref = it.normal
		}
		r := labResult{item: it, ref: ref}
		tpl, isAbn := "", false
		for _, a := range abn {
			if a.key == it.key {
				tpl, isAbn = a.tpl, true
			}
		}
		switch {
		case isAbn:
			if strings.ContainsAny(tpl, "|-") && !strings.Contains(tpl, "{") {
				tpl = "{" + tpl + "}"
			}
			r.value = e.expand(tpl)
		case it.normal != "":
			r.value = it.normal
		default:
			a, b := lo+(hi-lo)*0.05, hi-(hi-lo)*0.05
			if it.typLo != 0 || it.typHi != 0 {
				a, b = it.typLo, it.typHi
			}
			r.value = strconv.FormatFloat(a+(b-a)*g.rng.Float64(), 'f', it.places, 64)
		}
		if v, err := strconv.ParseFloat(r.value, 64); err == nil && it.normal == "" {
			switch {
			case hi != 0 && v > hi:
				r.flag = "↑"
			case v < lo:
				r.flag = "↓"
			}
		} else if isAbn {
			r.flag = "*"
		}
		out = append(out, r)
	}
	return out
}
