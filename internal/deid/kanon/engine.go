package kanon

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// ErrNoSolution is returned when no transformation, not even the top of
// the lattice, meets the criteria within the suppression limit.
var ErrNoSolution = errors.New("no transformation is anonymous within the suppression limit")

// CellError is bad input in one cell of the table: Row counts data rows
// from 1 (the header is not a row). It is an ErrInvalid; its message never
// contains the cell's value.
type CellError struct {
	Column string
	Row    int
	Reason string
}

func (e *CellError) Error() string {
	return fmt.Sprintf("column %q, row %d: %s", e.Column, e.Row, e.Reason)
}

// Is makes a CellError an ErrInvalid.
func (e *CellError) Is(target error) bool { return target == ErrInvalid }

// attr is one quasi-identifier, encoded.
type attr struct {
	name   string
	col    int
	height int
	// gen[l][v] is the dense id at level l of the level-0 id v; ids at each
	// level number only the values present in the input.
	gen [][]int32
	// labels[l][id] is the printed value of id at level l.
	labels [][]string
	// size[l] is the number of distinct ids at level l.
	size []int
	// freq[v] is the number of rows with level-0 id v.
	freq []int32
	// loss[l] is this attribute's share of the loss at level l.
	loss []float64
	// alone[l] is the number of rows whose level-l value occurs in fewer
	// than K rows (or, with l-diversity, fewer than L distinct sensitive
	// values): they are outliers under every transformation with this
	// attribute at level l.
	alone []int
}

// engine holds the encoded table and the scratch space of the search.
type engine struct {
	cfg   Config
	rows  int
	limit int // rows that may be suppressed
	attrs []attr

	// The base grouping: distinct level-0 quasi-identifier tuples (with the
	// sensitive value, when l-diversity is asked for).
	base     *grouping
	baseVals [][]int32 // baseVals[q][g]: level-0 id of attribute q in base group g
	rowGroup []int32   // rowGroup[r]: base group of row r
	nsens    int

	ht     table // scratch hash table
	ht2    table
	keys   []uint64
	cls    []int32 // class of each item of the grouping being built
	ccount []int32 // rows per class
	cdist  []int32 // distinct sensitive values per class
	keys2  []uint64
	delta  [][]uint64 // scratch: key change per level-0 value, per attribute
	// sens[g] is the sensitive id of base group g; nil without a
	// sensitive column.
	sens []int32

	cache      []*grouping // recently checked groupings, for roll-up
	pairs      []*pairBound
	pairsBuilt int
	dense      []int32 // scratch: direct-addressed cell ids
	bounded    int     // nodes settled by a bound
	fromItems  int
	strides    []uint64 // class key strides, nil if they would overflow
	free       []*grouping
	changed    []int
	passed     [][]int    // minimal nodes known to be anonymous
	failed     [][]int    // maximal nodes known not to be anonymous
	best       *candidate // least anonymous node met so far
	checked    int
}

// grouping is the rows of the table grouped under one transformation:
// items are the classes (with a sensitive column: the distinct pairs of
// class and sensitive value), each with a representative base group, from
// which its values at node's levels (and its sensitive value) are read.
type grouping struct {
	node  []int
	rep   []int32 // a base group of item i
	count []int32 // rows in the item
	// key[i] is the class key of item i (with fixed strides only).
	key []uint64
}

func (g *grouping) items() int { return len(g.count) }

func newEngine(t *Table, cfg Config) (*engine, error) {
	if t == nil || len(t.Columns) == 0 {
		return nil, invalidf("the table has no columns")
	}
	if cfg.K < 1 {
		return nil, invalidf("k must be at least 1")
	}
	if math.IsNaN(cfg.SuppressionLimit) || cfg.SuppressionLimit < 0 || cfg.SuppressionLimit >= 1 {
		return nil, invalidf("the suppression limit must be a fraction in [0, 1)")
	}
	if len(cfg.QuasiIdentifiers) == 0 {
		return nil, invalidf("name at least one quasi-identifier")
	}
	col := make(map[string]int, len(t.Columns))
	for i, c := range t.Columns {
		if _, dup := col[c]; dup {
			return nil, invalidf("column %q appears twice in the header", c)
		}
		col[c] = i
	}
	role := make(map[string]string, len(t.Columns))
	name := func(c, r string) (int, error) {
		i, ok := col[c]
		if !ok {
			return 0, invalidf("%s column %q is not in the table", r, c)
		}
		if prev, dup := role[c]; dup {
			return 0, invalidf("column %q is named twice (%s and %s)", c, prev, r)
		}
		role[c] = r
		return i, nil
	}
	e := &engine{cfg: cfg, rows: len(t.Rows)}
	for _, qi := range cfg.QuasiIdentifiers {
		i, err := name(qi.Column, "quasi-identifier")
		if err != nil {
			return nil, err
		}
		if err := qi.Hierarchy.Validate(); err != nil {
			return nil, fmt.Errorf("hierarchy of %q: %w", qi.Column, err)
		}
		e.attrs = append(e.attrs, attr{name: qi.Column, col: i, height: qi.Hierarchy.Height()})
	}
	for _, c := range cfg.Insensitive {
		if _, err := name(c, "insensitive"); err != nil {
			return nil, err
		}
	}
	sensCol := -1
	if cfg.Sensitive != "" {
		i, err := name(cfg.Sensitive, "sensitive")
		if err != nil {
			return nil, err
		}
		if cfg.L < 1 {
			return nil, invalidf("l must be at least 1")
		}
		sensCol = i
	} else if cfg.L > 1 {
		return nil, invalidf("l-diversity needs a sensitive column")
	}
	for _, c := range t.Columns {
		if _, ok := role[c]; !ok {
			return nil, invalidf("column %q is neither a quasi-identifier, insensitive nor sensitive: name its role (it could identify a person)", c)
		}
	}
	for r, row := range t.Rows {
		if len(row) != len(t.Columns) {
			return nil, &CellError{Column: "", Row: r + 1, Reason: fmt.Sprintf("%d cells, the header has %d", len(row), len(t.Columns))}
		}
	}
	e.limit = int(math.Floor(cfg.SuppressionLimit * float64(e.rows)))

	// Encode each quasi-identifier: level-0 ids in order of first
	// appearance, then the ids of each coarser level.
	n := e.rows
	cols := make([]int, len(e.attrs), len(e.attrs)+1)
	for q := range e.attrs {
		cols[q] = e.attrs[q].col
	}
	if sensCol >= 0 {
		cols = append(cols, sensCol)
	}
	// codes[q][r]: level-0 id of row r (the sensitive column last).
	codes, allValues, allFreq := encodeColumns(t.Rows, cols)
	for q := range e.attrs {
		a := &e.attrs[q]
		h := cfg.QuasiIdentifiers[q].Hierarchy
		values, freq := allValues[q], allFreq[q]
		hrow := make(map[string]int32, len(h.Levels))
		for i, lv := range h.Levels {
			hrow[lv[0]] = int32(i)
		}
		rowsOf := make([]int32, len(values)) // level-0 id → hierarchy row
		for v, s := range values {
			hr, ok := hrow[s]
			if !ok {
				for r, row := range t.Rows {
					if row[a.col] == s {
						return nil, &CellError{Column: a.name, Row: r + 1, Reason: "value not in the quasi-identifier's hierarchy"}
					}
				}
			}
			rowsOf[v] = hr
		}
		a.freq = freq
		a.gen = make([][]int32, a.height)
		a.labels = make([][]string, a.height)
		a.size = make([]int, a.height)
		a.loss = make([]float64, a.height)
		for l := 0; l < a.height; l++ {
			lid := make(map[string]int32)
			g := make([]int32, len(rowsOf))
			var labels []string
			for v, hr := range rowsOf {
				s := h.Levels[hr][l]
				id, ok := lid[s]
				if !ok {
					id = int32(len(labels))
					lid[s] = id
					labels = append(labels, s)
				}
				g[v] = id
			}
			a.gen[l], a.labels[l], a.size[l] = g, labels, len(labels)
			total := make([]float64, len(labels))
			for v, f := range freq {
				total[g[v]] += float64(f)
			}
			var loss float64
			for v, f := range freq {
				if t := total[g[v]]; float64(f) != t {
					loss -= float64(f) * math.Log2(float64(f)/t)
				}
			}
			a.loss[l] = loss
		}
	}

	// Sensitive values, encoded.
	var sens []int32
	if sensCol >= 0 {
		sens = codes[len(e.attrs)]
		e.nsens = len(allValues[len(e.attrs)])
	}

	// Single-attribute outlier bounds, from the level-0 frequencies (and,
	// with l-diversity, the distinct (value, sensitive) pairs).
	var pairs []uint64
	if sensCol >= 0 && cfg.L > 1 {
		pairs = make([]uint64, n)
	}
	for q := range e.attrs {
		a := &e.attrs[q]
		a.alone = make([]int, a.height)
		var pairIDs []int32
		np := 0
		if pairs != nil {
			for r := 0; r < n; r++ {
				pairs[r] = uint64(codes[q][r])*uint64(e.nsens) + uint64(sens[r])
			}
			pairIDs = make([]int32, n)
			np = e.ht.dedupe(pairs, pairIDs)
		}
		for l := 0; l < a.height; l++ {
			cnt := make([]int32, a.size[l])
			for v, f := range a.freq {
				cnt[a.gen[l][v]] += f
			}
			var dist []int32
			if pairs != nil {
				dist = make([]int32, a.size[l])
				// Distinct sensitive values per level-l value: a pair
				// (level-0 value, sensitive) is counted once, and pairs
				// of two level-0 values meeting at level l may repeat a
				// sensitive value, so count distinct (level-l, sensitive).
				seen := make(map[uint64]struct{}, np)
				for r := 0; r < n; r++ {
					v := a.gen[l][codes[q][r]]
					k := uint64(v)*uint64(e.nsens) + uint64(sens[r])
					if _, ok := seen[k]; !ok {
						seen[k] = struct{}{}
						dist[v]++
					}
				}
			}
			for v, c := range cnt {
				if int(c) < cfg.K || (dist != nil && int(dist[v]) < cfg.L) {
					a.alone[l] += int(c)
				}
			}
		}
	}

	// Base grouping: distinct level-0 tuples (and sensitive values).
	e.keys = make([]uint64, n)
	e.cls = make([]int32, 2*n)
	e.rowGroup = make([]int32, n)
	radix := uint64(1)
	for r := range e.keys {
		e.keys[r] = 0
	}
	compress := func(m int) {
		k := e.ht.dedupe(e.keys[:m], e.cls[:m])
		for i := 0; i < m; i++ {
			e.keys[i] = uint64(e.cls[i])
		}
		radix = uint64(k)
	}
	mul := func(size int) {
		if hi, _ := bits.Mul64(radix, uint64(size)); hi != 0 || radix*uint64(size) > 1<<62 {
			compress(n)
		}
		radix *= uint64(size)
	}
	for q := range e.attrs {
		s := e.attrs[q].size[0]
		mul(s)
		c := codes[q]
		for r := 0; r < n; r++ {
			e.keys[r] = e.keys[r]*uint64(s) + uint64(c[r])
		}
	}
	if sensCol >= 0 {
		mul(e.nsens)
		for r := 0; r < n; r++ {
			e.keys[r] = e.keys[r]*uint64(e.nsens) + uint64(sens[r])
		}
	}
	ng := e.ht.dedupe(e.keys[:n], e.rowGroup)
	nq := len(e.attrs)
	b := &grouping{node: make([]int, nq), rep: make([]int32, ng), count: make([]int32, ng)}
	for g := range b.rep {
		b.rep[g] = int32(g)
	}
	if sensCol >= 0 {
		e.sens = make([]int32, ng)
	}
	e.baseVals = make([][]int32, len(e.attrs))
	for q := range e.baseVals {
		e.baseVals[q] = make([]int32, ng)
	}
	for r := 0; r < n; r++ {
		g := e.rowGroup[r]
		if b.count[g] == 0 {
			for q := range e.attrs {
				e.baseVals[q][g] = codes[q][r]
			}
			if e.sens != nil {
				e.sens[g] = sens[r]
			}
		}
		b.count[g]++
	}
	e.base = b

	// Fixed strides for class keys when the level-0 domains multiply to
	// less than 2^62.
	e.strides = make([]uint64, nq)
	prod := uint64(1)
	for q := nq - 1; q >= 0; q-- {
		e.strides[q] = prod
		hi, lo := bits.Mul64(prod, uint64(e.attrs[q].size[0]))
		if hi != 0 || lo > 1<<62 {
			e.strides = nil
			break
		}
		prod = lo
	}
	e.delta = make([][]uint64, nq)
	for q := range e.delta {
		e.delta[q] = make([]uint64, e.attrs[q].size[0])
	}
	if e.strides != nil {
		b.key = make([]uint64, ng)
		for g := range b.key {
			for q := 0; q < nq; q++ {
				b.key[g] += uint64(e.baseVals[q][g]) * e.strides[q]
			}
		}
	}
	e.newPairs()
	return e, nil
}

// lossOf is the loss of a transformation.
func (e *engine) lossOf(node []int) float64 {
	var s float64
	for q, l := range node {
		s += e.attrs[q].loss[l]
	}
	return s
}

// bound reports whether the single-attribute bound already proves node
// non-anonymous.
func (e *engine) bound(node []int) bool {
	for q, l := range node {
		if e.attrs[q].alone[l] > e.limit {
			return true
		}
	}
	return false
}

// verdict is the outcome of grouping a transformation.
type verdict struct {
	anonymous bool
	outliers  int
	k, l      int // smallest class size and diversity among retained rows
	classes   int // retained classes
}

// check groups the table under node, rolling up the items of from (the
// grouping of a node below it) or else of the cached grouping below it
// with the fewest items, and decides whether node is anonymous. The
// grouping of a non-anonymous node is cached for later roll-ups; an
// anonymous node's is dropped (nil), as nothing above it is ever checked.
func (e *engine) check(node []int, from *grouping) (verdict, *grouping) {
	e.checked++
	if from == nil {
		from = e.base
		for _, g := range e.cache {
			if below(g.node, node) && g.items() < from.items() {
				from = g
			}
		}
	}
	m := from.items()
	e.fromItems += m
	keys := e.keys[:m]
	cls := e.cls[:m]
	if st := e.strides; st != nil {
		// Only the attributes whose level changed move the key: by
		// delta[v] for an item whose level-0 value is v.
		copy(keys, from.key)
		for q, l := range node {
			lf := from.node[q]
			if l == lf {
				continue
			}
			a := &e.attrs[q]
			d, gl, gf, sq := e.delta[q], a.gen[l], a.gen[lf], st[q]
			for v := range d {
				d[v] = uint64(gl[v]-gf[v]) * sq
			}
			bv := e.baseVals[q]
			for i, r := range from.rep {
				keys[i] += d[bv[r]]
			}
		}
	} else {
		// Mixed radix over the sizes at node's levels, compressed to
		// dense ids whenever the radix would overflow.
		clear(keys)
		radix := uint64(1)
		for q, l := range node {
			s := uint64(e.attrs[q].size[l])
			if hi, lo := bits.Mul64(radix, s); hi != 0 || lo > 1<<62 {
				radix = uint64(e.ht.dedupe(keys, cls))
				for i := range keys {
					keys[i] = uint64(cls[i])
				}
			}
			radix *= s
			g, bv := e.attrs[q].gen[l], e.baseVals[q]
			for i, r := range from.rep {
				keys[i] = keys[i]*s + uint64(g[bv[r]])
			}
		}
	}
	var out *grouping
	var ccount []int32
	nc := 0
	if e.sens == nil {
		// Items are classes: roll up in one pass.
		out = e.newGrouping(node, m)
		nc = e.ht.rollup(keys, from.count, from.rep, out.key, out.count, out.rep)
		out.trim(nc)
		ccount = out.count
	} else {
		// Items are (class, sensitive value) pairs; count distinct pairs.
		nc = e.ht.dedupe(keys, cls)
		e.ccount = grow(e.ccount, nc)
		for i, c := range cls {
			e.ccount[c] += from.count[i]
		}
		ccount = e.ccount
		e.keys2 = growKeys(e.keys2, m)
		pk := e.keys2
		for i, r := range from.rep {
			pk[i] = uint64(cls[i])*uint64(e.nsens) + uint64(e.sens[r])
		}
		item := e.cls[m : 2*m]
		ni := e.ht2.dedupe(pk, item)
		e.cdist = grow(e.cdist, nc)
		out = e.newGrouping(node, ni)
		out.trim(ni)
		clear(out.count)
		for i, p := range item {
			if out.count[p] == 0 {
				out.rep[p] = from.rep[i]
				if out.key != nil {
					out.key[p] = keys[i]
				}
				e.cdist[cls[i]]++
			}
			out.count[p] += from.count[i]
		}
	}
	v := verdict{}
	for c := 0; c < nc; c++ {
		cnt := int(ccount[c])
		ok := cnt >= e.cfg.K
		d := 0
		if e.sens != nil {
			d = int(e.cdist[c])
			ok = ok && d >= e.cfg.L
		}
		if !ok {
			v.outliers += cnt
			continue
		}
		v.classes++
		if v.k == 0 || cnt < v.k {
			v.k = cnt
		}
		if e.sens != nil && (v.l == 0 || d < v.l) {
			v.l = d
		}
	}
	v.anonymous = v.outliers <= e.limit
	if v.anonymous {
		e.free = append(e.free, out)
		e.markPassed(node)
		return v, nil
	}
	e.remember(out)
	return v, out
}

// newGrouping returns a grouping with room for n items, reusing a freed
// one; trim sets its length.
func (e *engine) newGrouping(node []int, n int) *grouping {
	var g *grouping
	if k := len(e.free); k > 0 {
		g, e.free = e.free[k-1], e.free[:k-1]
	} else {
		g = &grouping{}
	}
	g.node = append(g.node[:0], node...)
	if cap(g.rep) < n {
		g.rep = make([]int32, n)
		g.count = make([]int32, n)
		if e.strides != nil {
			g.key = make([]uint64, n)
		}
	}
	g.rep, g.count = g.rep[:n], g.count[:n]
	if e.strides != nil {
		g.key = g.key[:n]
	} else {
		g.key = nil
	}
	return g
}

// trim sets the number of items.
func (g *grouping) trim(n int) {
	g.rep, g.count = g.rep[:n], g.count[:n]
	if g.key != nil {
		g.key = g.key[:n]
	}
}

// growKeys returns s with length n (not zeroed).
func growKeys(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	return s[:n]
}

// remember caches a grouping for roll-up, keeping the few most recent;
// the one it drops is reused.
func (e *engine) remember(g *grouping) {
	const keep = 8
	if len(e.cache) == keep {
		e.free = append(e.free, e.cache[0])
		copy(e.cache, e.cache[1:])
		e.cache = e.cache[:keep-1]
	}
	e.cache = append(e.cache, g)
}

// markPassed records an anonymous node, keeping the set an antichain of
// minimal nodes.
func (e *engine) markPassed(node []int) {
	if e.knownAnonymous(node) {
		return
	}
	kept := e.passed[:0]
	for _, p := range e.passed {
		if !below(node, p) {
			kept = append(kept, p)
		}
	}
	e.passed = append(kept, append([]int(nil), node...))
}

// knownAnonymous reports whether node lies at or above a node known to be
// anonymous.
func (e *engine) knownAnonymous(node []int) bool {
	for _, p := range e.passed {
		if below(p, node) {
			return true
		}
	}
	return false
}

// below reports whether a ≤ b componentwise.
func below(a, b []int) bool {
	for i := range a {
		if a[i] > b[i] {
			return false
		}
	}
	return true
}

// grow returns s with length n, zeroed.
func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// encodeColumns gives each distinct value of each column in cols an id in
// order of first appearance and returns, per column, the id of every row,
// the values and their frequencies. It reads the table row by row, once.
func encodeColumns(rows [][]string, cols []int) (codes [][]int32, values [][]string, freq [][]int32) {
	nc := len(cols)
	codes = make([][]int32, nc)
	values = make([][]string, nc)
	freq = make([][]int32, nc)
	ids := make([]map[string]int32, nc)
	for j := range cols {
		codes[j] = make([]int32, len(rows))
		ids[j] = make(map[string]int32)
	}
	for r, row := range rows {
		for j, c := range cols {
			s := row[c]
			id, ok := ids[j][s]
			if !ok {
				id = int32(len(values[j]))
				ids[j][s] = id
				values[j] = append(values[j], s)
				freq[j] = append(freq[j], 0)
			}
			freq[j][id]++
			codes[j][r] = id
		}
	}
	return codes, values, freq
}
