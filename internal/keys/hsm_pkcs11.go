//go:build cgo

package keys

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// HSMCompiledIn says whether this build can reach a PKCS#11 module.
const HSMCompiledIn = true

// hsmKEKs is an HSM as a KEK source, through github.com/miekg/pkcs11.
type hsmKEKs struct {
	module string
	p      *pkcs11.Ctx
	slot   uint
	// sessions is a pool: a PKCS#11 session runs one operation at a time.
	sessions chan pkcs11.SessionHandle
	all      []pkcs11.SessionHandle

	mu   sync.Mutex
	keys map[uint32]pkcs11.ObjectHandle
}

// hsmSessions is how many sessions the pool opens.
const hsmSessions = 4

// OpenPKCS11 opens the HSM holding the KEKs: it loads the module, finds
// the token by label, signs in with the PIN and lists the KEK versions.
// Errors never contain the PIN.
func OpenPKCS11(cfg PKCS11Config) (KEKSource, error) {
	if cfg.Module == "" || cfg.Token == "" || cfg.PIN == "" {
		return nil, errors.New("keys: the HSM needs a PKCS#11 module, a token label and a PIN")
	}
	p, err := loadModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	h := &hsmKEKs{module: cfg.Module, p: p, sessions: make(chan pkcs11.SessionHandle, hsmSessions), keys: map[uint32]pkcs11.ObjectHandle{}}
	fail := func(err error) (KEKSource, error) {
		h.Close()
		return nil, err
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fail(fmt.Errorf("keys: PKCS#11 slots: %w", err))
	}
	found := false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == cfg.Token {
			h.slot, found = s, true
			break
		}
	}
	if !found {
		return fail(fmt.Errorf("keys: no PKCS#11 token is labelled %q", cfg.Token))
	}
	for i := 0; i < hsmSessions; i++ {
		sh, err := p.OpenSession(h.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return fail(fmt.Errorf("keys: PKCS#11 session: %w", err))
		}
		if i == 0 {
			if err := p.Login(sh, pkcs11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
				p.CloseSession(sh)
				return fail(fmt.Errorf("keys: PKCS#11 sign-in to token %q refused: %w", cfg.Token, err))
			}
		}
		h.all = append(h.all, sh)
		h.sessions <- sh
	}
	if err := h.Reload(); err != nil {
		return fail(err)
	}
	return h, nil
}

func (h *hsmKEKs) Name() string { return SourcePKCS11 }

// Close closes the source's sessions, and unloads the module when no other
// source of this process uses it.
func (h *hsmKEKs) Close() error {
	for _, sh := range h.all {
		h.p.CloseSession(sh)
	}
	h.all = nil
	unloadModule(h.module)
	return nil
}

// A PKCS#11 module is initialised once per process: sources on the same
// module share it (and its sign-in to a token).
var modules = struct {
	sync.Mutex
	m map[string]*loadedModule
}{m: map[string]*loadedModule{}}

type loadedModule struct {
	p    *pkcs11.Ctx
	refs int
}

func loadModule(path string) (*pkcs11.Ctx, error) {
	modules.Lock()
	defer modules.Unlock()
	if lm := modules.m[path]; lm != nil {
		lm.refs++
		return lm.p, nil
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("keys: cannot load the PKCS#11 module %s", path)
	}
	if err := p.Initialize(); err != nil {
		p.Destroy()
		return nil, fmt.Errorf("keys: PKCS#11 module %s: %w", path, err)
	}
	modules.m[path] = &loadedModule{p: p, refs: 1}
	return p, nil
}

func unloadModule(path string) {
	modules.Lock()
	defer modules.Unlock()
	lm := modules.m[path]
	if lm == nil {
		return
	}
	if lm.refs--; lm.refs == 0 {
		lm.p.Finalize()
		lm.p.Destroy()
		delete(modules.m, path)
	}
}

func (h *hsmKEKs) session() pkcs11.SessionHandle   { return <-h.sessions }
func (h *hsmKEKs) release(sh pkcs11.SessionHandle) { h.sessions <- sh }

func (h *hsmKEKs) Versions() []uint32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var vs []uint32
	for v := range h.keys {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// Reload lists the token's secret keys labelled medguard-kek-vN.
func (h *hsmKEKs) Reload() error {
	sh := h.session()
	defer h.release(sh)
	if err := h.p.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)}); err != nil {
		return fmt.Errorf("keys: PKCS#11 find: %w", err)
	}
	var objs []pkcs11.ObjectHandle
	for {
		batch, _, err := h.p.FindObjects(sh, 64)
		if err != nil {
			h.p.FindObjectsFinal(sh)
			return fmt.Errorf("keys: PKCS#11 find: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		objs = append(objs, batch...)
	}
	h.p.FindObjectsFinal(sh)
	keys := map[uint32]pkcs11.ObjectHandle{}
	for _, o := range objs {
		attrs, err := h.p.GetAttributeValue(sh, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
		if err != nil || len(attrs) == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(string(attrs[0].Value), "medguard-kek-v")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(rest, 10, 32); err == nil && v > 0 {
			keys[uint32(v)] = o
		}
	}
	h.mu.Lock()
	h.keys = keys
	h.mu.Unlock()
	return nil
}

// NewVersion generates the next KEK inside the token: AES-256, sensitive,
// never extractable, usable only to encrypt and decrypt.
func (h *hsmKEKs) NewVersion(after uint32, _ time.Time) (uint32, error) {
	if err := h.Reload(); err != nil {
		return 0, err
	}
	v := after
	for _, have := range h.Versions() {
		v = max(v, have)
	}
	v++
	sh := h.session()
	defer h.release(sh)
	label := PKCS11Label(v)
	o, err := h.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
	})
	if err != nil {
		return 0, fmt.Errorf("keys: generating %s in the HSM: %w", label, err)
	}
	h.mu.Lock()
	h.keys[v] = o
	h.mu.Unlock()
	return v, nil
}

func (h *hsmKEKs) Wrapper(version uint32) (Wrapper, error) {
	h.mu.Lock()
	o, ok := h.keys[version]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: version %d (no key labelled %s on the token)", ErrUnknownKEK, version, PKCS11Label(version))
	}
	return &hsmWrapper{h: h, version: version, key: o}, nil
}

// hsmWrapper wraps data keys with AES-256-GCM inside the token. The wrapped
// form has this package's ciphertext layout (algorithm AES-256-GCM, the
// KEK version, the nonce), with the same associated data as any sealed
// value, so it is bound to the data key's owner and version.
type hsmWrapper struct {
	h       *hsmKEKs
	version uint32
	key     pkcs11.ObjectHandle
}

func (w *hsmWrapper) Wrap(loc Location, raw []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, Overhead+len(raw))
	out[0], out[1] = formatV1, byte(AES256GCM)
	binary.BigEndian.PutUint32(out[2:6], w.version)
	if _, err := rand.Read(out[headerSize:]); err != nil {
		return nil, err
	}
	ad := loc.appendAD(make([]byte, 0, loc.adSize()), out[:headerSize])
	params := pkcs11.NewGCMParams(out[headerSize:headerSize+nonceSize], ad, 128)
	defer params.Free()
	sh := w.h.session()
	defer w.h.release(sh)
	if err := w.h.p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, w.key); err != nil {
		return nil, fmt.Errorf("keys: HSM wrap: %w", err)
	}
	ct, err := w.h.p.Encrypt(sh, raw)
	if err != nil {
		return nil, fmt.Errorf("keys: HSM wrap: %w", err)
	}
	if len(ct) != len(raw)+16 {
		return nil, errors.New("keys: HSM wrap: unexpected ciphertext length")
	}
	return append(out, ct...), nil
}

func (w *hsmWrapper) Unwrap(loc Location, wrapped []byte) ([]byte, error) {
	alg, version, err := Header(wrapped)
	if err != nil {
		return nil, err
	}
	if alg != AES256GCM || version != w.version {
		return nil, ErrDecrypt
	}
	ad := loc.appendAD(make([]byte, 0, loc.adSize()), wrapped[:headerSize])
	params := pkcs11.NewGCMParams(slices.Clone(wrapped[headerSize:headerSize+nonceSize]), ad, 128)
	defer params.Free()
	sh := w.h.session()
	defer w.h.release(sh)
	if err := w.h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, w.key); err != nil {
		return nil, fmt.Errorf("keys: HSM unwrap: %w", err)
	}
	raw, err := w.h.p.Decrypt(sh, wrapped[headerSize+nonceSize:])
	if err != nil {
		return nil, ErrDecrypt
	}
	return raw, nil
}
