package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
	// OnIndexError, if set, is told when the background indexer fails (the
	// next search retries).
	OnIndexError func(error)
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

	recent recent // the entries committed last (Recent)

	mu     sync.RWMutex
	closed bool

	// The search index's upkeep (see index.go).
	indexKick chan struct{}
	indexDone chan struct{}
	indexMu   sync.Mutex
	indexed   uint64 // entries known to be indexed (under indexMu)
	// indexedTo is what the appender knows is indexed: set when it
	// indexes a batch itself; 0 (unknown) otherwise.
	indexedTo atomic.Uint64

	indexInserter                               *inserter
	headRead, headWrite, bundleWrite, tileWrite *sql.Stmt
	partWrite, partsDrop                        *sql.Stmt // see writeTiles
	blockWrite                                  *sql.Stmt // see noteTimes

	// The batches committed: as one statement without a transaction
	// (PostgreSQL), and in a transaction under the head's lock; and the
	// one-statement commits the database refused (another server had
	// moved the head).
	statementCommits, txCommits, refusedStatements atomic.Uint64
	// How the tree was taken up again, and the index's end read under
	// the lock (CommitCounts).
	headRanges, tileRanges, indexReads atomic.Uint64
	// Batches tried again because their transaction failed before any of
	// them reached the database (a connection PostgreSQL had ended).
	retried atomic.Uint64
	// carry is a batch of AppendBatch that gather met: it goes next.
	// Appender only.
	carry *pending
	// overtaken: the last batch written under the lock found that another
	// server had appended since this one's previous batch. While servers
	// take turns like that, a one-statement commit would only be refused
	// (after waiting for the other's lock): batches go under the lock until
	// one finds the head where this server left it. Appender only.
	overtaken bool
	// doubtIndex: a batch's own index rows met rows already there (only
	// rows planted beyond the tree can be: see writeIndex). Until a batch
	// finds the index ending where the tree does, neither the head's word
	// nor this server's that the index is complete is taken: batches ask
	// the index, and the indexer (which skips rows already there) indexes
	// them. Appender only.
	doubtIndex bool

	// failing is set while the last commit failed (a full disk, a lost
	// database): /readyz answers 503 until a commit succeeds again.
	failing atomic.Bool

	// Appender state, touched only by the appender goroutine: the tree's
	// size, its compact range, and the partial tiles at its right edge.
	size uint64
	rng  *compact.Range
	edge map[tileKey][]byte
	// whole are the tiles this server made whole in its last commit:
	// their parts are deleted in the next one (see writeTiles).
	whole []tileKey
	// partitionedTo is the end of the entries the partitions are known to
	// cover (PostgreSQL; 0: not known, see partitions.go).
	partitionedTo uint64
	partitioned   bool // (fixed at Open)
}

type pending struct {
	entry  *Entry
	mutate Mutation
	done   chan result
	// leaf and hash are the entry's leaf bytes and leaf hash, computed by
	// the caller (in parallel) so the appender only writes.
	leaf, hash []byte
	// batch, if set, is a group of entries from AppendBatch, committed
	// together in order.
	batch []*pending
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
	l := &Log{db: db, opts: opts, queue: make(chan *pending, 4*opts.MaxBatch), done: make(chan struct{}),
		indexKick: make(chan struct{}, 1), indexDone: make(chan struct{})}
	var err error
	if l.indexInserter, err = newInserter(ctx, db, insertIndexPrefix, ` ON CONFLICT (idx) DO NOTHING`, indexColumns); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.blockWrite, err = db.PrepareWrite(ctx, blockUpsert(db.Dialect)); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.bundleWrite, err = db.PrepareWrite(ctx, `INSERT INTO audit_bundles (first_idx, leaves, count) VALUES ($1, $2, $3)`); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.tileWrite, err = db.PrepareWrite(ctx, `INSERT INTO audit_tiles (level, idx, hashes) VALUES ($1, $2, $3)
		ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.partWrite, err = db.PrepareWrite(ctx, `INSERT INTO audit_tile_parts (level, idx, first, hashes) VALUES ($1, $2, $3, $4)`); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.partsDrop, err = db.PrepareWrite(ctx, `DELETE FROM audit_tile_parts WHERE level = $1 AND idx = $2`); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.headRead, err = db.PrepareWrite(ctx, headReadQuery+db.ForUpdate()); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.headWrite, err = db.PrepareWrite(ctx, headUpdate); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		size, _, err := readHead(ctx, tx)
		if err != nil {
			return err
		}
		// The parts of tiles made whole by a server that stopped before
		// its next commit deleted them.
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_tile_parts WHERE EXISTS (SELECT 1 FROM audit_tiles t
			WHERE t.level = audit_tile_parts.level AND t.idx = audit_tile_parts.idx AND length(t.hashes) = $1)`, tileWidth*hashSize); err != nil {
			return err
		}
		return l.loadRange(ctx, tx, size)
	}); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.partitioned, err = isPartitioned(ctx, db); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	l.keepPartitionsAhead(ctx, 0)
	go l.run()
	go l.runIndexer()
	l.kickIndexer()
	return l, nil
}

// headUpdate moves the head to a new size and root, with the compact
// range at that size (migration 0007) and how far the index is complete
// (migration 0008: the new size when the batch was indexed in its
// transaction onto a complete index, else 0).
const headUpdate = `UPDATE audit_head SET size = $1, root = $2, updated_at = $3, range_size = $1, range_hashes = $4,
	indexed_size = $5 WHERE id = 1`

// Failing reports whether the last commit of the log failed: nothing can
// be answered while entries cannot be made durable.
func (l *Log) Failing() bool { return l.failing.Load() }

// Append writes e to the log and returns once it is durable and included in
// the tree. If mutate is not nil it commits in the same transaction as e (see
// Mutation). Append waits for the commit even if ctx ends meanwhile, because
// a mutation may already be committed; callers must not answer before it
// returns.
func (l *Log) Append(ctx context.Context, e *Entry, mutate Mutation) (Receipt, error) {
	p := &pending{entry: e, mutate: mutate, done: make(chan result, 1)}
	p.seal()
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

// AppendBatch writes many entries at once (an import, a replay) and returns
// when all are durable. They are committed in as few transactions as
// MaxBatch allows, in order, interleaved with nothing else.
func (l *Log) AppendBatch(ctx context.Context, entries []*Entry) ([]Receipt, error) {
	ps := make([]*pending, len(entries))
	done := make(chan result, len(entries))
	for i, e := range entries {
		ps[i] = &pending{entry: e, done: done}
	}
	// Make the leaves on every core before queueing them.
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(ps); i += workers {
				ps[i].seal()
			}
		}(w)
	}
	wg.Wait()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	l.queue <- &pending{batch: ps}
	l.mu.RUnlock()
	out := make([]Receipt, 0, len(entries))
	var firstErr error
	for range entries {
		r := <-done
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		out = append(out, r.receipt)
	}
	slices.SortFunc(out, func(a, b Receipt) int { return cmp.Compare(a.Index, b.Index) })
	return out, firstErr
}

// Close stops accepting entries, commits those already queued, and waits
// for the appender to finish.
// Closing twice is harmless.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	close(l.indexKick)
	<-l.indexDone
	l.CatchUp(context.Background())
	l.indexInserter.close()
	for _, st := range []*sql.Stmt{l.headRead, l.headWrite, l.bundleWrite, l.tileWrite, l.partWrite, l.partsDrop, l.blockWrite} {
		st.Close()
	}
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	for {
		p := l.carry
		l.carry = nil
		if p == nil {
			var ok bool
			if p, ok = <-l.queue; !ok {
				return
			}
		}
		if p.batch != nil {
			// A batch goes alone, in transactions of up to MaxBatch.
			for lo := 0; lo < len(p.batch); lo += l.opts.MaxBatch {
				l.commit(p.batch[lo:min(lo+l.opts.MaxBatch, len(p.batch))], false)
			}
			continue
		}
		l.commit(l.gather([]*pending{p}, false), true)
	}
}

// gather adds to batch the single entries queued by now, up to MaxBatch. A
// batch of AppendBatch met on the way waits in carry, to go next, alone;
// so does, with onlyPure, an entry with a mutation (it goes next, first of
// its batch).
func (l *Log) gather(batch []*pending, onlyPure bool) []*pending {
	for l.carry == nil && len(batch) < l.opts.MaxBatch {
		select {
		case q, ok := <-l.queue:
			if !ok {
				return batch
			}
			if q.batch != nil || onlyPure && q.mutate != nil {
				l.carry = q
				return batch
			}
			batch = append(batch, q)
		default:
			return batch
		}
	}
	return batch
}

// commit writes one batch in one transaction and tells every waiter. With
// more, entries queued while it waited for another server's turn on the
// head's lock join it.
func (l *Log) commit(batch []*pending, more bool) {
	start := time.Now()
	ctx := context.Background()
	l.keepPartitionsAhead(ctx, len(batch))
	errs := make([]error, len(batch))
	var w *written
	var err error
	if l.alone(batch) {
		// One statement, no lock taken beforehand: it writes nothing unless
		// the head is still where this server left it.
		// If the database refused it (another server moved the head), or
		// it needs a tile not in memory, the batch is written under the
		// lock, from what is stored. An error on the way (a connection
		// lost) leaves it unknown whether the statement was applied: the
		// batch fails, as a transaction whose commit went unanswered does.
		w, err = l.writeBatch(ctx, nil, l.size, false, batch, errs)
		if refused := storage.Refused(err); refused || errors.Is(err, errNotAlone) {
			if refused {
				l.refusedStatements.Add(1)
			}
			l.recent.settled() // its place is unknown until the lock is taken
			w, err, l.rng, l.edge = nil, nil, nil, nil
		}
	}
	if w != nil && err == nil {
		l.statementCommits.Add(1)
	}
	if w == nil && err == nil {
		for try := 0; ; try++ {
			err = l.underLock(ctx, &w, &batch, &errs, more)
			// A connection PostgreSQL ended (a restart, a failover) is
			// known dead only once used: a batch that failed before any of
			// it reached the database goes again, on another connection.
			var u unsent
			if err == nil || try == unsentRetries || l.db.Dialect != storage.Postgres || !errors.As(err, &u) || !storage.Unreachable(err) {
				break
			}
			l.retried.Add(1)
		}
		if err == nil {
			l.txCommits.Add(1)
		}
	}
	l.failing.Store(err != nil)
	if err != nil {
		// Nothing of this batch is in the log; reload the state next time.
		l.recent.settled()
		l.rng, l.edge, l.partitionedTo = nil, nil, 0
		if storage.IsConflict(err) {
			l.doubtIndex = true
			l.indexedTo.Store(0)
		}
		werr := medguard.Wrap("audit.Append", err)
		for _, p := range batch {
			p.done <- result{err: werr}
		}
		return
	}
	l.recent.keep(w.receipts[0].Index, batch)
	l.recent.settled()
	l.size, l.rng, l.edge, l.whole = w.size, w.rng, w.edge, w.whole
	if w.inline {
		l.indexedTo.Store(w.size)
	} else {
		l.kickIndexer()
	}
	if l.opts.OnBatch != nil {
		l.opts.OnBatch(len(batch), time.Since(start))
	}
	for i, p := range batch {
		p.done <- result{receipt: w.receipts[i], err: errs[i]}
	}
}

// unsentRetries is how many times a batch whose transaction failed before
// any of it reached the database is tried again.
const unsentRetries = 3

// unsent is an error met before anything of a batch reached the database:
// at its transaction's BEGIN or the head's read. Nothing of it was written.
type unsent struct{ error }

func (u unsent) Unwrap() error { return u.error }

// underLock commits the batch in a transaction under the tree head's lock
// (turn): on PostgreSQL a batch without mutations in a pipelined one, its
// write statement sent with the COMMIT.
func (l *Log) underLock(ctx context.Context, w **written, batch *[]*pending, errs *[]error, more bool) error {
	if l.db.Dialect == storage.Postgres && pure(*batch) {
		return l.db.InPipelinedTx(ctx, func(tx *storage.PipelinedTx) error {
			var err error
			*w, *batch, *errs, err = l.turn(ctx, tx, *batch, *errs, more)
			return err
		})
	}
	begun := false
	err := l.db.InTx(ctx, func(tx *sql.Tx) error {
		begun = true
		var err error
		*w, *batch, *errs, err = l.turn(ctx, tx, *batch, *errs, more)
		return err
	})
	if err != nil && !begun {
		return unsent{err}
	}
	return err
}

// turn writes batch in tx, under the tree head's lock, which it takes
// first: from the head as it finds it, taking the tree up from what
// another server left if one appended since this server's last batch.
// With more, entries queued while it waited for the lock join the batch
// (only entries without mutations when tx cannot run them: a
// PipelinedTx). It returns the batch as written and its errors.
func (l *Log) turn(ctx context.Context, tx txn, batch []*pending, errs []error, more bool) (*written, []*pending, []error, error) {
	var size64 int64
	var oldRoot, rangeHashes []byte
	var rangeSize, indexedSize sql.NullInt64
	dest := []any{&size64, &oldRoot, &rangeSize, &rangeHashes, &indexedSize}
	var err error
	if t, ok := tx.(*sql.Tx); ok {
		err = t.StmtContext(ctx, l.headRead).QueryRowContext(ctx).Scan(dest...)
	} else {
		// With the transaction's BEGIN, in one round trip.
		err = tx.(*storage.PipelinedTx).ReadRow(ctx, headReadQuery+l.db.ForUpdate(), nil, dest...)
	}
	if err != nil {
		return nil, batch, errs, unsent{err}
	}
	size := uint64(size64)
	// Whoever moved the head last says whether the index was complete then.
	indexed := indexedSize.Valid && uint64(indexedSize.Int64) == size && !l.doubtIndex
	l.overtaken = size != l.size
	if size != l.size || l.rng == nil {
		// Another server appended since our last batch: the range it left
		// with the head, or else the one in the tiles.
		if !l.rangeFromHead(size, rangeSize, rangeHashes) {
			if err := l.loadRange(ctx, tx, size); err != nil {
				return nil, batch, errs, err
			}
		}
	}
	if more && l.overtaken {
		// Entries that came while this server waited for its turn (another
		// server's batch and its sync) take this turn rather than wait for
		// the next. (Only then: on SQLite there is no other server, and
		// taking more there made the commit loop slower, 5,307 / 5,406 →
		// 4,910 / 5,075 reads/s.)
		_, sqlTx := tx.(*sql.Tx)
		batch = l.gather(batch, !sqlTx)
		errs = append(errs, make([]error, len(batch)-len(errs))...)
	}
	if err := l.partitionsFor(ctx, tx, size+uint64(len(batch))); err != nil {
		return nil, batch, errs, err
	}
	w, err := l.writeBatch(ctx, tx, size, indexed, batch, errs)
	return w, batch, errs, err
}

// pure reports whether no entry of batch carries a mutation.
func pure(batch []*pending) bool {
	for _, p := range batch {
		if p.mutate != nil {
			return false
		}
	}
	return true
}

// txn is a transaction a batch is written in: database/sql's, or on
// PostgreSQL a storage.PipelinedTx, whose last write goes with its COMMIT.
type txn interface {
	querier
	execer
}

// sqliteStmt is st, prepared on SQLite's writer, in tx (always a
// database/sql transaction there).
func sqliteStmt(ctx context.Context, tx txn, st *sql.Stmt) *sql.Stmt {
	return tx.(*sql.Tx).StmtContext(ctx, st)
}

// headReadQuery reads the tree's head, to be locked (ForUpdate).
const headReadQuery = `SELECT size, root, range_size, range_hashes, indexed_size FROM audit_head WHERE id = 1`

// CommitCounts are the batches a server has committed, by how.
type CommitCounts struct {
	// Statement: as one statement without a transaction (PostgreSQL, when
	// nothing stood in the way).
	Statement uint64
	// Transaction: in a transaction under the head's lock (every batch on
	// SQLite; on PostgreSQL a batch with mutations, and batches while
	// another server appends between this one's).
	Transaction uint64
	// Refused: one-statement commits the database refused because another
	// server had moved the head (the batch then went under the lock).
	Refused uint64
	// RangeFromHead and RangeFromTiles: how the tree was taken up again
	// under the lock after another server's batches — from the range
	// stored with the head, or read from the tiles (as at Open, and for a
	// head moved by a server of an earlier version).
	RangeFromHead, RangeFromTiles uint64
	// IndexReads: batches under the lock that asked the search index how
	// far it goes, because the head did not say it was complete (moved by
	// a batch indexed later, or by a server of an earlier version).
	IndexReads uint64
	// Unsent: batches tried again because their transaction failed, on a
	// connection PostgreSQL had ended, before any of them reached it.
	Unsent uint64
}

// Commits counts the batches committed so far.
func (l *Log) Commits() CommitCounts {
	return CommitCounts{l.statementCommits.Load(), l.txCommits.Load(), l.refusedStatements.Load(),
		l.headRanges.Load(), l.tileRanges.Load(), l.indexReads.Load(), l.retried.Load()}
}

// written is what a batch's commit changed of the log.
type written struct {
	receipts []Receipt
	size     uint64
	rng      *compact.Range
	edge     map[tileKey][]byte
	whole    []tileKey
	inline   bool
}

// errNotAlone stops a batch that cannot be written as one statement: it
// is written under the head's lock instead.
var errNotAlone = errors.New("audit: the batch needs the head's lock")

// alone reports whether batch may be committed as one statement without a
// transaction (PostgreSQL): no entry carries a mutation (those run under
// savepoints in a transaction), no other server is appending between this
// one's batches (overtaken), this server knows the tree (its size, range
// and the partitions ahead) and the index has caught up (and is not in
// doubt: only a batch under the lock clears that). Whether the
// head is still where this server left it is checked by the statement.
func (l *Log) alone(batch []*pending) bool {
	if l.db.Dialect != storage.Postgres || l.overtaken || l.rng == nil || l.indexedTo.Load() != l.size || l.doubtIndex ||
		(l.partitioned && l.partitionedTo < l.size+uint64(len(batch))) {
		return false
	}
	for _, p := range batch {
		if p.mutate != nil {
			return false
		}
	}
	return true
}

// writeBatch writes batch as the entries from size on: in tx, or — with
// tx nil, when alone allows — as one statement of its own that changes
// nothing unless the head's size is still size. indexed says that the
// head, read in tx, shows the index complete up to size.
func (l *Log) writeBatch(ctx context.Context, tx txn, size uint64, indexed bool, batch []*pending, errs []error) (*written, error) {
	l.recent.committing(size, size+uint64(len(batch)))
	rng, err := rangeFactory.NewRange(0, l.size, append([][]byte(nil), l.rng.Hashes()...))
	if err != nil {
		return nil, err
	}
	leaves := make([][]byte, len(batch))
	var sp *savepoints
	for i, p := range batch {
		index := size + uint64(i)
		if p.mutate != nil {
			if sp == nil {
				sp = &savepoints{tx: tx.(*sql.Tx)} // (never in a PipelinedTx: see pure)
			}
			errs[i] = l.mutate(ctx, sp, p, index)
		}
		if errs[i] != nil {
			p.seal() // the failure changed the entry's outcome
		}
		leaves[i] = p.leaf
	}
	if sp != nil {
		if err := sp.end(ctx); err != nil {
			return nil, err
		}
	}
	// The new hashes at tile-bottom levels (0, 8, 16, …), by tile, and
	// where in its tile each tile's first new hash goes.
	grown := map[tileKey][]byte{}
	starts := map[tileKey]int{}
	var order []tileKey
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level%tileHeight != 0 {
			return
		}
		k, at, _ := tileOf(id)
		if _, ok := grown[k]; !ok {
			order = append(order, k)
			starts[k] = at
		}
		grown[k] = append(grown[k], hash...)
	}
	for _, p := range batch {
		if err := rng.Append(p.hash, visit); err != nil {
			return nil, err
		}
	}
	// On PostgreSQL the writes go as one statement with the head's update
	// (pgWrites); on SQLite each runs at once.
	var pg execer = tx
	writes := &pgWrites{}
	if l.db.Dialect == storage.Postgres {
		pg = writes
	}
	if err := l.writeBundles(ctx, tx, pg, size, leaves); err != nil {
		return nil, err
	}
	edge, whole, err := l.writeTiles(ctx, tx, pg, grown, starts, order)
	if err != nil {
		return nil, err
	}
	// When the index has caught up, index the batch here, from the entries
	// in hand: one transaction instead of two, and no leaf read back and
	// parsed again. Otherwise the indexer catches up.
	inline := indexed || l.indexedTo.Load() == size && !l.doubtIndex
	if !inline && tx != nil {
		l.indexReads.Add(1)
		wm, err := indexWatermark(ctx, tx)
		if err != nil {
			return nil, err
		}
		inline = wm == size
		l.doubtIndex = l.doubtIndex && !inline
	}
	if inline {
		rows := make(indexRows, 0, len(batch))
		for i, p := range batch {
			e := p.entry
			// The index holds what the leaf says (which Verify checks).
			rows = append(rows, indexRow{idx: int64(size) + int64(i), ms: e.Time.UnixMilli(),
				actor: leafText(e.Actor), action: leafText(e.Action), patient: leafText(e.PatientID)})
		}
		if err := l.writeIndex(ctx, tx, pg, size, rows, false); err != nil {
			return nil, err
		}
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	newSize := size + uint64(len(batch))
	rangeHashes := bytes.Join(rng.Hashes(), nil)
	now := time.Now().UnixMilli()
	var indexedSize int64 // (the index is complete up to newSize only inline)
	if inline {
		indexedSize = int64(newSize)
	}
	switch {
	case tx == nil:
		// The head moves only from size; the statement fails, writing
		// nothing, if another server moved it first (its bundle at size
		// conflicts, or the head's update finds no row: 1 / 0).
		writes.ExecContext(ctx, headUpdate+` AND size = $6 RETURNING 1`, int64(newSize), root, now, rangeHashes, indexedSize, int64(size))
		writes.ExecContext(ctx, `SELECT 1 / count(*) FROM `+writes.lastName())
		if err := writes.flushAlone(ctx, l.db); err != nil {
			return nil, err
		}
	case l.db.Dialect == storage.Postgres:
		writes.ExecContext(ctx, headUpdate, int64(newSize), root, now, rangeHashes, indexedSize)
		if err := writes.flush(ctx, tx); err != nil {
			return nil, err
		}
	default:
		if _, err := sqliteStmt(ctx, tx, l.headWrite).ExecContext(ctx, int64(newSize), root, now, rangeHashes, indexedSize); err != nil {
			return nil, err
		}
	}
	w := &written{size: newSize, rng: rng, edge: edge, whole: whole, inline: inline, receipts: make([]Receipt, len(batch))}
	for i := range batch {
		w.receipts[i] = Receipt{Index: size + uint64(i), TreeSize: newSize, Root: root}
	}
	return w, nil
}

// seal makes the pending entry's leaf bytes and leaf hash.
func (p *pending) seal() {
	// The leaf is made after the RFC 6962 leaf prefix, so that its hash,
	// SHA-256(0x00 ‖ leaf), needs no copy.
	buf := append(make([]byte, 0, 1+p.entry.leafSize()), rfc6962.RFC6962LeafHashPrefix)
	buf = p.entry.appendLeaf(buf)
	sum := sha256.Sum256(buf)
	p.leaf, p.hash = buf[1:], sum[:]
}

// savepoints gives each mutation of a batch a savepoint of its own, so
// that a failed one is undone alone and the batch goes on. Between two
// mutations the last one's savepoint is released and the next one's begun
// in one call (on PostgreSQL one round trip: a multi-statement simple
// query).
type savepoints struct {
	tx   *sql.Tx
	open bool
}

// begin starts the savepoint of the next mutation.
func (s *savepoints) begin(ctx context.Context) error {
	q := `SAVEPOINT audit_mutation`
	if s.open {
		q = `RELEASE SAVEPOINT audit_mutation; SAVEPOINT audit_mutation`
	}
	s.open = true
	_, err := s.tx.ExecContext(ctx, q)
	return err
}

// end releases the last mutation's savepoint, if there is one.
func (s *savepoints) end(ctx context.Context) error {
	if !s.open {
		return nil
	}
	s.open = false
	_, err := s.tx.ExecContext(ctx, `RELEASE SAVEPOINT audit_mutation`)
	return err
}

// mutate runs p's mutation under a savepoint; on failure it rolls the
// mutation back and records the failure as the entry's outcome.
func (l *Log) mutate(ctx context.Context, sp *savepoints, p *pending, index uint64) error {
	if err := sp.begin(ctx); err != nil {
		return err
	}
	err := p.mutate(ctx, sp.tx, index)
	if err != nil {
		err = storage.MapError(err)
		if _, rerr := sp.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT audit_mutation`); rerr != nil {
			return errors.Join(err, rerr)
		}
		p.entry.Outcome = OutcomeOf(err)
		if p.entry.Decision == "" {
			p.entry.Decision = Allow
		}
	}
	return err
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
	l.tileRanges.Add(1)
	ids := compact.RangeNodes(0, size, nil)
	// The tiles that hold the range's nodes are the partial tiles at the
	// right edge, the ones the next batch grows: one read gives both, and
	// a batch written after another server's (the turns servers take under
	// the head's lock) does not read them again.
	tiles, err := readTiles(ctx, q, tilesHolding(ids), true)
	if err != nil {
		return err
	}
	hashes, err := nodesIn(tiles, ids)
	if err != nil {
		return err
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return err
	}
	l.size, l.rng, l.edge = size, rng, edgeOf(tiles, size)
	return nil
}

// rangeFromHead takes the tree of the given size from the range stored
// with the head, if it is that size's (a server of an earlier version
// moves the head without it), keeping of the tiles in memory those still
// at the edge. It reports whether it did.
func (l *Log) rangeFromHead(size uint64, rangeSize sql.NullInt64, hashes []byte) bool {
	n := len(compact.RangeNodes(0, size, nil))
	if !rangeSize.Valid || uint64(rangeSize.Int64) != size || len(hashes) != n*hashSize {
		return false
	}
	rng, err := rangeFactory.NewRange(0, size, splitHashes(hashes))
	if err != nil {
		return false
	}
	l.size, l.rng, l.edge = size, rng, edgeOf(l.edge, size)
	l.headRanges.Add(1)
	return true
}

// edgeOf returns those of tiles that are the partial tiles at the right
// edge of a tree of the given size, whole up to it: the tiles its next
// batch grows. (A tile that ends elsewhere is left out: writeTiles reads
// it again if it must.)
func edgeOf(tiles map[tileKey][]byte, size uint64) map[tileKey][]byte {
	edge := map[tileKey][]byte{}
	for level := uint(0); size>>(tileHeight*level) > 0; level++ {
		n := size >> (tileHeight * level) // the nodes at this tile level's bottom
		k := tileKey{level: level, index: n / tileWidth}
		if t, ok := tiles[k]; ok && uint64(len(t)) == n%tileWidth*hashSize {
			edge[k] = t
		}
	}
	return edge
}

const indexColumns = 5

// maxBundle is the most leaves stored in one row of audit_bundles. A commit
// of more (an import) is stored in several, so that reading one entry — a
// search result — never reads more than this many leaves.
const maxBundle = 64

// chunkRows are the sizes of the multi-row INSERTs the inserter prepares,
// largest first; the last is one row. Rows go in as few of them as fit,
// greedily: 37 rows are 32 + 5 × 1.
var chunkRows = []int{200, 32, 8, 1}

const insertIndexPrefix = `INSERT INTO audit_index (idx, time_ms, actor, action, patient_id) VALUES `

// inserter writes rows through multi-row INSERTs prepared once, one per
// size of chunkRows. (It prepared the INSERT of any other number of rows
// anew each time: 7 % of a request's commit's CPU on SQLite. It cannot
// prepare them on demand: a commit holds the only write connection.)
type inserter struct {
	cols  int
	stmts []*sql.Stmt // by chunkRows
}

func newInserter(ctx context.Context, db *storage.DB, prefix, suffix string, cols int) (*inserter, error) {
	in := &inserter{cols: cols}
	for _, n := range chunkRows {
		st, err := db.PrepareWrite(ctx, prefix+db.Placeholders(cols, n)+suffix)
		if err != nil {
			in.close()
			return nil, err
		}
		in.stmts = append(in.stmts, st)
	}
	return in, nil
}

func (in *inserter) close() {
	for _, st := range in.stmts {
		st.Close()
	}
}

// insert writes rows of args (cols values each).
func (in *inserter) insert(ctx context.Context, tx txn, args []any) error {
	rows, done := len(args)/in.cols, 0
	for k, n := range chunkRows {
		for rows-done >= n {
			if _, err := sqliteStmt(ctx, tx, in.stmts[k]).ExecContext(ctx, args[done*in.cols:(done+n)*in.cols]...); err != nil {
				return err
			}
			done += n
		}
	}
	return nil
}

// writeBundles stores leaves, the entries from index first on, in bundles
// of up to maxBundle: on SQLite one prepared INSERT a bundle, on PostgreSQL
// one INSERT of them all (arrays unnested: one round trip).
func (l *Log) writeBundles(ctx context.Context, tx txn, pg execer, first uint64, leaves [][]byte) error {
	n := (len(leaves) + maxBundle - 1) / maxBundle
	firsts, blobs, counts := make([]int64, 0, n), make([][]byte, 0, n), make([]int32, 0, n)
	for i := 0; i < len(leaves); i += maxBundle {
		part := leaves[i:min(i+maxBundle, len(leaves))]
		firsts, blobs, counts = append(firsts, int64(first)+int64(i)), append(blobs, encodeBundle(part)), append(counts, int32(len(part)))
	}
	if l.db.Dialect == storage.Postgres {
		_, err := pg.ExecContext(ctx, `INSERT INTO audit_bundles (first_idx, leaves, count)
			SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::int[])`, firsts, blobs, counts)
		return err
	}
	st := sqliteStmt(ctx, tx, l.bundleWrite)
	for k := range firsts {
		if _, err := st.ExecContext(ctx, firsts[k], blobs[k], counts[k]); err != nil {
			return err
		}
	}
	return nil
}

// indexRow is one row of the search index: the searched fields of entry
// idx as its leaf holds them.
type indexRow struct {
	idx, ms                int64
	actor, action, patient string
}

type indexRows []indexRow

// writeIndex writes the index rows of the entries from first on (rows in
// order of index, without gaps) and widens their blocks' time spans. On
// PostgreSQL the rows go in one INSERT of unnested arrays, one round trip;
// on SQLite in multi-row INSERTs prepared once.
//
// readBack says the rows were read back from leaves by the indexer, which
// skips a row already there (written meanwhile by another server's
// indexer, or by a server of an earlier version). A batch's own rows are
// of entries no one else can have indexed: they are not in the tree until
// the batch commits. On PostgreSQL those go in without the conflict check,
// whose speculative insertion was a fifth of a batch's time
// (AppendBatch/tx=10000: 48,400–48,700 → 59,000–60,400 entries/s); a row
// planted beyond the tree then refuses the batch, and the next ones go
// through the indexer (see commit).
func (l *Log) writeIndex(ctx context.Context, tx txn, pg execer, first uint64, rows indexRows, readBack bool) error {
	times := make([]int64, len(rows))
	for i, r := range rows {
		times[i] = r.ms
	}
	if l.db.Dialect == storage.Postgres {
		idxs := make([]int64, len(rows))
		actors, actions, patients := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
		for i, r := range rows {
			idxs[i], actors[i], actions[i], patients[i] = r.idx, r.actor, r.action, r.patient
		}
		q := insertIndexPrefix[:len(insertIndexPrefix)-len("VALUES ")] +
			`SELECT i, t, a, c, NULLIF(p, '') FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(i, t, a, c, p)`
		if readBack {
			q += ` ON CONFLICT (idx) DO NOTHING`
		}
		if _, err := pg.ExecContext(ctx, q, idxs, times, actors, actions, patients); err != nil {
			return err
		}
	} else {
		args := make([]any, 0, len(rows)*indexColumns)
		for _, r := range rows {
			args = append(args, r.idx, r.ms, r.actor, r.action, storage.NullString(r.patient))
		}
		if err := l.indexInserter.insert(ctx, tx, args); err != nil {
			return err
		}
	}
	return l.noteTimes(ctx, tx, pg, first, times)
}

// writeTiles stores the new bottom-row hashes of the tiles in order,
// reading a tile at the right edge only when it is not cached. A tile made
// whole is written to audit_tiles; otherwise only the hashes added go, as a
// part (audit_tile_parts) — a request's commit of a few entries no longer
// rewrites the 8 KiB tile it grows. The parts of the tiles made whole by the
// last commit are deleted (a commit later: the trigger that allows it must
// see the whole tile, and on PostgreSQL the writes are one statement, whose
// parts do not see each other's rows). It returns the new cache of partial
// tiles and the tiles made whole. starts says where each tile's first new
// hash goes: a tile the batch begins (at 0) has nothing stored to read, and
// a cached tile must end where the batch continues it.
func (l *Log) writeTiles(ctx context.Context, tx txn, pg execer, grown map[tileKey][]byte, starts map[tileKey]int, order []tileKey) (map[tileKey][]byte, []tileKey, error) {
	edge := make(map[tileKey][]byte, len(l.edge)+len(order))
	for k, v := range l.edge {
		edge[k] = v
	}
	var missing []tileKey
	unread := map[tileKey]bool{}
	for _, k := range order {
		cached, ok := edge[k]
		switch {
		case ok && len(cached) == starts[k]*hashSize:
		case !ok && starts[k] == 0:
			// Begun by this batch: on PostgreSQL it no longer makes the
			// commit of every 256th entry go under the head's lock.
			edge[k] = nil
		case starts[k]+len(grown[k])/hashSize < tileWidth:
			// Grown by another server since: this batch adds its part
			// after theirs without reading them (the head's size says
			// where the tile ends), and forgets the tile.
			delete(edge, k)
			unread[k] = true
		default:
			// Made whole by this batch: the row holds all of it.
			delete(edge, k)
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 && tx == nil {
		return nil, nil, errNotAlone // a tile this server has not read
	}
	if len(missing) > 0 {
		stored, err := readTiles(ctx, tx, missing, true)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range missing {
			edge[k] = stored[k] // nil for a tile not yet begun
		}
	}
	var full, parts tileRows // rows of audit_tiles, of audit_tile_parts
	var madeWhole []tileKey
	for _, k := range order {
		if unread[k] {
			parts.add(k, starts[k], grown[k])
			continue
		}
		old := len(edge[k])
		hashes := append(append(make([]byte, 0, old+len(grown[k])), edge[k]...), grown[k]...)
		switch {
		case len(hashes) > tileWidth*hashSize:
			return nil, nil, fmt.Errorf("audit: tile level %d index %d overflows", k.level, k.index)
		case len(hashes) == tileWidth*hashSize:
			full.add(k, 0, hashes)
			madeWhole = append(madeWhole, k)
			delete(edge, k) // whole: never written again
		default:
			parts.add(k, old/hashSize, grown[k])
			edge[k] = hashes
		}
	}
	var drop tileRows
	for _, k := range l.whole {
		drop.add(k, 0, nil)
	}
	if l.db.Dialect == storage.Postgres {
		// One statement each for them all (order holds each tile once).
		if len(drop.levels) > 0 {
			pg.ExecContext(ctx, `DELETE FROM audit_tile_parts WHERE (level, idx) IN (SELECT * FROM unnest($1::int[], $2::bigint[]))`,
				drop.levels, drop.idxs)
		}
		if len(full.levels) > 0 {
			pg.ExecContext(ctx, `INSERT INTO audit_tiles (level, idx, hashes) SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])
				ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, full.levels, full.idxs, full.hashes)
		}
		if len(parts.levels) > 0 {
			pg.ExecContext(ctx, `INSERT INTO audit_tile_parts (level, idx, first, hashes)
				SELECT * FROM unnest($1::int[], $2::bigint[], $3::int[], $4::bytea[])`, parts.levels, parts.idxs, parts.firsts, parts.hashes)
		}
		return edge, madeWhole, nil
	}
	for i := range drop.levels {
		if _, err := sqliteStmt(ctx, tx, l.partsDrop).ExecContext(ctx, drop.levels[i], drop.idxs[i]); err != nil {
			return nil, nil, err
		}
	}
	for i := range full.levels {
		if _, err := sqliteStmt(ctx, tx, l.tileWrite).ExecContext(ctx, full.levels[i], full.idxs[i], full.hashes[i]); err != nil {
			return nil, nil, err
		}
	}
	for i := range parts.levels {
		if _, err := sqliteStmt(ctx, tx, l.partWrite).ExecContext(ctx, parts.levels[i], parts.idxs[i], parts.firsts[i], parts.hashes[i]); err != nil {
			return nil, nil, err
		}
	}
	return edge, madeWhole, nil
}

// tileRows are rows of audit_tiles or audit_tile_parts, column by column
// (PostgreSQL takes them as arrays).
type tileRows struct {
	levels []int32
	idxs   []int64
	firsts []int32
	hashes [][]byte
}

func (r *tileRows) add(k tileKey, first int, hashes []byte) {
	r.levels, r.idxs = append(r.levels, int32(k.level)), append(r.idxs, int64(k.index))
	r.firsts, r.hashes = append(r.firsts, int32(first)), append(r.hashes, hashes)
}
