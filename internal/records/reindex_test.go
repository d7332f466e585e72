package records_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"medguard"
	"medguard/internal/idnum"
	"medguard/internal/keys"
	"medguard/internal/records"
)

// indexPatient is a registered patient and the values searched for.
type indexPatient struct {
	id, name, idNumber, phone, mrn string
}

// registerForIndex registers n patients with Chinese names (several
// sharing a name), valid resident ID numbers, phones and 病案号.
func (f *fixture) registerForIndex(t *testing.T, n int) []indexPatient {
	t.Helper()
	names := []string{"王秀英", "李娜", "张伟", "刘洋", "陈静", "欧阳娜娜", "司马光"}
	var out []indexPatient
	for i := 0; i < n; i++ {
		idn, err := idnum.Make("110105", time.Date(1950+i, 3, 12, 0, 0, 0, 0, time.UTC), 100+i)
		if err != nil {
			t.Fatal(err)
		}
		p := indexPatient{name: names[i%len(names)], idNumber: idn, phone: fmt.Sprintf("1391234%04d", i), mrn: fmt.Sprintf("MR%08d", i)}
		got, err := f.svc.CreatePatient(context.Background(), f.as("sunli"), records.NewPatient{Name: p.name, Gender: "unknown",
			IDNumber: p.idNumber, Phone: p.phone, MRN: p.mrn, Address: "北京市朝阳区建国路88号"})
		if err != nil {
			t.Fatal(err)
		}
		p.id = got.ID
		out = append(out, p)
	}
	return out
}

// findsEveryone checks that every patient is found by ID number, phone,
// 病案号 and name (patient search), and by ID number (audit lookup).
func (f *fixture) findsEveryone(t *testing.T, ps []indexPatient, when string) {
	t.Helper()
	ctx := context.Background()
	byName := map[string][]string{}
	for _, p := range ps {
		byName[p.name] = append(byName[p.name], p.id)
	}
	for _, p := range ps {
		for _, q := range []records.Search{{IDNumber: p.idNumber}, {Phone: p.phone}, {MRN: p.mrn}} {
			if q == (records.Search{}) {
				continue // a field the patient has not
			}
			got, err := f.svc.SearchPatients(ctx, f.as("lina"), q)
			if err != nil || len(got) != 1 || got[0].ID != p.id {
				t.Fatalf("%s: search %+v: %+v %v", when, q, got, err)
			}
		}
		got, err := f.svc.SearchPatients(ctx, f.as("lina"), records.Search{Name: p.name})
		if err != nil || len(got) != len(byName[p.name]) {
			t.Fatalf("%s: by name %s: %d found, want %d (%v)", when, p.name, len(got), len(byName[p.name]), err)
		}
		audit, err := f.svc.LookupForAudit(ctx, f.auditorCall("auditor"), cmp.Or(p.idNumber, p.mrn))
		if err != nil || len(audit) != 1 || audit[0].ID != p.id {
			t.Fatalf("%s: audit lookup: %+v %v", when, audit, err)
		}
	}
}

// onDisk writes the archive's key file to a directory and lets its keyring
// read it again (as a server started from that file does).
func (f *fixture) onDisk(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "medguard.keys")
	if err := keys.WriteKeyFile(path, f.keyFile); err != nil {
		t.Fatal(err)
	}
	f.keys.UseKeyFile(path)
	if err := f.keys.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

// rotator is another process's keyring (the "keys rotate-index-key"
// command) over the same database and key file.
func (f *fixture) rotator(t *testing.T, path string) *keys.Keyring {
	t.Helper()
	kf, err := keys.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(f.db, kf, f.clock)
	kr.UseKeyFile(path)
	if err := kr.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	return kr
}

func (f *fixture) newIndexVersion(t *testing.T, kr *keys.Keyring) uint32 {
	t.Helper()
	ctx := context.Background()
	v, activate, err := kr.NewIndexKeyVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.InTx(ctx, func(tx *sql.Tx) error { return activate(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fixture) indexCounts(t *testing.T) map[uint32]int64 {
	t.Helper()
	c, err := f.svc.IndexCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIndexKeyRotation rotates the blind-index key while the archive
// serves: another process adds version 2 to the key file; until the
// re-index has reached every patient, lookups find each patient through
// the old index or the new one (the serving keyring reads version 2 from
// the key file when the database names it); writes meanwhile index under
// version 2, and uniqueness holds across versions; a re-index interrupted
// half-way resumes in a new process where it stopped; at the end version
// 1 is retired, deleted from the key file, and no index under it is left.
func TestIndexKeyRotation(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	path := f.onDisk(t)
	ps := f.registerForIndex(t, 21)
	if c := f.indexCounts(t); c[1] != 21 || len(c) != 1 {
		t.Fatalf("before: %v", c)
	}
	oldIndex := keys.NewBlindIndex(f.keyFile)
	f.findsEveryone(t, ps, "before")

	cmd := f.rotator(t, path)
	if v := f.newIndexVersion(t, cmd); v != 2 {
		t.Fatalf("new version %d", v)
	}
	if _, _, err := cmd.NewIndexKeyVersion(ctx); !medguard.IsKind(err, medguard.Conflict) {
		t.Fatalf("a second rotation while re-indexing: %v", err)
	}
	// Nothing re-indexed yet: found through version 1.
	f.findsEveryone(t, ps, "rotation started")

	// Writes index under version 2 at once.
	extra, err := f.svc.CreatePatient(ctx, f.as("sunli"), records.NewPatient{Name: "张伟", Gender: "unknown", MRN: "MR-NEW-1"})
	if err != nil {
		t.Fatal(err)
	}
	ps = append(ps, indexPatient{id: extra.ID, name: "张伟", mrn: "MR-NEW-1"})
	newPhone := "13700000000"
	if _, err := f.svc.UpdatePatient(ctx, f.as("sunli"), ps[0].id, records.PatientChanges{Phone: &newPhone}); err != nil {
		t.Fatal(err)
	}
	ps[0].phone = newPhone
	if c := f.indexCounts(t); c[1] != 20 || c[2] != 2 {
		t.Fatalf("after writes: %v", c)
	}
	// An ID number indexed under version 1 is still taken.
	_, err = f.svc.CreatePatient(ctx, f.as("sunli"), records.NewPatient{Name: "李四", Gender: "unknown", IDNumber: ps[5].idNumber})
	wantKind(t, err, medguard.Conflict, "id_number")

	// Half the re-index, then the process stops.
	n, err := cmd.ReindexBatch(ctx, f.svc, 8)
	if err != nil || n != 8 {
		t.Fatalf("batch: %d %v", n, err)
	}
	if c := f.indexCounts(t); c[1] != 12 || c[2] != 10 {
		t.Fatalf("half-way: %v", c)
	}
	if left, err := cmd.IndexRemaining(ctx, f.svc); err != nil || left != 12 {
		t.Fatalf("remaining %d %v", left, err)
	}
	st, err := cmd.IndexStatus(ctx, f.svc)
	if err != nil || !st.Rotating || st.Active != 2 || st.Remaining != 12 || st.Rows != 22 || len(st.Versions) != 2 {
		t.Fatalf("status %+v %v", st, err)
	}
	f.findsEveryone(t, ps, "half-way")
	if vs, err := cmd.RetirableIndexKeys(ctx, f.svc); err != nil || len(vs) != 0 {
		t.Fatalf("retirable half-way: %v %v", vs, err)
	}

	// A new process resumes where the first stopped.
	again := f.rotator(t, path)
	var total int
	for {
		n, err := again.ReindexBatch(ctx, f.svc, 5)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 12 {
		t.Fatalf("resumed re-index moved %d, want the 12 left", total)
	}
	if c := f.indexCounts(t); c[2] != 22 || len(c) != 1 {
		t.Fatalf("after: %v", c)
	}
	f.findsEveryone(t, ps, "re-indexed")

	// Retire version 1: deleted from the key file, no index under it left.
	vs, err := again.RetirableIndexKeys(ctx, f.svc)
	if err != nil || len(vs) != 1 || vs[0] != 1 {
		t.Fatalf("retirable: %v %v", vs, err)
	}
	retire := again.RetireIndexKey(1)
	if err := f.db.InTx(ctx, func(tx *sql.Tx) error { return retire(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if gone, err := again.DeleteRetiredIndexKeys(ctx); err != nil || len(gone) != 1 || gone[0] != 1 {
		t.Fatalf("deleted: %v %v", gone, err)
	}
	kf, err := keys.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if vs := kf.IndexKeyVersions(); len(vs) != 1 || vs[0].Version != 2 || kf.IndexKey != nil {
		t.Fatalf("key file index keys: %+v", vs)
	}
	for _, p := range ps {
		var n int
		for _, q := range []struct{ column, field, value string }{{"name_index", "name", p.name},
			{"id_number_index", "id_number", p.idNumber}, {"mrn_index", "mrn", p.mrn}} {
			if q.value == "" {
				continue
			}
			if err := f.db.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE `+q.column+` = $1`,
				oldIndex.Of(q.field, q.value)).Scan(&n); err != nil || n != 0 {
				t.Fatalf("an index under the retired key is left (%s): %d %v", q.column, n, err)
			}
		}
	}
	st, err = again.IndexStatus(ctx, f.svc)
	if err != nil || st.Rotating || st.Active != 2 || st.Remaining != 0 || st.Versions[0].State != keys.IndexKeyRetired ||
		st.Versions[0].InKeyFile {
		t.Fatalf("status after %+v %v", st, err)
	}
	// The serving keyring still finds everyone (only version 2 is queried),
	// and a process started from the new key file opens the database.
	f.findsEveryone(t, ps, "after")
	f.rotator(t, path)
	// The next rotation may begin.
	if v := f.newIndexVersion(t, again); v != 3 {
		t.Fatalf("third version %d", v)
	}
}

// TestIndexKeyMissingFromKeyFile: a server whose key file lacks an index
// key version the database indexes under refuses to start.
func TestIndexKeyMissingFromKeyFile(t *testing.T) {
	f := setup(t)
	path := f.onDisk(t)
	f.registerForIndex(t, 2)
	f.newIndexVersion(t, f.rotator(t, path))
	stale := keys.NewKeyring(f.db, f.keyFile, f.clock) // the key file from before the rotation, no path
	if err := stale.Check(context.Background()); err == nil {
		t.Fatal("a key file without the active index key version was accepted")
	}
}
