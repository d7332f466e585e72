package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"medguard"
)

// Stored is an entry as stored: its index, its leaf bytes and the entry they
// decode to.
type Stored struct {
	Index uint64
	Leaf  []byte
	Entry *Entry
}

// Head returns the current tree size and root hash (nil for an empty tree).
func (l *Log) Head(ctx context.Context) (uint64, []byte, error) {
	return readHead(ctx, l.db)
}

// MaxEntries is the most entries Entries returns in one call.
const MaxEntries = 1000

// Entries returns the stored entries with index in [start, end), at most
// MaxEntries of them. A leaf that does not decode is an error naming its
// index: the log has been tampered with.
func (l *Log) Entries(ctx context.Context, start, end uint64) ([]Stored, error) {
	if end <= start {
		return nil, nil
	}
	end = min(end, start+MaxEntries)
	rows, err := l.db.QueryContext(ctx, `SELECT idx, leaf FROM audit_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx`,
		int64(start), int64(end))
	if err != nil {
		return nil, medguard.Wrap("audit.Entries", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var idx int64
		var leaf []byte
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, medguard.Wrap("audit.Entries", err)
		}
		e, err := ParseLeaf(leaf)
		if err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", idx, err)
		}
		out = append(out, Stored{Index: uint64(idx), Leaf: leaf, Entry: e})
	}
	return out, medguard.Wrap("audit.Entries", rows.Err())
}

// Query selects entries for a search. Empty fields match everything.
type Query struct {
	Actor     string
	PatientID string
	Action    string
	From, To  time.Time // To is exclusive
	// Before, if not zero, returns only entries with a smaller index (the
	// cursor of the previous page).
	Before uint64
	Limit  int
}

// Search returns matching entries, newest first, and whether more remain.
// The indexed columns only narrow the search: every result is re-checked
// against its leaf, which is what the tree vouches for.
func (l *Log) Search(ctx context.Context, q Query) ([]Stored, bool, error) {
	if q.Limit <= 0 || q.Limit > MaxEntries {
		q.Limit = 100
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.Actor != "" {
		add("actor = $%d", q.Actor)
	}
	if q.PatientID != "" {
		add("patient_id = $%d", q.PatientID)
	}
	if q.Action != "" {
		add("action = $%d", q.Action)
	}
	if !q.From.IsZero() {
		add("time_ms >= $%d", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		add("time_ms < $%d", q.To.UnixMilli())
	}
	if q.Before > 0 {
		add("idx < $%d", int64(q.Before))
	}
	sqlText := `SELECT idx, leaf FROM audit_leaves`
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit+1)
	sqlText += fmt.Sprintf(" ORDER BY idx DESC LIMIT $%d", len(args))
	rows, err := l.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, false, medguard.Wrap("audit.Search", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var idx int64
		var leaf []byte
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, false, medguard.Wrap("audit.Search", err)
		}
		e, err := ParseLeaf(leaf)
		if err != nil {
			return nil, false, fmt.Errorf("audit: entry %d: %w", idx, err)
		}
		if !q.matches(e) {
			continue
		}
		out = append(out, Stored{Index: uint64(idx), Leaf: leaf, Entry: e})
	}
	if err := rows.Err(); err != nil {
		return nil, false, medguard.Wrap("audit.Search", err)
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	return out, more, nil
}

func (q Query) matches(e *Entry) bool {
	return (q.Actor == "" || e.Actor == q.Actor) &&
		(q.PatientID == "" || e.PatientID == q.PatientID) &&
		(q.Action == "" || e.Action == q.Action) &&
		(q.From.IsZero() || !e.Time.Before(q.From)) &&
		(q.To.IsZero() || e.Time.Before(q.To))
}
