package audit

import (
	"context"
	"reflect"
	"testing"
)

// A commit's writes on PostgreSQL become one statement: each keeps its
// arguments, its placeholders renumbered after those before it, and the
// last is the main statement.
func TestPGWritesStatement(t *testing.T) {
	w := &pgWrites{}
	ctx := context.Background()
	w.ExecContext(ctx, `INSERT INTO a SELECT * FROM unnest($1::bigint[], $2::bytea[])`, 1, 2)
	w.ExecContext(ctx, `INSERT INTO b SELECT * FROM unnest($1::int[]) ON CONFLICT (x) DO UPDATE SET y = $1`, 3)
	w.ExecContext(ctx, `UPDATE h SET size = $1, root = $2, updated_at = $3 WHERE id = 1`, 4, 5, 6)
	want := "WITH w0 AS (INSERT INTO a SELECT * FROM unnest($1::bigint[], $2::bytea[]))\n" +
		", w1 AS (INSERT INTO b SELECT * FROM unnest($3::int[]) ON CONFLICT (x) DO UPDATE SET y = $3)\n" +
		"UPDATE h SET size = $4, root = $5, updated_at = $6 WHERE id = 1"
	if got := w.statement(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if !reflect.DeepEqual(w.args, []any{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("args %v", w.args)
	}
}
