package audit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// tamperable is a log of n entries with checkpoints at some sizes, and the
// means to attack its database as someone with direct access would.
type tamperable struct {
	db     *storage.DB
	log    *audit.Log
	cps    *audit.Checkpoints
	signer *audit.Signer
	file   string
	leaves [][]byte
}

func newTamperable(t *testing.T, n int, checkpointEvery int) *tamperable {
	t.Helper()
	ctx := context.Background()
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	dir := t.TempDir()
	signer, created, err := audit.LoadOrCreateSigner(filepath.Join(dir, "audit-log.key"), "hospital.example/medguard")
	if err != nil || !created {
		t.Fatal(err)
	}
	tb := &tamperable{db: db, log: l, signer: signer, file: filepath.Join(dir, "checkpoints.log")}
	tb.cps = audit.NewCheckpoints(l, signer, tb.file, medguard.SystemClock{})
	for i := 0; i < n; i++ {
		e := entry(i)
		if _, err := l.Append(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
		tb.leaves = append(tb.leaves, e.Leaf())
		if checkpointEvery > 0 && (i+1)%checkpointEvery == 0 {
			if _, err := tb.cps.Latest(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tb
}

// external reads the checkpoints file kept outside the database.
func (tb *tamperable) external(t *testing.T) []audit.Checkpoint {
	t.Helper()
	f, err := openFile(tb.file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cps, err := audit.ReadCheckpointFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return cps
}

func (tb *tamperable) verify(t *testing.T, external bool) (*audit.VerifyReport, error) {
	t.Helper()
	opts := audit.VerifyOptions{VerifierKey: tb.signer.VerifierKey()}
	if external {
		opts.Checkpoints = tb.external(t)
	}
	return audit.Verify(context.Background(), tb.db, opts)
}

// unlock removes the append-only protection, as an attacker with the
// database's owner rights could.
func (tb *tamperable) unlock(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if tb.db.Dialect == storage.Postgres {
		for _, table := range []string{"audit_bundles", "audit_tiles", "audit_tile_parts", "audit_index", "audit_checkpoints"} {
			if _, err := tb.db.ExecContext(ctx, `ALTER TABLE `+table+` DISABLE TRIGGER USER`); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for _, trg := range []string{"audit_bundles_no_update", "audit_bundles_no_delete", "audit_tiles_only_grow", "audit_tiles_no_delete",
		"audit_tile_parts_no_update", "audit_tile_parts_until_whole", "audit_tiles_whole_insert", "audit_tiles_whole_update",
		"audit_index_no_update", "audit_index_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
		if _, err := tb.db.ExecContext(ctx, `DROP TRIGGER `+trg); err != nil {
			t.Fatal(err)
		}
	}
}

func (tb *tamperable) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := tb.db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func wantTamper(t *testing.T, err error, index uint64) {
	t.Helper()
	var te *audit.TamperError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a tamper error at %d", err, index)
	}
	if te.Index != index {
		t.Fatalf("first bad index %d (%s), want %d", te.Index, te.Reason, index)
	}
}

func TestVerifyIntactLog(t *testing.T) {
	tb := newTamperable(t, 300, 64)
	rep, err := tb.verify(t, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 300 || rep.Checkpoints != 4 || rep.External != 4 || !bytes.Equal(rep.Root, rootOf(t, tb.leaves)) {
		t.Fatalf("report %+v", rep)
	}
	// The checkpoint note is a C2SP tlog checkpoint any note verifier accepts.
	cp, err := tb.cps.Latest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(cp.Note, "\n", 4)
	if lines[0] != "hospital.example/medguard" || lines[1] != "300" {
		t.Fatalf("checkpoint %q", cp.Note)
	}
	origin, size, root, err := audit.OpenCheckpoint([]byte(cp.Note), tb.signer.VerifierKey())
	if err != nil || origin != "hospital.example/medguard" || size != 300 || !bytes.Equal(root, rep.Root) {
		t.Fatalf("%s %d %v", origin, size, err)
	}
	// A checkpoint signed by another key is refused.
	other, _, _ := audit.LoadOrCreateSigner(filepath.Join(t.TempDir(), "k"), "hospital.example/medguard")
	forged, _ := other.Sign(300, rep.Root)
	if _, _, _, err := audit.OpenCheckpoint(forged, tb.signer.VerifierKey()); !errors.Is(err, audit.ErrBadCheckpoint) {
		t.Fatalf("forged checkpoint: %v", err)
	}
}

// Property: a change of any single byte of any stored leaf — or of the
// bundle framing around it — is caught, and the first bad index named.
func TestVerifyCatchesEveryByteChange(t *testing.T) {
	tb := newTamperable(t, 40, 16) // one bundle per entry
	// And one bundle of 30 entries at once, as a busy server writes them.
	var batch []*audit.Entry
	for i := 40; i < 70; i++ {
		batch = append(batch, entry(i))
		tb.leaves = append(tb.leaves, entry(i).Leaf())
	}
	if _, err := tb.log.AppendBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	tb.cps.Latest(context.Background())
	tb.unlock(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 120; trial++ {
		first := uint64(rnd.IntN(41)) // a one-entry bundle, or the big one at 40
		stored := tb.bundle(t, first)
		pos := rnd.IntN(len(stored))
		bad := bytes.Clone(stored)
		bad[pos] ^= byte(1 + rnd.IntN(255))
		tb.exec(t, `UPDATE audit_bundles SET leaves = $1 WHERE first_idx = $2`, bad, int64(first))
		_, err := tb.verify(t, true)
		wantTamper(t, err, first+leafOf(stored, pos))
		tb.exec(t, `UPDATE audit_bundles SET leaves = $1 WHERE first_idx = $2`, stored, int64(first))
	}
	if _, err := tb.verify(t, true); err != nil {
		t.Fatalf("restored log: %v", err)
	}
}

// bundle reads the stored bundle that starts at first.
func (tb *tamperable) bundle(t *testing.T, first uint64) []byte {
	t.Helper()
	var b []byte
	if err := tb.db.QueryRowContext(context.Background(), `SELECT leaves FROM audit_bundles WHERE first_idx = $1`, int64(first)).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// leafOf says which leaf of a bundle (uvarint length, bytes)… byte pos belongs to.
func leafOf(b []byte, pos int) uint64 {
	k := uint64(0)
	for off := 0; off < len(b); k++ {
		n, w := binary.Uvarint(b[off:])
		if pos < off+w+int(n) {
			return k
		}
		off += w + int(n)
	}
	return k
}

// oneBundle is the stored form of a bundle holding leaf alone.
func oneBundle(leaf []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(leaf))), leaf...)
}

func TestVerifyCatchesDeletionReorderAndTruncation(t *testing.T) {
	t.Run("deleted entry", func(t *testing.T) {
		tb := newTamperable(t, 50, 10)
		tb.unlock(t)
		tb.exec(t, `DELETE FROM audit_bundles WHERE first_idx = 17`)
		_, err := tb.verify(t, false)
		wantTamper(t, err, 17)
	})
	t.Run("two entries swapped", func(t *testing.T) {
		tb := newTamperable(t, 50, 10)
		tb.unlock(t)
		tb.exec(t, `UPDATE audit_bundles SET leaves = $1 WHERE first_idx = 21`, oneBundle(tb.leaves[33]))
		tb.exec(t, `UPDATE audit_bundles SET leaves = $1 WHERE first_idx = 33`, oneBundle(tb.leaves[21]))
		_, err := tb.verify(t, false)
		wantTamper(t, err, 21)
	})
	t.Run("entries renumbered to close a gap", func(t *testing.T) {
		tb := newTamperable(t, 50, 10)
		tb.unlock(t)
		tb.exec(t, `DELETE FROM audit_bundles WHERE first_idx = 30`)
		for i := 31; i < 50; i++ {
			tb.exec(t, `UPDATE audit_bundles SET first_idx = $1 WHERE first_idx = $2`, int64(i-1), int64(i))
		}
		_, err := tb.verify(t, false)
		wantTamper(t, err, 30)
	})
	t.Run("last entries removed with the head", func(t *testing.T) {
		tb := newTamperable(t, 50, 10)
		tb.unlock(t)
		tb.exec(t, `DELETE FROM audit_bundles WHERE first_idx >= 45`)
		_, err := tb.verify(t, false)
		wantTamper(t, err, 45)
		// A careful attacker also rewinds the head and removes the stored
		// checkpoints: the checkpoints outside the database still tell.
		rewind(t, tb, 45)
		tb.exec(t, `DELETE FROM audit_checkpoints`)
		// The search index still names the removed entries…
		_, err = tb.verify(t, false)
		wantTamper(t, err, 45)
		// …until its rows go too.
		tb.exec(t, `DELETE FROM audit_index WHERE idx >= 45`)
		if _, err := tb.verify(t, false); err != nil {
			t.Fatalf("the database alone cannot tell, and should not claim to: %v", err)
		}
		_, err = tb.verify(t, true)
		wantTamper(t, err, 45)
	})
	t.Run("range stored with the head forged", func(t *testing.T) {
		// The servers' next batches would build on it: a forged range
		// makes every later root wrong, and verify says so now.
		tb := newTamperable(t, 50, 10)
		tb.unlock(t)
		var hashes []byte
		tb.db.QueryRowContext(context.Background(), `SELECT range_hashes FROM audit_head WHERE id = 1`).Scan(&hashes)
		if len(hashes) != 3*32 { // 50 = 32 + 16 + 2
			t.Fatalf("the head keeps %d bytes of range, want three hashes", len(hashes))
		}
		hashes[40] ^= 1
		tb.exec(t, `UPDATE audit_head SET range_hashes = $1 WHERE id = 1`, hashes)
		_, err := tb.verify(t, false)
		wantTamper(t, err, 50) // every entry is sound: the next one would build on the forgery
	})
	t.Run("entry rewritten with its whole tree", func(t *testing.T) {
		tb := newTamperable(t, 50, 10)
		tb.unlock(t)
		// Rewrite entry 25 and recompute every node and the head, as an
		// attacker who knows RFC 6962 would, and drop stored checkpoints.
		forged := bytes.Replace(tb.leaves[25], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
		leaves := append([][]byte(nil), tb.leaves...)
		leaves[25] = forged
		tb.exec(t, `UPDATE audit_bundles SET leaves = $1 WHERE first_idx = 25`, oneBundle(forged))
		tb.exec(t, `DELETE FROM audit_tiles`)
		tb.exec(t, `DELETE FROM audit_tile_parts`)
		tb.exec(t, `DELETE FROM audit_checkpoints`)
		rebuild(t, tb, leaves)
		if _, err := tb.verify(t, false); err != nil {
			t.Fatalf("a consistent rewrite passes without outside evidence: %v", err)
		}
		_, err := tb.verify(t, true)
		wantTamper(t, err, 20) // the entries after the last matching checkpoint (size 20)
	})
}

// rewind sets the head to size, removing the nodes beyond it.
func rewind(t *testing.T, tb *tamperable, size int) {
	t.Helper()
	tb.exec(t, `DELETE FROM audit_tiles`)
	tb.exec(t, `DELETE FROM audit_tile_parts`)
	rebuild(t, tb, tb.leaves[:size])
}

// rebuild writes every tile and the head for leaves, as an attacker who
// knows RFC 6962 and the tile layout would.
func rebuild(t *testing.T, tb *tamperable, leaves [][]byte) {
	t.Helper()
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	tiles := map[[2]uint64][]byte{}
	for _, l := range leaves {
		r.Append(rfc6962.DefaultHasher.HashLeaf(l), func(id compact.NodeID, h []byte) {
			if id.Level%8 == 0 {
				k := [2]uint64{uint64(id.Level / 8), id.Index / 256}
				tiles[k] = append(tiles[k], h...)
			}
		})
	}
	for k, hashes := range tiles {
		tb.exec(t, `INSERT INTO audit_tiles (level, idx, hashes) VALUES ($1, $2, $3)`, int64(k[0]), int64(k[1]), hashes)
	}
	root, _ := r.GetRootHash(nil)
	tb.exec(t, `UPDATE audit_head SET size = $1, root = $2, range_size = $1, range_hashes = $3 WHERE id = 1`,
		int64(len(leaves)), root, bytes.Join(r.Hashes(), nil))
}

func TestCheckpointsAreSignedOnDemandAndInTheBackground(t *testing.T) {
	tb := newTamperable(t, 5, 0)
	ctx, cancel := context.WithCancel(context.Background())
	var got []audit.Checkpoint
	tb.cps.OnCheckpoint(func(cp audit.Checkpoint) { got = append(got, cp) })
	cp, err := tb.cps.Latest(ctx)
	if err != nil || cp.Size != 5 {
		t.Fatalf("%+v %v", cp, err)
	}
	again, _ := tb.cps.Latest(ctx)
	if again.Note != cp.Note || len(got) != 1 {
		t.Fatal("signed twice for one size")
	}
	done := make(chan struct{})
	go func() { tb.cps.Run(ctx, time.Millisecond, func(err error) { t.Error(err) }); close(done) }()
	tb.log.Append(ctx, entry(99), nil)
	for deadline := time.Now().Add(10 * time.Second); ; {
		stored, _ := audit.StoredCheckpoints(ctx, tb.db)
		if len(stored) == 2 && stored[1].Size == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no background checkpoint")
		}
		time.Sleep(time.Millisecond) // waiting for the background signer, not timing it
	}
	cancel()
	<-done
	if ext := tb.external(t); len(ext) != 2 {
		t.Fatalf("file holds %d checkpoints", len(ext))
	}
}

func openFile(path string) (*os.File, error) { return os.Open(path) }

// indexedLog is a log of n entries, its search index caught up: patients
// missing from some entries (NULL in the index), and near its end two
// leaves with escapes, one of them holding the separator quickIndex uses.
// (So entries [0, 16384) are checked in one read of the index, and those
// from 16384 on row by row.)
func indexedLog(t *testing.T, n int) *tamperable {
	t.Helper()
	tb := newTamperable(t, 0, 0)
	var entries []*audit.Entry
	for i := 0; i < n; i++ {
		e := entry(i)
		switch {
		case i%7 == 0:
			e.Action, e.PatientID, e.TargetType, e.TargetID = "auth.login", "", "", ""
		case i == n-3:
			e.Actor = "a\x1eb" // the record separator
		case i == n-2:
			e.Actor = `张"伟\` // escaped in the leaf
		}
		entries = append(entries, e)
		tb.leaves = append(tb.leaves, e.Leaf())
	}
	appendBundles(t, tb.log, entries, 1000)
	if err := tb.log.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tb
}

// ms is the time of entry i, in Unix milliseconds.
func ms(i int) int64 { return entry(i).Time.UnixMilli() }

// Property: a search index changed in any way that makes searches miss an
// entry, or name one that is not there, does not verify, and the first bad
// index is named — before or after a changed leaf, whichever comes first.
func TestVerifyChecksTheSearchIndex(t *testing.T) {
	const n = 17000 // two chunks of verifySpan, five blocks of the time map
	tb := indexedLog(t, n)
	tb.unlock(t)
	if _, err := tb.verify(t, false); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	type stmt struct {
		q    string
		args []any
	}
	set := func(column string, v any, idx int) stmt {
		return stmt{`UPDATE audit_index SET ` + column + ` = $1 WHERE idx = $2`, []any{v, int64(idx)}}
	}
	row := func(idx int) stmt {
		e := entry(idx)
		if idx%7 == 0 {
			return stmt{`INSERT INTO audit_index (idx, time_ms, actor, action, patient_id) VALUES ($1, $2, $3, $4, NULL)`,
				[]any{int64(idx), ms(idx), e.Actor, "auth.login"}}
		}
		return stmt{`INSERT INTO audit_index (idx, time_ms, actor, action, patient_id) VALUES ($1, $2, $3, $4, $5)`,
			[]any{int64(idx), ms(idx), e.Actor, e.Action, e.PatientID}}
	}
	block := func(b int, lo, hi int64) stmt {
		return stmt{`UPDATE audit_time_blocks SET min_ms = $1, max_ms = $2 WHERE block = $3`, []any{lo, hi, int64(b)}}
	}
	blockSpan := func(b int) stmt { return block(b, ms(b*4096), ms(min(n, (b+1)*4096)-1)) }
	leaf := func(idx int, l []byte) stmt {
		return stmt{`UPDATE audit_bundles SET leaves = $1 WHERE first_idx = $2`, []any{l, int64(idx)}}
	}
	// A leaf changed in its first bundle (entries 0 to 999): a byte of its
	// request id, which the index does not hold.
	changedLeaf := func(idx int) []byte {
		b := tb.bundle(t, 0)
		at := bytes.Index(b, []byte(`"req-`+strconv.Itoa(idx)+`"`))
		bad := bytes.Clone(b)
		bad[at+2] ^= 0x20
		return bad
	}
	cases := []struct {
		name           string
		tamper, undo   []stmt
		want           uint64
		searchMisses   *audit.Query // a search the tampering hid the entry from
		searchMissesAt uint64
	}{
		{name: "actor changed", tamper: []stmt{set("actor", "lisi", 17)}, undo: []stmt{set("actor", "zhangwei", 17)}, want: 17,
			searchMisses: &audit.Query{Actor: "zhangwei", Before: 18, Limit: 1}, searchMissesAt: 17},
		{name: "action changed", tamper: []stmt{set("action", "record.list", 4500)}, undo: []stmt{set("action", "record.read", 4500)}, want: 4500},
		{name: "patient changed", tamper: []stmt{set("patient_id", "pat00002", 16999)}, undo: []stmt{set("patient_id", "pat00001", 16999)}, want: 16999},
		{name: "patient given to a login", tamper: []stmt{set("patient_id", "pat00001", 16996)}, undo: []stmt{{`UPDATE audit_index SET patient_id = NULL WHERE idx = 16996`, nil}}, want: 16996},
		{name: "time moved", tamper: []stmt{set("time_ms", ms(123)+86400000, 123)}, undo: []stmt{set("time_ms", ms(123), 123)}, want: 123},
		{name: "escaped actor changed", tamper: []stmt{set("actor", `张"伟`, n-2)}, undo: []stmt{set("actor", `张"伟\`, n-2)}, want: n - 2},
		{name: "separator actor changed", tamper: []stmt{set("actor", "a", n-3)}, undo: []stmt{set("actor", "a\x1eb", n-3)}, want: n - 3},
		{name: "separator moved between rows", tamper: []stmt{set("actor", "a", n-3), set("action", "\x1ebrecord.read", n-3)},
			undo: []stmt{set("actor", "a\x1eb", n-3), set("action", "record.read", n-3)}, want: n - 3},
		{name: "rows joined by the separator", tamper: []stmt{set("actor", "zhangwei\x1ezhangwei", 100), {`DELETE FROM audit_index WHERE idx = 101`, nil}},
			undo: []stmt{set("actor", "zhangwei", 100), row(101)}, want: 100},
		{name: "row deleted", tamper: []stmt{{`DELETE FROM audit_index WHERE idx = 250`, nil}}, undo: []stmt{row(250)}, want: 250},
		{name: "row deleted in the second chunk", tamper: []stmt{{`DELETE FROM audit_index WHERE idx = 16400`, nil}}, undo: []stmt{row(16400)}, want: 16400},
		{name: "row beyond the tree", tamper: []stmt{row(n + 5)}, undo: []stmt{{`DELETE FROM audit_index WHERE idx = $1`, []any{int64(n + 5)}}}, want: n + 5},
		{name: "time-map block starts late", tamper: []stmt{block(1, ms(4100), ms(8191))}, undo: []stmt{blockSpan(1)}, want: 4096,
			searchMisses: &audit.Query{From: entry(4096).Time, To: entry(4097).Time}, searchMissesAt: 4096},
		{name: "time-map block ends early", tamper: []stmt{block(2, ms(8192), ms(9000))}, undo: []stmt{blockSpan(2)}, want: 9001},
		{name: "time-map block deleted", tamper: []stmt{{`DELETE FROM audit_time_blocks WHERE block = 3`, nil}},
			undo: []stmt{{`INSERT INTO audit_time_blocks (block, min_ms, max_ms) VALUES (3, $1, $2)`, []any{ms(3 * 4096), ms(4*4096 - 1)}}}, want: 3 * 4096},
		{name: "time-map block beyond the tree", tamper: []stmt{{`INSERT INTO audit_time_blocks (block, min_ms, max_ms) VALUES (9, 0, 1)`, nil}},
			undo: []stmt{{`DELETE FROM audit_time_blocks WHERE block = 9`, nil}}, want: 9 * 4096},
		{name: "row changed before a changed leaf", tamper: []stmt{set("actor", "lisi", 20), leaf(0, changedLeaf(30))},
			undo: []stmt{set("actor", "zhangwei", 20), leaf(0, tb.bundle(t, 0))}, want: 20},
		{name: "row changed after a changed leaf", tamper: []stmt{set("actor", "lisi", 40), leaf(0, changedLeaf(30))},
			undo: []stmt{set("actor", "zhangwei", 40), leaf(0, tb.bundle(t, 0))}, want: 30},
		{name: "row deleted and its leaf changed", tamper: []stmt{{`DELETE FROM audit_index WHERE idx = 30`, nil}, leaf(0, changedLeaf(30))},
			undo: []stmt{row(30), leaf(0, tb.bundle(t, 0))}, want: 30},
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range c.tamper {
				tb.exec(t, s.q, s.args...)
			}
			if c.searchMisses != nil {
				// (what the attacker wanted)
				got, _, err := tb.log.Search(ctx, *c.searchMisses)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range got {
					if s.Index == c.searchMissesAt {
						t.Fatalf("the tampering did not hide entry %d from %+v", s.Index, *c.searchMisses)
					}
				}
			}
			_, err := tb.verify(t, false)
			wantTamper(t, err, c.want)
			if !strings.Contains(err.Error(), "search index") && c.want != 30 {
				t.Errorf("reason: %v", err)
			}
			for _, s := range c.undo {
				tb.exec(t, s.q, s.args...)
			}
			if _, err := tb.verify(t, false); err != nil {
				t.Fatalf("restored: %v", err)
			}
		})
	}
}

// The newest rows of the index are not a fault when missing: the index is
// behind the log, and catches up from the leaves.
func TestVerifyAcceptsAnIndexBehindTheLog(t *testing.T) {
	tb := indexedLog(t, 300)
	tb.unlock(t)
	tb.exec(t, `DELETE FROM audit_index WHERE idx >= 290`)
	if _, err := tb.verify(t, false); err != nil {
		t.Fatal(err)
	}
	got, _, err := tb.log.Search(context.Background(), audit.Query{Actor: "zhangwei", Limit: 1})
	if err != nil || len(got) != 1 || got[0].Index != 299 {
		t.Fatalf("search after catching up: %v %v", got, err)
	}
	if _, err := tb.verify(t, false); err != nil {
		t.Fatal(err)
	}
}

// A row of the search index planted beyond the tree (by someone with the
// database's owner rights) does not stop the log. On PostgreSQL a batch's
// own rows go in without a conflict check, so the batch that meets the row
// is refused — once: the batches after it are indexed by the indexer, which
// skips rows already there (on SQLite every insert skips them). Verify
// names the planted row, and searches find the entries after it.
func TestAppendsGoOnPastAPlantedIndexRow(t *testing.T) {
	tb := indexedLog(t, 100)
	ctx := context.Background()
	e := entry(103)
	tb.exec(t, `INSERT INTO audit_index (idx, time_ms, actor, action, patient_id) VALUES (103, $1, '王某', $2, $3)`,
		e.Time.UnixMilli(), e.Action, e.PatientID)
	refused := 0
	for i := 100; i < 120; i++ {
		if _, err := tb.log.Append(ctx, entry(i), nil); err != nil {
			if !storage.IsConflict(err) {
				t.Fatalf("entry %d: %v", i, err)
			}
			refused++
		}
	}
	want := 0
	if tb.db.Dialect == storage.Postgres {
		want = 1
	}
	if refused != want || tb.log.Failing() {
		t.Fatalf("%d batches refused, want %d; failing %v", refused, want, tb.log.Failing())
	}
	size, _, err := tb.log.Head(ctx)
	if err != nil || size != uint64(120-refused) {
		t.Fatalf("size %d, %v", size, err)
	}
	got, _, err := tb.log.Search(ctx, audit.Query{Actor: "zhangwei", Limit: 1})
	if err != nil || len(got) != 1 || got[0].Index != size-1 {
		t.Fatalf("search: %v %v", got, err)
	}
	_, err = tb.verify(t, false)
	wantTamper(t, err, 103)
	// Past the row, batches index themselves again (on PostgreSQL as one
	// statement, without taking the lock).
	before := tb.log.Commits()
	for i := 120; i < 125; i++ {
		if _, err := tb.log.Append(ctx, entry(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	after := tb.log.Commits()
	if tb.db.Dialect == storage.Postgres && after.Statement-before.Statement != 5 || after.IndexReads != before.IndexReads {
		t.Fatalf("commits before %+v, after %+v", before, after)
	}
	var indexedSize, headSize int64
	if err := tb.db.QueryRowContext(ctx, `SELECT indexed_size, size FROM audit_head`).Scan(&indexedSize, &headSize); err != nil || indexedSize != headSize {
		t.Fatalf("the head says the index is complete up to %d of %d (%v)", indexedSize, headSize, err)
	}
}

// Archived entries left the index with their leaves; their time-map blocks
// stay. A row for an archived entry does not verify.
func TestVerifyChecksTheIndexOfAnArchivedLog(t *testing.T) {
	tb := newTamperable(t, 0, 0)
	ctx := context.Background()
	var entries []*audit.Entry
	for i := 0; i < 200; i++ {
		entries = append(entries, oldEntry(i, 400))
	}
	appendBundles(t, tb.log, entries, 20)
	dir := filepath.Join(t.TempDir(), "archive")
	res, err := audit.Archive(ctx, tb.db, audit.ArchiveOptions{Dir: dir, Before: entries[150].Time, Now: time.Now(), Signer: tb.signer})
	if err != nil || res.End != 140 {
		t.Fatalf("%+v %v", res, err)
	}
	set, err := audit.OpenArchive(dir, tb.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		_, err := audit.Verify(ctx, tb.db, audit.VerifyOptions{VerifierKey: tb.signer.VerifierKey(), Archived: set})
		return err
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	tb.unlock(t)
	e := entries[12]
	tb.exec(t, `INSERT INTO audit_index (idx, time_ms, actor, action, patient_id) VALUES (12, $1, $2, $3, $4)`,
		e.Time.UnixMilli(), e.Actor, e.Action, e.PatientID)
	wantTamper(t, verify(), 12)
	tb.exec(t, `DELETE FROM audit_index WHERE idx = 12`)
	// The entries still in the database are checked as before.
	tb.exec(t, `UPDATE audit_index SET actor = 'x' WHERE idx = 150`)
	wantTamper(t, verify(), 150)
}

// An actor that is not valid UTF-8 is indexed as its leaf holds it, on
// both engines, so that the index verifies and searches find it.
func TestIndexHoldsWhatTheLeafSays(t *testing.T) {
	tb := newTamperable(t, 3, 0)
	ctx := context.Background()
	e := entry(3)
	e.Actor = "zhang\xffwei"
	r, err := tb.log.Append(ctx, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.verify(t, false); err != nil {
		t.Fatal(err)
	}
	got, _, err := tb.log.Search(ctx, audit.Query{Actor: "zhang\uFFFDwei"})
	if err != nil || len(got) != 1 || got[0].Index != r.Index {
		t.Fatalf("%v %v", got, err)
	}
}

// TestVerifyBesideTheAppender: verify, proofs and checkpoints run while a
// server appends and signs. Verify checks the tree up to the head it read
// first; what is appended and signed meanwhile is neither "beyond the
// head" nor a "truncated" checkpoint (it said both, falsely, before: a
// compliance check in a busy server, or `audit verify` beside one, cried
// tampering). Every proof of the tree's size at the moment must verify:
// the tiles — a whole row and the parts of the edge — are read in one
// statement, so a tile made whole meanwhile is never found missing.
func TestVerifyBesideTheAppender(t *testing.T) {
	tb := newTamperable(t, 5, 5)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 700 {
			batch := []*audit.Entry{entry(3 * i), entry(3*i + 1), entry(3*i + 2)}
			for _, e := range batch {
				e.Actor = "孙主任"
			}
			if _, err := tb.log.AppendBatch(ctx, batch); err != nil {
				t.Error(err)
				return
			}
			if i%25 == 0 {
				if _, err := tb.cps.Latest(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	proofs, verifies := 0, 0
	for running := true; running; proofs++ {
		select {
		case <-done:
			running = false
		default:
		}
		size, root, err := tb.log.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tb.log.ConsistencyProof(ctx, 1, size)
		if err != nil {
			t.Fatalf("consistency proof 1→%d beside the appender: %v", size, err)
		}
		first, err := tb.log.RootAt(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 1, size, p, first, root); err != nil {
			t.Fatalf("consistency 1→%d: %v", size, err)
		}
		if proofs%20 == 0 {
			rep, err := tb.verify(t, false)
			if err != nil {
				t.Fatalf("verify beside the appender (tree of %d): %v", size, err)
			}
			if rep.Size < size {
				t.Fatalf("verify checked %d entries, the head had %d before it began", rep.Size, size)
			}
			verifies++
		}
	}
	if verifies < 2 {
		t.Fatalf("only %d verifies ran beside the appender", verifies)
	}
	t.Logf("%d proofs and %d verifies beside 700 commits", proofs, verifies)
}
