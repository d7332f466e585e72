package audit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"medguard/internal/audit"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// BenchmarkAppendConcurrent appends from many goroutines at once, as request
// handlers do: each Append returns only when its entry is durable, and the
// appender shares commits between whoever is waiting.
func BenchmarkAppendConcurrent(b *testing.B) {
	db := storagetest.Open(b, audit.Schema())
	l, err := audit.Open(context.Background(), db, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := l.Append(context.Background(), entry(i), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkAppendBatch appends entries 10,000 at a time, each batch durable
// before the call returns (SPEC §13: ≥ 200,000 entries/s).
func BenchmarkAppendBatch(b *testing.B) {
	for _, maxBatch := range []int{1024, 10000} {
		b.Run("tx="+strconv.Itoa(maxBatch), func(b *testing.B) {
			db := storagetest.Open(b, audit.Schema())
			l, err := audit.Open(context.Background(), db, audit.Options{MaxBatch: maxBatch})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			const per = 10000
			batch := make([]*audit.Entry, per)
			for i := range batch {
				batch[i] = entry(i)
			}
			b.ResetTimer()
			n := 0
			cpu := cpuTime()
			for b.Loop() {
				if _, err := l.AppendBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				n += per
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
			reportCPU(b, cpu, n)
		})
	}
}

// BenchmarkAppendBatchIndexed is BenchmarkAppendBatch, but each iteration
// also waits until the search index has caught up: the sustained rate of
// appending and indexing.
func BenchmarkAppendBatchIndexed(b *testing.B) {
	db := storagetest.Open(b, audit.Schema())
	l, err := audit.Open(context.Background(), db, audit.Options{MaxBatch: 10000})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const per = 10000
	batch := make([]*audit.Entry, per)
	for i := range batch {
		batch[i] = entry(i)
	}
	n := 0
	cpu := cpuTime()
	for b.Loop() {
		if _, err := l.AppendBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		if err := l.CatchUp(context.Background()); err != nil {
			b.Fatal(err)
		}
		n += per
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
	reportCPU(b, cpu, n)
}

// BenchmarkAppendOne is the latency of one request's append with nothing
// else in flight: a whole durable commit.
func BenchmarkAppendOne(b *testing.B) {
	db := storagetest.Open(b, audit.Schema())
	l, err := audit.Open(context.Background(), db, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	i := 0
	for b.Loop() {
		if _, err := l.Append(context.Background(), entry(i), nil); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerify recomputes the whole tree of a log of n entries from its
// stored leaves and checks it (SPEC §13: 1,000,000 entries in ≤ 1 s).
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			db := storagetest.Open(b, audit.Schema())
			l, err := audit.Open(context.Background(), db, audit.Options{MaxBatch: 10000})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]*audit.Entry, 10000)
			for done := 0; done < n; done += len(batch) {
				for i := range batch {
					batch[i] = entry(done + i)
				}
				if _, err := l.AppendBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			l.Close()
			runtime.GC()
			peak := heapPeak()
			b.ResetTimer()
			for b.Loop() {
				rep, err := audit.Verify(context.Background(), db, audit.VerifyOptions{})
				if err != nil || rep.Size != uint64(n) {
					b.Fatalf("%v %+v", err, rep)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			// Verify streams: the live heap's peak does not grow with the log.
			b.ReportMetric(float64(peak())/(1<<20), "peak-live-heap-MB")
		})
	}
}

// BenchmarkSearch searches a log of MEDGUARD_BENCH_AUDIT_ENTRIES entries
// (default 1,000,000; the README's figure is for 10,000,000): 3,000 staff,
// 200,000 patients, a year of history. Each search returns one page (100).
// Then it verifies the whole log once ("verify"; run with -benchtime 1x
// or a count of searches: verify runs as many times).
func BenchmarkSearch(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("MEDGUARD_BENCH_AUDIT_ENTRIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	db := storagetest.Open(b, audit.Schema())
	l, err := audit.Open(ctx, db, audit.Options{MaxBatch: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	actions := []string{"record.read", "patient.read", "record.create", "record.update", "attachment.read", "patient.search", "auth.login"}
	start := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	step := 365 * 24 * time.Hour / time.Duration(n)
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]*audit.Entry, 0, 10000)
	// The rate of each million appended, to show it does not fall as the
	// log grows (appends are O(log n)).
	million := time.Now()
	for i := 0; i < n; i++ {
		if i > 0 && i%1_000_000 == 0 {
			b.Logf("entries %d to %d appended (and indexed) at %.0f entries/s", i-1_000_000, i, 1e6/time.Since(million).Seconds())
			million = time.Now()
		}
		e := entry(i)
		e.Time = start.Add(time.Duration(i) * step).Truncate(time.Millisecond)
		e.Actor = fmt.Sprintf("staff%04d", rng.IntN(3000))
		e.PatientID = fmt.Sprintf("pat%06d", rng.IntN(200000))
		e.Action = actions[rng.IntN(len(actions))]
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := l.AppendBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := l.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	mid := start.Add(180 * 24 * time.Hour)
	queries := []struct {
		name string
		q    func(i int) audit.Query
	}{
		{"patient", func(i int) audit.Query { return audit.Query{PatientID: fmt.Sprintf("pat%06d", i%200000)} }},
		{"actor", func(i int) audit.Query { return audit.Query{Actor: fmt.Sprintf("staff%04d", i%3000)} }},
		{"actor+week", func(i int) audit.Query {
			return audit.Query{Actor: fmt.Sprintf("staff%04d", i%3000), From: mid, To: mid.Add(7 * 24 * time.Hour)}
		}},
		{"action+day", func(i int) audit.Query {
			return audit.Query{Action: actions[i%len(actions)], From: mid, To: mid.Add(24 * time.Hour)}
		}},
		{"day", func(i int) audit.Query {
			return audit.Query{From: mid.Add(time.Duration(i%100) * time.Hour), To: mid.Add(24 * time.Hour)}
		}},
		{"actor page 3", func(i int) audit.Query {
			q := audit.Query{Actor: fmt.Sprintf("staff%04d", i%3000)}
			for p := 0; p < 2; p++ {
				got, _, err := l.Search(ctx, q)
				if err != nil || len(got) == 0 {
					b.Fatalf("page %d: %v", p, err)
				}
				q.Before = got[len(got)-1].Index
			}
			return q
		}},
	}
	for _, qc := range queries {
		b.Run(qc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				b.StopTimer()
				q := qc.q(i) // (the earlier pages of "actor page 3" are not timed)
				b.StartTimer()
				if _, _, err := l.Search(ctx, q); err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
		})
	}
	// And the whole log verified once: its rate and the heap's peak.
	b.Run("verify", func(b *testing.B) {
		runtime.GC()
		peak := heapPeak()
		for b.Loop() {
			rep, err := audit.Verify(ctx, db, audit.VerifyOptions{})
			if err != nil || rep.Size != uint64(n) {
				b.Fatalf("%v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		b.ReportMetric(float64(peak())/(1<<20), "peak-live-heap-MB")
	})
}

// BenchmarkProofs serves inclusion and consistency proofs, from the stored
// tiles, on a log of 1,000,000 entries.
func BenchmarkProofs(b *testing.B) {
	ctx := context.Background()
	l := batchLog(b)
	const n = 1_000_000
	batch := make([]*audit.Entry, 10000)
	for i := 0; i < n; i += len(batch) {
		for k := range batch {
			batch[k] = entry(i + k)
		}
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	b.Run("inclusion", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.InclusionProof(ctx, rng.Uint64N(n), n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.ConsistencyProof(ctx, 1+rng.Uint64N(n-1), n); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// heapPeak samples the live heap (as the last collection marked it: what
// is retained, not garbage awaiting collection) every millisecond until the
// returned function is called, which returns the most seen.
func heapPeak() func() uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var most uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			most = max(most, sample[0].Value.Uint64())
			select {
			case <-stop:
				done <- most
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}

// cpuTime is the CPU time this process has used (user and system): on a
// shared machine, a steadier measure of the work done than the wall clock.
// On PostgreSQL it leaves out the server's own.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time since since per entry.
func reportCPU(b *testing.B, since time.Duration, entries int) {
	if entries > 0 {
		b.ReportMetric(float64(cpuTime()-since)/float64(entries), "cpu-ns/entry")
	}
}

// batchLog is a log on a fresh database, committing up to 10,000 entries
// at a time, closed when the benchmark ends.
func batchLog(b *testing.B) *audit.Log {
	db := storagetest.Open(b, audit.Schema())
	l, err := audit.Open(context.Background(), db, audit.Options{MaxBatch: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkSeal makes one entry's leaf and leaf hash, as AppendBatch does
// for each entry before queueing it.
func BenchmarkSeal(b *testing.B) {
	e := entry(12345)
	e.ActorRoles = []string{"doctor", "auditor"}
	b.ReportAllocs()
	for b.Loop() {
		audit.LeafHash(e.Leaf())
	}
}

// BenchmarkSmallCommits commits 8 or 20 entries at a time — a busy
// server's group commit of requests — on a log of 50,000 entries, and
// reports the CPU a commit takes (this process's: on PostgreSQL not the
// server's) and what each commit writes: on PostgreSQL the WAL it generates
// (pg_current_wal_lsn before and after), on SQLite every byte this process
// writes (/proc/self/io: its WAL and the checkpoints into the database
// file). Steadier than a rate on a shared machine: the bytes do not depend
// on what else is running.
func BenchmarkSmallCommits(b *testing.B) {
	for _, per := range []int{8, 20} {
		b.Run("entries="+strconv.Itoa(per), func(b *testing.B) { smallCommits(b, per) })
	}
}

func smallCommits(b *testing.B, per int) {
	db := storagetest.Open(b, audit.Schema())
	ctx := context.Background()
	l, err := audit.Open(ctx, db, audit.Options{MaxBatch: 10000})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	actors := []string{"李医生", "王护士", "张医生", "刘医生", "陈医生"}
	n := 0
	next := func(count int) []*audit.Entry {
		batch := make([]*audit.Entry, count)
		for i := range batch {
			batch[i] = entry(n)
			batch[i].Actor, batch[i].PatientID = actors[n%len(actors)], fmt.Sprintf("pat%03d", n*7919%500)
			n++
		}
		return batch
	}
	for range 5 {
		if _, err := l.AppendBatch(ctx, next(10000)); err != nil {
			b.Fatal(err)
		}
	}
	written := func() int64 {
		if db.Dialect == storage.Postgres {
			var lsn int64
			if err := db.QueryRowContext(ctx, `SELECT pg_current_wal_lsn() - '0/0'::pg_lsn`).Scan(&lsn); err != nil {
				b.Fatal(err)
			}
			return lsn
		}
		io, err := os.ReadFile("/proc/self/io")
		if err != nil {
			b.Skip("no /proc/self/io here")
		}
		for _, line := range strings.Split(string(io), "\n") {
			if v, ok := strings.CutPrefix(line, "wchar: "); ok {
				w, _ := strconv.ParseInt(v, 10, 64)
				return w
			}
		}
		b.Skip("no wchar in /proc/self/io")
		return 0
	}
	if db.Dialect == storage.SQLite {
		// The set-up's WAL goes into the database now, not in the window.
		if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	before, cpu := written(), cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := l.AppendBatch(ctx, next(per)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/commit")
	unit := "written-B/commit"
	if db.Dialect == storage.Postgres {
		unit = "wal-B/commit"
	}
	b.ReportMetric(float64(written()-before)/float64(b.N), unit)
}
