package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// manifestHeader is the first line of a manifest's signed text; it keeps a
// manifest from ever being taken for an audit checkpoint signed by the same
// key (whose first line is the log's origin).
const manifestHeader = "medguard backup manifest v1"

// Kinds of backup.
const (
	Full        = "full"
	Incremental = "incremental"
)

// Piece is one stored object of a backup, as the manifest lists it.
type Piece struct {
	// Name is the object's name under the target's root.
	Name string `json:"name"`
	// Size and SHA256 are of the stored (encrypted) bytes.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Role says what the piece holds: "key" (the wrapped backup key),
	// "database" (the SQLite snapshot), "checkpoints" (the audit log's
	// checkpoints.log), "stream" (a WAL stream segment, LTX).
	Role string `json:"role"`
	// MinTXID and MaxTXID are a stream segment's transactions.
	MinTXID uint64 `json:"min_txid,omitempty"`
	MaxTXID uint64 `json:"max_txid,omitempty"`
}

// AuditState is the audit tree at the moment of the backup.
type AuditState struct {
	Size uint64 `json:"size"`
	Root []byte `json:"root"`
	// Checkpoint is the signed checkpoint note of this size and root (an
	// incremental backup holds at least this tree).
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Manifest is medguard's signed description of one backup: what it is,
// the audit tree it holds, the key versions needed to read its records,
// and the SHA-256 of every piece.
type Manifest struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	// DataAsOf is when the data it holds was current: the snapshot's
	// moment, or the newest write the stream shipped.
	DataAsOf time.Time `json:"data_as_of"`
	Database string    `json:"database"`
	// Base is, for an incremental backup, the stream generation it seals.
	Base string `json:"base,omitempty"`
	// Audit is the audit tree in the backup (size and root).
	Audit AuditState `json:"audit"`
	// KEKVersions are the key file's KEK versions the data keys in the
	// backup are wrapped under; DataKeys counts the data keys.
	KEKVersions []uint32 `json:"kek_versions"`
	DataKeys    int      `json:"data_keys"`
	// Patients and Records count what the backup holds (for drills).
	Patients int `json:"patients"`
	Records  int `json:"records"`
	// Cipher and KeyWrap say how the pieces are encrypted; Recipient is
	// the age recipient the backup key is wrapped to.
	Cipher    string  `json:"cipher"`
	KeyWrap   string  `json:"key_wrap"`
	Recipient string  `json:"recipient"`
	Pieces    []Piece `json:"pieces"`
	// Signer is the verifier key of the key that signed the manifest.
	Signer string `json:"signer"`
	// KeyTransitions are the audit log's transition checkpoints (key
	// rotations) when the backup was made: they link Signer to the keys
	// before it (see keychain.go).
	KeyTransitions []string `json:"key_transitions,omitempty"`
}

// Signer signs manifests and drill records. It is the audit log's Ed25519
// note key (DATA/keys/audit-log.key or MEDGUARD_AUDIT_KEY): the key whose
// verifier auditors already hold (`medguard audit key`), so a backup is
// checked with the same key as the log's checkpoints.
type Signer struct {
	signer   note.Signer
	verifier string
}

// NewSigner makes a signer from a note signer key (PRIVATE+KEY+…).
func NewSigner(skey string) (*Signer, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("backup: signing key: %w", err)
	}
	v, err := verifierOf(strings.TrimSpace(skey))
	if err != nil {
		return nil, err
	}
	return &Signer{signer: s, verifier: v}, nil
}

// LoadSigner reads the audit log's signing key: env (MEDGUARD_AUDIT_KEY's
// value) if not empty, else DATA/keys/audit-log.key.
func LoadSigner(dataDir, env string) (*Signer, error) {
	if env != "" {
		return NewSigner(env)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "keys", "audit-log.key"))
	if err != nil {
		return nil, fmt.Errorf("backup: the audit log's signing key signs backups: %w", err)
	}
	return NewSigner(string(b))
}

// VerifierKey is the public key that checks this signer's manifests.
func (s *Signer) VerifierKey() string { return s.verifier }

func (s *Signer) sign(header string, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: header + "\n" + string(body) + "\n"}, s.signer)
}

// Errors of opening a signed manifest.
var (
	ErrBadSignature = errors.New("backup: manifest signature does not verify")
)

// verifierOf derives the verifier key from a note signer key.
func verifierOf(skey string) (string, error) {
	// PRIVATE+KEY+name+hash+base64(alg ‖ seed)
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", errors.New("backup: signing key is not a note key")
	}
	pub, err := ed25519PublicFromNoteKey(parts[4])
	if err != nil {
		return "", err
	}
	return note.NewEd25519VerifierKey(parts[2], pub)
}
