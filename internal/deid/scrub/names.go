package scrub

import (
	"strings"
	"unicode/utf8"
)

// trigger is a context word around names.
type trigger struct {
	word []rune
	kind string // label, pre, post, rel
}

// triggers are keyed by their first rune, longest first.
var triggers = func() map[rune][]trigger {
	m := map[rune][]trigger{}
	for _, kind := range []string{"label", "pre", "post", "rel"} {
		for _, w := range nameContext[kind] {
			r := []rune(w)
			m[r[0]] = append(m[r[0]], trigger{r, kind})
		}
	}
	for k, ts := range m {
		for i := 1; i < len(ts); i++ {
			for j := i; j > 0 && len(ts[j].word) > len(ts[j-1].word); j-- {
				ts[j], ts[j-1] = ts[j-1], ts[j]
			}
		}
		m[k] = ts
	}
	return m
}()

// triggerFirst holds the first runes of the triggers.
var triggerFirst = func() *runeSet {
	s := &runeSet{}
	for r := range triggers {
		s.add(r)
	}
	return s
}()

func runesAt(r []rune, i int, w []rune) bool {
	if i+len(w) > len(r) {
		return false
	}
	for k, c := range w {
		if r[i+k] != c {
			return false
		}
	}
	return true
}

// findChineseNames finds Chinese names: after and before context words
// (患者…, …医生, …之子), then, with the segmenter, surnames followed by a
// given name that the segmenter does not join into a common word.
func (d *doc) findChineseNames() {
	rt := d.runes()
	r := rt.r
	ctxEnd := map[int]bool{} // rune positions right after a label or pre word
	for i := 0; i < len(r); i++ {
		if !triggerFirst.has(r[i]) {
			continue
		}
		for _, t := range triggers[r[i]] {
			if !runesAt(r, i, t.word) {
				continue
			}
			switch t.kind {
			case "label", "pre":
				p := i + len(t.word)
				colon := false
				for p < len(r) && strings.ContainsRune(":：　 ", r[p]) {
					colon = colon || r[p] == ':' || r[p] == '：'
					p++
				}
				ctxEnd[p] = true
				if n := d.nameAfter(r, p, t.kind == "label" && colon); n > 0 {
					d.addName(rt, p, p+n)
				}
			case "post", "rel":
				if s, ok := d.nameBefore(r, i, t.kind == "post", ctxEnd); ok {
					d.addName(rt, s, i)
				}
			}
		}
	}
	d.contextFree(rt)
}

func (d *doc) addName(rt runeText, s, e int) {
	d.add(Name, rt.off[s], rt.off[e])
	if e-s >= 2 {
		d.names = append(d.names, string(rt.r[s:e]))
	}
}

// nameAfter returns the length of the name at r[p:] after a context word,
// or 0. After a label (姓名：) a name without a known surname is taken too.
func (d *doc) nameAfter(r []rune, p int, label bool) int {
	if p >= len(r) {
		return 0
	}
	sl := surnameAt(r, p, true)
	if sl == 0 || (!label && insideMedical(r, p)) {
		if !label {
			return 0
		}
		// A name without a surname from the list: the Han run (with the
		// middle dot of minority names), at most 10 characters.
		e := p
		for e < len(r) && e-p < 10 && (isHan(r[e]) || r[e] == '·' || r[e] == '•') && !givenStop.has(r[e]) {
			e++
		}
		if e-p >= 2 {
			return e - p
		}
		return 0
	}
	g := d.givenLen(r, p+sl)
	if label {
		// After 姓名： the name runs to the end of the field, whatever
		// its characters (温和平).
		g = 0
		for p+sl+g < len(r) && g < 2 && isHan(r[p+sl+g]) && !strings.ContainsRune("男女性年", r[p+sl+g]) && !startsTrigger(r, p+sl+g) {
			g++
		}
	}
	if g == 0 {
		return 0
	}
	if !label && d.commonWord(r, p, sl, sl+g) && !demographic(r, p+sl+g) {
		return 0
	}
	return sl + g
}

// demographic reports whether r[i:] reads like what follows a patient's
// name: a separator then 男, 女 or an age.
func demographic(r []rune, i int) bool {
	if i+1 >= len(r) || !strings.ContainsRune("，,、（( ", r[i]) {
		return false
	}
	c := r[i+1]
	return c == '男' || c == '女' || c >= '0' && c <= '9'
}

// commonWord reports whether the n runes at p, or their first two, make
// a word the dictionary knows and does not tag as a person's name
// (常规, 于是, 白天). A compound surname (欧阳) is no such word.
func (d *doc) commonWord(r []rune, p, sl, n int) bool {
	for _, k := range []int{n, 2} {
		if p+k > len(r) || k < 2 || k == sl {
			continue
		}
		freq, pos, ok := d.find(p, p+k)
		if ok && freq > 0 && !strings.HasPrefix(pos, "nr") {
			return true
		}
	}
	return medicalAt(r, p) > 0
}

// givenLen returns how many runes from q (0-2) make a given name: Han
// characters that are not stop characters, do not start a protected term
// or a context word, and are not the start of a common two-character word
// (张伟胸痛: 伟 only).
func (d *doc) givenLen(r []rune, q int) int {
	g := 0
	for g < 2 && q+g < len(r) {
		c := r[q+g]
		if !isHan(c) || givenStop.has(c) || medicalAt(r, q+g) > 0 || startsTrigger(r, q+g) {
			break
		}
		if g == 1 && q+3 <= len(r) && isHan(r[q+2]) {
			freq, pos, ok := d.find(q+1, q+3)
			if ok && freq >= 20 && !strings.HasPrefix(pos, "nr") {
				break
			}
		}
		g++
	}
	return g
}

// startsTrigger reports whether a post or rel context word starts at i.
func startsTrigger(r []rune, i int) bool {
	if !triggerFirst.has(r[i]) {
		return false
	}
	for _, t := range triggers[r[i]] {
		if (t.kind == "post" || t.kind == "rel") && runesAt(r, i, t.word) {
			return true
		}
	}
	return false
}

// nameBefore finds a name that ends at i, before a post or rel word. After
// a title (王主任) the surname alone is a name; before a relation (之子)
// a full name is needed. Among candidates it prefers one that starts at a
// phrase boundary, then one whose surname is not a weak one, then the
// longest.
func (d *doc) nameBefore(r []rune, i int, title bool, ctxEnd map[int]bool) (int, bool) {
	best, bestScore := -1, -1
	for l := 4; l >= 1; l-- {
		s := i - l
		if s < 0 {
			continue
		}
		sl := surnameAt(r, s, title)
		if sl == 0 || sl > l || (sl == l && !title) {
			continue
		}
		ok := true
		for k := s + sl; k < i; k++ {
			if !isHan(r[k]) || givenStop.has(r[k]) {
				ok = false
			}
		}
		if !ok || l-sl > 2 || insideMedical(r, s) {
			continue
		}
		score := l
		if s == 0 || !isHan(r[s-1]) || givenStop.has(r[s-1]) || ctxEnd[s] {
			score += 100
		}
		if !(sl == 1 && surnameWeak.has(r[s])) {
			score += 10
		}
		if score > bestScore {
			best, bestScore = s, score
		}
	}
	return best, best >= 0
}

// contextFree finds names with no context word: a surname where the
// segmenter, cutting a short window around it, makes the surname and a
// given name one word it tags as a name or does not know, or leaves the
// surname alone before one or two single characters at a phrase start.
func (d *doc) contextFree(rt runeText) {
	r := rt.r
	for i := 0; i < len(r); i++ {
		sl := surnameAt(r, i, false)
		if sl == 0 || insideMedical(r, i) {
			continue
		}
		g := d.givenLen(r, i+sl)
		if g == 0 {
			continue
		}
		// Cheap dictionary checks before the segmenter: the surname is
		// the end of a word (病史, 升高) or starts a common one (高度).
		if i > 0 && isHan(r[i-1]) {
			if freq, _, ok := d.find(i-1, i+1); ok && freq > 0 {
				continue
			}
		}
		if freq, p, ok := d.find(i, i+sl+1); ok && freq > 0 && !isNamePos(p) {
			continue
		}
		if d.taken(rt.off[i], rt.off[i+sl+g]) {
			continue
		}
		lo := i
		for lo > 0 && i-lo < 3 && isHan(r[lo-1]) {
			lo--
		}
		hi := i + sl
		for hi < len(r) && hi-(i+sl) < 3 && isHan(r[hi]) {
			hi++
		}
		toks := d.cut(lo, hi, i)
		pos := lo
		k := 0
		for k < len(toks) && pos < i {
			pos += toks[k]
			k++
		}
		if pos != i || k >= len(toks) {
			continue // the surname is inside a word
		}
		tok := toks[k]
		n := 0
		switch {
		case tok > sl && tok <= sl+2:
			if freq, p, ok := d.find(i, i+tok); ok && freq > 0 && !isNamePos(p) {
				continue
			}
			if d.givenLen(r, i+sl) < tok-sl {
				continue
			}
			n = tok
		case tok == sl:
			boundary := i == 0 || !isHan(r[i-1]) || givenStop.has(r[i-1])
			if !boundary || k+1 >= len(toks) {
				continue
			}
			next := toks[k+1]
			if next == 1 {
				n = sl + 1
				if k+2 < len(toks) && g == 2 && toks[k+2] == 1 {
					n = sl + 2
				}
			} else if next == 2 {
				if _, p, _ := d.find(i+sl, i+sl+2); isNamePos(p) && g == 2 {
					n = sl + 2
				}
			}
		}
		if n > 0 {
			d.addName(rt, i, i+n)
			i += n - 1
		}
	}
}

// propagateNames marks every other occurrence of a name found with
// context: 患者董珍 makes 董珍 a name wherever it appears in the note.
func (d *doc) propagateNames() {
	seen := map[string]bool{}
	for _, n := range d.names {
		if seen[n] || len(n) < 2 {
			continue
		}
		seen[n] = true
		for from := 0; ; {
			j := strings.Index(d.text[from:], n)
			if j < 0 {
				break
			}
			j += from
			from = j + len(n)
			if isLatinName(n) && (j > 0 && isAlnum(d.text[j-1]) || from < len(d.text) && isAlnum(d.text[from])) {
				continue
			}
			d.add(Name, j, from)
		}
	}
}

func isLatinName(s string) bool { return s != "" && s[0] < utf8.RuneSelf }
