package audit

import (
	"context"
	"database/sql"

	"medguard/internal/storage"
)

// On PostgreSQL the tables that grow with the log, audit_bundles and
// audit_index, are partitioned by range of entry index (migration 0005).
// The appender keeps the partitions ahead of the tree: when fewer than
// half a partition's entries remain before the end of the last one, it
// adds the next in a transaction of its own, before the batch's. An append
// never fails for want of a partition: if the next one could not be added
// ahead (another server raced it, a lock timed out) and the batch would
// cross the end, the batch's own transaction adds it.

// partitionSpan is how many entries each partition holds: at 100 M
// entries, a dozen partitions of 8.4 M index rows (about 1 GB with their
// indexes) and 131,072 bundles.
var partitionSpan uint64 = 1 << 23

// isPartitioned reports whether the log's tables are partitioned: on
// PostgreSQL, from migration 0005 on (a test may open a log on an older
// schema to migrate it).
func isPartitioned(ctx context.Context, db *storage.DB) (bool, error) {
	if db.Dialect != storage.Postgres {
		return false, nil
	}
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT to_regclass('audit_partitions') IS NOT NULL`).Scan(&ok)
	return ok, err
}

// partitionedEnd reads the end of the entries the partitions cover.
func partitionedEnd(ctx context.Context, q querier) (uint64, error) {
	var end sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT MAX(end_idx) FROM audit_partitions`).Scan(&end)
	return uint64(end.Int64), err
}

// addPartitions adds partitions until they cover the entries below need,
// and returns the end they cover.
func addPartitions(ctx context.Context, q interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, need uint64) (uint64, error) {
	end, err := partitionedEnd(ctx, q)
	for err == nil && end < need {
		var e int64
		err = q.QueryRowContext(ctx, `SELECT audit_add_partition($1)`, int64(partitionSpan)).Scan(&e)
		end = uint64(e)
	}
	return end, err
}

// keepPartitionsAhead makes sure, before a batch of n entries, that the
// partitions reach at least half a partition beyond it, adding one in a
// transaction of its own if not. A failure is not the batch's: it is
// retried before the next batch, and the batch adds what it needs itself.
func (l *Log) keepPartitionsAhead(ctx context.Context, n int) {
	if !l.partitioned {
		return
	}
	want := l.size + uint64(n) + partitionSpan/2
	if l.partitionedTo >= want {
		return
	}
	_ = l.db.InTx(ctx, func(tx *sql.Tx) error {
		// Wait for a lock only briefly: appends are waiting.
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		end, err := addPartitions(ctx, tx, want)
		if err == nil {
			l.partitionedTo = end
		}
		return err
	})
}

// partitionsFor makes sure, inside a batch's transaction, that the
// partitions cover the entries below end.
func (l *Log) partitionsFor(ctx context.Context, tx txn, end uint64) error {
	if !l.partitioned || l.partitionedTo >= end {
		return nil
	}
	got, err := addPartitions(ctx, tx, end)
	if err != nil {
		return err
	}
	l.partitionedTo = got
	return nil
}
