package storage_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"

	"medguard/internal/storage"
)

// TestPage walks a filtered list page by page, newest first: every row
// that matches comes once, in order, each page at most the limit, the last
// one with no cursor; no condition at all reads everything; an empty list
// is an empty page, not nil.
func TestPage(t *testing.T) {
	each(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for i := range 7 {
			if _, err := db.ExecContext(ctx, `INSERT INTO things (id, name, created_at) VALUES ($1, $2, $3)`,
				fmt.Sprintf("t%02d", i), fmt.Sprintf("病案%d", i), i%2); err != nil {
				t.Fatal(err)
			}
		}
		scan := func(rows *sql.Rows) (string, error) {
			var id string
			return id, rows.Scan(&id)
		}
		key := func(id string) string { return id }
		list := func(created *int, after string, limit int) ([]string, string) {
			var w storage.Where
			if created != nil {
				w.Add("created_at = ?", *created)
			}
			if after != "" {
				w.Add("id < ?", after)
			}
			page, next, err := storage.Page(ctx, db, `SELECT id FROM things WHERE `+w.String()+` ORDER BY id DESC`, &w, limit, scan, key)
			if err != nil || page == nil || len(page) > limit {
				t.Fatalf("page %v, %v", page, err)
			}
			return page, next
		}
		even := 0
		var got []string
		for after := ""; ; {
			page, next := list(&even, after, 2)
			got = append(got, page...)
			if next == "" {
				break
			}
			after = next
		}
		if want := []string{"t06", "t04", "t02", "t00"}; !slices.Equal(got, want) {
			t.Fatalf("walked %v, want %v", got, want)
		}
		if all, next := list(nil, "", 10); len(all) != 7 || next != "" {
			t.Fatalf("all: %v %q", all, next)
		}
		none := 9
		if page, next := list(&none, "", 3); len(page) != 0 || next != "" {
			t.Fatalf("none: %v %q", page, next)
		}
	})
}
