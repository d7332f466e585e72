package backup_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/backup"
	"medguard/internal/cli"
	"medguard/internal/testkit"
)

var (
	demoOnce sync.Once
	demoDir  string
	demoErr  error
)

// demoData makes (once) a small demo hospital: synthetic patients with
// Chinese names and notes, an audit log, a key file and a signing key.
func demoData(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "medguard-backup-demo-*")
		if err != nil {
			demoErr = err
			return
		}
		demoDir = filepath.Join(dir, "data")
		var out testkit.Buffer
		demoErr = cli.Run(context.Background(), []string{"demo", "--data", demoDir, "--patients", "60", "--records", "200"},
			func(string) string { return "" }, &out, &out)
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoDir
}

type fixture struct {
	data      string
	identity  backup.Identity
	recipient string
	signer    *backup.Signer
}

func newFixture(t *testing.T) fixture {
	data := demoData(t)
	id, rcpt, err := backup.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(t.TempDir(), "id.txt")
	os.WriteFile(idFile, []byte(id+"\n"), 0o600)
	ident, err := backup.LoadIdentity(idFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := backup.LoadSigner(data, "")
	if err != nil {
		t.Fatal(err)
	}
	return fixture{data: data, identity: ident, recipient: rcpt, signer: signer}
}

func (f fixture) create(t *testing.T, targets ...backup.Target) *backup.Result {
	t.Helper()
	r, err := backup.ParseRecipient(f.recipient)
	if err != nil {
		t.Fatal(err)
	}
	res, err := backup.Create(context.Background(), backup.CreateOptions{DataDir: f.data, Targets: targets, Recipient: r, Signer: f.signer})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func dirTarget(t *testing.T) backup.Target {
	tg, err := backup.OpenTarget(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestFullBackupToTwoTargetsRestores(t *testing.T) {
	f := newFixture(t)
	a, b := dirTarget(t), dirTarget(t)
	res := f.create(t, a, b)
	m := res.Manifest
	if m.Patients != 60 || m.Records != 200 || m.Audit.Size == 0 || len(m.KEKVersions) != 1 {
		t.Fatalf("manifest %+v", m)
	}
	for _, tg := range []backup.Target{a, b} {
		if _, err := backup.Verify(context.Background(), tg, m.ID, backup.VerifyOptions{Identity: f.identity}); err != nil {
			t.Fatal(err)
		}
	}
	// No clear text of a patient on the target: the demo's names are in
	// the database only encrypted, and the backup encrypts it again.
	raw, _ := os.ReadFile(filepath.Join(a.URL(), "backups", m.ID, "database.sio"))
	if bytes.Contains(raw, []byte("SQLite format 3")) {
		t.Fatal("the database piece is not encrypted")
	}
	newDir := filepath.Join(t.TempDir(), "restored")
	rep, err := backup.Restore(context.Background(), b, m.ID, backup.RestoreOptions{DataDir: newDir, Identity: f.identity,
		KeyFile: filepath.Join(f.data, "keys", "medguard.keys")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Audit.Size != m.Audit.Size || !bytes.Equal(rep.Audit.Root, m.Audit.Root) {
		t.Fatalf("restored audit %d, manifest %d", rep.Audit.Size, m.Audit.Size)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "verify,data,destruction ledger,check (integrity, indexes),keys,audit verify" {
		t.Fatalf("steps %s", got)
	}
	if _, err := os.Stat(filepath.Join(newDir, backup.RestoringMarker)); err == nil {
		t.Fatal("the marker is left after a finished restore")
	}
	entries, err := backup.List(context.Background(), a, "")
	if err != nil || len(entries) != 1 || entries[0].Manifest == nil {
		t.Fatalf("list %+v %v", entries, err)
	}
	st := backup.ComputeState([]backup.Target{a, b}, nil)
	if st.Copies != 3 || st.Media != 1 || st.OffSite != 0 || st.Met {
		t.Fatalf("3-2-1 %+v", st)
	}
}

// TestRefusals: every kind of damage is refused with a message saying
// which, and a restore refused writes nothing.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name, want string
		damage     func(t *testing.T, dir, id string)
		identity   func() backup.Identity
	}{
		{"one byte changed", "changed", func(t *testing.T, dir, id string) {
			p := filepath.Join(dir, "backups", id, "database.sio")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
		}, nil},
		{"truncated", "truncated", func(t *testing.T, dir, id string) {
			p := filepath.Join(dir, "backups", id, "database.sio")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-100)
		}, nil},
		{"piece missing", "missing", func(t *testing.T, dir, id string) {
			os.Remove(filepath.Join(dir, "backups", id, "checkpoints.sio"))
		}, nil},
		{"extra file", "extra", func(t *testing.T, dir, id string) {
			os.WriteFile(filepath.Join(dir, "backups", id, "extra.bin"), []byte("x"), 0o600)
		}, nil},
		{"manifest signed by another key", "signed by another key", func(t *testing.T, dir, id string) {
			p := filepath.Join(dir, "backups", id, "manifest")
			msg, _ := os.ReadFile(p)
			text := string(msg[:bytes.Index(msg, []byte("\n\n"))+1])
			skey, _, _ := note.GenerateKey(nil, "intruder")
			s, _ := note.NewSigner(skey)
			forged, _ := note.Sign(&note.Note{Text: text}, s)
			os.WriteFile(p, forged, 0o600)
		}, nil},
		{"manifest edited", "signature", func(t *testing.T, dir, id string) {
			p := filepath.Join(dir, "backups", id, "manifest")
			msg, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(msg, []byte(`"records":200`), []byte(`"records":201`), 1), 0o600)
		}, nil},
		{"wrong backup key", "wrong key", func(t *testing.T, dir, id string) {}, func() backup.Identity {
			other, _, _ := backup.NewIdentity()
			p := filepath.Join(t.TempDir(), "other.txt")
			os.WriteFile(p, []byte(other), 0o600)
			id, _ := backup.LoadIdentity(p)
			return id
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := dirTarget(t)
			id := f.create(t, tg).Manifest.ID
			c.damage(t, tg.URL(), id)
			ident := f.identity
			if c.identity != nil {
				ident = c.identity()
			}
			_, err := backup.Verify(ctx, tg, id, backup.VerifyOptions{Identity: ident})
			var ve *backup.VerifyError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want %q", err, c.want)
			}
			newDir := filepath.Join(t.TempDir(), "new")
			if _, err := backup.Restore(ctx, tg, id, backup.RestoreOptions{DataDir: newDir, Identity: ident}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore: %v", err)
			}
			if _, err := os.Stat(newDir); err == nil {
				t.Fatal("a refused restore wrote something")
			}
		})
	}
	t.Run("wrong key file", func(t *testing.T) {
		tg := dirTarget(t)
		id := f.create(t, tg).Manifest.ID
		other := filepath.Join(t.TempDir(), "other")
		var out testkit.Buffer
		if err := cli.Run(ctx, []string{"demo", "--data", other, "--patients", "2", "--records", "2"}, func(string) string { return "" }, &out, &out); err != nil {
			t.Fatal(err)
		}
		newDir := filepath.Join(t.TempDir(), "new")
		_, err := backup.Restore(ctx, tg, id, backup.RestoreOptions{DataDir: newDir, Identity: f.identity,
			KeyFile: filepath.Join(other, "keys", "medguard.keys")})
		if err == nil || !strings.Contains(err.Error(), "wrong key file") {
			t.Fatalf("restore with another key file: %v", err)
		}
		if _, err := os.Stat(filepath.Join(newDir, backup.RestoringMarker)); err != nil {
			t.Fatal("a restore stopped half-way must leave its marker (serve refuses the directory)")
		}
	})
}

// TestIncrementalStreamRestores ships the WAL with Litestream, seals it,
// and restores the database from the stream alone.
// TestIncrementalStreamRestores: the continuous stream sealed by an
// incremental backup verifies and restores, under either cipher (SM4-GCM
// selectable, --backup-cipher); a full backup under SM4-GCM too.
func TestIncrementalStreamRestores(t *testing.T) {
	for _, c := range []string{backup.CipherAES, backup.CipherSM4} {
		t.Run(c[:7], func(t *testing.T) { incrementalStreamRestores(t, c) })
	}
}

func incrementalStreamRestores(t *testing.T, sealWith string) {
	f := newFixture(t)
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	copyDir(t, f.data, data)
	tg := dirTarget(t)
	r, _ := backup.ParseRecipient(f.recipient)
	opt := backup.CreateOptions{DataDir: data, Targets: []backup.Target{tg}, Recipient: r, Signer: f.signer, Cipher: sealWith}
	res, err := backup.CreateIncremental(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if m.Kind != backup.Incremental || m.Audit.Size == 0 || m.Cipher != sealWith {
		t.Fatalf("manifest %+v", m)
	}
	for _, p := range m.Pieces {
		raw, err := os.ReadFile(filepath.Join(tg.URL(), p.Name))
		if err != nil {
			t.Fatal(err)
		}
		// A piece begins with its cipher's format; a stream segment with
		// its header and wrapped key, then the same.
		head := raw[:min(len(raw), 512)]
		if p.Role != "key" && bytes.Contains(head, []byte("MGSM4\x01")) != (sealWith == backup.CipherSM4) {
			t.Fatalf("%s is not sealed with %s", p.Name, sealWith)
		}
	}
	if _, err := backup.Verify(ctx, tg, m.ID, backup.VerifyOptions{Identity: f.identity}); err != nil {
		t.Fatal(err)
	}
	newDir := filepath.Join(t.TempDir(), "restored")
	rep, err := backup.Restore(ctx, tg, m.ID, backup.RestoreOptions{DataDir: newDir, Identity: f.identity,
		KeyFile: filepath.Join(data, "keys", "medguard.keys")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Audit.Size < m.Audit.Size {
		t.Fatalf("restored audit size %d < sealed %d", rep.Audit.Size, m.Audit.Size)
	}
	// A second seal after more writes ships only the new transactions.
	app, err := cli.Open(ctx, cli.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
	res2, err := backup.CreateIncremental(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Manifest.Pieces) <= len(m.Pieces) {
		t.Fatalf("second seal has %d pieces, first %d", len(res2.Manifest.Pieces), len(m.Pieces))
	}
	t.Logf("root %s", base64.StdEncoding.EncodeToString(rep.Audit.Root))

	full, err := backup.Create(ctx, opt)
	if err != nil || full.Manifest.Cipher != sealWith {
		t.Fatalf("full backup: %v", err)
	}
	if _, err := backup.Restore(ctx, tg, full.Manifest.ID, backup.RestoreOptions{DataDir: filepath.Join(t.TempDir(), "full"),
		Identity: f.identity, KeyFile: filepath.Join(data, "keys", "medguard.keys")}); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
