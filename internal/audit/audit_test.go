package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

var t0 = time.Date(2026, 11, 23, 8, 30, 0, 123e6, time.UTC)

func entry(i int) *audit.Entry {
	return &audit.Entry{
		Time: t0.Add(time.Duration(i) * time.Millisecond), Actor: "zhangwei", ActorDepartment: "CARD",
		ActorRoles: []string{"doctor"}, IP: "10.1.2.3", Action: "record.read", TargetType: "record",
		TargetID: fmt.Sprintf("rec%05d", i), PatientID: "pat00001", Purpose: "treatment",
		Decision: audit.Allow, Rule: "allow.same_department", Outcome: audit.Success, RequestID: fmt.Sprintf("req-%d", i),
	}
}

func openLog(t *testing.T, db *storage.DB) *audit.Log {
	t.Helper()
	l, err := audit.Open(context.Background(), db, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rootOf recomputes the RFC 6962 root of leaves from scratch.
func rootOf(t *testing.T, leaves [][]byte) []byte {
	t.Helper()
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLeafIsCanonical(t *testing.T) {
	e := entry(1)
	e.ActorRoles = []string{"dept_head", "doctor"}
	leaf := e.Leaf()
	want := `{"action":"record.read","actor":"zhangwei","actor_department":"CARD","actor_roles":["dept_head","doctor"],` +
		`"break_glass":false,"decision":"allow","ip":"10.1.2.3","outcome":"success","patient_id":"pat00001",` +
		`"purpose":"treatment","request_id":"req-1","rule":"allow.same_department","target_id":"rec00001",` +
		`"target_type":"record","time":"2026-11-23T08:30:00.124Z"}`
	if string(leaf) != want {
		t.Fatalf("leaf\n%s\nwant\n%s", leaf, want)
	}
	// Keys are sorted and the leaf is valid JSON equal to a generic re-encoding.
	var m map[string]any
	if err := json.Unmarshal(leaf, &m); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(m) // encoding/json sorts map keys
	if !bytes.Equal(again, leaf) {
		t.Fatalf("generic re-encoding differs:\n%s", again)
	}
	back, err := audit.ParseLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Leaf(), leaf) {
		t.Fatal("round trip changed the leaf")
	}
	// Role order does not change the leaf.
	e.ActorRoles = []string{"doctor", "dept_head"}
	if !bytes.Equal(e.Leaf(), leaf) {
		t.Fatal("role order leaks into the leaf")
	}
}

func TestLeafEscaping(t *testing.T) {
	e := entry(2)
	e.Actor = "a\"b\\c\n\x01\u2028张"
	leaf := e.Leaf()
	if !bytes.Contains(leaf, []byte(`"a\"b\\c\n\u0001`+"\u2028"+`张"`)) {
		t.Fatalf("escaping: %s", leaf)
	}
	back, err := audit.ParseLeaf(leaf)
	if err != nil || back.Actor != e.Actor {
		t.Fatalf("%v %q", err, back.Actor)
	}
}

func TestParseLeafRejectsNonCanonical(t *testing.T) {
	leaf := entry(3).Leaf()
	bad := [][]byte{
		bytes.Replace(leaf, []byte(`{"action"`), []byte(`{ "action"`), 1), // white space
		bytes.Replace(leaf, []byte(`"actor":"zhangwei",`), nil, 1),        // missing field
		bytes.Replace(leaf, []byte(`}`), []byte(`,"extra":1}`), 1),        // unknown field
		bytes.Replace(leaf, []byte(`.126Z`), []byte(`Z`), 1),              // time format
		append(bytes.Clone(leaf), ' '),                                    // trailing
		bytes.Replace(leaf, []byte(`"actor":"zhangwei","actor_department":"CARD",`), []byte(`"actor_department":"CARD","actor":"zhangwei",`), 1), // order
	}
	for i, b := range bad {
		if _, err := audit.ParseLeaf(b); err == nil {
			t.Errorf("case %d accepted: %s", i, b)
		}
	}
}

func TestConcurrentAppendsFormOneTree(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	ctx := context.Background()
	const workers, each = 16, 40
	var wg sync.WaitGroup
	seen := make([]bool, workers*each)
	var mu sync.Mutex
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := l.Append(ctx, entry(w*each+i), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Index >= r.TreeSize {
					t.Errorf("index %d not in tree of size %d", r.Index, r.TreeSize)
				}
				mu.Lock()
				if seen[r.Index] {
					t.Errorf("index %d handed out twice", r.Index)
				}
				seen[r.Index] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	size, root, err := l.Head(ctx)
	if err != nil || size != workers*each {
		t.Fatalf("size %d %v", size, err)
	}
	var leaves [][]byte
	for start := uint64(0); start < size; start += audit.MaxEntries {
		got, err := l.Entries(ctx, start, size)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range got {
			if s.Index != start+uint64(i) {
				t.Fatalf("gap at %d", s.Index)
			}
			leaves = append(leaves, s.Leaf)
		}
	}
	if !bytes.Equal(rootOf(t, leaves), root) {
		t.Fatal("stored root differs from the root recomputed from the leaves")
	}
}

func TestMutationCommitsWithItsEntryOrNotAtAll(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE notes (id TEXT PRIMARY KEY, audit_index BIGINT)`); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, db)
	ok := func(id string) audit.Mutation {
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO notes (id, audit_index) VALUES ($1, $2)`, id, int64(index))
			return err
		}
	}
	r1, err := l.Append(ctx, entry(1), ok("a"))
	if err != nil {
		t.Fatal(err)
	}
	// A duplicate insert fails: rolled back, but the attempt is logged.
	e := entry(2)
	_, err = l.Append(ctx, e, ok("a"))
	if !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("duplicate: %v", err)
	}
	// A mutation that writes and then fails leaves nothing behind.
	boom := errors.New("boom")
	_, err = l.Append(ctx, entry(3), func(ctx context.Context, tx *sql.Tx, index uint64) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notes (id) VALUES ('half')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	var n int
	db.QueryRowContext(ctx, `SELECT count(*) FROM notes`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d notes, want 1", n)
	}
	var idx int64
	db.QueryRowContext(ctx, `SELECT audit_index FROM notes WHERE id = 'a'`).Scan(&idx)
	if uint64(idx) != r1.Index {
		t.Fatalf("mutation saw index %d, entry has %d", idx, r1.Index)
	}
	got, err := l.Entries(ctx, 0, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d entries %v", len(got), err)
	}
	for i, want := range []string{audit.Success, audit.Conflict, audit.Failed} {
		if got[i].Entry.Outcome != want {
			t.Errorf("entry %d outcome %s, want %s", i, got[i].Entry.Outcome, want)
		}
	}
}

func TestLogIsAppendOnlyInTheDatabase(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	ctx := context.Background()
	// A whole tile (256 entries) and the parts of the next.
	batch := make([]*audit.Entry, 300)
	for i := range batch {
		batch[i] = entry(i)
	}
	if _, err := l.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for i := 300; i < 303; i++ {
		if _, err := l.Append(ctx, entry(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`UPDATE audit_bundles SET count = 2 WHERE first_idx = 301`,
		`DELETE FROM audit_bundles WHERE first_idx = 302`,
		`UPDATE audit_tiles SET hashes = substr(hashes, 33) WHERE level = 0`,
		`DELETE FROM audit_tiles`,
		// a server of an earlier version writing its partial tile whole-row
		`INSERT INTO audit_tiles (level, idx, hashes) SELECT 3, 0, substr(hashes, 1, 64) FROM audit_tiles WHERE level = 0 AND idx = 0`,
		`UPDATE audit_tiles SET hashes = hashes || hashes WHERE level = 0`,
		`UPDATE audit_tile_parts SET hashes = substr(hashes, 33)`,
		`UPDATE audit_tile_parts SET first = first + 1`,
		`DELETE FROM audit_tile_parts`,
		`UPDATE audit_index SET actor = 'someone' WHERE idx = 1`,
		`DELETE FROM audit_index`,
	} {
		if _, err := db.ExecContext(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	if db.Dialect == storage.Postgres {
		if _, err := db.ExecContext(ctx, `UPDATE audit_tiles SET hashes = substring(hashes from 33) WHERE level = 0`); err == nil {
			t.Error("shrinking a tile allowed")
		}
		for _, table := range []string{"audit_bundles", "audit_tile_parts"} {
			if _, err := db.ExecContext(ctx, `TRUNCATE `+table); err == nil {
				t.Errorf("TRUNCATE %s allowed", table)
			}
		}
	}
}

func TestReopenContinuesTheTree(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	ctx := context.Background()
	var leaves [][]byte
	for round := 0; round < 3; round++ {
		l, err := audit.Open(ctx, db, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 7; i++ {
			e := entry(round*7 + i)
			if _, err := l.Append(ctx, e, nil); err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, e.Leaf())
		}
		l.Close()
		if _, err := l.Append(ctx, entry(0), nil); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("append after close: %v", err)
		}
	}
	l := openLog(t, db)
	size, root, _ := l.Head(ctx)
	if size != 21 || !bytes.Equal(root, rootOf(t, leaves)) {
		t.Fatalf("size %d or root differs after reopening", size)
	}
}

func TestSearch(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		e := entry(i)
		if i%3 == 0 {
			e.Actor, e.PatientID, e.Action = "lina", "pat00002", "patient.read"
		}
		if _, err := l.Append(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, more, err := l.Search(ctx, audit.Query{Actor: "lina", Limit: 4})
	if err != nil || len(got) != 4 || !more {
		t.Fatalf("%d %v %v", len(got), more, err)
	}
	if got[0].Index != 27 || got[3].Index != 18 {
		t.Fatalf("order: %d..%d", got[0].Index, got[3].Index)
	}
	rest, more, _ := l.Search(ctx, audit.Query{Actor: "lina", Before: got[3].Index})
	if len(rest) != 6 || more {
		t.Fatalf("second page %d %v", len(rest), more)
	}
	byTime, _, _ := l.Search(ctx, audit.Query{PatientID: "pat00001", From: t0.Add(10 * time.Millisecond), To: t0.Add(20 * time.Millisecond)})
	for _, s := range byTime {
		if s.Entry.PatientID != "pat00001" || s.Entry.Time.Before(t0.Add(10*time.Millisecond)) || !s.Entry.Time.Before(t0.Add(20*time.Millisecond)) {
			t.Errorf("entry %d does not match", s.Index)
		}
	}
	if len(byTime) != 7 { // i = 10..19 except 12, 15, 18
		t.Fatalf("time window: %d entries", len(byTime))
	}
}

// twoServers opens two logs, as two servers would, each with its own
// connections, on a fresh schema of the PostgreSQL test database (the test
// is skipped without one).
func twoServers(t *testing.T) (string, []*storage.DB, []*audit.Log) {
	t.Helper()
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("MEDGUARD_TEST_POSTGRES not set")
	}
	schemaDSN := storagetest.FreshSchema(t, dsn)
	ctx := context.Background()
	var dbs []*storage.DB
	var logs []*audit.Log
	for range 2 {
		db, err := storage.Open(ctx, schemaDSN, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, audit.Schema()); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
		logs = append(logs, openLog(t, db))
	}
	return schemaDSN, dbs, logs
}

// Two logs (as two servers would have) appending at once to one PostgreSQL
// database make one tree with no gaps or forks.
func TestTwoServersOnePostgresTree(t *testing.T) {
	schemaDSN, _, logs := twoServers(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for s, l := range logs {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if _, err := l.Append(ctx, entry(s*1000+w*50+i), nil); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	size, root, _ := logs[0].Head(ctx)
	if size != 400 {
		t.Fatalf("size %d", size)
	}
	var leaves [][]byte
	for start := uint64(0); start < size; start += audit.MaxEntries {
		got, _ := logs[1].Entries(ctx, start, size)
		leaves = append(leaves, func() (ls [][]byte) {
			for _, s := range got {
				ls = append(ls, s.Leaf)
			}
			return
		}()...)
	}
	if len(leaves) != 400 || !bytes.Equal(rootOf(t, leaves), root) {
		t.Fatal("the two servers' tree does not match its leaves")
	}
	// Turn by turn: each log's next batch finds the head moved by the
	// other and writes under the lock — without first trying a
	// one-statement commit the database would refuse — and the whole log,
	// search index included, verifies.
	// Past entry 512, so that a tile is made whole and another begun by
	// servers taking turns, each reading the right edge the other left.
	// Each takes the tree up from the range the other left with the head,
	// reading no tiles under the lock, and learns from the head that the
	// index is complete, without asking it.
	sum := func(f func(audit.CommitCounts) uint64) uint64 { return f(logs[0].Commits()) + f(logs[1].Commits()) }
	refused := func(c audit.CommitCounts) uint64 { return c.Refused }
	fromHead := func(c audit.CommitCounts) uint64 { return c.RangeFromHead }
	fromTiles := func(c audit.CommitCounts) uint64 { return c.RangeFromTiles }
	indexReads := func(c audit.CommitCounts) uint64 { return c.IndexReads }
	var refused0, head0, tiles0, index0 uint64
	for i := range 120 {
		if _, err := logs[i%2].Append(ctx, entry(5000+i), nil); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			// By its second turn each log has found the other's batch
			// under the lock (its first may still have been one statement
			// that succeeded, if it wrote last before the turns began).
			refused0, head0, tiles0, index0 = sum(refused), sum(fromHead), sum(fromTiles), sum(indexReads)
		}
	}
	if n := sum(refused) - refused0; n != 0 {
		t.Errorf("%d one-statement commits refused while the servers took turns; want none tried", n)
	}
	if h, n := sum(fromHead)-head0, sum(fromTiles)-tiles0; h != 116 || n != 0 {
		t.Errorf("in 116 turns the tree was taken up %d times from the head, %d from the tiles; want 116 and none", h, n)
	}
	if n := sum(indexReads) - index0; n != 0 {
		t.Errorf("in 116 turns the search index's end was read %d times under the lock; want none", n)
	}
	// Alone again: the first batch finds the head moved, the second where
	// this server left it, and the third is one statement again.
	before := logs[0].Commits()
	for i := range 3 {
		if _, err := logs[0].Append(ctx, entry(6000+i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if after := logs[0].Commits(); after.Statement != before.Statement+1 || after.Transaction != before.Transaction+2 {
		t.Fatalf("three batches alone after taking turns: %+v then %+v; want two under the lock, then one statement", before, after)
	}
	// A server of an earlier version moves the head without the range and
	// without saying how far the index goes: the next batch of another
	// takes the tree up from the tiles instead, and asks the index.
	db0, err := storage.Open(ctx, schemaDSN, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db0.Close()
	if _, err := db0.ExecContext(ctx, `UPDATE audit_head SET range_size = NULL, indexed_size = NULL WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	tiles0, index0 = logs[1].Commits().RangeFromTiles, logs[1].Commits().IndexReads
	if _, err := logs[1].Append(ctx, entry(7000), nil); err != nil {
		t.Fatal(err)
	}
	if n := logs[1].Commits().RangeFromTiles - tiles0; n != 1 {
		t.Fatalf("after a head without its range the tree was read from the tiles %d times, want once", n)
	}
	if n := logs[1].Commits().IndexReads - index0; n != 1 {
		t.Fatalf("after a head that does not say how far the index goes it was asked %d times, want once", n)
	}
	for _, l := range logs {
		l.Close()
	}
	db, err := storage.Open(ctx, schemaDSN, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db, audit.VerifyOptions{})
	if err != nil || rep.Size != 524 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Entries that reach a server while it waits for its turn on the head's
// lock (another server is committing) go in with the batch that waited,
// not in a turn of their own after it.
func TestWaitingForTheLockGathersEntries(t *testing.T) {
	_, dbs, logs := twoServers(t)
	ctx := context.Background()
	for i, l := range logs { // each has committed; the second's head is now behind
		if _, err := l.Append(ctx, entry(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := logs[0].Append(ctx, entry(2), nil); err != nil {
		t.Fatal(err)
	}
	// Another server's turn: the head's lock held.
	conn, err := dbs[0].Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	holder, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, `SELECT size FROM audit_head WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	before := logs[1].Commits()
	receipts := make(chan audit.Receipt, 6)
	appendOne := func(i int) {
		r, err := logs[1].Append(ctx, entry(100+i), nil)
		if err != nil {
			t.Error(err)
		}
		receipts <- r
	}
	go appendOne(0)
	// Wait until that batch waits for the lock, then queue five more.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := dbs[0].QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second server's commit never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 1; i < 6; i++ {
		go appendOne(i)
	}
	time.Sleep(500 * time.Millisecond) // they are queued well before
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	sizes := map[uint64]int{}
	for range 6 {
		sizes[(<-receipts).TreeSize]++
	}
	after := logs[1].Commits()
	if len(sizes) != 1 || after.Transaction != before.Transaction+1 {
		t.Fatalf("six entries, five of them queued while the first waited for the lock: committed as trees of sizes %v, "+
			"in %d transactions; want one batch", sizes, after.Transaction-before.Transaction)
	}
	for _, l := range logs {
		l.Close()
	}
	if rep, err := audit.Verify(ctx, dbs[0], audit.VerifyOptions{}); err != nil || rep.Size != 9 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// verify reads bundles without copying them on SQLite because modernc
// gives every row a fresh slice; if a driver upgrade ever reused buffers,
// this test fails before the verifier silently reads the wrong bytes.
func TestSQLiteBlobsAreFresh(t *testing.T) {
	db := storagetest.OpenSQLite(t)
	ctx := context.Background()
	db.ExecContext(ctx, `CREATE TABLE b (k INTEGER PRIMARY KEY, v BLOB)`)
	db.ExecContext(ctx, `INSERT INTO b VALUES (1, $1), (2, $2)`, bytes.Repeat([]byte{1}, 9000), bytes.Repeat([]byte{2}, 9000))
	rows, err := db.QueryContext(ctx, `SELECT v FROM b ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kept []sql.RawBytes
	for rows.Next() {
		var v sql.RawBytes
		rows.Scan(&v)
		kept = append(kept, v)
	}
	if len(kept) != 2 || kept[0][0] != 1 || kept[0][8999] != 1 || kept[1][0] != 2 {
		t.Fatal("the SQLite driver reuses blob buffers: verify must copy bundles")
	}
}

// Searches over time are exact even when entries' times do not follow their
// indexes (several servers, concurrent requests): every page of every
// search equals what a scan of all entries finds.
func TestSearchByTimeIsExact(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	const n = 9000 // three blocks of the time map
	var all []*audit.Entry
	for i := 0; i < n; i++ {
		e := entry(i)
		// Mostly in order, with some entries minutes early or late.
		e.Time = t0.Add(time.Duration(i)*time.Second + time.Duration(rng.IntN(600)-300)*time.Second*time.Duration(rng.IntN(2)))
		e.Actor = []string{"zhangwei", "lina", "wangfang"}[rng.IntN(3)]
		all = append(all, e)
	}
	for i := 0; i < n; i += 1000 {
		if _, err := l.AppendBatch(ctx, all[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
	for k := 0; k < 40; k++ {
		from := t0.Add(time.Duration(rng.IntN(n+1200)-600) * time.Second)
		to := from.Add(time.Duration(rng.IntN(3000)) * time.Second)
		q := audit.Query{From: from, To: to, Limit: 250}
		switch k % 4 {
		case 1:
			q.From = time.Time{}
		case 2:
			q.To = time.Time{}
		case 3:
			q.Actor = "lina"
		}
		var want []uint64
		for i := n - 1; i >= 0; i-- {
			e := all[i]
			if (q.From.IsZero() || !e.Time.Before(q.From)) && (q.To.IsZero() || e.Time.Before(q.To)) && (q.Actor == "" || e.Actor == q.Actor) {
				want = append(want, uint64(i))
			}
		}
		var got []uint64
		for {
			page, more, err := l.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				got = append(got, s.Index)
			}
			if !more {
				break
			}
			q.Before = page[len(page)-1].Index
		}
		if !slices.Equal(got, want) {
			t.Fatalf("search %d %+v: %d results, want %d", k, q, len(got), len(want))
		}
	}
}

// A batch under the head's lock whose connection PostgreSQL had ended (a
// restart, a failover: the pool learns it only by using the connection)
// goes again on another connection instead of failing its requests; the
// tree stays whole.
func TestBatchOutlivesEndedConnections(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("MEDGUARD_TEST_POSTGRES not set")
	}
	ctx := context.Background()
	schemaDSN := storagetest.FreshSchema(t, dsn)
	named := storagetest.Named(t, schemaDSN, "audit")
	var logs []*audit.Log
	var dbs []*storage.DB
	for _, d := range []string{named, schemaDSN} {
		db, err := storage.Open(ctx, d, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, audit.Schema()); err != nil {
			t.Fatal(err)
		}
		dbs, logs = append(dbs, db), append(logs, openLog(t, db))
	}
	a, b := logs[0], logs[1]
	n := 0
	appendTo := func(l *audit.Log) {
		t.Helper()
		if _, err := l.Append(ctx, entry(n), nil); err != nil {
			t.Fatalf("entry %d: %v", n, err)
		}
		n++
	}
	// The servers take turns: each of a's batches finds b's since its own
	// and goes under the lock.
	appendTo(b)
	appendTo(a)
	for round := 0; round < 3; round++ {
		appendTo(b)
		if storagetest.EndConnections(t, dsn, named) == 0 {
			t.Fatal("no connection of the log's was ended")
		}
		before := a.Commits()
		appendTo(a)
		if after := a.Commits(); after.Transaction != before.Transaction+1 {
			t.Fatalf("round %d: commits before %+v, after %+v", round, before, after)
		}
	}
	// (A round may find a connection opened after the drop.)
	if c := a.Commits(); c.Unsent == 0 {
		t.Fatalf("no batch went again: %+v", c)
	}
	rep, err := audit.Verify(ctx, dbs[1], audit.VerifyOptions{})
	if err != nil || rep.Size != uint64(n) {
		t.Fatalf("%+v %v", rep, err)
	}
}
