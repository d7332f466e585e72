package keys

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"medguard"
	"medguard/internal/storage"
)

// IndexKey is one version of the blind-index key: 32 bytes of HMAC-SM3 key.
type IndexKey struct {
	Version   uint32    `json:"version"`
	Secret    []byte    `json:"secret"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// IndexKeyVersions returns the key file's index key versions, oldest first:
// the legacy index_key is version 1.
func (kf *KeyFile) IndexKeyVersions() []IndexKey {
	var out []IndexKey
	if len(kf.IndexKey) > 0 {
		out = append(out, IndexKey{Version: 1, Secret: kf.IndexKey})
	}
	out = append(out, kf.IndexKeys...)
	slices.SortFunc(out, func(a, b IndexKey) int { return int(a.Version) - int(b.Version) })
	return out
}

func (kf *KeyFile) checkIndexKeys() error {
	if len(kf.IndexKey) != 0 && len(kf.IndexKey) != 32 {
		return errors.New("keys: key file index_key must be 32 bytes")
	}
	vs := kf.IndexKeyVersions()
	if len(vs) == 0 {
		return errors.New("keys: key file has no index key (index_key or index_keys)")
	}
	seen := map[uint32]bool{}
	for _, k := range vs {
		if k.Version == 0 || seen[k.Version] || len(k.Secret) != 32 {
			return fmt.Errorf("keys: key file index key version %d is invalid or repeated", k.Version)
		}
		seen[k.Version] = true
	}
	return nil
}

// withoutIndexKey removes index key version v from the key file.
func (kf *KeyFile) withoutIndexKey(v uint32) {
	if v == 1 {
		kf.IndexKey = nil
	}
	kf.IndexKeys = slices.DeleteFunc(kf.IndexKeys, func(k IndexKey) bool { return k.Version == v })
}

// The states of an index key version in index_key_versions.
const (
	// IndexKeyActive indexes every value written; exactly one version is
	// active.
	IndexKeyActive = "active"
	// IndexKeyRetiring still indexes rows a re-index has not reached;
	// lookups query it as well as the active version.
	IndexKeyRetiring = "retiring"
	// IndexKeyRetired indexes nothing; its secret is deleted from the key
	// file (an index key only serves lookups, so no backup needs it: a
	// restored database is re-indexed, see docs/keys.md).
	IndexKeyRetired = "retired"
)

// IndexKeyName is how an index key version is named in the audit log
// ("index-key-v2").
func IndexKeyName(v uint32) string { return "index-key-v" + strconv.FormatUint(uint64(v), 10) }

// indexKeys are the index key versions a keyring holds in memory, and the
// key file it reads again when the database names a version it lacks (a
// rotation run by another process).
type indexKeys struct {
	mu        sync.Mutex
	path      string
	byVersion map[uint32]*BlindIndex
	reindexed atomic.Int64
}

func newIndexKeys(kf *KeyFile) *indexKeys {
	ik := &indexKeys{byVersion: map[uint32]*BlindIndex{}}
	for _, k := range kf.IndexKeyVersions() {
		ik.byVersion[k.Version] = newBlindIndex(k)
	}
	return ik
}

// UseKeyFile tells the keyring where its key file lives, so that it can
// read index key versions another process added ("" for a key file from
// MEDGUARD_KEYS, which no rotation can change).
func (kr *Keyring) UseKeyFile(path string) {
	kr.indexes.mu.Lock()
	kr.indexes.path = path
	kr.indexes.mu.Unlock()
}

// indexAt returns the blind index of version v, reading the key file again
// once if it is not held.
func (kr *Keyring) indexAt(v uint32) (*BlindIndex, error) {
	ik := kr.indexes
	ik.mu.Lock()
	defer ik.mu.Unlock()
	if b, ok := ik.byVersion[v]; ok {
		return b, nil
	}
	if ik.path != "" {
		kf, err := LoadKeyFile(ik.path)
		if err != nil {
			return nil, fmt.Errorf("keys: reading the key file again for index key version %d: %w", v, err)
		}
		for _, k := range kf.IndexKeyVersions() {
			if _, ok := ik.byVersion[k.Version]; !ok {
				ik.byVersion[k.Version] = newBlindIndex(k)
			}
		}
		if b, ok := ik.byVersion[v]; ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("keys: the database's blind indexes need index key version %d, which the key file lacks "+
		"(wrong or outdated key file?)", v)
}

// newestIndex is the newest index key version held in memory: the one to
// use before index_key_versions says anything (a database not yet checked).
func (kr *Keyring) newestIndex() *BlindIndex {
	ik := kr.indexes
	ik.mu.Lock()
	defer ik.mu.Unlock()
	var best *BlindIndex
	for _, b := range ik.byVersion {
		if best == nil || b.version > best.version {
			best = b
		}
	}
	return best
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// liveIndexVersions are the index key versions not retired, newest first.
func liveIndexVersions(ctx context.Context, q querier) ([]uint32, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM index_key_versions WHERE state <> 'retired' ORDER BY version DESC`)
	if err != nil {
		return nil, fmt.Errorf("keys: index key versions: %w", err)
	}
	defer rows.Close()
	var vs []uint32
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, uint32(v))
	}
	return vs, rows.Err()
}

// IndexForWrite returns the blind index new values are indexed under: the
// version index_key_versions names active in tx. On PostgreSQL the row is
// read FOR SHARE, so that a rotation's switch waits for the rows being
// written under the old version, which its re-index then reaches; on
// SQLite write transactions exclude each other anyway.
func (kr *Keyring) IndexForWrite(ctx context.Context, tx *sql.Tx) (*BlindIndex, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM index_key_versions WHERE state = 'active'`+kr.db.ForShare()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return kr.newestIndex(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: active index key: %w", err)
	}
	return kr.indexAt(uint32(v))
}

// IndexLookup returns the index of value in field under every index key
// version a row may still be indexed under — the active one and, while a
// re-index runs, the retiring ones — so that a lookup matching any of them
// misses no row mid-rotation. Indexes under different keys do not collide
// (HMAC-SM3, 256 bits), so a lookup need not say which version it matches.
// q is the database, or the transaction the lookup belongs to.
func (kr *Keyring) IndexLookup(ctx context.Context, q querier, field, value string) ([][]byte, error) {
	vs, err := liveIndexVersions(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return [][]byte{kr.newestIndex().Of(field, value)}, nil
	}
	out := make([][]byte, 0, len(vs))
	for _, v := range vs {
		b, err := kr.indexAt(v)
		if err != nil {
			return nil, err
		}
		out = append(out, b.Of(field, value))
	}
	return out, nil
}

// checkIndexKeys records the key file's newest index key version as active
// when index_key_versions is empty (an installation from before index key
// versions: every row is indexed under version 1), and checks that the key
// file holds every version the database still indexes under.
func (kr *Keyring) checkIndexKeys(ctx context.Context) error {
	var n int64
	if err := kr.db.QueryRowContext(ctx, `SELECT count(*) FROM index_key_versions`).Scan(&n); err != nil {
		return fmt.Errorf("keys: index key versions: %w", err)
	}
	if n == 0 {
		_, err := kr.db.ExecContext(ctx, `INSERT INTO index_key_versions (version, state, created_at) VALUES ($1, $2, $3)`,
			int64(kr.newestIndex().version), IndexKeyActive, medguard.Millis(kr.clock.Now()))
		if err != nil && !storage.IsConflict(err) {
			return fmt.Errorf("keys: index key versions: %w", err)
		}
	}
	vs, err := liveIndexVersions(ctx, kr.db)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if _, err := kr.indexAt(v); err != nil {
			return err
		}
	}
	return nil
}

// IndexedTable is a table whose rows carry blind indexes, each row under
// one index key version: the records package's patients. A re-index goes
// through it, so that the rows are read and decrypted by their owner's own
// code.
type IndexedTable interface {
	// IndexCounts returns how many rows are indexed under each version.
	IndexCounts(ctx context.Context) (map[uint32]int64, error)
	// IndexedUnder returns how many rows are indexed under version v.
	IndexedUnder(ctx context.Context, v uint32) (int64, error)
	// Reindex re-indexes up to n rows indexed under from's version with
	// to, and returns how many it moved (0: none is left).
	Reindex(ctx context.Context, from, to *BlindIndex, n int) (int, error)
}

// ErrIndexRotationRunning is returned when an index key rotation is asked
// for while the previous one still has rows to re-index.
var ErrIndexRotationRunning = &medguard.Error{Kind: medguard.Conflict, Code: "index_rotation_running",
	Message: "a blind-index key rotation is still re-indexing; run it to the end (medguard keys rotate-index-key)"}

// IndexRotating reports whether a retiring index key version exists (a
// re-index runs, or only its retirement is left).
func (kr *Keyring) IndexRotating(ctx context.Context) (bool, error) {
	var n int64
	err := kr.db.QueryRowContext(ctx, `SELECT count(*) FROM index_key_versions WHERE state = 'retiring'`).Scan(&n)
	return n > 0, err
}

// NewIndexKeyVersion adds a new version of the blind-index key to the key
// file (atomic replace, fsync) and returns it with the mutation that makes
// it active — to be committed with the audit entry of the rotation. From
// that commit on every write indexes under the new version, lookups query
// both, and ReindexBatch moves the rows indexed under the old one. A
// version added here whose mutation never commits stays unused in the key
// file (the next rotation skips its number).
func (kr *Keyring) NewIndexKeyVersion(ctx context.Context) (uint32, func(context.Context, *sql.Tx) error, error) {
	if rot, err := kr.IndexRotating(ctx); err != nil || rot {
		return 0, nil, cmpErr(err, ErrIndexRotationRunning)
	}
	kr.indexes.mu.Lock()
	path := kr.indexes.path
	kr.indexes.mu.Unlock()
	if path == "" {
		return 0, nil, errors.New("keys: the key file comes from MEDGUARD_KEYS, which medguard cannot change: " +
			"rotate the blind-index key with a key file on disk (--key-file)")
	}
	var top sql.NullInt64
	if err := kr.db.QueryRowContext(ctx, `SELECT max(version) FROM index_key_versions`).Scan(&top); err != nil {
		return 0, nil, err
	}
	kf, err := LoadKeyFile(path)
	if err != nil {
		return 0, nil, err
	}
	v := uint32(top.Int64)
	for _, k := range kf.IndexKeyVersions() {
		v = max(v, k.Version)
	}
	v++
	kf.IndexKeys = append(kf.IndexKeys, IndexKey{Version: v, Secret: randomBytes(32), CreatedAt: kr.clock.Now().UTC()})
	if err := ReplaceKeyFile(path, kf); err != nil {
		return 0, nil, fmt.Errorf("keys: adding an index key version: %w", err)
	}
	if _, err := kr.indexAt(v); err != nil {
		return 0, nil, err
	}
	return v, func(ctx context.Context, tx *sql.Tx) error {
		var retiring int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM index_key_versions WHERE state = 'retiring'`).Scan(&retiring); err != nil {
			return err
		}
		if retiring > 0 {
			return ErrIndexRotationRunning
		}
		if _, err := tx.ExecContext(ctx, `UPDATE index_key_versions SET state = 'retiring' WHERE state = 'active'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO index_key_versions (version, state, created_at) VALUES ($1, $2, $3)`,
			int64(v), IndexKeyActive, medguard.Millis(kr.clock.Now()))
		return err
	}, nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// indexVersions returns the active index key version and the retiring ones.
func (kr *Keyring) indexVersions(ctx context.Context) (active uint32, retiring []uint32, err error) {
	rows, err := kr.db.QueryContext(ctx, `SELECT version, state FROM index_key_versions WHERE state <> 'retired' ORDER BY version`)
	if err != nil {
		return 0, nil, fmt.Errorf("keys: index key versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		var state string
		if err := rows.Scan(&v, &state); err != nil {
			return 0, nil, err
		}
		if state == IndexKeyActive {
			active = uint32(v)
		} else {
			retiring = append(retiring, uint32(v))
		}
	}
	return active, retiring, rows.Err()
}

// ReindexBatchSize is how many rows one re-index transaction moves by
// default.
const ReindexBatchSize = 1000

// ReindexBatch re-indexes up to n rows of t still indexed under a retiring
// index key version, under the active one, and returns how many it moved
// (0 when none is left). Rows are updated only if still indexed under the
// version and unchanged since they were read, so a write meanwhile (which
// indexes under the active version itself), a second process re-indexing
// at once, or a crash (which loses the batch in flight) are harmless.
func (kr *Keyring) ReindexBatch(ctx context.Context, t IndexedTable, n int) (int, error) {
	if n <= 0 {
		n = ReindexBatchSize
	}
	active, retiring, err := kr.indexVersions(ctx)
	if err != nil || active == 0 {
		return 0, err
	}
	to, err := kr.indexAt(active)
	if err != nil {
		return 0, err
	}
	for _, v := range retiring {
		from, err := kr.indexAt(v)
		if err != nil {
			return 0, err
		}
		moved, err := t.Reindex(ctx, from, to, n)
		if err != nil {
			return 0, fmt.Errorf("keys: re-index: %w", err)
		}
		if moved > 0 {
			kr.indexes.reindexed.Add(int64(moved))
			return moved, nil
		}
	}
	return 0, nil
}

// IndexRemaining returns how many rows of t are still indexed under a
// retiring index key version (0 when no rotation runs, without counting).
func (kr *Keyring) IndexRemaining(ctx context.Context, t IndexedTable) (int64, error) {
	_, retiring, err := kr.indexVersions(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, v := range retiring {
		n, err := t.IndexedUnder(ctx, v)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// ReindexedHere counts the rows this process re-indexed.
func (kr *Keyring) ReindexedHere() int64 { return kr.indexes.reindexed.Load() }

// RetirableIndexKeys returns the retiring index key versions that no row
// of t is indexed under any more.
func (kr *Keyring) RetirableIndexKeys(ctx context.Context, t IndexedTable) ([]uint32, error) {
	_, retiring, err := kr.indexVersions(ctx)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, v := range retiring {
		n, err := t.IndexedUnder(ctx, v)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			out = append(out, v)
		}
	}
	return out, nil
}

// ErrIndexKeyNotRetiring is returned when a version to retire is not
// retiring (another process retired it).
var ErrIndexKeyNotRetiring = &medguard.Error{Kind: medguard.Conflict, Message: "the index key version is not retiring"}

// RetireIndexKey returns the mutation that marks a retiring index key
// version retired, in the transaction that records it. The caller checks
// first that no row is indexed under it (RetirableIndexKeys): no write can
// index under a retiring version, so none appears after. DeleteRetiredIndexKeys
// then removes its secret from the key file.
func (kr *Keyring) RetireIndexKey(v uint32) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE index_key_versions SET state = 'retired', retired_at = $1
			WHERE version = $2 AND state = 'retiring'`, medguard.Millis(kr.clock.Now()), int64(v))
		return storage.Affected(res, err, ErrIndexKeyNotRetiring)
	}
}

// DeleteRetiredIndexKeys removes from the key file the secret of every
// index key version the database records as retired, and returns the
// versions it removed (none when the file holds no retired version, or the
// key file is not on disk). A crash between the retirement and the
// deletion is repaired by the next call.
func (kr *Keyring) DeleteRetiredIndexKeys(ctx context.Context) ([]uint32, error) {
	kr.indexes.mu.Lock()
	path := kr.indexes.path
	kr.indexes.mu.Unlock()
	if path == "" {
		return nil, nil
	}
	rows, err := kr.db.QueryContext(ctx, `SELECT version FROM index_key_versions WHERE state = 'retired'`)
	if err != nil {
		return nil, err
	}
	retired := map[uint32]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		retired[uint32(v)] = true
	}
	rows.Close()
	if len(retired) == 0 {
		return nil, nil
	}
	kf, err := LoadKeyFile(path)
	if err != nil {
		return nil, err
	}
	var gone []uint32
	for _, k := range kf.IndexKeyVersions() {
		if retired[k.Version] {
			gone = append(gone, k.Version)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	if len(gone) == len(kf.IndexKeyVersions()) {
		return nil, errors.New("keys: refusing to delete the key file's last index key version")
	}
	for _, v := range gone {
		kf.withoutIndexKey(v)
	}
	if err := ReplaceKeyFile(path, kf); err != nil {
		return nil, fmt.Errorf("keys: deleting retired index key versions: %w", err)
	}
	kr.indexes.mu.Lock()
	for _, v := range gone {
		delete(kr.indexes.byVersion, v)
	}
	kr.indexes.mu.Unlock()
	return gone, nil
}

// IndexKeyVersion is one index key version as "keys status" shows it.
type IndexKeyVersion struct {
	Version uint32 `json:"version"`
	State   string `json:"state"`
	// Rows is how many rows are indexed under it.
	Rows      int64      `json:"rows"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	// InKeyFile says whether this process's key file holds it (a retired
	// version's secret is deleted).
	InKeyFile bool `json:"in_key_file"`
}

// IndexKeyStatus is the state of the blind-index key and of a re-index.
type IndexKeyStatus struct {
	Active   uint32            `json:"active_version"`
	Versions []IndexKeyVersion `json:"versions"`
	// Rows is the number of indexed rows; Remaining how many of them a
	// re-index has still to move to the active version.
	Rows      int64 `json:"rows"`
	Remaining int64 `json:"remaining"`
	// Rotating is true while a retiring version exists.
	Rotating bool `json:"rotating"`
	// ReindexedHere counts the rows this process re-indexed.
	ReindexedHere int64 `json:"reindexed_here"`
}

// IndexStatus returns the index key versions, how many rows of t each
// indexes, and how far a re-index is.
func (kr *Keyring) IndexStatus(ctx context.Context, t IndexedTable) (*IndexKeyStatus, error) {
	counts, err := t.IndexCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: index status: %w", err)
	}
	st := &IndexKeyStatus{Versions: []IndexKeyVersion{}, ReindexedHere: kr.ReindexedHere()}
	rows, err := kr.db.QueryContext(ctx, `SELECT version, state, created_at, retired_at FROM index_key_versions ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("keys: index status: %w", err)
	}
	defer rows.Close()
	kr.indexes.mu.Lock()
	held := map[uint32]bool{}
	for v := range kr.indexes.byVersion {
		held[v] = true
	}
	kr.indexes.mu.Unlock()
	for rows.Next() {
		var v, created int64
		var retired sql.NullInt64
		var k IndexKeyVersion
		if err := rows.Scan(&v, &k.State, &created, &retired); err != nil {
			return nil, err
		}
		k.Version, k.CreatedAt = uint32(v), medguard.FromMillis(created)
		if retired.Valid {
			t := medguard.FromMillis(retired.Int64)
			k.RetiredAt = &t
		}
		k.Rows, k.InKeyFile = counts[k.Version], held[k.Version]
		st.Rows += k.Rows
		switch k.State {
		case IndexKeyActive:
			st.Active = k.Version
		case IndexKeyRetiring:
			st.Remaining += k.Rows
			st.Rotating = true
		}
		st.Versions = append(st.Versions, k)
	}
	return st, rows.Err()
}

// ActiveIndexVersion returns the active index key version as
// index_key_versions records it (0 before it records any).
func (kr *Keyring) ActiveIndexVersion(ctx context.Context) (uint32, error) {
	active, _, err := kr.indexVersions(ctx)
	return active, err
}
