package kanon

// pairBound is the outlier bound of two quasi-identifiers taken alone: a
// row whose pair of generalised values occurs in fewer than K rows is an
// outlier under every transformation with the pair at those levels, since
// its class can only be smaller.
type pairBound struct {
	a, b int
	// cells are the distinct level-0 value pairs present in the input.
	va, vb []int32
	count  []int32
	// outliers[la*heightB+lb] is the bound at levels (la, lb); -1 until
	// computed.
	outliers []int
	hb       int
}

// newPairs lists the pairs of attributes; the cell table of a pair is
// built when its bound is first needed (see cells).
func (e *engine) newPairs() {
	for a := 0; a < len(e.attrs); a++ {
		for b := a + 1; b < len(e.attrs); b++ {
			p := &pairBound{a: a, b: b, hb: e.attrs[b].height}
			p.outliers = make([]int, e.attrs[a].height*p.hb)
			for i := range p.outliers {
				p.outliers[i] = -1
			}
			e.pairs = append(e.pairs, p)
		}
	}
}

// cells builds the level-0 cell table of pair p: the distinct value pairs
// of the base groups and their row counts.
func (e *engine) cells(p *pairBound) {
	ng := e.base.items()
	da, db := uint64(e.attrs[p.a].size[0]), uint64(e.attrs[p.b].size[0])
	va, vb := e.baseVals[p.a], e.baseVals[p.b]
	count := e.base.count
	add := func(x, y int32, c int32) int32 {
		p.va, p.vb, p.count = append(p.va, x), append(p.vb, y), append(p.count, c)
		return int32(len(p.count) - 1)
	}
	if cells := da * db; cells <= 1<<16 || cells <= uint64(ng) {
		// Direct addressing: cheaper than hashing.
		if uint64(cap(e.dense)) < cells {
			e.dense = make([]int32, cells)
		}
		d := e.dense[:cells]
		for i := range d {
			d[i] = -1
		}
		for g := 0; g < ng; g++ {
			k := uint64(va[g])*db + uint64(vb[g])
			if id := d[k]; id >= 0 {
				p.count[id] += count[g]
			} else {
				d[k] = add(va[g], vb[g], count[g])
			}
		}
		return
	}
	keys := e.keys[:ng]
	ids := e.cls[:ng]
	for g := 0; g < ng; g++ {
		keys[g] = uint64(va[g])*db + uint64(vb[g])
	}
	nc := e.ht.dedupe(keys, ids)
	p.va, p.vb, p.count = make([]int32, nc), make([]int32, nc), make([]int32, nc)
	for g := 0; g < ng; g++ {
		c := ids[g]
		p.va[c], p.vb[c] = va[g], vb[g]
		p.count[c] += count[g]
	}
}

// pairOutliers returns the bound of pair p at the given levels.
func (e *engine) pairOutliers(p *pairBound, la, lb int) int {
	i := la*p.hb + lb
	if o := p.outliers[i]; o >= 0 {
		return o
	}
	if p.count == nil {
		e.cells(p)
		e.pairsBuilt++
	}
	A, B := &e.attrs[p.a], &e.attrs[p.b]
	sb := uint64(B.size[lb])
	nc := len(p.count)
	keys := e.keys[:nc]
	ga, gb := A.gen[la], B.gen[lb]
	for c := 0; c < nc; c++ {
		keys[c] = uint64(ga[p.va[c]])*sb + uint64(gb[p.vb[c]])
	}
	cls := e.cls[:nc]
	n := e.ht.dedupe(keys, cls)
	cnt := grow(e.ccount, n)
	e.ccount = cnt
	for c := 0; c < nc; c++ {
		cnt[cls[c]] += p.count[c]
	}
	o := 0
	for _, x := range cnt {
		if int(x) < e.cfg.K {
			o += int(x)
		}
	}
	p.outliers[i] = o
	return o
}

// pairBoundFails reports whether some pair of attributes alone already has
// more outliers at node's levels than may be suppressed.
func (e *engine) pairBoundFails(node []int) bool {
	for _, p := range e.pairs {
		if e.pairOutliers(p, node[p.a], node[p.b]) > e.limit {
			return true
		}
	}
	return false
}
