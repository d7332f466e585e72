// Package keys owns medguard's encryption: the key file with its key-encryption
// keys (KEKs), the per-owner data keys (DEKs) wrapped by them, the sealing of
// fields with associated data, and the keyed blind indexes used for exact
// search on encrypted fields.
//
// Ciphers come from vetted libraries only: SM4 from github.com/emmansun/gmsm
// (国密, the default) and AES from the standard library, both in GCM mode
// through crypto/cipher. This package never decides who may decrypt what;
// callers reach it only through the gate, after the access decision.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/emmansun/gmsm/sm4"
)

// Algorithm is an AEAD cipher a ciphertext was sealed with.
type Algorithm byte

// The algorithms medguard seals with. The numbers are stored in every
// ciphertext and must never change.
const (
	SM4GCM    Algorithm = 1 // SM4 in GCM mode, 128-bit key (GB/T 32907, 国密)
	AES256GCM Algorithm = 2 // AES-256 in GCM mode
)

// String returns the algorithm's name as it appears in configuration.
func (a Algorithm) String() string {
	switch a {
	case SM4GCM:
		return "SM4-GCM"
	case AES256GCM:
		return "AES-256-GCM"
	}
	return fmt.Sprintf("algorithm(%d)", byte(a))
}

// ParseAlgorithm reads an algorithm name: "SM4-GCM" (or "sm4") or
// "AES-256-GCM" (or "aes").
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "SM4-GCM", "SM4":
		return SM4GCM, nil
	case "AES-256-GCM", "AES", "AES256", "AES-256":
		return AES256GCM, nil
	}
	return 0, fmt.Errorf("keys: unknown cipher %q (want SM4-GCM or AES-256-GCM)", s)
}

// KeySize is the key length in bytes for the algorithm.
func (a Algorithm) KeySize() int {
	if a == SM4GCM {
		return 16
	}
	return 32
}

// newAEAD returns the GCM AEAD for key under algorithm a.
func newAEAD(a Algorithm, key []byte) (cipher.AEAD, error) {
	var block cipher.Block
	var err error
	switch a {
	case SM4GCM:
		block, err = sm4.NewCipher(key)
	case AES256GCM:
		if len(key) != 32 {
			return nil, errors.New("keys: AES-256 needs a 32-byte key")
		}
		block, err = aes.NewCipher(key)
	default:
		return nil, fmt.Errorf("keys: unknown algorithm %d", byte(a))
	}
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Ciphertext layout (all integers big-endian):
//
//	[0]     format, always 1
//	[1]     algorithm (SM4GCM or AES256GCM)
//	[2:6]   key version (of the data key, or of the KEK for wrapped keys)
//	[6:18]  nonce, 96 random bits
//	[18:]   GCM ciphertext and 16-byte tag
//
// The associated data is "medguard/v1", the table, the row and the column,
// each followed by a zero byte, and then the six header bytes — so a
// ciphertext cannot be moved to another row or column, nor relabelled.
const (
	formatV1   = 1
	headerSize = 6
	nonceSize  = 12
	// Overhead is the number of bytes sealing adds to a plaintext.
	Overhead = headerSize + nonceSize + 16
)

// ErrDecrypt is returned when a ciphertext fails to open: it was changed,
// moved to another row or column, or sealed with another key.
var ErrDecrypt = errors.New("keys: ciphertext does not authenticate")

// Header reads the algorithm and key version a ciphertext names.
func Header(ciphertext []byte) (Algorithm, uint32, error) {
	if len(ciphertext) < Overhead || ciphertext[0] != formatV1 {
		return 0, 0, ErrDecrypt
	}
	return Algorithm(ciphertext[1]), binary.BigEndian.Uint32(ciphertext[2:6]), nil
}

// Location says where a sealed value lives: table, row and column. It is
// bound into the ciphertext as associated data.
type Location struct {
	Table, Row, Column string
}

func (l Location) adSize() int {
	return len("medguard/v1\x00") + len(l.Table) + len(l.Row) + len(l.Column) + 3 + headerSize
}

// appendAD appends the associated data for a ciphertext with this header.
func (l Location) appendAD(ad, header []byte) []byte {
	ad = append(ad, "medguard/v1\x00"...)
	ad = append(ad, l.Table...)
	ad = append(ad, 0)
	ad = append(ad, l.Row...)
	ad = append(ad, 0)
	ad = append(ad, l.Column...)
	ad = append(ad, 0)
	return append(ad, header...)
}

// sealer is one key ready to seal and open.
type sealer struct {
	alg     Algorithm
	version uint32
	aead    cipher.AEAD
}

func newSealer(alg Algorithm, version uint32, key []byte) (*sealer, error) {
	aead, err := newAEAD(alg, key)
	if err != nil {
		return nil, err
	}
	return &sealer{alg: alg, version: version, aead: aead}, nil
}

func (s *sealer) seal(loc Location, plaintext []byte) []byte {
	// One allocation holds the ciphertext and, after it, the associated data.
	n := Overhead + len(plaintext)
	buf := make([]byte, n+loc.adSize())
	out := buf[: headerSize+nonceSize : n]
	out[0] = formatV1
	out[1] = byte(s.alg)
	binary.BigEndian.PutUint32(out[2:6], s.version)
	if _, err := rand.Read(out[headerSize:]); err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
	ad := loc.appendAD(buf[n:n], out[:headerSize])
	return s.aead.Seal(out, out[headerSize:], plaintext, ad)
}

func (s *sealer) open(loc Location, ciphertext []byte) ([]byte, error) {
	alg, version, err := Header(ciphertext)
	if err != nil {
		return nil, err
	}
	if alg != s.alg || version != s.version {
		return nil, ErrDecrypt
	}
	pt, err := s.aead.Open(nil, ciphertext[headerSize:headerSize+nonceSize], ciphertext[headerSize+nonceSize:],
		loc.appendAD(make([]byte, 0, loc.adSize()), ciphertext[:headerSize]))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
