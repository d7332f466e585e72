package synth

import (
	"strconv"
	"time"

	"medguard/internal/idnum"
)

// Person is a synthetic patient. All of it is fictional but has the shape
// of real patient data, and all of it counts as patient data for whoever
// stores it.
type Person struct {
	// Name is 2-4 Chinese characters: surname then given name.
	Name string
	// Gender is "male" or "female" and agrees with IDNumber.
	Gender string
	// BirthDate is at midnight UTC and agrees with IDNumber.
	BirthDate time.Time
	// IDNumber is a valid resident ID number whose area code is in the
	// province of Address.
	IDNumber string
	// Phone is an 11-digit mainland mobile number.
	Phone string
	// Address is a full postal address: province, city, district, street,
	// building and flat.
	Address string
	// MRN is the medical record number (病案号): "MR" and eight digits,
	// unique among the people one Generator makes.
	MRN string
}

// AgeAt returns the person's age in whole years at t (0 if t is before
// the birth date).
func (p Person) AgeAt(t time.Time) int { return ageAt(p.BirthDate, t) }

// ageBand is a range of ages and how common it is among patients: a
// hospital sees more of the old than the young.
type ageBand struct{ lo, hi, weight int }

var ageBands = []ageBand{
	{0, 4, 5}, {5, 14, 5}, {15, 24, 5}, {25, 34, 10}, {35, 44, 11},
	{45, 54, 14}, {55, 64, 17}, {65, 74, 18}, {75, 84, 11}, {85, 95, 4},
}

// mrnSpan is how many eight-digit record numbers there are from 10000000.
const mrnSpan = 90_000_000

// Person returns a new patient of any age from 0 to 95.
func (g *Generator) Person() Person { return g.person(0, 95, "") }

// PersonFor returns a new patient the department would plausibly treat:
// children (0-14) for 儿科 (PEDS), women of 18-60 for 妇产科 (OBGY), anyone
// for 急诊科 (EMER) and adults or adolescents for the other wards.
func (g *Generator) PersonFor(dept Department) Person {
	p := profileOf(dept.Code)
	return g.person(p.minAge, p.maxAge, p.gender)
}

// person returns a patient aged lo to hi; gender "" means either.
func (g *Generator) person(lo, hi int, gender string) Person {
	if gender == "" {
		gender = "male"
		if g.chance(0.5) {
			gender = "female"
		}
	}
	// A birth date on which the person is exactly age today: from the day
	// after their (age+1)th-birthday-ago date up to their age-th one.
	age := g.age(lo, hi)
	latest := yearsBefore(g.today, age)
	earliest := yearsBefore(g.today, age+1).AddDate(0, 0, 1)
	birth := latest.AddDate(0, 0, -g.intn(0, int(latest.Sub(earliest).Hours()/24)))
	home := g.t.areas[g.rng.IntN(len(g.t.areas))]
	// Most people live where their number was issued; some have moved
	// within the province.
	issued := home
	if same := g.t.areasByProvince[home.code[:2]]; g.chance(0.25) {
		issued = g.t.areas[pick(g, same)]
	}
	seq := g.intn(0, 499) * 2
	if gender == "male" {
		seq++
	}
	id, err := idnum.Make(issued.code, birth, seq)
	if err != nil {
		panic("synth: cannot make an ID number from the area table: " + err.Error())
	}
	p := Person{
		Name:      g.name(gender, birth.Year()),
		Gender:    gender,
		BirthDate: birth,
		IDNumber:  id,
		Phone:     g.phone(),
		Address:   g.address(home),
		MRN:       "MR" + strconv.FormatUint(10_000_000+(g.mrnBase+g.mrnNext)%mrnSpan, 10),
	}
	g.mrnNext++
	return p
}

// age returns an age from lo to hi following ageBands.
func (g *Generator) age(lo, hi int) int {
	weights := make([]int, len(ageBands))
	for i, b := range ageBands {
		if b.hi >= lo && b.lo <= hi {
			weights[i] = b.weight
		}
	}
	b := ageBands[g.weighted(weights)]
	return g.intn(max(b.lo, lo), min(b.hi, hi))
}

// yearsBefore returns the calendar date n years before day: someone born
// on it is n years old on day. From 29 February the date in a common year
// is 28 February, as ageAt counts a leap-day birthday.
func yearsBefore(day time.Time, n int) time.Time {
	y, m, d := day.Date()
	y -= n
	if m == time.February && d == 29 && !isLeap(y) {
		d = 28
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// isLeap reports whether y is a leap year in the Gregorian calendar.
func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }
