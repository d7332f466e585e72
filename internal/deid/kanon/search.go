package kanon

import (
	"container/heap"
	"math"
)

// candidate is a transformation waiting in the search's queue.
type candidate struct {
	loss   float64
	height int
	node   []int
}

type queue []candidate

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].loss != q[j].loss {
		return q[i].loss < q[j].loss
	}
	if q[i].height != q[j].height {
		return q[i].height < q[j].height
	}
	for k := range q[i].node {
		if q[i].node[k] != q[j].node[k] {
			return q[i].node[k] < q[j].node[k]
		}
	}
	return false
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(candidate)) }
func (q *queue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// search returns the anonymous transformation of least loss. It visits the
// lattice best first from the bottom: since the loss never decreases from
// a node to its successors, nodes leave the queue in order of loss, and the
// first anonymous one is a global optimum (ties go to the lower, then the
// lexicographically smaller node).
func (e *engine) search() ([]int, error) {
	nq := len(e.attrs)
	stride := make([]uint64, nq)
	size := uint64(1)
	for q := nq - 1; q >= 0; q-- {
		stride[q] = size
		size *= uint64(e.attrs[q].height)
	}
	index := func(node []int) uint64 {
		var x uint64
		for q, l := range node {
			x += uint64(l) * stride[q]
		}
		return x
	}
	seen := map[uint64]struct{}{}
	bottom := make([]int, nq)
	pq := queue{{loss: e.lossOf(bottom), node: bottom}}
	seen[0] = struct{}{}
	var failed [][]int // checked, not anonymous
	for pq.Len() > 0 {
		c := heap.Pop(&pq).(candidate)
		if !e.bound(c.node) && !dominated(c.node, failed) && !e.pairBoundFails(c.node) && !e.unionFails(c.node) {
			v, _ := e.check(c.node)
			if v.anonymous {
				return c.node, nil
			}
			// Climb to a maximal non-anonymous node above it: everything
			// below that is settled in one go.
			if e.climbing {
				failed = append(failed, e.climb(c.node, failed))
			} else {
				failed = append(failed, c.node)
			}
		}
		for q := range c.node {
			if c.node[q]+1 >= e.attrs[q].height {
				continue
			}
			s := append([]int(nil), c.node...)
			s[q]++
			x := index(s)
			if _, ok := seen[x]; ok {
				continue
			}
			seen[x] = struct{}{}
			heap.Push(&pq, candidate{loss: e.lossOf(s), height: c.height + 1, node: s})
		}
	}
	return nil, ErrNoSolution
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
	ng := len(b.rep)
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
	if b.sens != nil {
		// Base groups differ in tuple or sensitive value, so distinct
		// (class, sensitive) pairs are counted once each.
		for i := range keys {
			keys[i] = uint64(cls[i])*uint64(e.nsens) + uint64(b.sens[i])
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
		keep[c] = count[c] >= e.cfg.K && (b.sens == nil || dist[c] >= e.cfg.L)
		if !keep[c] {
			res.Suppressed += count[c]
			continue
		}
		res.Classes++
		if res.K == 0 || count[c] < res.K {
			res.K = count[c]
		}
		if b.sens != nil && (res.L == 0 || dist[c] < res.L) {
			res.L = dist[c]
		}
	}
	ncol := len(t.Columns)
	kept := e.rows - res.Suppressed
	cells := make([]string, kept*ncol)
	out := &Table{Columns: append([]string(nil), t.Columns...), Rows: make([][]string, 0, kept)}
	for r, row := range t.Rows {
		g := e.rowGroup[r]
		if !keep[cls[g]] {
			continue
		}
		o := cells[:ncol:ncol]
		cells = cells[ncol:]
		copy(o, row)
		for q, l := range node {
			a := &e.attrs[q]
			o[a.col] = a.labels[l][a.gen[l][e.baseVals[q][g]]]
		}
		out.Rows = append(out.Rows, o)
	}
	res.Output = out
	return res
}

// climb returns a maximal non-anonymous node at or above node, which must
// be non-anonymous: it raises one attribute at a time as far as it can stay
// non-anonymous, by binary search over the levels.
func (e *engine) climb(node []int, failed [][]int) []int {
	m := append([]int(nil), node...)
	probe := make([]int, len(m))
	nonAnon := func() bool {
		if e.bound(probe) || dominated(probe, failed) {
			return true
		}
		v, _ := e.check(probe)
		return !v.anonymous
	}
	for q := range m {
		lo, hi := m[q], e.attrs[q].height-1 // lo is non-anonymous
		for lo < hi {
			mid := (lo + hi + 1) / 2
			copy(probe, m)
			probe[q] = mid
			if nonAnon() {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		m[q] = lo
	}
	return m
}
