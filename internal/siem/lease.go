package siem

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/storage"
)

// lease is this server's right to forward to a destination, and the way to
// its cursor. On PostgreSQL it is a session advisory lock held on a
// dedicated connection, through which the cursor is also read and written:
// a cursor update that succeeds proves the lock is still held, and a lost
// connection both ends the lock and fails the next update. On SQLite one
// process owns the database and there is nothing to hold.
type lease struct {
	db   *storage.DB
	conn *sql.Conn // PostgreSQL only
}

// acquire returns the lease on the destination, waiting on standby (trying
// again every StandbyRetry) while another server holds it. It returns an
// error only when ctx ends.
func (f *Forwarder) acquire(ctx context.Context) (*lease, error) {
	if !f.db.Shared() {
		return &lease{db: f.db}, nil
	}
	for {
		l, held, err := f.tryLock(ctx)
		if held {
			return l, nil
		}
		if err == nil {
			f.setStandby()
		} else if ctx.Err() == nil {
			f.failed(err)
		}
		if !sleep(ctx, f.opts.StandbyRetry) {
			return nil, ctx.Err()
		}
	}
}

// tryLock takes the destination's advisory lock if it is free.
func (f *Forwarder) tryLock(ctx context.Context) (*lease, bool, error) {
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("siem: lock the destination: %w", err)
	}
	// The lock key covers the schema too, so that installations sharing a
	// PostgreSQL database in separate schemas do not block each other.
	var schema sql.NullString
	var held bool
	err = conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema)
	if err == nil {
		err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(schema.String, f.cfg.Name)).Scan(&held)
	}
	if err != nil || !held {
		conn.Close()
		if err != nil {
			err = fmt.Errorf("siem: lock the destination: %w", err)
		}
		return nil, false, err
	}
	return &lease{db: f.db, conn: conn}, true, nil
}

// lockKey is the advisory lock key of a destination.
func lockKey(schema, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("medguard/siem\x00" + schema + "\x00" + name))
	return int64(h.Sum64())
}

// release gives the lease up. On PostgreSQL the connection is discarded
// rather than returned to the pool, which ends its session and so its lock
// even when an unlock statement could not have run (a broken connection, an
// ended context).
func (l *lease) release() {
	if l.conn == nil {
		return
	}
	l.conn.Raw(func(any) error { return driver.ErrBadConn })
	l.conn.Close()
}

func (l *lease) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if l.conn != nil {
		return l.conn.QueryRowContext(ctx, query, args...)
	}
	return l.db.QueryRowContext(ctx, query, args...)
}

func (l *lease) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if l.conn != nil {
		return l.conn.ExecContext(ctx, query, args...)
	}
	return l.db.ExecContext(ctx, query, args...)
}

// loadCursor returns the destination's cursor, creating it (at the start of
// the log, or at its head for StartNow) if the destination is new.
func (f *Forwarder) loadCursor(ctx context.Context, l *lease) (uint64, error) {
	for range 2 {
		var next int64
		err := l.queryRow(ctx, `SELECT next_idx FROM siem_cursor WHERE destination = $1`, f.cfg.Name).Scan(&next)
		if err == nil {
			return uint64(next), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("siem: read the cursor: %w", err)
		}
		var start uint64
		if f.cfg.StartAt == StartNow {
			if start, _, err = audit.HeadOf(ctx, f.db); err != nil {
				return 0, fmt.Errorf("siem: read the log's head: %w", err)
			}
		}
		if _, err := l.exec(ctx, `INSERT INTO siem_cursor (destination, next_idx, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (destination) DO NOTHING`, f.cfg.Name, int64(start), medguard.Millis(f.opts.Clock.Now())); err != nil {
			return 0, fmt.Errorf("siem: create the cursor: %w", err)
		}
		f.opts.Logger.Info("siem: new destination", "destination", f.cfg.Name, "start", start)
	}
	return 0, errors.New("siem: the cursor vanished as it was created")
}

// saveCursor moves the destination's cursor to next.
func (f *Forwarder) saveCursor(ctx context.Context, l *lease, next uint64) error {
	res, err := l.exec(ctx, `UPDATE siem_cursor SET next_idx = $2, updated_at = $3 WHERE destination = $1`,
		f.cfg.Name, int64(next), medguard.Millis(f.opts.Clock.Now()))
	if err := storage.Affected(res, err, errors.New("the cursor row is gone")); err != nil {
		return fmt.Errorf("siem: save the cursor: %w", err)
	}
	return nil
}

// sleep waits for d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
