package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"

	"medguard"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// TestPipelinedTx: the writes queued go with the COMMIT, or before a later
// query, which sees them, and are there after the COMMIT; a queued write
// refused takes the whole transaction with it, its immediate writes too,
// and leaves the connection clean for the next transaction (one connection
// in the pool: the same one); Rollback keeps nothing; ReadRow's query goes
// with the BEGIN and the queued writes and sees them.
func TestPipelinedTx(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("PostgreSQL only: set " + storagetest.PostgresEnv)
	}
	ctx := context.Background()
	db := storagetest.OpenPostgres(t, dsn, testSchema)
	if err := db.KeepConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	const ins = `INSERT INTO things (id, name, payload, created_at) VALUES ($1, $2, $3, $4)`
	count := func() (n int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	backend := func() (pid int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	pid := backend()
	begin := func() *storage.PipelinedTx {
		t.Helper()
		tx, err := db.BeginPipelined(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	tx := begin()
	if _, err := tx.ExecContext(ctx, ins, "a", "张伟", []byte{1}, 1); err != nil {
		t.Fatal(err)
	}
	tx.Queue(ins, "b", "李娜", []byte{2}, 2)
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("in the transaction, after a queued write: %d things, %v; want 2", n, err)
	}
	tx.Queue(ins, "c", "王芳", []byte{3}, 3)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 3 {
		t.Fatalf("%d things after the commit, want 3", got)
	}

	// A queued write refused (the id "b" exists): nothing stays, not even
	// the immediate write before it, and the error is the conflict.
	tx = begin()
	if _, err := tx.ExecContext(ctx, ins, "d", "赵敏", []byte{4}, 4); err != nil {
		t.Fatal(err)
	}
	tx.Queue(ins, "b", "重复", []byte{5}, 5)
	tx.Queue(ins, "e", "孙丽", []byte{6}, 6)
	if err := tx.Commit(ctx); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("commit with a duplicate queued: %v; want a conflict", err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("a second commit of the same transaction succeeded")
	}
	if got := count(); got != 3 {
		t.Fatalf("%d things after the refused commit, want 3", got)
	}
	// The pool's one connection is kept (not replaced: a new backend is a
	// fork) and not left in a transaction: two statements get two
	// transaction ids.
	outside := func() {
		t.Helper()
		if got := backend(); got != pid {
			t.Fatalf("the connection was replaced (backend %d, then %d)", pid, got)
		}
		var x1, x2 int64
		if err := db.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&x1); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&x2); err != nil || x1 == x2 {
			t.Fatalf("the connection after a refused commit is still in a transaction (%d, %d, %v)", x1, x2, err)
		}
	}
	outside()

	// A queued write refused when a query sends it: the query says the
	// transaction is aborted, and the commit fails.
	tx = begin()
	tx.Queue(ins, "a", "重复", []byte{9}, 9)
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM things`).Scan(&n); err == nil {
		t.Fatal("a query after a refused queued write answered")
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("a transaction with a refused write committed")
	}
	if got := count(); got != 3 {
		t.Fatalf("%d things after the refused write, want 3", got)
	}
	outside()

	// Rollback keeps nothing, immediate or queued.
	tx = begin()
	if _, err := tx.ExecContext(ctx, ins, "f", "周杰", []byte{7}, 7); err != nil {
		t.Fatal(err)
	}
	tx.Queue(ins, "g", "吴昊", []byte{8}, 8)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 3 {
		t.Fatalf("%d things after a rollback, want 3", got)
	}

	// ReadRow sends the BEGIN and the queued writes with its query: the
	// query sees them, in the transaction the later statements run in.
	tx = begin()
	tx.Queue(ins, "h", "郑爽", []byte{10}, 10)
	var xid1, xid2 int64
	if err := tx.ReadRow(ctx, `SELECT count(*), txid_current() FROM things`, nil, &n, &xid1); err != nil || n != 4 {
		t.Fatalf("ReadRow after a queued write: %d things, %v; want 4", n, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&xid2); err != nil || xid1 != xid2 {
		t.Fatalf("ReadRow ran in transaction %d, the next query in %d (%v)", xid1, xid2, err)
	}
	var name string
	if err := tx.ReadRow(ctx, `SELECT name FROM things WHERE id = $1`, []any{"无此人"}, &name); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("ReadRow of no row: %v; want sql.ErrNoRows", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 4 {
		t.Fatalf("%d things after the commit, want 4", got)
	}
	// A queued write refused when ReadRow sends it: the read fails, and
	// so does the commit.
	tx = begin()
	tx.Queue(ins, "h", "重复", []byte{11}, 11)
	if err := tx.ReadRow(ctx, `SELECT count(*) FROM things`, nil, &n); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("ReadRow after a refused queued write: %v; want a conflict", err)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("a transaction with a refused write committed")
	}
	outside()
	// A transaction that sent nothing rolls back without a word.
	if err := begin().Rollback(); err != nil {
		t.Fatal(err)
	}
	outside()

	// SQLite has none.
	if _, err := storagetest.OpenSQLite(t, testSchema).BeginPipelined(ctx); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("a pipelined transaction on SQLite: %v", err)
	}
}
