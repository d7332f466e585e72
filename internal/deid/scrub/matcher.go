package scrub

import (
	"sort"
	"strings"
)

// matcher finds many fixed strings in one pass over a text, where a
// strings.Index per key would scan the text once per key (and, for keys
// that start with a common lead byte of UTF-8 Chinese, stop at almost
// every character). A bitmap indexed by a hash of the first three bytes
// rules out nearly every position; the few left are checked against the
// keys with that hash.
type matcher struct {
	keys   []string
	filter [1 << 16 / 64]uint64
	byHead map[uint32][]int32
}

// newMatcher returns a matcher of keys, each at least three bytes long.
func newMatcher(keys []string) *matcher {
	m := &matcher{keys: keys, byHead: map[uint32][]int32{}}
	for i, k := range keys {
		if len(k) < 3 {
			panic("scrub: matcher key shorter than three bytes")
		}
		h := head3(k, 0)
		m.filter[hash16(h)>>6] |= 1 << (hash16(h) & 63)
		m.byHead[h] = append(m.byHead[h], int32(i))
	}
	return m
}

func head3(s string, i int) uint32 {
	return uint32(s[i])<<16 | uint32(s[i+1])<<8 | uint32(s[i+2])
}

func hash16(h uint32) uint32 { return (h * 0x9E3779B1) >> 16 }

// hit is one occurrence of key k at byte pos.
type hit struct{ k, pos int }

// find returns the occurrences of the keys in text in the order a loop
// over the keys with strings.Index would find them: by key, then by
// position, each search going on after the end of the previous match of
// the same key (so a key's matches do not overlap).
func (m *matcher) find(text string, out []hit) []hit {
	out = out[:0]
	for p := 0; p+3 <= len(text); p++ {
		h := head3(text, p)
		x := hash16(h)
		if m.filter[x>>6]&(1<<(x&63)) == 0 {
			continue
		}
		for _, k := range m.byHead[h] {
			if strings.HasPrefix(text[p:], m.keys[k]) {
				out = append(out, hit{int(k), p})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].k < out[j].k })
	// Drop a match that starts inside the previous match of its key.
	kept := out[:0]
	lastK, lastEnd := -1, 0
	for _, h := range out {
		if h.k == lastK && h.pos < lastEnd {
			continue
		}
		lastK, lastEnd = h.k, h.pos+len(m.keys[h.k])
		kept = append(kept, h)
	}
	return kept
}
