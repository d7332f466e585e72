package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PipelinedTx is a PostgreSQL transaction on one connection of the write
// pool whose writes can be queued and sent with its COMMIT, in one round
// trip (a pipeline of the extended protocol: the statements stay prepared).
// It is for a commit made under a lock that other servers wait for: the
// COMMIT's own round trip no longer adds to the time the lock is held.
// Queued writes are sent before anything else runs in the transaction, and
// at the latest with the COMMIT. Its BEGIN, too, goes with the first round
// trip: a transaction that reads one row (ReadRow) and then commits its
// writes takes two round trips in all.
type PipelinedTx struct {
	conn   *sql.Conn
	queued []queuedWrite
	begun  bool // BEGIN was answered
	done   bool
}

type queuedWrite struct {
	query string
	args  []any
}

// BeginPipelined begins a PipelinedTx (PostgreSQL only).
func (db *DB) BeginPipelined(ctx context.Context) (*PipelinedTx, error) {
	if db.Dialect != Postgres {
		return nil, errors.New("storage: pipelined transactions are PostgreSQL's")
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return nil, MapError(err)
	}
	return &PipelinedTx{conn: conn}, nil
}

// InPipelinedTx runs fn in a PipelinedTx and commits it, as InTx does a
// transaction of database/sql: rolled back if fn fails, errors mapped to
// medguard's kinds alike.
func (db *DB) InPipelinedTx(ctx context.Context, fn func(tx *PipelinedTx) error) error {
	tx, err := db.BeginPipelined(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return MapError(err)
	}
	return tx.Commit(ctx)
}

// QueryContext runs a query in the transaction, after the writes queued.
func (t *PipelinedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query of one row in the transaction, after the
// writes queued. (If one of them failed, the transaction is aborted and
// the query's Scan says so.) If the BEGIN could not be sent, the query is
// not run outside the transaction: its Scan fails (context canceled).
func (t *PipelinedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := t.flush(ctx); err != nil && !t.begun {
		done, cancel := context.WithCancel(ctx)
		cancel()
		ctx = done
	}
	return t.conn.QueryRowContext(ctx, query, args...)
}

// ExecContext runs a write in the transaction at once, after the writes
// queued.
func (t *PipelinedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.conn.ExecContext(ctx, query, args...)
}

// ReadRow runs a query of one row in the transaction, sent with the
// BEGIN and the writes queued, if any, in one round trip, and scans its
// row into dest; no row is sql.ErrNoRows. (If a queued write failed, the
// transaction is aborted and so is the query.)
func (t *PipelinedTx) ReadRow(ctx context.Context, query string, args []any, dest ...any) error {
	err := t.pipeline(ctx, pipelineEnd{query: query, args: args, dest: dest})
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return MapError(err)
}

// flush sends the BEGIN, if not sent yet, and the writes queued, if any,
// in one round trip.
func (t *PipelinedTx) flush(ctx context.Context) error {
	if t.begun && len(t.queued) == 0 {
		return nil
	}
	return MapError(t.pipeline(ctx, pipelineEnd{}))
}

// pipelineEnd is what a pipeline ends with after the queued writes: a
// statement whose command tag must be its own (tag: "COMMIT" —
// PostgreSQL answers a COMMIT in a failed transaction with ROLLBACK), or
// a query of one row scanned into dest, or nothing.
type pipelineEnd struct {
	tag        string
	query      string
	args, dest []any
}

// pipeline sends the BEGIN if not sent yet, the queued writes and then
// end, in one round trip, and reads their answers: the first error. The
// queue is empty after, whatever happened.
func (t *PipelinedTx) pipeline(ctx context.Context, end pipelineEnd) error {
	defer func() { t.queued = nil }()
	return t.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("storage: unexpected PostgreSQL connection %T", dc)
		}
		b := &pgx.Batch{}
		begin := !t.begun
		if begin {
			b.Queue("BEGIN")
		}
		for _, w := range t.queued {
			b.Queue(w.query, w.args...)
		}
		switch {
		case end.tag != "":
			b.Queue(end.tag)
		case end.query != "":
			b.Queue(end.query, end.args...)
		}
		res := sc.Conn().SendBatch(ctx, b)
		var err error
		if begin {
			_, err = res.Exec()
			t.begun = err == nil
		}
		for i := 0; i < len(t.queued) && err == nil; i++ {
			_, err = res.Exec()
		}
		if err == nil {
			switch {
			case end.tag != "":
				var tag pgconn.CommandTag
				if tag, err = res.Exec(); err == nil && tag.String() != end.tag {
					err = fmt.Errorf("storage: the transaction was rolled back (%s)", tag)
				}
			case end.query != "":
				err = res.QueryRow().Scan(end.dest...)
			}
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// Queue keeps a write to be sent with the COMMIT.
func (t *PipelinedTx) Queue(query string, args ...any) {
	t.queued = append(t.queued, queuedWrite{query, args})
}

// Commit sends the queued writes and the COMMIT together and reads their
// answers. Whatever fails, the transaction is over: a write refused or a
// COMMIT that answers anything but COMMIT (PostgreSQL rolled back) is an
// error and nothing of the transaction stays; a connection lost on the way
// leaves the outcome unknown, as for any commit whose answer never came.
func (t *PipelinedTx) Commit(ctx context.Context) error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	defer t.conn.Close()
	err := t.pipeline(ctx, pipelineEnd{tag: "COMMIT"})
	if err != nil {
		// The pipeline stopped at the failure, before its COMMIT.
		t.end(ctx)
	}
	return MapError(err)
}

// end rolls back whatever transaction the connection is in (none if its
// BEGIN was never answered), or gives the connection up.
func (t *PipelinedTx) end(ctx context.Context) error {
	return t.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return driver.ErrBadConn
		}
		if c := sc.Conn(); c.PgConn().TxStatus() != 'I' {
			if _, err := c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
				return driver.ErrBadConn
			}
		}
		return nil
	})
}

// Rollback ends the transaction without its queued writes.
func (t *PipelinedTx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	defer t.conn.Close()
	return MapError(t.end(context.Background()))
}
