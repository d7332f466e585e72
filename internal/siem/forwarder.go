package siem

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/storage"
)

// Options tune a Forwarder. Zero values take the defaults.
type Options struct {
	// Logger receives connection changes and failures (default: discard).
	Logger *slog.Logger
	// Clock stamps the cursor's updated_at (default: the system clock).
	Clock medguard.Clock
	// PollInterval is how often the log's head is read when no Notify
	// came, e.g. for entries appended by other servers (default 1 s).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed attempts to
	// reach the receiver, which doubles from one to the other, with jitter
	// (defaults 100 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// StandbyRetry is how often a server on standby tries to take over the
	// destination (PostgreSQL; default 5 s).
	StandbyRetry time.Duration
	// DialTimeout bounds connecting and the TLS handshake (default 10 s).
	DialTimeout time.Duration
	// WriteTimeout bounds writing one batch and its acknowledgement
	// (default 30 s).
	WriteTimeout time.Duration
	// MaxCheckpoints is how many checkpoints wait in memory for the
	// receiver; the oldest are dropped beyond it (default 64).
	MaxCheckpoints int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = medguard.SystemClock{}
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&o.PollInterval, time.Second)
	set(&o.MinBackoff, 100*time.Millisecond)
	set(&o.MaxBackoff, 30*time.Second)
	set(&o.StandbyRetry, 5*time.Second)
	set(&o.DialTimeout, 10*time.Second)
	set(&o.WriteTimeout, 30*time.Second)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.MaxCheckpoints <= 0 {
		o.MaxCheckpoints = 64
	}
	return o
}

// Status is a forwarder's state, for /metrics and the console.
type Status struct {
	Destination string // the destination's name (its cursor's key)
	// Active is true while this server forwards to the destination.
	Active bool
	// Standby is true while it waits because another server forwards to
	// the destination (PostgreSQL).
	Standby   bool
	Connected bool   // a connection to the receiver is open
	Cursor    uint64 // index of the next entry to send, as last read or saved
	Head      uint64 // the log's size when last read
	Lag       uint64 // Head - Cursor: entries not yet delivered
	Delivered uint64 // entries delivered by this server since it started
	// TLSVersion is the open connection's TLS version ("TLS 1.3"); empty
	// when not connected or over plain TCP.
	TLSVersion string
	// LastError is the last failure (connecting, writing, reading the
	// log), and LastErrorAt when it happened; they are kept after recovery.
	LastError   string
	LastErrorAt time.Time
	// LastDeliveredAt is when a batch was last acknowledged.
	LastDeliveredAt time.Time
	// Skipped counts entries passed over because the database no longer
	// held them (archived) when this destination reached them.
	Skipped uint64
	// CheckpointsQueued wait for the receiver; CheckpointsDropped were
	// dropped because too many were waiting.
	CheckpointsQueued  int
	CheckpointsDropped uint64
}

// Forwarder sends the audit log to one SIEM destination. Run does the work;
// Notify and Checkpoint may be called from any goroutine.
type Forwarder struct {
	db   *storage.DB
	cfg  Config
	opts Options
	tls  *tls.Config // nil for plain TCP
	host string      // the messages' HOSTNAME
	wake chan struct{}
	// read reads entries from the log (audit.ReadEntries; tests replace it).
	read func(ctx context.Context, start, end uint64) ([]audit.Stored, error)

	mu          sync.Mutex
	checkpoints []audit.Checkpoint // waiting to be sent, by size
	// transitionChecked: the latest transition checkpoint was looked for.
	transitionChecked bool
	status            Status
}

// New returns a forwarder to the destination cfg, reading the log in db
// (which must have the audit and siem schemas). It checks cfg and loads its
// TLS files, but does not connect: Run does.
func New(db *storage.DB, cfg Config, opts Options) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Forwarder{db: db, cfg: cfg, opts: opts.withDefaults(), host: cfg.Hostname, wake: make(chan struct{}, 1)}
	if f.host == "" {
		f.host = localHostname()
	}
	if cfg.Network == NetworkTLS {
		var err error
		if f.tls, err = cfg.tlsConfig(); err != nil {
			return nil, err
		}
	}
	f.read = func(ctx context.Context, start, end uint64) ([]audit.Stored, error) {
		return audit.ReadEntries(ctx, db, start, end)
	}
	f.status.Destination = cfg.Name
	return f, nil
}

// Notify tells the forwarder that entries were appended, so that it sends
// them now rather than at its next poll. It never blocks (wire it to
// audit.Options.OnBatch).
func (f *Forwarder) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// queueTransition queues, the first time this forwarder starts, the
// log's latest transition checkpoint (a rotation of its signing key,
// signed offline by "medguard keys rotate-audit-key", so no running
// server's checkpointer passed it on) unless the receiver already has
// entries beyond it (then it was sent before).
func (f *Forwarder) queueTransition(ctx context.Context, cursor uint64) {
	f.mu.Lock()
	done := f.transitionChecked
	f.transitionChecked = true
	f.mu.Unlock()
	if done {
		return
	}
	ts, err := audit.StoredTransitions(ctx, f.db)
	if err != nil {
		f.opts.Logger.Warn("siem: reading the log's key transitions", "destination", f.cfg.Name, "err", err)
		return
	}
	if len(ts) > 0 && ts[len(ts)-1].Size >= cursor {
		f.Checkpoint(ts[len(ts)-1])
	}
}

// Checkpoint queues a signed checkpoint for the receiver (wire it to
// audit.Checkpoints.OnCheckpoint). It is sent after every entry it covers,
// best effort: it waits in memory only, as the checkpoint is also kept in
// the database and in DATA/checkpoints.log.
func (f *Forwarder) Checkpoint(cp audit.Checkpoint) {
	f.mu.Lock()
	f.checkpoints = append(f.checkpoints, cp)
	if n := len(f.checkpoints) - f.opts.MaxCheckpoints; n > 0 {
		f.checkpoints = f.checkpoints[n:]
		f.status.CheckpointsDropped += uint64(n)
	}
	f.mu.Unlock()
	f.Notify()
}

// Status returns the forwarder's state.
func (f *Forwarder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.status
	s.CheckpointsQueued = len(f.checkpoints)
	if s.Head > s.Cursor {
		s.Lag = s.Head - s.Cursor
	}
	return s
}

// Run forwards until ctx ends. It takes the destination (on PostgreSQL
// waiting on standby while another server holds it), then sends the log
// from the cursor in batches of up to audit.MaxEntries entries, each
// written, acknowledged and then recorded by moving the cursor in one
// update. When the receiver cannot be reached or drops the connection, it
// tries again after a growing pause and resends from the cursor, so every
// entry arrives at least once and in index order. Run must not be called
// twice at once.
func (f *Forwarder) Run(ctx context.Context) {
	bo := newBackoff(f.opts.MinBackoff, f.opts.MaxBackoff)
	for {
		l, err := f.acquire(ctx)
		if err != nil {
			return
		}
		err = f.forward(ctx, l, bo)
		l.release()
		f.setActive(false)
		if ctx.Err() != nil {
			return
		}
		// The database failed (or the lock's connection did): wait, then
		// take the destination again and reload the cursor.
		f.failed(err)
		if !sleep(ctx, bo.next()) {
			return
		}
	}
}

// forward sends entries while this server holds l. It returns when ctx ends
// or the database fails; failures of the receiver it handles itself.
func (f *Forwarder) forward(ctx context.Context, l *lease, bo *backoff) error {
	cursor, err := f.loadCursor(ctx, l)
	if err != nil {
		return err
	}
	f.setActive(true)
	f.setCursor(cursor)
	f.queueTransition(ctx, cursor)
	f.opts.Logger.Info("siem: forwarding", "destination", f.cfg.Name, "cursor", cursor)
	var conn *link
	defer func() {
		if conn != nil {
			conn.close()
			f.setConnected(false, "")
		}
	}()
	poll := time.NewTicker(f.opts.PollInterval)
	defer poll.Stop()
	var buf []byte
	warnedAhead := false
	for {
		head, _, err := audit.HeadOf(ctx, f.db)
		if err != nil {
			return fmt.Errorf("siem: read the log's head: %w", err)
		}
		f.setHead(head)
		if cursor > head && !warnedAhead {
			// A database restored from an older backup: the entries past
			// its head were delivered before; wait for the log to pass.
			f.opts.Logger.Warn("siem: the cursor is past the log's head", "destination", f.cfg.Name, "cursor", cursor, "head", head)
			warnedAhead = true
		}
		if cursor >= head && !f.checkpointDue(cursor) {
			select {
			case <-ctx.Done():
				return nil
			case <-f.wake:
			case <-poll.C:
			}
			continue
		}
		if conn == nil {
			if conn, err = f.dial(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.failed(err)
				if !sleep(ctx, bo.next()) {
					return nil
				}
				continue
			}
			f.setConnected(true, conn.tlsVersion)
			f.opts.Logger.Info("siem: connected", "destination", f.cfg.Name, "address", f.cfg.Address, "protocol", cmp.Or(conn.tlsVersion, "plain TCP"))
		}
		entries, next, err := f.nextBatch(ctx, cursor, head)
		if err != nil {
			return err
		}
		cps := f.dueCheckpoints(next)
		if buf, err = f.frame(buf[:0], entries, cps); err != nil {
			return err
		}
		if err := conn.write(ctx, buf, f.opts.WriteTimeout); err != nil {
			idle := conn.delivered && errors.Is(err, errIdleClosed)
			conn.close()
			conn = nil
			f.setConnected(false, "")
			if ctx.Err() != nil {
				return nil
			}
			if idle {
				// The receiver closed a connection that had served it
				// well while it was idle, as some do: nothing was written
				// to it, so connect again at once.
				f.opts.Logger.Info("siem: the receiver closed an idle connection", "destination", f.cfg.Name)
				continue
			}
			f.failed(err)
			if !sleep(ctx, bo.next()) {
				return nil
			}
			continue
		}
		bo.reset()
		if next != cursor {
			if err := f.saveCursor(ctx, l, next); err != nil {
				// Delivered but not recorded: sent again after recovery.
				return err
			}
		}
		cursor = next
		f.delivered(cursor, len(entries), cps)
		if cap(buf) > 4<<20 {
			buf = nil // do not keep an outsized buffer after a burst
		}
	}
}

// nextBatch reads the entries to send from cursor (at most
// audit.MaxEntries) and returns them with the cursor after them.
//
// The log is append-only, but a retention job may one day archive its
// oldest entries out of the database. When the log reports the entries at
// the cursor NotFound, or returns entries starting past it, the forwarder
// skips ahead to the first stored entry and logs how many it skipped: they
// were archived before this destination received them. Any other failure —
// including a gap inside the log, which means tampering — stops forwarding
// until it is repaired, and shows in Status.
func (f *Forwarder) nextBatch(ctx context.Context, cursor, head uint64) ([]audit.Stored, uint64, error) {
	if cursor >= head {
		return nil, cursor, nil
	}
	entries, err := f.read(ctx, cursor, head)
	if medguard.IsKind(err, medguard.NotFound) || (err == nil && len(entries) == 0) {
		first, ferr := f.firstStored(ctx, cursor, head)
		if ferr != nil {
			return nil, cursor, ferr
		}
		f.skipped(cursor, first)
		if first >= head {
			return nil, head, nil
		}
		cursor = first
		entries, err = f.read(ctx, cursor, head)
	}
	if err != nil {
		return nil, cursor, fmt.Errorf("siem: read entries from %d: %w", cursor, err)
	}
	if len(entries) == 0 {
		return nil, cursor, fmt.Errorf("siem: the log has no entries from %d below its head %d", cursor, head)
	}
	if entries[0].Index > cursor {
		f.skipped(cursor, entries[0].Index)
	}
	return entries, entries[len(entries)-1].Index + 1, nil
}

// firstStored finds the first entry in [from, head) that the log still
// holds, assuming archiving removes a prefix of the log, by bisection.
func (f *Forwarder) firstStored(ctx context.Context, from, head uint64) (uint64, error) {
	lo, hi := from, head // entries below lo are gone; hi is stored or the head
	for lo < hi {
		mid := lo + (hi-lo)/2
		got, err := f.read(ctx, mid, mid+1)
		switch {
		case medguard.IsKind(err, medguard.NotFound) || (err == nil && (len(got) == 0 || got[0].Index != mid)):
			lo = mid + 1
		case err != nil:
			return 0, fmt.Errorf("siem: read entry %d: %w", mid, err)
		default:
			hi = mid
		}
	}
	return lo, nil
}

// frame appends the framed messages of entries, then of checkpoints, to buf.
func (f *Forwarder) frame(buf []byte, entries []audit.Stored, cps []audit.Checkpoint) ([]byte, error) {
	var msg []byte
	var err error
	for _, s := range entries {
		msg = appendEntry(msg[:0], f.host, s)
		if buf, err = appendFrame(buf, msg, f.cfg.Framing); err != nil {
			return nil, fmt.Errorf("siem: entry %d: %w", s.Index, err)
		}
	}
	for _, cp := range cps {
		msg = appendCheckpoint(msg[:0], f.host, cp, f.cfg.Framing == FramingLF)
		if buf, err = appendFrame(buf, msg, f.cfg.Framing); err != nil {
			return nil, fmt.Errorf("siem: checkpoint %d: %w", cp.Size, err)
		}
	}
	return buf, nil
}

// checkpointDue reports whether a queued checkpoint covers only entries
// before cursor, i.e. can be sent now.
func (f *Forwarder) checkpointDue(cursor uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.checkpoints, func(cp audit.Checkpoint) bool { return cp.Size <= cursor })
}

// dueCheckpoints returns the queued checkpoints that cover only entries
// before next, so that the receiver gets a checkpoint after its entries.
func (f *Forwarder) dueCheckpoints(next uint64) []audit.Checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var due []audit.Checkpoint
	for _, cp := range f.checkpoints {
		if cp.Size <= next {
			due = append(due, cp)
		}
	}
	return due
}

// delivered records an acknowledged batch: the new cursor, and the
// checkpoints sent with it, which leave the queue.
func (f *Forwarder) delivered(cursor uint64, entries int, sent []audit.Checkpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Cursor = cursor
	f.status.Delivered += uint64(entries)
	f.status.LastDeliveredAt = f.opts.Clock.Now()
	// Remove exactly the checkpoints sent: one queued during the write
	// waits for the next batch.
	f.checkpoints = slices.DeleteFunc(f.checkpoints, func(cp audit.Checkpoint) bool {
		return slices.ContainsFunc(sent, func(s audit.Checkpoint) bool { return s.Size == cp.Size })
	})
}

// skipped records that the entries [from, to) were passed over.
func (f *Forwarder) skipped(from, to uint64) {
	f.opts.Logger.Warn("siem: entries are no longer in the database; skipping them",
		"destination", f.cfg.Name, "from", from, "to", to)
	f.mu.Lock()
	f.status.Skipped += to - from
	f.mu.Unlock()
}

func (f *Forwarder) failed(err error) {
	f.opts.Logger.Warn("siem: forwarding failed", "destination", f.cfg.Name, "error", err.Error())
	f.mu.Lock()
	f.status.LastError = err.Error()
	f.status.LastErrorAt = f.opts.Clock.Now()
	f.mu.Unlock()
}

func (f *Forwarder) setActive(active bool) {
	f.mu.Lock()
	f.status.Active, f.status.Standby = active, false
	f.mu.Unlock()
}

func (f *Forwarder) setStandby() {
	f.mu.Lock()
	f.status.Active, f.status.Standby, f.status.Connected, f.status.TLSVersion = false, true, false, ""
	f.mu.Unlock()
}

func (f *Forwarder) setConnected(connected bool, tlsVersion string) {
	f.mu.Lock()
	f.status.Connected, f.status.TLSVersion = connected, tlsVersion
	f.mu.Unlock()
}

func (f *Forwarder) setCursor(cursor uint64) {
	f.mu.Lock()
	f.status.Cursor = cursor
	f.mu.Unlock()
}

func (f *Forwarder) setHead(head uint64) {
	f.mu.Lock()
	f.status.Head = head
	f.mu.Unlock()
}

// backoff is the wait between failed attempts: it doubles from min to max,
// and each wait is drawn from its upper half so that servers that lost the
// receiver together do not come back in step.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

// next returns the next wait.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// reset starts again from min after a success.
func (b *backoff) reset() { b.cur = 0 }
