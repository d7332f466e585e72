package audit

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"medguard"
	"medguard/internal/storage"
)

// bundle is a stored bundle of leaves.
type bundle struct {
	first  uint64
	leaves [][]byte
	err    error // the bundle is damaged (its leaves are what could be read)
}

func scanBundles(ctx context.Context, q querier, query string, args ...any) ([]bundle, error) {
	return scanBundlesCopy(ctx, q, true, query, args...)
}

// scanBundlesCopy is scanBundles; with copy false it keeps the driver's
// bytes instead of copying them — only for SQLite, whose driver (modernc)
// hands out a fresh slice for every row (TestSQLiteBlobsAreFresh keeps it
// honest). pgx reuses its buffers, so PostgreSQL always copies.
func scanBundlesCopy(ctx context.Context, q querier, copy bool, query string, args ...any) ([]bundle, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []bundle
	for rows.Next() {
		var first int64
		var count int
		var raw sql.RawBytes
		if err := rows.Scan(&first, &count, &raw); err != nil {
			return nil, err
		}
		data := []byte(raw)
		if copy {
			data = bytes.Clone(raw)
		}
		leaves, derr := decodeBundle(data, count)
		out = append(out, bundle{first: uint64(first), leaves: leaves, err: derr})
	}
	return out, rows.Err()
}

// bundleAt reads the bundle that holds index i (if any).
func bundleAt(ctx context.Context, q querier, i uint64) (*bundle, error) {
	bs, err := scanBundles(ctx, q, `SELECT first_idx, count, leaves FROM audit_bundles WHERE first_idx <= $1
		ORDER BY first_idx DESC LIMIT 1`, int64(i))
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	return &bs[0], nil
}

// leafRange calls fn for each stored leaf with index in [start, end), in
// order. A damaged bundle or a gap is an error naming the index.
func leafRange(ctx context.Context, q querier, start, end uint64, fn func(index uint64, leaf []byte) error) error {
	if end <= start {
		return nil
	}
	// The bundle holding start (the last one beginning at or before it)
	// and those after it, up to end, in one round trip.
	bs, err := scanBundles(ctx, q, `SELECT first_idx, count, leaves FROM audit_bundles
		WHERE first_idx >= COALESCE((SELECT MAX(first_idx) FROM audit_bundles WHERE first_idx <= $1), $1) AND first_idx < $2
		ORDER BY first_idx`, int64(start), int64(end))
	if err != nil {
		return err
	}
	if len(bs) == 0 || bs[0].first > start {
		if err := missing(ctx, q, start); medguard.IsKind(err, medguard.NotFound) {
			return err
		}
	}
	next := start
	for _, b := range bs {
		if b.err != nil {
			return fmt.Errorf("audit: the bundle of entries from %d is damaged: %w", b.first, b.err)
		}
		for k, leaf := range b.leaves {
			i := b.first + uint64(k)
			if i < next || i >= end {
				continue
			}
			if i != next {
				return missing(ctx, q, next)
			}
			if err := fn(i, leaf); err != nil {
				return err
			}
			next++
		}
	}
	return nil
}

// leavesAt returns the stored leaves at the given indexes. On PostgreSQL
// the bundles holding them are read in one query, not one round trip each
// (a patient's entries are scattered over the whole log).
func leavesAt(ctx context.Context, db *storage.DB, idxs []uint64) (map[uint64][]byte, error) {
	out := make(map[uint64][]byte, len(idxs))
	var cur *bundle
	var read []bundle // (PostgreSQL) the bundles, newest first, as idxs
	if db.Dialect == storage.Postgres && len(idxs) > 1 {
		arg := make([]int64, len(idxs))
		for k, i := range idxs {
			arg[k] = int64(i)
		}
		var err error
		read, err = scanBundles(ctx, db, `SELECT DISTINCT ON (b.first_idx) b.first_idx, b.count, b.leaves
			FROM unnest($1::bigint[]) AS i(idx) CROSS JOIN LATERAL (SELECT first_idx, count, leaves FROM audit_bundles
				WHERE first_idx <= i.idx ORDER BY first_idx DESC LIMIT 1) b
			ORDER BY b.first_idx DESC`, arg)
		if err != nil {
			return nil, err
		}
	}
	for _, i := range idxs {
		// (idxs newest first, as searches give them: otherwise the
		// bundles are read one by one below)
		for len(read) > 0 && (cur == nil || i < cur.first) {
			cur, read = &read[0], read[1:]
		}
		if cur == nil || cur.err != nil || i < cur.first || i >= cur.first+uint64(len(cur.leaves)) {
			b, err := bundleAt(ctx, db, i)
			if err != nil {
				return nil, err
			}
			if b == nil || i >= b.first+uint64(len(b.leaves)) {
				return nil, missing(ctx, db, i)
			}
			if b.err != nil {
				return nil, fmt.Errorf("audit: entry %d is damaged", i)
			}
			cur = b
		}
		out[i] = cur.leaves[i-cur.first]
	}
	return out, nil
}

// missing is the error for entry i not found in the bundles: archived (a
// NotFound saying so), or missing from a damaged log.
func missing(ctx context.Context, q querier, i uint64) error {
	end, err := archivedEnd(ctx, q)
	if err != nil {
		return err
	}
	if i < end {
		return archivedError(i, end)
	}
	return fmt.Errorf("audit: entry %d is missing", i)
}
