package records

import (
	"context"
	"database/sql"
	"time"

	"medguard"
	"medguard/internal/keys"
)

// The facts below are read without a gate passage for the compliance
// checks (internal/compliance), which show them only through their own
// audited passages. None of them holds patient data: column names,
// counts, opaque ids, usernames, department codes and dates.

// ColumnScan is what a scan of one stored sensitive column found.
type ColumnScan struct {
	Table, Column string
	// Values counts the stored values (destroyed ones, emptied, are not
	// stored values); Sealed those in medguard's cipher envelope.
	Values, Sealed int
	// Unsealed are the opaque row ids of the values that are not, at most
	// MaxUnsealedShown.
	Unsealed []string
}

// MaxUnsealedShown bounds the row ids a scan names.
const MaxUnsealedShown = 20

// sensitiveColumns are the columns holding patient data, by table, with
// the column naming their row.
var sensitiveColumns = []struct {
	table, row string
	columns    []string
}{
	{"patients", "id", []string{"name", "gender", "birth_date", "id_number", "phone", "address", "mrn"}},
	{"record_versions", "record_id", []string{"title", "body", "fields"}},
	{"attachments", "id", []string{"filename", "content"}},
	{"access_grants", "id", []string{"reason"}},
	{"break_glass_events", "id", []string{"reason", "review_note"}},
	{"legal_holds", "id", []string{"reason", "reference"}},
}

// ScanSealed reads every stored value of the sensitive columns — its
// first bytes and its length, never the rest — and counts those in the
// cipher envelope (keys.Header: format, a known algorithm, a full
// length): the share encrypted at rest, measured rather than assumed.
func (s *Service) ScanSealed(ctx context.Context) ([]ColumnScan, error) {
	var out []ColumnScan
	for _, t := range sensitiveColumns {
		for _, col := range t.columns {
			c := ColumnScan{Table: t.table, Column: col}
			rows, err := s.db.QueryContext(ctx, `SELECT `+t.row+`, substr(`+col+`, 1, 6), length(`+col+`) FROM `+t.table+
				` WHERE `+col+` IS NOT NULL`)
			if err != nil {
				return nil, medguard.Wrap("records.ScanSealed", err)
			}
			for rows.Next() {
				var id string
				var head []byte
				var n int
				if err := rows.Scan(&id, &head, &n); err != nil {
					rows.Close()
					return nil, medguard.Wrap("records.ScanSealed", err)
				}
				if n == 0 {
					continue // destroyed (emptied): nothing stored
				}
				c.Values++
				if sealed(head, n) {
					c.Sealed++
				} else if len(c.Unsealed) < MaxUnsealedShown {
					c.Unsealed = append(c.Unsealed, id)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, medguard.Wrap("records.ScanSealed", err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// sealed reports whether a value of length n starting with head is in
// the cipher envelope.
func sealed(head []byte, n int) bool {
	if n < keys.Overhead || len(head) < 6 {
		return false
	}
	probe := make([]byte, keys.Overhead)
	copy(probe, head)
	alg, _, err := keys.Header(probe)
	return err == nil && (alg == keys.SM4GCM || alg == keys.AES256GCM)
}

// OverdueReview is a break-glass event whose review is overdue, or an
// admission archived late.
type OverdueReview struct {
	ID, Username, Department string
	DueAt                    time.Time
	DoneAt                   *time.Time
}

// OverdueBreakGlass lists the break-glass events unreviewed past their
// review period at now.
func (s *Service) OverdueBreakGlass(ctx context.Context, now time.Time) ([]OverdueReview, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, username, department, review_due_at FROM break_glass_events
		WHERE reviewed_at IS NULL AND review_due_at < $1 ORDER BY review_due_at, id LIMIT 1000`, medguard.Millis(now))
	if err != nil {
		return nil, medguard.Wrap("records.OverdueBreakGlass", err)
	}
	defer rows.Close()
	var out []OverdueReview
	for rows.Next() {
		var o OverdueReview
		var due int64
		if err := rows.Scan(&o.ID, &o.Username, &o.Department, &due); err != nil {
			return nil, medguard.Wrap("records.OverdueBreakGlass", err)
		}
		o.DueAt = medguard.FromMillis(due)
		out = append(out, o)
	}
	return out, medguard.Wrap("records.OverdueBreakGlass", rows.Err())
}

// LateArchives lists the admissions past their archiving due date
// unarchived at now, and those archived late since since (as
// LateArchiving, for the whole hospital).
func (s *Service) LateArchives(ctx context.Context, since, now time.Time) ([]OverdueReview, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, department, archive_due_at, archived_at FROM admissions WHERE archive_due_at IS NOT NULL AND
		((archived_at IS NULL AND archive_due_at < $1) OR (archived_at > archive_due_at AND archived_at >= $2)) ORDER BY archive_due_at, id LIMIT 1000`,
		medguard.Millis(now), medguard.Millis(since))
	if err != nil {
		return nil, medguard.Wrap("records.LateArchives", err)
	}
	defer rows.Close()
	var out []OverdueReview
	for rows.Next() {
		var o OverdueReview
		var due int64
		var done sql.NullInt64
		if err := rows.Scan(&o.ID, &o.Department, &due, &done); err != nil {
			return nil, medguard.Wrap("records.LateArchives", err)
		}
		o.DueAt = medguard.FromMillis(due)
		if done.Valid {
			t := medguard.FromMillis(done.Int64)
			o.DoneAt = &t
		}
		out = append(out, o)
	}
	return out, medguard.Wrap("records.LateArchives", rows.Err())
}
