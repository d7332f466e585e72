package mask

import (
	"bufio"
	_ "embed"
	"strings"
	"unicode"
)

//go:embed data/provinces.txt
var provincesTxt string

//go:embed data/compound_surnames.txt
var compoundSurnamesTxt string

// province is one province-level division as a note may write it.
type province struct {
	name         string // as written: full or short
	municipality bool   // 直辖市: the next level is the district
}

// provinceNames are the full and short names of provinces, longest first,
// so that 内蒙古自治区 is tried before 内蒙古.
var provinceNames = func() []province {
	var out []province
	for _, f := range dataLines(provincesTxt) {
		fields := strings.Fields(f)
		muni := strings.HasPrefix(fields[0], "*")
		for _, n := range fields {
			out = append(out, province{strings.TrimPrefix(n, "*"), muni})
		}
	}
	// Longest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len([]rune(out[j].name)) > len([]rune(out[j-1].name)); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}()

var compoundSurnames = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range dataLines(compoundSurnamesTxt) {
		m[l] = true
	}
	return m
}()

// CompoundSurnames returns the two-character surnames MaskName knows.
func CompoundSurnames() []string { return dataLines(compoundSurnamesTxt) }

// dataLines returns the non-empty, non-comment lines of an embedded table.
func dataLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// Suffixes that end an administrative unit, longest first at each level.
var (
	citySuffixes     = []string{"自治州", "地区", "市", "盟"}
	districtSuffixes = []string{"自治县", "自治旗", "林区", "特区", "新区", "区", "县", "旗", "市"}
)

// streetMarks end the administrative part of an address: below them is the
// town, street or house, which Address drops.
const streetMarks = "路街道巷弄号村镇乡里楼栋室组屯"

// maxUnit is the longest administrative unit name in characters
// (新疆维吾尔自治区 is a province; 伊犁哈萨克自治州 has 8).
const maxUnit = 12

// MaskAddress cuts a Chinese address to the district: the province, the
// city (市/自治州/地区/盟) and the district (区/县/旗 or a county-level 市)
// are kept, the town, street, house and flat dropped. A municipality's
// next level is the district: 北京市朝阳区建国路88号 → 北京市朝阳区. An
// address that starts below the province keeps what it has of city and
// district: 深圳市南山区科技园 → 深圳市南山区. It returns "" if it finds
// no administrative unit, so that nothing below the district can slip out.
func MaskAddress(s string) string {
	r := []rune(strings.TrimSpace(s))
	pos := 0
	var b strings.Builder
	levels := [][]string{citySuffixes, districtSuffixes}
	if p, ok := matchProvince(r); ok {
		b.WriteString(p.name)
		pos = len([]rune(p.name))
		if p.municipality {
			levels = levels[1:]
		}
	}
	for len(levels) > 0 {
		n, level, ok := matchUnit(r[pos:], levels)
		if !ok {
			break
		}
		b.WriteString(string(r[pos : pos+n]))
		pos += n
		levels = levels[level+1:]
	}
	return b.String()
}

// matchProvince returns the province that r starts with.
func matchProvince(r []rune) (province, bool) {
	s := string(r)
	for _, p := range provinceNames {
		if strings.HasPrefix(s, p.name) {
			return p, true
		}
	}
	return province{}, false
}

// matchUnit finds the shortest administrative unit at the start of r: at
// least one character of name, then a suffix of one of levels. It returns
// the unit's length in runes and which level matched. It stops at a digit,
// a Latin letter or a street mark, so that 建国路88号 is never a unit.
func matchUnit(r []rune, levels [][]string) (n, level int, ok bool) {
	for k := 1; k < len(r) && k < maxUnit; k++ {
		c := r[k-1]
		if !unicode.Is(unicode.Han, c) || (k > 1 && strings.ContainsRune(streetMarks, c)) {
			return 0, 0, false
		}
		rest := string(r[k:])
		for li, suffixes := range levels {
			for _, suf := range suffixes {
				if strings.HasPrefix(rest, suf) {
					return k + len([]rune(suf)), li, true
				}
			}
		}
	}
	return 0, 0, false
}
