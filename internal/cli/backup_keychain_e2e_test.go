package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/audit"
	"medguard/internal/cli"
	"medguard/internal/storage/storagetest"
)

// TestBackupsFollowAuditKeyRotation backs up across a rotation of the
// audit log's signing key, through the real server and CLI (SQLite):
//   - serve with a backup target (the schedule makes a full backup), back
//     up with `backup create`, stop;
//   - "keys rotate-audit-key";
//   - serve again with the same target: the schedule backs up with the
//     new key (the target, which pinned the original key, follows the
//     transition checkpoint instead of refusing), and so does
//     `backup create`;
//   - `backup list` and `backup verify` pass for backups from before and
//     after, from the pinned key and from the new one;
//   - the pre-rotation and the post-rotation backup restore onto fresh
//     directories, the latter with the target's key-transitions file gone
//     (the manifest carries the chain) and with the original key given;
//   - forged: a manifest signed by an unrelated key (with a transition
//     checkpoint only that key signed), and one signed by the retired key
//     for a tree beyond its retirement, are refused, saying which key.
func TestBackupsFollowAuditKeyRotation(t *testing.T) {
	t.Parallel() // slow and independent: runs beside the others (CI time)
	if underRace {
		t.Skip("slow under the race detector (the scrubber, backups); CI runs it in the plain runs")
	}
	if os.Getenv(storagetest.PostgresEnv) != "" {
		t.Skip("medguard backup backs up SQLite data directories; PostgreSQL's: TestPGBackRest…")
	}
	if testing.Short() {
		t.Skip("serves twice and restores twice")
	}
	dir := t.TempDir()
	ident := filepath.Join(t.TempDir(), "backup-identity.txt")
	runCLI(t, "backup", "keygen", "--data", dir, "--identity-out", ident)
	target := t.TempDir()
	serve := []string{"--data", dir, "--backup-to", target, "--backup-continuous=false", "--backup-full-every", "1s",
		"--checkpoint-every", "100ms"}
	manifests := func() int {
		m, _ := filepath.Glob(filepath.Join(target, "backups", "*", "manifest"))
		return len(m)
	}
	waitBackups := func(n int) {
		t.Helper()
		for i := 0; manifests() < n; i++ {
			if i > 1200 {
				t.Fatalf("the schedule made %d backups, want %d", manifests(), n)
			}
			time.Sleep(50 * time.Millisecond) // waiting for the schedule, not timing it
		}
	}
	lastURL := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}

	s := start(t, serve...)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	waitBackups(1)
	preURL := lastURL(runCLI(t, "backup", "create", "--data", dir, "--to", target))
	original := strings.TrimSpace(runCLI(t, "audit", "key", "--data", dir))
	s.stop()
	s.stop = nil
	// A copy of the key about to be retired: a leaked old key.
	leaked := must(os.ReadFile(filepath.Join(dir, "keys", "audit-log.key")))
	keyFile := filepath.Join(t.TempDir(), "medguard.keys")
	os.WriteFile(keyFile, must(os.ReadFile(filepath.Join(dir, "keys", "medguard.keys"))), 0o600)

	runCLI(t, "keys", "rotate-audit-key", "--data", dir)
	rotated := strings.TrimSpace(runCLI(t, "audit", "key", "--data", dir))
	if rotated == original {
		t.Fatal("the key did not rotate")
	}

	// Served again with the same target: the schedule's full backup, with
	// the new key, is not refused.
	before := manifests()
	s2 := start(t, serve...)
	s2.book = s.book
	s2.book.tokens = map[string]string{}
	admin = s2.admin()
	s2.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "NEUR", "name": "神经内科"})
	waitBackups(before + 1)
	postURL := lastURL(runCLI(t, "backup", "create", "--data", dir, "--to", target))
	items := s2.json(200, "GET", "/api/v1/audit/search?action=backup.full&limit=50", s2.security(), nil)["items"].([]any)
	for _, it := range items {
		if e := it.(map[string]any)["entry"].(map[string]any); e["outcome"] != "success" {
			t.Errorf("a scheduled backup after the rotation: %v", e)
		}
	}
	if len(items) == 0 {
		t.Error("no backup.full entry")
	}
	s2.stop()
	s2.stop = nil
	if pinned := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(target, "verifier.key"))))); pinned != original {
		t.Errorf("the target's pinned key changed: %s", pinned)
	}

	// Listed and verified, from the pinned key and from the new one.
	for _, vk := range [][]string{nil, {"--verifier-key", rotated}, {"--verifier-key", original}} {
		list := runCLI(t, append([]string{"backup", "list", "--to", target}, vk...)...)
		if strings.Contains(list, "\t-\t-\t-\t") || !strings.Contains(list, "signed by "+audit.KeyName(original)) ||
			!strings.Contains(list, "signed by "+audit.KeyName(rotated)) || strings.Count(list, "\tfull\t") != manifests() {
			t.Fatalf("backup list %v:\n%s", vk, list)
		}
		for url, key := range map[string]string{preURL: original, postURL: rotated} {
			out := runCLI(t, append([]string{"backup", "verify", url, "--backup-identity", ident}, vk...)...)
			if !strings.Contains(out, "signed by "+audit.KeyName(key)) {
				t.Fatalf("backup verify %s %v: %s", url, vk, out)
			}
		}
	}
	t.Logf("backup list after the rotation:\n%s", runCLI(t, "backup", "list", "--to", target))

	// The pre-rotation backup restores onto a fresh directory.
	rout := runCLI(t, "backup", "restore", preURL, "--data", filepath.Join(t.TempDir(), "pre"), "--backup-identity", ident, "--key-file", keyFile)
	if !strings.Contains(rout, "audit tree size") {
		t.Fatalf("restore of the pre-rotation backup: %s", rout)
	}
	// The post-rotation one too, from the original key, with only the
	// backup (the target's transitions file lost): its manifest carries
	// the transition checkpoint.
	os.Remove(filepath.Join(target, "key-transitions"))
	newDir := filepath.Join(t.TempDir(), "post")
	rout = runCLI(t, "backup", "restore", postURL, "--data", newDir, "--backup-identity", ident, "--key-file", keyFile,
		"--verifier-key", original)
	if !strings.Contains(rout, "audit tree size") {
		t.Fatalf("restore of the post-rotation backup: %s", rout)
	}
	aout := runCLI(t, "audit", "verify", "--data", newDir, "--verifier-key", original)
	if !strings.Contains(aout, "audit log intact") || !strings.Contains(aout, audit.KeyName(rotated)+"  signs from size") {
		t.Fatalf("audit verify of the restored post-rotation copy:\n%s", aout)
	}

	// Forged: a copy of the post-rotation manifest signed by an unrelated
	// key of the same name, with a transition checkpoint that only it
	// signed put on the target.
	msg := must(os.ReadFile(filepath.Join(strings.TrimPrefix(postURL, "file://"), "manifest")))
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(unverified.Note.Text, "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	forge := func(skey string, size float64) string {
		t.Helper()
		signer := must(note.NewSigner(skey))
		r := make([]byte, 3)
		rand.Read(r)
		id := time.Now().UTC().Format("20060102T150405Z") + "-full-" + hex.EncodeToString(r)
		m["id"] = id
		m["audit"].(map[string]any)["size"] = size
		b := must(json.Marshal(m))
		signed := must(note.Sign(&note.Note{Text: header + "\n" + string(b) + "\n"}, signer))
		bdir := filepath.Join(target, "backups", id)
		os.MkdirAll(bdir, 0o700)
		if err := os.WriteFile(filepath.Join(bdir, "manifest"), signed, 0o600); err != nil {
			t.Fatal(err)
		}
		return bdir
	}
	origin := audit.KeyName(original)[:strings.Index(audit.KeyName(original), "+")]
	fskey, fvkey := must2(note.GenerateKey(rand.Reader, origin))
	fsigner := must(note.NewSigner(fskey))
	transition := must(note.Sign(&note.Note{Text: origin + "\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\nprevious-key " + original +
		"\nnext-key " + fvkey + "\n"}, fsigner))
	line := must(json.Marshal(audit.Checkpoint{Size: 1, Note: string(transition)}))
	os.WriteFile(filepath.Join(target, "key-transitions"), append(line, '\n'), 0o600)
	forged := forge(fskey, 1)
	failVerify := func(url string, says ...string) {
		t.Helper()
		var out bytes.Buffer
		err := cli.Run(context.Background(), []string{"backup", "verify", url}, func(string) string { return "" }, &out, &out)
		msg := out.String()
		if err != nil {
			msg += err.Error()
		}
		for _, w := range says {
			if err == nil || !strings.Contains(msg, w) {
				t.Fatalf("backup verify %s: %v, want it refused saying %q:\n%s", url, err, w, msg)
			}
		}
		t.Logf("refused: %s", msg)
	}
	failVerify(forged, "signed only by "+audit.KeyName(fvkey), "not signed by the key it retires")
	list := runCLI(t, "backup", "list", "--to", target)
	if !strings.Contains(list, filepath.Base(forged)+"\t-\t-\t-\t") || !strings.Contains(list, audit.KeyName(fvkey)) {
		t.Fatalf("backup list with a forged manifest:\n%s", list)
	}
	os.RemoveAll(forged)

	// The leaked retired key signs a manifest of a tree beyond its
	// retirement: refused.
	beyond := forge(strings.TrimSpace(string(leaked)), 1e6)
	failVerify(beyond, "signed by "+audit.KeyName(original)+", which a key rotation retired at audit tree size")
	os.RemoveAll(beyond)
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}
