package scrub

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"medguard/internal/deid/mask"
	"medguard/internal/idnum"
	"medguard/internal/synth"
)

// surrogates makes the replacements of one note: the same original gets
// the same surrogate, drawn from the note's seed, never from the original.
type surrogates struct {
	rng   *rand.Rand
	gen   *synth.Generator
	lang  Lang
	seen  map[string]string
	dates *mask.DateShifter
}

func newSurrogates(seed uint64, lang Lang) *surrogates {
	var key [16]byte
	binary.BigEndian.PutUint64(key[:8], seed)
	binary.BigEndian.PutUint64(key[8:], seed^0x9E3779B97F4A7C15)
	ds, _ := mask.NewDateShifter(key[:], 365)
	return &surrogates{
		rng:   rand.New(rand.NewPCG(seed, seed^0x5851F42D4C957F2D)),
		gen:   synth.New(seed),
		lang:  lang,
		seen:  map[string]string{},
		dates: ds,
	}
}

func (s *surrogates) replace(k Kind, orig string) string {
	key := string(k) + "\x00" + orig
	if v, ok := s.seen[key]; ok {
		return v
	}
	v := s.make(k, orig)
	s.seen[key] = v
	return v
}

var surrogateAreas = []string{"110101", "310104", "440106", "510107", "330106", "420102", "320102", "370102"}

var enSurnames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clark"}

var surrogateInstitutions = []string{"第一人民医院", "第二人民医院", "中心医院", "中医医院", "妇幼保健院", "社区卫生服务中心"}

func (s *surrogates) digits(n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + s.rng.IntN(10)))
	}
	return b.String()
}

func (s *surrogates) make(k Kind, orig string) string {
	en := s.lang == English
	switch k {
	case Name:
		if isLatinName(orig) {
			if !strings.Contains(orig, " ") {
				return enSurnames[s.rng.IntN(len(enSurnames))]
			}
			return firstNameAt(s.rng.IntN(len(firstNamesSorted))) + " " + enSurnames[s.rng.IntN(len(enSurnames))]
		}
		if len([]rune(orig)) == 1 { // a surname alone (王主任)
			return []string{"李", "王", "张", "刘", "陈"}[s.rng.IntN(5)]
		}
		return s.gen.Person().Name
	case IDNumber:
		birth := time.Date(1930+s.rng.IntN(80), time.Month(1+s.rng.IntN(12)), 1+s.rng.IntN(28), 0, 0, 0, 0, time.UTC)
		id, err := idnum.Make(surrogateAreas[s.rng.IntN(len(surrogateAreas))], birth, s.rng.IntN(1000))
		if err != nil {
			return Placeholder(k, s.lang)
		}
		if len(strings.TrimSpace(orig)) == 15 {
			return id[:6] + id[8:17]
		}
		return id
	case Phone:
		d := 0
		for _, c := range orig {
			if c >= '0' && c <= '9' {
				d++
			}
		}
		if strings.Contains(orig, "1") && d >= 11 && !strings.HasPrefix(strings.TrimLeft(orig, "(+ "), "0") {
			return "1" + string(byte('3'+s.rng.IntN(7))) + s.digits(9)
		}
		if en {
			return "555-" + s.digits(3) + "-" + s.digits(4)
		}
		return "0" + string(byte('2'+s.rng.IntN(8))) + s.digits(1) + "-" + s.digits(8)
	case Date:
		if v, err := s.dates.ShiftString("", orig); err == nil {
			return v
		}
		return Placeholder(k, s.lang)
	case Age:
		if en {
			return "90+"
		}
		return "90岁以上"
	case RecordNumber:
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return rune('0' + s.rng.IntN(10))
			}
			return r
		}, orig)
	case Email:
		return fmt.Sprintf("user%s@example.com", s.digits(6))
	case Address:
		if en {
			return fmt.Sprintf("%d Oak Street, Springfield", 1+s.rng.IntN(999))
		}
		return s.gen.Person().Address
	case Institution:
		if en {
			return "Springfield General Hospital"
		}
		city := mask.MaskAddress(s.gen.Person().Address)
		if r := []rune(city); len(r) > 0 {
			return city + surrogateInstitutions[s.rng.IntN(len(surrogateInstitutions))]
		}
		return surrogateInstitutions[s.rng.IntN(len(surrogateInstitutions))]
	}
	return Placeholder(k, s.lang)
}

var firstNamesSorted = lines(firstNamesTxt)

func firstNameAt(i int) string { return firstNamesSorted[i%len(firstNamesSorted)] }
