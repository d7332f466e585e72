package keys

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KEKSource is where an installation's key-encryption keys live: the key
// file (the default), the environment (MEDGUARD_KEK), or a hardware
// security module reached through PKCS#11. A source wraps and unwraps data
// keys; with an HSM the KEK never leaves the token.
type KEKSource interface {
	// Name is "file", "env" or "pkcs11".
	Name() string
	// Versions lists the KEK versions the source holds, oldest first.
	Versions() []uint32
	// Wrapper returns the wrapper of one version, or an error wrapping
	// ErrUnknownKEK when the source does not hold it.
	Wrapper(version uint32) (Wrapper, error)
	// Reload reads the source again: another process may have added a
	// version since.
	Reload() error
	// NewVersion makes (or, for the environment, finds) a KEK version
	// newer than after and returns its number.
	NewVersion(after uint32, now time.Time) (uint32, error)
}

// Wrapper wraps and unwraps data keys under one KEK version. The wrapped
// form is a ciphertext in this package's layout whose header names the
// KEK version, bound to the data key's owner and version (loc).
type Wrapper interface {
	Wrap(loc Location, raw []byte) ([]byte, error)
	Unwrap(loc Location, wrapped []byte) ([]byte, error)
}

// ErrUnknownKEK is returned when a KEK version is not in the source.
var ErrUnknownKEK = errors.New("keys: the KEK source does not hold this KEK version")

// The names of the KEK sources.
const (
	SourceFile   = "file"
	SourceEnv    = "env"
	SourcePKCS11 = "pkcs11"
)

// fileWrapper wraps with a secret held in memory (key file or environment):
// the wrapping key for each algorithm is derived with HKDF.
type fileWrapper struct {
	alg     Algorithm
	sealers map[Algorithm]*sealer
}

func newFileWrapper(k KEK, alg Algorithm) (*fileWrapper, error) {
	w := &fileWrapper{alg: alg, sealers: map[Algorithm]*sealer{}}
	for _, a := range []Algorithm{SM4GCM, AES256GCM} {
		s, err := k.wrapper(a)
		if err != nil {
			return nil, err
		}
		w.sealers[a] = s
	}
	return w, nil
}

func (w *fileWrapper) Wrap(loc Location, raw []byte) ([]byte, error) {
	return w.sealers[w.alg].seal(loc, raw), nil
}

func (w *fileWrapper) Unwrap(loc Location, wrapped []byte) ([]byte, error) {
	alg, _, err := Header(wrapped)
	if err != nil {
		return nil, err
	}
	s, ok := w.sealers[alg]
	if !ok {
		return nil, ErrDecrypt
	}
	return s.open(loc, wrapped)
}

// memoryKEKs is a source whose secrets are in memory: the key file's or the
// environment's.
type memoryKEKs struct {
	name string
	alg  Algorithm
	mu   sync.Mutex
	keks []KEK
	// load reads the secrets again (nil: they cannot change).
	load func() ([]KEK, error)
	// add stores a new version (nil: the source cannot make one).
	add func(after uint32, now time.Time) (uint32, error)
}

func (m *memoryKEKs) Name() string { return m.name }

func (m *memoryKEKs) Versions() []uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var vs []uint32
	for _, k := range m.keks {
		vs = append(vs, k.Version)
	}
	slices.Sort(vs)
	return vs
}

func (m *memoryKEKs) Wrapper(version uint32) (Wrapper, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keks {
		if k.Version == version {
			return newFileWrapper(k, m.alg)
		}
	}
	return nil, fmt.Errorf("%w: version %d (source %s)", ErrUnknownKEK, version, m.name)
}

func (m *memoryKEKs) Reload() error {
	if m.load == nil {
		return nil
	}
	keks, err := m.load()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.keks = keks
	m.mu.Unlock()
	return nil
}

func (m *memoryKEKs) NewVersion(after uint32, now time.Time) (uint32, error) {
	if m.add == nil {
		return 0, errors.New("keys: this KEK source cannot make a new version")
	}
	v, err := m.add(after, now)
	if err != nil {
		return 0, err
	}
	return v, m.Reload()
}

// FileKEKs is the key file as a KEK source. path is where the file lives,
// so that a rotation can add a version to it and other processes can
// reload it; "" when the key file came from MEDGUARD_KEYS (then a rotation
// cannot write it, and says so).
func FileKEKs(kf *KeyFile, path string) KEKSource {
	m := &memoryKEKs{name: SourceFile, alg: kf.Algorithm(), keks: slices.Clone(kf.KEKs)}
	if path == "" {
		m.add = func(uint32, time.Time) (uint32, error) {
			return 0, errors.New("keys: the key file comes from MEDGUARD_KEYS, which medguard cannot change: " +
				"rotate with a key file on disk (--key-file), or put the KEKs in MEDGUARD_KEK or an HSM")
		}
		return m
	}
	m.load = func() ([]KEK, error) {
		kf, err := LoadKeyFile(path)
		if err != nil {
			return nil, err
		}
		return kf.KEKs, nil
	}
	m.add = func(after uint32, now time.Time) (uint32, error) {
		kf, err := LoadKeyFile(path)
		if err != nil {
			return 0, err
		}
		v := after
		for _, k := range kf.KEKs {
			v = max(v, k.Version)
		}
		v++
		kf.KEKs = append(kf.KEKs, KEK{Version: v, Secret: randomBytes(32), CreatedAt: now.UTC()})
		return v, ReplaceKeyFile(path, kf)
	}
	return m
}

// EnvVariable is the environment variable that holds the KEKs when they
// come from the environment.
const EnvVariable = "MEDGUARD_KEK"

// EnvKEKs is the environment as a KEK source: MEDGUARD_KEK holds one or
// more versions, separated by commas or white space, each VERSION:SECRET
// with SECRET 32 bytes in standard base64 — for example
// "1:q0Zd…=,2:Hh1u…=". "medguard keys generate-kek" prints a new entry.
// medguard cannot change a process's environment: a rotation uses the
// highest version present, which the operator adds (and restarts the
// servers with) before asking for the rotation.
func EnvKEKs(getenv func(string) string, alg Algorithm) (KEKSource, error) {
	load := func() ([]KEK, error) { return ParseEnvKEKs(getenv(EnvVariable)) }
	keks, err := load()
	if err != nil {
		return nil, err
	}
	m := &memoryKEKs{name: SourceEnv, alg: alg, keks: keks, load: load}
	m.add = func(after uint32, _ time.Time) (uint32, error) {
		keks, err := load()
		if err != nil {
			return 0, err
		}
		var top uint32
		for _, k := range keks {
			top = max(top, k.Version)
		}
		if top <= after {
			return 0, fmt.Errorf("keys: %s holds no KEK version newer than %d: add one (medguard keys generate-kek --version %d) "+
				"to the environment of every server, restart them, then rotate", EnvVariable, after, after+1)
		}
		return top, nil
	}
	return m, nil
}

// ParseEnvKEKs reads the value of MEDGUARD_KEK. Errors never contain the
// secrets.
func ParseEnvKEKs(value string) ([]KEK, error) {
	var keks []KEK
	seen := map[uint32]bool{}
	for _, item := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		vs, secret, ok := strings.Cut(item, ":")
		v, err := strconv.ParseUint(vs, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("keys: %s: an entry is not VERSION:BASE64-SECRET", EnvVariable)
		}
		raw, err := base64.StdEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("keys: %s: the secret of version %d is not 32 bytes of base64", EnvVariable, v)
		}
		if seen[uint32(v)] {
			return nil, fmt.Errorf("keys: %s: version %d appears twice", EnvVariable, v)
		}
		seen[uint32(v)] = true
		keks = append(keks, KEK{Version: uint32(v), Secret: raw})
	}
	if len(keks) == 0 {
		return nil, fmt.Errorf("keys: %s is empty: it must hold at least one VERSION:BASE64-SECRET", EnvVariable)
	}
	return keks, nil
}

// NewEnvKEK returns a fresh MEDGUARD_KEK entry for version v.
func NewEnvKEK(v uint32) string {
	return strconv.FormatUint(uint64(v), 10) + ":" + base64.StdEncoding.EncodeToString(randomBytes(32))
}

// ReplaceKeyFile writes kf over the key file at path atomically (a new file
// with mode 0600, synced, renamed over the old one), so that a crash leaves
// either the old file or the new one.
func ReplaceKeyFile(path string, kf *KeyFile) error {
	tmp := path + ".new"
	os.Remove(tmp)
	if err := WriteKeyFile(tmp, kf); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// PKCS11Config says how to reach the HSM that holds the KEKs: the PKCS#11
// module (a shared library such as /usr/lib/softhsm/libsofthsm2.so), the
// token's label and the user PIN. KEK version N is the AES-256 secret key
// labelled "medguard-kek-vN" on the token, generated there, sensitive and
// not extractable: data keys are wrapped and unwrapped inside the token
// with AES-GCM (CKM_AES_GCM), the KEK never leaves it.
type PKCS11Config struct {
	Module string
	Token  string
	PIN    string
}

// PKCS11Label is the label of KEK version v on the token.
func PKCS11Label(v uint32) string { return "medguard-kek-v" + strconv.FormatUint(uint64(v), 10) }

// ErrNoHSM is returned by OpenPKCS11 in a build without cgo.
var ErrNoHSM = errors.New("keys: HSM support is not compiled in: this medguard was built without cgo " +
	"(CGO_ENABLED=0); build it with CGO_ENABLED=1 to use a PKCS#11 module")
