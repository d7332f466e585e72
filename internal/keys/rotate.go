package keys

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"medguard"
	"medguard/internal/storage"
)

// The states of a KEK version in kek_versions.
const (
	// KEKActive wraps new data keys; exactly one version is active.
	KEKActive = "active"
	// KEKRetiring still wraps live data keys, which a rewrap moves to the
	// active version.
	KEKRetiring = "retiring"
	// KEKRetired wraps no live data key. Its secret may be destroyed once
	// every backup that needs it has expired (docs/keys.md).
	KEKRetired = "retired"
)

// Check finds out at start-up — not at the first read — whether the KEK
// source belongs to this database: it records the active KEK version if
// none is recorded yet (an installation from before KEK versions), checks
// that the source holds every version that still wraps live data keys, and
// unwraps one stored data key.
func (kr *Keyring) Check(ctx context.Context) error {
	if err := kr.initVersions(ctx); err != nil {
		return err
	}
	if err := kr.checkIndexKeys(ctx); err != nil {
		return err
	}
	used, err := kr.usedVersions(ctx)
	if err != nil {
		return err
	}
	for _, v := range used {
		if _, err := kr.wrapper(v); err != nil {
			return fmt.Errorf("keys: the database's data keys need KEK version %d, which the KEK source (%s) does not hold "+
				"(wrong key file, environment or token?)", v, kr.keks.Name())
		}
	}
	var owner string
	var version int64
	err = kr.db.QueryRowContext(ctx, `SELECT owner, version FROM data_keys WHERE wrapped IS NOT NULL LIMIT 1`).Scan(&owner, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys: check: %w", err)
	}
	if _, err := kr.load(ctx, owner, uint32(version)); err != nil {
		return fmt.Errorf("keys: the KEK source (%s) does not open this database's data keys: %w", kr.keks.Name(), err)
	}
	kr.Forget(owner)
	return nil
}

// initVersions records the active version when kek_versions is empty:
// the highest version a data key uses, or else the source's newest.
func (kr *Keyring) initVersions(ctx context.Context) error {
	var active int64
	err := kr.db.QueryRowContext(ctx, `SELECT version FROM kek_versions WHERE state = 'active'`).Scan(&active)
	if err == nil {
		kr.active.Store(uint32(active))
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("keys: kek versions: %w", err)
	}
	var used sql.NullInt64
	if err := kr.db.QueryRowContext(ctx, `SELECT max(kek_version) FROM data_keys`).Scan(&used); err != nil {
		return fmt.Errorf("keys: kek versions: %w", err)
	}
	v := kr.activeVersion()
	if used.Valid {
		v = uint32(used.Int64)
	}
	if v == 0 {
		return fmt.Errorf("keys: the KEK source (%s) holds no KEK", kr.keks.Name())
	}
	now := medguard.Millis(kr.clock.Now())
	err = kr.db.InTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM kek_versions WHERE state = 'active'`).Scan(&n); err != nil || n > 0 {
			return err
		}
		// Older versions that still wrap keys are retiring.
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT kek_version FROM data_keys WHERE kek_version < $1`, v)
		if err != nil {
			return err
		}
		var older []int64
		for rows.Next() {
			var o int64
			if err := rows.Scan(&o); err != nil {
				rows.Close()
				return err
			}
			older = append(older, o)
		}
		rows.Close()
		for _, o := range older {
			if _, err := tx.ExecContext(ctx, `INSERT INTO kek_versions (version, source, state, created_at) VALUES ($1, $2, $3, $4)`,
				o, kr.keks.Name(), KEKRetiring, now); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO kek_versions (version, source, state, created_at) VALUES ($1, $2, $3, $4)`,
			v, kr.keks.Name(), KEKActive, now)
		return err
	})
	if err != nil && !storage.IsConflict(err) {
		return fmt.Errorf("keys: kek versions: %w", err)
	}
	return kr.initVersionsLoaded(ctx)
}

func (kr *Keyring) initVersionsLoaded(ctx context.Context) error {
	var active int64
	if err := kr.db.QueryRowContext(ctx, `SELECT version FROM kek_versions WHERE state = 'active'`).Scan(&active); err != nil {
		return fmt.Errorf("keys: kek versions: %w", err)
	}
	kr.active.Store(uint32(active))
	return nil
}

// usedVersions are the KEK versions that wrap live data keys.
func (kr *Keyring) usedVersions(ctx context.Context) ([]uint32, error) {
	var vs []uint32
	rows, err := kr.db.QueryContext(ctx, `SELECT version FROM kek_versions WHERE state <> 'retired' ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, uint32(v))
	}
	return vs, rows.Err()
}

// KEKVersion is one KEK version as "keys status" shows it.
type KEKVersion struct {
	Version uint32 `json:"version"`
	Source  string `json:"source"`
	State   string `json:"state"`
	// DataKeys is how many live data keys it wraps.
	DataKeys  int64      `json:"data_keys"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	// InSource says whether the KEK source of this process holds it.
	InSource bool `json:"in_source"`
	// ApprovalID is the four-eyes request that made it active.
	ApprovalID string `json:"approval_id,omitempty"`
}

// KEKStatus is the state of the key-encryption keys and of a rotation.
type KEKStatus struct {
	Source   string       `json:"source"`
	Cipher   string       `json:"cipher"`
	Active   uint32       `json:"active_version"`
	Versions []KEKVersion `json:"versions"`
	// DataKeys is the number of live (not destroyed) data keys; Remaining
	// how many of them a rotation has still to rewrap.
	DataKeys  int64 `json:"data_keys"`
	Remaining int64 `json:"remaining"`
	// Rotating is true while a retiring version still wraps live keys.
	Rotating bool `json:"rotating"`
	// RewrappedHere counts the keys this process rewrapped since it started.
	RewrappedHere int64 `json:"rewrapped_here"`
	// IndexKey is the blind-index key's versions and re-index, when the
	// caller asked (keys status: IndexStatus).
	IndexKey *IndexKeyStatus `json:"index_key,omitempty"`
}

// Status returns the KEK versions, how many live data keys each wraps, and
// how far a rotation is.
func (kr *Keyring) Status(ctx context.Context) (*KEKStatus, error) {
	st := &KEKStatus{Source: kr.keks.Name(), Cipher: kr.file.Algorithm().String(), Versions: []KEKVersion{},
		RewrappedHere: kr.rewrapped.Load()}
	held := map[uint32]bool{}
	for _, v := range kr.keks.Versions() {
		held[v] = true
	}
	counts := map[uint32]int64{}
	rows, err := kr.db.QueryContext(ctx, `SELECT kek_version, count(*) FROM data_keys WHERE wrapped IS NOT NULL GROUP BY kek_version`)
	if err != nil {
		return nil, fmt.Errorf("keys: status: %w", err)
	}
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			rows.Close()
			return nil, err
		}
		counts[uint32(v)] = n
	}
	rows.Close()
	rows, err = kr.db.QueryContext(ctx, `SELECT version, source, state, created_at, retired_at, COALESCE(approval_id, '')
		FROM kek_versions ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("keys: status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v, created int64
		var retired sql.NullInt64
		var k KEKVersion
		if err := rows.Scan(&v, &k.Source, &k.State, &created, &retired, &k.ApprovalID); err != nil {
			return nil, err
		}
		k.Version, k.CreatedAt = uint32(v), medguard.FromMillis(created)
		if retired.Valid {
			t := medguard.FromMillis(retired.Int64)
			k.RetiredAt = &t
		}
		k.DataKeys, k.InSource = counts[k.Version], held[k.Version]
		st.DataKeys += k.DataKeys
		switch k.State {
		case KEKActive:
			st.Active = k.Version
		case KEKRetiring:
			st.Remaining += k.DataKeys
			st.Rotating = true
		}
		st.Versions = append(st.Versions, k)
	}
	return st, rows.Err()
}

// Remaining returns how many live data keys are still wrapped under a
// retiring KEK version (cheap: it reads through the kek_version index).
func (kr *Keyring) Remaining(ctx context.Context) (int64, error) {
	var n int64
	err := kr.db.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL
		AND kek_version IN (SELECT version FROM kek_versions WHERE state = 'retiring')`).Scan(&n)
	return n, err
}

// RewrappedHere counts the data keys this process rewrapped.
func (kr *Keyring) RewrappedHere() int64 { return kr.rewrapped.Load() }

// ActiveVersion returns the active KEK version as kek_versions records it.
func (kr *Keyring) ActiveVersion(ctx context.Context) (uint32, error) {
	var v int64
	err := kr.db.QueryRowContext(ctx, `SELECT version FROM kek_versions WHERE state = 'active'`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("keys: active KEK version: %w", err)
	}
	kr.active.Store(uint32(v))
	return uint32(v), nil
}

// ErrRotationRunning is returned when a rotation is asked for while the
// previous one still has keys to rewrap.
var ErrRotationRunning = &medguard.Error{Kind: medguard.Conflict, Code: "rotation_running",
	Message: "a KEK rotation is still rewrapping data keys; wait until it finishes"}

// CheckRotation says whether a new rotation may begin now.
func (kr *Keyring) CheckRotation(ctx context.Context) error {
	n, err := kr.Remaining(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return ErrRotationRunning
	}
	return nil
}

// NewKEKVersion makes a new KEK version in the source (a new secret in the
// key file, a new key generated inside the HSM, or the newest version the
// environment holds) and returns it with the mutation that makes it active
// — to be committed in the transaction that records the approved rotation.
// The mutation turns the active version into a retiring one; from its
// commit on, new data keys are wrapped under the new version, and Rewrap
// moves the old ones. A version made here whose mutation never commits
// stays unused in the source.
func (kr *Keyring) NewKEKVersion(ctx context.Context, approvalID string) (uint32, func(context.Context, *sql.Tx) error, error) {
	if err := kr.CheckRotation(ctx); err != nil {
		return 0, nil, err
	}
	var top sql.NullInt64
	if err := kr.db.QueryRowContext(ctx, `SELECT max(version) FROM kek_versions`).Scan(&top); err != nil {
		return 0, nil, err
	}
	v, err := kr.keks.NewVersion(uint32(top.Int64), kr.clock.Now())
	if err != nil {
		return 0, nil, err
	}
	if _, err := kr.wrapper(v); err != nil {
		return 0, nil, err
	}
	return v, func(ctx context.Context, tx *sql.Tx) error {
		var running int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL
			AND kek_version IN (SELECT version FROM kek_versions WHERE state = 'retiring')`).Scan(&running); err != nil {
			return err
		}
		if running > 0 {
			return ErrRotationRunning
		}
		if _, err := tx.ExecContext(ctx, `UPDATE kek_versions SET state = 'retiring' WHERE state = 'active'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO kek_versions (version, source, state, created_at, approval_id) VALUES ($1, $2, $3, $4, $5)`,
			v, kr.keks.Name(), KEKActive, medguard.Millis(kr.clock.Now()), storage.NullString(approvalID))
		if err == nil {
			kr.active.Store(v)
		}
		return err
	}, nil
}

// RewrapBatchSize is how many data keys one rewrap transaction moves by
// default: small enough that a server's writes wait only briefly for the
// SQLite write lock.
const RewrapBatchSize = 2000

type wrappedKey struct {
	owner   string
	version int64
	wrapped []byte
}

// RewrapBatch moves up to n live data keys from retiring KEK versions to
// the active one, in one transaction, and returns how many it moved (0
// when none is left). The raw data keys do not change, so ciphertexts and
// cached keys stay valid: reads and writes go on throughout. Each row is
// updated only if it is still under the version it was read with and not
// destroyed, so that two processes rewrapping at once, or a destruction
// meanwhile, are harmless; a crash loses at most the batch in flight, which
// the next run redoes.
func (kr *Keyring) RewrapBatch(ctx context.Context, n int) (int, error) {
	if n <= 0 {
		n = RewrapBatchSize
	}
	active, err := kr.ActiveVersion(ctx)
	if err != nil {
		return 0, err
	}
	// The retiring versions are few (kek_versions is tiny); each lookup of
	// their keys goes through the kek_version index, never a table scan.
	var retiring []int64
	vrows, err := kr.db.QueryContext(ctx, `SELECT version FROM kek_versions WHERE state = 'retiring' ORDER BY version`)
	if err != nil {
		return 0, fmt.Errorf("keys: rewrap: %w", err)
	}
	for vrows.Next() {
		var v int64
		if err := vrows.Scan(&v); err != nil {
			vrows.Close()
			return 0, err
		}
		retiring = append(retiring, v)
	}
	vrows.Close()
	var old int64
	var batch []wrappedKey
	for _, v := range retiring {
		if batch, err = kr.retiringKeys(ctx, v, n); err != nil {
			return 0, fmt.Errorf("keys: rewrap: %w", err)
		}
		if len(batch) > 0 {
			old = v
			break
		}
	}
	if len(batch) == 0 {
		return 0, nil
	}
	from, err := kr.wrapper(uint32(old))
	if err != nil {
		return 0, err
	}
	to, err := kr.wrapper(active)
	if err != nil {
		return 0, err
	}
	for i := range batch {
		k := &batch[i]
		loc := wrapLocation(k.owner, uint32(k.version))
		raw, err := from.Unwrap(loc, k.wrapped)
		if err != nil {
			return 0, fmt.Errorf("keys: rewrap: a data key (version %d) does not unwrap with KEK version %d: %w", k.version, old, err)
		}
		if k.wrapped, err = to.Wrap(loc, raw); err != nil {
			return 0, err
		}
		clear(raw)
	}
	err = kr.db.InTx(ctx, func(tx *sql.Tx) error {
		if kr.db.Dialect == storage.Postgres {
			return rewrapPostgres(ctx, tx, batch, int64(active), old)
		}
		st, err := tx.PrepareContext(ctx, `UPDATE data_keys SET wrapped = $1, kek_version = $2
			WHERE owner = $3 AND version = $4 AND kek_version = $5 AND wrapped IS NOT NULL`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, k := range batch {
			if _, err := st.ExecContext(ctx, k.wrapped, int64(active), k.owner, k.version, old); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("keys: rewrap: %w", err)
	}
	kr.rewrapped.Add(int64(len(batch)))
	return len(batch), nil
}

// retiringKeys reads up to n live data keys wrapped under KEK version v.
// On PostgreSQL it reads them with a plain index scan, which stops after n
// entries: a bitmap scan (which stale statistics invite) would read every
// remaining key of the version for each batch.
func (kr *Keyring) retiringKeys(ctx context.Context, v int64, n int) ([]wrappedKey, error) {
	const q = `SELECT owner, version, wrapped FROM data_keys WHERE kek_version = $1 AND wrapped IS NOT NULL LIMIT $2`
	var batch []wrappedKey
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k wrappedKey
			if err := rows.Scan(&k.owner, &k.version, &k.wrapped); err != nil {
				return err
			}
			batch = append(batch, k)
		}
		return rows.Err()
	}
	if kr.db.Dialect != storage.Postgres {
		return batch, scan(kr.db.QueryContext(ctx, q, v, n))
	}
	err := kr.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_bitmapscan = off`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		return scan(tx.QueryContext(ctx, q, v, n))
	})
	return batch, err
}

// rewrapPostgres updates a batch in a few statements (one round trip per
// 1,000 keys), joining the new wrapped keys to data_keys by primary key.
// Sequential scans are off in this transaction and the old version is
// compared as "kek_version + 0", so that the join goes through the primary
// key: with stale statistics (a table just loaded, not yet analysed) the
// planner would otherwise read every key of the old version per statement.
func rewrapPostgres(ctx context.Context, tx *sql.Tx, batch []wrappedKey, active, old int64) error {
	if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		return err
	}
	const chunk = 1000
	for len(batch) > 0 {
		part := batch[:min(chunk, len(batch))]
		batch = batch[len(part):]
		var sb strings.Builder
		args := []any{active, old}
		for i, k := range part {
			if i > 0 {
				sb.WriteString(", ")
			}
			p := len(args)
			fmt.Fprintf(&sb, "($%d::text, $%d::integer, $%d::bytea)", p+1, p+2, p+3)
			args = append(args, k.owner, k.version, k.wrapped)
		}
		_, err := tx.ExecContext(ctx, `UPDATE data_keys AS d SET wrapped = v.w, kek_version = $1
			FROM (VALUES `+sb.String()+`) AS v(o, ver, w)
			WHERE d.owner = v.o AND d.version = v.ver AND d.kek_version + 0 = $2 AND d.wrapped IS NOT NULL`, args...)
		if err != nil {
			return err
		}
	}
	return nil
}

// Retirable returns the retiring KEK versions that no live data key uses
// any more.
func (kr *Keyring) Retirable(ctx context.Context) ([]uint32, error) {
	rows, err := kr.db.QueryContext(ctx, `SELECT version FROM kek_versions k WHERE state = 'retiring'
		AND NOT EXISTS (SELECT 1 FROM data_keys d WHERE d.kek_version = k.version AND d.wrapped IS NOT NULL) ORDER BY version`)
	if err != nil {
		return nil, err
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

// ErrStillUsed is returned when a KEK version to retire wraps a live key.
var ErrStillUsed = &medguard.Error{Kind: medguard.Conflict, Message: "the KEK version still wraps live data keys"}

// Retire returns the mutation that marks a retiring KEK version retired, in
// the transaction that records it — refusing if a live data key still uses
// it. Its secret is not destroyed: backups made before the rotation need it
// (docs/keys.md).
func (kr *Keyring) Retire(version uint32) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE kek_versions SET state = 'retired', retired_at = $1 WHERE version = $2 AND state = 'retiring'
			AND NOT EXISTS (SELECT 1 FROM data_keys d WHERE d.kek_version = $2 AND d.wrapped IS NOT NULL)`,
			medguard.Millis(kr.clock.Now()), int64(version))
		return storage.Affected(res, err, ErrStillUsed)
	}
}

// VersionName is how a KEK version is named in the audit log ("kek-v2").
func VersionName(v uint32) string { return "kek-v" + strconv.FormatUint(uint64(v), 10) }
