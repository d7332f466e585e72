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

// newPairs builds the level-0 cell tables of every pair of attributes.
func (e *engine) newPairs() {
	ng := e.base.items()
	keys := make([]uint64, ng)
	ids := make([]int32, ng)
	for a := 0; a < len(e.attrs); a++ {
		for b := a + 1; b < len(e.attrs); b++ {
			db := uint64(e.attrs[b].size[0])
			for g := 0; g < ng; g++ {
				keys[g] = uint64(e.baseVals[a][g])*db + uint64(e.baseVals[b][g])
			}
			nc := e.ht.dedupe(keys, ids)
			p := &pairBound{a: a, b: b, va: make([]int32, nc), vb: make([]int32, nc), count: make([]int32, nc), hb: e.attrs[b].height}
			for g := 0; g < ng; g++ {
				c := ids[g]
				p.va[c], p.vb[c] = e.baseVals[a][g], e.baseVals[b][g]
				p.count[c] += e.base.count[g]
			}
			p.outliers = make([]int, e.attrs[a].height*p.hb)
			for i := range p.outliers {
				p.outliers[i] = -1
			}
			e.pairs = append(e.pairs, p)
		}
	}
}

// pairOutliers returns the bound of pair p at the given levels.
func (e *engine) pairOutliers(p *pairBound, la, lb int) int {
	i := la*p.hb + lb
	if o := p.outliers[i]; o >= 0 {
		return o
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
