package kanon

// table is an open-addressing hash table from uint64 keys to dense ids,
// reused between transformations: a generation stamp marks the live slots,
// so emptying it costs nothing. A slot's key, id and stamp share one
// cache line.
type table struct {
	slots []slot
	gen   uint32
	mask  uint64
	shift uint
}

type slot struct {
	key   uint64
	id    int32
	stamp uint32
}

// dedupe gives each distinct key a dense id, in order of first appearance,
// writes the id of keys[i] to ids[i] and returns the number of ids.
func (t *table) dedupe(keys []uint64, ids []int32) int {
	t.reset(len(keys))
	n := int32(0)
	slots, gen, mask, shift := t.slots, t.gen, t.mask, t.shift
	ids = ids[:len(keys)]
	for i, k := range keys {
		h := (k * 0x9E3779B97F4A7C15) >> shift
		for {
			s := &slots[h]
			if s.stamp != gen {
				*s = slot{key: k, id: n, stamp: gen}
				ids[i] = n
				n++
				break
			}
			if s.key == k {
				ids[i] = s.id
				break
			}
			h = (h + 1) & mask
		}
	}
	return int(n)
}

// rollup merges items with equal keys: item i (key keys[i], count[i] rows,
// representative rep[i]) goes to the class of its key; the classes, in
// order of first appearance, are written to outKey, outCount and outRep
// (each with room for len(keys)) and their number returned. outKey may be
// nil.
func (t *table) rollup(keys []uint64, count, rep []int32, outKey []uint64, outCount, outRep []int32) int {
	t.reset(len(keys))
	n := int32(0)
	slots, gen, mask, shift := t.slots, t.gen, t.mask, t.shift
	count, rep = count[:len(keys)], rep[:len(keys)]
	for i, k := range keys {
		h := (k * 0x9E3779B97F4A7C15) >> shift
		for {
			s := &slots[h]
			if s.stamp != gen {
				*s = slot{key: k, id: n, stamp: gen}
				if outKey != nil {
					outKey[n] = k
				}
				outCount[n] = count[i]
				outRep[n] = rep[i]
				n++
				break
			}
			if s.key == k {
				outCount[s.id] += count[i]
				break
			}
			h = (h + 1) & mask
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
	if size > len(t.slots) {
		t.slots = make([]slot, size)
		t.gen = 0
	}
	// Use the whole allocation only if needed: a smaller power of two keeps
	// the live slots in cache.
	t.mask = uint64(size - 1)
	t.shift = uint(64 - log2(size))
	t.gen++
	if t.gen == 0 {
		clear(t.slots)
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
