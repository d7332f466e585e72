package scrub

import (
	"bufio"
	_ "embed"
	"sort"
	"strings"

	"medguard/internal/deid/mask"
)

var (
	//go:embed data/surnames_zh.txt
	surnamesTxt string
	//go:embed data/name_context_zh.txt
	nameContextTxt string
	//go:embed data/given_name_stop.txt
	givenStopTxt string
	//go:embed data/institution_words.txt
	institutionTxt string
	//go:embed data/medical_terms.txt
	medicalTermsTxt string
	//go:embed data/first_names_en.txt
	firstNamesTxt string
	//go:embed data/surnames_pinyin.txt
	pinyinTxt string
)

// lines returns the non-empty, non-comment lines of an embedded table.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// pairs reads "kind<TAB>word" tables into kind → words, longest first.
func pairs(s string) map[string][]string {
	m := map[string][]string{}
	for _, l := range lines(s) {
		k, w, ok := strings.Cut(l, "\t")
		if ok {
			m[k] = append(m[k], w)
		}
	}
	for _, ws := range m {
		sort.SliceStable(ws, func(i, j int) bool { return len(ws[i]) > len(ws[j]) })
	}
	return m
}

var (
	// surnameStrong are single surnames that may start a name anywhere;
	// surnameWeak only next to name context.
	surnameStrong, surnameWeak = func() (*runeSet, *runeSet) {
		strong, weak := &runeSet{}, &runeSet{}
		for _, l := range lines(surnamesTxt) {
			f := strings.Fields(l)
			r := []rune(f[0])[0]
			if len(f) > 1 && f[1] == "weak" {
				weak.add(r)
			} else {
				strong.add(r)
			}
		}
		return strong, weak
	}()
	compound = func() map[string]bool {
		m := map[string]bool{}
		for _, s := range mask.CompoundSurnames() {
			m[s] = true
		}
		return m
	}()

	compoundFirst = func() *runeSet {
		m := &runeSet{}
		for s := range compound {
			m.add([]rune(s)[0])
		}
		return m
	}()

	nameContext  = pairs(nameContextTxt)
	givenStop    = &runeSet{}
	institutions = pairs(institutionTxt)
	generic      = toSet(institutions["generic"])

	medicalTerms []string
	// medicalZh is keyed by a term's first rune; medicalFirst holds the
	// first runes.
	medicalZh    = map[rune][][]rune{}
	medicalFirst = &runeSet{}
	medicalEn    = map[string]bool{} // lower case

	firstNamesEn = toSet(lines(firstNamesTxt))
	pinyin       = toSet(lines(pinyinTxt))
)

func init() {
	for _, l := range lines(givenStopTxt) {
		for _, r := range l {
			givenStop.add(r)
		}
	}
	medicalTerms = lines(medicalTermsTxt)
	for _, t := range medicalTerms {
		if isHanWord(string([]rune(t)[0])) {
			r := []rune(t)[0]
			medicalZh[r] = append(medicalZh[r], []rune(t))
			medicalFirst.add(r)
		} else {
			medicalEn[strings.ToLower(t)] = true
		}
	}
}

func toSet(ws []string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// surnameAt returns the length in runes of a surname at r[i:] (2 for a
// compound surname, 1 for a single one, 0 for none) and whether it is a
// weak one. Compound surnames win.
func surnameAt(r []rune, i int, allowWeak bool) int {
	if i+1 < len(r) && compoundFirst.has(r[i]) && compound[string(r[i:i+2])] {
		return 2
	}
	if i < len(r) && (surnameStrong.has(r[i]) || (allowWeak && surnameWeak.has(r[i]))) {
		return 1
	}
	return 0
}

// medicalAt returns the length in runes of the longest protected term at
// r[i:], or 0.
func medicalAt(r []rune, i int) int {
	if !medicalFirst.has(r[i]) {
		return 0
	}
	best := 0
	for _, tr := range medicalZh[r[i]] {
		if len(tr) > best && runesAt(r, i, tr) {
			best = len(tr)
		}
	}
	return best
}

// insideMedical reports whether rune i lies inside (or starts) a protected
// term that starts at most 4 runes earlier.
func insideMedical(r []rune, i int) bool {
	for j := i; j >= 0 && j > i-5; j-- {
		if n := medicalAt(r, j); n > 0 && j+n > i {
			return true
		}
	}
	return false
}

// runeSet is a set of runes: a bitmap over the Basic Multilingual Plane
// (8 KB), a map above it. Lookups in the hot loops cost a shift and a
// mask instead of a map access.
type runeSet struct {
	bits  [0x10000 / 64]uint64
	above map[rune]bool
}

func (s *runeSet) add(r rune) {
	if r >= 0 && r < 0x10000 {
		s.bits[r>>6] |= 1 << (r & 63)
		return
	}
	if s.above == nil {
		s.above = map[rune]bool{}
	}
	s.above[r] = true
}

func (s *runeSet) has(r rune) bool {
	if r >= 0 && r < 0x10000 {
		return s.bits[r>>6]&(1<<(r&63)) != 0
	}
	return s.above[r]
}
