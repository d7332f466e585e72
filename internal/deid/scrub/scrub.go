// Package scrub finds and replaces identifiers in free-text clinical notes,
// Chinese and English (SPEC §8): resident ID numbers, phones, names,
// addresses, dates, ages over 89, record numbers, emails and institutions.
// Each is replaced by a typed placeholder ([姓名], [NAME] …) or, on
// request, by a realistic surrogate that is the same for the same original
// throughout one document.
//
// It is pure: it reads only its embedded tables and the segmenter's
// embedded dictionary, keeps nothing, logs nothing and never returns an
// error that repeats the text. It must not decide whether a note may be
// scrubbed or released: the de-identification job does that through the
// gate and records it in the audit log.
package scrub

import (
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-ego/gse"
)

// Kind is the type of an identifier.
type Kind string

// The identifier types the scrubber finds.
const (
	Name         Kind = "name"
	IDNumber     Kind = "id_number"
	Phone        Kind = "phone"
	Address      Kind = "address"
	Date         Kind = "date"
	Age          Kind = "age"
	RecordNumber Kind = "record_number"
	Email        Kind = "email"
	Institution  Kind = "institution"
)

// Kinds returns every Kind in a fixed order.
func Kinds() []Kind {
	return []Kind{Name, IDNumber, Phone, Address, Date, Age, RecordNumber, Email, Institution}
}

// placeholders are the typed placeholders, Chinese and English.
var placeholders = map[Kind][2]string{
	Name:         {"[姓名]", "[NAME]"},
	IDNumber:     {"[身份证号]", "[ID]"},
	Phone:        {"[电话]", "[PHONE]"},
	Address:      {"[地址]", "[ADDRESS]"},
	Date:         {"[日期]", "[DATE]"},
	Age:          {"[年龄]", "[AGE]"},
	RecordNumber: {"[病案号]", "[RECORD]"},
	Email:        {"[邮箱]", "[EMAIL]"},
	Institution:  {"[机构]", "[INSTITUTION]"},
}

// Placeholder returns the placeholder for kind in lang (Chinese
// placeholders for zh, English ones for en).
func Placeholder(kind Kind, lang Lang) string {
	if lang == English {
		return placeholders[kind][1]
	}
	return placeholders[kind][0]
}

// Lang is the language of a note.
type Lang string

// The languages Scrub takes.
const (
	Chinese Lang = "zh"
	English Lang = "en"
	// Auto decides per note: Chinese if it has at least as many Han
	// characters as Latin letters, else English.
	Auto Lang = "auto"
)

// ParseLang returns the Lang named s ("" means Auto) and whether it is one.
func ParseLang(s string) (Lang, bool) {
	switch l := Lang(strings.ToLower(strings.TrimSpace(s))); l {
	case Chinese, English, Auto:
		return l, true
	case "":
		return Auto, true
	}
	return "", false
}

// Detect returns Chinese or English for text: Chinese if it has at least
// as many Han characters as Latin letters.
func Detect(text string) Lang {
	han, latin := 0, 0
	for _, r := range text {
		switch {
		case r < utf8.RuneSelf:
			if r|0x20 >= 'a' && r|0x20 <= 'z' {
				latin++
			}
		case unicode.Is(unicode.Han, r):
			han++
		}
	}
	if han >= latin {
		return Chinese
	}
	return English
}

// Finding is one identifier found in a note: its type and where it is, as
// byte offsets into the note. It never holds the identifier itself.
type Finding struct {
	Kind       Kind
	Start, End int
}

// Options tell Scrub how to replace what it finds.
type Options struct {
	// Lang is the note's language; it chooses the placeholders and which
	// English-only rules run. "" means Auto.
	Lang Lang
	// Surrogate replaces identifiers by realistic surrogates instead of
	// placeholders: the same original becomes the same surrogate within
	// the note, ID numbers keep a valid check character, names come from
	// the synthetic name tables, dates move by one offset per note.
	Surrogate bool
	// Seed chooses the surrogates. Give each note its own seed drawn from
	// a secret source (the CLI draws a random key per run and mixes in
	// the note's id): surrogates are not derived from the originals.
	Seed uint64
}

// Scrubber finds identifiers. It holds the segmenter's dictionary (about
// 100 MB of memory, two seconds to load), so make one and share it: it is
// safe for concurrent use.
type Scrubber struct {
	seg gse.Segmenter
}

var (
	defaultOnce sync.Once
	defaultS    *Scrubber
	defaultErr  error
)

// Default returns a Scrubber shared by the whole process, loading the
// dictionary on first use.
func Default() (*Scrubber, error) {
	defaultOnce.Do(func() { defaultS, defaultErr = New() })
	return defaultS, defaultErr
}

// New loads the segmenter's embedded simplified-Chinese dictionary and
// returns a Scrubber. Prefer Default, which loads it once.
func New() (*Scrubber, error) {
	s := &Scrubber{}
	if err := s.seg.LoadDictEmbed("zh_s"); err != nil {
		return nil, err
	}
	s.seg.LoadModel()
	for _, t := range medicalTerms {
		// Protected terms are words to the segmenter too, so that a name
		// is never cut out of 马尾综合征.
		if isHanWord(t) {
			s.seg.AddToken(t, 1000, "n")
		}
	}
	return s, nil
}

// Find returns the identifiers in text, sorted by position and not
// overlapping.
func (s *Scrubber) Find(text string, lang Lang) []Finding {
	if lang == "" || lang == Auto {
		lang = Detect(text)
	}
	d := &doc{text: text, s: s}
	d.findStructured()
	d.findEnglish()
	if strings.ContainsFunc(text, isHan) {
		d.findAddresses()
		d.findInstitutions()
		d.findChineseNames()
	}
	d.propagateNames()
	return merge(d.found)
}

// Scrub returns text with every identifier replaced, and what it found
// (offsets into text, not into the result).
func (s *Scrubber) Scrub(text string, opt Options) (string, []Finding) {
	lang := opt.Lang
	if lang == "" || lang == Auto {
		lang = Detect(text)
	}
	found := s.Find(text, lang)
	if len(found) == 0 {
		return text, found
	}
	var sur *surrogates
	if opt.Surrogate {
		sur = newSurrogates(opt.Seed, lang)
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, f := range found {
		b.WriteString(text[last:f.Start])
		if sur != nil {
			b.WriteString(sur.replace(f.Kind, text[f.Start:f.End]))
		} else {
			b.WriteString(Placeholder(f.Kind, lang))
		}
		last = f.End
	}
	b.WriteString(text[last:])
	return b.String(), found
}

// doc is one note being searched.
type doc struct {
	s       *Scrubber
	text    string
	found   []Finding
	names   []string // Chinese and English names found, for propagation
	rt      runeText
	bytes   []byte // text, for dictionary look-ups in place
	toks    []int  // scratch for cut
	hmmToks []int
	fullCut bool  // cut every run (tests)
	hits    []hit // scratch for matchers
}

func (d *doc) add(k Kind, start, end int) {
	if start < end {
		d.found = append(d.found, Finding{k, start, end})
	}
}

// taken reports whether [start, end) overlaps something already found.
func (d *doc) taken(start, end int) bool {
	for _, f := range d.found {
		if start < f.End && f.Start < end {
			return true
		}
	}
	return false
}

// merge sorts findings and joins overlapping ones; the joined finding has
// the kind of the longest.
func merge(fs []Finding) []Finding {
	if len(fs) == 0 {
		return nil
	}
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Start != fs[j].Start {
			return fs[i].Start < fs[j].Start
		}
		return fs[i].End > fs[j].End
	})
	out := []Finding{fs[0]}
	longest := fs[0].End - fs[0].Start
	for _, f := range fs[1:] {
		cur := &out[len(out)-1]
		if f.Start < cur.End {
			if f.End-f.Start > longest {
				cur.Kind, longest = f.Kind, f.End-f.Start
			}
			if f.End > cur.End {
				cur.End = f.End
			}
			continue
		}
		out = append(out, f)
		longest = f.End - f.Start
	}
	return out
}

func isHan(r rune) bool { return r >= 0x2E80 && unicode.Is(unicode.Han, r) }

func isHanWord(s string) bool {
	for _, r := range s {
		if !isHan(r) {
			return false
		}
	}
	return s != ""
}
