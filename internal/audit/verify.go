package audit

import (
	"bytes"
	"context"
	"fmt"
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
	// checkpoints are compared by size and root only.
	VerifierKey string
	// Checkpoints from outside the database: DATA/checkpoints.log, or one an
	// auditor kept. Each must verify with VerifierKey.
	Checkpoints []Checkpoint
	// Leaves, if set, supplies leaves [0, From) that are no longer in the
	// database (archived beyond retention); see Archive.
	Archived LeafSource
	// Progress, if set, is told how many entries are verified so far.
	Progress func(done uint64)
}

// LeafSource yields archived leaves in index order.
type LeafSource interface {
	// Size is how many leaves it holds: indexes [0, Size).
	Size() uint64
	// Leaves calls fn for each leaf in order; fn's error stops it.
	Leaves(ctx context.Context, fn func(index uint64, leaf []byte) error) error
}

// VerifyReport says what was verified.
type VerifyReport struct {
	Size        uint64        // entries verified
	Root        []byte        // the root recomputed over them
	Checkpoints int           // checkpoints matched (stored and external)
	External    int           // of which from outside the database
	Archived    uint64        // entries verified from archive files
	Took        time.Duration // how long it took
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
// ones), and checks it against the stored tree nodes, the tree head, every
// checkpoint in the database and every checkpoint given from outside. It
// returns a *TamperError naming the first bad index on any change, removal,
// reordering or truncation.
func Verify(ctx context.Context, db *storage.DB, opts VerifyOptions) (*VerifyReport, error) {
	start := time.Now()
	headSize, headRoot, err := readHead(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("audit: read the tree head: %w", err)
	}
	claims, external, err := collectCheckpoints(ctx, db, opts)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{External: external}
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
	add := func(index uint64, leaf []byte) error {
		if err := rng.Append(LeafHash(leaf), nil); err != nil {
			return err
		}
		if opts.Progress != nil && index%100000 == 0 {
			opts.Progress(index)
		}
		return check()
	}

	var first uint64
	if opts.Archived != nil {
		first = opts.Archived.Size()
		err := opts.Archived.Leaves(ctx, func(index uint64, leaf []byte) error {
			if index != rng.End() {
				return &TamperError{Index: rng.End(), Reason: "missing from the archive"}
			}
			return add(index, leaf)
		})
		if err != nil {
			return nil, err
		}
		rep.Archived = first
	}
	if err := verifyStored(ctx, db, first, headSize, add); err != nil {
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
	if next < len(claims) {
		c := claims[next]
		return nil, &TamperError{Index: count, Reason: fmt.Sprintf("missing: the log ends at %d entries, but the checkpoint of size %d (%s, signed %s) "+
			"covers more: it was truncated", count, c.size, c.source, c.signedAt.Format(time.RFC3339))}
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
		stored, err := readNodes(ctx, db, compact.RangeNodes(0, count, nil))
		if err != nil {
			return nil, &TamperError{Index: lastGood, Reason: "tree nodes are missing: " + err.Error()}
		}
		for i, h := range rng.Hashes() {
			if !bytes.Equal(h, stored[i]) {
				return nil, &TamperError{Index: lastGood, Reason: "stored tree nodes do not match the entries"}
			}
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// verifyChunk is how many bundles are read per query.
const verifyChunk = 256

// verifyStored reads the stored bundles from index first on, in order, with
// the stored leaf hashes (the level-0 tiles), checks each leaf against its
// hash, and passes it on. Reading runs ahead of hashing on another goroutine.
func verifyStored(ctx context.Context, db *storage.DB, first, headSize uint64, add func(uint64, []byte) error) error {
	type chunk struct {
		bundles []bundle
		tiles   map[tileKey][]byte
		err     error
	}
	chunks := make(chan chunk, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(chunks)
		from := int64(first)
		if b, err := bundleAt(ctx, db, first); err != nil {
			chunks <- chunk{err: err}
			return
		} else if b != nil {
			from = int64(b.first)
		}
		for {
			var c chunk
			c.bundles, c.err = scanBundles(ctx, db, `SELECT first_idx, count, leaves FROM audit_bundles WHERE first_idx >= $1
				ORDER BY first_idx LIMIT $2`, from, verifyChunk)
			if c.err == nil && len(c.bundles) > 0 {
				lo := c.bundles[0].first
				last := c.bundles[len(c.bundles)-1]
				hi := last.first + uint64(len(last.leaves))
				var keys []tileKey
				for t := lo / tileWidth; t*tileWidth < hi; t++ {
					keys = append(keys, tileKey{level: 0, index: t})
				}
				c.tiles, c.err = readTiles(ctx, db, keys)
				from = int64(last.first) + 1
			}
			select {
			case chunks <- c:
			case <-ctx.Done():
				return
			}
			if c.err != nil || len(c.bundles) < verifyChunk {
				return
			}
		}
	}()
	expect := first
	for c := range chunks {
		if c.err != nil {
			return fmt.Errorf("audit: read the log: %w", c.err)
		}
		for _, b := range c.bundles {
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
				if !bytes.Equal(LeafHash(leaf), t[pos:pos+hashSize]) {
					return &TamperError{Index: i, Reason: "changed: the entry does not match its hash in the tree"}
				}
				if err := add(i, leaf); err != nil {
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
// those given from outside, verifies their signatures, and returns their
// claims by size. Two different roots for one size are a fork.
func collectCheckpoints(ctx context.Context, db *storage.DB, opts VerifyOptions) ([]checkpointAt, int, error) {
	stored, err := StoredCheckpoints(ctx, db)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	var claims []checkpointAt
	addClaim := func(cp Checkpoint, source string) error {
		size, root := cp.Size, cp.Root
		if opts.VerifierKey != "" {
			_, s, r, err := OpenCheckpoint([]byte(cp.Note), opts.VerifierKey)
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
			return nil, 0, err
		}
	}
	for _, cp := range opts.Checkpoints {
		if err := addClaim(cp, "outside the database"); err != nil {
			return nil, 0, err
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
				return nil, 0, &TamperError{Index: c.size - 1, Reason: fmt.Sprintf("two checkpoints of size %d name different roots (%s and %s): the log forked",
					c.size, out[n-1].source, c.source)}
			}
			continue
		}
		if c.size > 0 {
			out = append(out, c)
		}
	}
	return out, len(opts.Checkpoints), nil
}
