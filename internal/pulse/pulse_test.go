package pulse_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/pulse"
	"medguard/internal/storage/storagetest"
)

// Whatever was committed before Read was called is in its reading, however
// many callers share reads: a shared read never began before a caller
// joined it.
func TestReadIsNeverOlderThanTheCall(t *testing.T) {
	db := storagetest.Open(t, audit.Schema(), identity.Schema())
	ctx := context.Background()
	p := pulse.New(db)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		calls int
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				var n int64
				if err := db.InTx(ctx, func(tx *sql.Tx) error {
					return tx.QueryRowContext(ctx, `UPDATE identity_epoch SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n)
				}); err != nil {
					t.Error(err)
					return
				}
				for j := 0; j < 3; j++ {
					r, err := p.Read(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if r.IdentityEpoch < n {
						t.Errorf("read %d after %d was committed", r.IdentityEpoch, n)
						return
					}
					mu.Lock()
					calls++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d calls answered by %d reads", calls, p.Reads())
}

// Within one request (Begin), every part judges by the first reading.
func TestRequestKeepsItsReading(t *testing.T) {
	db := storagetest.Open(t, audit.Schema(), identity.Schema())
	ctx := pulse.Begin(context.Background())
	p := pulse.New(db)
	pulse.SetMemoAge(p, time.Hour)
	first, err := p.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE identity_epoch SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	again, err := p.Read(ctx)
	if err != nil || again != first {
		t.Fatalf("same request: %+v then %+v (%v)", first, again, err)
	}
	next, err := p.Read(pulse.Begin(context.Background()))
	if err != nil || next.IdentityEpoch != first.IdentityEpoch+1 {
		t.Fatalf("next request: %+v after %+v (%v)", next, first, err)
	}
	if r, err := p.Read(context.Background()); err != nil || r.AuditSize != 0 {
		t.Fatalf("audit size of an empty log: %+v %v", r, err)
	}
}

// A request that runs longer than a moment reads again: nothing it judges
// late in its life is older than the memo's age.
func TestLongRequestReadsAgain(t *testing.T) {
	db := storagetest.Open(t, audit.Schema(), identity.Schema())
	ctx := pulse.Begin(context.Background())
	p := pulse.New(db)
	pulse.SetMemoAge(p, 20*time.Millisecond)
	first, err := p.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE identity_epoch SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // past the memo's age (a behaviour, not a timing measured)
	if r, err := p.Read(ctx); err != nil || r.IdentityEpoch != first.IdentityEpoch+1 {
		t.Fatalf("a later read: %+v (%v), first %+v", r, err, first)
	}
}
