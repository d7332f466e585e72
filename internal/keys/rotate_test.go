package keys_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"medguard/internal/keys"
	"medguard/internal/storage"
	"medguard/internal/storage/storagetest"
)

// patientNames are the plaintexts the rotation tests seal, one per owner.
var patientNames = []string{"王秀英", "李娜", "张伟", "刘洋", "陈静", "杨磊", "赵敏", "黄丽"}

// sealed is one owner's sealed value, to read back after a rotation.
type sealed struct {
	owner string
	loc   keys.Location
	ct    []byte
	want  string
}

// fill makes n owners with a saved data key each and one sealed name.
func fill(t testing.TB, kr *keys.Keyring, n int) []sealed {
	t.Helper()
	ctx := context.Background()
	var out []sealed
	for i := 0; i < n; i++ {
		owner := fmt.Sprintf("patient:p%05d", i)
		k, err := kr.NewDataKey(owner)
		if err != nil {
			t.Fatal(err)
		}
		if err := saveKey(ctx, kr, k); err != nil {
			t.Fatal(err)
		}
		loc := keys.Location{Table: "patients", Row: owner, Column: "name"}
		name := patientNames[i%len(patientNames)]
		out = append(out, sealed{owner, loc, k.SealString(loc, name), name})
	}
	return out
}

// readAll opens every sealed value with a cold cache.
func readAll(t testing.TB, kr *keys.Keyring, vals []sealed) {
	t.Helper()
	ctx := context.Background()
	for _, v := range vals {
		kr.Forget(v.owner)
		got, err := kr.OpenString(ctx, v.owner, v.loc, v.ct)
		if err != nil || got != v.want {
			t.Fatalf("%s: %q %v", v.owner, got, err)
		}
	}
}

func rotate(t testing.TB, kr *keys.Keyring) uint32 {
	t.Helper()
	ctx := context.Background()
	v, activate, err := kr.NewKEKVersion(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.DB().InTx(ctx, func(tx *sql.Tx) error { return activate(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	return v
}

// A rotation rewraps every data key under a new KEK version, in batches,
// while keys are read and new ones saved; old data stays readable
// throughout; the old version is retired only when nothing uses it.
func TestRotationRewrapsOnline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "medguard.keys")
	kf, _, err := keys.LoadOrCreateKeyFile(path, keys.SM4GCM, now)
	if err != nil {
		t.Fatal(err)
	}
	db := storagetest.Open(t, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	if err := kr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	vals := fill(t, kr, 250)

	// A second process (another server) with the key file as it was.
	other := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	if err := other.Check(ctx); err != nil {
		t.Fatal(err)
	}

	if v := rotate(t, kr); v != 2 {
		t.Fatalf("new version %d", v)
	}
	if _, _, err := kr.NewKEKVersion(ctx, ""); !errors.Is(err, keys.ErrRotationRunning) {
		t.Fatalf("second rotation while one runs: %v", err)
	}
	st, err := kr.Status(ctx)
	if err != nil || st.Active != 2 || st.Remaining != 250 || !st.Rotating {
		t.Fatalf("status before rewrap: %+v %v", st, err)
	}
	if v, _ := kr.Retirable(ctx); len(v) != 0 {
		t.Fatalf("retirable while keys remain: %v", v)
	}
	if err := kr.DB().InTx(ctx, func(tx *sql.Tx) error { return kr.Retire(1)(ctx, tx) }); !errors.Is(err, keys.ErrStillUsed) {
		t.Fatalf("retired while used: %v", err)
	}

	// Readers and writers go on while two processes rewrap in batches.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var more []sealed
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := vals[i%len(vals)]
			other.Forget(v.owner)
			if got, err := other.OpenString(ctx, v.owner, v.loc, v.ct); err != nil || got != v.want {
				t.Errorf("read during rotation: %q %v", got, err)
				return
			}
			if i%10 == 0 {
				// The other process saves new keys: they must land under v2.
				owner := fmt.Sprintf("patient:new%04d", i)
				k, err := other.NewDataKey(owner)
				if err == nil {
					err = saveKey(ctx, other, k)
				}
				if err != nil {
					t.Errorf("save during rotation: %v", err)
					return
				}
				loc := keys.Location{Table: "patients", Row: owner, Column: "name"}
				mu.Lock()
				more = append(more, sealed{owner, loc, k.SealString(loc, "孙丽娟"), "孙丽娟"})
				mu.Unlock()
			}
		}
	}()
	var moved int
	for _, r := range []*keys.Keyring{kr, other, kr} {
		n, err := r.RewrapBatch(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		moved += n
	}
	for {
		n, err := other.RewrapBatch(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		moved += n
	}
	close(stop)
	wg.Wait()
	if moved != 250 {
		t.Fatalf("rewrapped %d keys, want 250", moved)
	}
	retirable, err := kr.Retirable(ctx)
	if err != nil || len(retirable) != 1 || retirable[0] != 1 {
		t.Fatalf("retirable: %v %v", retirable, err)
	}
	if err := kr.DB().InTx(ctx, func(tx *sql.Tx) error { return kr.Retire(1)(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	st, err = kr.Status(ctx)
	if err != nil || st.Active != 2 || st.Remaining != 0 || st.Rotating || st.Versions[0].State != keys.KEKRetired || st.Versions[0].DataKeys != 0 {
		t.Fatalf("status after: %+v %v", st, err)
	}
	var under1 int
	db.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE kek_version = 1`).Scan(&under1)
	if under1 != 0 {
		t.Fatalf("%d keys still under KEK v1", under1)
	}
	readAll(t, kr, vals)
	readAll(t, kr, more)
	// A fresh process with only the new key file opens everything, and one
	// with the old key file (without v2) is refused at start-up.
	fresh, err := keys.LoadKeyFile(path)
	if err != nil || len(fresh.KEKs) != 2 {
		t.Fatalf("key file after rotation: %v", err)
	}
	readAll(t, keys.NewKeyringFrom(db, fresh, keys.FileKEKs(fresh, path), clock), vals)
	stale := keys.NewKeyring(db, kf, clock)
	if err := stale.Check(ctx); err == nil || !strings.Contains(err.Error(), "KEK version 2") {
		t.Fatalf("stale key file accepted: %v", err)
	}
}

// A crash in the middle of a batch loses nothing: the batch is one
// transaction, and the next run takes up where the last commit left off.
func TestRewrapResumes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "medguard.keys")
	kf, _, _ := keys.LoadOrCreateKeyFile(path, keys.AES256GCM, now)
	db := storagetest.Open(t, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	if err := kr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	vals := fill(t, kr, 120)
	rotate(t, kr)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := kr.RewrapBatch(cancelled, 50); err == nil {
		t.Fatal("a cancelled batch committed")
	}
	if n, _ := kr.RewrapBatch(ctx, 50); n != 50 {
		t.Fatalf("first batch %d", n)
	}
	// A new process (after the crash) finishes.
	kf2, _ := keys.LoadKeyFile(path)
	again := keys.NewKeyringFrom(db, kf2, keys.FileKEKs(kf2, path), clock)
	if err := again.Check(ctx); err != nil {
		t.Fatal(err)
	}
	total := 50
	for {
		n, err := again.RewrapBatch(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 120 {
		t.Fatalf("rewrapped %d", total)
	}
	readAll(t, again, vals)
}

// A destroyed key (crypto-shredded) is never brought back by a rewrap, and
// does not keep its KEK version from retiring.
func TestRewrapSkipsDestroyedKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "medguard.keys")
	kf, _, _ := keys.LoadOrCreateKeyFile(path, keys.SM4GCM, now)
	db := storagetest.Open(t, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	kr.Check(ctx)
	fill(t, kr, 5)
	if _, err := db.ExecContext(ctx, `UPDATE data_keys SET wrapped = NULL, destroyed_at = 1 WHERE owner = 'patient:p00002'`); err != nil {
		t.Fatal(err)
	}
	rotate(t, kr)
	if n, err := kr.RewrapBatch(ctx, 100); n != 4 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	var wrapped []byte
	db.QueryRowContext(ctx, `SELECT wrapped FROM data_keys WHERE owner = 'patient:p00002'`).Scan(&wrapped)
	if wrapped != nil {
		t.Fatal("a destroyed key came back")
	}
	if v, _ := kr.Retirable(ctx); len(v) != 1 {
		t.Fatalf("retirable %v", v)
	}
}

func TestEnvKEKs(t *testing.T) {
	ctx := context.Background()
	e1, e2 := keys.NewEnvKEK(1), keys.NewEnvKEK(2)
	env := map[string]string{keys.EnvVariable: e1}
	getenv := func(k string) string { return env[k] }
	src, err := keys.EnvKEKs(getenv, keys.SM4GCM)
	if err != nil {
		t.Fatal(err)
	}
	kf := keys.NewKeyFile(keys.SM4GCM, now)
	kf.KEKs, kf.KEKSource = nil, keys.SourceEnv
	if _, err := keys.ParseKeyFile(kf.Marshal()); err != nil {
		t.Fatalf("key file without KEKs for env: %v", err)
	}
	db := storagetest.Open(t, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, src, clock)
	if err := kr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	vals := fill(t, kr, 20)
	// No newer version in the environment: the rotation says what to do.
	if _, _, err := kr.NewKEKVersion(ctx, ""); err == nil || !strings.Contains(err.Error(), "generate-kek") {
		t.Fatalf("rotation without a new version: %v", err)
	}
	env[keys.EnvVariable] = e1 + "," + e2
	if v := rotate(t, kr); v != 2 {
		t.Fatalf("env rotation to %d", v)
	}
	for {
		n, err := kr.RewrapBatch(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	readAll(t, kr, vals)
	for _, bad := range []string{"", "1", "x:AAAA", "1:c2hvcnQ=", e1 + "," + e1} {
		if _, err := keys.ParseEnvKEKs(bad); err == nil {
			t.Errorf("accepted %q", bad)
		} else if strings.Contains(err.Error(), strings.TrimPrefix(e1, "1:")) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

// BenchmarkRewrap measures a rotation of MEDGUARD_BENCH_DEKS data keys
// (default 1,000,000) on the test database (SQLite, or PostgreSQL with
// MEDGUARD_TEST_POSTGRES): run with -bench Rewrap -benchtime 1x. Filling
// the table is not timed.
func BenchmarkRewrap(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("MEDGUARD_BENCH_DEKS"); s != "" {
		fmt.Sscan(s, &n)
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "medguard.keys")
	kf, _, _ := keys.LoadOrCreateKeyFile(path, keys.SM4GCM, now)
	db := storagetest.Open(b, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	if err := kr.Check(ctx); err != nil {
		b.Fatal(err)
	}
	bulkFill(b, db, kr, n)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		rotate(b, kr)
		b.StartTimer()
		total := 0
		for {
			m, err := kr.RewrapBatch(ctx, 0)
			if err != nil {
				b.Fatal(err)
			}
			if m == 0 {
				break
			}
			total += m
		}
		if total != n {
			b.Fatalf("rewrapped %d of %d", total, n)
		}
		b.StopTimer()
		retire, _ := kr.Retirable(ctx)
		for _, v := range retire {
			db.InTx(ctx, func(tx *sql.Tx) error { return kr.Retire(v)(ctx, tx) })
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/rotation")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/DEK")
}

// bulkFill inserts n data keys wrapped under the active KEK, in large
// multi-row inserts.
func bulkFill(b *testing.B, db *storage.DB, kr *keys.Keyring, n int) {
	ctx := context.Background()
	const rows = 500
	var batch []any
	flush := func() {
		if len(batch) == 0 {
			return
		}
		q := `INSERT INTO data_keys (owner, version, algorithm, kek_version, wrapped, created_at) VALUES ` + db.Placeholders(6, len(batch)/6)
		if _, err := db.ExecContext(ctx, q, batch...); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := 0; i < n; i++ {
		k, err := kr.NewDataKey(fmt.Sprintf("patient:%07d", i))
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, k.Owner, 1, "SM4-GCM", 1, k.Wrapped(), 0)
		if len(batch) == rows*6 {
			flush()
		}
	}
	flush()
}

// A data key saved under the active KEK version holds that version's row
// until its transaction ends: a rotation's switch (the active version made
// retiring) waits for it, so that the rewrap after the switch finds the
// key and no key stays under the old version. PostgreSQL only: on SQLite
// the one writer cannot switch meanwhile.
func TestSavedKeyHoldsTheSwitch(t *testing.T) {
	dsn := os.Getenv(storagetest.PostgresEnv)
	if dsn == "" {
		t.Skip("PostgreSQL only: set " + storagetest.PostgresEnv)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "medguard.keys")
	kf, _, err := keys.LoadOrCreateKeyFile(path, keys.SM4GCM, now)
	if err != nil {
		t.Fatal(err)
	}
	db := storagetest.OpenPostgres(t, dsn, keys.Schema())
	kr := keys.NewKeyringFrom(db, kf, keys.FileKEKs(kf, path), clock)
	if err := kr.Check(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := kr.NewDataKey("patient:王秀英")
	if err != nil {
		t.Fatal(err)
	}
	saver, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer saver.Close()
	tx, err := saver.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := kr.Save(ctx, tx, k); err != nil {
		t.Fatal(err)
	}
	switcher, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		switcher.ExecContext(ctx, `RESET lock_timeout`)
		switcher.Close()
	}()
	if _, err := switcher.ExecContext(ctx, `SET lock_timeout = '300ms'`); err != nil {
		t.Fatal(err)
	}
	const switchQ = `UPDATE kek_versions SET state = 'retiring' WHERE state = 'active'`
	if _, err := switcher.ExecContext(ctx, switchQ); err == nil || !strings.Contains(err.Error(), "lock timeout") {
		t.Fatalf("the switch while a key is being saved under the active version: %v; want it to wait (lock timeout)", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	sw, err := switcher.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Rollback()
	if _, err := sw.ExecContext(ctx, switchQ); err != nil {
		t.Fatalf("the switch after the key's transaction: %v", err)
	}
}
