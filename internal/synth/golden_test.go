package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// goldenSums are the SHA-256 sums of goldenOutput for each seed. They fix
// the generator's output: a change to the tables (their order, weights or
// text) or to the composition rules changes them. Change them only for a
// change that is meant to alter what the generator writes.
var goldenSums = map[uint64]string{
	1:  "dd174df366ca8e6fd64c7f50bbadcc7be2f9f2dd3a940af0ad34c4b059d07723",
	2:  "659688a065d17c808e80d70291aa08a09a8b71f68153609966ce49572e450679",
	42: "e3ece220e850661ece7b3ec8bf5be26c9b0df54200217724cc8667b25b74a814",
}

// goldenToday is the "today" the golden output is generated with.
var goldenToday = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)

// goldenOutput drives the public API the way medguard demo, medguard synth
// and the de-identification surrogates do and serialises everything it
// returns: people of any age, people for every department, every record
// type for every department (and an unknown department and type), records
// for known stays, record types, staff names and usernames. Over the three
// seeds it reaches every condition of every department and every procedure
// (counted when the sums were computed).
func goldenOutput(seed uint64) []byte {
	cst := time.FixedZone("CST", 8*3600)
	g := NewAt(seed, goldenToday)
	type record struct {
		Dept, Type string
		At         time.Time
		Person     Person
		Record     RecordText
	}
	var out struct {
		Departments []Department
		RecordTypes []string
		People      []Person
		Records     []record
		Stays       []record
		Types       []string
		Staff       []string
		Usernames   []string
	}
	out.Departments = Departments()
	out.RecordTypes = RecordTypes()
	for range 300 {
		out.People = append(out.People, g.Person())
	}
	depts := append(Departments(), Department{Code: "DERM", Name: "皮肤科"})
	types := append(RecordTypes(), "unknown")
	base := time.Date(2025, 1, 2, 9, 15, 0, 0, cst)
	i := 0
	for _, d := range depts {
		for _, rt := range types {
			for k := range 8 {
				p := g.PersonFor(d)
				if k%4 == 3 {
					p = g.Person()
				}
				at := base.Add(time.Duration(i*53) * time.Hour).Add(time.Duration(i%60) * time.Minute)
				if at.Before(p.BirthDate) {
					at = p.BirthDate.Add(30 * time.Hour)
				}
				i++
				out.Records = append(out.Records, record{d.Code, rt, at, p, g.Record(d, rt, p, at)})
			}
		}
	}
	for j, d := range Departments() {
		for k := range 3 {
			p := g.PersonFor(d)
			admitted := base.AddDate(0, 0, 30*j+k).Add(time.Duration(k*7) * time.Hour)
			if admitted.Before(p.BirthDate) {
				admitted = p.BirthDate.Add(12 * time.Hour)
			}
			at := admitted.Add(time.Duration(20+k*50) * time.Hour)
			out.Stays = append(out.Stays, record{d.Code, "discharge_summary", at, p, g.StayRecord(d, "discharge_summary", p, admitted, at)})
		}
	}
	for j := range 400 {
		out.Types = append(out.Types, g.RecordType(depts[j%len(depts)]))
	}
	for j := range 200 {
		name := g.StaffName()
		out.Staff = append(out.Staff, name)
		out.Usernames = append(out.Usernames, g.Username(name, j))
	}
	b, err := json.Marshal(out) // map keys sorted: deterministic
	if err != nil {
		panic(err)
	}
	return b
}

// TestGoldenOutput checks that the generator writes, byte for byte, what
// it wrote when goldenSums were computed.
func TestGoldenOutput(t *testing.T) {
	for seed, want := range goldenSums {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			a := goldenOutput(seed)
			sum := sha256.Sum256(a)
			if got := hex.EncodeToString(sum[:]); got != want {
				t.Errorf("seed %d: output (%d bytes) has SHA-256 %s, want %s", seed, len(a), got, want)
			}
		})
	}
}
