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
// such as the TOTP seeds), wrapped by the key file's KEKs in the data_keys
// table, and keeps recently used ones unwrapped in a bounded cache.
type Keyring struct {
	db    *storage.DB
	file  *KeyFile
	index *BlindIndex
	clock medguard.Clock

	mu       sync.Mutex
	cache    *lru
	wrappers map[wrapperKey]*sealer
}

type wrapperKey struct {
	kekVersion uint32
	alg        Algorithm
}

// wrapper returns the (cached) sealer wrapping data keys under the given KEK
// version and algorithm.
func (kr *Keyring) wrapper(kekVersion uint32, alg Algorithm) (*sealer, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if w, ok := kr.wrappers[wrapperKey{kekVersion, alg}]; ok {
		return w, nil
	}
	kek, ok := kr.file.KEKVersion(kekVersion)
	if !ok {
		return nil, fmt.Errorf("keys: a data key needs KEK version %d, which the key file lacks", kekVersion)
	}
	w, err := kek.wrapper(alg)
	if err != nil {
		return nil, err
	}
	if kr.wrappers == nil {
		kr.wrappers = map[wrapperKey]*sealer{}
	}
	kr.wrappers[wrapperKey{kekVersion, alg}] = w
	return w, nil
}

// CacheSize is the number of owners whose unwrapped data keys are kept.
const CacheSize = 20000

// NewKeyring returns a keyring over db's data_keys table and the key file kf.
func NewKeyring(db *storage.DB, kf *KeyFile, clock medguard.Clock) *Keyring {
	return &Keyring{db: db, file: kf, index: NewBlindIndex(kf), clock: clock, cache: newLRU(CacheSize)}
}

// Index returns the blind index.
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
}

// Seal encrypts plaintext for the given location.
func (k *DataKey) Seal(loc Location, plaintext []byte) []byte { return k.s.seal(loc, plaintext) }

// SealString encrypts a string for the given location.
func (k *DataKey) SealString(loc Location, plaintext string) []byte {
	return k.s.seal(loc, []byte(plaintext))
}

// Algorithm returns the key's algorithm.
func (k *DataKey) Algorithm() Algorithm { return k.s.alg }

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
	kek := kr.file.ActiveKEK()
	w, err := kr.wrapper(kek.Version, alg)
	if err != nil {
		return nil, err
	}
	return &DataKey{Owner: owner, Version: version, s: s, kekVersion: kek.Version,
		wrapped: w.seal(wrapLocation(owner, version), raw)}, nil
}

// wrapLocation binds a wrapped data key to its owner and version.
func wrapLocation(owner string, version uint32) Location {
	return Location{Table: "data_keys", Row: owner, Column: strconv.FormatUint(uint64(version), 10)}
}

// Save stores a new data key in tx and remembers it.
func (kr *Keyring) Save(ctx context.Context, tx *sql.Tx, k *DataKey) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO data_keys (owner, version, algorithm, kek_version, wrapped, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.Owner, k.Version, k.s.alg.String(), k.kekVersion, k.wrapped,
		medguard.Millis(kr.clock.Now()))
	if err != nil {
		return err
	}
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
	wrapAlg, _, err := Header(wrapped)
	if err != nil {
		return nil, err
	}
	w, err := kr.wrapper(kekVersion, wrapAlg)
	if err != nil {
		return nil, err
	}
	raw, err := w.open(wrapLocation(owner, version), wrapped)
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

// Check unwraps one stored data key, to find out at start-up — not at the
// first read — that the key file does not belong to this database.
func (kr *Keyring) Check(ctx context.Context) error {
	var owner string
	var version int64
	err := kr.db.QueryRowContext(ctx, `SELECT owner, version FROM data_keys WHERE wrapped IS NOT NULL LIMIT 1`).Scan(&owner, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys: check: %w", err)
	}
	if _, err := kr.load(ctx, owner, uint32(version)); err != nil {
		return fmt.Errorf("keys: the key file does not open this database's data keys: %w", err)
	}
	kr.Forget(owner)
	return nil
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
