package audit_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/storage/storagetest"
)

// Every inclusion and consistency proof served from stored nodes verifies
// with the library's verifier against roots recomputed from scratch.
func TestProofsVerify(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	ctx := context.Background()
	var leaves [][]byte
	// Odd batch sizes make every shape of tree.
	for n := 0; n < 70; n++ {
		e := entry(n)
		if _, err := l.Append(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, e.Leaf())
	}
	roots := make([][]byte, len(leaves)+1)
	for size := 1; size <= len(leaves); size++ {
		roots[size] = rootOf(t, leaves[:size])
		got, err := l.RootAt(ctx, uint64(size))
		if err != nil || !bytes.Equal(got, roots[size]) {
			t.Fatalf("RootAt(%d): %v", size, err)
		}
	}
	for size := uint64(1); size <= 70; size += 3 {
		for index := uint64(0); index < size; index += 2 {
			p, err := l.InclusionProof(ctx, index, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, audit.LeafHash(leaves[index]), p, roots[size]); err != nil {
				t.Fatalf("inclusion %d in %d: %v", index, size, err)
			}
		}
		for old := uint64(1); old <= size; old += 5 {
			p, err := l.ConsistencyProof(ctx, old, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, p, roots[old], roots[size]); err != nil {
				t.Fatalf("consistency %d→%d: %v", old, size, err)
			}
		}
	}
	for _, c := range []struct{ index, size uint64 }{{0, 0}, {5, 5}, {0, 71}, {70, 70}} {
		if _, err := l.InclusionProof(ctx, c.index, c.size); !medguard.IsKind(err, medguard.Invalid) {
			t.Errorf("inclusion %v: %v", c, err)
		}
	}
	for _, c := range []struct{ old, new uint64 }{{0, 5}, {6, 5}, {1, 71}} {
		if _, err := l.ConsistencyProof(ctx, c.old, c.new); !medguard.IsKind(err, medguard.Invalid) {
			t.Errorf("consistency %v: %v", c, err)
		}
	}
}

// FuzzProofParameters: any index and sizes give a proof that verifies, or a
// client error — never a wrong proof, a panic or an internal error.
func FuzzProofParameters(f *testing.F) {
	f.Add(uint64(0), uint64(1), uint64(1))
	f.Add(uint64(3), uint64(7), uint64(20))
	f.Add(uint64(1<<63), uint64(0), uint64(1<<64-1))
	db := storagetest.OpenSQLite(f, audit.Schema())
	l, err := audit.Open(context.Background(), db, audit.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	var leaves [][]byte
	for n := 0; n < 21; n++ {
		e := entry(n)
		l.Append(context.Background(), e, nil)
		leaves = append(leaves, e.Leaf())
	}
	f.Fuzz(func(t *testing.T, index, a, b uint64) {
		ctx := context.Background()
		if p, err := l.InclusionProof(ctx, index, a); err == nil {
			root := rootOf(t, leaves[:a])
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, a, audit.LeafHash(leaves[index]), p, root); err != nil {
				t.Fatalf("inclusion %d in %d does not verify", index, a)
			}
		} else if !medguard.IsKind(err, medguard.Invalid) {
			t.Fatalf("inclusion %d %d: %v", index, a, err)
		}
		if p, err := l.ConsistencyProof(ctx, a, b); err == nil {
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, a, b, p, rootOf(t, leaves[:a]), rootOf(t, leaves[:b])); err != nil {
				t.Fatalf("consistency %d→%d does not verify", a, b)
			}
		} else if !medguard.IsKind(err, medguard.Invalid) {
			t.Fatalf("consistency %d %d: %v", a, b, err)
		}
	})
}
