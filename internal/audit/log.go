package audit

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"medguard"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the audit package's tables.
func Schema() storage.Schema { return storage.NewSchema("audit", migrations, "migrations") }

// hasher is the RFC 6962 hasher: leaf = SHA-256(0x00 ‖ leaf), node = SHA-256(0x01 ‖ l ‖ r).
var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// Mutation is a change to the database that must commit together with its
// audit entry: it runs inside the appender's transaction, under a savepoint,
// and is given the index its entry will have. If it fails, its changes are
// rolled back, the entry is still written with the failure as its outcome,
// and Append returns the mutation's error.
type Mutation func(ctx context.Context, tx *sql.Tx, index uint64) error

// Receipt says where an appended entry landed: its index, and the size and
// root of the tree that first included it.
type Receipt struct {
	Index    uint64
	TreeSize uint64
	Root     []byte
}

// Options tune the log.
type Options struct {
	// MaxBatch is the most entries committed in one transaction (default 1024).
	MaxBatch int
	// OnBatch, if set, is told the size and duration of every committed batch.
	OnBatch func(entries int, took time.Duration)
}

// Log is the audit log. Append may be called from many goroutines; one
// appender goroutine collects whatever entries are waiting and commits them
// in one transaction (group commit), so concurrent requests share the cost of
// the durable commit. On PostgreSQL several servers append to one tree: each
// batch locks the tree head, so the tree has no gaps and no forks.
type Log struct {
	db    *storage.DB
	opts  Options
	queue chan *pending
	done  chan struct{}

	mu     sync.RWMutex
	closed bool

	leafInserter, nodeInserter *inserter
	headRead, headWrite        *sql.Stmt

	// Appender state, touched only by the appender goroutine.
	size uint64
	rng  *compact.Range
}

type pending struct {
	entry  *Entry
	mutate Mutation
	done   chan result
}

type result struct {
	receipt Receipt
	err     error
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log is closed")

// Open starts the log over db (whose audit tables must be migrated).
func Open(ctx context.Context, db *storage.DB, opts Options) (*Log, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	l := &Log{db: db, opts: opts, queue: make(chan *pending, 4*opts.MaxBatch), done: make(chan struct{})}
	var err error
	if l.leafInserter, err = newInserter(ctx, db, insertLeafPrefix, leafColumns); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.nodeInserter, err = newInserter(ctx, db, insertNodePrefix, 3); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.headRead, err = db.PrepareWrite(ctx, `SELECT size, root FROM audit_head WHERE id = 1`+db.ForUpdate()); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.headWrite, err = db.PrepareWrite(ctx, `UPDATE audit_head SET size = $1, root = $2, updated_at = $3 WHERE id = 1`); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		size, _, err := readHead(ctx, tx)
		if err != nil {
			return err
		}
		return l.loadRange(ctx, tx, size)
	}); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	go l.run()
	return l, nil
}

// Append writes e to the log and returns once it is durable and included in
// the tree. If mutate is not nil it commits in the same transaction as e (see
// Mutation). Append waits for the commit even if ctx ends meanwhile, because
// a mutation may already be committed; callers must not answer before it
// returns.
func (l *Log) Append(ctx context.Context, e *Entry, mutate Mutation) (Receipt, error) {
	p := &pending{entry: e, mutate: mutate, done: make(chan result, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return Receipt{}, ErrClosed
	}
	l.queue <- p
	l.mu.RUnlock()
	r := <-p.done
	return r.receipt, r.err
}

// Close stops accepting entries, commits those already queued, and waits
// for the appender to finish.
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	l.leafInserter.close()
	l.nodeInserter.close()
	l.headRead.Close()
	l.headWrite.Close()
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	for p := range l.queue {
		batch := []*pending{p}
	collect:
		for len(batch) < l.opts.MaxBatch {
			select {
			case q, ok := <-l.queue:
				if !ok {
					break collect
				}
				batch = append(batch, q)
			default:
				break collect
			}
		}
		l.commit(batch)
	}
}

// commit writes one batch in one transaction and tells every waiter.
func (l *Log) commit(batch []*pending) {
	start := time.Now()
	ctx := context.Background()
	errs := make([]error, len(batch))
	var receipts []Receipt
	var newSize uint64
	var newRange *compact.Range
	err := l.db.InTx(ctx, func(tx *sql.Tx) error {
		var size64 int64
		var oldRoot []byte
		if err := tx.StmtContext(ctx, l.headRead).QueryRowContext(ctx).Scan(&size64, &oldRoot); err != nil {
			return err
		}
		size := uint64(size64)
		if size != l.size || l.rng == nil {
			// Another server appended since our last batch.
			if err := l.loadRange(ctx, tx, size); err != nil {
				return err
			}
		}
		rng, err := rangeFactory.NewRange(0, l.size, append([][]byte(nil), l.rng.Hashes()...))
		if err != nil {
			return err
		}
		leaves := make([][]byte, len(batch))
		for i, p := range batch {
			index := size + uint64(i)
			if p.mutate != nil {
				errs[i] = l.mutate(ctx, tx, p, index)
			}
			leaves[i] = p.entry.Leaf()
		}
		var nodes []node
		visit := func(id compact.NodeID, hash []byte) {
			nodes = append(nodes, node{level: id.Level, index: id.Index, hash: hash})
		}
		for _, leaf := range leaves {
			if err := rng.Append(hasher.HashLeaf(leaf), visit); err != nil {
				return err
			}
		}
		if err := l.insertLeaves(ctx, tx, size, batch, leaves); err != nil {
			return err
		}
		if err := l.insertNodes(ctx, tx, nodes); err != nil {
			return err
		}
		root, err := rng.GetRootHash(nil)
		if err != nil {
			return err
		}
		newSize = size + uint64(len(batch))
		if _, err := tx.StmtContext(ctx, l.headWrite).ExecContext(ctx, int64(newSize), root, time.Now().UnixMilli()); err != nil {
			return err
		}
		receipts = make([]Receipt, len(batch))
		for i := range batch {
			receipts[i] = Receipt{Index: size + uint64(i), TreeSize: newSize, Root: root}
		}
		newRange = rng
		return nil
	})
	if err != nil {
		// Nothing of this batch is in the log; reload the state next time.
		l.rng = nil
		werr := medguard.Wrap("audit.Append", err)
		for _, p := range batch {
			p.done <- result{err: werr}
		}
		return
	}
	l.size, l.rng = newSize, newRange
	if l.opts.OnBatch != nil {
		l.opts.OnBatch(len(batch), time.Since(start))
	}
	for i, p := range batch {
		p.done <- result{receipt: receipts[i], err: errs[i]}
	}
}

// mutate runs p's mutation under a savepoint; on failure it rolls the
// mutation back and records the failure as the entry's outcome.
func (l *Log) mutate(ctx context.Context, tx *sql.Tx, p *pending, index uint64) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT audit_mutation`); err != nil {
		return err
	}
	err := p.mutate(ctx, tx, index)
	if err != nil {
		err = storage.MapError(err)
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT audit_mutation`); rerr != nil {
			return errors.Join(err, rerr)
		}
		p.entry.Outcome = OutcomeOf(err)
		if p.entry.Decision == "" {
			p.entry.Decision = Allow
		}
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE SAVEPOINT audit_mutation`); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

type node struct {
	level uint
	index uint64
	hash  []byte
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readHead(ctx context.Context, q querier) (uint64, []byte, error) {
	var size int64
	var root []byte
	err := q.QueryRowContext(ctx, `SELECT size, root FROM audit_head WHERE id = 1`).Scan(&size, &root)
	return uint64(size), root, err
}

// loadRange reads the compact range of the tree of the given size: the
// hashes of the perfect subtrees that cover [0, size).
func (l *Log) loadRange(ctx context.Context, q querier, size uint64) error {
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := readNodes(ctx, q, ids)
	if err != nil {
		return err
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return err
	}
	l.size, l.rng = size, rng
	return nil
}

// readNodes reads the hashes of the given nodes, in order.
func readNodes(ctx context.Context, q querier, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var sb strings.Builder
	args := make([]any, 0, 2*len(ids))
	sb.WriteString(`SELECT level, idx, hash FROM audit_nodes WHERE `)
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		fmt.Fprintf(&sb, "(level = $%d AND idx = $%d)", 2*i+1, 2*i+2)
		args = append(args, int64(id.Level), int64(id.Index))
	}
	rows, err := q.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := map[compact.NodeID][]byte{}
	for rows.Next() {
		var level, index int64
		var hash []byte
		if err := rows.Scan(&level, &index, &hash); err != nil {
			return nil, err
		}
		found[compact.NewNodeID(uint(level), uint64(index))] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("audit: tree node level %d index %d is missing", id.Level, id.Index)
		}
		hashes[i] = h
	}
	return hashes, nil
}

const leafColumns = 11

// insertChunk is the most rows in one INSERT statement.
const insertChunk = 200

const (
	insertLeafPrefix = `INSERT INTO audit_leaves (idx, leaf, time_ms, actor, action, patient_id, target_type, target_id, decision, break_glass, request_id) VALUES `
	insertNodePrefix = `INSERT INTO audit_nodes (level, idx, hash) VALUES `
)

// fewRows is the most rows written one by one (with a statement prepared
// once) rather than in a multi-row INSERT, on SQLite. On PostgreSQL every
// statement is a round trip, so rows always go in one multi-row INSERT
// (pgx caches the prepared statement per text).
const fewRows = 8

// inserter writes rows: a few one at a time, many in chunks of multi-row
// INSERTs; single rows and full chunks use statements prepared once.
type inserter struct {
	db     *storage.DB
	prefix string
	cols   int
	one    *sql.Stmt
	full   *sql.Stmt
}

func newInserter(ctx context.Context, db *storage.DB, prefix string, cols int) (*inserter, error) {
	one, err := db.PrepareWrite(ctx, prefix+db.Placeholders(cols, 1))
	if err != nil {
		return nil, err
	}
	full, err := db.PrepareWrite(ctx, prefix+db.Placeholders(cols, insertChunk))
	if err != nil {
		one.Close()
		return nil, err
	}
	return &inserter{db: db, prefix: prefix, cols: cols, one: one, full: full}, nil
}

func (in *inserter) close() {
	in.one.Close()
	in.full.Close()
}

// insert writes rows of args (cols values each).
func (in *inserter) insert(ctx context.Context, tx *sql.Tx, args []any) error {
	rows := len(args) / in.cols
	if rows <= fewRows && in.db.Dialect == storage.SQLite {
		st := tx.StmtContext(ctx, in.one)
		for i := 0; i < rows; i++ {
			if _, err := st.ExecContext(ctx, args[i*in.cols:(i+1)*in.cols]...); err != nil {
				return err
			}
		}
		return nil
	}
	for lo := 0; lo < rows; lo += insertChunk {
		hi := min(lo+insertChunk, rows)
		chunk := args[lo*in.cols : hi*in.cols]
		var err error
		if hi-lo == insertChunk {
			_, err = tx.StmtContext(ctx, in.full).ExecContext(ctx, chunk...)
		} else {
			_, err = tx.ExecContext(ctx, in.prefix+in.db.Placeholders(in.cols, hi-lo), chunk...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) insertLeaves(ctx context.Context, tx *sql.Tx, first uint64, batch []*pending, leaves [][]byte) error {
	args := make([]any, 0, len(batch)*leafColumns)
	for i, p := range batch {
		e := p.entry
		args = append(args, int64(first)+int64(i), leaves[i], e.Time.UnixMilli(), e.Actor, e.Action,
			storage.NullString(e.PatientID), e.TargetType, e.TargetID, e.Decision, e.BreakGlass, e.RequestID)
	}
	return l.leafInserter.insert(ctx, tx, args)
}

func (l *Log) insertNodes(ctx context.Context, tx *sql.Tx, nodes []node) error {
	args := make([]any, 0, len(nodes)*3)
	for _, n := range nodes {
		args = append(args, int64(n.level), int64(n.index), n.hash)
	}
	return l.nodeInserter.insert(ctx, tx, args)
}
