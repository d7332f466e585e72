package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"medguard/internal/storage"
)

// TamperError names the first entry at which the log is not what its tree,
// its head or its checkpoints say: changed, removed, reordered or truncated.
type TamperError struct {
	Index  uint64
	Reason string
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("audit log does not verify: first bad index %d: %s", e.Index, e.Reason)
}

// VerifyOptions are what Verify checks the log against besides itself.
type VerifyOptions struct {
	// VerifierKey checks the signature of every checkpoint; without it,
	// checkpoints are compared by size and root only. After a rotation of
	// the log's key it may be any key of the chain (an auditor's original
	// key, or the installed one): the transition checkpoints are followed
	// (FollowKeys), and each checkpoint must be signed by a key of the chain
	// that may sign its size.
	VerifierKey string
	// Checkpoints from outside the database: DATA/checkpoints.log, or one an
	// auditor kept. Each must verify with VerifierKey.
	Checkpoints []Checkpoint
	// Archived, if set, supplies the leaves archived out of the database
	// (OpenArchive); Verify needs it once anything was archived.
	Archived *ArchiveSet
	// Progress, if set, is told how many entries are verified so far.
	Progress func(done uint64)
}

// VerifyReport says what was verified.
type VerifyReport struct {
	Size        uint64        // entries verified
	Root        []byte        // the root recomputed over them
	Checkpoints int           // checkpoints matched (stored and external)
	External    int           // of which from outside the database
	Archived    uint64        // entries verified from archive files
	Took        time.Duration // how long it took
	// Keys is the chain of signing keys followed from VerifierKey (one key
	// if the log's key never rotated; none without VerifierKey).
	Keys KeyChain
}

// Rate is how many entries a second were verified.
func (r *VerifyReport) Rate() float64 {
	if r.Took <= 0 {
		return 0
	}
	return float64(r.Size) / r.Took.Seconds()
}

// checkpointAt is a checkpoint's claim: the root at a size, and where the
// claim came from.
type checkpointAt struct {
	size     uint64
	root     []byte
	source   string
	signedAt time.Time
}

// Verify recomputes the whole tree from the stored leaves (and archived
// ones), reading them in chunks of verifySpan entries — a few chunks per
// CPU in memory at once, whatever the size of the log — and checks it against the stored tree nodes, the tree head, every
// checkpoint in the database and every checkpoint given from outside; and it
// checks the search index against the leaves (see indexcheck.go). It returns
// a *TamperError naming the first bad index on any change, removal,
// reordering or truncation of the log, or any row of the search index or
// block of its time map that does not match it.
func Verify(ctx context.Context, db *storage.DB, opts VerifyOptions) (*VerifyReport, error) {
	start := time.Now()
	headSize, headRoot, err := readHead(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("audit: read the tree head: %w", err)
	}
	if err := checkArchives(ctx, db, opts.Archived); err != nil {
		return nil, err
	}
	if opts.Archived != nil {
		// Each archive part's signed checkpoint is a claim like any other.
		opts.Checkpoints = append(slices.Clip(opts.Checkpoints), opts.Archived.checkpoints()...)
	}
	claims, external, chain, err := collectCheckpoints(ctx, db, opts)
	if err != nil {
		return nil, err
	}
	watermark, err := indexWatermarkBelow(ctx, db, headSize)
	if err != nil {
		return nil, fmt.Errorf("audit: read the search index: %w", err)
	}
	archivedTo, err := archivedEnd(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("audit: read archive records: %w", err)
	}
	// The search index is checked alongside the leaves; a fault found in it
	// waits until every leaf before it has verified, so that the first bad
	// index is named whichever of the two it is in.
	var indexFault *TamperError
	noteIndex := func(f *TamperError) {
		if f != nil && (indexFault == nil || f.Index < indexFault.Index) {
			indexFault = f
		}
	}
	indexDue := func(end uint64) error {
		if indexFault != nil && indexFault.Index < end {
			return indexFault
		}
		return nil
	}
	rep := &VerifyReport{External: external, Keys: chain}
	rng := rangeFactory.NewEmptyRange(0)
	next := 0 // next claim to check
	lastGood := uint64(0)
	check := func() error {
		for next < len(claims) && claims[next].size == rng.End() {
			c := claims[next]
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, c.root) {
				return &TamperError{Index: lastGood, Reason: fmt.Sprintf("entries %d to %d do not match the checkpoint of size %d (%s, signed %s): "+
					"at least one of them was changed, removed or reordered together with its tree nodes",
					lastGood, c.size-1, c.size, c.source, c.signedAt.Format(time.RFC3339))}
			}
			rep.Checkpoints++
			lastGood = c.size
			next++
		}
		return nil
	}
	add := func(index uint64, leaf, hash []byte) error {
		if err := indexDue(index); err != nil {
			return err
		}
		if hash == nil {
			hash = LeafHash(leaf)
		}
		if err := rng.Append(hash, nil); err != nil {
			return err
		}
		if opts.Progress != nil && index%100000 == 0 {
			opts.Progress(index)
		}
		if err := check(); err != nil {
			return err
		}
		return indexDue(index + 1)
	}

	var first uint64
	if opts.Archived.Size() > 0 {
		first = opts.Archived.Size()
		// Archived entries left the index with their leaves. Those the
		// files hold beyond the database's record of archive runs (a run
		// that failed after writing them) are still in the database, and
		// indexed: their rows are checked against the archived leaves.
		scan := newIndexScan(ctx, db.Bulk(), archivedTo, first, watermark)
		err := opts.Archived.Leaves(ctx, func(index uint64, leaf []byte) error {
			if index != rng.End() {
				return &TamperError{Index: rng.End(), Reason: "missing from the archive"}
			}
			scan.leaf(index, leaf)
			return add(index, leaf, nil)
		})
		fault, serr := scan.finish()
		if err != nil {
			return nil, err
		}
		if serr != nil {
			return nil, serr
		}
		noteIndex(fault)
		rep.Archived = first
	}
	if archivedTo > 0 {
		var row sql.NullInt64
		if err := db.QueryRowContext(ctx, `SELECT MIN(idx) FROM audit_index WHERE idx < $1`, int64(archivedTo)).Scan(&row); err != nil {
			return nil, fmt.Errorf("audit: read the search index: %w", err)
		}
		if row.Valid {
			noteIndex(&TamperError{Index: uint64(row.Int64), Reason: fmt.Sprintf(
				"the search index: a row names entry %d, which was archived out of the database", row.Int64)})
		}
	}
	// A clean chunk with no checkpoint inside it joins the tree whole.
	joinable := func(lo, hi uint64) bool {
		return lo == rng.End() && (next >= len(claims) || claims[next].size <= lo || claims[next].size >= hi)
	}
	join := func(r *compact.Range) error {
		if err := rng.AppendRange(r, nil); err != nil {
			return err
		}
		if opts.Progress != nil {
			opts.Progress(rng.End())
		}
		if err := check(); err != nil {
			return err
		}
		return indexDue(rng.End())
	}
	// A database not yet migrated to tile parts (see hasParts) is read as it is.
	parts, err := hasParts(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("audit: read the log: %w", err)
	}
	if err := verifyStored(ctx, db, first, headSize, watermark, parts, add, joinable, join, noteIndex); err != nil {
		return nil, err
	}
	if err := indexDue(rng.End()); err != nil {
		return nil, err
	}
	count := rng.End()
	rep.Size = count
	switch {
	case count < headSize:
		return nil, &TamperError{Index: count, Reason: fmt.Sprintf("missing: the tree head says the log has %d entries", headSize)}
	case count > headSize:
		return nil, &TamperError{Index: headSize, Reason: fmt.Sprintf("the log holds entries beyond its tree head (size %d)", headSize)}
	}
	if err := checkBeyondHead(ctx, db); err != nil {
		return nil, err
	}
	if next < len(claims) {
		// A checkpoint of a larger tree: signed by a live server after
		// this run read the head, if the head has since reached it — the
		// next run checks it; otherwise the log lost entries it had.
		now, _, err := readHead(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("audit: read the tree head: %w", err)
		}
		if c := claims[len(claims)-1]; now < c.size {
			return nil, &TamperError{Index: count, Reason: fmt.Sprintf("missing: the log ends at %d entries, but the checkpoint of size %d (%s, signed %s) "+
				"covers more: it was truncated", now, c.size, c.source, c.signedAt.Format(time.RFC3339))}
		}
	}
	if count > 0 {
		root, err := rng.GetRootHash(nil)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(root, headRoot) {
			return nil, &TamperError{Index: lastGood, Reason: "the tree head's root does not match the entries"}
		}
		rep.Root = root
		// The stored nodes that new appends build on must be right too.
		stored, err := readNodes(ctx, db, compact.RangeNodes(0, count, nil), parts)
		if err != nil {
			return nil, &TamperError{Index: lastGood, Reason: "tree nodes are missing: " + err.Error()}
		}
		for i, h := range rng.Hashes() {
			if !bytes.Equal(h, stored[i]) {
				return nil, &TamperError{Index: lastGood, Reason: "stored tree nodes do not match the entries"}
			}
		}
		// And so must the range stored with the head (the servers' next
		// batches start from it), unless the head has moved on since.
		size, hashes, err := storedRange(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("audit: read the tree head: %w", err)
		}
		if size == count && !bytes.Equal(hashes, bytes.Join(rng.Hashes(), nil)) {
			return nil, &TamperError{Index: lastGood, Reason: "the range stored with the tree head does not match the entries"}
		}
	}
	if err := checkIndexBeyond(ctx, db, count); err != nil {
		return nil, err
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// verifySpan is how many indexes one read covers: bundles starting in
// [base + k·span, base + (k+1)·span).
const verifySpan = 16384

// checkBeyondHead finds entries beyond the tree head as it is now: each
// commit moves the head in the transaction that writes its entries, so an
// entry past the head read in the same statement was never appended. (A
// live server's appends after the head this run verified are not past it.)
func checkBeyondHead(ctx context.Context, db *storage.DB) error {
	var size int64
	var first sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT h.size, (SELECT MIN(b.first_idx) FROM audit_bundles b
		WHERE b.first_idx >= h.size - $1 AND b.first_idx + b.count > h.size) FROM audit_head h WHERE h.id = 1`,
		maxBundle).Scan(&size, &first); err != nil {
		return fmt.Errorf("audit: read the log: %w", err)
	}
	if first.Valid {
		return &TamperError{Index: uint64(max(first.Int64, size)), Reason: fmt.Sprintf("the log holds entries beyond its tree head (size %d)", size)}
	}
	return nil
}

// checkIndexBeyond finds rows of the search index, and blocks of its time
// map, for entries beyond a tree of size count and beyond the tree head as
// it is when each is read (a live server indexes what it appends after
// count; never what is past its head).
func checkIndexBeyond(ctx context.Context, db *storage.DB, count uint64) error {
	var row, block sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MIN(idx) FROM audit_index WHERE idx >= $1
		AND idx >= (SELECT size FROM audit_head WHERE id = 1)`, int64(count)).Scan(&row); err != nil {
		return fmt.Errorf("audit: read the search index: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT MIN(block) FROM audit_time_blocks WHERE block >= $1
		AND block >= ((SELECT size FROM audit_head WHERE id = 1) + $2 - 1) / $2`,
		int64((count+timeBlock-1)/timeBlock), timeBlock).Scan(&block); err != nil {
		return fmt.Errorf("audit: read the search index: %w", err)
	}
	switch {
	case row.Valid && (!block.Valid || row.Int64 < block.Int64*timeBlock):
		return &TamperError{Index: uint64(row.Int64), Reason: fmt.Sprintf(
			"the search index: a row names entry %d, beyond the tree (size %d)", row.Int64, count)}
	case block.Valid:
		return &TamperError{Index: uint64(block.Int64) * timeBlock, Reason: fmt.Sprintf(
			"the search index: the time map has block %d, of entries beyond the tree (size %d)", block.Int64, count)}
	}
	return nil
}

// verifyStored reads the stored bundles from index first on, in order, with
// the stored leaf hashes (the level-0 tiles), checks each leaf against its
// hash, and passes it on; and checks the search index's rows and time map
// for those entries (entries below watermark must be indexed), telling
// noteIndex of each chunk's first fault. Reading, hashing and checking the
// index run on one worker per CPU, chunk by chunk; the checks and the tree
// take the chunks in order.
func verifyStored(ctx context.Context, db *storage.DB, first, headSize, watermark uint64, parts bool, add func(uint64, []byte, []byte) error,
	joinable func(lo, hi uint64) bool, join func(*compact.Range) error, noteIndex func(*TamperError)) error {
	type chunk struct {
		bundles []bundle
		tiles   map[tileKey][]byte
		hashes  [][][]byte // per bundle, per leaf
		err     error
		// fault is the first fault of the search index for these entries.
		fault *TamperError
		// clean chunks: their leaves [lo, hi) are contiguous, undamaged and
		// match the tiles, and rng is their compact range.
		clean  bool
		lo, hi uint64
		rng    *compact.Range
	}
	type job struct {
		k   uint64
		out chan *chunk
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := first
	if b, err := bundleAt(ctx, db, first); err != nil {
		return fmt.Errorf("audit: read the log: %w", err)
	} else if b != nil {
		base = b.first
	}
	// The last chunk is open-ended, to find entries beyond the head.
	last := uint64(0)
	if headSize > base {
		last = (headSize - base) / verifySpan
	}
	noCopy := db.Dialect == storage.SQLite
	bulk := db.Bulk()
	read := func(k uint64) *chunk {
		c := &chunk{}
		lo := int64(base + k*verifySpan)
		if k == last {
			// Up to the head read at the start: entries a live server
			// appends meanwhile are not this run's (checkBeyondHead
			// looks past the head).
			c.bundles, c.err = scanBundlesCopy(ctx, bulk, !noCopy, `SELECT first_idx, count, leaves FROM audit_bundles
				WHERE first_idx >= $1 AND first_idx < $2 ORDER BY first_idx`, lo, int64(headSize))
		} else {
			c.bundles, c.err = scanBundlesCopy(ctx, bulk, !noCopy, `SELECT first_idx, count, leaves FROM audit_bundles
				WHERE first_idx >= $1 AND first_idx < $2 ORDER BY first_idx`, lo, lo+verifySpan)
		}
		if c.err != nil || len(c.bundles) == 0 {
			return c
		}
		lastB := c.bundles[len(c.bundles)-1]
		hi := lastB.first + uint64(len(lastB.leaves))
		var keys []tileKey
		for t := c.bundles[0].first / tileWidth; t*tileWidth < hi; t++ {
			keys = append(keys, tileKey{level: 0, index: t})
		}
		if c.tiles, c.err = readTiles(ctx, bulk, keys, parts); c.err != nil {
			return c
		}
		h := sha256.New()
		c.hashes = make([][][]byte, len(c.bundles))
		for bi, b := range c.bundles {
			hs := make([][]byte, len(b.leaves))
			for k, leaf := range b.leaves {
				h.Reset()
				h.Write([]byte{0}) // RFC 6962 leaf prefix
				h.Write(leaf)
				hs[k] = h.Sum(nil)
			}
			c.hashes[bi] = hs
		}
		// The search index of these entries (those from first on: the
		// archive's are checked with its leaves).
		leaves := func(yield func(uint64, []byte) bool) {
			fed := uint64(0)
			for _, b := range c.bundles {
				for k, leaf := range b.leaves {
					if i := b.first + uint64(k); i >= first && i >= fed {
						if !yield(i, leaf) {
							return
						}
						fed = i + 1
					}
				}
			}
		}
		if c.fault, c.err = checkIndex(ctx, bulk, max(c.bundles[0].first, first), hi, watermark, leaves); c.err != nil {
			return c
		}
		// Check the chunk and build its part of the tree here, in parallel;
		// the consumer redoes it leaf by leaf only if something is off.
		c.lo, c.hi = c.bundles[0].first, hi
		r := rangeFactory.NewEmptyRange(c.lo)
		next := c.lo
		for bi, b := range c.bundles {
			if b.first != next || b.err != nil {
				return c
			}
			for k := range b.leaves {
				i := b.first + uint64(k)
				t := c.tiles[tileKey{level: 0, index: i / tileWidth}]
				pos := int(i%tileWidth) * hashSize
				if len(t) < pos+hashSize || !bytes.Equal(c.hashes[bi][k], t[pos:pos+hashSize]) {
					return c
				}
				if r.Append(c.hashes[bi][k], nil) != nil {
					return c
				}
			}
			next += uint64(len(b.leaves))
		}
		c.clean, c.rng = true, r
		return c
	}
	jobs := make(chan job)
	order := make(chan chan *chunk, 2*runtime.GOMAXPROCS(0))
	go func() {
		defer close(jobs)
		defer close(order)
		for k := uint64(0); k <= last; k++ {
			j := job{k: k, out: make(chan *chunk, 1)}
			select {
			case order <- j.out:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < max(1, runtime.GOMAXPROCS(0)); w++ {
		go func() {
			for j := range jobs {
				j.out <- read(j.k)
			}
		}()
	}
	expect := first
	for out := range order {
		var c *chunk
		select {
		case c = <-out:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.err != nil {
			return fmt.Errorf("audit: read the log: %w", c.err)
		}
		noteIndex(c.fault)
		if c.clean && c.lo == expect && joinable(c.lo, c.hi) {
			if err := join(c.rng); err != nil {
				return err
			}
			expect = c.hi
			continue
		}
		for bi, b := range c.bundles {
			if b.first > expect {
				return &TamperError{Index: expect, Reason: fmt.Sprintf("missing (the next stored entry is %d)", b.first)}
			}
			for k, leaf := range b.leaves {
				i := b.first + uint64(k)
				if i < expect {
					if i >= first {
						return &TamperError{Index: i, Reason: "stored twice"}
					}
					continue
				}
				t := c.tiles[tileKey{level: 0, index: i / tileWidth}]
				pos := int(i%tileWidth) * hashSize
				if len(t) < pos+hashSize {
					return &TamperError{Index: i, Reason: "its hash is missing from the tree"}
				}
				if !bytes.Equal(c.hashes[bi][k], t[pos:pos+hashSize]) {
					return &TamperError{Index: i, Reason: "changed: the entry does not match its hash in the tree"}
				}
				if err := add(i, leaf, c.hashes[bi][k]); err != nil {
					return err
				}
				expect++
			}
			if b.err != nil {
				// The leaves before the damage verified; the damage is here.
				return &TamperError{Index: b.first + uint64(len(b.leaves)), Reason: "changed: the bundle of leaves that holds it is damaged"}
			}
		}
	}
	return nil
}

// collectCheckpoints gathers the checkpoints stored in the database and
// those given from outside, follows the chain of signing keys from
// opts.VerifierKey through their transition checkpoints, verifies each
// signature with the chain, and returns their claims by size. Two different
// roots for one size are a fork.
func collectCheckpoints(ctx context.Context, db *storage.DB, opts VerifyOptions) ([]checkpointAt, int, KeyChain, error) {
	stored, err := StoredCheckpoints(ctx, db)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	var chain KeyChain
	if opts.VerifierKey != "" {
		if chain, err = FollowKeys(opts.VerifierKey, append(slices.Clip(stored), opts.Checkpoints...)); err != nil {
			return nil, 0, nil, err
		}
	}
	var claims []checkpointAt
	addClaim := func(cp Checkpoint, source string) error {
		size, root := cp.Size, cp.Root
		if chain != nil {
			s, r, err := chain.OpenCheckpoint([]byte(cp.Note))
			if err != nil {
				return fmt.Errorf("audit: the checkpoint of size %d in %s does not verify: %w", cp.Size, source, err)
			}
			if cp.Root != nil && (s != cp.Size || !bytes.Equal(r, cp.Root)) {
				return fmt.Errorf("audit: the checkpoint of size %d in %s does not say what its note says", cp.Size, source)
			}
			size, root = s, r
		}
		claims = append(claims, checkpointAt{size: size, root: root, source: source, signedAt: cp.SignedAt})
		return nil
	}
	for _, cp := range stored {
		if err := addClaim(cp, "the database"); err != nil {
			return nil, 0, nil, err
		}
	}
	for _, cp := range opts.Checkpoints {
		if err := addClaim(cp, "outside the database"); err != nil {
			return nil, 0, nil, err
		}
	}
	if opts.Archived != nil {
		for _, p := range opts.Archived.parts {
			claims = append(claims, checkpointAt{size: p.end, root: p.root, source: "archive manifest " + p.name(".manifest")})
		}
	}
	slices.SortStableFunc(claims, func(a, b checkpointAt) int {
		switch {
		case a.size < b.size:
			return -1
		case a.size > b.size:
			return 1
		}
		return 0
	})
	var out []checkpointAt
	for _, c := range claims {
		if n := len(out); n > 0 && out[n-1].size == c.size {
			if !bytes.Equal(out[n-1].root, c.root) {
				return nil, 0, nil, &TamperError{Index: c.size - 1, Reason: fmt.Sprintf("two checkpoints of size %d name different roots (%s and %s): the log forked",
					c.size, out[n-1].source, c.source)}
			}
			continue
		}
		if c.size > 0 {
			out = append(out, c)
		}
	}
	return out, len(opts.Checkpoints), chain, nil
}

// storedRange reads the compact range stored with the tree head and the
// size it belongs to (migration 0007); size 0 when there is none: written
// by an earlier version, or a database not yet migrated.
func storedRange(ctx context.Context, db *storage.DB) (uint64, []byte, error) {
	ok, err := db.HasColumn(ctx, "audit_head", "range_hashes")
	if err != nil || !ok {
		return 0, nil, err
	}
	var size sql.NullInt64
	var hashes []byte
	err = db.QueryRowContext(ctx, `SELECT range_size, range_hashes FROM audit_head WHERE id = 1`).Scan(&size, &hashes)
	return uint64(size.Int64), hashes, err
}
