package kanon

import "math"

// candidate is an anonymous transformation met by the search.
type candidate struct {
	loss   float64
	height int
	node   []int
}

// queue orders candidates (see Less2).
type queue []candidate

// search returns the anonymous transformation of least loss. It visits the
// lattice best first from the bottom: since the loss never decreases from
// a node to its successors, nodes leave the queue in order of loss, and the
// first one known to be anonymous is a global optimum (ties go to the
// lower, then the lexicographically smaller node).
//
// A node that must be checked and is not anonymous is the start of a
// climb (see climb) to a maximal non-anonymous node, which settles every
// node below it; anonymous nodes met on the way bound the loss from above.
func (e *engine) search() ([]int, error) {
	nq := len(e.attrs)
	// A node is kept in the queue as its mixed-radix index, attribute 0
	// most significant, so that index order is lexicographic order.
	stride := make([]uint64, nq)
	size := uint64(1)
	for q := nq - 1; q >= 0; q-- {
		stride[q] = size
		size *= uint64(e.attrs[q].height)
	}
	var seenBits []uint64
	var seenMap map[uint64]struct{}
	if size <= 1<<24 {
		seenBits = make([]uint64, (size+63)/64)
	} else {
		seenMap = map[uint64]struct{}{}
	}
	// see marks x as queued and reports whether it already was.
	see := func(x uint64) bool {
		if seenBits != nil {
			w, b := x/64, uint64(1)<<(x%64)
			old := seenBits[w]&b != 0
			seenBits[w] |= b
			return old
		}
		_, old := seenMap[x]
		seenMap[x] = struct{}{}
		return old
	}
	node := make([]int, nq)
	pq := nodeHeap{{loss: e.lossOf(node)}}
	see(0)
	e.best = nil
	for len(pq) > 0 {
		c := pq.pop()
		x := c.index
		for q := range node {
			node[q] = int(x / stride[q])
			x %= stride[q]
		}
		if e.best != nil && !lessNode(c.loss, c.height, node, e.best.loss, e.best.height, e.best.node) {
			return e.best.node, nil
		}
		if !e.bound(node) && !dominated(node, e.failed) && !e.pairBoundFails(node) {
			v, g := e.check(node, nil)
			if v.anonymous {
				return append([]int(nil), node...), nil
			}
			e.climb(node, g)
		}
		for q, l := range node {
			if l+1 >= e.attrs[q].height {
				continue
			}
			x := c.index + stride[q]
			if see(x) {
				continue
			}
			node[q]++
			pq.push(entry{loss: e.lossOf(node), height: c.height + 1, index: x})
			node[q]--
		}
	}
	if e.best != nil {
		return e.best.node, nil
	}
	return nil, ErrNoSolution
}

// entry is a node in the search's queue, by its lattice index.
type entry struct {
	loss   float64
	height int
	index  uint64
}

func (a entry) less(b entry) bool {
	if a.loss != b.loss {
		return a.loss < b.loss
	}
	if a.height != b.height {
		return a.height < b.height
	}
	return a.index < b.index
}

// nodeHeap is a binary min-heap of entries (no interfaces, no boxing).
type nodeHeap []entry

func (h *nodeHeap) push(x entry) {
	*h = append(*h, x)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !a[i].less(a[p]) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *nodeHeap) pop() entry {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for i := 0; ; {
		m := i
		if l := 2*i + 1; l < n && a[l].less(a[m]) {
			m = l
		}
		if r := 2*i + 2; r < n && a[r].less(a[m]) {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

// lessNode orders two nodes as the queue does: by loss, height, then
// lexicographically.
func lessNode(la float64, ha int, a []int, lb float64, hb int, b []int) bool {
	if la != lb {
		return la < lb
	}
	if ha != hb {
		return ha < hb
	}
	for k := range a {
		if a[k] != b[k] {
			return a[k] < b[k]
		}
	}
	return false
}

// Less2 orders two candidates as the search's queue does.
func (queue) Less2(a, b candidate) bool {
	return lessNode(a.loss, a.height, a.node, b.loss, b.height, b.node)
}

// climb starts at a non-anonymous node and its grouping and goes up one
// level at a time, always raising the attribute whose next level costs the
// least loss, as long as the node stays non-anonymous; each step rolls up
// the previous step's classes, which get fewer as it climbs. An attribute
// whose raise makes the node anonymous is not raised again (every node
// above that one is anonymous too). The node it stops at is maximal
// non-anonymous and is added to the failed set; the anonymous nodes met
// bound the optimum.
func (e *engine) climb(node []int, g *grouping) {
	m := append([]int(nil), node...)
	blocked := make([]bool, len(m))
	for {
		q := -1
		var cost float64
		for i, l := range m {
			if blocked[i] || l+1 >= e.attrs[i].height {
				continue
			}
			if d := e.attrs[i].loss[l+1] - e.attrs[i].loss[l]; q < 0 || d < cost {
				q, cost = i, d
			}
		}
		if q < 0 {
			break
		}
		s := append([]int(nil), m...)
		s[q]++
		anonymous := e.knownAnonymous(s)
		var sg *grouping
		switch {
		case anonymous:
		case e.bound(s) || dominated(s, e.failed):
			// Not anonymous, known without grouping: climb on and roll
			// up later from the last grouping, which is below.
			m = s
			continue
		default:
			var v verdict
			v, sg = e.check(s, g)
			anonymous = v.anonymous
		}
		if anonymous {
			blocked[q] = true
			c := candidate{loss: e.lossOf(s), height: height(s), node: s}
			if e.best == nil || queue(nil).Less2(c, *e.best) {
				e.best = &c
			}
			continue
		}
		m, g = s, sg
	}
	// Keep the failed set an antichain.
	kept := e.failed[:0]
	for _, f := range e.failed {
		if !below(f, m) {
			kept = append(kept, f)
		}
	}
	e.failed = append(kept, m)
}

func height(node []int) int {
	h := 0
	for _, l := range node {
		h += l
	}
	return h
}

// dominated reports whether node lies at or below one of the nodes in
// failed, so that it is not anonymous either.
func dominated(node []int, failed [][]int) bool {
	for _, f := range failed {
		if below(node, f) {
			return true
		}
	}
	return false
}

// latticeSize is the number of transformations.
func (e *engine) latticeSize() float64 {
	s := 1.0
	for _, a := range e.attrs {
		s *= float64(a.height)
	}
	return s
}

// apply generalises the table under node and removes the outliers.
func (e *engine) apply(t *Table, node []int) *Result {
	b := e.base
	ng := b.items()
	keys := e.keys[:ng]
	clear(keys)
	radix := uint64(1)
	cls := e.cls[:ng]
	for q, l := range node {
		a := &e.attrs[q]
		s := uint64(a.size[l])
		if radix > math.MaxUint64/s/2 {
			k := e.ht.dedupe(keys, cls)
			for i := range keys {
				keys[i] = uint64(cls[i])
			}
			radix = uint64(k)
		}
		radix *= s
		g, bv := a.gen[l], e.baseVals[q]
		for i := range keys {
			keys[i] = keys[i]*s + uint64(g[bv[i]])
		}
	}
	nc := e.ht.dedupe(keys, cls)
	count := make([]int, nc)
	dist := make([]int, nc)
	for i := 0; i < ng; i++ {
		count[cls[i]] += int(b.count[i])
	}
	if e.sens != nil {
		// Base groups differ in tuple or sensitive value, so distinct
		// (class, sensitive) pairs are counted once each.
		for i := range keys {
			keys[i] = uint64(cls[i])*uint64(e.nsens) + uint64(e.sens[i])
		}
		pair := e.cls[ng : 2*ng]
		np := e.ht2.dedupe(keys, pair)
		first := make([]bool, np)
		for i := 0; i < ng; i++ {
			if !first[pair[i]] {
				first[pair[i]] = true
				dist[cls[i]]++
			}
		}
	}
	res := &Result{Loss: e.lossOf(node), NodesChecked: e.checked, LatticeSize: e.latticeSize()}
	for q, l := range node {
		res.Transformation = append(res.Transformation, Level{Column: e.attrs[q].name, Level: l})
	}
	keep := make([]bool, nc)
	for c := 0; c < nc; c++ {
		keep[c] = count[c] >= e.cfg.K && (e.sens == nil || dist[c] >= e.cfg.L)
		if !keep[c] {
			res.Suppressed += count[c]
			continue
		}
		res.Classes++
		if res.K == 0 || count[c] < res.K {
			res.K = count[c]
		}
		if e.sens != nil && (res.L == 0 || dist[c] < res.L) {
			res.L = dist[c]
		}
	}
	res.in = t
	res.kept = make([]int32, 0, e.rows-res.Suppressed)
	for r := 0; r < e.rows; r++ {
		if keep[cls[e.rowGroup[r]]] {
			res.kept = append(res.kept, int32(r))
		}
	}
	res.rowGroup, res.baseVals = e.rowGroup, e.baseVals
	for q, l := range node {
		a := &e.attrs[q]
		lab := make([]string, len(a.gen[l]))
		for v, id := range a.gen[l] {
			lab[v] = a.labels[l][id]
		}
		res.qcols = append(res.qcols, a.col)
		res.qlabels = append(res.qlabels, lab)
	}
	return res
}
