package backup

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"github.com/minio/sio"
)

// Cipher is the only cipher backups are written with: AES-256-GCM in
// DARE 2.0 (github.com/minio/sio). SM4-GCM is not yet selectable: sio's
// DARE format fixes its cipher suites (AES-256-GCM, ChaCha20-Poly1305) and
// no vetted streaming-AEAD library with SM4 is in the dependency table.
const Cipher = "AES-256-GCM (DARE 2.0, github.com/minio/sio)"

// KeyWrap names how each backup's key is protected: wrapped with age
// (X25519) to a recipient whose identity is kept offline.
const KeyWrap = "age X25519 (filippo.io/age)"

// ErrWrongKey is returned when the identity does not open a backup's key,
// or a piece does not decrypt under it.
var ErrWrongKey = errors.New("backup: wrong backup key")

// NewIdentity makes a backup key pair: the identity (AGE-SECRET-KEY-1…),
// to be kept offline, and its public recipient (age1…), which the server
// holds. Only the identity opens a backup.
func NewIdentity() (identity, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", "", err
	}
	return id.String(), id.Recipient().String(), nil
}

// ParseRecipient reads an age recipient (age1…), or a file holding one.
func ParseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "age1") {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("backup recipient: %w", err)
		}
		s = strings.TrimSpace(string(b))
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, fmt.Errorf("backup recipient: %w", err)
	}
	return r, nil
}

// LoadIdentity reads the backup identity file (AGE-SECRET-KEY-1…).
func LoadIdentity(path string) (age.Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup identity: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil || len(ids) != 1 {
		return nil, fmt.Errorf("backup identity %s: not one age identity", path)
	}
	return ids[0], nil
}

// newBackupKey makes a fresh random 256-bit key for one backup (or one
// stream generation).
func newBackupKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}

// wrapKey encrypts a backup key to the recipient.
func wrapKey(key []byte, r age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(key); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unwrapKey opens a wrapped backup key with the identity.
func unwrapKey(wrapped []byte, id age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(wrapped), id)
	if err != nil {
		return nil, fmt.Errorf("%w: the identity file does not open this backup's key (%v)", ErrWrongKey, err)
	}
	k, err := io.ReadAll(io.LimitReader(r, 64))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%w: the backup's key is malformed", ErrWrongKey)
	}
	return k, nil
}

// pieceConfig is the DARE configuration of one piece: its key is derived
// from the backup key and the piece's name, so pieces cannot be swapped
// and no two streams share a key.
func pieceConfig(key []byte, name string) (sio.Config, error) {
	k, err := hkdf.Key(sha256.New, key, nil, "medguard backup piece "+name, 32)
	if err != nil {
		return sio.Config{}, err
	}
	return sio.Config{Key: k, MinVersion: sio.Version20, MaxVersion: sio.Version20,
		CipherSuites: []byte{sio.AES_256_GCM}}, nil
}

// encryptReader returns the encrypted stream of a piece.
func encryptReader(key []byte, name string, src io.Reader) (io.Reader, error) {
	cfg, err := pieceConfig(key, name)
	if err != nil {
		return nil, err
	}
	return sio.EncryptReader(src, cfg)
}

// decryptReader returns the plaintext of an encrypted piece; a changed,
// truncated or extended piece, or the wrong key, makes it fail.
func decryptReader(key []byte, name string, src io.Reader) (io.Reader, error) {
	cfg, err := pieceConfig(key, name)
	if err != nil {
		return nil, err
	}
	return sio.DecryptReader(src, cfg)
}

// encryptedSize is the size of a piece of n plaintext bytes.
func encryptedSize(n int64) (int64, error) {
	s, err := sio.EncryptedSize(uint64(n))
	return int64(s), err
}
