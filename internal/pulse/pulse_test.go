package pulse_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/pulse"
	"medguard/internal/storage"
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

// A request that allows it (Later) may be judged by memory at an epoch
// (Defer) and confirmed by its first reading, its own (Offer) or shared
// (Read, Confirm): any reading showing another epoch fails it with
// ErrStale, and once confirmed, later readings of a long request may move
// on. Without Later, or after a reading, nothing is deferred.
func TestDeferredSignInIsConfirmedByTheFirstReading(t *testing.T) {
	db := storagetest.Open(t, audit.Schema(), identity.Schema())
	p := pulse.New(db)
	pulse.SetMemoAge(p, 0) // every Read reads
	bump := func() {
		t.Helper()
		if _, err := db.ExecContext(context.Background(), `UPDATE identity_epoch SET n = n + 1 WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
	}
	now, err := p.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	epoch := now.IdentityEpoch

	if p.Defer(pulse.Begin(context.Background()), epoch) {
		t.Fatal("deferred in a request that did not allow it")
	}
	if p.Defer(context.Background(), epoch) {
		t.Fatal("deferred outside any request")
	}

	// Confirmed by a reading of its own statement.
	ctx := pulse.Later(pulse.Begin(context.Background()))
	if !p.Defer(ctx, epoch) || !pulse.Pending(ctx) {
		t.Fatal("not deferred")
	}
	if err := p.Offer(ctx, pulse.Reading{IdentityEpoch: epoch}, time.Now()); err != nil || pulse.Pending(ctx) {
		t.Fatalf("offer of the same epoch: %v, pending %v", err, pulse.Pending(ctx))
	}
	bump()
	if r, err := p.Read(ctx); err != nil || r.IdentityEpoch != epoch+1 {
		t.Fatalf("a confirmed request's later reading: %+v %v", r, err)
	}
	if p.Defer(ctx, epoch+1) {
		t.Fatal("deferred after a reading")
	}

	// Refused by a reading of its own showing another epoch, and by every
	// reading after it.
	ctx = pulse.Later(pulse.Begin(context.Background()))
	p.Defer(ctx, epoch)
	if err := p.Offer(ctx, pulse.Reading{IdentityEpoch: epoch + 1}, time.Now()); !errors.Is(err, pulse.ErrStale) {
		t.Fatalf("offer of a later epoch: %v", err)
	}
	if _, err := p.Read(ctx); !errors.Is(err, pulse.ErrStale) {
		t.Fatalf("read after a stale offer: %v", err)
	}
	if err := p.Confirm(ctx); !errors.Is(err, pulse.ErrStale) || !pulse.Pending(ctx) {
		t.Fatalf("confirm after a stale offer: %v, pending %v", err, pulse.Pending(ctx))
	}

	// Confirm reads when nothing has; a shared reading showing a change
	// refuses.
	ctx = pulse.Later(pulse.Begin(context.Background()))
	p.Defer(ctx, epoch+1)
	if err := p.Confirm(ctx); err != nil || pulse.Pending(ctx) {
		t.Fatalf("confirm at the current epoch: %v", err)
	}
	ctx = pulse.Later(pulse.Begin(context.Background()))
	p.Defer(ctx, epoch+1)
	bump()
	if err := p.Confirm(ctx); !errors.Is(err, pulse.ErrStale) {
		t.Fatalf("confirm after a change: %v", err)
	}
	if err := p.Confirm(pulse.Begin(context.Background())); err != nil {
		t.Fatalf("confirm of a request judged by a reading: %v", err)
	}
}

// A reading whose connection PostgreSQL ended (a restart, a failover: the
// pool learns it only by using the connection) is taken again on another,
// instead of failing every request waiting for it.
func TestReadOutlivesEndedConnections(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("PostgreSQL ends connections: set MEDGUARD_TEST_POSTGRES")
	}
	ctx := context.Background()
	named := storagetest.Named(t, storagetest.FreshSchema(t, dsn), "pulse")
	db, err := storage.Open(ctx, named, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []storage.Schema{audit.Schema(), identity.Schema()} {
		if err := db.Migrate(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	p := pulse.New(db)
	for round := 0; round < 3; round++ {
		if _, err := p.Read(ctx); err != nil {
			t.Fatalf("round %d, before: %v", round, err)
		}
		ended := storagetest.EndConnections(t, dsn, named)
		if ended == 0 {
			t.Fatal("no connection of the pulse's was ended")
		}
		if _, err := p.Read(ctx); err != nil {
			t.Fatalf("round %d, after %d connections ended: %v", round, ended, err)
		}
	}
}
