package backup_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"medguard/internal/backup"
)

// probe writes numbered rows into a table of its own in a data directory's
// database while the stream ships it (as the server's writer does: no
// checkpoint of its own, Litestream owns the WAL, and every write in a
// BEGIN IMMEDIATE transaction: a deferred one that reads, then writes, is
// refused at once with SQLITE_BUSY when Litestream's own lock transaction
// committed in between — the busy timeout does not apply to it).
type probe struct {
	db *sql.DB
	n  int
}

func openProbe(t *testing.T, data string) *probe {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "medguard.db")+"?_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS stream_probe (n INTEGER PRIMARY KEY, note TEXT)`); err != nil {
		t.Fatal(err)
	}
	return &probe{db: db}
}

func (p *probe) write(t *testing.T, k int) {
	t.Helper()
	for range k {
		p.n++
		if err := p.insert("探针行，不含病人资料"); err != nil {
			t.Fatal(err)
		}
	}
}

// insert writes one row in its own immediate transaction. A write that
// SQLite refuses as busy without waiting (seen once in CI, under full load,
// right after a generation's rotation, despite the busy timeout) is tried
// again a few times: the probe stands for a client, which retries a
// refused write; what the test checks is that every row written is
// shipped and restored.
func (p *probe) insert(note string) error {
	var err error
	for try := 0; try < 5; try++ {
		if err = p.insertOnce(note); err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func (p *probe) insertOnce(note string) error {
	tx, err := p.db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO stream_probe (note) VALUES (?)`, note); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func restoredRows(t *testing.T, dir string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "medguard.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM stream_probe`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeClock is the schedule's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pause makes the next write's time differ from a moment just taken (the
// stream's times are in milliseconds); it orders, it measures nothing.
func pause() { time.Sleep(5 * time.Millisecond) }

// TestGenerationRotatesAndPrunes drives the serve schedule with a fake
// clock on a directory target: a full backup starts a new stream
// generation (the old one sealed whole, the new one sealed at once); a
// restore --at a moment of the old generation and of the new one gives
// exactly the rows shipped by then, and a writer busy during the rotation
// loses nothing; when the retention has passed, the old generations and
// their seals are deleted (audited backup.prune), never the current one.
func TestGenerationRotatesAndPrunes(t *testing.T) {
	rotationAndPruning(t, dirTarget(t))
}

// TestGenerationRotatesAndPrunesOnS3 is the same with a directory and a
// real S3 server (versitygw) at once; restores come from S3.
func TestGenerationRotatesAndPrunesOnS3(t *testing.T) {
	url, getenv := startVersityGW(t)
	s3, err := backup.OpenTarget(url, getenv)
	if err != nil {
		t.Fatal(err)
	}
	rotationAndPruning(t, s3, dirTarget(t))
}

func rotationAndPruning(t *testing.T, targets ...backup.Target) {
	f := newFixture(t)
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	copyDir(t, f.data, data)
	r, _ := backup.ParseRecipient(f.recipient)
	clock := &fakeClock{t: time.Now().UTC()}
	var recMu sync.Mutex
	var records []string
	sc := backup.NewScheduler(backup.Schedule{DataDir: data, Targets: targets, Recipient: r, Signer: f.signer, Continuous: true,
		FullEvery: 24 * time.Hour, IncrementalEvery: 15 * time.Minute, KeepDaily: 2, KeepMonthly: 0, Now: clock.Now,
		Record: func(action, id string, err error) {
			recMu.Lock()
			defer recMu.Unlock()
			if err != nil {
				t.Errorf("%s %s: %v", action, id, err)
			}
			records = append(records, action+" "+id)
		}})
	defer sc.Stop()
	p := openProbe(t, data)

	sc.Tick(ctx) // the stream starts (generation 1), the first full backup
	gen1 := sc.Generation()
	if gen1 == "" || backup.CurrentGeneration(data) != gen1 {
		t.Fatalf("generation %q, recorded %q", gen1, backup.CurrentGeneration(data))
	}
	p.write(t, 3)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now() // 3 rows shipped in generation 1
	pause()
	clock.Add(16 * time.Minute)
	sc.Tick(ctx) // a seal of generation 1
	if sc.Generation() != gen1 {
		t.Fatal("the generation changed without a full backup")
	}
	p.write(t, 2)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	pause()

	// The next full backup, with a writer busy all through the rotation.
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if err := p.insert("轮换期间写入"); err != nil {
				t.Error(err)
				continue
			}
			n++
		}
	}()
	clock.Add(24 * time.Hour)
	sc.Tick(ctx)
	close(stop)
	busy := <-done
	gen2 := sc.Generation()
	if gen2 == gen1 || gen2 == "" || backup.CurrentGeneration(data) != gen2 {
		t.Fatalf("after the full backup: generation %q (was %q), recorded %q", gen2, gen1, backup.CurrentGeneration(data))
	}
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	afterRotation := 5 + busy
	t2 := time.Now() // every row so far shipped in generation 2's snapshot or after
	pause()
	p.write(t, 2)
	if err := sc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t3 := time.Now()
	pause()
	clock.Add(16 * time.Minute)
	sc.Tick(ctx) // a seal of generation 2

	src := targets[0]
	gens, err := backup.Generations(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 2 || gens[0].Name != gen1 || gens[1].Name != gen2 || len(gens[0].Seals) != 2 || len(gens[1].Seals) != 2 ||
		gens[0].End.After(gens[1].Start) {
		t.Fatalf("generations %+v", gens)
	}
	for _, c := range []struct {
		name   string
		at     time.Time
		gen    string
		rows   int
		replay bool // the moment is inside the seal's span (else after it)
	}{
		{"in generation 1", t1, gen1, 3, true},
		{"in generation 2, before its new rows", t2, gen2, afterRotation, true},
		{"in generation 2, after them", t3, gen2, afterRotation + 2, false},
	} {
		id, replay, err := backup.BackupAt(ctx, src, "", c.at)
		if err != nil {
			t.Fatal(err)
		}
		m, err := backup.Verify(ctx, src, id, backup.VerifyOptions{})
		if err != nil || m.Base != c.gen || replay != c.replay {
			t.Fatalf("%s: backup %s of generation %q (replay %v, %v), want generation %s", c.name, id, m.Base, replay, err, c.gen)
		}
		dir := filepath.Join(t.TempDir(), "r")
		if _, err := backup.Restore(ctx, src, id, backup.RestoreOptions{DataDir: dir, Identity: f.identity, At: c.at,
			KeyFile: filepath.Join(data, "keys", "medguard.keys")}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n := restoredRows(t, dir); n != c.rows {
			t.Errorf("restore --at %s: %d rows, want %d", c.name, n, c.rows)
		}
	}
	// A seal of generation 2 cannot replay to a moment of generation 1.
	last := gens[1].Seals[len(gens[1].Seals)-1]
	if _, err := backup.Restore(ctx, src, last, backup.RestoreOptions{DataDir: filepath.Join(t.TempDir(), "r"), Identity: f.identity, At: t1}); err == nil ||
		!strings.Contains(err.Error(), "before stream generation") {
		t.Fatalf("restore of generation 2 at a moment of generation 1: %v", err)
	}

	// The retention (2 days, no monthly) passes: the next full backup
	// rotates again and prunes generations 1 and 2 with their seals.
	clock.Add(backup.RetentionLimit(2, 0) + time.Hour)
	sc.Tick(ctx)
	gen3 := sc.Generation()
	for _, tg := range targets {
		gens, err := backup.Generations(ctx, tg, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(gens) != 1 || gens[0].Name != gen3 {
			t.Fatalf("%s after the retention: %+v, want only %s", tg.URL(), gens, gen3)
		}
		for _, g := range []string{gen1, gen2} {
			if objs, _ := tg.List(ctx, "stream/"+g+"/"); len(objs) != 0 {
				t.Fatalf("%s still holds %d objects of %s", tg.URL(), len(objs), g)
			}
		}
	}
	recMu.Lock()
	for _, g := range []string{gen1, gen2} {
		if !slices.Contains(records, "backup.prune stream/"+g) {
			t.Errorf("the deletion of %s is not audited: %v", g, records)
		}
	}
	recMu.Unlock()
	// The current generation is never pruned, however old.
	gs, _, err := backup.PruneStream(ctx, src, clock.Now().Add(1000*24*time.Hour), 2, 0, gen3)
	if err != nil || len(gs) != 0 {
		t.Fatalf("pruned %v (%v) with %s current", gs, err, gen3)
	}
	if _, err := os.Stat(filepath.Join(data, "backup", "generation")); err != nil {
		t.Fatal(err)
	}
}
