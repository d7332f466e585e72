package pgbackup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard/internal/audit"
	"medguard/internal/records"
	"medguard/internal/storage"
)

// ManifestFormat is the first line of a signed manifest's text.
const ManifestFormat = "medguard pgbackup manifest v1"

// KEKUse is a KEK version the backup's data keys are wrapped under: the
// key file restoring it must hold that version.
type KEKUse struct {
	Version   uint32 `json:"version"`
	Algorithm string `json:"algorithm"`
	DataKeys  int    `json:"data_keys"`
}

// State is medguard's state when a backup begins: the audit tree's size
// and root, and the KEK versions in use.
type State struct {
	AuditSize   uint64   `json:"audit_size"`
	AuditRoot   []byte   `json:"audit_root"`
	KEKVersions []KEKUse `json:"kek_versions"`
	// Patients and Records are how many the database held (neither count
	// goes down: there is no delete path), so a restored copy must hold
	// at least as many. Manifests written before drills lack them (0).
	Patients int `json:"patients,omitempty"`
	Records  int `json:"records,omitempty"`
}

// ReadState reads the audit head and the KEK versions of the live data
// keys. It only reads: the keys package has no export of its key versions
// yet, so the data_keys table is counted here, read-only.
func ReadState(ctx context.Context, db *storage.DB) (State, error) {
	var s State
	var err error
	if s.AuditSize, s.AuditRoot, err = audit.HeadOf(ctx, db); err != nil {
		return s, fmt.Errorf("pgbackup: reading the audit head: %w", err)
	}
	c, err := records.Count(ctx, db)
	if err != nil {
		return s, fmt.Errorf("pgbackup: %w", err)
	}
	s.Patients, s.Records = c.Patients, c.Records
	rows, err := db.QueryContext(ctx, `SELECT kek_version, algorithm, count(*) FROM data_keys
		WHERE wrapped IS NOT NULL GROUP BY kek_version, algorithm ORDER BY kek_version, algorithm`)
	if err != nil {
		return s, fmt.Errorf("pgbackup: reading the key versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k KEKUse
		if err := rows.Scan(&k.Version, &k.Algorithm, &k.DataKeys); err != nil {
			return s, err
		}
		s.KEKVersions = append(s.KEKVersions, k)
	}
	return s, rows.Err()
}

// File is one repository file a backup consists of, by its path relative
// to the repository, as stored there (compressed and encrypted).
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is medguard's signed record of one pgBackRest backup.
type Manifest struct {
	Stanza    string     `json:"stanza"`
	Label     string     `json:"label"`
	Type      BackupType `json:"type"`
	Prior     string     `json:"prior,omitempty"`
	Reference []string   `json:"reference,omitempty"`
	Start     time.Time  `json:"start"`
	Stop      time.Time  `json:"stop"`
	StartLSN  string     `json:"start_lsn"`
	StopLSN   string     `json:"stop_lsn"`
	WALStart  string     `json:"wal_start"`
	WALStop   string     `json:"wal_stop"`
	ArchiveID string     `json:"archive_id"`
	Cipher    string     `json:"cipher"`
	// Repo is the pgBackRest repository that holds the backup (1 or 2;
	// absent, in manifests written before a second repository, means 1)
	// and RepoTarget where it is ("pgbackrest:DIR" or
	// "pgbackrest:s3://BUCKET/PATH?endpoint=…"): its files are read there.
	Repo       int    `json:"repo,omitempty"`
	RepoTarget string `json:"repo_target,omitempty"`
	// State is medguard's state read just before the backup began: every
	// audit entry up to AuditSize is in the backup.
	State State `json:"medguard"`
	// Files are the backup's own repository files and the WAL segments
	// that make it consistent.
	Files    []File    `json:"files"`
	SignedAt time.Time `json:"signed_at"`
	// Signer is the verifier key's name (the audit log's origin); set when
	// the manifest is opened.
	Signer string `json:"-"`
}

// Text is the manifest's note text: the format line and indented JSON.
func (m *Manifest) Text() (string, error) {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return "", err
	}
	return ManifestFormat + "\n" + string(b) + "\n", nil
}

// ManifestPath is where a backup's manifest is kept in dir.
func ManifestPath(dir, label string) string { return filepath.Join(dir, label+".manifest") }

// DefaultManifestDir is where manifests are kept when no other directory
// is given: beside pgBackRest's own directories in the repository.
func DefaultManifestDir(c Config) string { return filepath.Join(c.Repo, "medguard", c.Stanza) }

// Create takes a backup of the given type into repo1 with pgBackRest and
// writes its signed manifest into dir; see CreateIn.
func Create(ctx context.Context, t *Tool, db *storage.DB, typ BackupType, signer note.Signer, dir string) (*Manifest, error) {
	return CreateIn(ctx, t, 1, db, typ, signer, dir)
}

// CreateIn takes a backup of the given type into repository repo (1 or 2)
// with pgBackRest and writes its signed manifest into dir, naming the
// repository and the SHA-256 of every file the backup consists of there.
// db is medguard's database (the cluster being backed up); signer is the
// audit log's note signer.
func CreateIn(ctx context.Context, t *Tool, repo int, db *storage.DB, typ BackupType, signer note.Signer, dir string) (*Manifest, error) {
	repo = repoOr1(repo)
	st, err := openStore(t.Config, repo)
	if err != nil {
		return nil, err
	}
	state, err := ReadState(ctx, db)
	if err != nil {
		return nil, err
	}
	label, err := t.BackupTo(ctx, repo, typ)
	if err != nil {
		return nil, err
	}
	info, err := t.Info(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := info.Backup(label)
	if !ok {
		return nil, fmt.Errorf("pgbackup: backup %s is not listed by pgbackrest info", label)
	}
	if _, err := os.Stat(ManifestPath(dir, label)); err == nil {
		return nil, fmt.Errorf("pgbackup: a manifest for a backup labelled %s already exists in %s", label, dir)
	}
	m := &Manifest{Stanza: t.Config.Stanza, Label: b.Label, Type: b.Type, Prior: b.Prior, Reference: b.Reference,
		Start: b.Start, Stop: b.Stop, StartLSN: b.StartLSN, StopLSN: b.StopLSN, WALStart: b.WALStart, WALStop: b.WALStop,
		ArchiveID: b.ArchiveID, Cipher: info.CipherOf(repo), Repo: repo, RepoTarget: t.Config.RepoTarget(repo),
		State: state, SignedAt: time.Now().UTC().Truncate(time.Second)}
	if m.Files, err = repoFiles(ctx, st, m); err != nil {
		return nil, err
	}
	// The audit log's key rotations, beside the manifests: a manifest
	// signed after one verifies from the key before it.
	if err := ShipTransitions(ctx, db, dir); err != nil {
		return nil, err
	}
	if err := writeManifest(dir, m, signer); err != nil {
		return nil, err
	}
	m.Signer = signer.Name()
	return m, nil
}

func writeManifest(dir string, m *Manifest, signer note.Signer) error {
	text, err := m.Text()
	if err != nil {
		return err
	}
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return fmt.Errorf("pgbackup: signing the manifest: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	path := ManifestPath(dir, m.Label)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	if _, err := f.Write(msg); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("pgbackup: writing the manifest: %w", err)
	}
	return nil
}

// backupDir and archiveDir are a backup's directory and its WAL archive
// directory, relative to the repository.
func backupDir(stanza, label string) string { return filepath.Join("backup", stanza, label) }
func archiveDir(stanza, id string) string   { return filepath.Join("archive", stanza, id) }

// repoFiles hashes the backup's directory and the WAL segments from
// WALStart to WALStop (and their .backup history file).
func repoFiles(ctx context.Context, st store, m *Manifest) ([]File, error) {
	bdir := backupDir(m.Stanza, m.Label)
	own, err := st.list(ctx, bdir)
	if err != nil {
		return nil, fmt.Errorf("pgbackup: listing the backup's files: %w", err)
	}
	wal, err := walFiles(ctx, st, m)
	if err != nil {
		return nil, err
	}
	if len(wal) == 0 {
		return nil, fmt.Errorf("pgbackup: no archived WAL segment from %s to %s in the repository", m.WALStart, m.WALStop)
	}
	var files []File
	for _, sf := range append(own, wal...) {
		f, err := st.hash(ctx, sf.Path)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// walFiles lists the archived WAL files whose segment name lies in the
// backup's range. Segment names are fixed-width hexadecimal, so within a
// timeline their order is the strings' order.
func walFiles(ctx context.Context, st store, m *Manifest) ([]storeFile, error) {
	if m.WALStart == "" || m.WALStop == "" || m.ArchiveID == "" {
		return nil, errors.New("pgbackup: pgbackrest info gave no WAL range for the backup")
	}
	all, err := st.list(ctx, archiveDir(m.Stanza, m.ArchiveID))
	if err != nil {
		return nil, fmt.Errorf("pgbackup: listing the WAL archive: %w", err)
	}
	var out []storeFile
	for _, f := range all {
		base := path.Base(f.Path)
		if len(base) < 24 {
			continue
		}
		if seg := base[:24]; seg >= m.WALStart && seg <= m.WALStop {
			out = append(out, f)
		}
	}
	return out, nil
}

func hashFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// OpenManifest reads and verifies a signed manifest with the note verifier
// key (the audit log's, "medguard audit key" prints it).
func OpenManifest(path, verifierKey string) (*Manifest, error) {
	msg, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pgbackup: %w", err)
	}
	kc, err := dirKeys(filepath.Dir(path), verifierKey)
	if err != nil {
		return nil, err
	}
	signed, maySign, err := kc.open(msg)
	if err != nil {
		return nil, &VerifyError{Label: strings.TrimSuffix(filepath.Base(path), ".manifest"),
			Problems: []string{fmt.Sprintf("the manifest %s is not signed by %s or a key its rotations link to it (%v)", path,
				audit.KeyName(strings.TrimSpace(verifierKey)), err)}}
	}
	text, ok := strings.CutPrefix(signed, ManifestFormat+"\n")
	if !ok {
		return nil, fmt.Errorf("pgbackup: %s is not a medguard pgbackup manifest", path)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("pgbackup: %s: %w", path, err)
	}
	if m.Label+".manifest" != filepath.Base(path) {
		return nil, &VerifyError{Label: m.Label, Problems: []string{fmt.Sprintf("the manifest %s names backup %s", path, m.Label)}}
	}
	name, err := maySign(m.State.AuditSize)
	if err != nil {
		return nil, &VerifyError{Label: m.Label, Problems: []string{fmt.Sprintf("the manifest %s: %v", path, err)}}
	}
	m.Signer, _, _ = strings.Cut(name, "+")
	return &m, nil
}

// VerifyError lists what is wrong with a backup: each problem names the
// file (changed, missing, extra) or the signature.
type VerifyError struct {
	Label    string
	Problems []string
}

func (e *VerifyError) Error() string {
	const most = 20
	p := e.Problems
	more := ""
	if len(p) > most {
		more = fmt.Sprintf("\n  … and %d more", len(p)-most)
		p = p[:most]
	}
	return fmt.Sprintf("backup %s does not verify:\n  %s%s", e.Label, strings.Join(p, "\n  "), more)
}

// Report is what a successful verification checked.
type Report struct {
	// Chain is the verified manifests, the one asked for first, then every
	// backup it builds on.
	Chain []*Manifest
	// Files and Bytes are how many repository files were hashed.
	Files int
	Bytes int64
	// RepoReport is pgbackrest verify's report of the repository (Repo)
	// that holds the chain.
	RepoReport string
	Repo       int
}

// Verify checks the backup labelled label before anything is restored
// from it: its manifest's signature, then every repository file it lists
// (a changed, missing or extra file in its backup directory is named),
// then the same for every earlier backup it references, and finally
// "pgbackrest verify" over the whole repository that holds it (the one
// its signed manifest names: repo1 or repo2, a directory or S3).
func Verify(ctx context.Context, t *Tool, dir, label, verifierKey string) (*Report, error) {
	rep := &Report{}
	first, err := OpenManifest(ManifestPath(dir, label), verifierKey)
	if err != nil {
		return nil, err
	}
	repo := repoOr1(first.Repo)
	rep.Repo = repo
	st, err := openStore(t.Config, repo)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var check func(label string) error
	check = func(label string) error {
		if seen[label] {
			return nil
		}
		seen[label] = true
		m, err := OpenManifest(ManifestPath(dir, label), verifierKey)
		if err != nil {
			return err
		}
		if repoOr1(m.Repo) != repo {
			return &VerifyError{Label: m.Label, Problems: []string{fmt.Sprintf(
				"the manifest says repository %d holds the backup, but the chain is in repository %d", repoOr1(m.Repo), repo)}}
		}
		problems := checkFiles(ctx, st, m, rep)
		if len(problems) > 0 {
			return &VerifyError{Label: m.Label, Problems: problems}
		}
		rep.Chain = append(rep.Chain, m)
		for _, ref := range m.Reference {
			if err := check(ref); err != nil {
				return fmt.Errorf("backup %s builds on %s: %w", m.Label, ref, err)
			}
		}
		return nil
	}
	if err := check(label); err != nil {
		return nil, err
	}
	report, err := t.VerifyRepo(ctx, repo)
	rep.RepoReport = report
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// checkFiles compares the repository with the manifest's file list.
func checkFiles(ctx context.Context, st store, m *Manifest, rep *Report) []string {
	var problems []string
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		got, err := st.hash(ctx, f.Path)
		switch {
		case isNotExist(err):
			problems = append(problems, "missing: "+f.Path)
		case err != nil:
			problems = append(problems, fmt.Sprintf("unreadable: %s (%v)", f.Path, err))
		case got.Size != f.Size:
			problems = append(problems, fmt.Sprintf("changed: %s (%d bytes, the manifest says %d)", f.Path, got.Size, f.Size))
		case got.SHA256 != f.SHA256:
			problems = append(problems, fmt.Sprintf("changed: %s (SHA-256 differs from the signed manifest)", f.Path))
		default:
			rep.Files++
			rep.Bytes += got.Size
		}
	}
	own, err := st.list(ctx, backupDir(m.Stanza, m.Label))
	if err != nil {
		return append(problems, fmt.Sprintf("the backup's directory %s cannot be listed (expired or removed?): %v",
			backupDir(m.Stanza, m.Label), errors.Unwrap(err)))
	}
	for _, f := range own {
		if !listed[f.Path] {
			problems = append(problems, "extra: "+f.Path)
		}
	}
	return problems
}

// Listed is one manifest in a directory, or why it could not be read.
type Listed struct {
	Label    string
	Manifest *Manifest
	Err      error
}

// List reads every manifest in dir (checking signatures, not files), in
// label order: oldest first.
func List(dir, verifierKey string) ([]Listed, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgbackup: %w", err)
	}
	var out []Listed
	for _, e := range entries {
		label, ok := strings.CutSuffix(e.Name(), ".manifest")
		if !ok || e.IsDir() {
			continue
		}
		m, err := OpenManifest(filepath.Join(dir, e.Name()), verifierKey)
		out = append(out, Listed{Label: label, Manifest: m, Err: err})
	}
	return out, nil
}

// CheckRestored checks a restored database against the manifest of the
// backup it came from: the whole audit log verifies, and the tree's root
// at the manifest's size is the manifest's root (the restored copy may
// hold more entries, replayed from WAL after the backup began).
func CheckRestored(ctx context.Context, db *storage.DB, m *Manifest) (*audit.VerifyReport, error) {
	var cps []audit.Checkpoint
	if m.State.AuditSize > 0 {
		cps = append(cps, audit.Checkpoint{Size: m.State.AuditSize, Root: m.State.AuditRoot})
	}
	rep, err := audit.Verify(ctx, db, audit.VerifyOptions{Checkpoints: cps})
	if err != nil {
		return nil, fmt.Errorf("pgbackup: the restored database's audit log does not match backup %s: %w", m.Label, err)
	}
	if rep.Size < m.State.AuditSize {
		return rep, fmt.Errorf("pgbackup: the restored audit log has %d entries, fewer than the %d backup %s holds", rep.Size, m.State.AuditSize, m.Label)
	}
	return rep, nil
}

// Root is the manifest's audit root in base64, as checkpoints show it.
func (m *Manifest) Root() string { return base64.StdEncoding.EncodeToString(m.State.AuditRoot) }
