package audit

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// schemaWithout is the audit schema without migration v: the tables as
// they were before it, with the later migrations this code needs (their
// versions are applied in any order).
func schemaWithout(t *testing.T, v string) storage.Schema {
	t.Helper()
	old := fstest.MapFS{}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		if strings.HasPrefix(base, v+"_") {
			continue
		}
		b, err := migrations.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		old[base] = &fstest.MapFile{Data: b}
	}
	return storage.Schema{Owner: "audit", FS: old}
}

func partitionEntry(i int) *Entry {
	return &Entry{Time: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Actor: fmt.Sprintf("张医生%d", i%7), ActorDepartment: "心内科", ActorRoles: []string{"doctor"}, IP: "10.1.2.3",
		Action: "record.read", TargetType: "record", TargetID: fmt.Sprintf("rec%05d", i), PatientID: fmt.Sprintf("pat%03d", i%50),
		Purpose: "treatment", Decision: Allow, Rule: "allow.same_department", Outcome: Success}
}

func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	var batch []*Entry
	for i := from; i < from+n; i++ {
		batch = append(batch, partitionEntry(i))
	}
	if _, err := l.AppendBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// and a few one at a time, indexed by the appender itself
	for i := from + n; i < from+n+3; i++ {
		if _, err := l.Append(context.Background(), partitionEntry(i), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPartitionMigration: a log written before migration 0005 (on
// PostgreSQL: plain tables) migrates with its entries, verifies, keeps
// growing across new partitions, and is still searched and append-only.
func TestPartitionMigration(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, schemaWithout(t, "0005"))
	l, err := Open(ctx, db, Options{MaxBatch: 700})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 2500)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, Schema()); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, db, VerifyOptions{}); err != nil || rep.Size != 2503 {
		t.Fatalf("after the migration: %+v %v", rep, err)
	}

	defer func(span uint64) { partitionSpan = span }(partitionSpan)
	partitionSpan = 1000
	l, err = Open(ctx, db, Options{MaxBatch: 700})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 2503, 4000)
	if err := l.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, db, VerifyOptions{})
	if err != nil || rep.Size != 6506 {
		t.Fatalf("after appending across partitions: %+v %v", rep, err)
	}
	// Search reads every partition, newest first.
	got, more, err := l.Search(ctx, Query{PatientID: "pat007", Limit: 200})
	if err != nil || more || len(got) != (6506-7+49)/50 {
		t.Fatalf("search: %d results, more %v, %v", len(got), more, err)
	}
	for k := 1; k < len(got); k++ {
		if got[k].Index >= got[k-1].Index || got[k].Entry.PatientID != "pat007" {
			t.Fatalf("search result %d: %+v after %+v", k, got[k].Index, got[k-1].Index)
		}
	}
	if db.Dialect != storage.Postgres {
		return
	}
	var parts int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_index'::regclass`).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	// [0, 4096) from the migration, then 1,000 entries each, half a
	// partition ahead of the tree.
	if parts < 4 {
		t.Fatalf("%d partitions of audit_index", parts)
	}
	var bundleParts int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_bundles'::regclass`).Scan(&bundleParts); err != nil {
		t.Fatal(err)
	}
	if bundleParts != parts {
		t.Fatalf("%d partitions of audit_bundles, %d of audit_index", bundleParts, parts)
	}
	var end int64
	if err := db.QueryRowContext(ctx, `SELECT MAX(end_idx) FROM audit_partitions`).Scan(&end); err != nil || end < 6506+500 {
		t.Fatalf("partitions end at %d (%v)", end, err)
	}
	// Every partition refuses changes, directly or through its parent.
	var last string
	if err := db.QueryRowContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_bundles'::regclass ORDER BY c.relname DESC LIMIT 1`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM audit_index_p0 WHERE idx = 1`,
		`UPDATE audit_index SET actor = 'x' WHERE idx = 5000`,
		`DELETE FROM audit_bundles WHERE first_idx = (SELECT MAX(first_idx) FROM audit_bundles)`,
		`UPDATE audit_bundles_p0 SET count = 1 WHERE first_idx = 0`,
		`TRUNCATE audit_bundles_p0`,
		`TRUNCATE ` + last,
		`TRUNCATE audit_index`,
	} {
		if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// TestPartitionsCompressLeaves: on PostgreSQL with LZ4, every partition of
// the bundles, old and new, compresses leaves with it.
func TestPartitionsCompressLeaves(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, Schema())
	if db.Dialect != storage.Postgres {
		t.Skip("PostgreSQL only")
	}
	var lz4 bool
	if err := db.QueryRowContext(ctx, `SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'`).Scan(&lz4); err != nil || !lz4 {
		t.Skipf("no LZ4 (%v)", err)
	}
	defer func(span uint64) { partitionSpan = span }(partitionSpan)
	partitionSpan = 1000
	l, err := Open(ctx, db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 0, 5000)
	rows, err := db.QueryContext(ctx, `SELECT c.relname, a.attcompression FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relname LIKE 'audit\_bundles%' AND c.relkind IN ('r', 'p')
		AND a.attname = 'leaves'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, method string
		if err := rows.Scan(&name, &method); err != nil {
			t.Fatal(err)
		}
		if method != "l" {
			t.Errorf("%s compresses leaves with %q", name, method)
		}
		n++
	}
	if n < 4 {
		t.Fatalf("%d tables of bundles", n)
	}
}

// TestAppendAddsPartitionItself: when the partition ahead could not be
// added in its own transaction (here, another session holds the table of
// partitions for longer than the appender waits), the batch that needs it
// adds it itself, once it can: the append does not fail.
func TestAppendAddsPartitionItself(t *testing.T) {
	ctx := context.Background()
	db := storagetest.Open(t, Schema())
	if db.Dialect != storage.Postgres {
		t.Skip("PostgreSQL only")
	}
	defer func(span uint64) { partitionSpan = span }(partitionSpan)
	partitionSpan = 1000
	l, err := Open(ctx, db, Options{MaxBatch: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	end, err := partitionedEnd(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN; LOCK TABLE audit_partitions IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		var batch []*Entry
		for i := 0; i < int(end)+10; i++ {
			batch = append(batch, partitionEntry(i))
		}
		_, err := l.AppendBatch(ctx, batch)
		done <- err
	}()
	time.Sleep(3 * time.Second) // past the appender's lock_timeout (2 s)
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("append across the end of the partitions: %v", err)
	}
	if got, err := partitionedEnd(ctx, db); err != nil || got < end+10 {
		t.Fatalf("partitions end at %d (%v)", got, err)
	}
	if rep, err := Verify(ctx, db, VerifyOptions{}); err != nil || rep.Size != end+10 {
		t.Fatalf("%+v %v", rep, err)
	}
}
