// Package backup makes, checks and restores medguard's backups of an
// embedded SQLite data directory: full snapshots, and a continuous stream
// of the write-ahead log shipped by Litestream (used as a library), both
// encrypted with AES-256-GCM (DARE, github.com/minio/sio) under a
// per-backup key wrapped with age to an offline recipient, each sealed by
// a signed manifest tying it to the audit tree and listing the SHA-256 of
// every piece. It writes to a local directory and an S3-compatible store at
// once, computes the 3-2-1 state, runs restore drills and records them.
//
// It must not decide access or read patient data in clear: it copies the
// database's bytes (whose patient fields are already encrypted); counts
// and a drill's sample decryption of patient fields go through the records
// package (records.Count, records.SampleRead), on the drill's scratch copy
// only, and the values are dropped. It carries the destruction ledger
// (DATA/destructions.log) in every backup and merges it at restore. It does
// not back up PostgreSQL (pgBackRest does, see internal/pgbackup), nor the
// key file: that is kept apart.
package backup

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"medguard/internal/audit"
	"medguard/internal/records"
	"medguard/internal/retention"
	"medguard/internal/storage"
)

// Layout of a target:
//
//	verifier.key                 the verifier key of the manifests' signer (first backup writes it)
//	backups/ID/manifest          the signed manifest, written last
//	backups/ID/key.age           the backup key, wrapped to the age recipient
//	backups/ID/database.sio      the SQLite snapshot, encrypted
//	backups/ID/checkpoints.sio   the audit log's checkpoints.log, encrypted
//	backups/ID/audit-log.key.sio the audit log's signing key, encrypted
//	stream/GEN/key.age           a stream generation's key, wrapped
//	stream/GEN/0000…-0000….ltx.sio  WAL segments (Litestream LTX), encrypted
//	drills/ID                    signed drill records
const (
	backupsDir   = "backups/"
	manifestName = "manifest"
	verifierName = "verifier.key"
)

// CreateOptions are what Create needs.
type CreateOptions struct {
	// DataDir is the data directory (DATA/medguard.db, DATA/keys,
	// DATA/checkpoints.log).
	DataDir string
	Targets []Target
	// Recipient is the age recipient the backup key is wrapped to.
	Recipient age.Recipient
	Signer    *Signer
	// Cipher seals the pieces: CipherAES (the default, when empty) or
	// CipherSM4.
	Cipher string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

func (o CreateOptions) cipher() string { return cmp.Or(o.Cipher, Cipher) }

func (o CreateOptions) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

// Result is a backup made: its manifest and where it went.
type Result struct {
	Manifest *Manifest
	// URLs are the backup's locations, one per target, in the order of
	// the targets.
	URLs []string
	Took time.Duration
}

// newID names a backup by its time, kind and a random suffix.
func newID(t time.Time, kind string) string {
	b := make([]byte, 3)
	rand.Read(b)
	short := "full"
	if kind == Incremental {
		short = "incr"
	}
	return t.UTC().Format("20060102T150405Z") + "-" + short + "-" + hex.EncodeToString(b)
}

// BackupURL is where backup id lives on a target.
func BackupURL(t Target, id string) string {
	return strings.TrimSuffix(t.URL(), "/") + "/" + backupsDir + id
}

// SplitBackupURL splits a backup's URL or path into the target's and the
// backup's ID.
func SplitBackupURL(u string) (target, id string, err error) {
	u = strings.TrimSuffix(u, "/")
	i := strings.LastIndex(u, "/"+strings.TrimSuffix(backupsDir, "/")+"/")
	if i < 0 {
		return "", "", fmt.Errorf("backup %q: want TARGET/backups/ID, as `backup create` or `backup list` print it", u)
	}
	target, id = u[:i], u[i+len(backupsDir)+1:]
	if target == "" {
		target = "/"
	}
	if id == "" || strings.Contains(id, "/") {
		return "", "", fmt.Errorf("backup %q: want TARGET/backups/ID", u)
	}
	// A query (s3://…?endpoint=…) follows the prefix in a URL: keep it.
	return target, id, nil
}

// snapshotDir is where Create writes the database's consistent snapshot
// while it encrypts it: inside the data directory, with the database's own
// protection (0700), removed when done.
func snapshotDir(dataDir string) string { return filepath.Join(dataDir, "backup-tmp") }

// Create makes a full backup of the data directory on every target: a
// consistent snapshot of the database (VACUUM INTO, which runs beside a
// serving server), its audit tree verified and recorded, encrypted, then
// the signed manifest last. A backup without its manifest is ignored by
// List and refused by Verify, so a run killed half-way is never taken for
// a backup; the next run makes a new one.
func Create(ctx context.Context, opt CreateOptions) (*Result, error) {
	start := time.Now()
	if len(opt.Targets) == 0 {
		return nil, errors.New("backup: no target (--to)")
	}
	if opt.Recipient == nil || opt.Signer == nil {
		return nil, errors.New("backup: a recipient and a signer are needed")
	}
	dbPath := filepath.Join(opt.DataDir, "medguard.db")
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("backup: no SQLite database in %s: %w", opt.DataDir, err)
	}
	now := opt.now()
	id := newID(now, Full)
	tmp := snapshotDir(opt.DataDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	// Leftovers of a killed run hold nothing that was accepted.
	olds, _ := filepath.Glob(filepath.Join(tmp, "*"))
	for _, o := range olds {
		os.Remove(o)
	}
	local, err := localTransitions(ctx, opt.DataDir)
	if err != nil {
		return nil, fmt.Errorf("backup: the audit log's key rotations: %w", err)
	}
	m := &Manifest{ID: id, Kind: Full, CreatedAt: now, DataAsOf: now, Database: "sqlite", Cipher: opt.cipher(), KeyWrap: KeyWrap,
		Recipient: fmt.Sprint(opt.Recipient), Signer: opt.Signer.VerifierKey(), KeyTransitions: notes(local)}
	snap := filepath.Join(tmp, id+".db")
	defer os.Remove(snap)
	key := newBackupKey()
	wrapped, err := wrapKey(key, opt.Recipient)
	if err != nil {
		return nil, err
	}
	prefix := backupsDir + id + "/"
	files := []struct{ src, name, role string }{
		{filepath.Join(opt.DataDir, "keys", "audit-log.key"), "audit-log.key.sio", "signing-key"},
		{filepath.Join(opt.DataDir, "checkpoints.log"), "checkpoints.sio", "checkpoints"},
		{snap, "database.sio", "database"},
		// The ledger is copied after the snapshot: a destruction appends
		// its line before its transaction commits, so every destruction
		// the snapshot holds is in it.
		{filepath.Join(opt.DataDir, retention.LedgerFile), ledgerPiece, "ledger"},
	}
	m.Pieces = append(m.Pieces, Piece{Name: prefix + "key.age", Size: int64(len(wrapped)), SHA256: sum(wrapped), Role: "key"})
	for _, t := range opt.Targets {
		if err := ensureVerifier(ctx, t, opt.Signer.VerifierKey(), local); err != nil {
			return nil, err
		}
		if err := putBytes(ctx, t, prefix+"key.age", wrapped); err != nil {
			return nil, fmt.Errorf("backup: %s: %w", t.URL(), err)
		}
	}
	// The checkpoints are copied before the snapshot is taken: every one
	// of them is then of a tree the snapshot holds.
	for _, f := range files {
		if f.role == "database" {
			snapAt := opt.now()
			if err := vacuumInto(ctx, dbPath, snap); err != nil {
				return nil, err
			}
			m.DataAsOf = snapAt
			if err := inventory(ctx, snap, m); err != nil {
				return nil, err
			}
		}
		p, err := encryptFile(ctx, m.Cipher, f.src, key, prefix+f.name, f.role, tmp, opt.Targets)
		if errors.Is(err, os.ErrNotExist) && f.role != "database" {
			continue
		}
		if err != nil {
			return nil, err
		}
		m.Pieces = append(m.Pieces, p)
	}
	if err := ShipLedger(ctx, opt.DataDir, opt.Recipient, opt.Targets); err != nil {
		return nil, err
	}
	signed, err := opt.Signer.sign(manifestHeader, m)
	if err != nil {
		return nil, err
	}
	res := &Result{Manifest: m}
	for _, t := range opt.Targets {
		if err := putBytes(ctx, t, prefix+manifestName, signed); err != nil {
			return nil, fmt.Errorf("backup: %s: %w", t.URL(), err)
		}
		res.URLs = append(res.URLs, BackupURL(t, id))
	}
	res.Took = time.Since(start)
	return res, nil
}

// ensureVerifier writes the signer's verifier key at the target's root if
// there is none yet, and the audit log's transition checkpoints (local)
// to the target's key-transitions file. A pinned key that differs must be
// linked to the signer by the transition checkpoints (a rotation of the
// audit log's key); one that is not is refused (another installation's
// backups, or a key changed by hand: say so rather than mix them).
func ensureVerifier(ctx context.Context, t Target, vkey string, local []audit.Checkpoint) error {
	b, err := getBytes(ctx, t, verifierName, 4096)
	if errors.Is(err, ErrNotFound) {
		if err := shipTransitions(ctx, t, local); err != nil {
			return err
		}
		return putBytes(ctx, t, verifierName, []byte(vkey+"\n"))
	}
	if err != nil {
		return fmt.Errorf("backup: %s: %w", t.URL(), err)
	}
	pinned := strings.TrimSpace(string(b))
	if pinned == vkey {
		return shipTransitions(ctx, t, local)
	}
	kc, err := targetKeys(ctx, t, pinned, local)
	if err != nil {
		return err
	}
	if err := checkSigner(t, pinned, vkey, kc); err != nil {
		return err
	}
	return shipTransitions(ctx, t, local)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// encryptFile encrypts src into a temporary file (never clear text at
// rest beyond the source itself), hashing it, then puts it on every target.
func encryptFile(ctx context.Context, cipherName, src string, key []byte, name, role, tmpDir string, targets []Target) (Piece, error) {
	in, err := os.Open(src)
	if err != nil {
		return Piece{}, err
	}
	defer in.Close()
	enc, err := encryptReader(cipherName, key, name, in)
	if err != nil {
		return Piece{}, err
	}
	out, err := os.CreateTemp(tmpDir, "piece-*.sio")
	if err != nil {
		return Piece{}, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), enc)
	if err != nil {
		return Piece{}, fmt.Errorf("backup: encrypting %s: %w", role, err)
	}
	p := Piece{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Role: role}
	for _, t := range targets {
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return Piece{}, err
		}
		if err := t.Put(ctx, name, out, n); err != nil {
			return Piece{}, fmt.Errorf("backup: %s: %w", t.URL(), err)
		}
	}
	return p, nil
}

// vacuumInto writes a consistent, compact copy of the database.
func vacuumInto(ctx context.Context, dbPath, dst string) error {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)&_pragma=query_only(0)")
	if err != nil {
		return err
	}
	defer db.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	os.Remove(dst) // VACUUM INTO wants no file; the name is ours (0700 directory)
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, dst); err != nil {
		return fmt.Errorf("backup: snapshot of the database: %w", err)
	}
	return os.Chmod(dst, 0o600)
}

// inventory fills the manifest from a snapshot: the audit tree (verified
// whole), the key versions its data keys need, and counts.
func inventory(ctx context.Context, dbFile string, m *Manifest) error {
	db, err := storage.Open(ctx, "sqlite:"+dbFile, "")
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db, audit.VerifyOptions{})
	if err != nil {
		return fmt.Errorf("backup: the audit log in the snapshot does not verify: %w", err)
	}
	m.Audit = AuditState{Size: rep.Size, Root: rep.Root}
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT kek_version FROM data_keys WHERE wrapped IS NOT NULL ORDER BY kek_version`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return err
		}
		m.KEKVersions = append(m.KEKVersions, uint32(v))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL`).Scan(&m.DataKeys); err != nil {
		return err
	}
	c, err := records.Count(ctx, db)
	m.Patients, m.Records = c.Patients, c.Records
	return err
}

// VerifyOptions are what Verify checks a backup against.
type VerifyOptions struct {
	// VerifierKey is the manifests' signer's verifier key; empty takes the
	// one stored at the target's root by the first backup.
	VerifierKey string
	// Identity, if set, opens the backup key and every piece is decrypted
	// (which authenticates each DARE package); without it, signature,
	// sizes and SHA-256 are checked.
	Identity age.Identity
}

// VerifyError says what is wrong with a backup.
type VerifyError struct {
	Backup string
	// What is "signature", "missing", "extra", "changed", "truncated",
	// "wrong key", "incomplete".
	What   string
	Detail string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("backup %s does not verify: %s: %s", e.Backup, e.What, e.Detail)
}

// Verify checks backup id on target: its manifest's signature, that every
// piece is there with its size and SHA-256 and nothing else is, and, with
// an identity, that the key opens and every piece decrypts.
func Verify(ctx context.Context, t Target, id string, opt VerifyOptions) (*Manifest, error) {
	m, _, _, err := verify(ctx, t, id, opt)
	return m, err
}

func verify(ctx context.Context, t Target, id string, opt VerifyOptions) (*Manifest, []byte, *keyChain, error) {
	bad := func(what, format string, args ...any) error {
		return &VerifyError{Backup: id, What: what, Detail: fmt.Sprintf(format, args...)}
	}
	prefix := backupsDir + id + "/"
	msg, err := getBytes(ctx, t, prefix+manifestName, 16<<20)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, bad("incomplete", "no manifest (a backup that did not finish, or not a backup)")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	kc, err := targetKeys(ctx, t, opt.VerifierKey)
	if err != nil {
		return nil, nil, nil, bad("signature", "%v", err)
	}
	if kc, err = kc.with(listedTransitions(msg)); err != nil {
		return nil, nil, nil, bad("signature", "%v", err)
	}
	var m Manifest
	if _, err := kc.open(msg, manifestHeader, &m, func() uint64 { return m.Audit.Size }); err != nil {
		return nil, nil, nil, bad("signature", "%v", err)
	}
	if m.ID != id {
		return nil, nil, nil, bad("signature", "the manifest is backup %s's", m.ID)
	}
	// Every object under backups/ID/ must be a listed piece.
	objs, err := t.List(ctx, prefix)
	if err != nil {
		return nil, nil, nil, err
	}
	listed := map[string]Piece{}
	for _, p := range m.Pieces {
		listed[p.Name] = p
	}
	for _, o := range objs {
		if _, ok := listed[o.Name]; !ok && o.Name != prefix+manifestName {
			return nil, nil, nil, bad("extra", "%s is not in the manifest", o.Name)
		}
	}
	var key []byte
	if opt.Identity != nil {
		for _, p := range m.Pieces {
			if p.Role == "key" {
				b, err := getPiece(ctx, t, p, bad)
				if err != nil {
					return nil, nil, nil, err
				}
				if key, err = unwrapKey(b, opt.Identity); err != nil {
					return nil, nil, nil, bad("wrong key", "%v", err)
				}
			}
		}
	}
	for _, p := range m.Pieces {
		if p.Role == "stream" {
			if err := checkSegment(ctx, t, p, opt.Identity, bad); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		if err := checkPiece(ctx, t, p, key, bad); err != nil {
			return nil, nil, nil, err
		}
	}
	return &m, key, kc, nil
}

func getPiece(ctx context.Context, t Target, p Piece, bad func(string, string, ...any) error) ([]byte, error) {
	b, err := getBytes(ctx, t, p.Name, 1<<20)
	if errors.Is(err, ErrNotFound) {
		return nil, bad("missing", "%s", p.Name)
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != p.Size || sum(b) != p.SHA256 {
		return nil, bad("changed", "%s (SHA-256 or size differs from the manifest)", p.Name)
	}
	return b, nil
}

// checkPiece reads a piece whole, comparing its size and SHA-256 with the
// manifest's and, with the key, decrypting it.
func checkPiece(ctx context.Context, t Target, p Piece, key []byte, bad func(string, string, ...any) error) error {
	rc, err := t.Get(ctx, p.Name)
	if errors.Is(err, ErrNotFound) {
		return bad("missing", "%s", p.Name)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	var src io.Reader = io.TeeReader(rc, h)
	var n int64
	if key != nil && p.Role != "key" {
		dec, err := decryptReader(key, p.Name, &counting{r: src, n: &n})
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, dec); err != nil {
			// Finish hashing to tell a changed piece from a wrong key.
			rest, _ := io.Copy(io.Discard, src)
			n += rest
			if n != p.Size || hex.EncodeToString(h.Sum(nil)) != p.SHA256 {
				return sizeOrChange(p, n, bad)
			}
			return bad("wrong key", "%s does not decrypt with this backup key", p.Name)
		}
		io.Copy(io.Discard, &counting{r: src, n: &n})
	} else {
		if n, err = io.Copy(io.Discard, src); err != nil {
			return err
		}
	}
	if n != p.Size || hex.EncodeToString(h.Sum(nil)) != p.SHA256 {
		return sizeOrChange(p, n, bad)
	}
	return nil
}

func sizeOrChange(p Piece, n int64, bad func(string, string, ...any) error) error {
	if n < p.Size {
		return bad("truncated", "%s has %d of its %d bytes", p.Name, n, p.Size)
	}
	if n > p.Size {
		return bad("extra", "%s has %d bytes more than the manifest says", p.Name, n-p.Size)
	}
	return bad("changed", "%s: SHA-256 differs from the manifest's", p.Name)
}

type counting struct {
	r io.Reader
	n *int64
}

func (c *counting) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	*c.n += int64(n)
	return n, err
}

// Entry is a backup as List shows it.
type Entry struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Manifest is nil for an entry whose manifest is missing or does not
	// verify; Problem then says why.
	Manifest *Manifest `json:"manifest,omitempty"`
	Problem  string    `json:"problem,omitempty"`
}

// List lists the backups on a target, oldest first, with their signed
// manifests (signatures checked, pieces not read).
func List(ctx context.Context, t Target, verifierKey string) ([]Entry, error) {
	objs, err := t.List(ctx, backupsDir)
	if err != nil {
		return nil, err
	}
	// The chain of the audit log's keys, from the trusted key (the pinned
	// one if none is given) through the target's transition checkpoints.
	kc, kerr := targetKeys(ctx, t, verifierKey)
	seen := map[string]bool{}
	var out []Entry
	for _, o := range objs {
		id := strings.SplitN(strings.TrimPrefix(o.Name, backupsDir), "/", 2)[0]
		if seen[id] {
			continue
		}
		seen[id] = true
		e := Entry{ID: id, URL: BackupURL(t, id)}
		msg, err := getBytes(ctx, t, backupsDir+id+"/"+manifestName, 16<<20)
		switch {
		case errors.Is(err, ErrNotFound):
			e.Problem = "incomplete: no manifest"
		case err != nil:
			e.Problem = err.Error()
		case kerr != nil:
			e.Problem = kerr.Error()
		default:
			var m Manifest
			mkc, err := kc.with(listedTransitions(msg))
			if err == nil {
				_, err = mkc.open(msg, manifestHeader, &m, func() uint64 { return m.Audit.Size })
			}
			if err != nil {
				e.Problem = err.Error()
			} else {
				e.Manifest = &m
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Latest is the newest verified backup on a target (nil if none).
func Latest(entries []Entry) *Entry {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Manifest != nil {
			return &entries[i]
		}
	}
	return nil
}

// RetentionLimit is the longest Prune keeps a backup with keepDaily and
// keepMonthly, while the schedule runs: a backup younger than keepDaily
// days, or the first of its month while that month is among the newest
// keepMonthly months — at most keepMonthly+1 months of 31 days. A
// destruction certificate's backups_expire_by is computed from it.
func RetentionLimit(keepDaily, keepMonthly int) time.Duration {
	return max(time.Duration(keepDaily)*24*time.Hour, time.Duration(keepMonthly+1)*31*24*time.Hour)
}

// Prune deletes the backups a retention keeps no longer: it keeps every
// backup younger than keepDaily days and the first backup of each of the
// newest keepMonthly months (RetentionLimit bounds how long that is);
// incomplete backups older than a day go too. It returns the IDs deleted.
func Prune(ctx context.Context, t Target, now time.Time, keepDaily, keepMonthly int) ([]string, error) {
	entries, err := List(ctx, t, "")
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	months := map[string]bool{}
	for _, e := range entries {
		if e.Manifest != nil && now.Sub(e.Manifest.CreatedAt) < 24*time.Hour*time.Duration(keepDaily) {
			keep[e.ID] = true
		}
	}
	// Monthly: the oldest backup of each of the newest keepMonthly months.
	for _, e := range entries {
		if e.Manifest == nil {
			continue
		}
		mo := e.Manifest.CreatedAt.Format("2006-01")
		if !months[mo] {
			months[mo] = true
			keep[e.ID] = true
		}
	}
	monthList := make([]string, 0, len(months))
	for mo := range months {
		monthList = append(monthList, mo)
	}
	slices.Sort(monthList)
	if len(monthList) > keepMonthly {
		old := map[string]bool{}
		for _, mo := range monthList[:len(monthList)-keepMonthly] {
			old[mo] = true
		}
		for _, e := range entries {
			if e.Manifest != nil && old[e.Manifest.CreatedAt.Format("2006-01")] &&
				now.Sub(e.Manifest.CreatedAt) >= 24*time.Hour*time.Duration(keepDaily) {
				delete(keep, e.ID)
			}
		}
	}
	var deleted []string
	for _, e := range entries {
		if keep[e.ID] {
			continue
		}
		if e.Manifest == nil {
			if t0, err := time.Parse("20060102T150405Z", strings.SplitN(e.ID, "-", 2)[0]); err != nil || now.Sub(t0) < 24*time.Hour {
				continue
			}
		}
		if err := deleteBackup(ctx, t, e.ID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, e.ID)
	}
	return deleted, nil
}

// checkSegment checks a stream segment's bytes and, with the identity, that
// its own wrapped key opens and it decrypts.
func checkSegment(ctx context.Context, t Target, p Piece, id Identity, bad func(string, string, ...any) error) error {
	if err := checkPiece(ctx, t, p, nil, bad); err != nil {
		return err
	}
	if id == nil {
		return nil
	}
	if _, err := readSegment(ctx, t, p.Name, id, map[string]Piece{p.Name: p}); err != nil {
		if errors.Is(err, ErrWrongKey) {
			return bad("wrong key", "%v", err)
		}
		return bad("changed", "%s: %v", p.Name, err)
	}
	return nil
}
