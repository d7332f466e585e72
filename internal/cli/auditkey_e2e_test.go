package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/cli"
	"medguard/internal/retention"
	"medguard/internal/storage/storagetest"
)

// TestAuditKeyRotationAcrossServes rotates the audit log's signing key
// between two runs of the real server (SQLite, or PostgreSQL with
// MEDGUARD_TEST_POSTGRES):
//   - serve, write, keep a checkpoint and the original verifier key, stop;
//   - "keys rotate-audit-key": a new key, the old one destroyed, its
//     verifier key in the history, the destruction ledger co-signed;
//   - serve again with the new key, write, keep a checkpoint, stop;
//   - "audit verify --verifier-key ORIGINAL" passes across the rotation
//     and prints the chain; a tampered history, and a checkpoint signed by
//     a key no transition introduces, fail with exit status 3.
func TestAuditKeyRotationAcrossServes(t *testing.T) {
	dir := t.TempDir()
	var db []string
	if pg := os.Getenv(storagetest.PostgresEnv); pg != "" {
		db = []string{"--db", storagetest.FreshSchema(t, pg)}
	}
	args := func(a ...string) []string { return append(a, db...) }
	keep := func(name string, note []byte) string {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, note, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	s := start(t, args("--data", dir, "--checkpoint-every", "50ms")...)
	admin := s.admin()
	s.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "CARD", "name": "心内科"})
	_, _, before := s.do("GET", "/api/v1/audit/checkpoint", admin, nil)
	original := strings.TrimSpace(runCLI(t, "audit", "key", "--data", dir))
	s.stop()
	s.stop = nil

	// A destruction certificate the old key signed, in the ledger the
	// server reads at start with its own key.
	oldSigner, _, err := audit.LoadOrCreateSigner(filepath.Join(dir, "keys", "audit-log.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	ledger := retention.OpenLedger(filepath.Join(dir, retention.LedgerFile), oldSigner)
	cert, err := ledger.Sign(retention.Certificate{ID: medguard.NewID(time.Now()), Origin: oldSigner.Origin(),
		DestroyedAt: time.Now().UTC(), RequestedBy: "王建国", ApprovedBy: "李秀英", Counts: map[string]int{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.Append(cert); err != nil {
		t.Fatal(err)
	}

	out := runCLI(t, args("keys", "rotate-audit-key", "--data", dir)...)
	if !strings.Contains(out, "rotated at tree size") || !strings.Contains(out, "co-signed 1 destruction certificates") {
		t.Fatalf("rotate-audit-key:\n%s", out)
	}
	t.Logf("keys rotate-audit-key:\n%s", out)
	rotated := strings.TrimSpace(runCLI(t, "audit", "key", "--data", dir))
	if rotated == original || audit.KeyName(rotated) == audit.KeyName(original) {
		t.Fatalf("the key did not change: %s", rotated)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "audit-log.key.new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the new key was left beside the installed one: %v", err)
	}
	history, err := audit.ReadKeyHistory(filepath.Join(dir, "keys", "audit-log.history"))
	if err != nil || len(history) != 1 || history[0].VerifierKey != original || history[0].From != 0 || history[0].To == 0 {
		t.Fatalf("history: %+v %v", history, err)
	}
	status := runCLI(t, args("keys", "status", "--data", dir)...)
	if !strings.Contains(status, audit.KeyName(rotated)) || !strings.Contains(status, audit.KeyName(original)+"  signed sizes 0 to") {
		t.Fatalf("keys status:\n%s", status)
	}

	// Served again: the new key signs; the rotation is in the log.
	s2 := start(t, args("--data", dir, "--checkpoint-every", "50ms")...)
	s2.book = s.book
	s2.book.tokens = map[string]string{}
	admin = s2.admin()
	s2.json(201, "POST", "/api/v1/departments", admin, map[string]string{"code": "NEUR", "name": "神经内科"})
	_, _, after := s2.do("GET", "/api/v1/audit/checkpoint", admin, nil)
	if _, _, _, err := audit.OpenCheckpoint(after, rotated); err != nil {
		t.Fatalf("the new checkpoint with the new key: %v\n%s", err, after)
	}
	if _, _, _, err := audit.OpenCheckpoint(after, original); err == nil {
		t.Fatal("the old key still signs")
	}
	items := s2.json(200, "GET", "/api/v1/audit/search?action=audit.key_rotated&limit=10", s2.security(), nil)["items"].([]any)
	want := "key-" + audit.KeyHash(original) + "-to-" + audit.KeyHash(rotated)
	if len(items) != 1 || items[0].(map[string]any)["entry"].(map[string]any)["target_id"] != want {
		t.Fatalf("audit.key_rotated entries (want target %s): %v", want, items)
	}
	s2.stop()
	s2.stop = nil

	// The auditor's original key verifies the whole log across the
	// rotation, with the checkpoints kept before and after it.
	verify := func(extra ...string) (string, error) {
		var buf bytes.Buffer
		err := cli.Run(context.Background(), args(append([]string{"audit", "verify", "--data", dir, "--verifier-key", original,
			"--checkpoint", keep("before", before), "--checkpoint", keep("after", after)}, extra...)...),
			func(string) string { return "" }, &buf, &buf)
		return buf.String(), err
	}
	out, err = verify()
	if err != nil || !strings.Contains(out, "audit log intact") || !strings.Contains(out, "chain of keys followed from "+audit.KeyName(original)) ||
		!strings.Contains(out, audit.KeyName(rotated)+"  signs from size") {
		t.Fatalf("verify with the original key: %v\n%s", err, out)
	}
	t.Logf("audit verify --verifier-key ORIGINAL:\n%s", out)
	tampered := func(out string, err error, says string) {
		t.Helper()
		var exit *cli.ExitError
		if !errors.As(err, &exit) || exit.Code != cli.ExitTampered || !strings.Contains(out, says) {
			t.Fatalf("want exit %d saying %q: %v\n%s", cli.ExitTampered, says, err, out)
		}
	}

	// A tampered history (the retired key's range changed) fails.
	hpath := filepath.Join(dir, "keys", "audit-log.history")
	hb := must(os.ReadFile(hpath))
	bad := strings.Replace(string(hb), original+" 0 ", original+" 1 ", 1)
	if bad == string(hb) {
		t.Fatalf("history:\n%s", hb)
	}
	os.WriteFile(hpath, []byte(bad), 0o600)
	out, err = verify()
	tampered(out, err, "THE KEY HISTORY DOES NOT MATCH THE LOG")
	os.WriteFile(hpath, hb, 0o600)

	// A checkpoint signed by a key no transition introduces fails.
	_, forged, err := audit.GenerateSigner(oldSigner.Origin())
	if err != nil {
		t.Fatal(err)
	}
	_, size, root, err := audit.OpenCheckpoint(after, rotated)
	if err != nil {
		t.Fatal(err)
	}
	fake := must(forged.Sign(size, root))
	out, err = verify("--checkpoint", keep("forged", fake))
	tampered(out, err, "signed only by "+audit.KeyName(forged.VerifierKey()))

	// Untouched again, it verifies.
	if out, err := verify(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
