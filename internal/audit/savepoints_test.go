package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"medguard"
	"medguard/internal/storage/storagetest"
)

// Several mutations in one batch each run under a savepoint of their own:
// one that fails — refused by the database, or failing after it wrote —
// is undone alone, its entry logged with the failure, and the mutations
// before and after it commit with their entries.
func TestFailedMutationInABatchIsUndoneAlone(t *testing.T) {
	db := storagetest.Open(t, Schema())
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE notes (id TEXT PRIMARY KEY, audit_index BIGINT)`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var batches []int
	l, err := Open(ctx, db, Options{OnBatch: func(n int, _ time.Duration) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	note := func(id string) Mutation {
		return func(ctx context.Context, tx *sql.Tx, index uint64) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO notes (id, audit_index) VALUES ($1, $2)`, id, int64(index))
			return err
		}
	}
	entry := func(i int) *Entry {
		return &Entry{Time: time.Unix(1795422600, 0).UTC(), Actor: "张伟", Action: "record.update", TargetID: fmt.Sprintf("病历%d", i),
			PatientID: "pat00001", Decision: Allow, Outcome: Success}
	}

	// The first mutation holds the appender until the other four are
	// queued: they go together in the next batch.
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, entry(0), func(ctx context.Context, tx *sql.Tx, index uint64) error {
			close(started)
			<-release
			return note("甲")(ctx, tx, index)
		})
		first <- err
	}()
	boom := errors.New("boom")
	muts := []Mutation{
		note("乙"),
		note("甲"), // a duplicate: refused by the database
		func(ctx context.Context, tx *sql.Tx, index uint64) error { // writes, then fails
			if err := note("半")(ctx, tx, index); err != nil {
				return err
			}
			return boom
		},
		note("丁"),
	}
	errs := make([]error, len(muts))
	<-started
	var wg sync.WaitGroup
	for i, m := range muts {
		// In order: each queued before the next.
		for len(l.queue) < i {
			time.Sleep(time.Millisecond)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Append(ctx, entry(i+1), m)
		}()
	}
	for len(l.queue) < len(muts) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if errs[0] != nil || !medguard.IsKind(errs[1], medguard.Conflict) || !errors.Is(errs[2], boom) || errs[3] != nil {
		t.Fatalf("the mutations' errors: %v", errs)
	}
	mu.Lock()
	if !slices.Equal(batches, []int{1, 4}) {
		t.Fatalf("batches %v, want [1 4]", batches)
	}
	mu.Unlock()
	rows, err := db.QueryContext(ctx, `SELECT id, audit_index FROM notes ORDER BY audit_index`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		var idx int64
		if err := rows.Scan(&id, &idx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprintf("%s@%d", id, idx))
	}
	if want := []string{"甲@0", "乙@1", "丁@4"}; !slices.Equal(ids, want) {
		t.Fatalf("notes %v, want %v", ids, want)
	}
	got, err := l.Entries(ctx, 0, 5)
	if err != nil || len(got) != 5 {
		t.Fatalf("%d entries %v", len(got), err)
	}
	for i, want := range []string{Success, Success, Conflict, Failed, Success} {
		if got[i].Entry.Outcome != want {
			t.Errorf("entry %d outcome %s, want %s", i, got[i].Entry.Outcome, want)
		}
	}
}
