package audit

import (
	"context"

	"github.com/transparency-dev/merkle/proof"

	"medguard"
)

// Every proof is built from stored hashes (audit_tiles): the nodes a proof
// needs are roots of perfect subtrees, each folded from at most 256 hashes
// of one stored tile; at most one "ephemeral" node is recomputed from them.
// Nothing rehashes the log.

func badSize(field string, format string, args ...any) error {
	return medguard.InvalidField(field, format, args...)
}

// checkSize returns an error unless 0 < size <= the current tree size.
func (l *Log) checkSize(ctx context.Context, field string, size uint64) error {
	head, _, err := l.Head(ctx)
	if err != nil {
		return medguard.Wrap("audit.proof", err)
	}
	if size == 0 || size > head {
		return badSize(field, "%s must be between 1 and the tree size (%d)", field, head)
	}
	return nil
}

// proofHashes reads the nodes of a proof and recomputes its ephemeral node.
func (l *Log) proofHashes(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := readNodes(ctx, l.db, nodes.IDs, true)
	if err != nil {
		return nil, medguard.Wrap("audit.proof", err)
	}
	out, err := nodes.Rehash(hashes, hasher.HashChildren)
	return out, medguard.Wrap("audit.proof", err)
}

// InclusionProof returns the RFC 6962 inclusion proof of the entry at index
// in the tree of the given size.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if err := l.checkSize(ctx, "size", size); err != nil {
		return nil, err
	}
	if index >= size {
		return nil, badSize("index", "index must be smaller than size")
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, badSize("index", "no inclusion proof for this index and size")
	}
	return l.proofHashes(ctx, nodes)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes old and new.
func (l *Log) ConsistencyProof(ctx context.Context, old, new uint64) ([][]byte, error) {
	if err := l.checkSize(ctx, "new", new); err != nil {
		return nil, err
	}
	if old == 0 || old > new {
		return nil, badSize("old", "old must be between 1 and new")
	}
	nodes, err := proof.Consistency(old, new)
	if err != nil {
		return nil, badSize("old", "no consistency proof for these sizes")
	}
	return l.proofHashes(ctx, nodes)
}

// RootAt returns the root hash of the tree of the given size (an earlier
// size than the current one included), from the stored perfect subtrees.
func (l *Log) RootAt(ctx context.Context, size uint64) ([]byte, error) {
	if err := l.checkSize(ctx, "size", size); err != nil {
		return nil, err
	}
	root, err := rootAt(ctx, l.db, size, true)
	return root, medguard.Wrap("audit.RootAt", err)
}

// LeafHash is the RFC 6962 hash of leaf bytes: SHA-256(0x00 ‖ leaf).
func LeafHash(leaf []byte) []byte { return hasher.HashLeaf(leaf) }

// NodeHash is the RFC 6962 hash of an interior node: SHA-256(0x01 ‖ l ‖ r).
func NodeHash(left, right []byte) []byte { return hasher.HashChildren(left, right) }
