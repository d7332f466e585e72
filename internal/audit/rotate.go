package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard"
)

// A key rotation of the log's signing key is a transition checkpoint: an
// ordinary C2SP checkpoint of the tree at the moment of the rotation, with
// two extension lines naming the retiring verifier key and the next one,
// signed by both keys. Whoever trusts either key can follow it to the
// other: the retiring key vouches for the next one (forwards, from an
// auditor's original key), the next one for the retiring one and the
// sizes it signed (backwards, from the installed key). Tools that know
// nothing of rotations read it as a checkpoint signed by the key they
// have (the extension lines are allowed by the checkpoint format).
const (
	previousKeyLine = "previous-key "
	nextKeyLine     = "next-key "
)

// GenerateSigner makes a new Ed25519 note signer key named origin; skey is
// its private half, to be kept in a 0600 file.
func GenerateSigner(origin string) (skey string, s *Signer, err error) {
	if !originPattern.MatchString(origin) {
		return "", nil, fmt.Errorf("audit: log origin %q must be letters, digits, '.', '_', '/' or '-'", origin)
	}
	skey, _, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", nil, err
	}
	s, err = NewSigner(skey)
	return skey, s, err
}

// KeyName is a verifier key's name and hash ("origin+1a2b3c4d"), how a
// signature line names its key.
func KeyName(verifierKey string) string {
	name, rest, _ := strings.Cut(verifierKey, "+")
	hash, _, _ := strings.Cut(rest, "+")
	return name + "+" + hash
}

// KeyHash is a verifier key's hash, 8 hex digits.
func KeyHash(verifierKey string) string {
	_, rest, _ := strings.Cut(verifierKey, "+")
	hash, _, _ := strings.Cut(rest, "+")
	return hash
}

// SignTransition signs the transition checkpoint of a rotation from s to
// next: the tree of size and root, with both verifier keys named, signed
// by both. The two keys must share the log's origin.
func (s *Signer) SignTransition(size uint64, root []byte, next *Signer) ([]byte, error) {
	if next.origin != s.origin {
		return nil, fmt.Errorf("audit: the next key is named %q, not the log's origin %q", next.origin, s.origin)
	}
	if next.verifier == s.verifier {
		return nil, errors.New("audit: the next key is the key it replaces")
	}
	body := fmt.Sprintf("%s\n%d\n%s\n%s%s\n%s%s\n", s.origin, size, base64.StdEncoding.EncodeToString(root),
		previousKeyLine, s.verifier, nextKeyLine, next.verifier)
	return note.Sign(&note.Note{Text: body}, s.signer, next.signer)
}

// CoSign adds s's signature to a signed note that verifies with
// verifierKey (a destruction certificate signed by a retiring key), keeping
// the signatures it has.
func (s *Signer) CoSign(msg []byte, verifierKey string) ([]byte, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, err
	}
	return note.Sign(n, s.signer)
}

// Transition is a key rotation, read from a transition checkpoint.
type Transition struct {
	Size     uint64
	Root     []byte
	Previous string // the retired verifier key
	Next     string // the verifier key that signs from Size on
	SignedAt time.Time
	Note     string
}

// ParseTransition reads a checkpoint note as a transition checkpoint. ok is
// false for a checkpoint that names no next key. A note that names keys but
// is not signed by both of them is an error: a rotation needs the retiring
// key's word and the next key's.
func ParseTransition(msg []byte) (t *Transition, ok bool, err error) {
	_, err = note.Open(msg, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, false, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	t = &Transition{Note: string(msg)}
	for _, line := range strings.Split(unverified.Note.Text, "\n") {
		if k, found := strings.CutPrefix(line, previousKeyLine); found {
			t.Previous = k
		}
		if k, found := strings.CutPrefix(line, nextKeyLine); found {
			t.Next = k
		}
	}
	if t.Previous == "" && t.Next == "" {
		return nil, false, nil
	}
	if t.Previous == "" || t.Next == "" || t.Previous == t.Next {
		return nil, true, fmt.Errorf("%w: a transition checkpoint must name a previous key and another next key", ErrBadCheckpoint)
	}
	_, size, root, err := OpenCheckpoint(msg, t.Previous)
	if err != nil {
		return nil, true, fmt.Errorf("the transition checkpoint is not signed by the key it retires (%s): "+
			"a key rotation needs the retiring key's signature: %w", KeyName(t.Previous), err)
	}
	if _, _, _, err := OpenCheckpoint(msg, t.Next); err != nil {
		return nil, true, fmt.Errorf("the transition checkpoint is not signed by the key it introduces (%s): %w", KeyName(t.Next), err)
	}
	t.Size, t.Root = size, root
	return t, true, nil
}

// ChainKey is one signing key of the log: the sizes it may sign and, once
// a rotation retired it, when.
type ChainKey struct {
	VerifierKey string    `json:"verifier_key"`
	From        uint64    `json:"from"`         // the size of the transition that introduced it; 0 for the first
	To          uint64    `json:"to,omitempty"` // the size of the transition that retired it
	Retired     bool      `json:"retired"`
	RetiredAt   time.Time `json:"retired_at,omitzero"`
}

// KeyChain is the log's signing keys in order, oldest first. A retired key
// is trusted for checkpoints up to the size at which it was retired; the
// last key for any size.
type KeyChain []ChainKey

// VerifierKeys returns every key of the chain.
func (c KeyChain) VerifierKeys() []string {
	var out []string
	for _, k := range c {
		out = append(out, k.VerifierKey)
	}
	return out
}

// Current is the key that signs the log now (the chain's last).
func (c KeyChain) Current() string {
	if len(c) == 0 {
		return ""
	}
	return c[len(c)-1].VerifierKey
}

// String describes the chain for a report, one key a line.
func (c KeyChain) String() string {
	var b strings.Builder
	for i, k := range c {
		switch {
		case !k.Retired:
			fmt.Fprintf(&b, "  %d. %s  signs from size %d on (current)\n", i+1, KeyName(k.VerifierKey), k.From)
		default:
			fmt.Fprintf(&b, "  %d. %s  signed sizes up to %d; retired %s by the transition checkpoint of size %d\n",
				i+1, KeyName(k.VerifierKey), k.To, k.RetiredAt.UTC().Format(time.RFC3339), k.To)
		}
	}
	return b.String()
}

// FollowKeys builds the chain of the log's signing keys from one trusted
// verifier key (an auditor's original key, or the installed one) and the
// transition checkpoints among cps: forwards through each transition the
// trusted key signed as the retiring key, backwards through each it
// co-signed as the next key. Two different transitions out of (or into) one
// key are a fork of the log's keys and an error. Keys introduced by no
// transition the chain reaches are not in it: what they sign is refused.
func FollowKeys(trusted string, cps []Checkpoint) (KeyChain, error) {
	if _, err := note.NewVerifier(trusted); err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	var ts []*Transition
	seen := map[string]bool{}
	for _, cp := range cps {
		if !strings.Contains(cp.Note, nextKeyLine) && !strings.Contains(cp.Note, previousKeyLine) {
			continue
		}
		t, ok, err := ParseTransition([]byte(cp.Note))
		if !ok {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: the checkpoint of size %d: %w", cp.Size, err)
		}
		t.SignedAt = cp.SignedAt
		id := fmt.Sprintf("%d %s %s", t.Size, t.Previous, t.Next)
		if seen[id] {
			continue
		}
		seen[id] = true
		ts = append(ts, t)
	}
	one := func(match func(*Transition) bool, what string) (*Transition, error) {
		var found *Transition
		for _, t := range ts {
			if match(t) {
				if found != nil {
					return nil, fmt.Errorf("%w: two transition checkpoints (sizes %d and %d) %s: the log's keys forked", ErrBadCheckpoint, found.Size, t.Size, what)
				}
				found = t
			}
		}
		return found, nil
	}
	chain := KeyChain{{VerifierKey: trusted}}
	in := map[string]bool{trusted: true}
	for {
		last := &chain[len(chain)-1]
		t, err := one(func(t *Transition) bool { return t.Previous == last.VerifierKey }, "retire the key "+KeyName(last.VerifierKey))
		if err != nil {
			return nil, err
		}
		if t == nil {
			break
		}
		if in[t.Next] || t.Size < last.From {
			return nil, fmt.Errorf("%w: the transition checkpoint of size %d goes back to a key the log used before", ErrBadCheckpoint, t.Size)
		}
		last.To, last.Retired, last.RetiredAt = t.Size, true, t.SignedAt
		in[t.Next] = true
		chain = append(chain, ChainKey{VerifierKey: t.Next, From: t.Size})
	}
	for {
		first := chain[0]
		t, err := one(func(t *Transition) bool { return t.Next == first.VerifierKey }, "introduce the key "+KeyName(first.VerifierKey))
		if err != nil {
			return nil, err
		}
		if t == nil {
			break
		}
		if in[t.Previous] || (first.Retired && t.Size > first.To) {
			return nil, fmt.Errorf("%w: the transition checkpoint of size %d goes back to a key the log used after", ErrBadCheckpoint, t.Size)
		}
		in[t.Previous] = true
		chain[0].From = t.Size
		chain = append(KeyChain{{VerifierKey: t.Previous, To: t.Size, Retired: true, RetiredAt: t.SignedAt}}, chain...)
	}
	return chain, nil
}

// OpenCheckpoint verifies a checkpoint with the chain: it must be signed by
// a key of the chain that may sign its size (a retired key only up to the
// size at which it was retired).
func (c KeyChain) OpenCheckpoint(msg []byte) (size uint64, root []byte, err error) {
	var vs []note.Verifier
	for _, k := range c {
		v, err := note.NewVerifier(k.VerifierKey)
		if err != nil {
			return 0, nil, fmt.Errorf("audit: verifier key: %w", err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		var names []string
		for _, s := range unverified.Note.UnverifiedSigs {
			names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return 0, nil, fmt.Errorf("%w: it is signed only by %s, which is neither the trusted key nor a key that a transition "+
			"checkpoint co-signed by a trusted key introduces (trusted: %s): refused", ErrBadCheckpoint, strings.Join(names, ", "),
			strings.Join(c.names(), " → "))
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	var retired *ChainKey
	for _, sig := range n.Sigs {
		i := slices.IndexFunc(c, func(k ChainKey) bool { return KeyName(k.VerifierKey) == fmt.Sprintf("%s+%08x", sig.Name, sig.Hash) })
		if i < 0 {
			continue
		}
		_, size, root, err := OpenCheckpoint(msg, c[i].VerifierKey)
		if err != nil {
			return 0, nil, err
		}
		if c[i].Retired && size > c[i].To {
			retired = &c[i]
			continue
		}
		return size, root, nil
	}
	if retired != nil {
		return 0, nil, fmt.Errorf("%w: it is signed by %s, which a key rotation retired at size %d: a checkpoint of a larger tree "+
			"signed by it is refused", ErrBadCheckpoint, KeyName(retired.VerifierKey), retired.To)
	}
	return 0, nil, fmt.Errorf("%w: no key of the chain signed it", ErrBadCheckpoint)
}

func (c KeyChain) names() []string {
	var out []string
	for _, k := range c {
		out = append(out, KeyName(k.VerifierKey))
	}
	return out
}

// CheckSigner refuses a signing key that may not sign the log's next
// checkpoints, given the latest checkpoint in the database: a key that did
// not sign it (another installation's key), or the key a rotation retired
// (the latest checkpoint is a transition to another key).
func CheckSigner(latest Checkpoint, s *Signer) error {
	if _, _, _, err := OpenCheckpoint([]byte(latest.Note), s.VerifierKey()); err != nil {
		return fmt.Errorf("this server's audit log key (%s) did not sign the database's checkpoints: "+
			"copy DATA/keys/audit-log.key from the first server, or set MEDGUARD_AUDIT_KEY", KeyName(s.VerifierKey()))
	}
	t, ok, err := ParseTransition([]byte(latest.Note))
	if ok && err == nil && t.Previous == s.VerifierKey() {
		return fmt.Errorf("this server's audit log key (%s) was retired by a key rotation at size %d; the log is now signed by %s: "+
			"finish the rotation with \"medguard keys rotate-audit-key\" (it installs DATA/keys/audit-log.key.new)",
			KeyName(s.VerifierKey()), t.Size, KeyName(t.Next))
	}
	return nil
}

// Transition signs the transition checkpoint of the current tree from the
// checkpointer's key to next, stores it in the database and appends it to
// the checkpoints file, as Latest does. If the tree already has a
// checkpoint of its size, it must be this very transition (a rotation
// resumed after a crash).
func (c *Checkpoints) Transition(ctx context.Context, next *Signer) (Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size, root, err := c.log.Head(ctx)
	if err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Transition", err)
	}
	if stored, ok, err := c.stored(ctx, size); err != nil {
		return Checkpoint{}, err
	} else if ok {
		t, isT, err := ParseTransition([]byte(stored.Note))
		if err != nil || !isT || t.Next != next.VerifierKey() {
			return Checkpoint{}, fmt.Errorf("audit: the tree of size %d already has a checkpoint that is not this rotation's", size)
		}
		return stored, nil
	}
	msg, err := c.signer.SignTransition(size, root, next)
	if err != nil {
		return Checkpoint{}, err
	}
	cp := Checkpoint{Size: size, Root: root, Note: string(msg), SignedAt: c.clock.Now().Truncate(time.Millisecond)}
	if _, err := c.log.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)`,
		int64(size), root, cp.Note, medguard.Millis(cp.SignedAt)); err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Transition", err)
	}
	if err := c.appendFile(cp); err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Transition", err)
	}
	c.last = cp
	for _, sink := range c.sinks {
		sink(cp)
	}
	return cp, nil
}

// The key history (DATA/keys/audit-log.history) lists the retired signing
// keys, one a line: verifier key, the size it signed from, the size of the
// transition that retired it, and when. It is a record for people (keys
// status) and a cross-check for audit verify; the chain itself is in the
// transition checkpoints.
const keyHistoryHeader = "# retired audit log signing keys: verifier-key from-size to-size retired-at\n"

// ReadKeyHistory reads a key history file; a missing file is no history.
func ReadKeyHistory(path string) ([]ChainKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ChainKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s line %d: want verifier-key from-size to-size retired-at", path, n)
		}
		from, err1 := strconv.ParseUint(f[1], 10, 64)
		to, err2 := strconv.ParseUint(f[2], 10, 64)
		at, err3 := time.Parse(time.RFC3339Nano, f[3])
		if _, err := note.NewVerifier(f[0]); err != nil || errors.Join(err1, err2, err3) != nil {
			return nil, fmt.Errorf("%s line %d: not a verifier key, two sizes and a time", path, n)
		}
		out = append(out, ChainKey{VerifierKey: f[0], From: from, To: to, Retired: true, RetiredAt: at})
	}
	return out, sc.Err()
}

// AppendKeyHistory adds a retired key to the history file (synced), unless
// it is there already.
func AppendKeyHistory(path string, k ChainKey) error {
	have, err := ReadKeyHistory(path)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(have, func(h ChainKey) bool { return h.VerifierKey == k.VerifierKey }) {
		return nil
	}
	line := fmt.Sprintf("%s %d %d %s\n", k.VerifierKey, k.From, k.To, k.RetiredAt.UTC().Format(time.RFC3339Nano))
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		line = keyHistoryHeader + line
	}
	return writeSynced(path, os.O_APPEND, []byte(line))
}

// CheckHistory compares a key history with the chain: every line must be a
// retired key of the chain with the same sizes, and every retired key of
// the chain must be listed.
func (c KeyChain) CheckHistory(history []ChainKey) error {
	var retired []ChainKey
	for _, k := range c {
		if k.Retired {
			retired = append(retired, k)
		}
	}
	for i, h := range history {
		j := slices.IndexFunc(retired, func(k ChainKey) bool { return k.VerifierKey == h.VerifierKey })
		if j < 0 {
			return fmt.Errorf("the key history's line %d names %s, which is not a retired key of the log's chain", i+1, KeyName(h.VerifierKey))
		}
		if k := retired[j]; k.From != h.From || k.To != h.To {
			return fmt.Errorf("the key history says %s signed sizes %d to %d; the transition checkpoints say %d to %d",
				KeyName(h.VerifierKey), h.From, h.To, k.From, k.To)
		}
	}
	if len(history) != len(retired) {
		return fmt.Errorf("the key history lists %d retired keys; the transition checkpoints retire %d", len(history), len(retired))
	}
	return nil
}

// MaySign reports whether k may sign a statement about the tree of the
// given size (a checkpoint, a backup manifest): a retired key only up to
// the size at which it was retired.
func (k ChainKey) MaySign(size uint64) bool { return !k.Retired || size <= k.To }

// OpenNote verifies a signed note that is not a checkpoint (a backup
// manifest, a drill record) with the chain: it must be signed by a key of
// the chain. It returns the note's text and the keys of the chain that
// signed it; the caller checks the tree size the note names with MaySign.
func (c KeyChain) OpenNote(msg []byte) (text string, signers []ChainKey, err error) {
	var vs []note.Verifier
	for _, k := range c {
		v, err := note.NewVerifier(k.VerifierKey)
		if err != nil {
			return "", nil, fmt.Errorf("audit: verifier key: %w", err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		var names []string
		for _, s := range unverified.Note.UnverifiedSigs {
			names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return "", nil, fmt.Errorf("it is signed only by %s, which is neither the trusted key nor a key that a transition "+
			"checkpoint co-signed by a trusted key introduces (trusted: %s): refused", strings.Join(names, ", "),
			strings.Join(c.names(), " → "))
	}
	if err != nil {
		return "", nil, err
	}
	for _, sig := range n.Sigs {
		name := fmt.Sprintf("%s+%08x", sig.Name, sig.Hash)
		if i := slices.IndexFunc(c, func(k ChainKey) bool { return KeyName(k.VerifierKey) == name }); i >= 0 {
			signers = append(signers, c[i])
		}
	}
	return n.Text, signers, nil
}

// Transitions returns the transition checkpoints among cps that are
// signed by both keys they name; the others are returned apart, each
// with why it is not one (a forged rotation, or a damaged note).
func Transitions(cps []Checkpoint) (valid []Checkpoint, refused []error) {
	for _, cp := range cps {
		if !strings.Contains(cp.Note, nextKeyLine) && !strings.Contains(cp.Note, previousKeyLine) {
			continue
		}
		_, ok, err := ParseTransition([]byte(cp.Note))
		switch {
		case !ok:
		case err != nil:
			refused = append(refused, err)
		default:
			valid = append(valid, cp)
		}
	}
	return valid, refused
}

// Querier is what StoredTransitions reads with: a *storage.DB, or a
// read-only *sql.DB on a data directory's SQLite file.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// StoredTransitions returns the transition checkpoints stored in the
// database, by size (without reading every checkpoint).
func StoredTransitions(ctx context.Context, db Querier) ([]Checkpoint, error) {
	rows, err := db.QueryContext(ctx, `SELECT size, root, note, signed_at FROM audit_checkpoints WHERE note LIKE $1 ORDER BY size`,
		"%"+nextKeyLine+"%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var cp Checkpoint
		var size, signed int64
		if err := rows.Scan(&size, &cp.Root, &cp.Note, &signed); err != nil {
			return nil, err
		}
		cp.Size, cp.SignedAt = uint64(size), medguard.FromMillis(signed)
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	valid, _ := Transitions(out)
	return valid, nil
}
