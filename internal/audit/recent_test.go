package audit_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"testing"

	"medguard/internal/audit"
	"medguard/internal/storage/storagetest"
)

// Recent gives back exactly what was committed — the same leaves the
// database holds, a failed mutation's outcome included — as far as it
// runs without a gap, and nothing that was not committed.
func TestRecentIsWhatWasCommitted(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	ctx := context.Background()
	var batch []*audit.Entry
	for i := 0; i < 5; i++ {
		e := entry(i)
		e.PatientID, e.ActorDepartment = "病人甲", "心内科"
		batch = append(batch, e)
	}
	if _, err := l.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	failed := entry(5)
	if _, err := l.Append(ctx, failed, func(context.Context, *sql.Tx, uint64) error { return errors.New("写入失败") }); err == nil {
		t.Fatal("a failing mutation succeeded")
	}
	size, _, err := audit.HeadOf(ctx, db)
	if err != nil || size != 6 {
		t.Fatalf("size %d %v", size, err)
	}
	stored, err := audit.ReadEntries(ctx, db, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	got := l.Recent(0, size+3)
	if len(got) != int(size) {
		t.Fatalf("recent: %d entries of %d", len(got), size)
	}
	for i, g := range got {
		if g.Index != uint64(i) || !bytes.Equal(g.Entry.Leaf(), stored[i].Entry.Leaf()) {
			t.Fatalf("entry %d: %s, stored %s", i, g.Entry.Leaf(), stored[i].Entry.Leaf())
		}
	}
	if got[5].Entry.Outcome == audit.Success {
		t.Fatal("the failed mutation's entry kept its success")
	}
	if r := l.Recent(2, 4); len(r) != 2 || r[0].Index != 2 {
		t.Fatalf("recent 2..4: %+v", r)
	}
	if r := l.Recent(size, size+5); len(r) != 0 {
		t.Fatalf("beyond the log: %+v", r)
	}
}

// Only the last entries are kept: what was forgotten (or another server
// wrote) is not there, and the caller reads it from the database.
func TestRecentForgetsTheOldest(t *testing.T) {
	db := storagetest.Open(t, audit.Schema())
	l := openLog(t, db)
	var batch []*audit.Entry
	for i := 0; i < 9000; i++ {
		batch = append(batch, entry(i))
	}
	if _, err := l.AppendBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if r := l.Recent(0, 9000); len(r) != 0 {
		t.Fatalf("entry 0 still kept after 9,000: %d", len(r))
	}
	if r := l.Recent(8999-8191, 9000); len(r) != 8192 {
		t.Fatalf("the last 8,192: %d", len(r))
	}
}
