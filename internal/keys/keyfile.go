package keys

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// FileFormat is the format tag of key files written by this version.
const FileFormat = "medguard-keys/1"

// KeyFile holds an installation's root secrets: the key-encryption keys, by
// version, and the key of the blind indexes. It lives outside the database —
// by default DATA/keys/medguard.keys, mode 0600 — or in the MEDGUARD_KEYS
// environment variable, and must be backed up separately from the database:
// without it the data cannot be read.
type KeyFile struct {
	Format string `json:"format"`
	// Cipher is the algorithm for new data keys and for wrapping them.
	Cipher string `json:"cipher"`
	// IndexKey is version 1 of the blind-index key (HMAC-SM3), as every
	// key file before index key versions holds it; empty once a rotation
	// has retired version 1. IndexKeys holds the later versions. Writes
	// index under the newest version; lookups query every version a
	// re-index still needs (docs/keys.md, "The blind-index key").
	IndexKey  []byte     `json:"index_key,omitempty"`
	IndexKeys []IndexKey `json:"index_keys,omitempty"`
	// KEKs are the key-encryption keys; the one with the highest version
	// wraps new data keys, older ones still unwrap what they wrapped.
	KEKs []KEK `json:"keks"`
	// KEKSource says where the KEKs live when they are not in this file:
	// "env" (MEDGUARD_KEK) or "pkcs11" (an HSM); empty or "file" for here.
	// A server started with another source refuses to start.
	KEKSource string `json:"kek_source,omitempty"`
}

// KEK is one version of the key-encryption key: 32 bytes of secret from
// which the wrapping key for each algorithm is derived with HKDF.
type KEK struct {
	Version   uint32    `json:"version"`
	Secret    []byte    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

// NewKeyFile makes a key file with fresh random secrets.
func NewKeyFile(alg Algorithm, now time.Time) *KeyFile {
	return &KeyFile{
		Format:   FileFormat,
		Cipher:   alg.String(),
		IndexKey: randomBytes(32),
		KEKs:     []KEK{{Version: 1, Secret: randomBytes(32), CreatedAt: now.UTC()}},
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("keys: crypto/rand failed: " + err.Error())
	}
	return b
}

// ParseKeyFile reads and checks a key file's contents.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	var kf KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, errors.New("keys: key file is not valid JSON")
	}
	if err := kf.check(); err != nil {
		return nil, err
	}
	return &kf, nil
}

func (kf *KeyFile) check() error {
	if kf.Format != FileFormat {
		return fmt.Errorf("keys: key file format %q, want %q", kf.Format, FileFormat)
	}
	if _, err := ParseAlgorithm(kf.Cipher); err != nil {
		return err
	}
	if err := kf.checkIndexKeys(); err != nil {
		return err
	}
	switch kf.KEKSource {
	case "", SourceFile:
		if len(kf.KEKs) == 0 {
			return errors.New("keys: key file has no KEK")
		}
	case SourceEnv, SourcePKCS11:
		if len(kf.KEKs) != 0 {
			return fmt.Errorf("keys: key file keeps its KEKs in %s and must not hold any itself", kf.KEKSource)
		}
	default:
		return fmt.Errorf("keys: key file names an unknown KEK source %q", kf.KEKSource)
	}
	seen := map[uint32]bool{}
	for _, k := range kf.KEKs {
		if k.Version == 0 || seen[k.Version] || len(k.Secret) != 32 {
			return fmt.Errorf("keys: key file KEK version %d is invalid or repeated", k.Version)
		}
		seen[k.Version] = true
	}
	return nil
}

// Source is where the key file's KEKs live: "file", "env" or "pkcs11".
func (kf *KeyFile) Source() string {
	if kf.KEKSource == "" {
		return SourceFile
	}
	return kf.KEKSource
}

// Algorithm returns the cipher for new keys.
func (kf *KeyFile) Algorithm() Algorithm {
	a, _ := ParseAlgorithm(kf.Cipher)
	return a
}

// ActiveKEK returns the KEK with the highest version.
func (kf *KeyFile) ActiveKEK() KEK {
	return slices.MaxFunc(kf.KEKs, func(a, b KEK) int { return int(a.Version) - int(b.Version) })
}

// KEKVersion returns the KEK of the given version.
func (kf *KeyFile) KEKVersion(v uint32) (KEK, bool) {
	for _, k := range kf.KEKs {
		if k.Version == v {
			return k, true
		}
	}
	return KEK{}, false
}

// wrapper returns the sealer that wraps data keys with this KEK under alg.
// The wrapping key is derived with HKDF (over SM3 for SM4, SHA-256 for AES),
// so one KEK secret serves either algorithm without reusing key material.
func (k KEK) wrapper(alg Algorithm) (*sealer, error) {
	var key []byte
	var err error
	info := "medguard kek " + alg.String()
	if alg == SM4GCM {
		key, err = hkdf.Key(func() hash.Hash { return sm3.New() }, k.Secret, nil, info, alg.KeySize())
	} else {
		key, err = hkdf.Key(sha256.New, k.Secret, nil, info, alg.KeySize())
	}
	if err != nil {
		return nil, err
	}
	return newSealer(alg, k.Version, key)
}

// Marshal returns the key file's contents.
func (kf *KeyFile) Marshal() []byte {
	b, _ := json.MarshalIndent(kf, "", "  ")
	return append(b, '\n')
}

// ErrKeyFilePermissions is returned when a key file can be read by others.
var ErrKeyFilePermissions = errors.New("keys: key file is readable by group or others; chmod 600 it")

// LoadKeyFile reads the key file at path, refusing one that group or others
// could read.
func LoadKeyFile(path string) (*KeyFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s", ErrKeyFilePermissions, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseKeyFile(data)
}

// LoadOrCreateKeyFile reads the key file at path, or — if there is none —
// creates one with fresh secrets for alg, mode 0600 in a 0700 directory.
// created reports whether it was made now.
func LoadOrCreateKeyFile(path string, alg Algorithm, now time.Time) (kf *KeyFile, created bool, err error) {
	return LoadOrCreateKeyFileFor(path, alg, SourceFile, now)
}

// LoadOrCreateKeyFileFor is LoadOrCreateKeyFile for KEKs kept in source: a
// key file it creates for "env" or "pkcs11" holds the cipher and the blind
// index key only, and names where the KEKs are.
func LoadOrCreateKeyFileFor(path string, alg Algorithm, source string, now time.Time) (kf *KeyFile, created bool, err error) {
	kf, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return kf, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	kf = NewKeyFile(alg, now)
	if source != SourceFile {
		kf.KEKs, kf.KEKSource = nil, source
	}
	if err := WriteKeyFile(path, kf); err != nil {
		return nil, false, err
	}
	return kf, true, nil
}

// WriteKeyFile writes kf to path atomically with mode 0600, refusing to
// overwrite an existing file.
func WriteKeyFile(path string, kf *KeyFile) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(kf.Marshal()); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
