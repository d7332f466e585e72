package audit_test

import (
	"context"
	"strconv"
	"testing"

	"medguard/internal/audit"
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
			for b.Loop() {
				if _, err := l.AppendBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				n += per
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
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
			b.ResetTimer()
			for b.Loop() {
				rep, err := audit.Verify(context.Background(), db, audit.VerifyOptions{})
				if err != nil || rep.Size != uint64(n) {
					b.Fatalf("%v %+v", err, rep)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
