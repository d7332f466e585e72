package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"medguard"
	"medguard/internal/storage"
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

// HeadOf returns the tree size and root of the log in db.
func HeadOf(ctx context.Context, db *storage.DB) (uint64, []byte, error) { return readHead(ctx, db) }

// MaxEntries is the most entries Entries returns in one call.
const MaxEntries = 1000

// Entries returns the stored entries with index in [start, end), at most
// MaxEntries of them. A leaf that does not decode is an error naming its
// index: the log has been tampered with.
func (l *Log) Entries(ctx context.Context, start, end uint64) ([]Stored, error) {
	return ReadEntries(ctx, l.db, start, end)
}

// ReadEntries is Log.Entries for a database without an open Log (the CLI's
// export, auditors' tools).
func ReadEntries(ctx context.Context, db *storage.DB, start, end uint64) ([]Stored, error) {
	if end <= start {
		return nil, nil
	}
	end = min(end, start+MaxEntries)
	var out []Stored
	err := leafRange(ctx, db, start, end, func(i uint64, leaf []byte) error {
		e, err := ParseLeaf(leaf)
		if err != nil {
			return fmt.Errorf("audit: entry %d: %w", i, err)
		}
		out = append(out, Stored{Index: i, Leaf: leaf, Entry: e})
		return nil
	})
	return out, medguard.Wrap("audit.Entries", err)
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
	// Index everything answered so far, so that no result is missing.
	if err := l.CatchUp(ctx); err != nil {
		return nil, false, medguard.Wrap("audit.Search", err)
	}
	if !q.From.IsZero() {
		add("time_ms >= $%d", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		add("time_ms < $%d", q.To.UnixMilli())
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		// Only the blocks of entries whose times meet the range are read.
		lo, hi, ok, err := timeBounds(ctx, l.db, q.From, q.To)
		if err != nil {
			return nil, false, medguard.Wrap("audit.Search", err)
		}
		if !ok {
			return nil, false, nil
		}
		add("idx >= $%d", int64(lo))
		if q.Before == 0 || q.Before > hi {
			q.Before = hi
		}
	}
	if q.Before > 0 {
		add("idx < $%d", int64(q.Before))
	}
	sqlText := `SELECT idx FROM audit_index`
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit+1)
	sqlText += fmt.Sprintf(" ORDER BY idx DESC LIMIT $%d", len(args))
	rows, err := l.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, false, medguard.Wrap("audit.Search", err)
	}
	var idxs []uint64
	for rows.Next() {
		var idx int64
		if err := rows.Scan(&idx); err != nil {
			rows.Close()
			return nil, false, medguard.Wrap("audit.Search", err)
		}
		idxs = append(idxs, uint64(idx))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, medguard.Wrap("audit.Search", err)
	}
	leaves, err := leavesAt(ctx, l.db, idxs)
	if err != nil {
		return nil, false, medguard.Wrap("audit.Search", err)
	}
	var out []Stored
	for _, idx := range idxs {
		e, err := ParseLeaf(leaves[idx])
		if err != nil {
			return nil, false, fmt.Errorf("audit: entry %d: %w", idx, err)
		}
		if !q.matches(e) {
			continue
		}
		out = append(out, Stored{Index: idx, Leaf: leaves[idx], Entry: e})
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
