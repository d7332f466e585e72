package pgbackup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"medguard/internal/audit"
	"medguard/internal/storage"
)

// TransitionsFile, in the manifest directory, holds the audit log's
// transition checkpoints (rotations of its signing key, `medguard keys
// rotate-audit-key`), JSON lines as DATA/checkpoints.log. Manifests and
// drill records are checked with the chain of keys followed from the
// verifier key given (the server's own, or an auditor's original one)
// through them: one signed before a rotation still verifies after it, and
// one signed by a retired key only for an audit tree no larger than the
// size at which it was retired. Each transition is signed by both keys it
// names, so the file needs no protection of its own: whoever can write to
// it can remove one (the manifests signed by the other key are then
// refused, saying so), not forge one. Every backup adds the database's
// transitions to it; so does the schedule when it starts.
const TransitionsFile = "key-transitions"

// ShipTransitions adds the database's transition checkpoints that the
// manifest directory's TransitionsFile lacks.
func ShipTransitions(ctx context.Context, db *storage.DB, dir string) error {
	local, err := audit.StoredTransitions(ctx, db)
	if err != nil {
		return fmt.Errorf("pgbackup: the audit log's key rotations: %w", err)
	}
	if len(local) == 0 {
		return nil
	}
	have, err := readTransitions(dir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var buf bytes.Buffer
	for _, cp := range append(have, local...) {
		if seen[cp.Note] {
			continue
		}
		seen[cp.Note] = true
		b, err := json.Marshal(cp)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	if len(seen) == len(have) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	path := filepath.Join(dir, TransitionsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o640); err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	return nil
}

// readTransitions reads the valid transition checkpoints of a manifest
// directory (none without the file).
func readTransitions(dir string) ([]audit.Checkpoint, error) {
	valid, _, err := readAllTransitions(dir)
	return valid, err
}

func readAllTransitions(dir string) (valid []audit.Checkpoint, refused []error, err error) {
	f, err := os.Open(filepath.Join(dir, TransitionsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("pgbackup: %w", err)
	}
	defer f.Close()
	cps, err := audit.ReadCheckpointFile(f)
	if err != nil {
		return nil, nil, fmt.Errorf("pgbackup: %s: %w", filepath.Join(dir, TransitionsFile), err)
	}
	valid, refused = audit.Transitions(cps)
	return valid, refused, nil
}

// keyChain is the chain of the audit log's keys followed from the verifier
// key through the manifest directory's transition checkpoints.
type keyChain struct {
	chain   audit.KeyChain
	refused []error
}

func dirKeys(dir, verifierKey string) (*keyChain, error) {
	valid, refused, err := readAllTransitions(dir)
	if err != nil {
		return nil, err
	}
	chain, err := audit.FollowKeys(strings.TrimSpace(verifierKey), valid)
	if err != nil {
		return nil, fmt.Errorf("pgbackup: verifier key: %w", err)
	}
	return &keyChain{chain: chain, refused: refused}, nil
}

// open checks a signed note with the chain and returns its text, the name
// of the key that signed it and a check of the audit tree size the note
// names (a retired key may sign only up to its retirement).
func (kc *keyChain) open(msg []byte) (text string, maySign func(size uint64) (string, error), err error) {
	text, signers, err := kc.chain.OpenNote(msg)
	if err != nil {
		why := ""
		if len(kc.refused) > 0 {
			var s []string
			for _, e := range kc.refused {
				s = append(s, e.Error())
			}
			why = fmt.Sprintf(" (%d transition checkpoint(s) in %s ignored: %s)", len(kc.refused), TransitionsFile, strings.Join(s, "; "))
		}
		return "", nil, fmt.Errorf("%v%s", err, why)
	}
	return text, func(size uint64) (string, error) {
		for _, k := range signers {
			if k.MaySign(size) {
				return audit.KeyName(k.VerifierKey), nil
			}
		}
		k := signers[0]
		return "", fmt.Errorf("it is signed by %s, which a key rotation retired at audit tree size %d; one of a larger tree (%d) "+
			"signed by it is refused", audit.KeyName(k.VerifierKey), k.To, size)
	}, nil
}
