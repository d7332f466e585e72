// Package synth generates a deterministic synthetic hospital in Chinese:
// patients with valid resident ID numbers, phones and addresses, staff names
// and usernames, the departments, and clinical records (admission notes,
// progress notes, lab and imaging reports, prescriptions …) whose text reads
// like a Chinese hospital's and carries patient data in the usual places.
//
// It owns only the data tables and the composition rules. The rules are Go
// code; the tables are data files under data/, compiled into the package
// with go:embed and decoded once, on first use (tables.go):
//
//   - names.json, surnames.tsv: given-name characters, names by era,
//     pinyin; surnames with their weights
//   - places.json, mobile_prefixes.tsv: areas, streets, compounds; mobile
//     number prefixes with their weights
//   - departments.json and conditions/CODE.json: the departments and the
//     conditions each treats, whose text is templates (template.go)
//   - drugs.json, imaging.json, procedures.json: the drugs, imaging studies
//     and procedures that conditions (and departments) name by key
//   - lab_panels.json: the lab panels and their reference ranges
//
// Each Go type a file decodes into says what its fields mean. A file that
// does not decode, or refers to a key that no file defines, is an error
// that names the file; the tests load them all.
//
// Given the same seed it produces the same output on every machine, so it
// must never use the global random source or the wall clock, must not read
// files (other than its embedded tables, which are part of the binary) or
// the network, and must not store anything: callers (medguard demo, tests,
// benchmarks, de-identification test environments) decide what to keep.
// Every person it makes is fictional; any likeness to a real person's data
// is chance.
package synth

import (
	"math/rand/v2"
	"time"
)

// ReferenceDate is the "today" of a Generator made by New: no one is born
// after it and ages are counted to it.
var ReferenceDate = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// streamMix is xored with the seed to make the second PCG word.
const streamMix = 0x9E3779B97F4A7C15

// Generator makes synthetic people and records. The same seed (and today)
// gives the same sequence of results. A Generator is not safe for
// concurrent use; give each goroutine its own.
type Generator struct {
	t       *tables
	rng     *rand.Rand
	today   time.Time
	mrnBase uint64
	mrnNext uint64
}

// New returns a Generator seeded with seed whose "today" is ReferenceDate.
func New(seed uint64) *Generator { return NewAt(seed, ReferenceDate) }

// NewAt returns a Generator seeded with seed whose "today" is the calendar
// date of today in today's location: people are born on or before it, and
// the age they are drawn with is their age on it. medguard demo passes the
// last day of its simulated year, so that ages look right and no one is
// born after the last visit; tests pass a fixed date.
func NewAt(seed uint64, today time.Time) *Generator {
	y, m, d := today.Date()
	return &Generator{
		t:     loaded(),
		rng:   rand.New(rand.NewPCG(seed, seed^streamMix)),
		today: time.Date(y, m, d, 0, 0, 0, 0, time.UTC),
		// Generators with different seeds start their record numbers at
		// different points, so that two demo runs rarely collide.
		mrnBase: splitmix(seed) % mrnSpan,
	}
}

// splitmix is the SplitMix64 finaliser: a cheap, well-mixed hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// intn returns a random int in [lo, hi].
func (g *Generator) intn(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + g.rng.IntN(hi-lo+1)
}

// chance reports true with probability p.
func (g *Generator) chance(p float64) bool { return g.rng.Float64() < p }

// pick returns a random element of s.
func pick[T any](g *Generator, s []T) T { return s[g.rng.IntN(len(s))] }

// weighted returns an index into weights chosen with probability
// proportional to its weight.
func (g *Generator) weighted(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}
