package audit

import (
	"sync"
	"sync/atomic"
	"time"
)

// recentSlots is how many of the entries it committed last a log keeps in
// memory for Recent: a few seconds of a busy server's entries.
const recentSlots = 8192

// recent keeps the entries this server committed last, by index, as they
// were made durable (a failed mutation's outcome included).
type recent struct {
	mu     sync.Mutex
	slots  [recentSlots]recentSlot
	flight atomic.Pointer[inflight] // the batch being committed
}

type recentSlot struct {
	index uint64 // the entry's index + 1 (0: empty)
	entry Entry
}

// keep remembers a batch committed from index first on.
func (r *recent) keep(first uint64, batch []*pending) {
	r.mu.Lock()
	for i, p := range batch {
		idx := first + uint64(i)
		r.slots[idx%recentSlots] = recentSlot{index: idx + 1, entry: *p.entry}
	}
	r.mu.Unlock()
}

// inflight is the batch the appender is committing, once its place in the
// tree is known: kept is closed when it is kept (or has failed, or moved).
type inflight struct {
	first, end uint64
	kept       chan struct{}
}

// committing says that the batch being committed goes at [first, end).
// Called again when a refused batch is written elsewhere.
func (r *recent) committing(first, end uint64) {
	if old := r.flight.Swap(&inflight{first: first, end: end, kept: make(chan struct{})}); old != nil {
		close(old.kept)
	}
}

// settled says that the batch being committed is kept, or failed.
func (r *recent) settled() {
	if old := r.flight.Swap(nil); old != nil {
		close(old.kept)
	}
}

// inflightWait bounds how long Recent waits for the batch being committed.
// A reading that counts the batch saw it committed: what is left is the
// appender's turn to keep it, which takes microseconds unless the machine
// is busy.
var inflightWait = 20 * time.Millisecond

// Recent returns the entries from start (before end) that this server
// committed itself and still keeps in memory, as far as they run without a
// gap: what another server wrote, or what was forgotten, must be read from
// the database (ReadEntries). Detection counts this server's own entries
// from here when a reading of the log's size runs ahead of the requests
// that will report them, instead of reading them back. A reading can also
// run ahead of the appender itself — the database has the batch, the
// appender has not kept it yet — so where the gap is the batch being
// committed, Recent waits for it to be kept.
func (l *Log) Recent(start, end uint64) []Stored {
	out := l.recent.get(start, end, nil)
	next := start + uint64(len(out))
	if next >= end {
		return out
	}
	if f := l.recent.flight.Load(); f != nil && next >= f.first && next < f.end {
		t := time.NewTimer(inflightWait)
		select {
		case <-f.kept:
		case <-t.C:
		}
		t.Stop()
		out = l.recent.get(next, end, out)
	}
	return out
}

// get appends to out the entries kept from start on, up to end or the
// first gap.
func (r *recent) get(start, end uint64, out []Stored) []Stored {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := start; i < end; i++ {
		s := &r.slots[i%recentSlots]
		if s.index != i+1 {
			break
		}
		e := s.entry
		out = append(out, Stored{Index: i, Entry: &e})
	}
	return out
}
