package keys

import (
	"container/list"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"medguard"
	"medguard/internal/storage"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the keys package's tables.
func Schema() storage.Schema {
	return storage.NewSchema("keys", migrations, "migrations")
}

// Keyring holds the data keys of every owner (a patient, or a system secret
// such as the TOTP seeds), wrapped by the KEKs of its KEK source in the
// data_keys table, and keeps recently used ones unwrapped in a bounded cache.
type Keyring struct {
	db    *storage.DB
	file  *KeyFile
	keks  KEKSource
	index *BlindIndex
	// indexes are the index key versions (indexrotate.go).
	indexes *indexKeys
	clock   medguard.Clock

	mu       sync.Mutex
	cache    *lru
	wrappers map[uint32]Wrapper
	// active is the KEK version new data keys are wrapped under, as last
	// read from kek_versions (0: not read yet, use the source's newest).
	active atomic.Uint32
	// rewrapped counts the data keys this process rewrapped.
	rewrapped atomic.Int64
}

// wrapper returns the (cached) wrapper of a KEK version, reading the source
// again once if it does not hold the version: another process may have
// made it (a rotation run elsewhere).
func (kr *Keyring) wrapper(kekVersion uint32) (Wrapper, error) {
	kr.mu.Lock()
	w, ok := kr.wrappers[kekVersion]
	kr.mu.Unlock()
	if ok {
		return w, nil
	}
	w, err := kr.keks.Wrapper(kekVersion)
	if errors.Is(err, ErrUnknownKEK) {
		if rerr := kr.keks.Reload(); rerr != nil {
			return nil, fmt.Errorf("keys: reading the KEK source again: %w", rerr)
		}
		w, err = kr.keks.Wrapper(kekVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: a data key needs KEK version %d, which the KEK source (%s) lacks: %w", kekVersion, kr.keks.Name(), err)
	}
	kr.mu.Lock()
	if kr.wrappers == nil {
		kr.wrappers = map[uint32]Wrapper{}
	}
	kr.wrappers[kekVersion] = w
	kr.mu.Unlock()
	return w, nil
}

// CacheSize is the number of owners whose unwrapped data keys are kept.
const CacheSize = 20000

// NewKeyring returns a keyring over db's data_keys table and the key file
// kf, whose KEKs it uses (an in-memory key file: a rotation cannot add a
// version to it; see NewKeyringFrom).
func NewKeyring(db *storage.DB, kf *KeyFile, clock medguard.Clock) *Keyring {
	return NewKeyringFrom(db, kf, FileKEKs(kf, ""), clock)
}

// NewKeyringFrom returns a keyring over db's data_keys table whose KEKs
// come from src; kf supplies the cipher and the blind index key.
func NewKeyringFrom(db *storage.DB, kf *KeyFile, src KEKSource, clock medguard.Clock) *Keyring {
	return &Keyring{db: db, file: kf, keks: src, index: NewBlindIndex(kf), indexes: newIndexKeys(kf),
		clock: clock, cache: newLRU(CacheSize)}
}

// KEKs returns the keyring's KEK source.
func (kr *Keyring) KEKs() KEKSource { return kr.keks }

// Index returns the blind index under the key file's newest index key
// version as this process loaded it. Records index and look up through
// IndexForWrite and IndexLookup instead, which follow a rotation.
func (kr *Keyring) Index() *BlindIndex { return kr.index }

// Algorithm returns the cipher used for new data keys.
func (kr *Keyring) Algorithm() Algorithm { return kr.file.Algorithm() }

// DataKey is one version of an owner's data key, unwrapped and ready to seal.
type DataKey struct {
	Owner      string
	Version    uint32
	s          *sealer
	wrapped    []byte
	kekVersion uint32
	raw        []byte // kept only until a new key is saved, to rewrap it if the active KEK changed
}

// Seal encrypts plaintext for the given location.
func (k *DataKey) Seal(loc Location, plaintext []byte) []byte { return k.s.seal(loc, plaintext) }

// SealString encrypts a string for the given location.
func (k *DataKey) SealString(loc Location, plaintext string) []byte {
	return k.s.seal(loc, []byte(plaintext))
}

// Algorithm returns the key's algorithm.
func (k *DataKey) Algorithm() Algorithm { return k.s.alg }

// Wrapped returns the key as stored: wrapped under KEK version KEKVersion.
func (k *DataKey) Wrapped() []byte { return k.wrapped }

// KEKVersion returns the version of the KEK the key is wrapped under.
func (k *DataKey) KEKVersion() uint32 { return k.kekVersion }

// NewDataKey makes a fresh data key (version 1) for a new owner. It is not
// stored until Save is called inside the transaction that stores the first
// data it seals, so that a key and its data exist together or not at all.
func (kr *Keyring) NewDataKey(owner string) (*DataKey, error) {
	return kr.newVersion(owner, 1)
}

func (kr *Keyring) newVersion(owner string, version uint32) (*DataKey, error) {
	alg := kr.file.Algorithm()
	raw := randomBytes(alg.KeySize())
	s, err := newSealer(alg, version, raw)
	if err != nil {
		return nil, err
	}
	kek := kr.activeVersion()
	w, err := kr.wrapper(kek)
	if err != nil {
		return nil, err
	}
	wrapped, err := w.Wrap(wrapLocation(owner, version), raw)
	if err != nil {
		return nil, err
	}
	return &DataKey{Owner: owner, Version: version, s: s, kekVersion: kek, wrapped: wrapped, raw: raw}, nil
}

// activeVersion is the KEK version new data keys are wrapped under: the
// one kek_versions last said, or the source's newest before that is known.
func (kr *Keyring) activeVersion() uint32 {
	if v := kr.active.Load(); v != 0 {
		return v
	}
	vs := kr.keks.Versions()
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// wrapLocation binds a wrapped data key to its owner and version.
func wrapLocation(owner string, version uint32) Location {
	return Location{Table: "data_keys", Row: owner, Column: strconv.FormatUint(uint64(version), 10)}
}

// Save stores a new data key in tx and remembers it. The key is wrapped
// under the KEK version kek_versions names active in tx — rewrapped now if
// a rotation made another version active since it was made — so that no
// key saved after a rotation began is left under the old version. On
// PostgreSQL the active row is read FOR SHARE: a rotation's switch waits
// for the keys being saved under the old version, which it then rewraps.
// One statement when the key's version is the active one (one round trip
// inside the audit commit's transaction, which a new record's key is
// saved in).
func (kr *Keyring) Save(ctx context.Context, tx *sql.Tx, k *DataKey) error {
	const insert = `INSERT INTO data_keys (owner, version, algorithm, kek_version, wrapped, created_at) `
	row := func() []any {
		return []any{k.Owner, k.Version, k.s.alg.String(), k.kekVersion, k.wrapped, medguard.Millis(kr.clock.Now())}
	}
	// Most often the key was made under the active version: it is stored
	// by one statement that locks that row as the read below would, and
	// stores nothing if the version is no longer (or not yet) active.
	res, err := tx.ExecContext(ctx, insert+`SELECT $1, $2, $3, $4, $5, $6
		WHERE EXISTS (SELECT 1 FROM kek_versions WHERE version = $4 AND state = 'active'`+kr.db.ForShare()+`)`, row()...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		var active int64
		err = tx.QueryRowContext(ctx, `SELECT version FROM kek_versions WHERE state = 'active'`+kr.db.ForShare()).Scan(&active)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case uint32(active) != k.kekVersion:
			if k.raw == nil {
				return errors.New("keys: a data key made under a retired KEK cannot be saved")
			}
			w, err := kr.wrapper(uint32(active))
			if err != nil {
				return err
			}
			if k.wrapped, err = w.Wrap(wrapLocation(k.Owner, k.Version), k.raw); err != nil {
				return err
			}
			k.kekVersion = uint32(active)
			kr.active.Store(uint32(active))
		}
		if _, err := tx.ExecContext(ctx, insert+`VALUES ($1, $2, $3, $4, $5, $6)`, row()...); err != nil {
			return err
		}
	}
	k.raw = nil
	kr.remember(k)
	return nil
}

func (kr *Keyring) remember(k *DataKey) {
	kr.mu.Lock()
	kr.cache.put(k)
	kr.mu.Unlock()
}

// ErrNoKey is returned when an owner has no data key, or it was destroyed.
var ErrNoKey = &medguard.Error{Kind: medguard.NotFound, Message: "no data key"}

// Current returns the owner's newest data key.
func (kr *Keyring) Current(ctx context.Context, owner string) (*DataKey, error) {
	kr.mu.Lock()
	k := kr.cache.current(owner)
	kr.mu.Unlock()
	if k != nil {
		return k, nil
	}
	return kr.load(ctx, owner, 0)
}

// Version returns the given version of the owner's data key.
func (kr *Keyring) Version(ctx context.Context, owner string, version uint32) (*DataKey, error) {
	kr.mu.Lock()
	k := kr.cache.get(owner, version)
	kr.mu.Unlock()
	if k != nil {
		return k, nil
	}
	return kr.load(ctx, owner, version)
}

// load reads and unwraps a data key; version 0 means the newest.
func (kr *Keyring) load(ctx context.Context, owner string, version uint32) (*DataKey, error) {
	q := `SELECT version, algorithm, kek_version, wrapped FROM data_keys WHERE owner = $1 AND version = $2`
	args := []any{owner, version}
	if version == 0 {
		q = `SELECT version, algorithm, kek_version, wrapped FROM data_keys WHERE owner = $1 ORDER BY version DESC LIMIT 1`
		args = args[:1]
	}
	var (
		v, kekVersion int64
		algName       string
		wrapped       []byte
	)
	err := kr.db.QueryRowContext(ctx, q, args...).Scan(&v, &algName, &kekVersion, &wrapped)
	if errors.Is(err, sql.ErrNoRows) || err == nil && wrapped == nil {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("keys: load data key: %w", err)
	}
	k, err := kr.unwrap(owner, uint32(v), algName, uint32(kekVersion), wrapped)
	if err != nil {
		return nil, err
	}
	kr.remember(k)
	return k, nil
}

func (kr *Keyring) unwrap(owner string, version uint32, algName string, kekVersion uint32, wrapped []byte) (*DataKey, error) {
	alg, err := ParseAlgorithm(algName)
	if err != nil {
		return nil, err
	}
	w, err := kr.wrapper(kekVersion)
	if err != nil {
		return nil, err
	}
	raw, err := w.Unwrap(wrapLocation(owner, version), wrapped)
	if err != nil {
		return nil, fmt.Errorf("keys: a data key does not unwrap with KEK version %d (wrong key file?): %w", kekVersion, err)
	}
	s, err := newSealer(alg, version, raw)
	if err != nil {
		return nil, err
	}
	return &DataKey{Owner: owner, Version: version, s: s, wrapped: wrapped, kekVersion: kekVersion}, nil
}

// Open decrypts a ciphertext sealed with one of owner's data keys at loc,
// whichever version it names.
func (kr *Keyring) Open(ctx context.Context, owner string, loc Location, ciphertext []byte) ([]byte, error) {
	_, version, err := Header(ciphertext)
	if err != nil {
		return nil, err
	}
	k, err := kr.Version(ctx, owner, version)
	if err != nil {
		return nil, err
	}
	return k.s.open(loc, ciphertext)
}

// OpenString is Open for text.
func (kr *Keyring) OpenString(ctx context.Context, owner string, loc Location, ciphertext []byte) (string, error) {
	if ciphertext == nil {
		return "", nil
	}
	b, err := kr.Open(ctx, owner, loc, ciphertext)
	return string(b), err
}

// SystemKey returns the data key for one of medguard's own secrets (owner
// "system:"+name), creating it on first use.
func (kr *Keyring) SystemKey(ctx context.Context, name string) (*DataKey, error) {
	owner := "system:" + name
	k, err := kr.Current(ctx, owner)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	k, err = kr.NewDataKey(owner)
	if err != nil {
		return nil, err
	}
	err = kr.db.InTx(ctx, func(tx *sql.Tx) error { return kr.Save(ctx, tx, k) })
	if storage.IsConflict(err) {
		// Another server made it first: use theirs.
		return kr.load(ctx, owner, 0)
	}
	return k, err
}

// lru is a bounded least-recently-used cache of data keys by owner.
type lru struct {
	max   int
	order *list.List // of *cacheEntry, most recent first
	by    map[string]*list.Element
}

type cacheEntry struct {
	owner    string
	versions map[uint32]*DataKey
	newest   uint32
}

func newLRU(max int) *lru { return &lru{max: max, order: list.New(), by: map[string]*list.Element{}} }

func (c *lru) entry(owner string) *cacheEntry {
	if el, ok := c.by[owner]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cacheEntry)
	}
	return nil
}

func (c *lru) current(owner string) *DataKey {
	if e := c.entry(owner); e != nil && e.newest != 0 {
		return e.versions[e.newest]
	}
	return nil
}

func (c *lru) get(owner string, version uint32) *DataKey {
	if e := c.entry(owner); e != nil {
		return e.versions[version]
	}
	return nil
}

// put remembers k. The newest version is only known when k is the highest
// version seen; a cached older version never counts as current unless
// nothing newer has been seen.
func (c *lru) put(k *DataKey) {
	e := c.entry(k.Owner)
	if e == nil {
		e = &cacheEntry{owner: k.Owner, versions: map[uint32]*DataKey{}}
		c.by[k.Owner] = c.order.PushFront(e)
		if c.order.Len() > c.max {
			last := c.order.Back()
			c.order.Remove(last)
			delete(c.by, last.Value.(*cacheEntry).owner)
		}
	}
	e.versions[k.Version] = k
	if k.Version > e.newest {
		e.newest = k.Version
	}
}

// Forget drops an owner's keys from the cache (after rotation or destruction).
func (kr *Keyring) Forget(owner string) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if el, ok := kr.cache.by[owner]; ok {
		kr.cache.order.Remove(el)
		delete(kr.cache.by, owner)
	}
}

// DB returns the database the keyring stores its keys in.
func (kr *Keyring) DB() *storage.DB { return kr.db }

// Shred destroys every version of owner's data key in tx (crypto-shredding):
// the wrapped key is erased and destroyed_at set, so that nothing the key
// sealed opens again from this database. It returns how many versions it
// destroyed now (0 when there were none, or they were destroyed already).
// The cache forgets the owner; callers forget it again after the commit.
func (kr *Keyring) Shred(ctx context.Context, tx *sql.Tx, owner string, now int64) (int, error) {
	res, err := tx.ExecContext(ctx, `UPDATE data_keys SET wrapped = NULL, destroyed_at = $1
		WHERE owner = $2 AND wrapped IS NOT NULL`, now, owner)
	if err != nil {
		return 0, fmt.Errorf("keys: shred: %w", err)
	}
	n, err := res.RowsAffected()
	kr.Forget(owner)
	return int(n), err
}
