package audit_test

import (
	"context"
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
