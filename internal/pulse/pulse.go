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
	"sync"
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

const query = `SELECT COALESCE((SELECT size FROM audit_head WHERE id = 1), 0),
	COALESCE((SELECT n FROM identity_epoch WHERE id = 1), 0)`

// readTimeout bounds one shared read: it runs for every waiter, so no
// single request's context may cancel it.
const readTimeout = 10 * time.Second

// Pulse shares reads of the counters among concurrent callers.
type Pulse struct {
	db *storage.DB

	mu      sync.Mutex
	running bool
	next    *flight // the read that starts when the running one ends
	reads   uint64  // reads made, for tests and metrics
	memoAge time.Duration
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
func (p *Pulse) Read(ctx context.Context) (Reading, error) {
	m, _ := ctx.Value(memoKey{}).(*memo)
	if m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ok && time.Since(m.at) < p.memoAge {
			return m.r, nil
		}
	}
	at := time.Now()
	r, err := p.read(ctx)
	if err == nil && m != nil {
		m.r, m.ok, m.at = r, true, at
	}
	return r, err
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

type memoKey struct{}

type memo struct {
	mu sync.Mutex
	ok bool
	r  Reading
	at time.Time // when the read was asked for
}

// Begin marks the start of a request: the readings its parts ask for are
// taken once, after this call, and shared among them.
func Begin(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &memo{})
}
