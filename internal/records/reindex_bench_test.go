package records

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/identity"
	"medguard/internal/idnum"
	"medguard/internal/keys"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
	"medguard/internal/testkit"
)

// BenchmarkReIndex rotates the blind-index key over 100,000 patients
// (MEDGUARD_BENCH_PATIENTS changes the count): the timed part is the whole
// re-index — read a batch, decrypt each patient's name, ID number, phone
// and 病案号 (unwrapping the patient's data key unless cached), compute four
// HMAC-SM3 indexes, update the rows in one transaction. Filling the table
// is not timed. SQLite by default; PostgreSQL with MEDGUARD_TEST_POSTGRES.
//
//	go test -run '^$' -bench ReIndex -benchtime 1x ./internal/records/
func BenchmarkReIndex(b *testing.B) {
	n := 100_000
	if s := os.Getenv("MEDGUARD_BENCH_PATIENTS"); s != "" {
		fmt.Sscan(s, &n)
	}
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	path := filepath.Join(b.TempDir(), "medguard.keys")
	kf, _, err := keys.LoadOrCreateKeyFile(path, keys.SM4GCM, clock.Now())
	if err != nil {
		b.Fatal(err)
	}
	db := storagetest.Open(b, keys.Schema(), audit.Schema(), identity.Schema(), Schema())
	kr := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	kr.UseKeyFile(path)
	if err := kr.Check(ctx); err != nil {
		b.Fatal(err)
	}
	s := &Service{db: db, keys: kr, clock: clock}
	fillPatients(b, s, n)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		_, activate, err := kr.NewIndexKeyVersion(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return activate(ctx, tx) }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		total := 0
		for {
			m, err := kr.ReindexBatch(ctx, s, 0)
			if err != nil {
				b.Fatal(err)
			}
			if m == 0 {
				break
			}
			total += m
		}
		if total != n {
			b.Fatalf("re-indexed %d of %d", total, n)
		}
		b.StopTimer()
		vs, err := kr.RetirableIndexKeys(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range vs {
			if err := db.InTx(ctx, func(tx *sql.Tx) error { return kr.RetireIndexKey(v)(ctx, tx) }); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := kr.DeleteRetiredIndexKeys(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/rotation")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/patient")
}

// fillPatients stores n patients sealed and indexed as CreatePatient does
// (one data key each), in large transactions, without the gate.
func fillPatients(b *testing.B, s *Service, n int) {
	ctx := context.Background()
	names := []string{"王秀英", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄丽", "周杰", "吴芳", "欧阳娜娜", "司马光"}
	now := medguard.Millis(s.clock.Now())
	const rows = 500
	for start := 0; start < n; start += rows {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			var args []any
			count := 0
			for i := start; i < min(start+rows, n); i++ {
				idn, err := idnum.Make("310104", time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/900), 100+i%900)
				if err != nil {
					return err
				}
				p := NewPatient{Name: names[i%len(names)], Gender: "unknown", IDNumber: idn, Phone: fmt.Sprintf("139%08d", i),
					Address: "上海市徐汇区漕溪北路600号", MRN: fmt.Sprintf("MR%08d", i)}
				id := medguard.NewID(s.clock.Now())
				k, err := s.keys.NewDataKey(patientOwner(id))
				if err != nil {
					return err
				}
				if err := s.keys.Save(ctx, tx, k); err != nil {
					return err
				}
				sp := s.seal(k, id, p)
				if err := s.index(ctx, tx, &sp); err != nil {
					return err
				}
				args = append(args, id, sp.name, sp.gender, sp.birth, sp.idNumber, sp.phone, sp.address, sp.mrn,
					sp.nameIdx, sp.idNumberIdx, sp.phoneIdx, sp.mrnIdx, int64(sp.indexVersion), 1, now, "bench", now)
				count++
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO patients (id, name, gender, birth_date, id_number, phone, address, mrn,
				name_index, id_number_index, phone_index, mrn_index, index_version, version, created_at, created_by, updated_at)
				VALUES `+s.db.Placeholders(17, count), args...)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if s.db.Dialect == storage.Postgres {
		if _, err := s.db.ExecContext(ctx, `ANALYZE patients`); err != nil {
			b.Fatal(err)
		}
	}
}
