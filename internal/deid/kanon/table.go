package kanon

// table is an open-addressing hash table from uint64 keys to dense ids,
// reused between transformations: a generation stamp marks the live slots,
// so emptying it costs nothing.
type table struct {
	keys  []uint64
	ids   []int32
	stamp []uint32
	gen   uint32
	mask  uint64
	shift uint
}

// dedupe gives each distinct key a dense id, in order of first appearance,
// writes the id of keys[i] to ids[i] and returns the number of ids.
func (t *table) dedupe(keys []uint64, ids []int32) int {
	t.reset(len(keys))
	n := int32(0)
	for i, k := range keys {
		h := (k * 0x9E3779B97F4A7C15) >> t.shift
		for {
			if t.stamp[h] != t.gen {
				t.stamp[h] = t.gen
				t.keys[h] = k
				t.ids[h] = n
				ids[i] = n
				n++
				break
			}
			if t.keys[h] == k {
				ids[i] = t.ids[h]
				break
			}
			h = (h + 1) & t.mask
		}
	}
	return int(n)
}

// reset empties the table and makes room for n keys at most half full.
func (t *table) reset(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	if size > len(t.keys) {
		t.keys = make([]uint64, size)
		t.ids = make([]int32, size)
		t.stamp = make([]uint32, size)
		t.gen = 0
	}
	// Use the whole allocation only if needed: a smaller power of two keeps
	// the live slots in cache.
	t.mask = uint64(size - 1)
	t.shift = uint(64 - log2(size))
	t.gen++
	if t.gen == 0 {
		clear(t.stamp)
		t.gen = 1
	}
}

func log2(n int) int {
	b := 0
	for n > 1 {
		n >>= 1
		b++
	}
	return b
}
