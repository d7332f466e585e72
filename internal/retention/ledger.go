package retention

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"medguard/internal/audit"
)

// LedgerFile is the ledger's name in the data directory.
const LedgerFile = "destructions.log"

// Ledger is the destruction ledger: every destruction's signed certificate,
// one JSON object a line, appended and synced before the destruction is
// reported done. It lives outside the database (DATA/destructions.log) so
// that a database restored from an older backup learns, when it opens, what
// was destroyed since, and shreds it again. Backups must carry it (or
// merge it: lines are independent and signed).
type Ledger struct {
	path   string
	signer *audit.Signer
	mu     sync.Mutex
	// onAppend is told after each line is synced (the backup schedule
	// then ships the ledger to its targets).
	onAppend func()
}

// OnAppend sets a function told after each certificate is appended and
// synced; it must not block (the destruction's transaction is open).
func (l *Ledger) OnAppend(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onAppend = f
}

// OpenLedger returns the ledger at path, whose certificates signer signs.
func OpenLedger(path string, signer *audit.Signer) *Ledger {
	return &Ledger{path: path, signer: signer}
}

// Path is the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Sign signs a certificate with the ledger's key.
func (l *Ledger) Sign(c Certificate) (Signed, error) { return Sign(l.signer, c) }

// Append adds a signed certificate to the ledger and syncs it.
func (l *Ledger) Append(s Signed) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, statErr := os.Stat(l.path)
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("retention: ledger: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("retention: ledger: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("retention: ledger: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file: its directory entry must be durable too.
		if d, err := os.Open(filepath.Dir(l.path)); err == nil {
			err = errors.Join(d.Sync(), d.Close())
			if err != nil {
				return fmt.Errorf("retention: ledger: %w", err)
			}
		}
	}
	if l.onAppend != nil {
		l.onAppend()
	}
	return nil
}

// Read returns every certificate in the ledger, each verified with the
// ledger's key; a line that does not verify is an error naming it (a
// ledger someone edited must not be trusted, nor silently skipped). A
// missing file is an empty ledger. A last line cut short by a crash while
// it was written (no newline) is ignored: its destruction was not reported.
func (l *Ledger) Read() ([]Signed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("retention: ledger: %w", err)
	}
	defer f.Close()
	var out []Signed
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out, nil // a partial last line (or none)
		}
		if err != nil {
			return nil, fmt.Errorf("retention: ledger: %w", err)
		}
		if _, err := Verify(line, l.signer.VerifierKey()); err != nil {
			return nil, fmt.Errorf("retention: %s line %d: %w", l.path, n, err)
		}
		s, _ := Parse(line)
		out = append(out, s)
	}
}

// Origin is the name of the key that signs the ledger (the audit log's
// origin).
func (l *Ledger) Origin() string { return l.signer.Origin() }

// VerifierKey is the key that verifies the ledger's certificates.
func (l *Ledger) VerifierKey() string { return l.signer.VerifierKey() }
