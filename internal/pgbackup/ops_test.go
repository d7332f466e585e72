package pgbackup_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/keys"
	"medguard/internal/pgbackup"
)

func (s *site) keyFile(t *testing.T) *keys.KeyFile {
	t.Helper()
	kf, err := keys.LoadKeyFile(filepath.Join(s.data, "keys", "medguard.keys"))
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

// TestDrill runs a restore drill of a good backup (it passes, checks the
// copy and records itself, signed) and of a tampered one (it fails before
// restoring anything, and is recorded as failed).
func TestDrill(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	s.register(t, 0, 12)
	full, err := pgbackup.Create(ctx, s.tool, s.app.DB, pgbackup.Full, s.signer, s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	if full.State.Patients != 12 {
		t.Fatalf("the manifest counts %d patients, want 12", full.State.Patients)
	}
	s.register(t, 12, 15) // replayed from the WAL archive into the copy
	if err := s.tool.Check(ctx); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(s.dir, "drill")
	o := pgbackup.DrillOptions{Tool: s.tool, ManifestDir: s.manifest, VerifierKey: s.verifier, Signer: s.signer,
		KeyFile: s.keyFile(t), Scratch: scratch, PGBin: s.bin}
	d, err := pgbackup.RunDrill(ctx, o)
	if err != nil {
		t.Fatalf("drill of a good backup: %v", err)
	}
	t.Logf("drill: RTO %s, RPO %s, steps %v", d.RTO, d.RPO, d.Steps)
	if !d.OK || d.Backup != full.Label || d.Patient != 15 || d.SamplePatients == 0 || d.AuditSize <= full.State.AuditSize ||
		d.RTO <= 0 || d.RPO <= 0 || len(d.Steps) != 5 || d.Target != "pgbackrest:"+s.tool.Config.Repo {
		t.Fatalf("drill record %+v", d)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Fatalf("the scratch cluster was not removed: %v", err)
	}

	// One byte of the backup changed: the drill fails and says which file.
	var victim string
	for _, f := range full.Files {
		if strings.Contains(f.Path, "/pg_data/base/") && f.Size > 64 {
			victim = f.Path
			break
		}
	}
	path := filepath.Join(s.tool.Config.Repo, victim)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	bad, err := pgbackup.RunDrill(ctx, o)
	if err == nil || bad.OK || !strings.Contains(bad.Problem, "changed: "+victim) {
		t.Fatalf("drill of a tampered backup: %v, %+v", err, bad)
	}

	ds, err := pgbackup.ListDrills(pgbackup.DrillDir(s.manifest), s.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || !ds[0].OK || ds[1].OK || ds[1].Problem != bad.Problem {
		t.Fatalf("recorded drills: %+v", ds)
	}
	// Records signed by another key are not listed.
	if ds, _ := pgbackup.ListDrills(pgbackup.DrillDir(s.manifest), "other+12345678+AQ"); len(ds) != 0 {
		t.Fatalf("drills listed with another verifier key: %+v", ds)
	}

	// The audit log's signing key rotates (a transition checkpoint signed
	// by both keys), and the next backup is signed with the new key. The
	// manifest and drills signed before the rotation still verify with the
	// new key; the new manifest with the original one.
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	nextKey, next, err := audit.GenerateSigner(s.app.Checkpoints.Signer().Origin())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.Checkpoints.Transition(ctx, next); err != nil {
		t.Fatal(err)
	}
	nextSigner, err := note.NewSigner(nextKey)
	if err != nil {
		t.Fatal(err)
	}
	s.register(t, 15, 17)
	incr, err := pgbackup.Create(ctx, s.tool, s.app.DB, pgbackup.Incremental, nextSigner, s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	rotated := next.VerifierKey()
	if _, err := pgbackup.Verify(ctx, s.tool, s.manifest, full.Label, rotated); err != nil {
		t.Fatalf("the manifest signed before the rotation, with the new key: %v", err)
	}
	if _, err := pgbackup.Verify(ctx, s.tool, s.manifest, incr.Label, s.verifier); err != nil {
		t.Fatalf("the manifest signed after the rotation, with the original key: %v", err)
	}
	if ds, err := pgbackup.ListDrills(pgbackup.DrillDir(s.manifest), rotated); err != nil || len(ds) != 2 {
		t.Fatalf("drills recorded before the rotation, listed with the new key: %v %+v", err, ds)
	}
	ls, err := pgbackup.List(s.manifest, rotated)
	if err != nil || len(ls) != 2 || ls[0].Err != nil || ls[1].Err != nil {
		t.Fatalf("list with the new key: %v %+v", err, ls)
	}
	// Without the transition checkpoints beside the manifests, the old
	// manifest is refused with the new key, saying so.
	tpath := filepath.Join(s.manifest, pgbackup.TransitionsFile)
	tb, err := os.ReadFile(tpath)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(tpath)
	if _, err := pgbackup.OpenManifest(pgbackup.ManifestPath(s.manifest, full.Label), rotated); err == nil ||
		!strings.Contains(err.Error(), "signed only by "+audit.KeyName(s.verifier)) {
		t.Fatalf("the old manifest without the transitions: %v", err)
	}
	os.WriteFile(tpath, tb, 0o640)
	// The retired key (leaked) signs a manifest of a larger tree: refused.
	forged := *incr
	forged.State.AuditSize += 1000
	text, err := forged.Text()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: text}, s.signer)
	if err != nil {
		t.Fatal(err)
	}
	mpath := pgbackup.ManifestPath(s.manifest, incr.Label)
	good, _ := os.ReadFile(mpath)
	os.WriteFile(mpath, msg, 0o640)
	if _, err := pgbackup.OpenManifest(mpath, s.verifier); err == nil || !strings.Contains(err.Error(), "retired at audit tree size") {
		t.Fatalf("a manifest of a larger tree signed by the retired key: %v", err)
	}
	os.WriteFile(mpath, good, 0o640)
}

// TestSchedule runs serve's pgBackRest schedule on a short period: it
// takes a full backup, then an incremental one, and Status shows them; a
// second server on the same database does not take the lock.
func TestSchedule(t *testing.T) {
	s := newSite(t)
	s.register(t, 0, 5)
	alerts := make(chan string, 10)
	sched := func() *pgbackup.Scheduler {
		return pgbackup.NewScheduler(pgbackup.Schedule{Tool: s.tool, ManifestDir: s.manifest, DB: s.app.DB, Signer: s.signer,
			VerifierKey: s.verifier, FullEvery: time.Hour, IncrementalEvery: 2 * time.Second, Tick: 500 * time.Millisecond,
			Alert: func(key, text string) { alerts <- key + ": " + text }})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	one := sched()
	var _ backup.Reporter = one
	done := make(chan struct{})
	go func() { one.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(3 * time.Minute)
	var types []pgbackup.BackupType
	for {
		info, err := s.tool.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		types = types[:0]
		for _, b := range info.Backups {
			types = append(types, b.Type)
		}
		// A backup is listed by pgBackRest before its manifest is signed.
		if listed, _ := pgbackup.List(s.manifest, s.verifier); len(types) >= 2 && len(listed) >= 2 {
			break
		}
		select {
		case a := <-alerts:
			t.Fatalf("alert: %s", a)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule took %v in 3 minutes", types)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if types[0] != pgbackup.Full || types[1] != pgbackup.Incremental {
		t.Fatalf("the schedule took %v, want full then incr", types)
	}
	if !one.Leader() {
		t.Fatal("the only server does not hold the schedule's lock")
	}
	// Every backup has its signed manifest.
	listed, err := pgbackup.List(s.manifest, s.verifier)
	if err != nil || len(listed) < 2 || listed[0].Err != nil || listed[1].Err != nil {
		t.Fatalf("manifests: %v %+v", err, listed)
	}

	two := sched()
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { two.Run(ctx2); close(done2) }()
	for two.Status().Targets[0].LastBackup.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("the second server shows no backup")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel2()
	<-done2
	if two.Leader() {
		t.Fatal("two servers hold the schedule's lock")
	}

	st := one.Status()
	tg := st.Targets[0]
	if tg.URL != "pgbackrest:"+s.tool.Config.Repo || tg.LastBackup.IsZero() || tg.LastError != "" || st.Shipped.IsZero() || st.RPO <= 0 ||
		st.State.Copies != 2 || st.State.Met {
		t.Fatalf("status %+v", st)
	}
	t.Logf("status: last backup %s, WAL archived %s (RPO %s), 3-2-1 %+v", tg.LastBackup, st.Shipped, st.RPO, st.State)
}
