package backup

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/audit"
)

// The audit log's signing key rotates (`medguard keys rotate-audit-key`):
// each rotation is a transition checkpoint signed by the retiring key and
// the next one. A target pins the key that signed its first backup
// (verifier.key); manifests and drill records signed by a later key are
// accepted when the transition checkpoints link that key to the pinned
// one (audit.FollowKeys), and one signed by a retired key only for an
// audit tree no larger than the size at which it was retired.
//
// The transition checkpoints travel with the backups, so that a verifier
// that has only the target (a restore on a fresh machine) can follow the
// chain from the key it trusts: every backup writes them to the target's
// key-transitions file (JSON lines, as DATA/checkpoints.log), and each
// manifest lists those known when it was signed (key_transitions). They
// need no protection of their own: each is signed by both keys it names,
// so whoever can write to the target can remove one (and the backups
// signed by the later key are then refused, saying so) but not forge one.
const transitionsName = "key-transitions"

// localTransitions reads the transition checkpoints of the data
// directory's audit log.
func localTransitions(ctx context.Context, dataDir string) ([]audit.Checkpoint, error) {
	// A read-only connection of its own: nothing here writes (or
	// checkpoints) the database a server and its stream are using.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "medguard.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return audit.StoredTransitions(ctx, db)
}

// targetTransitions reads the transition checkpoints kept on a target
// (none if it has no key-transitions file).
func targetTransitions(ctx context.Context, t Target) ([]audit.Checkpoint, error) {
	b, err := getBytes(ctx, t, transitionsName, 16<<20)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %s: %w", t.URL(), err)
	}
	cps, err := audit.ReadCheckpointFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("backup: %s/%s: %w", t.URL(), transitionsName, err)
	}
	return cps, nil
}

// shipTransitions adds to the target's key-transitions file the
// transition checkpoints it lacks (it is rewritten only when it grows).
func shipTransitions(ctx context.Context, t Target, local []audit.Checkpoint) error {
	if len(local) == 0 {
		return nil
	}
	have, err := targetTransitions(ctx, t)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var buf bytes.Buffer
	add := func(cp audit.Checkpoint) error {
		if seen[cp.Note] {
			return nil
		}
		seen[cp.Note] = true
		b, err := json.Marshal(cp)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
		return nil
	}
	valid, _ := audit.Transitions(have)
	for _, cp := range valid {
		if err := add(cp); err != nil {
			return err
		}
	}
	n := len(seen)
	for _, cp := range local {
		if err := add(cp); err != nil {
			return err
		}
	}
	if len(seen) == n && n == len(have) {
		return nil
	}
	if err := putBytes(ctx, t, transitionsName, buf.Bytes()); err != nil {
		return fmt.Errorf("backup: %s: %w", t.URL(), err)
	}
	return nil
}

// ShipTransitions copies the data directory's transition checkpoints to
// every target that lacks one (serve's schedule does so at start, so that
// the backups made before a rotation are listed with the new key at once).
func ShipTransitions(ctx context.Context, dataDir string, targets []Target) error {
	local, err := localTransitions(ctx, dataDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range targets {
		errs = append(errs, shipTransitions(ctx, t, local))
	}
	return errors.Join(errs...)
}

// keyChain is the chain of signing keys a target's manifests and drills
// are checked with: followed from the trusted key through the transition
// checkpoints, with those that were refused (not signed by both keys they
// name) kept to say why a key is missing.
type keyChain struct {
	trusted string
	chain   audit.KeyChain
	refused []error
	from    []audit.Checkpoint // the transition checkpoints it was built from
}

// followKeys builds the chain from the trusted key and the transition
// checkpoints (from the target, a manifest, the data directory).
func followKeys(trusted string, sets ...[]audit.Checkpoint) (*keyChain, error) {
	var all []audit.Checkpoint
	for _, s := range sets {
		all = append(all, s...)
	}
	valid, refused := audit.Transitions(all)
	chain, err := audit.FollowKeys(trusted, valid)
	if err != nil {
		return nil, fmt.Errorf("backup: the audit log's key chain from %s: %w", audit.KeyName(trusted), err)
	}
	return &keyChain{trusted: trusted, chain: chain, refused: refused, from: all}, nil
}

// targetKeys is the chain followed from the trusted key (the pinned one
// at the target's root if none is given) through the target's transition
// checkpoints and the extra ones.
func targetKeys(ctx context.Context, t Target, trusted string, extra ...[]audit.Checkpoint) (*keyChain, error) {
	if trusted == "" {
		b, err := getBytes(ctx, t, verifierName, 4096)
		if err != nil {
			return nil, fmt.Errorf("no verifier key given and none at %s: %v", t.URL(), err)
		}
		trusted = strings.TrimSpace(string(b))
	}
	on, err := targetTransitions(ctx, t)
	if err != nil {
		return nil, err
	}
	return followKeys(trusted, append(extra, on)...)
}

// with is the chain extended by the transition checkpoints a manifest
// lists (kc itself if it lists none).
func (kc *keyChain) with(notes []string) (*keyChain, error) {
	if len(notes) == 0 {
		return kc, nil
	}
	more := make([]audit.Checkpoint, 0, len(notes))
	for _, n := range notes {
		more = append(more, audit.Checkpoint{Note: n})
	}
	return followKeys(kc.trusted, kc.from, more)
}

// open checks a signed note (a manifest, a drill record) with the chain
// and decodes its body into v; size is the audit tree size the body names
// (read after decoding): a key the rotation retired may sign only up to
// the size at which it was retired.
func (kc *keyChain) open(msg []byte, header string, v any, size func() uint64) (audit.ChainKey, error) {
	text, signers, err := kc.chain.OpenNote(msg)
	if err != nil {
		return audit.ChainKey{}, fmt.Errorf("%w: signed by another key: %v%s", ErrBadSignature, err, kc.why())
	}
	h, body, ok := strings.Cut(text, "\n")
	if !ok || h != header {
		return audit.ChainKey{}, fmt.Errorf("%w: not a %q", ErrBadSignature, header)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return audit.ChainKey{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	s := size()
	for _, k := range signers {
		if k.MaySign(s) {
			return k, nil
		}
	}
	k := signers[0]
	return k, fmt.Errorf("%w: it is signed by %s, which a key rotation retired at audit tree size %d; "+
		"one of a larger tree (%d) signed by it is refused", ErrBadSignature, audit.KeyName(k.VerifierKey), k.To, s)
}

// why says which transition checkpoints were refused, if any.
func (kc *keyChain) why() string {
	if len(kc.refused) == 0 {
		return ""
	}
	var s []string
	for _, err := range kc.refused {
		s = append(s, err.Error())
	}
	return fmt.Sprintf(" (%d transition checkpoint(s) ignored: %s)", len(kc.refused), strings.Join(s, "; "))
}

// listedTransitions reads, without checking its signature, the transition
// checkpoints a manifest lists (they are checked on their own: each is
// signed by both keys it names).
func listedTransitions(msg []byte) []string {
	_, err := note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil
	}
	_, body, _ := strings.Cut(unverified.Note.Text, "\n")
	var m struct {
		KeyTransitions []string `json:"key_transitions"`
	}
	if json.Unmarshal([]byte(body), &m) != nil {
		return nil
	}
	return m.KeyTransitions
}

// checkSigner refuses to add backups signed by the key signer to a target
// whose pinned key (pinned) the transition checkpoints do not link it to,
// or that a rotation retired.
func checkSigner(t Target, pinned, signer string, kc *keyChain) error {
	for _, k := range kc.chain {
		if k.VerifierKey != signer {
			continue
		}
		if k.Retired {
			return fmt.Errorf("backup: the signing key %s was retired by a key rotation at audit tree size %d: "+
				"finish the rotation (medguard keys rotate-audit-key) before backing up to %s", audit.KeyName(signer), k.To, t.URL())
		}
		return nil
	}
	return fmt.Errorf("backup: %s holds backups signed by another key (%s), and no transition checkpoint of the audit log "+
		"links it to this key (%s); chain from the pinned key: %s%s: use another target",
		t.URL(), audit.KeyName(pinned), audit.KeyName(signer), chainNames(kc.chain), kc.why())
}

func chainNames(c audit.KeyChain) string {
	var s []string
	for _, k := range c {
		s = append(s, audit.KeyName(k.VerifierKey))
	}
	return strings.Join(s, " → ")
}

func notes(cps []audit.Checkpoint) []string {
	var out []string
	for _, cp := range cps {
		out = append(out, cp.Note)
	}
	return out
}
