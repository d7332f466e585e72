package exports

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/emmansun/gmsm/sm4"
)

// The ciphers an export's file is sealed with: AES-256-GCM (default) or
// SM4-GCM (国密, GB/T 32907), both from vetted implementations (the
// standard library's GCM over crypto/aes or gmsm's sm4 block).
const (
	AES256GCM = "aes-256-gcm"
	SM4GCM    = "sm4-gcm"
)

// Ciphers lists the ciphers an export may ask for.
var Ciphers = []string{AES256GCM, SM4GCM}

// Header is the first line of an export's file, in clear: what is needed
// to open it, and nothing about the patients. The whole line (with its
// newline) is the AEAD's additional data, so that it cannot be changed.
type Header struct {
	Magic    string `json:"magic"` // "medguard-export"
	Version  int    `json:"version"`
	ExportID string `json:"export_id"`
	Cipher   string `json:"cipher"`
	Format   string `json:"format"`
	Nonce    []byte `json:"nonce"`
}

const magic = "medguard-export"

func keySize(c string) int {
	if c == SM4GCM {
		return 16 // SM4 is a 128-bit block cipher with a 128-bit key
	}
	return 32
}

func aead(c string, key []byte) (cipher.AEAD, error) {
	var b cipher.Block
	var err error
	switch c {
	case AES256GCM:
		b, err = aes.NewCipher(key)
	case SM4GCM:
		b, err = sm4.NewCipher(key)
	default:
		return nil, fmt.Errorf("unknown cipher %q", c)
	}
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal encrypts plain under a fresh random key: the file (header line and
// ciphertext) and the key, hex-encoded, to be shown once.
func seal(exportID, c, format string, plain []byte) (file []byte, key string, err error) {
	k := make([]byte, keySize(c))
	if _, err := rand.Read(k); err != nil {
		return nil, "", err
	}
	a, err := aead(c, k)
	if err != nil {
		return nil, "", err
	}
	h := Header{Magic: magic, Version: 1, ExportID: exportID, Cipher: c, Format: format, Nonce: make([]byte, a.NonceSize())}
	if _, err := rand.Read(h.Nonce); err != nil {
		return nil, "", err
	}
	line, err := json.Marshal(h)
	if err != nil {
		return nil, "", err
	}
	line = append(line, '\n')
	return a.Seal(line, h.Nonce, plain, line), hex.EncodeToString(k), nil
}

// Decrypt opens an export's file with the key shown when it was built
// (hex) and returns its header and content. A wrong key, or any change to
// the file, fails.
func Decrypt(file []byte, key string) (*Header, []byte, error) {
	line, rest, ok := bytes.Cut(file, []byte{'\n'})
	if !ok {
		return nil, nil, fmt.Errorf("not a medguard export: no header")
	}
	var h Header
	if err := json.Unmarshal(line, &h); err != nil || h.Magic != magic || h.Version != 1 {
		return nil, nil, fmt.Errorf("not a medguard export")
	}
	k, err := hex.DecodeString(strings.TrimSpace(key))
	if err != nil || len(k) != keySize(h.Cipher) {
		return nil, nil, fmt.Errorf("the key must be %d hex digits for %s", 2*keySize(h.Cipher), h.Cipher)
	}
	a, err := aead(h.Cipher, k)
	if err != nil {
		return nil, nil, err
	}
	if len(h.Nonce) != a.NonceSize() {
		return nil, nil, fmt.Errorf("not a medguard export: bad nonce")
	}
	plain, err := a.Open(nil, h.Nonce, rest, file[:len(line)+1])
	if err != nil {
		return nil, nil, fmt.Errorf("the key does not open this file, or the file was changed")
	}
	return &h, plain, nil
}

// DecryptStream is Decrypt for a file read from r (at most max bytes).
func DecryptStream(r io.Reader, key string, max int64) (*Header, []byte, error) {
	b, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), max+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > max {
		return nil, nil, fmt.Errorf("the file is larger than %d bytes", max)
	}
	return Decrypt(b, key)
}
