package audit

import (
	"testing"
	"time"
)

// A reading of the log's size can run ahead of the appender: the database
// has the batch, the appender has not kept it yet. Recent then waits for
// that batch, and only for it: not for a gap the batch being committed does
// not fill (another server's entries), nor after a failed batch.
func TestRecentWaitsForTheBatchBeingCommitted(t *testing.T) {
	old := inflightWait
	inflightWait = time.Hour // a wrong wait hangs the test
	t.Cleanup(func() { inflightWait = old })
	l := &Log{}
	entry := func(actor string) *pending {
		return &pending{entry: &Entry{Time: time.Unix(1795422600, 0).UTC(), Actor: actor, Action: "record.read", PatientID: "pat00001",
			Decision: Allow, Outcome: Success}}
	}
	l.recent.keep(0, []*pending{entry("张伟")})

	// Entries 1 and 2 are committed; the appender keeps them a moment later.
	l.recent.committing(1, 3)
	go func() {
		time.Sleep(5 * time.Millisecond)
		l.recent.keep(1, []*pending{entry("李娜"), entry("王芳")})
		l.recent.settled()
	}()
	got := l.Recent(0, 3)
	if len(got) != 3 || got[1].Entry.Actor != "李娜" || got[2].Index != 2 {
		t.Fatalf("Recent(0, 3) while 1 and 2 were being kept: %d entries", len(got))
	}

	// The batch being committed goes at 10: the gap at 3 is not its.
	l.recent.committing(10, 12)
	if got := l.Recent(3, 5); len(got) != 0 {
		t.Fatalf("Recent(3, 5): %d entries", len(got))
	}
	if got := l.Recent(2, 5); len(got) != 1 {
		t.Fatalf("Recent(2, 5): %d entries", len(got))
	}
	// It was refused and went at 12 instead (another server took 10 and
	// 11): a wait for 10 ends, and nothing is kept there.
	done := make(chan []Stored)
	go func() { done <- l.Recent(10, 11) }()
	time.Sleep(5 * time.Millisecond)
	l.recent.committing(12, 14)
	if got := <-done; len(got) != 0 {
		t.Fatalf("Recent(10, 11) after the batch moved: %d entries", len(got))
	}
	// It failed: nothing kept, nothing waited for.
	l.recent.settled()
	if got := l.Recent(12, 14); len(got) != 0 {
		t.Fatalf("Recent(12, 14) after a failed batch: %d entries", len(got))
	}
}
