package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard"
	"medguard/internal/storage"
)

// Signer signs checkpoints with the log's Ed25519 note key. The key lives in
// a 0600 file outside the database (DATA/keys/audit-log.key); its name is
// the log's origin, the first line of every checkpoint.
type Signer struct {
	origin   string
	signer   note.Signer
	verifier string
}

var originPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,120}$`)

// LoadOrCreateSigner reads the signer key at path, or makes one named origin
// (the log's identity, e.g. "hospital.example/medguard") if there is none.
func LoadOrCreateSigner(path, origin string) (*Signer, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !originPattern.MatchString(origin) {
			return nil, false, fmt.Errorf("audit: log origin %q must be letters, digits, '.', '_', '/' or '-'", origin)
		}
		skey, _, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		if err := writeSynced(path, os.O_EXCL, []byte(skey+"\n")); err != nil {
			return nil, false, err
		}
		s, err := NewSigner(skey)
		return s, true, err
	}
	if err != nil {
		return nil, false, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("audit: %s is readable by group or others; chmod 600 it", path)
	}
	s, err := NewSigner(strings.TrimSpace(string(data)))
	return s, false, err
}

// NewSigner makes a signer from a note signer key ("PRIVATE+KEY+name+…").
func NewSigner(skey string) (*Signer, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: the log's signer key is not valid: %w", err)
	}
	// The verifier key is the public half: name+hash+base64(type ‖ key).
	parts := strings.SplitN(skey, "+", 5) // the base64 key may contain "+"
	if len(parts) != 5 {
		return nil, errors.New("audit: the log's signer key is not valid")
	}
	priv, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(priv) != 33 || priv[0] != 1 {
		return nil, errors.New("audit: the log's signer key is not an Ed25519 note key")
	}
	vkey, err := note.NewEd25519VerifierKey(parts[2], ed25519Public(priv[1:]))
	if err != nil {
		return nil, err
	}
	return &Signer{origin: parts[2], signer: signer, verifier: vkey}, nil
}

// Origin is the log's origin, the checkpoints' first line.
func (s *Signer) Origin() string { return s.origin }

// VerifierKey is the note verifier key (name+hash+base64key) auditors use.
func (s *Signer) VerifierKey() string { return s.verifier }

// Sign makes the checkpoint of a tree: a C2SP tlog-checkpoint signed note
// (origin, size, base64 root, then the Ed25519 note signature).
func (s *Signer) Sign(size uint64, root []byte) ([]byte, error) {
	body := fmt.Sprintf("%s\n%d\n%s\n", s.origin, size, base64.StdEncoding.EncodeToString(root))
	return note.Sign(&note.Note{Text: body}, s.signer)
}

// signText signs any note text (an archive manifest) with the log's key.
func (s *Signer) signText(text string) ([]byte, error) {
	return note.Sign(&note.Note{Text: text}, s.signer)
}

// openNote verifies a signed note with the verifier key and returns its text.
func openNote(msg []byte, verifierKey string) (string, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", fmt.Errorf("audit: verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return "", err
	}
	return n.Text, nil
}

// openNoteAny verifies a signed note with any of the verifier keys.
func openNoteAny(msg []byte, verifierKeys []string) (string, error) {
	var vs []note.Verifier
	for _, k := range verifierKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return "", fmt.Errorf("audit: verifier key: %w", err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return "", err
	}
	return n.Text, nil
}

// Checkpoint is a signed statement of the tree's size and root.
type Checkpoint struct {
	Size     uint64    `json:"size"`
	Root     []byte    `json:"root"`
	Note     string    `json:"note"`
	SignedAt time.Time `json:"signed_at"`
}

// ErrBadCheckpoint is returned for a checkpoint that does not verify.
var ErrBadCheckpoint = errors.New("audit: checkpoint does not verify")

// OpenCheckpoint verifies a checkpoint note with the verifier key and returns
// its origin, size and root.
func OpenCheckpoint(msg []byte, verifierKey string) (origin string, size uint64, root []byte, err error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", 0, nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return "", 0, nil, fmt.Errorf("%w: not a tlog checkpoint", ErrBadCheckpoint)
	}
	size, err = strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: size line", ErrBadCheckpoint)
	}
	root, err = base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return "", 0, nil, fmt.Errorf("%w: root line", ErrBadCheckpoint)
	}
	if lines[0] != v.Name() {
		return "", 0, nil, fmt.Errorf("%w: origin %q is not the key's name", ErrBadCheckpoint, lines[0])
	}
	return lines[0], size, root, nil
}

// Checkpoints signs the tree's head: in the background at least every
// interval while the log grows, and on demand. Each new checkpoint is stored
// in the database, appended (and synced) to a file outside it, and passed
// to the sinks (the SIEM forwarder).
type Checkpoints struct {
	log    *Log
	signer *Signer
	file   string
	clock  medguard.Clock
	sinks  []func(Checkpoint)

	mu   sync.Mutex
	last Checkpoint
}

// NewCheckpoints returns the checkpointer for log, writing to file (may be "").
func NewCheckpoints(log *Log, signer *Signer, file string, clock medguard.Clock) *Checkpoints {
	return &Checkpoints{log: log, signer: signer, file: file, clock: clock}
}

// Signer returns the checkpoint signer.
func (c *Checkpoints) Signer() *Signer { return c.signer }

// OnCheckpoint adds a sink told of every new checkpoint.
func (c *Checkpoints) OnCheckpoint(sink func(Checkpoint)) { c.sinks = append(c.sinks, sink) }

// Latest returns a checkpoint of the current tree, signing one now if the
// tree grew since the last, so that every answered entry can be proven.
func (c *Checkpoints) Latest(ctx context.Context) (Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size, root, err := c.log.Head(ctx)
	if err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Latest", err)
	}
	if size == 0 {
		return Checkpoint{}, &medguard.Error{Kind: medguard.NotFound, Message: "the log is empty"}
	}
	if size == c.last.Size {
		return c.last, nil
	}
	if stored, ok, err := c.stored(ctx, size); err != nil {
		return Checkpoint{}, err
	} else if ok {
		c.last = stored
		return stored, nil
	}
	msg, err := c.signer.Sign(size, root)
	if err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Latest", err)
	}
	cp := Checkpoint{Size: size, Root: root, Note: string(msg), SignedAt: c.clock.Now().Truncate(time.Millisecond)}
	res, err := c.log.db.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (size) DO NOTHING`, int64(size), root, cp.Note, medguard.Millis(cp.SignedAt))
	if err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Latest", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// Another server signed this size first: use theirs (same key, same tree).
		stored, _, err := c.stored(ctx, size)
		if err != nil {
			return Checkpoint{}, err
		}
		c.last = stored
		return stored, nil
	}
	if err := c.appendFile(cp); err != nil {
		return Checkpoint{}, medguard.Wrap("audit.Latest", err)
	}
	c.last = cp
	for _, sink := range c.sinks {
		sink(cp)
	}
	return cp, nil
}

func (c *Checkpoints) stored(ctx context.Context, size uint64) (Checkpoint, bool, error) {
	cp := Checkpoint{Size: size}
	var signed int64
	err := c.log.db.QueryRowContext(ctx, `SELECT root, note, signed_at FROM audit_checkpoints WHERE size = $1`, int64(size)).
		Scan(&cp.Root, &cp.Note, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, medguard.Wrap("audit.checkpoint", err)
	}
	cp.SignedAt = medguard.FromMillis(signed)
	return cp, true, nil
}

// appendFile appends a checkpoint to the file outside the database, one
// JSON object a line, and syncs it.
func (c *Checkpoints) appendFile(cp Checkpoint) error {
	if c.file == "" {
		return nil
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return writeSynced(c.file, os.O_APPEND, append(b, '\n'))
}

// Run signs a checkpoint every interval while the log grows, until ctx ends.
func (c *Checkpoints) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Latest(ctx); err != nil && !medguard.IsKind(err, medguard.NotFound) && ctx.Err() == nil && onError != nil {
				onError(err)
			}
		}
	}
}

// StoredCheckpoints returns every checkpoint stored in the database, by size.
func StoredCheckpoints(ctx context.Context, db *storage.DB) ([]Checkpoint, error) {
	rows, err := db.QueryContext(ctx, `SELECT size, root, note, signed_at FROM audit_checkpoints ORDER BY size`)
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
	return out, rows.Err()
}

// ReadCheckpointFile reads a checkpoints file: the JSON lines written by
// Checkpoints, or a single checkpoint note as served by the API.
func ReadCheckpointFile(r io.Reader) ([]Checkpoint, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return []Checkpoint{{Note: string(data)}}, nil
	}
	var out []Checkpoint
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var cp Checkpoint
		if err := json.Unmarshal(sc.Bytes(), &cp); err != nil {
			return nil, fmt.Errorf("checkpoints file line %d: %w", line, err)
		}
		out = append(out, cp)
	}
	return out, sc.Err()
}
