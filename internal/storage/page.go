package storage

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Where collects a query's conditions: the ? of each becomes the next
// numbered placeholder ($1, $2, …), its value the next of Args.
type Where struct {
	conds []string
	Args  []any
}

// Add adds a condition and its value.
func (w *Where) Add(cond string, v any) {
	w.Args = append(w.Args, v)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.Args))))
}

// Fixed adds a condition without a value.
func (w *Where) Fixed(cond string) { w.conds = append(w.conds, cond) }

// String is the conditions joined by AND ("TRUE" for none).
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return "TRUE"
	}
	return strings.Join(w.conds, " AND ")
}

// Page reads one page of a list: query (its conditions from w, its ORDER
// BY, no LIMIT) is read with LIMIT limit+1, each row scanned; the page
// holds at most limit items (never nil) and next is the key of its last
// item when more follow, "" on the last page.
func Page[T any](ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, w *Where, limit int, scan func(*sql.Rows) (T, error), key func(T) string) ([]T, string, error) {
	args := append(append([]any(nil), w.Args...), limit+1)
	rows, err := db.QueryContext(ctx, query+" LIMIT $"+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = key(out[len(out)-1])
	}
	return out, next, nil
}
