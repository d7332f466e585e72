package synth

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// surname is a family name with its approximate share of the population in
// units of 0.01% (data/surnames.tsv).
type surname struct {
	name   string
	weight int
}

// era lists two-character given names typical of people born in a period,
// which is what makes a 70-year-old a 秀英 and a 5-year-old a 梓涵
// (data/names.json).
type era struct {
	until        int // last birth year of the era
	male, female []string
	single       float64 // share of one-character given names
}

// surname returns a family name chosen by frequency.
func (g *Generator) surname() string { return g.t.surnames[g.weighted(g.t.surnameWeights)].name }

// givenName returns a given name for someone of gender born in year.
func (g *Generator) givenName(gender string, year int) string {
	e := g.t.eras[len(g.t.eras)-1]
	for _, x := range g.t.eras {
		if year <= x.until {
			e = x
			break
		}
	}
	pool, classics := g.t.maleRunes, e.male
	if gender == "female" {
		pool, classics = g.t.femaleRunes, e.female
	}
	switch r := g.rng.Float64(); {
	case r < e.single:
		return string(pick(g, pool))
	case r < e.single+0.4:
		return pick(g, classics)
	default:
		a := pick(g, pool)
		b := pick(g, pool)
		for b == a {
			b = pick(g, pool)
		}
		return string([]rune{a, b})
	}
}

// name returns a full name for someone of gender born in year.
func (g *Generator) name(gender string, year int) string {
	return g.surname() + g.givenName(gender, year)
}

// StaffName returns the Chinese name of a member of staff (born 1960-1999,
// either gender). Every character of it is in the pinyin table, so
// Username always spells it out.
func (g *Generator) StaffName() string {
	gender := "male"
	if g.chance(0.55) { // most nurses are women
		gender = "female"
	}
	return g.name(gender, g.intn(1960, 1999))
}

// Username returns an ASCII sign-in name for the person called name: the
// pinyin of the name followed by n as three digits ("zhangwei017"). Any
// character without a pinyin entry is left out; a name with none at all
// gives "staff" and the number.
func (g *Generator) Username(name string, n int) string {
	return username(name, n)
}

func username(name string, n int) string {
	t := loaded()
	var b strings.Builder
	rest := name
	for _, s := range t.compoundSurnames {
		if p, ok := strings.CutPrefix(rest, s); ok {
			b.WriteString(t.pinyin[s])
			rest = p
			break
		}
	}
	for _, r := range rest {
		b.WriteString(t.pinyin[string(r)])
	}
	if b.Len() == 0 {
		b.WriteString("staff")
	}
	if n < 0 {
		n = -n
	}
	num := strconv.Itoa(n)
	for len(num) < 3 {
		num = "0" + num
	}
	b.WriteString(num)
	return b.String()
}

// ageAt returns the age in whole years of someone born on birth at t.
func ageAt(birth, t time.Time) int {
	y := t.Year() - birth.Year()
	if t.Month() < birth.Month() || t.Month() == birth.Month() && t.Day() < birth.Day() {
		y--
	}
	return max(y, 0)
}

// names are the tables of names.
type names struct {
	surnames         []surname
	surnameWeights   []int
	maleChars        string
	femaleChars      string
	maleRunes        []rune
	femaleRunes      []rune
	eras             []era
	pinyin           map[string]string
	compoundSurnames []string // sorted
}

// namesFile is data/names.json.
type namesFile struct {
	// GivenNameCharacters are the characters common in given names, by the
	// gender they are usually given to.
	GivenNameCharacters struct {
		Male   string `json:"male"`
		Female string `json:"female"`
	} `json:"givenNameCharacters"`
	// Eras are periods of birth years, oldest first, with the given names
	// typical of them.
	Eras []struct {
		// LastBirthYear is the last birth year of the era; the last era's
		// covers every later year.
		LastBirthYear int `json:"lastBirthYear"`
		// OneCharacterShare is the share of one-character given names.
		OneCharacterShare float64 `json:"oneCharacterShare"`
		// Male and Female are two-character given names typical of the era.
		Male   []string `json:"male"`
		Female []string `json:"female"`
	} `json:"eras"`
	// Pinyin spells every surname and given-name character, without tones
	// (ü as v, as Chinese keyboards type it).
	Pinyin map[string]string `json:"pinyin"`
}

// load reads data/surnames.tsv and data/names.json.
func (n *names) load(fsys fs.FS) error {
	const file = "data/surnames.tsv"
	rows, err := readTSV(fsys, file, "surname", "weight")
	if err != nil {
		return err
	}
	for _, r := range rows {
		w, err := strconv.Atoi(r.fields[1])
		if err != nil || w <= 0 {
			return fmt.Errorf("%s:%d: weight %q is not a positive integer", file, r.line, r.fields[1])
		}
		if r.fields[0] == "" {
			return fmt.Errorf("%s:%d: no surname", file, r.line)
		}
		n.surnames = append(n.surnames, surname{r.fields[0], w})
		n.surnameWeights = append(n.surnameWeights, w)
		if utf8.RuneCountInString(r.fields[0]) > 1 {
			n.compoundSurnames = append(n.compoundSurnames, r.fields[0])
		}
	}
	sort.Strings(n.compoundSurnames)

	var f namesFile
	if err := decodeJSON(fsys, "data/names.json", &f); err != nil {
		return err
	}
	n.maleChars, n.femaleChars = f.GivenNameCharacters.Male, f.GivenNameCharacters.Female
	n.maleRunes, n.femaleRunes = []rune(n.maleChars), []rune(n.femaleChars)
	if len(n.maleRunes) == 0 || len(n.femaleRunes) == 0 {
		return errors.New("data/names.json: givenNameCharacters: no male or no female characters")
	}
	if len(f.Eras) == 0 {
		return errors.New("data/names.json: no eras")
	}
	for i, e := range f.Eras {
		if len(e.Male) == 0 || len(e.Female) == 0 {
			return fmt.Errorf("data/names.json: era %d (to %d): no male or no female names", i, e.LastBirthYear)
		}
		n.eras = append(n.eras, era{until: e.LastBirthYear, male: e.Male, female: e.Female, single: e.OneCharacterShare})
	}
	n.pinyin = f.Pinyin
	return nil
}
