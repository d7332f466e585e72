package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/keys"
	"medguard/internal/retention"
	"medguard/internal/storage"
)

// RestoringMarker is the file a restore leaves in the new data directory
// until it has finished: `serve` refuses a directory holding it, so a
// restore killed half-way is never served. Running the restore again
// finishes it.
const RestoringMarker = "RESTORE-IN-PROGRESS"

// RestoredFile is the note a finished restore leaves in the new data
// directory (JSON, a Restored): the server's first start records it in
// the audit log (backup.restored) and removes it.
const RestoredFile = "RESTORED-FROM"

// Restored is what RestoredFile says: which backup the data directory
// was restored from, and the audit tree the manifest names.
type Restored struct {
	Backup     string    `json:"backup"`
	Kind       string    `json:"kind"`
	AuditSize  uint64    `json:"audit_size"`
	AuditRoot  []byte    `json:"audit_root"`
	DataAsOf   time.Time `json:"data_as_of"`
	At         time.Time `json:"at,omitzero"`
	RestoredAt time.Time `json:"restored_at"`
}

// ReadRestored reads a data directory's RestoredFile (nil if none).
func ReadRestored(dataDir string) (*Restored, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, RestoredFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Restored
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", RestoredFile, err)
	}
	return &r, nil
}

// RestoreOptions are what Restore needs.
type RestoreOptions struct {
	// DataDir is the new data directory; it must not hold a database.
	DataDir     string
	Identity    age.Identity
	VerifierKey string
	// KeyFile, if set, is the key file the restored data will be read
	// with: it must unwrap the restored data keys, and is copied to
	// DATA/keys/medguard.keys.
	KeyFile string
	// At, if not zero, replays an incremental backup's stream only up to
	// this moment (point-in-time restore).
	At time.Time
	// Step, if set, is told each step's name and time as it ends.
	Step func(Step)
}

// Step is one timed step of a restore.
type Step struct {
	Name string        `json:"name"`
	Took time.Duration `json:"took"`
}

// RestoreReport says what a restore did.
type RestoreReport struct {
	Manifest *Manifest
	Steps    []Step
	// Audit is the restored audit tree (verified), equal to the manifest's.
	Audit AuditState
	// Ledger says which destruction certificates were put back.
	Ledger LedgerMerge
	Took   time.Duration
}

// Restore verifies backup id on target whole — signature, every piece's
// SHA-256 and decryption with the identity — before writing anything, then
// restores it into a new data directory in timed steps: data (the
// database), checkpoints and signing key, check (SQLite integrity and
// indexes), keys (the key file opens the data keys), audit verify (the
// whole log, against the restored checkpoints, and its root against the
// manifest's).
func Restore(ctx context.Context, t Target, id string, opt RestoreOptions) (*RestoreReport, error) {
	start := time.Now()
	rep := &RestoreReport{}
	step := func(name string, since time.Time) {
		s := Step{Name: name, Took: time.Since(since)}
		rep.Steps = append(rep.Steps, s)
		if opt.Step != nil {
			opt.Step(s)
		}
	}
	if opt.Identity == nil {
		return nil, errors.New("backup: restore needs the backup identity file (--identity)")
	}
	if err := checkEmptyTarget(opt.DataDir); err != nil {
		return nil, err
	}
	var kf *keys.KeyFile
	if opt.KeyFile != "" {
		var err error
		if kf, err = keys.LoadKeyFile(opt.KeyFile); err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
	}
	t0 := time.Now()
	m, key, kc, err := verify(ctx, t, id, VerifyOptions{VerifierKey: opt.VerifierKey, Identity: opt.Identity})
	if err != nil {
		return nil, err
	}
	rep.Manifest = m
	step("verify", t0)

	if !opt.At.IsZero() && m.Kind != Incremental {
		return nil, fmt.Errorf("backup: --at needs an incremental backup (the continuous stream); %s is a full snapshot", id)
	}
	if !opt.At.IsZero() && m.Kind == Incremental && opt.At.Before(streamStart(m)) {
		return nil, fmt.Errorf("backup: --at %s is before stream generation %s of %s starts (%s): restore the seal of the generation that covers it (`backup list` shows each generation's span and seals), or give the target instead of a backup and --at chooses it",
			opt.At.Format(time.RFC3339), m.Base, id, streamStart(m).Format(time.RFC3339))
	}
	// Nothing is written before this point.
	t0 = time.Now()
	if err := os.MkdirAll(filepath.Join(opt.DataDir, "keys"), 0o700); err != nil {
		return nil, err
	}
	marker := filepath.Join(opt.DataDir, RestoringMarker)
	if err := os.WriteFile(marker, []byte("backup "+id+"\n"), 0o600); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(opt.DataDir, "medguard.db")
	if m.Kind == Incremental {
		os.Remove(dbPath + ".tmp")
		if err := restoreStream(ctx, t, m, opt.Identity, dbPath, opt.At); err != nil {
			return nil, err
		}
	}
	var backupLedger []byte
	for _, p := range m.Pieces {
		var dst string
		switch p.Role {
		case "ledger":
			if backupLedger, err = readPiece(ctx, t, p, key); err != nil {
				return nil, err
			}
			continue
		case "database":
			dst = dbPath
		case "checkpoints":
			dst = filepath.Join(opt.DataDir, "checkpoints.log")
		case "signing-key":
			dst = filepath.Join(opt.DataDir, "keys", "audit-log.key")
		default:
			continue
		}
		if err := restorePiece(ctx, t, p, key, dst); err != nil {
			return nil, err
		}
	}
	step("data", t0)

	// The destruction ledger: the backup's, joined with the newest one the
	// target holds (destructions made after the backup), so that the first
	// start of the restored copy destroys again what was destroyed since.
	t0 = time.Now()
	newest, err := targetLedger(ctx, t, opt.Identity)
	if err != nil {
		return nil, err
	}
	if rep.Ledger, err = mergeLedgers(filepath.Join(opt.DataDir, retention.LedgerFile), backupLedger, newest, kc.chain.VerifierKeys()); err != nil {
		return nil, err
	}
	step("destruction ledger", t0)

	t0 = time.Now()
	db, err := storage.Open(ctx, "sqlite:"+dbPath, "")
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			db.Close()
		}
	}()
	var ok string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		return nil, fmt.Errorf("backup: the restored database fails SQLite's integrity check: %v %s", err, ok)
	}
	step("check (integrity, indexes)", t0)

	if kf != nil {
		t0 = time.Now()
		if err := keys.NewKeyring(db, kf, medguard.SystemClock{}).Check(ctx); err != nil {
			return nil, fmt.Errorf("backup: wrong key file: %s does not open the backup's data keys (KEK versions %v): %w", opt.KeyFile, m.KEKVersions, err)
		}
		if err := keys.WriteKeyFile(filepath.Join(opt.DataDir, "keys", "medguard.keys"), kf); err != nil {
			return nil, err
		}
		step("keys", t0)
	}

	t0 = time.Now()
	vopts := audit.VerifyOptions{VerifierKey: signerVerifier(opt.DataDir)}
	// Restored to an earlier moment, the log is checked on its own: the
	// checkpoints file holds checkpoints of later trees.
	if f, err := os.Open(filepath.Join(opt.DataDir, "checkpoints.log")); err == nil && opt.At.IsZero() {
		vopts.Checkpoints, err = audit.ReadCheckpointFile(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("backup: restored checkpoints.log: %w", err)
		}
	}
	ar, err := audit.Verify(ctx, db, vopts)
	if err != nil {
		return nil, fmt.Errorf("backup: audit verify of the restored data failed: %w", err)
	}
	rep.Audit = AuditState{Size: ar.Size, Root: ar.Root}
	// The history of the log's retired keys (DATA/keys/audit-log.history,
	// which `audit verify` checks) is not in the backup: it is written
	// again from the restored transition checkpoints, just verified.
	for _, k := range ar.Keys {
		if k.Retired {
			if err := audit.AppendKeyHistory(filepath.Join(opt.DataDir, "keys", "audit-log.history"), k); err != nil {
				return nil, fmt.Errorf("backup: the restored key history: %w", err)
			}
		}
	}
	if m.Kind == Incremental {
		// The stream holds at least the sealed checkpoint's tree (unless
		// restored to an earlier moment): the log must contain it.
		if opt.At.IsZero() && m.Audit.Size > 0 {
			cp := audit.Checkpoint{Size: m.Audit.Size, Root: m.Audit.Root, Note: m.Audit.Checkpoint}
			vopts.Checkpoints = append(vopts.Checkpoints, cp)
			if _, err := audit.Verify(ctx, db, vopts); err != nil {
				return nil, fmt.Errorf("backup: the restored audit log does not hold the manifest's checkpoint: %w", err)
			}
		}
	} else if ar.Size != m.Audit.Size || !bytes.Equal(ar.Root, m.Audit.Root) {
		return nil, fmt.Errorf("backup: the restored audit tree (size %d) is not the manifest's (size %d)", ar.Size, m.Audit.Size)
	}
	step("audit verify", t0)
	note, err := json.Marshal(Restored{Backup: id, Kind: m.Kind, AuditSize: m.Audit.Size, AuditRoot: m.Audit.Root,
		DataAsOf: m.DataAsOf, At: opt.At, RestoredAt: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(opt.DataDir, RestoredFile), note); err != nil {
		return nil, err
	}
	closed = true
	if err := db.Close(); err != nil {
		return nil, err
	}
	if err := os.Remove(marker); err != nil {
		return nil, err
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// signerVerifier is the verifier key of the restored signing key ("" if
// there is none: checkpoints are then compared by size and root).
func signerVerifier(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, "keys", "audit-log.key"))
	if err != nil {
		return ""
	}
	s, err := NewSigner(string(b))
	if err != nil {
		return ""
	}
	return s.VerifierKey()
}

// checkEmptyTarget refuses a data directory that holds a database, unless
// it is the leftover of a restore that did not finish (the marker is
// there), which is cleared.
func checkEmptyTarget(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, RestoringMarker)); err == nil {
		for _, n := range []string{"medguard.db", "medguard.db-wal", "medguard.db-shm", "checkpoints.log",
			"keys/audit-log.key", "keys/audit-log.history", "keys/medguard.keys", retention.LedgerFile, RestoredFile} {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "medguard.db")); err == nil {
		return fmt.Errorf("backup: %s already holds a database: restore into a new directory", dir)
	}
	return nil
}

// restorePiece decrypts a piece into dst (through a temporary file, synced
// and renamed).
func restorePiece(ctx context.Context, t Target, p Piece, key []byte, dst string) error {
	rc, err := t.Get(ctx, p.Name)
	if err != nil {
		return err
	}
	defer rc.Close()
	dec, err := decryptReader(key, p.Name, rc)
	if err != nil {
		return err
	}
	err = writeAtomic(dst, dec)
	if ce := (*copyError)(nil); errors.As(err, &ce) {
		return fmt.Errorf("backup: %s changed since it was verified: %w", p.Name, ce.err)
	}
	return err
}

// readPiece decrypts a small piece into memory.
func readPiece(ctx context.Context, t Target, p Piece, key []byte) ([]byte, error) {
	rc, err := t.Get(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	dec, err := decryptReader(key, p.Name, rc)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(dec, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("backup: %s changed since it was verified: %w", p.Name, err)
	}
	return b, nil
}
