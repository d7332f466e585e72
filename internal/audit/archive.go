package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"medguard"
	"medguard/internal/storage"
)

// MinRetentionDays is the shortest time entries are kept in the database:
// 180 days (SPEC §5). The period may be raised, never lowered.
const MinRetentionDays = 180

// RetentionDays returns the retention period recorded in db, in days.
func RetentionDays(ctx context.Context, db *storage.DB) (int, error) {
	var days int
	err := db.QueryRowContext(ctx, `SELECT days FROM audit_retention WHERE id = 1`).Scan(&days)
	return days, medguard.Wrap("audit.RetentionDays", err)
}

// SetRetention records a retention period of days. A period shorter than
// MinRetentionDays or than the one recorded is refused (the database
// refuses it too): retention may be raised, never lowered.
func SetRetention(ctx context.Context, db *storage.DB, days int, now time.Time) error {
	if days < MinRetentionDays {
		return medguard.InvalidField("audit_retention", "the audit retention period must be at least %d days, not %d", MinRetentionDays, days)
	}
	current, err := RetentionDays(ctx, db)
	if err != nil {
		return err
	}
	switch {
	case days == current:
		return nil
	case days < current:
		return medguard.InvalidField("audit_retention",
			"the audit retention period is %d days; it may be raised, never lowered (asked for %d)", current, days)
	}
	_, err = db.ExecContext(ctx, `UPDATE audit_retention SET days = $1, updated_at = $2 WHERE id = 1`, days, medguard.Millis(now))
	return medguard.Wrap("audit.SetRetention", err)
}

// ArchivedEnd returns the number of entries archived out of the database:
// entries [0, ArchivedEnd) live in archive files only.
func ArchivedEnd(ctx context.Context, db *storage.DB) (uint64, error) { return archivedEnd(ctx, db) }

func archivedEnd(ctx context.Context, q querier) (uint64, error) {
	var end int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(end_idx), 0) FROM audit_archives`).Scan(&end)
	return uint64(end), err
}

// archivedError is what reading an archived entry from the database gives.
func archivedError(i, end uint64) error {
	return &medguard.Error{Kind: medguard.NotFound, Field: "start",
		Message: fmt.Sprintf("entry %d is archived: entries before %d are kept in signed archive files (medguard audit archive), not in the database", i, end)}
}

// ArchiveOptions say what Archive moves out of the database, and where.
type ArchiveOptions struct {
	Dir    string    // directory of the archive files
	Before time.Time // archive entries written before this…
	Now    time.Time // …and older than the retention period at this time
	Signer *Signer   // the log's checkpoint signer, which signs the manifest
}

// ArchiveResult is what one Archive run did.
type ArchiveResult struct {
	First, End uint64    // entries [First, End) were archived (none if equal)
	Cutoff     time.Time // only entries written before this were eligible
	Newest     time.Time // the newest entry archived
	Files      []string  // leaves, checkpoint and manifest files written
}

// Archive moves the oldest entries — a prefix of whole commits, every entry
// of which was written before the cutoff (the earlier of opts.Before and the
// retention period before opts.Now) — out of the database into files in
// opts.Dir:
//
//	audit-F-E.jsonl       the entries, as "medguard audit export" writes them;
//	audit-F-E.checkpoint  a signed checkpoint of the tree of size E;
//	audit-F-E.manifest    a signed note naming the range, the file's SHA-256
//	                      and the root of the tree of size E.
//
// The log is verified before anything moves, the files are synced before
// the database forgets the entries, and the database's triggers refuse the
// deletion of any entry not recorded as archived or younger than the
// retention period. The tree's nodes stay: proofs for archived entries are
// still served, and "medguard audit verify --archive DIR" checks the files.
func Archive(ctx context.Context, db *storage.DB, opts ArchiveOptions) (*ArchiveResult, error) {
	days, err := RetentionDays(ctx, db)
	if err != nil {
		return nil, err
	}
	cutoff := opts.Now.Add(-time.Duration(days) * 24 * time.Hour)
	if !opts.Before.IsZero() && opts.Before.Before(cutoff) {
		cutoff = opts.Before
	}
	first, err := archivedEnd(ctx, db)
	if err != nil {
		return nil, medguard.Wrap("audit.Archive", err)
	}
	res := &ArchiveResult{First: first, End: first, Cutoff: cutoff}
	var archived *ArchiveSet
	if first > 0 {
		stored, err := StoredCheckpoints(ctx, db)
		if err != nil {
			return nil, medguard.Wrap("audit.Archive", err)
		}
		chain, err := FollowKeys(opts.Signer.VerifierKey(), stored)
		if err != nil {
			return nil, err
		}
		if archived, err = OpenArchive(opts.Dir, chain.VerifierKeys()...); err != nil {
			return nil, err
		}
	}
	if _, err := Verify(ctx, db, VerifyOptions{VerifierKey: opts.Signer.VerifierKey(), Archived: archived}); err != nil {
		return nil, fmt.Errorf("audit: the log must verify before it is archived: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(opts.Dir, ".archive-*.jsonl")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(tmp, sum), 1<<20)
	var newest time.Time
	end := first
	for done := false; !done; {
		bs, err := scanBundles(ctx, db, `SELECT first_idx, count, leaves FROM audit_bundles WHERE first_idx >= $1
			ORDER BY first_idx LIMIT 256`, int64(end))
		if err != nil {
			return nil, medguard.Wrap("audit.Archive", err)
		}
		if len(bs) == 0 {
			break
		}
		for _, b := range bs {
			if b.first != end || b.err != nil {
				return nil, &TamperError{Index: end, Reason: "missing or damaged while archiving"}
			}
			times := make([]time.Time, len(b.leaves))
			eligible := true
			for k, leaf := range b.leaves {
				f, err := fieldsOf(leaf)
				if err == nil {
					times[k], err = time.Parse(TimeFormat, f.Time)
				}
				if err != nil {
					return nil, &TamperError{Index: b.first + uint64(k), Reason: err.Error()}
				}
				eligible = eligible && times[k].Before(cutoff)
			}
			if !eligible {
				done = true
				break
			}
			for k, leaf := range b.leaves {
				if err := writeExportLine(w, b.first+uint64(k), leaf); err != nil {
					return nil, err
				}
				if times[k].After(newest) {
					newest = times[k]
				}
			}
			end = b.first + uint64(len(b.leaves))
		}
	}
	if end == first {
		return res, nil
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	parts, err := hasParts(ctx, db)
	if err != nil {
		return nil, err
	}
	root, err := rootAt(ctx, db, end, parts)
	if err != nil {
		return nil, err
	}
	cp, err := opts.Signer.Sign(end, root)
	if err != nil {
		return nil, err
	}
	m := archivePart{first: first, end: end, newest: newest, sha256: hex.EncodeToString(sum.Sum(nil)),
		origin: opts.Signer.Origin(), root: root}
	m.leaves = m.name(".jsonl")
	manifest, err := opts.Signer.signText(m.text())
	if err != nil {
		return nil, err
	}
	base := filepath.Join(opts.Dir, m.name(""))
	if err := os.Rename(tmp.Name(), base+".jsonl"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		ext  string
		data []byte
	}{{".checkpoint", cp}, {".manifest", manifest}} {
		if err := writeSynced(base+f.ext, os.O_TRUNC, f.data); err != nil {
			return nil, err
		}
	}
	if err := syncDir(opts.Dir); err != nil {
		return nil, err
	}
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_archives (first_idx, end_idx, newest_ms, archived_at, manifest)
			VALUES ($1, $2, $3, $4, $5)`, int64(first), int64(end), newest.UnixMilli(), medguard.Millis(opts.Now), string(manifest)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_index WHERE idx < $1`, int64(end)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM audit_bundles WHERE first_idx < $1`, int64(end))
		return err
	})
	if err != nil {
		return nil, medguard.Wrap("audit.Archive", err)
	}
	res.End, res.Newest = end, newest
	res.Files = []string{base + ".jsonl", base + ".checkpoint", base + ".manifest"}
	return res, nil
}

// ExportLine is one entry as "medguard audit export" and archive files
// write it: its index, its leaf bytes and the entry they decode to.
type ExportLine struct {
	Index uint64          `json:"index"`
	Leaf  []byte          `json:"leaf"`
	Entry json.RawMessage `json:"entry,omitempty"`
}

func writeExportLine(w io.Writer, index uint64, leaf []byte) error {
	b, err := json.Marshal(ExportLine{Index: index, Leaf: leaf, Entry: leaf})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeSynced writes data to the file at path (created 0600; flag adds
// os.O_EXCL, os.O_APPEND or os.O_TRUNC) and syncs it before it returns.
func writeSynced(path string, flag int, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// rootAt is the root of the tree of the given size, from the stored nodes.
func rootAt(ctx context.Context, q querier, size uint64, parts bool) ([]byte, error) {
	hashes, err := readNodes(ctx, q, compact.RangeNodes(0, size, nil), parts)
	if err != nil {
		return nil, err
	}
	r, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// archivePart is one archive run's files, as its manifest describes them.
type archivePart struct {
	origin     string
	first, end uint64
	newest     time.Time
	leaves     string // file name of the entries
	sha256     string // hex SHA-256 of that file
	root       []byte // root of the tree of size end
	manifest   []byte // the signed manifest note
	checkpoint []byte // the signed checkpoint note, if its file is there
}

const manifestHeader = "medguard audit archive v1"

func (p *archivePart) name(ext string) string {
	return fmt.Sprintf("audit-%012d-%012d%s", p.first, p.end, ext)
}

// text is the manifest's note text: one "key value" line each.
func (p *archivePart) text() string {
	return fmt.Sprintf("%s\norigin %s\nentries %d %d\nnewest %s\nleaves %s sha256:%s\nroot %d %s\n", manifestHeader,
		p.origin, p.first, p.end, p.newest.UTC().Format(TimeFormat), p.leaves, p.sha256, p.end,
		base64.StdEncoding.EncodeToString(p.root))
}

func parseManifest(text string) (*archivePart, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 6 || lines[0] != manifestHeader {
		return nil, errors.New("not a medguard audit archive manifest")
	}
	p := &archivePart{}
	var rootSize uint64
	var root, newest string
	for _, f := range []struct {
		line   string
		format string
		args   []any
	}{
		{lines[1], "origin %s", []any{&p.origin}},
		{lines[2], "entries %d %d", []any{&p.first, &p.end}},
		{lines[3], "newest %s", []any{&newest}},
		{lines[4], "leaves %s sha256:%s", []any{&p.leaves, &p.sha256}},
		{lines[5], "root %d %s", []any{&rootSize, &root}},
	} {
		if _, err := fmt.Sscanf(f.line, f.format, f.args...); err != nil {
			return nil, fmt.Errorf("manifest line %q: %w", f.line, err)
		}
	}
	var err error
	if p.newest, err = time.Parse(TimeFormat, newest); err != nil {
		return nil, err
	}
	if p.root, err = base64.StdEncoding.DecodeString(root); err != nil || len(p.root) != sha256.Size {
		return nil, errors.New("manifest: bad root")
	}
	if rootSize != p.end || p.end <= p.first || p.leaves != p.name(".jsonl") {
		return nil, errors.New("manifest: inconsistent range")
	}
	return p, nil
}

// ArchiveSet is a directory of archive files, opened and its manifests'
// signatures checked: the leaves [0, Size) in order, for Verify.
type ArchiveSet struct {
	dir   string
	parts []*archivePart
}

// OpenArchive opens the archive files in dir, checking each manifest's
// signature with one of verifierKeys (the log's chain of signing keys: a
// part archived before a rotation is signed by the retired key) and that
// the parts cover [0, Size) with no gap. A manifest that does not verify is
// a *TamperError.
func OpenArchive(dir string, verifierKeys ...string) (*ArchiveSet, error) {
	names, err := filepath.Glob(filepath.Join(dir, "audit-*.manifest"))
	if err != nil {
		return nil, err
	}
	set := &ArchiveSet{dir: dir}
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		text, err := openNoteAny(raw, verifierKeys)
		if err != nil {
			return nil, &TamperError{Reason: fmt.Sprintf("archive manifest %s does not verify: %v", filepath.Base(name), err)}
		}
		p, err := parseManifest(text)
		if err != nil {
			return nil, &TamperError{Reason: fmt.Sprintf("archive manifest %s: %v", filepath.Base(name), err)}
		}
		p.manifest = raw
		if cp, err := os.ReadFile(filepath.Join(dir, p.name(".checkpoint"))); err == nil {
			p.checkpoint = cp
		}
		set.parts = append(set.parts, p)
	}
	slices.SortFunc(set.parts, func(a, b *archivePart) int { return int(a.first) - int(b.first) })
	next := uint64(0)
	for _, p := range set.parts {
		if p.first != next {
			return nil, &TamperError{Index: next, Reason: fmt.Sprintf("missing from the archive in %s (the next part starts at %d)", dir, p.first)}
		}
		next = p.end
	}
	return set, nil
}

// Size is how many entries the archive holds: [0, Size).
func (s *ArchiveSet) Size() uint64 {
	if s == nil || len(s.parts) == 0 {
		return 0
	}
	return s.parts[len(s.parts)-1].end
}

// Parts returns each part's range, for reports.
func (s *ArchiveSet) Parts() [][2]uint64 {
	var out [][2]uint64
	for _, p := range s.parts {
		out = append(out, [2]uint64{p.first, p.end})
	}
	return out
}

// checkpoints returns the claims the archive makes: each part's manifest
// root, and its signed checkpoint.
func (s *ArchiveSet) checkpoints() []Checkpoint {
	var out []Checkpoint
	for _, p := range s.parts {
		if p.checkpoint != nil {
			out = append(out, Checkpoint{Size: p.end, Note: string(p.checkpoint)})
		}
	}
	return out
}

// Leaves calls fn for every archived leaf in order, checking each file
// against its manifest's SHA-256 and range.
func (s *ArchiveSet) Leaves(ctx context.Context, fn func(index uint64, leaf []byte) error) error {
	for _, p := range s.parts {
		if err := s.partLeaves(ctx, p, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *ArchiveSet) partLeaves(ctx context.Context, p *archivePart, fn func(index uint64, leaf []byte) error) error {
	f, err := os.Open(filepath.Join(s.dir, p.leaves))
	if err != nil {
		return fmt.Errorf("audit: archive of entries %d to %d: %w", p.first, p.end-1, err)
	}
	defer f.Close()
	sum := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(f, sum))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	next := p.first
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		var line ExportLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Index != next || next >= p.end {
			return &TamperError{Index: next, Reason: "the archive file " + p.leaves + " was changed"}
		}
		if err := fn(line.Index, line.Leaf); err != nil {
			return err
		}
		next++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if next != p.end {
		return &TamperError{Index: next, Reason: "missing: the archive file " + p.leaves + " ends early"}
	}
	if err := checkSum(sum, p.sha256); err != nil {
		return &TamperError{Index: p.first, Reason: "the archive file " + p.leaves + " was changed: " + err.Error()}
	}
	return nil
}

func checkSum(h hash.Hash, want string) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("SHA-256 %s, its manifest says %s", got[:16], want[:min(16, len(want))])
	}
	return nil
}

// checkArchives compares the archive set with the database's record of
// archive runs: the database may not have forgotten entries the files do
// not hold, and each recorded manifest must be the file's.
func checkArchives(ctx context.Context, db *storage.DB, set *ArchiveSet) error {
	rows, err := db.QueryContext(ctx, `SELECT first_idx, end_idx, manifest FROM audit_archives ORDER BY first_idx`)
	if err != nil {
		return fmt.Errorf("audit: read archive records: %w", err)
	}
	defer rows.Close()
	byFirst := map[uint64]*archivePart{}
	if set != nil {
		for _, p := range set.parts {
			byFirst[p.first] = p
		}
	}
	for rows.Next() {
		var first, end int64
		var manifest string
		if err := rows.Scan(&first, &end, &manifest); err != nil {
			return err
		}
		p := byFirst[uint64(first)]
		if p == nil {
			return &ArchiveNeededError{First: uint64(first), End: uint64(end)}
		}
		if p.end != uint64(end) || !bytes.Equal(p.manifest, []byte(manifest)) {
			return &TamperError{Index: uint64(first), Reason: "the archive files of entries " + strconv.FormatInt(first, 10) +
				" on do not match the database's record of that archive run"}
		}
	}
	return rows.Err()
}

// ArchiveNeededError says entries were archived out of the database and
// verifying them needs the archive files.
type ArchiveNeededError struct{ First, End uint64 }

func (e *ArchiveNeededError) Error() string {
	return fmt.Sprintf("audit: entries %d to %d were archived out of the database; verifying them needs their archive files (--archive DIR)",
		e.First, e.End-1)
}
