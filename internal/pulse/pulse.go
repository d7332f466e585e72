// Package pulse reads the two counters of the shared database that tell a
// server whether anything it keeps in memory may be out of date: the audit
// log's size (every change to the hospital's data is an audit entry, so
// entries another server wrote show as a larger log) and the identity
// epoch (a counter that the database itself raises, by trigger, whenever a
// user, a role, a department, an API key or a session's end changes).
//
// Several servers on one PostgreSQL share these counters; a cache that
// checks the epoch of a reading taken after its request began cannot miss a
// deactivation, a freeze or a role change committed before that request, on
// any server. Reading them costs one round trip; the Pulse shares it: at
// most one read is in flight, and every caller waiting when it starts is
// answered by it. A caller never gets a reading that began before its own
// call, so sharing changes nothing that a read of its own would have told it.
package pulse

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/storage"
)

// Reading is the shared database's counters at one moment.
type Reading struct {
	// AuditSize is the number of entries in the audit log.
	AuditSize uint64
	// IdentityEpoch changes whenever anything a signed-in principal is
	// made of changes (see the identity migrations' triggers).
	IdentityEpoch int64
}

const query = `SELECT ` + Query

// readTimeout bounds one shared read: it runs for every waiter, so no
// single request's context may cancel it.
const readTimeout = 10 * time.Second

// readRetries is how many times a reading that found its connection ended
// is taken again (each on another connection of the pool).
const readRetries = 3

// Pulse shares reads of the counters among concurrent callers.
type Pulse struct {
	db *storage.DB

	mu      sync.Mutex
	running bool
	next    *flight // the read that starts when the running one ends
	reads   uint64  // reads made, for tests and metrics
	memoAge time.Duration

	deferred atomic.Uint64 // sign-ins judged by memory (Defer)
	stale    atomic.Uint64 // of those, refused by their reading (ErrStale)
}

type flight struct {
	done chan struct{}
	r    Reading
	err  error
}

// New returns the pulse of db.
func New(db *storage.DB) *Pulse { return &Pulse{db: db, memoAge: memoAge} }

// memoAge is how long a request's reading serves its later parts: a
// request that runs longer (an export screening operation after operation)
// reads again, so that nothing it judges is older than this.
const memoAge = 50 * time.Millisecond

// Read returns a reading that began after Read was called. Within a
// request that carries a memo (Begin), the first reading is kept and given
// to the later Reads of the same request for memoAge, so that its parts
// (sign-in, detection) judge by the same moment at the cost of one read.
// In a request whose sign-in was judged by memory (Defer), a reading whose
// identity epoch is not the one deferred to fails with ErrStale.
func (p *Pulse) Read(ctx context.Context) (Reading, error) {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ok && time.Since(m.at) < p.memoAge {
			return m.r, p.check(m)
		}
	}
	at := time.Now()
	r, err := p.read(ctx)
	if err == nil && m != nil {
		m.r, m.ok, m.at = r, true, at
		err = p.check(m)
	}
	return r, err
}

// ErrStale ends a request whose sign-in was judged by a session kept in
// memory (Defer) when the reading that was to confirm it shows that users,
// roles, departments, keys or sessions changed since: the request has done
// nothing yet and is answered again from the start, its sign-in read from
// the database (see web's serve).
var ErrStale = errors.New("pulse: the identity epoch moved since the session in memory was judged")

// Later lets the request of ctx judge its sign-in by a session kept in
// memory before any reading (Defer), to be confirmed by the first reading
// it takes — one its own first query may bring (Pending, Offer). Only a
// route whose every disclosure passes the gate (which confirms first:
// gate.Gate's Confirm) may allow it.
func Later(ctx context.Context) context.Context {
	if m, _ := ctx.Value(memoKey{}).(*memo); m != nil {
		m.mu.Lock()
		m.later = true
		m.mu.Unlock()
	}
	return ctx
}

// Defer reports whether the request of ctx may be judged by what was kept
// in memory at identity epoch epoch, without a reading now: only in a
// request that allows it (Later) and has no reading yet. The first reading
// the request takes must then show the same epoch, or it fails with
// ErrStale.
func (p *Pulse) Defer(ctx context.Context, epoch int64) bool {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.later || m.ok || (m.deferred && m.expect != epoch) {
		// (a reading taken, confirmed or not, is what judges now)
		return false
	}
	if !m.deferred {
		m.deferred, m.expect = true, epoch
		p.deferred.Add(1)
	}
	return true
}

// Pending reports whether the request of ctx was judged by memory and no
// reading has confirmed it yet (none taken, or one that refused it).
func Pending(ctx context.Context) bool {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deferred
}

// Confirm takes the reading that confirms a request judged by memory, if
// it has none yet: nothing may be decided for it before (the gate calls
// this first).
func (p *Pulse) Confirm(ctx context.Context) error {
	if !Pending(ctx) {
		return nil
	}
	_, err := p.Read(ctx)
	return err
}

// Query is a statement's columns that take a reading, in Scan's order
// (AuditSize, IdentityEpoch): a query of the request's own that began after
// the request did may carry them and Offer what they say.
const Query = `COALESCE((SELECT size FROM audit_head WHERE id = 1), 0),
	COALESCE((SELECT n FROM identity_epoch WHERE id = 1), 0)`

// Offer gives the request of ctx a reading taken by one of its own
// statements, sent at at (after the request began): it becomes the
// request's reading if it has none, and fails with ErrStale as Read does.
func (p *Pulse) Offer(ctx context.Context, r Reading, at time.Time) error {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ok {
		m.r, m.ok, m.at = r, true, at
	}
	return p.check(m)
}

func (p *Pulse) read(ctx context.Context) (Reading, error) {
	p.mu.Lock()
	f := p.next
	if f == nil {
		f = &flight{done: make(chan struct{})}
		p.next = f
	}
	if !p.running {
		p.launch()
	}
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.r, f.err
	case <-ctx.Done():
		return Reading{}, ctx.Err()
	}
}

// launch starts the next flight; called with mu held. Every caller that
// joined it did so before this moment.
func (p *Pulse) launch() {
	f := p.next
	p.next, p.running = nil, true
	p.reads++
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		var size, epoch int64
		err := p.db.QueryRowContext(ctx, query).Scan(&size, &epoch)
		// A connection PostgreSQL ended (a restart, a failover) is known
		// dead only once used: the reading, which changes nothing, is
		// taken again on another, a few times, rather than failing every
		// request waiting for it.
		for try := 0; try < readRetries && storage.Unreachable(err) && ctx.Err() == nil; try++ {
			err = p.db.QueryRowContext(ctx, query).Scan(&size, &epoch)
		}
		cancel()
		f.r, f.err = Reading{AuditSize: uint64(size), IdentityEpoch: epoch}, medguard.Wrap("pulse", err)
		close(f.done)
		p.mu.Lock()
		p.running = false
		if p.next != nil {
			p.launch()
		}
		p.mu.Unlock()
	}()
}

// Reads is the number of reads of the database made so far.
func (p *Pulse) Reads() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads
}

// Deferred is the number of sign-ins judged by memory so far (Defer), and
// stale how many of them their reading refused (answered again by web).
func (p *Pulse) Deferred() (deferred, stale uint64) { return p.deferred.Load(), p.stale.Load() }

type memoKey struct{}

type memo struct {
	mu sync.Mutex
	ok bool
	r  Reading
	at time.Time // when the read was asked for

	later    bool  // the request may defer its sign-in's reading (Later)
	deferred bool  // it did (Defer): every reading must show expect
	expect   int64 // the identity epoch the sign-in was judged at
	refused  bool  // a reading showed another (counted once)
}

// check fails a request judged at an identity epoch its first reading does
// not show; once one does, the sign-in stands confirmed and later readings
// of a long request may move on. Called with m.mu held, m.ok set.
func (p *Pulse) check(m *memo) error {
	if m.deferred {
		if m.r.IdentityEpoch != m.expect {
			if !m.refused {
				m.refused = true
				p.stale.Add(1)
			}
			return ErrStale
		}
		m.deferred = false
	}
	return nil
}

// Begin marks the start of a request: the readings its parts ask for are
// taken once, after this call, and shared among them.
func Begin(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{})
}
