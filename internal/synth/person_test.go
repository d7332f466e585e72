package synth

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"medguard/internal/idnum"
)

var (
	phonePattern = regexp.MustCompile(`^1(3[0-9]|5[0-35-9]|7[35-8]|8[0-9]|9[135689])[0-9]{8}$`)
	mrnPattern   = regexp.MustCompile(`^MR[0-9]{8}$`)
)

// isChineseName reports whether s is 2-4 Han characters.
func isChineseName(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 2 || n > 4 {
		return false
	}
	for _, r := range s {
		if !unicode.Is(unicode.Han, r) {
			return false
		}
	}
	return true
}

func TestPersonsAreValid(t *testing.T) {
	g := New(1)
	var people []Person
	for range 3000 {
		people = append(people, g.Person())
	}
	for _, d := range Departments() {
		for range 200 {
			people = append(people, g.PersonFor(d))
		}
	}
	for _, p := range people {
		info, err := idnum.ValidateAt(p.IDNumber, ReferenceDate)
		if err != nil {
			t.Fatalf("%s: ID number refused: %v", p.MRN, err)
		}
		if !info.BirthDate.Equal(p.BirthDate) || info.Gender != p.Gender {
			t.Errorf("%s: ID says %v %s, person says %v %s", p.MRN, info.BirthDate, info.Gender, p.BirthDate, p.Gender)
		}
		province := loaded().provinceNames[p.IDNumber[:2]]
		if province == "" || !strings.HasPrefix(p.Address, province) {
			t.Errorf("%s: ID area %s is not in the province of %s", p.MRN, p.IDNumber[:6], p.Address)
		}
		if !phonePattern.MatchString(p.Phone) {
			t.Errorf("%s: phone %q", p.MRN, p.Phone)
		}
		if !isChineseName(p.Name) {
			t.Errorf("%s: name %q is not 2-4 Chinese characters", p.MRN, p.Name)
		}
		if !mrnPattern.MatchString(p.MRN) {
			t.Errorf("MRN %q", p.MRN)
		}
		if age := p.AgeAt(ReferenceDate); age < 0 || age > 95 {
			t.Errorf("%s: age %d", p.MRN, age)
		}
		if p.BirthDate.After(ReferenceDate) || p.BirthDate.Location() != time.UTC || p.BirthDate.Hour() != 0 {
			t.Errorf("%s: birth date %v", p.MRN, p.BirthDate)
		}
		if !strings.HasSuffix(p.Address, "室") || utf8.RuneCountInString(p.Address) < 12 {
			t.Errorf("%s: address %q", p.MRN, p.Address)
		}
	}
}

func TestPersonForFitsTheDepartment(t *testing.T) {
	g := New(2)
	cases := []struct {
		code           string
		minAge, maxAge int
		gender         string
	}{
		{"PEDS", 0, 14, ""},
		{"OBGY", 18, 60, "female"},
		{"PSYC", 14, 85, ""},
		{"CARD", 18, 95, ""},
		{"EMER", 0, 95, ""},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			for range 500 {
				p := g.PersonFor(Department{Code: c.code})
				if age := p.AgeAt(ReferenceDate); age < c.minAge || age > c.maxAge {
					t.Fatalf("age %d outside %d-%d", age, c.minAge, c.maxAge)
				}
				if c.gender != "" && p.Gender != c.gender {
					t.Fatalf("gender %s", p.Gender)
				}
			}
		})
	}
}

func TestMRNsAreUnique(t *testing.T) {
	g := New(3)
	seen := make(map[string]bool, 20000)
	for i := range 20000 {
		p := g.Person()
		if seen[p.MRN] {
			t.Fatalf("person %d repeats MRN %s", i, p.MRN)
		}
		seen[p.MRN] = true
	}
}

func TestNewAtUsesToday(t *testing.T) {
	today := time.Date(2026, 11, 23, 15, 0, 0, 0, time.FixedZone("CST", 8*3600))
	g := NewAt(9, today)
	for range 2000 {
		p := g.Person()
		if p.BirthDate.After(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("born %v, after today", p.BirthDate)
		}
		if _, err := idnum.ValidateAt(p.IDNumber, today); err != nil {
			t.Fatalf("ID refused as of today: %v", err)
		}
	}
}

// TestAgesOnAwkwardDays checks that on leap days, around them and at the
// turn of the year (in Beijing and in UTC) people are born on or before
// today, have valid ID numbers as of today, and are today exactly the age
// their department's profile allows.
func TestAgesOnAwkwardDays(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	days := []time.Time{
		time.Date(2028, 2, 29, 12, 0, 0, 0, cst),
		time.Date(2028, 2, 28, 12, 0, 0, 0, cst),
		time.Date(2028, 3, 1, 0, 0, 0, 0, cst),
		time.Date(2027, 3, 1, 12, 0, 0, 0, cst),
		time.Date(2027, 1, 1, 0, 0, 0, 0, cst), // still 31 December in UTC
		time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC),
	}
	for _, today := range days {
		t.Run(today.Format(time.RFC3339), func(t *testing.T) {
			g := NewAt(uint64(today.Unix()), today)
			y, m, d := today.Date()
			date := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
			for _, dept := range Departments() {
				pr := profileOf(dept.Code)
				for range 300 {
					p := g.PersonFor(dept)
					if p.BirthDate.After(date) {
						t.Fatalf("%s: born %s, after today", dept.Code, p.BirthDate.Format(time.DateOnly))
					}
					if age := p.AgeAt(date); age < pr.minAge || age > pr.maxAge {
						t.Fatalf("%s: born %s, %d today, outside %d-%d", dept.Code, p.BirthDate.Format(time.DateOnly), age, pr.minAge, pr.maxAge)
					}
					if _, err := idnum.ValidateAt(p.IDNumber, today); err != nil {
						t.Fatalf("%s: ID number refused as of today: %v", dept.Code, err)
					}
				}
			}
		})
	}
}

func TestYearsBefore(t *testing.T) {
	cases := []struct {
		day  time.Time
		n    int
		want time.Time
	}{
		{date(2028, 2, 29), 1, date(2027, 2, 28)},
		{date(2028, 2, 29), 4, date(2024, 2, 29)},
		{date(2028, 2, 29), 100, date(1928, 2, 29)},
		{date(2100, 2, 28), 4, date(2096, 2, 28)},
		{date(2000, 2, 29), 100, date(1900, 2, 28)}, // 1900 was not a leap year
		{date(2027, 1, 1), 0, date(2027, 1, 1)},
	}
	for _, c := range cases {
		got := yearsBefore(c.day, c.n)
		if !got.Equal(c.want) {
			t.Errorf("yearsBefore(%s, %d) = %s, want %s", c.day.Format(time.DateOnly), c.n, got.Format(time.DateOnly), c.want.Format(time.DateOnly))
		}
		if age := ageAt(got, c.day); age != c.n {
			t.Errorf("born %s: %d on %s, want %d", got.Format(time.DateOnly), age, c.day.Format(time.DateOnly), c.n)
		}
		if age := ageAt(got.AddDate(0, 0, 1), c.day); c.n > 0 && age != c.n-1 {
			t.Errorf("born %s: %d on %s, want %d", got.AddDate(0, 0, 1).Format(time.DateOnly), age, c.day.Format(time.DateOnly), c.n-1)
		}
	}
}

func TestDeterminism(t *testing.T) {
	type output struct {
		people   []Person
		records  []RecordText
		staff    []string
		types    []string
		username string
	}
	run := func(seed uint64) output {
		g := New(seed)
		var o output
		depts := Departments()
		at := time.Date(2025, 3, 14, 10, 25, 0, 0, time.UTC)
		for i := range 1000 {
			d := depts[i%len(depts)]
			p := g.PersonFor(d)
			rt := g.RecordType(d)
			o.people = append(o.people, p)
			o.types = append(o.types, rt)
			o.records = append(o.records, g.Record(d, rt, p, at.Add(time.Duration(i)*time.Hour)))
			o.staff = append(o.staff, g.StaffName())
		}
		o.username = g.Username(o.staff[0], 1)
		return o
	}
	a, b := run(42), run(42)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different output")
	}
	c := run(43)
	same := 0
	for i := range a.people {
		if a.people[i].IDNumber == c.people[i].IDNumber {
			same++
		}
	}
	if same > 10 || a.records[0].Text == c.records[0].Text {
		t.Fatalf("different seeds gave the same output (%d of 1000 ID numbers equal)", same)
	}
}

func TestSurnameFrequencies(t *testing.T) {
	g := New(4)
	counts := map[string]int{}
	compound := 0
	const n = 50000
	for range n {
		p := g.Person()
		counts[string([]rune(p.Name)[0])]++
		for _, s := range loaded().compoundSurnames {
			if strings.HasPrefix(p.Name, s) {
				compound++
			}
		}
	}
	// 王, 李 and 张 are each about 6-7% of the population.
	for _, s := range []string{"王", "李", "张"} {
		if share := float64(counts[s]) / n; share < 0.05 || share > 0.09 {
			t.Errorf("%s is %.1f%% of names", s, 100*share)
		}
	}
	if compound == 0 || compound > n/100 {
		t.Errorf("%d two-character surnames in %d names", compound, n)
	}
}

func TestNameTables(t *testing.T) {
	tb := loaded()
	if len(tb.surnames) < 60 {
		t.Errorf("%d surnames, want at least 60", len(tb.surnames))
	}
	chars := map[rune]bool{}
	for _, r := range tb.maleChars + tb.femaleChars {
		chars[r] = true
	}
	if len(chars) < 150 {
		t.Errorf("%d given-name characters, want at least 150", len(chars))
	}
	// Every character a name can have must spell out in a username.
	check := func(s string) {
		t.Helper()
		if _, ok := tb.pinyin[s]; !ok {
			t.Errorf("no pinyin for %q", s)
		}
	}
	for _, s := range tb.surnames {
		check(s.name)
	}
	for r := range chars {
		check(string(r))
	}
	for _, e := range tb.eras {
		for _, n := range append(append([]string{}, e.male...), e.female...) {
			for _, r := range n {
				check(string(r))
			}
		}
	}
	for s, py := range tb.pinyin {
		for _, r := range py {
			if r < 'a' || r > 'z' {
				t.Errorf("pinyin for %s is %q", s, py)
			}
		}
	}
}

func TestUsername(t *testing.T) {
	cases := []struct {
		name string
		n    int
		want string
	}{
		{"张伟", 17, "zhangwei017"},
		{"王秀英", 3, "wangxiuying003"},
		{"欧阳娜娜", 5, "ouyangnana005"},
		{"司马建国", 1234, "simajianguo1234"},
		{"吕丽", 0, "lvli000"},
		{"李翀明", 2, "liming002"}, // 翀 has no entry: left out
		{"", 1, "staff001"},
		{"Smith", 9, "staff009"},
	}
	g := New(5)
	for _, c := range cases {
		if got := g.Username(c.name, c.n); got != c.want {
			t.Errorf("Username(%q, %d) = %q, want %q", c.name, c.n, got, c.want)
		}
	}
	ascii := regexp.MustCompile(`^[a-z]+[0-9]{3}$`)
	for i := range 2000 {
		name := g.StaffName()
		if !isChineseName(name) {
			t.Fatalf("staff name %q", name)
		}
		if u := g.Username(name, i%1000); !ascii.MatchString(u) || strings.HasPrefix(u, "staff") {
			t.Fatalf("Username(%q) = %q", name, u)
		}
	}
}

func TestAreaTable(t *testing.T) {
	areas := loaded().areas
	if len(areas) < 30 {
		t.Fatalf("%d areas, want at least 30", len(areas))
	}
	codes := map[string]bool{}
	for _, a := range areas {
		if codes[a.code] {
			t.Errorf("area %s twice", a.code)
		}
		codes[a.code] = true
		if _, err := idnum.Make(a.code, ReferenceDate, 1); err != nil {
			t.Errorf("area %s: %v", a.code, err)
		}
		if a.province == "" || a.district == "" {
			t.Errorf("area %s has no province or district", a.code)
		}
		municipality := strings.HasSuffix(a.province, "市")
		if municipality != (a.city == "") {
			t.Errorf("area %s: a municipality has no city level, a province has one", a.code)
		}
	}
}

func TestAgeText(t *testing.T) {
	cases := []struct {
		birth, at time.Time
		want      string
	}{
		{date(1969, 3, 14), date(2025, 3, 14), "56岁"},
		{date(1969, 3, 15), date(2025, 3, 14), "55岁"},
		{date(2024, 7, 20), date(2025, 3, 14), "7个月"},
		{date(2025, 3, 1), date(2025, 3, 14), "13天"},
		{date(2025, 3, 14), date(2025, 3, 14), "1天"},
		{date(2025, 4, 1), date(2025, 3, 14), "1天"}, // record before birth
	}
	for _, c := range cases {
		if got := ageText(c.birth, c.at); got != c.want {
			t.Errorf("ageText(%v, %v) = %q, want %q", c.birth, c.at, got, c.want)
		}
	}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
