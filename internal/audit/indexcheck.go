package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"time"

	"medguard/internal/storage"
)

// The search index (audit_index and the time map audit_time_blocks) is not
// in the tree: an attacker who changes a row there hides an entry from
// searches without touching a leaf. Verify therefore checks it against the
// leaves, chunk by chunk as it reads them:
//
//   - every row equals the searched fields of the leaf it names;
//   - no row names an entry that is not in the database: archived (Archive
//     deletes the rows of the entries it moves out, in the transaction that
//     deletes their leaves), missing, or beyond the tree;
//   - every entry below the index's watermark has its row (the index is a
//     prefix: the indexer indexes from one past the highest row, so an entry
//     below it without one would never be found);
//   - the time-map block of every indexed entry below the watermark exists
//     and its span covers the entry's time. (Entries indexed while Verify
//     runs are not: the blocks, read before their rows, may not show them
//     yet. Those below the watermark were committed with their blocks
//     before it began.) Blocks are never deleted: those of archived entries
//     still span them, and are not checked (archived entries are not
//     searched); no block may lie beyond the tree.

// indexWatermarkBelow is the number of entries the index claims, counting
// only rows for entries in the tree of size head (rows beyond it are
// reported on their own): one past the highest row, or the archived end.
func indexWatermarkBelow(ctx context.Context, q storage.Reader, head uint64) (uint64, error) {
	var highest sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(idx) FROM audit_index WHERE idx < $1`, int64(head)).Scan(&highest); err != nil {
		return 0, err
	}
	archived, err := archivedEnd(ctx, q)
	if err != nil || !highest.Valid {
		return archived, err
	}
	return max(uint64(highest.Int64)+1, archived), nil
}

// checkIndex checks the search index's rows and time-map blocks for the
// entries [lo, hi) against their leaves, which leaves yields in increasing
// order of index; entries below watermark must have rows. It returns the
// first fault, or an error if the index could not be read.
//
// The rows are first read whole, as one value per column (quickIndex); only
// if that finds anything amiss, or cannot tell, are they read row by row
// (indexScan), to name the first bad index.
func checkIndex(ctx context.Context, q storage.Reader, lo, hi, watermark uint64, leaves iter.Seq2[uint64, []byte]) (*TamperError, error) {
	if lo >= hi {
		return nil, nil
	}
	if ok, err := quickIndex(ctx, q, lo, hi, watermark, leaves); err != nil || ok {
		if err != nil {
			err = fmt.Errorf("audit: read the search index: %w", err)
		}
		return nil, err
	}
	s := newIndexScan(ctx, q, lo, hi, watermark)
	for i, leaf := range leaves {
		s.leaf(i, leaf)
	}
	return s.finish()
}

// indexSep separates the actors, actions and patients of consecutive rows
// in quickIndex: the record separator, which a canonical leaf escapes, so
// that a plain leaf's fields never hold it.
const indexSep = '\x1e'

// quickIndexSQL reads the rows of a range of entries as one value per
// column: their indexes and times joined by commas, their actors, actions
// and patients by indexSep (string_agg: PostgreSQL, and SQLite since 3.44).
// Reading rows one by one costs most of the check on SQLite; this reads a
// million rows in about two thirds of the time, with almost no garbage.
// The values come in the order the rows were read, which the list of
// indexes tells.
const quickIndexSQL = `SELECT string_agg(CAST(idx AS TEXT), ','), string_agg(CAST(time_ms AS TEXT), ','),
	string_agg(actor, '` + string(indexSep) + `'), string_agg(action, '` + string(indexSep) + `'),
	string_agg(COALESCE(patient_id, ''), '` + string(indexSep) + `') FROM audit_index WHERE idx >= $1 AND idx < $2`

// quickIndex reports whether the rows and time-map blocks of the entries
// [lo, hi) are exactly what their leaves say. False means that something
// is amiss, or that it cannot tell: the rows were not read in order of
// index, or a leaf's field holds indexSep.
//
// Each column's value must equal the leaves' fields joined the same way.
// When none of those holds the separator, that equality holds exactly when
// every row equals its leaf's fields: the leaves' joined fields hold one
// separator fewer than there are rows, so the rows' fields hold none, and
// the value splits into them only one way. (Times are digits, and a time
// stored as anything else does not compare equal.)
func quickIndex(ctx context.Context, q storage.Reader, lo, hi, watermark uint64, leaves iter.Seq2[uint64, []byte]) (bool, error) {
	blocks, err := readBlocks(ctx, q, lo, hi)
	if err != nil {
		return false, err
	}
	var idxs, times, actors, actions, patients []byte
	if err := q.QueryRowContext(ctx, quickIndexSQL, int64(lo), int64(hi)).Scan(&idxs, &times, &actors, &actions, &patients); err != nil {
		return false, err
	}
	// The rows must be [lo, lo+n), read in that order.
	n := uint64(0)
	var num []byte
	if len(idxs) > 0 {
		n = uint64(bytes.Count(idxs, []byte{','})) + 1
	}
	for k, rest := uint64(0), idxs; k < n; k++ {
		num = strconv.AppendUint(num[:0], lo+k, 10)
		if !cut(&rest, num, ',', k == n-1) {
			return false, nil
		}
	}
	next, k := lo, uint64(0)
	for i, leaf := range leaves {
		if i != next {
			return false, nil
		}
		next++
		if k == n {
			if i < watermark {
				return false, nil // a row is missing
			}
			continue
		}
		f, err := leafFields(leaf)
		if err != nil || bytes.IndexByte(f.actor, indexSep) >= 0 || bytes.IndexByte(f.action, indexSep) >= 0 ||
			bytes.IndexByte(f.patient, indexSep) >= 0 {
			return false, nil
		}
		num = strconv.AppendInt(num[:0], f.ms, 10)
		last := k == n-1
		if !cut(&times, num, ',', last) || !cut(&actors, f.actor, indexSep, last) || !cut(&actions, f.action, indexSep, last) ||
			!cut(&patients, f.patient, indexSep, last) {
			return false, nil
		}
		if span, ok := blocks[i/timeBlock]; i < watermark && (!ok || f.ms < span[0] || f.ms > span[1]) {
			return false, nil
		}
		k++
	}
	return k == n && len(times) == 0 && len(actors) == 0 && len(actions) == 0 && len(patients) == 0, nil
}

// cut takes want off the front of *list, then sep, or the end if it is the
// last value, and reports whether they were there.
func cut(list *[]byte, want []byte, sep byte, last bool) bool {
	l := *list
	if len(l) < len(want) || !bytes.Equal(l[:len(want)], want) {
		return false
	}
	l = l[len(want):]
	switch {
	case last && len(l) > 0, !last && (len(l) == 0 || l[0] != sep):
		return false
	case !last:
		l = l[1:]
	}
	*list = l
	return true
}

// readBlocks reads the time-map blocks of the entries [lo, hi).
func readBlocks(ctx context.Context, q storage.Reader, lo, hi uint64) (map[uint64][2]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT block, min_ms, max_ms FROM audit_time_blocks WHERE block >= $1 AND block <= $2`,
		int64(lo/timeBlock), int64((hi-1)/timeBlock))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	blocks := map[uint64][2]int64{}
	for rows.Next() {
		var b, lo, hi int64
		if err := rows.Scan(&b, &lo, &hi); err != nil {
			return nil, err
		}
		blocks[uint64(b)] = [2]int64{lo, hi}
	}
	return blocks, rows.Err()
}

// indexScan checks the search index's rows for the entries [lo, hi), and
// their time-map blocks, against the leaves given to it in increasing order
// of index. It streams the rows; it keeps only the first fault.
type indexScan struct {
	rows      *sql.Rows
	lo, hi    uint64
	watermark uint64
	blocks    map[uint64][2]int64 // block → min and max time, ms

	// The row read ahead, if any.
	ok                     bool
	idx                    uint64
	timeMS                 int64
	actor, action, patient sql.RawBytes

	fault *TamperError // the first fault found
	err   error        // reading the index failed
}

// newIndexScan starts a scan of the index rows for entries [lo, hi).
func newIndexScan(ctx context.Context, q storage.Reader, lo, hi, watermark uint64) *indexScan {
	s := &indexScan{lo: lo, hi: hi, watermark: watermark}
	if lo >= hi {
		return s
	}
	if s.blocks, s.err = readBlocks(ctx, q, lo, hi); s.err != nil {
		return s
	}
	s.rows, s.err = q.QueryContext(ctx, `SELECT idx, time_ms, actor, action, patient_id FROM audit_index
		WHERE idx >= $1 AND idx < $2 ORDER BY idx`, int64(lo), int64(hi))
	s.next()
	return s
}

// next reads the next row.
func (s *indexScan) next() {
	s.ok = false
	if s.rows == nil || s.err != nil {
		return
	}
	if !s.rows.Next() {
		s.err = s.rows.Err()
		return
	}
	var idx int64
	if s.err = s.rows.Scan(&idx, &s.timeMS, &s.actor, &s.action, &s.patient); s.err != nil {
		return
	}
	s.idx, s.ok = uint64(idx), true
}

func (s *indexScan) fail(i uint64, format string, args ...any) {
	s.fault = &TamperError{Index: i, Reason: "the search index: " + fmt.Sprintf(format, args...)}
}

// leaf checks the index against leaf i. Leaves must come in increasing
// order of index; leaves outside [lo, hi) are passed over.
func (s *indexScan) leaf(i uint64, leaf []byte) {
	if s.fault != nil || s.err != nil || i < s.lo || i >= s.hi {
		return
	}
	if s.ok && s.idx < i {
		// Rows come in order: one passed over has no leaf here.
		s.fail(s.idx, "a row names entry %d, which is not stored", s.idx)
		return
	}
	if !s.ok || s.idx != i {
		if i < s.watermark {
			s.fail(i, "the entry has no row, though later entries do: searches would never find it")
		}
		return
	}
	defer s.next()
	f, err := leafFields(leaf)
	if err != nil {
		s.fail(i, "its row cannot be checked: the leaf does not decode (%v)", err)
		return
	}
	switch {
	case f.ms != s.timeMS:
		s.fail(i, "its row's time (%d ms) is not the entry's (%d ms)", s.timeMS, f.ms)
	case !bytes.Equal(f.actor, s.actor):
		s.fail(i, "its row's actor is not the entry's")
	case !bytes.Equal(f.action, s.action):
		s.fail(i, "its row's action is not the entry's")
	case !bytes.Equal(f.patient, s.patient):
		s.fail(i, "its row's patient is not the entry's")
	}
	if s.fault != nil || i >= s.watermark {
		return
	}
	b := i / timeBlock
	span, ok := s.blocks[b]
	switch {
	case !ok:
		s.fail(i, "the time map has no block %d for it: searches over time would never find it", b)
	case f.ms < span[0] || f.ms > span[1]:
		s.fail(i, "time-map block %d spans [%d, %d] ms, not the entry's time (%d ms): searches over time would miss it",
			b, span[0], span[1], f.ms)
	}
}

// finish reports rows left over (entries not among the leaves given), and
// ends the scan. It returns the first fault, or an error if the index could
// not be read.
func (s *indexScan) finish() (*TamperError, error) {
	if s.fault == nil && s.err == nil && s.ok {
		s.fail(s.idx, "a row names entry %d, which is not stored", s.idx)
	}
	if s.rows != nil {
		s.rows.Close()
	}
	if s.err != nil {
		return nil, fmt.Errorf("audit: read the search index: %w", s.err)
	}
	return s.fault, nil
}

// leafIndexed are the searched fields of a leaf as the index holds them.
type leafIndexed struct {
	ms                     int64
	actor, action, patient []byte
}

// leafFields reads the searched fields of a leaf. A leaf without escapes
// is canonical JSON whose keys are in a known order: it begins with the
// action and the actor, ends with the time, and its fields are read where
// they are, without copying; others are decoded.
func leafFields(leaf []byte) (leafIndexed, error) {
	var f leafIndexed
	t, ok := plainFields(leaf, &f)
	if !ok {
		var d indexFields
		if err := json.Unmarshal(leaf, &d); err != nil {
			return f, err
		}
		t, f.actor, f.action, f.patient = []byte(d.Time), []byte(d.Actor), []byte(d.Action), []byte(d.PatientID)
	}
	ms, ok := parseMillis(t)
	if !ok {
		tt, err := time.Parse(TimeFormat, string(t))
		if err != nil {
			return f, err
		}
		ms = tt.UnixMilli()
	}
	f.ms = ms
	return f, nil
}

// plainFields reads the fields of a leaf without escapes, or says it
// cannot.
func plainFields(leaf []byte, f *leafIndexed) (t []byte, ok bool) {
	const (
		head    = `{"action":"`
		actor   = `","actor":"`
		patient = `patient_id":"` // (searched from its rarer first byte)
		tail    = `","time":"`
	)
	end := len(leaf) - len(TimeFormat) - len(`"}`)
	if end-len(tail) < len(head) || !bytes.HasPrefix(leaf, []byte(head)) || !bytes.HasSuffix(leaf, []byte(`"}`)) ||
		string(leaf[end-len(tail):end]) != tail || bytes.IndexByte(leaf, '\\') >= 0 {
		return nil, false
	}
	rest := leaf[len(head) : end-len(tail)]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || !bytes.HasPrefix(rest[j:], []byte(actor)) {
		return nil, false
	}
	f.action, rest = rest[:j], rest[j+len(actor):]
	if j = bytes.IndexByte(rest, '"'); j < 0 {
		return nil, false
	}
	f.actor, rest = rest[:j], rest[j:]
	if j = bytes.Index(rest, []byte(patient)); j < 2 || string(rest[j-2:j]) != `,"` {
		return nil, false
	}
	rest = rest[j+len(patient):]
	if j = bytes.IndexByte(rest, '"'); j < 0 {
		return nil, false
	}
	f.patient = rest[:j]
	return leaf[end : len(leaf)-2], true
}

// parseMillis reads a time in TimeFormat ("2006-01-02T15:04:05.000Z") as
// Unix milliseconds, quickly; ok is false for anything time.Parse should
// judge (it may still accept it).
func parseMillis(b []byte) (int64, bool) {
	if len(b) != len(TimeFormat) || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' ||
		b[19] != '.' || b[23] != 'Z' {
		return 0, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	var v [7]int
	for k, p := range [7][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}, {20, 23}} {
		n, ok := num(p[0], p[1])
		if !ok {
			return 0, false
		}
		v[k] = n
	}
	if v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return 0, false
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], v[6]*1e6, time.UTC)
	if t.Day() != v[2] { // not a day of that month
		return 0, false
	}
	return t.UnixMilli(), true
}
