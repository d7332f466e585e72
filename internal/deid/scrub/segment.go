package scrub

import (
	"math"
	"strings"

	"github.com/go-ego/gse/hmm"
)

// maxWindow is the most runes contextFree cuts at once: three before the
// surname, the surname (one or two) and three after.
const maxWindow = 8

// find looks the runes [a, b) of the note up in the segmenter's
// dictionary, as gse's Segmenter.Find does, without copying them.
func (d *doc) find(a, b int) (freq float64, pos string, ok bool) {
	if d.bytes == nil {
		d.bytes = []byte(d.text)
	}
	return d.s.seg.Dict.Find(d.bytes[d.rt.off[a]:d.rt.off[b]])
}

// cut segments the runes [lo, hi) of the note (Han characters only, at
// most maxWindow) exactly as gse's Segmenter.Cut(text, true) does — the
// same DAG of dictionary words, the same most probable route with the
// same tie rule, the same HMM pass over runs of single characters — but
// reads the dictionary in place and returns the tokens as rune lengths
// in d.toks, without a map or a string per call.
//
// Only the boundary at rune from and the first three tokens from there
// are needed: a run of single characters that ends at or before from, or
// that starts after those three tokens, is returned as one token instead
// of being cut by the HMM (the costly part).
func (d *doc) cut(lo, hi, from int) []int {
	n := hi - lo
	var (
		dag   [maxWindow][maxWindow + 1]int8 // dag[k]: ends (exclusive, relative) of the words at k
		ndag  [maxWindow]int
		wfreq [maxWindow][maxWindow + 1]float64
		route [maxWindow + 1]float64
		next  [maxWindow + 1]int
	)
	for k := 0; k < n; k++ {
		var first float64
		firstOK := false
		for i := k; i < n; i++ {
			freq, _, ok := d.find(lo+k, lo+i+1)
			if !ok {
				break
			}
			if i == k {
				first, firstOK = freq, true
			}
			if freq > 0 {
				dag[k][ndag[k]] = int8(i + 1)
				wfreq[k][ndag[k]] = freq
				ndag[k]++
			}
		}
		if ndag[k] == 0 {
			// The character alone, as gse scores it: log(1) if the
			// dictionary does not know it at all, log(0) if it is only
			// a prefix or a word of frequency 0.
			dag[k][0] = int8(k + 1)
			wfreq[k][0] = 1
			if firstOK {
				wfreq[k][0] = first
			}
			ndag[k] = 1
		}
	}
	logT := math.Log(d.s.seg.Dict.TotalFreq())
	route[n] = 0
	for k := n - 1; k >= 0; k-- {
		set := false
		for j := 0; j < ndag[k]; j++ {
			e := int(dag[k][j])
			f := math.Log(wfreq[k][j]) - logT + route[e]
			if !set || route[k] < f || route[k] == f && next[k] < e {
				route[k], next[k], set = f, e, true
			}
		}
	}
	toks := d.toks[:0]
	end := 0   // end of the tokens so far, relative to lo
	after := 0 // tokens that start at or after from
	emit := func(l int) {
		if lo+end >= from {
			after++
		}
		toks = append(toks, l)
		end += l
	}
	buf := 0 // single characters pending, ending at x
	flush := func(x int) {
		s := x - buf
		switch {
		case buf == 0:
		case buf == 1:
			emit(1)
		case !d.fullCut && (lo+x <= from || after >= 3):
			emit(buf)
		default:
			if freq, _, ok := d.find(lo+s, lo+x); !ok || freq == 0 {
				for _, l := range d.hmmCut(d.rt.r[lo+s : lo+x]) {
					emit(l)
				}
			} else {
				for range buf {
					emit(1)
				}
			}
		}
		buf = 0
	}
	for x := 0; x < n; {
		y := next[x]
		if y-x == 1 {
			buf++
		} else {
			flush(x)
			emit(y - x)
		}
		x = y
	}
	flush(n)
	d.toks = toks
	return toks
}

// hmmCut cuts a run of Han characters with gse's HMM, as
// Segmenter.HMMCut does for such a run (hmm.Cut of a text that is one
// \p{Han}+ run is its Viterbi path read as words), and returns the words'
// lengths in runes.
func (d *doc) hmmCut(r []rune) []int {
	_, path := hmm.Viterbi(r, bmes)
	out := d.hmmToks[:0]
	begin, next := 0, 0
	for i, st := range path {
		switch st {
		case 'B':
			begin = i
		case 'E':
			out = append(out, i+1-begin)
			next = i + 1
		case 'S':
			out = append(out, 1)
			next = i + 1
		}
	}
	if next < len(r) {
		out = append(out, len(r)-next)
	}
	d.hmmToks = out
	return out
}

var bmes = []byte{'B', 'M', 'E', 'S'}

// isNamePos reports whether a part-of-speech tag is a person's name's.
func isNamePos(pos string) bool { return strings.HasPrefix(pos, "nr") }
