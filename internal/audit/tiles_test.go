package audit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard/internal/audit"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// tileState is what the tile tables hold: the length of each audit_tiles
// row, and the number of parts of each tile, by "level/index".
func tileState(t *testing.T, db *storage.DB) (rows map[[2]int64]int, parts map[[2]int64]int) {
	t.Helper()
	ctx := context.Background()
	rows, parts = map[[2]int64]int{}, map[[2]int64]int{}
	for _, q := range []struct {
		sql string
		m   map[[2]int64]int
	}{
		{`SELECT level, idx, length(hashes) FROM audit_tiles`, rows},
		{`SELECT level, idx, count(*) FROM audit_tile_parts GROUP BY level, idx`, parts},
	} {
		rs, err := db.QueryContext(ctx, q.sql)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var level, idx int64
			var n int
			if err := rs.Scan(&level, &idx, &n); err != nil {
				t.Fatal(err)
			}
			q.m[[2]int64{level, idx}] = n
		}
		rs.Close()
	}
	return rows, parts
}

// checkTree verifies the stored log and proves entries against the roots
// recomputed from leaves: the partial tiles at the right edge, read from
// their parts, give the same proofs as whole ones.
func checkTree(t *testing.T, db *storage.DB, l *audit.Log, leaves [][]byte) {
	t.Helper()
	ctx := context.Background()
	if rep, err := audit.Verify(ctx, db, audit.VerifyOptions{}); err != nil || rep.Size != uint64(len(leaves)) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	size := uint64(len(leaves))
	root := rootOf(t, leaves)
	for _, index := range []uint64{0, 255, 256, size - 1, size / 2} {
		if index >= size {
			continue
		}
		p, err := l.InclusionProof(ctx, index, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, audit.LeafHash(leaves[index]), p, root); err != nil {
			t.Fatalf("inclusion of %d in %d: %v", index, size, err)
		}
	}
	for _, old := range []uint64{1, 256, 300, size - 1} {
		if old < 1 || old > size {
			continue
		}
		p, err := l.ConsistencyProof(ctx, old, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, size, p, rootOf(t, leaves[:old]), root); err != nil {
			t.Fatalf("consistency %d→%d: %v", old, size, err)
		}
	}
}

// withoutTriggers runs fn with the tile tables' triggers off, as the
// database of an earlier version had them (no parts, partial tiles written
// whole-row), and puts them back.
func withoutTriggers(t *testing.T, db *storage.DB, fn func()) {
	t.Helper()
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if db.Dialect == storage.Postgres {
		exec(`ALTER TABLE audit_tiles DISABLE TRIGGER audit_tiles_whole`)
		exec(`ALTER TABLE audit_tile_parts DISABLE TRIGGER audit_tile_parts_until_whole`)
		fn()
		exec(`ALTER TABLE audit_tiles ENABLE TRIGGER audit_tiles_whole`)
		if ok, _ := db.HasTable(ctx, "audit_tile_parts"); ok {
			exec(`ALTER TABLE audit_tile_parts ENABLE TRIGGER audit_tile_parts_until_whole`)
		}
		return
	}
	var saved []string
	rows, err := db.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'trigger'
		AND name IN ('audit_tiles_whole_insert', 'audit_tiles_whole_update', 'audit_tile_parts_until_whole')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var q string
		rows.Scan(&q)
		saved = append(saved, q)
	}
	rows.Close()
	for _, name := range []string{"audit_tiles_whole_insert", "audit_tiles_whole_update", "audit_tile_parts_until_whole"} {
		exec(`DROP TRIGGER ` + name)
	}
	fn()
	for _, q := range saved {
		if ok, _ := db.HasTable(ctx, "audit_tile_parts"); !ok && strings.Contains(q, "audit_tile_parts") {
			continue
		}
		exec(q)
	}
}

// appender appends entries to a log, a batch (one commit) at a time, and
// keeps their leaves; tweak, if set, changes each entry first.
type appender struct {
	t      *testing.T
	leaves [][]byte
	tweak  func(*audit.Entry)
}

func (a *appender) add(l *audit.Log, n int) {
	a.t.Helper()
	batch := make([]*audit.Entry, n)
	for i := range batch {
		batch[i] = entry(len(a.leaves) + i)
		if a.tweak != nil {
			a.tweak(batch[i])
		}
	}
	if _, err := l.AppendBatch(context.Background(), batch); err != nil {
		a.t.Fatal(err)
	}
	for _, e := range batch {
		a.leaves = append(a.leaves, e.Leaf())
	}
}

// TestTileGrowsByParts: a commit of a few entries stores only the hashes
// it adds, as a part of the tile at the right edge; a tile is written to
// audit_tiles once, whole, and its parts leave with the next commit — or,
// if the server stopped first, when a log is next opened.
func TestTileGrowsByParts(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	ctx := context.Background()
	a := &appender{t: t, tweak: func(e *audit.Entry) { e.Actor, e.PatientID = "李医生", "pat-王小明" }}
	add := a.add
	l, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		add(l, 5) // 250 entries, 50 commits
	}
	rows, parts := tileState(t, db)
	if len(rows) != 0 || parts[[2]int64{0, 0}] != 50 || len(parts) != 1 {
		t.Fatalf("after 50 small commits: tiles %v, parts %v; want no tile and 50 parts of tile 0/0", rows, parts)
	}
	checkTree(t, db, l, a.leaves)

	add(l, 10) // 260: tile 0/0 whole, tile 0/1 begun, tile 1/0 begun
	rows, parts = tileState(t, db)
	if rows[[2]int64{0, 0}] != 8192 || len(rows) != 1 || parts[[2]int64{0, 1}] != 1 || parts[[2]int64{1, 0}] != 1 {
		t.Fatalf("once tile 0/0 is whole: tiles %v, parts %v", rows, parts)
	}
	checkTree(t, db, l, a.leaves)
	add(l, 3) // the next commit deletes tile 0/0's parts
	if _, parts = tileState(t, db); parts[[2]int64{0, 0}] != 0 || parts[[2]int64{0, 1}] != 2 {
		t.Fatalf("after the next commit: parts %v", parts)
	}
	checkTree(t, db, l, a.leaves)
	// On PostgreSQL every one of these commits was one statement, the one
	// that began two tiles too: no tile is read back to begin one.
	c := l.Commits()
	if want := uint64(52); db.Dialect == storage.Postgres && (c.Statement != want || c.Transaction != 0) ||
		db.Dialect == storage.SQLite && (c.Statement != 0 || c.Transaction != want) {
		t.Fatalf("%d commits as one statement, %d in a transaction; want all %d as %s", c.Statement, c.Transaction, want,
			map[bool]string{true: "one statement", false: "transactions"}[db.Dialect == storage.Postgres])
	}

	// A server that stops right after making a tile whole leaves its
	// parts; the next log opened deletes them.
	for range 48 {
		add(l, 5) // 503
	}
	add(l, 9) // 512: tile 0/1 whole
	l.Close()
	if _, parts = tileState(t, db); parts[[2]int64{0, 1}] == 0 {
		t.Fatalf("tile 0/1's parts are gone before the next commit: %v", parts)
	}
	l, err = audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rows, parts = tileState(t, db)
	if parts[[2]int64{0, 1}] != 0 || rows[[2]int64{0, 1}] != 8192 {
		t.Fatalf("after reopening: tiles %v, parts %v", rows, parts)
	}
	// The reopened log reads the partial tiles from their parts.
	add(l, 7)
	add(l, 1)
	checkTree(t, db, l, a.leaves)
}

// TestTileWrittenBeforeParts: a log whose right-edge tile was written
// whole-row by an earlier version (a partial row in audit_tiles) grows it
// by parts after it, reads it back joined, and writes it whole in place.
func TestTileWrittenBeforeParts(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	ctx := context.Background()
	a := &appender{t: t}
	add := a.add
	l, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	add(l, 40)
	l.Close()
	// As the earlier version stored it: the 40 hashes as a partial row.
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	withoutTriggers(t, db, func() {
		exec(`INSERT INTO audit_tiles (level, idx, hashes) SELECT level, idx, hashes FROM audit_tile_parts WHERE level = 0 AND idx = 0 AND first = 0`)
		exec(`DELETE FROM audit_tile_parts`)
	})
	if rows, parts := tileState(t, db); rows[[2]int64{0, 0}] != 40*32 || len(parts) != 0 {
		t.Fatalf("the earlier layout: tiles %v, parts %v", rows, parts)
	}

	for round := 0; round < 2; round++ {
		l, err = audit.Open(ctx, db, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		add(l, 6)
		checkTree(t, db, l, a.leaves)
		l.Close()
	}
	if rows, parts := tileState(t, db); rows[[2]int64{0, 0}] != 40*32 || parts[[2]int64{0, 0}] != 2 {
		t.Fatalf("grown by parts: tiles %v, parts %v", rows, parts)
	}
	l, err = audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	add(l, 300) // tile 0/0 whole, in place of the partial row
	add(l, 1)
	rows, parts := tileState(t, db)
	if rows[[2]int64{0, 0}] != 8192 || parts[[2]int64{0, 0}] != 0 {
		t.Fatalf("made whole: tiles %v, parts %v", rows, parts)
	}
	checkTree(t, db, l, a.leaves)
}

// TestVerifyBeforeParts: a database written before migration 0006 — a
// backup of an earlier version being restored, a log verified before its
// server is upgraded — has no parts table; verify reads its whole-row
// tiles and passes.
func TestVerifyBeforeParts(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	ctx := context.Background()
	l, err := audit.Open(ctx, db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]*audit.Entry, 300)
	for i := range batch {
		batch[i] = entry(i)
		batch[i].Actor = "赵医生"
	}
	if _, err := l.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	l.Close()
	withoutTriggers(t, db, func() {
		for _, q := range []string{
			// the right-edge tiles as whole rows, as the earlier version wrote them
			`INSERT INTO audit_tiles (level, idx, hashes) SELECT level, idx, hashes FROM audit_tile_parts WHERE first = 0`,
			`DROP TABLE audit_tile_parts`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	})
	if ok, err := db.HasTable(ctx, "audit_tile_parts"); ok || err != nil {
		t.Fatalf("HasTable after DROP: %v %v", ok, err)
	}
	if ok, err := db.HasTable(ctx, "audit_tiles"); !ok || err != nil {
		t.Fatalf("HasTable(audit_tiles): %v %v", ok, err)
	}
	if rep, err := audit.Verify(ctx, db, audit.VerifyOptions{}); err != nil || rep.Size != 300 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
