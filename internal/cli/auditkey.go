package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"medguard/internal/audit"
	"medguard/internal/gate"
	"medguard/internal/keys"
	"medguard/internal/retention"
)

// The rotation of the audit log's signing key (docs/keys.md, "The
// audit-signing key"). It runs on the host with every server stopped: the
// key is a file there (whoever runs it already holds the key), and every
// server signs with the key it loaded at start, so a rotation under a
// running server would leave it signing with the retired key.

// auditKeyFiles are the files of the audit log's key in a data directory.
type auditKeyFiles struct{ key, next, history string }

func auditKeyPaths(data string) auditKeyFiles {
	k := filepath.Join(data, "keys", "audit-log.key")
	return auditKeyFiles{key: k, next: k + ".new", history: filepath.Join(data, "keys", "audit-log.history")}
}

// keysRotateAuditKey rotates the audit log's signing key: a new key, a
// transition checkpoint signed by both, the retired key's verifier key in
// the key history, the destruction ledger co-signed by the new key, then
// the new key installed and the old one overwritten and removed. Each step
// is resumable: a crash leaves DATA/keys/audit-log.key.new, and the next run
// finishes what the transition checkpoint started (or starts over if it was
// not yet written).
func keysRotateAuditKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := newFlags("keys rotate-audit-key", stderr)
	commonFlags(fs, &f)
	fs.Usage = func() {
		usage(stderr, fs.FlagSet, "usage: medguard keys rotate-audit-key --data DIR [--db DSN]\n\n"+
			"Rotates the audit log's signing key (DATA/keys/audit-log.key) with every server stopped: a new key signs\n"+
			"from now on, a transition checkpoint signed by the old and the new key links them, the old key's\n"+
			"verifier key goes into DATA/keys/audit-log.history, and the old private key is destroyed.\n"+
			"Auditors keep their original verifier key: \"audit verify\" follows the chain.")
	}
	if err := parse(fs.FlagSet, args, getenv); err != nil {
		return usageError{err}
	}
	if getenv("MEDGUARD_AUDIT_KEY") != "" {
		return errors.New("the audit log's signing key comes from MEDGUARD_AUDIT_KEY: this command rotates the key file " +
			"DATA/keys/audit-log.key only. Move the key into that file (0600), unset MEDGUARD_AUDIT_KEY, and run it again")
	}
	alg, err := keys.ParseAlgorithm(f.cipher)
	if err != nil {
		return usageError{err}
	}
	if f.db == "" {
		if _, err := os.Stat(filepath.Join(f.data, "medguard.db")); err != nil {
			return fmt.Errorf("no database in %s: %w", f.data, err)
		}
	}
	paths := auditKeyPaths(f.data)
	if _, err := os.Stat(paths.key); err != nil {
		return fmt.Errorf("the audit log's signing key: %w", err)
	}
	cfg := Config{DataDir: f.data, DB: f.db, KeyFile: f.keyFile, Keys: getenv("MEDGUARD_KEYS"), Cipher: alg,
		LogOrigin: f.logOrigin, KEK: f.kekConfig(getenv)}

	// A rotation a crash interrupted: its new key is there. If the
	// database's latest checkpoint is the transition to it, finish with
	// it; if not, the transition was never written: start over.
	var next *audit.Signer
	var nextKey string
	if b, err := os.ReadFile(paths.next); err == nil {
		nextKey = strings.TrimSpace(string(b))
		if next, err = audit.NewSigner(nextKey); err != nil {
			return fmt.Errorf("%s: %w", paths.next, err)
		}
		resume, err := latestTransitionTo(ctx, f.data, f.db, next.VerifierKey())
		if err != nil {
			return err
		}
		if resume != nil {
			fmt.Fprintf(stdout, "finishing the rotation to %s that was interrupted after its transition checkpoint (size %d)\n",
				audit.KeyName(next.VerifierKey()), resume.Size)
			cfg.AuditKey = nextKey
			app, err := Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer app.Close()
			return finishAuditKeyRotation(app, paths, resume, stdout)
		}
		if err := os.Remove(paths.next); err != nil {
			return err
		}
		next, nextKey = nil, ""
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}

	app, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer app.Close()
	old := app.Checkpoints.Signer()
	// The retiring key vouches for the tree at the rotation: the log must
	// verify first (with the archive files, if any are in their usual place).
	vopts := audit.VerifyOptions{VerifierKey: old.VerifierKey()}
	if dir := filepath.Join(f.data, "audit-archive"); fileExists(dir) {
		stored, err := audit.StoredCheckpoints(ctx, app.DB)
		if err != nil {
			return err
		}
		chain, err := audit.FollowKeys(old.VerifierKey(), stored)
		if err != nil {
			return err
		}
		if vopts.Archived, err = audit.OpenArchive(dir, chain.VerifierKeys()...); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "verifying the audit log before its key signs the transition …")
	if _, err := audit.Verify(ctx, app.DB, vopts); err != nil {
		return fmt.Errorf("the audit log must verify before its key is rotated: %w", err)
	}

	nextKey, next, err = audit.GenerateSigner(old.Origin())
	if err != nil {
		return err
	}
	if err := writeFileSynced(paths.next, []byte(nextKey+"\n")); err != nil {
		return err
	}
	// The destruction ledger first: the server reads it with its own key,
	// and a rotation resumed after a crash opens the installation with the
	// new one. The retired key's signatures stay.
	cosigned, err := coSignLedger(filepath.Join(f.data, retention.LedgerFile), old.VerifierKey(), next)
	if err != nil {
		return err
	}
	target := "key-" + audit.KeyHash(old.VerifierKey()) + "-to-" + audit.KeyHash(next.VerifierKey())
	if _, err := app.Gate.Record(ctx, gate.Event{Call: keysSystem, Action: "audit.key_rotated", TargetType: "audit_key",
		TargetID: target, Allowed: true, Rule: "allow.system"}, nil); err != nil {
		return err
	}
	cp, err := app.Checkpoints.Transition(ctx, next)
	if err != nil {
		return err
	}
	t, _, err := audit.ParseTransition([]byte(cp.Note))
	if err != nil {
		return err
	}
	t.SignedAt = cp.SignedAt
	if cosigned > 0 {
		fmt.Fprintf(stdout, "co-signed %d destruction certificates in the destruction ledger with the new key\n", cosigned)
	}
	return finishAuditKeyRotation(app, paths, t, stdout)
}

// finishAuditKeyRotation does what follows the transition checkpoint: the
// history line, the new key installed, the old one destroyed. Each step may
// be repeated.
func finishAuditKeyRotation(app *App, paths auditKeyFiles, t *audit.Transition, stdout io.Writer) error {
	stored, err := audit.StoredCheckpoints(context.Background(), app.DB)
	if err != nil {
		return err
	}
	chain, err := audit.FollowKeys(t.Next, stored)
	if err != nil {
		return err
	}
	from := uint64(0)
	for _, k := range chain {
		if k.VerifierKey == t.Previous {
			from = k.From
		}
	}
	if err := audit.AppendKeyHistory(paths.history, audit.ChainKey{VerifierKey: t.Previous, From: from, To: t.Size,
		Retired: true, RetiredAt: t.SignedAt}); err != nil {
		return err
	}
	if err := destroyKeyFile(paths.key); err != nil {
		return err
	}
	if err := os.Rename(paths.next, paths.key); err != nil {
		return err
	}
	if err := syncDirOf(paths.key); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "The audit log's signing key is rotated at tree size %d.\n", t.Size)
	fmt.Fprintf(stdout, "retired key (destroyed; its verifier key is kept in %s):\n  %s\n", paths.history, t.Previous)
	fmt.Fprintf(stdout, "new key (signs from size %d on):\n  %s\n", t.Size, t.Next)
	fmt.Fprintf(stdout, "The transition checkpoint (signed by both keys) is in the database and in %s.\n"+
		"Auditors keep their original verifier key: \"medguard audit verify --verifier-key KEY\" follows the chain.\n"+
		"Give the new verifier key and the transition checkpoint to the SIEM and to anyone who checks checkpoints.\n",
		filepath.Join(app.Config.DataDir, "checkpoints.log"))
	return nil
}

// latestTransitionTo returns the database's latest checkpoint if it is a
// transition to the verifier key next.
func latestTransitionTo(ctx context.Context, data, dsn, next string) (*audit.Transition, error) {
	db, err := openForAudit(ctx, data, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	stored, err := audit.StoredCheckpoints(ctx, db)
	if err != nil || len(stored) == 0 {
		return nil, err
	}
	latest := stored[len(stored)-1]
	t, ok, err := audit.ParseTransition([]byte(latest.Note))
	if !ok || err != nil || t.Next != next {
		return nil, nil
	}
	t.SignedAt = latest.SignedAt
	return t, nil
}

// coSignLedger adds the new key's signature to every certificate of the
// destruction ledger that the retired key signed, so that the server,
// which checks the ledger with its own key, still reads it; the retired
// key's signatures stay. The file is replaced atomically.
func coSignLedger(path, retired string, next *audit.Signer) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	n := 0
	rest := data
	for len(rest) > 0 {
		line, after, complete := bytes.Cut(rest, []byte("\n"))
		rest = after
		if !complete { // a partial last line, as the ledger reader leaves it
			out.Write(line)
			break
		}
		if _, err := retention.Verify(line, next.VerifierKey()); err == nil {
			out.Write(line)
			out.WriteByte('\n')
			continue
		}
		s, err := retention.Parse(line)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		if _, err := retention.Verify(line, retired); err != nil {
			return 0, fmt.Errorf("%s: a certificate the retired key did not sign: %w", path, err)
		}
		cosigned, err := next.CoSign([]byte(s.Note), retired)
		if err != nil {
			return 0, err
		}
		s.Note = string(cosigned)
		b, err := json.Marshal(s)
		if err != nil {
			return 0, err
		}
		out.Write(b)
		out.WriteByte('\n')
		n++
	}
	if n == 0 {
		return 0, nil
	}
	tmp := path + ".tmp"
	if err := writeFileSynced(tmp, out.Bytes()); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	return n, syncDirOf(path)
}

// destroyKeyFile overwrites a private key file with zeros, syncs it and
// removes it. (On a copy-on-write file system or an SSD the old blocks may
// survive the overwrite: docs/keys.md says so.) A file already destroyed
// (all zeros, or missing) is left as is.
func destroyKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, st.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	return os.Remove(path)
}

// writeFileSynced writes a new 0600 file and syncs it and its directory.
func writeFileSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	return syncDirOf(path)
}

func syncDirOf(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// printAuditKeyStatus shows the audit log's signing key and its history,
// for keys status.
func printAuditKeyStatus(w io.Writer, app *App) {
	fmt.Fprintf(w, "\naudit log signing key: %s (verifier key %s)\n", audit.KeyName(app.Checkpoints.Signer().VerifierKey()),
		app.Checkpoints.Signer().VerifierKey())
	history, err := audit.ReadKeyHistory(auditKeyPaths(app.Config.DataDir).history)
	if err != nil {
		fmt.Fprintf(w, "key history: %v\n", err)
		return
	}
	if len(history) == 0 {
		fmt.Fprintln(w, "key history: never rotated")
		return
	}
	fmt.Fprintln(w, "retired audit log keys (rotate with \"medguard keys rotate-audit-key\"):")
	for _, k := range history {
		fmt.Fprintf(w, "  %s  signed sizes %d to %d, retired %s\n", audit.KeyName(k.VerifierKey), k.From, k.To,
			k.RetiredAt.UTC().Format(time.RFC3339))
	}
}
