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
	surnameStrong, surnameWeak = func() (map[rune]bool, map[rune]bool) {
		strong, weak := map[rune]bool{}, map[rune]bool{}
		for _, l := range lines(surnamesTxt) {
			f := strings.Fields(l)
			r := []rune(f[0])[0]
			if len(f) > 1 && f[1] == "weak" {
				weak[r] = true
			} else {
				strong[r] = true
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

	compoundFirst = func() map[rune]bool {
		m := map[rune]bool{}
		for s := range compound {
			m[[]rune(s)[0]] = true
		}
		return m
	}()

	nameContext  = pairs(nameContextTxt)
	givenStop    = map[rune]bool{}
	institutions = pairs(institutionTxt)
	generic      = toSet(institutions["generic"])

	medicalTerms []string
	// medicalZh is keyed by a term's first rune.
	medicalZh = map[rune][]string{}
	medicalEn = map[string]bool{} // lower case

	firstNamesEn = toSet(lines(firstNamesTxt))
	pinyin       = toSet(lines(pinyinTxt))
)

func init() {
	for _, l := range lines(givenStopTxt) {
		for _, r := range l {
			givenStop[r] = true
		}
	}
	medicalTerms = lines(medicalTermsTxt)
	for _, t := range medicalTerms {
		if isHanWord(string([]rune(t)[0])) {
			r := []rune(t)[0]
			medicalZh[r] = append(medicalZh[r], t)
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
	if i+1 < len(r) && compoundFirst[r[i]] && compound[string(r[i:i+2])] {
		return 2
	}
	if i < len(r) && (surnameStrong[r[i]] || (allowWeak && surnameWeak[r[i]])) {
		return 1
	}
	return 0
}

// medicalAt returns the length in runes of the longest protected term at
// r[i:], or 0.
func medicalAt(r []rune, i int) int {
	best := 0
	for _, t := range medicalZh[r[i]] {
		tr := []rune(t)
		if len(tr) > best && i+len(tr) <= len(r) && string(r[i:i+len(tr)]) == t {
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
