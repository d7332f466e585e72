package pgbackup_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// TestMeasureRPO is a measurement, not a check: with
// MEDGUARD_MEASURE_RPO=SECONDS it registers one patient a second for that
// long on a cluster with archive_timeout = 60 s, and for every write
// measures how long until the WAL segment holding its commit is in the
// pgBackRest repository: the data a lost server would lose (RPO). Run:
//
//	MEDGUARD_MEASURE_RPO=240 go test -run TestMeasureRPO -v ./internal/pgbackup/
func TestMeasureRPO(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("MEDGUARD_MEASURE_RPO"))
	if secs == 0 {
		t.Skip("a measurement: set MEDGUARD_MEASURE_RPO=SECONDS to run it")
	}
	ctx := context.Background()
	s := newSite(t)
	type write struct {
		at      time.Time
		segment string
	}
	var pending, done []write
	var lags []time.Duration
	archived := func(seg string) bool {
		m, _ := filepath.Glob(filepath.Join(s.tool.Config.Repo, "archive", "medguard", "*", seg[:16], seg+"-*"))
		return len(m) > 0
	}
	end := time.Now().Add(time.Duration(secs) * time.Second)
	for i := 0; time.Now().Before(end) || len(pending) > 0; i++ {
		if time.Now().Before(end) {
			s.register(t, i, i+1)
			var seg string
			if err := s.app.DB.QueryRowContext(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn())`).Scan(&seg); err != nil {
				t.Fatal(err)
			}
			pending = append(pending, write{time.Now(), seg})
		}
		now := time.Now()
		var still []write
		for _, w := range pending {
			if archived(w.segment) {
				lags = append(lags, now.Sub(w.at))
				done = append(done, w)
			} else {
				still = append(still, w)
			}
		}
		pending = still
		time.Sleep(time.Second)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	var sum time.Duration
	for _, l := range lags {
		sum += l
	}
	t.Logf("%d writes over %d s, archive_timeout 60 s: time until a write's WAL segment is in the repository: median %s, mean %s, p95 %s, max %s",
		len(lags), secs, lags[len(lags)/2].Round(time.Second), (sum / time.Duration(len(lags))).Round(time.Second),
		lags[len(lags)*95/100].Round(time.Second), lags[len(lags)-1].Round(time.Second))
}
