package scrub

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	capWord = `[A-Z][a-zA-Z'’-]+`
	month   = `(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?`
)

var (
	reTitleName = regexp.MustCompile(`\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Doctor|Nurse|Pt|Patient|patient|pt)\.?,?\s+(` + capWord + `(?:\s+` + capWord + `){0,2})`)
	reRelName   = regexp.MustCompile(`\b(?:[Ww]ife|[Hh]usband|[Ss]on|[Dd]aughter|[Mm]other|[Ff]ather|[Bb]rother|[Ss]ister|[Ss]pouse|[Pp]artner|[Ff]riend|[Nn]eighbou?r|[Cc]aregiver|[Gg]uardian|[Nn]iece|[Nn]ephew|[Gg]randson|[Gg]randdaughter)\b,?\s*\(?(` + capWord + `(?:\s+` + capWord + `)?)`)
	reSigned    = regexp.MustCompile(`(?i:signed by|signed|attending|resident|physician|provider|seen by|referred by|contact)\s*:?\s+(` + capWord + `(?:\s+` + capWord + `){1,2})`)
	rePairName  = regexp.MustCompile(`\b([A-Z][a-z]+)\s+((?:[A-Z]['’])?[A-Z][a-zA-Z'’-]+)`)
	reEnDate    = regexp.MustCompile(`\b(?:` + month + `\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?` + month + `,?\s+\d{4}|(?:January|February|March|April|June|July|August|September|October|November|December)\s+\d{4})\b`)
	reEnAge     = regexp.MustCompile(`\b(?:[Aa]ged?|AGE)\s*:?\s+(?:9\d|1[01]\d)\b`)
	reEnAddress = regexp.MustCompile(`\b\d{1,6}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Highway|Hwy)\b\.?(?:,?\s+(?:Apt|Apartment|Suite|Unit|Room|#)\.?\s*[A-Za-z0-9-]+)?(?:,\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)?(?:,\s+[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?)?`)
	reEnInst    = regexp.MustCompile(`\b(?:(?:` + capWord + `|of|the|and|for|&)\s+){0,6}(?:Hospital|Clinic|Medical Center|Medical Centre|Health Center|Health Centre|Infirmary|University|Institute)\b(?:\s+of(?:\s+[A-Z][a-z]+)+)?`)
)

// Each pattern above but reEnInst and reSigned starts with \b and a word
// character, so its matches start where a word does. Searching a run for
// all of them from every position cost most of the time on English notes;
// scans below try the pattern, anchored, only at the word starts whose
// first byte can begin a match, which finds the same matches.
var (
	scanTitleName = newScan(reTitleName, "MDPNp", true)
	scanRelName   = newScan(reRelName, "WwHhSsDdMmFfBbPpNnCcGg", true)
	// (?i) folds s with ſ (U+017F, first byte 0xC5); no \b.
	scanSigned   = newScan(reSigned, "sSaArRpPcC\xc5", false)
	scanPairName = newScan(rePairName, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", true)
	scanEnDate   = newScan(reEnDate, "JFMASOND0123456789", true)
	scanEnAge    = newScan(reEnAge, "Aa", true)
	scanAddress  = newScan(reEnAddress, "0123456789", true)
)

// scan finds the matches of a pattern at chosen positions only.
type scan struct {
	re        *regexp.Regexp // the pattern, anchored
	first     [256]bool      // bytes a match can start with
	wordStart bool           // matches start at a word start (\b then a word character)
	// barrier marks the ASCII bytes that no instruction of the pattern
	// can consume and that are not word characters: a match never
	// reaches one, and \b reads one as it reads the end of the text, so
	// the pattern can be tried on the text up to the next barrier only.
	// That bounds the backtracker's work, which grows with the length of
	// the text it is given.
	barrier [utf8.RuneSelf]bool
}

func newScan(re *regexp.Regexp, first string, wordStart bool) *scan {
	sc := &scan{re: regexp.MustCompile(`^(?:` + re.String() + `)`), wordStart: wordStart}
	for i := 0; i < len(first); i++ {
		sc.first[first[i]] = true
	}
	parsed, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		panic(err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		panic(err)
	}
	for c := range sc.barrier {
		sc.barrier[c] = !isWordByte(byte(c))
	}
	for i := range prog.Inst {
		in := &prog.Inst[i]
		switch in.Op {
		case syntax.InstRune, syntax.InstRune1:
			for c := range sc.barrier {
				if in.MatchRune(rune(c)) {
					sc.barrier[c] = false
				}
			}
		case syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			for c := range sc.barrier {
				sc.barrier[c] = false
			}
		}
	}
	return sc
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }

// all returns what re.FindAllStringSubmatchIndex(s, -1) returns: the
// leftmost-first, non-overlapping matches, each with its submatches.
func (sc *scan) all(s string, out [][]int) [][]int {
	out = out[:0]
	bar := -1 // the next barrier at or after p, or len(s)
	for p := 0; p < len(s); p++ {
		if !sc.first[s[p]] || sc.wordStart && p > 0 && isWordByte(s[p-1]) {
			continue
		}
		if bar < p {
			for bar = p; bar < len(s) && !(s[bar] < utf8.RuneSelf && sc.barrier[s[bar]]); bar++ {
			}
		}
		m := sc.re.FindStringSubmatchIndex(s[p:bar])
		if m == nil {
			continue
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += p
			}
		}
		out = append(out, m)
		if m[1] > p {
			p = m[1] - 1
		}
	}
	return out
}

// notNames are capitalised words that titles and relations may be
// followed by but that are no part of a name.
var notNames = toSet([]string{
	"The", "A", "An", "In", "At", "On", "For", "With", "From", "To", "And", "Or", "Of", "Is", "Was",
	"He", "She", "They", "His", "Her", "Hospital", "Clinic", "Center", "Centre", "University",
	"Today", "Yesterday", "Tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
	"Saturday", "Sunday", "Reports", "Denies", "States", "Presents", "Follow", "Plan", "No", "Not",
	"History", "Status", "Education", "Care", "Room", "Unit", "Department", "Ward", "Emergency",
})

// findEnglish runs the English rules on the runs of Latin text in the note
// (the whole note if it is English; 'Li Ming' or 'CT' in a Chinese one).
func (d *doc) findEnglish() {
	t := d.text
	for i := 0; i < len(t); {
		j := i
		letters := 0
		for j < len(t) {
			r, n := utf8.DecodeRuneInString(t[j:])
			if r >= utf8.RuneSelf && !latinish(r) {
				break
			}
			if r < utf8.RuneSelf && (r|0x20 >= 'a' && r|0x20 <= 'z') {
				letters++
			}
			j += n
		}
		if letters >= 2 && j-i >= 4 && wordy(t[i:j]) {
			d.english(i, t[i:j])
		}
		if j == i {
			_, n := utf8.DecodeRuneInString(t[j:])
			j += n
		}
		i = j
	}
}

// latinish reports whether a non-ASCII rune may be part of a run of
// Latin text: a Latin letter or an English quote or dash. CJK characters
// (U+2E80–U+9FFF hold no Latin letters) are answered without a table.
func latinish(r rune) bool {
	if r >= 0x2E80 && r < 0xA000 {
		return false
	}
	return unicode.Is(unicode.Latin, r) || strings.ContainsRune("’‘“”–—", r)
}

// english applies the English rules to run, which starts at byte base.
func (d *doc) english(base int, run string) {
	var ms [][]int
	addAll := func(sc *scan, k Kind) {
		ms = sc.all(run, ms)
		for _, m := range ms {
			d.add(k, base+m[0], base+m[1])
		}
	}
	addAll(scanEnDate, Date)
	addAll(scanEnAge, Age)
	addAll(scanAddress, Address)
	if !strings.Contains(run, "Hospital") && !strings.Contains(run, "Clinic") && !strings.Contains(run, "Cent") &&
		!strings.Contains(run, "Infirmary") && !strings.Contains(run, "University") && !strings.Contains(run, "Institute") {
		goto names
	}
	for _, m := range reEnInst.FindAllStringIndex(run, -1) {
		s := m[0]
		// Drop leading lower-case words (of the, and).
		for s < m[1] && !(run[s] >= 'A' && run[s] <= 'Z') {
			sp := strings.IndexByte(run[s:m[1]], ' ')
			if sp < 0 {
				break
			}
			s += sp + 1
		}
		if strings.Count(run[s:m[1]], " ") >= 1 {
			d.add(Institution, base+s, base+m[1])
		}
	}
names:
	for _, sc := range []*scan{scanTitleName, scanRelName, scanSigned} {
		ms = sc.all(run, ms)
		for _, m := range ms {
			d.enName(base, run, m[2], m[3])
		}
	}
	ms = scanPairName.all(run, ms)
	for _, m := range ms {
		first := run[m[2]:m[3]]
		if firstNamesEn[first] || pinyin[first] && !notNames[run[m[4]:m[5]]] {
			d.enName(base, run, m[2], m[5])
		}
	}
}

// enName records the name run[s:e], cut before the first word that is not
// part of a name, unless it is an eponym (Parkinson's disease).
func (d *doc) enName(base int, run string, s, e int) {
	words := strings.Fields(run[s:e])
	keep := 0
	for _, w := range words {
		if notNames[w] || medicalEn[strings.ToLower(strings.TrimRight(w, "'’s"))] {
			break
		}
		keep++
	}
	if keep == 0 {
		return
	}
	name := strings.Join(words[:keep], " ")
	if !strings.HasPrefix(run[s:], name) {
		return
	}
	end := s + len(name)
	rest := strings.ToLower(run[end:])
	for _, w := range []string{"'s disease", "’s disease", "'s syndrome", "'s palsy", " disease", " syndrome", " sign", "'s sign", " lymphoma"} {
		if strings.HasPrefix(rest, w) {
			return
		}
	}
	d.add(Name, base+s, base+end)
	d.names = append(d.names, name)
	for _, w := range words[:keep] {
		if len(w) >= 3 && !firstNamesEn[w] {
			d.names = append(d.names, w)
		}
	}
}

// wordy reports whether a run of Latin text has an English word worth the
// English rules: a capitalised word of two or more letters (Li, March,
// Hospital) or a word of four lower-case letters. Runs like "BP 119/69mmHg"
// or "CT" are skipped.
func wordy(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		c := s[i]
		if i > 0 && isAlnum(s[i-1]) {
			continue
		}
		j := i
		for j < len(s) && s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z' {
			j++
		}
		w := s[i:j]
		if len(w) >= 2 && c >= 'A' && c <= 'Z' && w[1] >= 'a' && w[1] <= 'z' && (j == len(s) || !isDigit(s[j])) {
			return true
		}
		if len(w) >= 4 && c >= 'a' && c <= 'z' && w != "mmhg" && w != "mmol" {
			return true
		}
	}
	return false
}
