package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"medguard"
	"medguard/internal/storage"
)

// The search index (audit_index) is derived from the leaves. The appender
// writes a batch's rows in the batch's transaction when the index has
// caught up with the tree; otherwise (after a failed commit, a restart, or
// while another server's batches are being indexed) an indexer goroutine
// indexes new entries in small transactions, reading their leaves back.
// Every search first catches the index up to the tree's current size, so
// a search never misses an entry that was answered.

// indexChunk is the most entries indexed in one transaction, small enough
// not to hold up the appender on SQLite's single writer.
const indexChunk = 2000

// timeBlock is how many consecutive entries share a row of
// audit_time_blocks, the time span that bounds searches over time.
const timeBlock = 4096

// noteTimes widens the time spans of the blocks holding entries
// [first, first+len(ms)) to cover their times (Unix milliseconds).
func (l *Log) noteTimes(ctx context.Context, tx txn, pg execer, first uint64, ms []int64) error {
	var blocks, los, his []int64
	for i := 0; i < len(ms); {
		block := (first + uint64(i)) / timeBlock
		end := min(len(ms), int((block+1)*timeBlock-first))
		lo, hi := ms[i], ms[i]
		for _, t := range ms[i:end] {
			lo, hi = min(lo, t), max(hi, t)
		}
		blocks, los, his = append(blocks, int64(block)), append(los, lo), append(his, hi)
		i = end
	}
	if l.db.Dialect == storage.Postgres {
		// One statement for them all (each block once).
		_, err := pg.ExecContext(ctx, `INSERT INTO audit_time_blocks (block, min_ms, max_ms)
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
			ON CONFLICT (block) DO UPDATE SET min_ms = LEAST(audit_time_blocks.min_ms, excluded.min_ms),
			max_ms = GREATEST(audit_time_blocks.max_ms, excluded.max_ms)`, blocks, los, his)
		return err
	}
	for k := range blocks {
		if _, err := sqliteStmt(ctx, tx, l.blockWrite).ExecContext(ctx, blocks[k], los[k], his[k]); err != nil {
			return err
		}
	}
	return nil
}

// blockUpsert is the statement noteTimes runs, in the database's dialect.
func blockUpsert(d storage.Dialect) string {
	least, greatest := "MIN", "MAX" // SQLite's scalar min and max
	if d == storage.Postgres {
		least, greatest = "LEAST", "GREATEST"
	}
	return `INSERT INTO audit_time_blocks (block, min_ms, max_ms) VALUES ($1, $2, $3) ON CONFLICT (block) DO UPDATE SET ` +
		`min_ms = ` + least + `(audit_time_blocks.min_ms, excluded.min_ms), max_ms = ` + greatest + `(audit_time_blocks.max_ms, excluded.max_ms)`
}

// timeBounds narrows a search over [from, to) to the entries [lo, hi) of
// the blocks whose span meets it; ok is false if none does.
func timeBounds(ctx context.Context, q querier, from, to time.Time) (lo, hi uint64, ok bool, err error) {
	fromMS, toMS := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		fromMS = from.UnixMilli()
	}
	if !to.IsZero() {
		toMS = to.UnixMilli()
	}
	var first, last sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT MIN(block), MAX(block) FROM audit_time_blocks WHERE min_ms < $1 AND max_ms >= $2`,
		toMS, fromMS).Scan(&first, &last)
	if err != nil || !first.Valid {
		return 0, 0, false, err
	}
	return uint64(first.Int64) * timeBlock, uint64(last.Int64+1) * timeBlock, true, nil
}

// indexFields are the searched fields of a leaf.
type indexFields struct {
	Time      string `json:"time"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	PatientID string `json:"patient_id"`
}

// runIndexer indexes new entries whenever the appender commits, until the
// log closes.
func (l *Log) runIndexer() {
	defer close(l.indexDone)
	for range l.indexKick {
		if err := l.CatchUp(context.Background()); err != nil && l.opts.OnIndexError != nil {
			l.opts.OnIndexError(err)
		}
	}
}

// kickIndexer tells the indexer there is something new, without waiting.
func (l *Log) kickIndexer() {
	select {
	case l.indexKick <- struct{}{}:
	default:
	}
}

// CatchUp indexes every entry up to the tree's current size.
func (l *Log) CatchUp(ctx context.Context) error {
	l.indexMu.Lock()
	defer l.indexMu.Unlock()
	for {
		size, _, err := l.Head(ctx)
		if err != nil {
			return err
		}
		if l.indexed >= size {
			if l.indexed, err = indexWatermark(ctx, l.db); err != nil || l.indexed >= size {
				return err
			}
		}
		if err := l.indexOnce(ctx, size); err != nil {
			return err
		}
	}
}

// indexWatermark is the number of entries indexed: one past the highest,
// or past the archived entries (which leave the index with their leaves).
func indexWatermark(ctx context.Context, q querier) (uint64, error) {
	// One round trip: with several servers, every batch after another
	// server's asks.
	var highest sql.NullInt64
	var archived int64
	err := q.QueryRowContext(ctx, `SELECT (SELECT MAX(idx) FROM audit_index),
		(SELECT COALESCE(MAX(end_idx), 0) FROM audit_archives)`).Scan(&highest, &archived)
	if err != nil || !highest.Valid {
		return uint64(archived), err
	}
	return max(uint64(highest.Int64)+1, uint64(archived)), nil
}

// indexOnce indexes up to indexChunk entries after the watermark, below size.
func (l *Log) indexOnce(ctx context.Context, size uint64) error {
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		if l.db.Dialect == storage.Postgres {
			// Servers sharing the database take turns.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7246382)`); err != nil {
				return err
			}
		}
		from, err := indexWatermark(ctx, tx)
		if err != nil {
			return err
		}
		to := min(size, from+indexChunk)
		if from >= to {
			l.indexed = from
			l.indexedTo.Store(from)
			return nil
		}
		rows := make(indexRows, 0, int(to-from))
		// The chunk's bundles in one read.
		if err := leafRange(ctx, tx, from, to, func(i uint64, leaf []byte) error {
			f, err := fieldsOf(leaf)
			if err != nil {
				return fmt.Errorf("audit: index entry %d: %w", i, err)
			}
			t, err := time.Parse(TimeFormat, f.Time)
			if err != nil {
				return fmt.Errorf("audit: index entry %d: %w", i, err)
			}
			rows = append(rows, indexRow{idx: int64(i), ms: t.UnixMilli(), actor: f.Actor, action: f.Action, patient: f.PatientID})
			return nil
		}); err != nil {
			return err
		}
		if uint64(len(rows)) != to-from {
			return fmt.Errorf("audit: entry %d is missing or damaged", from+uint64(len(rows)))
		}
		if err := l.writeIndex(ctx, tx, tx, from, rows, true); err != nil {
			return err
		}
		l.indexed = to
		l.indexedTo.Store(l.indexed)
		return nil
	})
}

// fieldsOf reads the searched fields of a leaf. Leaves are canonical, so a
// leaf without escapes is read by finding its keys; others are decoded.
func fieldsOf(leaf []byte) (indexFields, error) {
	var f indexFields
	if bytes.IndexByte(leaf, '\\') < 0 {
		var ok [4]bool
		f.Time, ok[0] = plainValue(leaf, `"time":"`)
		f.Actor, ok[1] = plainValue(leaf, `"actor":"`)
		f.Action, ok[2] = plainValue(leaf, `"action":"`)
		f.PatientID, ok[3] = plainValue(leaf, `"patient_id":"`)
		if ok == [4]bool{true, true, true, true} {
			return f, nil
		}
	}
	err := json.Unmarshal(leaf, &f)
	return f, err
}

// plainValue is the string after key up to the next quote.
func plainValue(leaf []byte, key string) (string, bool) {
	i := bytes.Index(leaf, []byte(key))
	if i < 0 {
		return "", false
	}
	v := leaf[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return "", false
	}
	return string(v[:j]), true
}

// indexLag reports how many entries are not yet indexed (for tests and
// metrics).
func (l *Log) indexLag(ctx context.Context) (uint64, error) {
	size, _, err := l.Head(ctx)
	if err != nil {
		return 0, medguard.Wrap("audit.indexLag", err)
	}
	w, err := indexWatermark(ctx, l.db)
	return size - min(size, w), err
}
