package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"

	"medguard/internal/retention"
)

// The destruction ledger (DATA/destructions.log, internal/retention)
// travels with the backups: every backup seals a copy of it as a piece
// (role "ledger"), and the newest one is also kept at each target's root,
// encrypted to the recipient, replaced whenever it changes (at each backup
// and as soon as the server's ledger grows). A restore puts back the union
// of the two, so that a backup made before a destruction, restored onto a
// new machine, destroys the record again at its first start.
const (
	ledgerPiece  = "destructions.sio"
	ledgerObject = "ledger/destructions.log.age"
)

// ShipLedger writes the data directory's destruction ledger, encrypted to
// the recipient, to every target (nothing if there is no ledger yet).
func ShipLedger(ctx context.Context, dataDir string, recipient age.Recipient, targets []Target) error {
	b, err := os.ReadFile(filepath.Join(dataDir, retention.LedgerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: destruction ledger: %w", err)
	}
	var enc bytes.Buffer
	w, err := age.Encrypt(&enc, recipient)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	var errs []error
	for _, t := range targets {
		if err := putBytes(ctx, t, ledgerObject, enc.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("backup: destruction ledger to %s: %w", t.URL(), err))
		}
	}
	return errors.Join(errs...)
}

// targetLedger reads the newest ledger kept at a target's root (nil if
// there is none).
func targetLedger(ctx context.Context, t Target, id Identity) ([]byte, error) {
	b, err := getBytes(ctx, t, ledgerObject, 64<<20)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(bytes.NewReader(b), id)
	if err != nil {
		return nil, fmt.Errorf("backup: %s on %s does not open with the identity: %w", ledgerObject, t.URL(), err)
	}
	return io.ReadAll(r)
}

// LedgerMerge says what a restore did with the destruction ledgers.
type LedgerMerge struct {
	// FromBackup and FromTarget count the certificates of the backup's
	// ledger and of the target's newest one; Restored counts the union
	// written to DATA/destructions.log.
	FromBackup, FromTarget, Restored int
	// Refused counts lines of the target's ledger that do not verify with
	// the manifest's signer (left out: the target's ledger is not sealed
	// by a manifest, so anyone who can write to the target can change it).
	Refused int
}

// mergeLedgers writes to path the union of the backup's ledger and the
// target's newest one, by certificate: the backup's lines first, then the
// target's it lacks. Every line of both must verify with one of
// verifierKeys, the chain of the audit log's keys (a line of the backup's
// that does not is an error: the manifest sealed it).
func mergeLedgers(path string, fromBackup, fromTarget []byte, verifierKeys []string) (LedgerMerge, error) {
	var lm LedgerMerge
	seen := map[string]bool{}
	var out bytes.Buffer
	add := func(data []byte, sealed bool) error {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Bytes()
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var c *retention.Certificate
			var err error
			for _, k := range verifierKeys {
				if c, err = retention.Verify(line, k); err == nil {
					break
				}
			}
			if len(verifierKeys) == 0 {
				err = errors.New("no verifier key")
			}
			if err != nil {
				if sealed {
					return fmt.Errorf("backup: the backup's destruction ledger, line %d: %w", n, err)
				}
				lm.Refused++
				continue
			}
			if sealed {
				lm.FromBackup++
			} else {
				lm.FromTarget++
			}
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			out.Write(line)
			out.WriteByte('\n')
			lm.Restored++
		}
		return sc.Err()
	}
	if err := add(fromBackup, true); err != nil {
		return lm, err
	}
	if err := add(fromTarget, false); err != nil {
		return lm, err
	}
	if lm.Restored == 0 {
		return lm, nil
	}
	return lm, writeFileSync(path, out.Bytes())
}

// writeFileSync writes a file through a temporary one, synced and renamed.
func writeFileSync(path string, b []byte) error {
	return writeAtomic(path, bytes.NewReader(b))
}

// copyError is an error met while writeAtomic copied the data.
type copyError struct{ err error }

func (e *copyError) Error() string { return e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// writeAtomic writes what r gives to path through a temporary file in the
// same directory (mode 0600), synced, renamed into place, and the
// directory synced: a crash leaves the old file or the whole new one,
// never a part. An error while copying comes back as a *copyError.
func writeAtomic(path string, r io.Reader) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return &copyError{err}
	}
	if err := errors.Join(f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
