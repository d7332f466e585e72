package pgbackup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard"
	"medguard/internal/cli"
	"medguard/internal/pgbackup"
	"medguard/internal/pgbackup/pgtest"
	"medguard/internal/policy"
	"medguard/internal/records"
)

// site is a medguard installation on its own PostgreSQL cluster whose WAL
// pgBackRest archives into an encrypted repository.
type site struct {
	bin, dir string
	cluster  *pgtest.Cluster
	tool     *pgbackup.Tool
	data     string // medguard's data directory (key file, audit signing key)
	app      *cli.App
	signer   note.Signer
	verifier string
	manifest string // manifests directory
}

// clerk is a records clerk (病案管理员): registers and reads patients
// hospital-wide.
var clerk = &medguard.Call{Actor: medguard.Actor{Kind: medguard.UserActor, ID: medguard.NewID(time.Now()),
	Name: "clerk-wang", Roles: []string{policy.RecordsClerk}}, IP: "10.20.1.5", RequestID: "pgbackup-test"}

var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘")
var given = []string{"建国", "秀英", "海燕", "志强", "丽娟", "文博", "晓明", "桂兰", "玉珍", "春生"}

func chineseName(i int) string {
	return string(surnames[i%len(surnames)]) + given[i%len(given)] + fmt.Sprint([]string{"", "一", "二", "三"}[i%4])
}

func newSite(t *testing.T) *site { return newSiteWith(t, nil) }

// newSiteWith is newSite with a chance to change the configuration (a
// second repository) before it is written; dir is the site's directory.
func newSiteWith(t *testing.T, configure func(dir string, c *pgbackup.Config)) *site {
	t.Helper()
	s := &site{bin: pgtest.Tools(t), dir: pgtest.Dir(t)}
	port := pgtest.FreePort(t)
	c := pgbackup.Config{File: filepath.Join(s.dir, "pgbackrest.conf"), Stanza: "medguard",
		PGData: filepath.Join(s.dir, "pg"), PGPort: port, PGSocket: s.dir, Repo: filepath.Join(s.dir, "repo"),
		CipherPass: "backup passphrase, not the data KEK: 3a1c9e", RetentionFull: 2}
	if configure != nil {
		configure(s.dir, &c)
	}
	conf, err := pgbackup.Configure(c, pgtest.RunAs())
	if err != nil {
		t.Fatal(err)
	}
	s.tool = &pgbackup.Tool{Config: conf, RunAs: pgtest.RunAs()}
	s.cluster = pgtest.Init(t, s.bin, s.dir, "pg", port, "wal_level = replica", "archive_mode = on",
		"archive_command = '"+s.tool.ArchiveCommand()+"'", "archive_timeout = 60")
	s.cluster.Exec("postgres", "CREATE DATABASE medguard")
	ctx := context.Background()
	if err := s.tool.StanzaCreate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.tool.Check(ctx); err != nil {
		t.Fatal(err)
	}
	s.data = t.TempDir()
	s.app, err = cli.Open(ctx, cli.Config{DataDir: s.data, DB: s.cluster.DSN("medguard")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.app.Close() })
	skey, err := os.ReadFile(filepath.Join(s.data, "keys", "audit-log.key"))
	if err != nil {
		t.Fatal(err)
	}
	if s.signer, err = note.NewSigner(strings.TrimSpace(string(skey))); err != nil {
		t.Fatal(err)
	}
	s.verifier = s.app.Checkpoints.Signer().VerifierKey()
	s.manifest = pgbackup.DefaultManifestDir(conf)
	return s
}

// register registers patients from..to-1 and returns their ids.
func (s *site) register(t *testing.T, from, to int) []string {
	t.Helper()
	var ids []string
	for i := from; i < to; i++ {
		p, err := s.app.Records.CreatePatient(context.Background(), clerk, records.NewPatient{Name: chineseName(i), Gender: "female",
			BirthDate: "1968-03-14", Address: "上海市徐汇区漕溪北路" + fmt.Sprint(100+i) + "号"})
		if err != nil {
			t.Fatalf("registering patient %d: %v", i, err)
		}
		ids = append(ids, p.ID)
	}
	return ids
}

// TestBackupRestoreAtTime backs up a live medguard database with pgBackRest
// (full, then incremental), restores it as of a time between writes into a
// new cluster, and checks medguard's data there: the patients, the audit
// root at the manifest's size, a name decrypted with the same key file.
// Then it tampers with one repository file and with a manifest.
func TestBackupRestoreAtTime(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	ids := s.register(t, 0, 20)

	began := time.Now()
	full, err := pgbackup.Create(ctx, s.tool, s.app.DB, pgbackup.Full, s.signer, s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full backup %s: %s, %d files, audit size %d", full.Label, time.Since(began).Round(time.Millisecond), len(full.Files), full.State.AuditSize)
	if full.State.AuditSize == 0 || len(full.State.KEKVersions) == 0 || full.State.KEKVersions[0].Version != 1 {
		t.Fatalf("the manifest's medguard state is %+v", full.State)
	}
	if full.Cipher != "aes-256-cbc" {
		t.Fatalf("the repository's cipher is %q", full.Cipher)
	}

	ids = append(ids, s.register(t, 20, 30)...)
	began = time.Now()
	incr, err := pgbackup.Create(ctx, s.tool, s.app.DB, pgbackup.Incremental, s.signer, s.manifest)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental backup %s: %s, %d files, audit size %d", incr.Label, time.Since(began).Round(time.Millisecond), len(incr.Files), incr.State.AuditSize)
	if incr.Prior != full.Label || incr.State.AuditSize <= full.State.AuditSize {
		t.Fatalf("incremental %s: prior %q, audit size %d after %d", incr.Label, incr.Prior, incr.State.AuditSize, full.State.AuditSize)
	}

	ids = append(ids, s.register(t, 30, 35)...)
	target := time.Now()
	later := s.register(t, 35, 40)
	// "check" switches WAL and waits until the segment is archived, so the
	// writes after the target are in the repository too.
	if err := s.tool.Check(ctx); err != nil {
		t.Fatal(err)
	}

	rep, err := pgbackup.Verify(ctx, s.tool, s.manifest, incr.Label, s.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Chain) != 2 || rep.Chain[1].Label != full.Label {
		t.Fatalf("verified chain %v", rep.Chain)
	}

	// Restore as of the target into a new cluster on another port.
	restored := filepath.Join(s.dir, "restored")
	port := pgtest.FreePort(t)
	began = time.Now()
	if err := s.tool.Restore(ctx, pgbackup.RestoreOptions{DataDir: restored, Target: target, Port: port, Socket: s.dir}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	c2 := pgtest.Attach(t, s.bin, restored, port, s.dir)
	c2.Start()
	t.Logf("restore: pgbackrest restore %s, then until PostgreSQL answers out of recovery %s",
		took.Round(time.Millisecond), (time.Since(began) - took).Round(time.Millisecond))

	// The restored copy, opened with a copy of the same key file and audit
	// signing key in a fresh data directory.
	data2 := t.TempDir()
	for _, k := range []string{"medguard.keys", "audit-log.key"} {
		b, err := os.ReadFile(filepath.Join(s.data, "keys", k))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(data2, "keys"), 0o700)
		if err := os.WriteFile(filepath.Join(data2, "keys", k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db2 := c2.DSN("medguard")
	app2, err := cli.Open(ctx, cli.Config{DataDir: data2, DB: db2})
	if err != nil {
		t.Fatal(err)
	}
	defer app2.Close()
	audited, err := pgbackup.CheckRestored(ctx, app2.DB, incr)
	if err != nil {
		t.Fatal(err)
	}
	if audited.Size < incr.State.AuditSize {
		t.Fatalf("restored audit size %d < %d", audited.Size, incr.State.AuditSize)
	}
	var n int
	if err := app2.DB.QueryRowContext(ctx, `SELECT count(*) FROM patients`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 35 {
		t.Fatalf("the copy restored as of the target holds %d patients, want 35", n)
	}
	for _, i := range []int{0, 25, 34} {
		p, err := app2.Records.GetPatient(ctx, clerk, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != chineseName(i) {
			t.Fatalf("patient %d decrypts to %q, want %q", i, p.Name, chineseName(i))
		}
	}
	if _, err := app2.Records.GetPatient(ctx, clerk, later[0]); !medguard.IsKind(err, medguard.NotFound) {
		t.Fatalf("a patient registered after the target: %v, want not found", err)
	}

	// One byte changed in one file of the full backup: both backups refuse
	// to verify, naming the file; pgbackrest verify finds it too.
	var victim string
	for _, f := range full.Files {
		if strings.Contains(f.Path, "/pg_data/base/") && f.Size > 64 {
			victim = f.Path
			break
		}
	}
	path := filepath.Join(s.tool.Config.Repo, victim)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), orig...)
	bad[len(bad)/2] ^= 0x01
	if err := os.WriteFile(path, bad, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = pgbackup.Verify(ctx, s.tool, s.manifest, incr.Label, s.verifier)
	var ve *pgbackup.VerifyError
	if !errors.As(err, &ve) || ve.Label != full.Label || !strings.Contains(err.Error(), "changed: "+victim) {
		t.Fatalf("verify of a tampered chain: %v", err)
	}
	t.Logf("tampered: %v", err)
	var re *pgbackup.RepoVerifyError
	if _, err := s.tool.Verify(ctx); !errors.As(err, &re) {
		t.Fatalf("pgbackrest verify of a tampered repository: %v", err)
	}
	// A missing and an extra file.
	os.WriteFile(path, orig, 0o640)
	os.Rename(path, path+".moved")
	_, err = pgbackup.Verify(ctx, s.tool, s.manifest, full.Label, s.verifier)
	if err == nil || !strings.Contains(err.Error(), "missing: "+victim) || !strings.Contains(err.Error(), "extra: "+victim+".moved") {
		t.Fatalf("verify with a file moved: %v", err)
	}
	os.Rename(path+".moved", path)

	// A manifest signed by another key is refused.
	other, _, err := note.GenerateKey(nil, "medguard/another-server")
	if err == nil {
		var osig note.Signer
		if osig, err = note.NewSigner(other); err == nil {
			msg, _ := os.ReadFile(pgbackup.ManifestPath(s.manifest, full.Label))
			n, _ := note.Open(msg, note.VerifierList(mustVerifier(t, s.verifier)))
			forged, _ := note.Sign(&note.Note{Text: n.Text}, osig)
			err = os.WriteFile(pgbackup.ManifestPath(s.manifest, full.Label), forged, 0o640)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = pgbackup.Verify(ctx, s.tool, s.manifest, full.Label, s.verifier)
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "is not signed by") {
		t.Fatalf("verify of a manifest signed by another key: %v", err)
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
