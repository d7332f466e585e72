package audit

import "sync"

// recentSlots is how many of the entries it committed last a log keeps in
// memory for Recent: a few seconds of a busy server's entries.
const recentSlots = 8192

// recent keeps the entries this server committed last, by index, as they
// were made durable (a failed mutation's outcome included).
type recent struct {
	mu    sync.Mutex
	slots [recentSlots]recentSlot
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

// Recent returns the entries from start (before end) that this server
// committed itself and still keeps in memory, as far as they run without a
// gap: what another server wrote, or what was forgotten, must be read from
// the database (ReadEntries). Detection counts this server's own entries
// from here when a reading of the log's size runs ahead of the requests
// that will report them, instead of reading them back.
func (l *Log) Recent(start, end uint64) []Stored {
	r := &l.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Stored
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
