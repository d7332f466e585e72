package backup

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/emmansun/gmsm/sm4"
	"github.com/minio/sio"
	siogo "github.com/secure-io/sio-go"
)

// The ciphers a backup's pieces may be sealed with, as a manifest names
// them. AES-256-GCM (the seed's algorithm, the default) is DARE 2.0
// (github.com/minio/sio); SM4-GCM (国密) is the STREAM construction of
// github.com/secure-io/sio-go over SM4-GCM (github.com/emmansun/gmsm),
// because DARE fixes its cipher suites. Both authenticate every 64 KiB
// fragment and the end of the stream, so a changed, reordered, truncated
// or extended piece fails.
const (
	CipherAES = "AES-256-GCM (DARE 2.0, github.com/minio/sio)"
	CipherSM4 = "SM4-GCM (STREAM, github.com/secure-io/sio-go)"
)

// Cipher is the default cipher of a backup.
const Cipher = CipherAES

// CipherNamed reads a cipher's short name (AES-256-GCM, SM4-GCM) as a
// flag gives it; empty is the default.
func CipherNamed(s string) (string, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "AES-256-GCM", "AES256GCM", "AES":
		return CipherAES, nil
	case "SM4-GCM", "SM4GCM", "SM4":
		return CipherSM4, nil
	}
	return "", fmt.Errorf("backup cipher %q: choose AES-256-GCM or SM4-GCM", s)
}

// sm4Magic begins a piece sealed with SM4-GCM (a DARE 2.0 piece begins
// with its version byte, 0x20): the magic, then the STREAM nonce.
var sm4Magic = []byte("MGSM4\x01")

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

// pieceKey derives the key of one piece from the backup key, the piece's
// name and the cipher, so pieces cannot be swapped, no two streams share
// a key, and no key serves both ciphers.
func pieceKey(key []byte, name, cipherName string, size int) ([]byte, error) {
	info := "medguard backup piece " + name
	if cipherName == CipherSM4 {
		info = "medguard backup piece (SM4-GCM) " + name
	}
	return hkdf.Key(sha256.New, key, nil, info, size)
}

// pieceConfig is the DARE configuration of one AES-256-GCM piece.
func pieceConfig(key []byte, name string) (sio.Config, error) {
	k, err := pieceKey(key, name, CipherAES, 32)
	if err != nil {
		return sio.Config{}, err
	}
	return sio.Config{Key: k, MinVersion: sio.Version20, MaxVersion: sio.Version20,
		CipherSuites: []byte{sio.AES_256_GCM}}, nil
}

// sm4Stream is the STREAM of one SM4-GCM piece.
func sm4Stream(key []byte, name string) (*siogo.Stream, error) {
	k, err := pieceKey(key, name, CipherSM4, 16)
	if err != nil {
		return nil, err
	}
	block, err := sm4.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return siogo.NewStream(aead, siogo.BufSize), nil
}

// encryptReader returns the encrypted stream of a piece under the cipher
// (CipherAES or CipherSM4).
func encryptReader(cipherName string, key []byte, name string, src io.Reader) (io.Reader, error) {
	if cipherName == CipherSM4 {
		st, err := sm4Stream(key, name)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, st.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		hdr := append(slices.Clip(sm4Magic), nonce...)
		return io.MultiReader(bytes.NewReader(hdr), st.EncryptReader(src, nonce, []byte(name))), nil
	}
	if cipherName != CipherAES {
		return nil, fmt.Errorf("backup: unknown cipher %q", cipherName)
	}
	cfg, err := pieceConfig(key, name)
	if err != nil {
		return nil, err
	}
	return sio.EncryptReader(src, cfg)
}

// decryptReader returns the plaintext of an encrypted piece, of either
// cipher (a piece says which it is); a changed, truncated or extended
// piece, or the wrong key, makes it fail.
func decryptReader(key []byte, name string, src io.Reader) (io.Reader, error) {
	br := bufio.NewReader(src)
	if head, _ := br.Peek(len(sm4Magic)); bytes.Equal(head, sm4Magic) {
		st, err := sm4Stream(key, name)
		if err != nil {
			return nil, err
		}
		br.Discard(len(sm4Magic))
		nonce := make([]byte, st.NonceSize())
		if _, err := io.ReadFull(br, nonce); err != nil {
			return nil, fmt.Errorf("backup: %s is truncated", name)
		}
		return st.DecryptReader(br, nonce, []byte(name)), nil
	}
	cfg, err := pieceConfig(key, name)
	if err != nil {
		return nil, err
	}
	return sio.DecryptReader(br, cfg)
}
