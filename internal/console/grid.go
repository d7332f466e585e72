package console

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A grid is a table people work in all day: columns that sort, pages with
// a total and a size of one's choosing, CSV export and a print view — all
// on the server, working without JavaScript, under the strict CSP.
//
// A handler reads the rows the service gives it (at most MaxRows: a list
// longer than that says so and asks for narrower filters), filters them as
// its form says, turns each into a Row of Cells whose texts are already in
// the page's language, and calls rq.Grid. Grid sorts by the ?sort= column
// (?desc=1 for descending), cuts the ?page= of ?size= rows, and, for
// ?format=csv, writes every row as CSV instead (the handler then returns
// errHandled). ?print=1 renders the page without navigation, every row on
// one page. The template shows it with {{template "grid" .Data.Grid}}.

// MaxRows is the most rows a grid holds: what a service lists beyond it
// is not shown, and the grid says the list was cut.
const MaxRows = 2000

// Sizes are the page sizes offered.
var Sizes = []int{25, 50, 100, 200}

// Column is a grid's column.
type Column struct {
	// Key names the column in ?sort=.
	Key string
	// Title is the header's catalog key.
	Title string
	// Sort makes the header a link that sorts by the column.
	Sort bool
	// Num right-aligns the column.
	Num bool
}

// Cell is one cell of a row.
type Cell struct {
	Text  string // shown and exported
	Href  string // a link, if any (a local path)
	Sort  string // the sort key, if not Text (e.g. a time in RFC 3339)
	Class string // CSS classes: "bad", "ok", "tag", "mono", "nowrap"
	// Title is a tooltip (the full text of a shortened cell, say).
	Title string
	// HTML, if set, is shown instead of Text (a small form, a tag): it is
	// built by the handler from escaped parts and is not exported.
	HTML template.HTML
}

// Row is one row of a grid.
type Row struct {
	Cells []Cell
	Class string
	// Select, if set, is the value of the row's checkbox in a grid with a
	// bulk action (the form around the grid names the field).
	Select string
}

// Grid is a sorted, paged table ready for the "grid" template.
type Grid struct {
	ID      string
	Columns []Column
	Rows    []Row // the current page
	// Total is the number of rows after the filters; Capped is true when
	// the source held more than MaxRows.
	Total  int
	Capped bool
	Sort   string
	Desc   bool
	Page   int // 1-based
	Pages  int
	Size   int
	Sizes  []int
	Print  bool
	// SelectName, if set, gives every row with a Select value a checkbox
	// named so (for a bulk action of the form around the grid).
	SelectName string
	// Empty is the catalog key shown when there are no rows.
	Empty string

	path  string
	query url.Values
}

// Cells makes a row's cells from texts.
func Cells(texts ...string) []Cell {
	out := make([]Cell, len(texts))
	for i, t := range texts {
		out[i] = Cell{Text: t}
	}
	return out
}

// TimeCell is a cell showing a time in the hospital's zone, sorting by it.
func (rq *Request) TimeCell(at time.Time) Cell {
	if at.IsZero() {
		return Cell{}
	}
	return Cell{Text: at.In(rq.c.zone).Format("2006-01-02 15:04"), Sort: at.UTC().Format(time.RFC3339Nano), Class: "nowrap"}
}

// NumCell is a cell showing a number, sorting by it.
func NumCell(n int) Cell {
	return Cell{Text: strconv.Itoa(n), Sort: fmt.Sprintf("%020d", n+1<<62)}
}

// GridOptions are a grid's settings.
type GridOptions struct {
	// DefaultSort is the column sorted by when the URL names none, and
	// DefaultDesc its direction.
	DefaultSort string
	DefaultDesc bool
	// Capped says the source held more than the rows given.
	Capped bool
	// Export is the stem of the CSV file's name ("alerts"); empty for no
	// export.
	Export string
	// SelectName: see Grid.SelectName.
	SelectName string
	// Empty: see Grid.Empty (default "common.none").
	Empty string
}

// Grid sorts and pages rows for the page, or — for ?format=csv with an
// export — writes them all as CSV and reports handled (the handler then
// returns errHandled).
func (rq *Request) Grid(id string, cols []Column, rows []Row, o GridOptions) (g *Grid, handled bool, err error) {
	q := rq.URL.Query()
	g = &Grid{ID: id, Columns: cols, Total: len(rows), Capped: o.Capped, Sizes: Sizes, Print: rq.print,
		SelectName: o.SelectName, Empty: o.Empty, path: rq.URL.Path, query: q}
	if g.Empty == "" {
		g.Empty = "common.none"
	}
	g.Sort, g.Desc = o.DefaultSort, o.DefaultDesc
	if s := q.Get("sort"); s != "" {
		if i := slices.IndexFunc(cols, func(c Column) bool { return c.Key == s && c.Sort }); i >= 0 {
			g.Sort, g.Desc = s, q.Get("desc") == "1"
		}
	}
	if i := slices.IndexFunc(cols, func(c Column) bool { return c.Key == g.Sort }); i >= 0 {
		key := func(r Row) string {
			if i >= len(r.Cells) {
				return ""
			}
			if r.Cells[i].Sort != "" {
				return r.Cells[i].Sort
			}
			return r.Cells[i].Text
		}
		slices.SortStableFunc(rows, func(a, b Row) int {
			c := strings.Compare(key(a), key(b))
			if g.Desc {
				return -c
			}
			return c
		})
	}
	if o.Export != "" && q.Get("format") == "csv" {
		return g, true, rq.writeCSV(o.Export, cols, rows)
	}
	g.Size = PageSize
	if n, err := strconv.Atoi(q.Get("size")); err == nil && slices.Contains(Sizes, n) {
		g.Size = n
	}
	if g.Print {
		g.Size = max(len(rows), 1)
	}
	g.Pages = max((len(rows)+g.Size-1)/g.Size, 1)
	g.Page = 1
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n >= 1 {
		g.Page = min(n, g.Pages)
	}
	from := (g.Page - 1) * g.Size
	g.Rows = rows[from:min(from+g.Size, len(rows))]
	if o.Export == "" {
		g.query.Set("noexport", "1")
	}
	return g, false, nil
}

// writeCSV writes rows as CSV (UTF-8 with a byte-order mark, which
// spreadsheet programs need to read Chinese), headed by the columns'
// titles. A cell that a spreadsheet would run as a formula is prefixed
// with an apostrophe.
func (rq *Request) writeCSV(stem string, cols []Column, rows []Row) error {
	h := rq.W.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	name := stem + "-" + rq.Deps.Clock.Now().In(rq.c.zone).Format("20060102-1504") + ".csv"
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	rq.W.WriteHeader(http.StatusOK)
	rq.W.Write([]byte("\ufeff"))
	w := csv.NewWriter(rq.W)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = rq.T(c.Title)
	}
	w.Write(head)
	for _, r := range rows {
		line := make([]string, len(cols))
		for i := range cols {
			if i < len(r.Cells) {
				line[i] = csvSafe(r.Cells[i].Text)
			}
		}
		w.Write(line)
	}
	w.Flush()
	return w.Error()
}

// csvSafe keeps a spreadsheet from running a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// link is the grid's path with the current query changed.
func (g *Grid) link(set ...string) string {
	q := url.Values{}
	for k, v := range g.query {
		q[k] = v
	}
	q.Del("noexport")
	q.Del("m")
	for i := 0; i+1 < len(set); i += 2 {
		if set[i+1] == "" {
			q.Del(set[i])
		} else {
			q.Set(set[i], set[i+1])
		}
	}
	if len(q) == 0 {
		return g.path
	}
	return g.path + "?" + q.Encode()
}

// SortLink is the link of a column's header: sorted by it, ascending, or
// descending if it is sorted ascending already.
func (g *Grid) SortLink(key string) string {
	desc := ""
	if g.Sort == key && !g.Desc {
		desc = "1"
	}
	return g.link("sort", key, "desc", desc, "page", "")
}

// SortState is "ascending", "descending" or "none" for a column (its
// aria-sort).
func (g *Grid) SortState(key string) string {
	switch {
	case g.Sort != key:
		return "none"
	case g.Desc:
		return "descending"
	}
	return "ascending"
}

// PageLink is the link of page n.
func (g *Grid) PageLink(n int) string { return g.link("page", strconv.Itoa(n)) }

// SizeLink is the link of the first page of size n.
func (g *Grid) SizeLink(n int) string { return g.link("size", strconv.Itoa(n), "page", "") }

// CSVLink and PrintLink export the rows as the filters and order are.
func (g *Grid) CSVLink() string   { return g.link("format", "csv", "page", "", "size", "") }
func (g *Grid) PrintLink() string { return g.link("print", "1", "page", "", "size", "") }

// Exportable reports whether the grid offers CSV and print.
func (g *Grid) Exportable() bool { return g.query.Get("noexport") == "" }

// First and Last are the 1-based numbers of the first and last row shown.
func (g *Grid) First() int {
	if g.Total == 0 {
		return 0
	}
	return (g.Page-1)*g.Size + 1
}
func (g *Grid) Last() int { return g.First() + len(g.Rows) - 1 }
