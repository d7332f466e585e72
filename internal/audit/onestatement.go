package audit

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"

	"medguard/internal/storage"
)

// execer runs a statement: a transaction, or a pgWrites collecting it.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// pgWrites collects a commit's writes on PostgreSQL — its bundles, tiles,
// index rows, time map and head — and sends them as one statement of
// data-modifying common table expressions: one round trip instead of one
// each, in the same transaction, under the same lock on the head. The
// statements touch different tables, so running them from one snapshot
// changes nothing they do.
type pgWrites struct {
	parts []string
	args  []any
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// ExecContext keeps the statement for later; its placeholders are
// renumbered after those kept before it.
func (w *pgWrites) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	off := len(w.args)
	w.parts = append(w.parts, placeholder.ReplaceAllStringFunc(query, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		return "$" + strconv.Itoa(n+off)
	}))
	w.args = append(w.args, args...)
	return nil, nil
}

// statement is the one statement of the writes kept, the last as its
// main statement and the others as its WITH clauses.
func (w *pgWrites) statement() string {
	var b strings.Builder
	last := len(w.parts) - 1
	for i, p := range w.parts[:last] {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString("w" + strconv.Itoa(i) + " AS (" + p + ")\n")
	}
	b.WriteString(w.parts[last])
	return b.String()
}

// lastName is the name the statement kept last has in the WITH clause.
func (w *pgWrites) lastName() string { return "w" + strconv.Itoa(len(w.parts)-1) }

// flushAlone runs the writes kept as one statement of its own (its own
// transaction).
func (w *pgWrites) flushAlone(ctx context.Context, db *storage.DB) error {
	_, err := db.ExecContext(ctx, w.statement(), w.args...)
	w.parts, w.args = nil, nil
	return err
}

// flush runs the writes kept in tx, if any; a PipelinedTx sends them with
// its COMMIT.
func (w *pgWrites) flush(ctx context.Context, tx txn) error {
	if len(w.parts) == 0 {
		return nil
	}
	var err error
	if p, ok := tx.(*storage.PipelinedTx); ok {
		p.Queue(w.statement(), w.args...)
	} else {
		_, err = tx.ExecContext(ctx, w.statement(), w.args...)
	}
	w.parts, w.args = nil, nil
	return err
}
