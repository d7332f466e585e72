package pgbackup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"medguard"
	"medguard/internal/audit"
	"medguard/internal/backup"
	"medguard/internal/keys"
	"medguard/internal/records"
	"medguard/internal/storage"
)

// DrillHeader is the first line of a signed drill record: the same as the
// SQLite backups' drills (package backup), so one console reads both.
const DrillHeader = "medguard backup drill v1"

// DrillDir is where drill records are kept: beside the manifests.
func DrillDir(manifestDir string) string { return filepath.Join(manifestDir, "drills") }

// Target names the repository as a backup target (what Status and the
// drills show): "pgbackrest:REPO".
func (c Config) Target() string { return "pgbackrest:" + c.Repo }

// DrillOptions say what a restore drill restores, where, and with what.
type DrillOptions struct {
	Tool *Tool
	// ManifestDir holds the signed manifests; the drill is recorded in
	// its drills/ directory.
	ManifestDir string
	VerifierKey string
	// Signer signs the drill record (the audit log's note key).
	Signer note.Signer
	// Label is the backup to restore; empty: the latest in Repo.
	Label string
	// Repo is the repository to drill from when no Label is given (1 or
	// 2, 0 meaning 1); a labelled backup is restored from the repository
	// its signed manifest names, whatever Repo says.
	Repo int
	// KeyFile must hold every KEK version the backup needs and open the
	// restored data keys.
	KeyFile *keys.KeyFile
	// Scratch is the scratch cluster's data directory: it must not exist
	// or be empty, and is removed afterwards. Empty: a temporary one.
	Scratch string
	// Port is the scratch cluster's port (it listens on a Unix socket of
	// its own only); 0: a free one.
	Port int
	// PGBin holds PostgreSQL's server binaries (pg_ctl); empty: the newest
	// /usr/lib/postgresql/*/bin.
	PGBin string
	// Database is medguard's database in the cluster (default medguard).
	Database string
	// Sample is how many patients and records are decrypted (default 20).
	Sample int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Step, if set, is told each step as it ends.
	Step func(backup.Step)
}

// RunDrill restores a backup into a scratch cluster and checks it: the
// backup and the chain it builds on verify, the key file holds the KEK
// versions it needs, the restored cluster starts and answers, its audit
// log verifies with the root at the manifest's size equal to the
// manifest's, it holds at least the patients and records the manifest
// counted, and a sample of patients' and records' fields decrypts with the
// key file. RTO is the time from the start of verification until the
// checks pass; RPO the age of the newest write (audit entry) in the
// restored copy. The scratch cluster is stopped and removed, and the drill
// is recorded, signed, in DrillDir — a failed drill too.
func RunDrill(ctx context.Context, o DrillOptions) (*backup.Drill, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if o.Sample <= 0 {
		o.Sample = 20
	}
	d := &backup.Drill{StartedAt: now().UTC(), Target: o.Tool.Config.RepoTarget(repoOr1(o.Repo))}
	// Milliseconds: a drill refused at once and the next one can start in
	// the same second.
	d.ID = d.StartedAt.Format("20060102T150405.000Z") + "-drill"
	err := drill(ctx, o, d)
	if err != nil {
		d.Problem = err.Error()
	}
	d.OK = err == nil
	if rerr := recordDrill(DrillDir(o.ManifestDir), d, o.Signer); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return d, err
}

func drill(ctx context.Context, o DrillOptions, d *backup.Drill) error {
	t := o.Tool
	label := o.Label
	if label == "" {
		info, err := t.Info(ctx)
		if err != nil {
			return err
		}
		b, ok := info.Latest(repoOr1(o.Repo))
		if !ok {
			return fmt.Errorf("no backup in repository %d (%s)", repoOr1(o.Repo), t.Config.RepoTarget(repoOr1(o.Repo)))
		}
		label = b.Label
	}
	d.Backup = label
	step := func(name string, began time.Time) {
		s := backup.Step{Name: name, Took: time.Since(began)}
		d.Steps = append(d.Steps, s)
		if o.Step != nil {
			o.Step(s)
		}
	}
	t0 := time.Now()
	rep, err := Verify(ctx, t, o.ManifestDir, label, o.VerifierKey)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup %s has no signed manifest in %s (not taken by medguard?)", label, o.ManifestDir)
	}
	if err != nil {
		return err
	}
	m := rep.Chain[0]
	d.Target = t.Config.RepoTarget(rep.Repo)
	if o.KeyFile == nil {
		return errors.New("no key file to check the restored data keys with")
	}
	for _, k := range m.State.KEKVersions {
		if _, ok := o.KeyFile.KEKVersion(k.Version); !ok {
			return fmt.Errorf("backup %s needs KEK version %d, which the key file lacks", m.Label, k.Version)
		}
	}
	step("verify", t0) // signed manifests, SHA-256 of every file, pgbackrest verify

	sc, err := newScratch(o)
	if err != nil {
		return err
	}
	defer sc.remove(t)
	t1 := time.Now()
	if err := t.Restore(ctx, RestoreOptions{DataDir: sc.data, Set: label, Port: sc.port, Socket: sc.socket, Repo: rep.Repo}); err != nil {
		return err
	}
	if err := sc.private(); err != nil {
		return err
	}
	step("pgbackrest restore", t1)
	t1 = time.Now()
	db, err := sc.start(ctx, t, o.Database)
	if err != nil {
		return err
	}
	defer db.Close()
	step("start and replay", t1) // WAL replayed until PostgreSQL answers

	t1 = time.Now()
	audited, err := CheckRestored(ctx, db, m)
	if err != nil {
		return err
	}
	d.AuditSize = audited.Size
	step("audit verify", t1) // the root at the manifest's size
	t1 = time.Now()
	kr := keys.NewKeyring(db, o.KeyFile, medguard.SystemClock{})
	counts, err := records.Count(ctx, db)
	if err != nil {
		return err
	}
	d.Patient, d.Records = counts.Patients, counts.Records
	if counts.Patients < m.State.Patients || counts.Records < m.State.Records {
		return fmt.Errorf("the restored copy holds %d patients and %d records, fewer than the %d and %d backup %s counted",
			counts.Patients, counts.Records, m.State.Patients, m.State.Records, m.Label)
	}
	sample, err := records.SampleRead(ctx, db, kr, o.Sample)
	d.SamplePatients, d.SampleRecords, d.SampleFields = sample.Patients, sample.Records, sample.Fields
	if err != nil {
		return err
	}
	step("sample decryption", t1) // counts, and every field of a sample of patients and records
	d.RTO = time.Since(t0)
	if audited.Size > 0 {
		es, err := audit.ReadEntries(ctx, db, audited.Size-1, audited.Size)
		if err != nil || len(es) != 1 {
			return fmt.Errorf("reading the restored copy's newest audit entry: %v", err)
		}
		d.RPO = d.StartedAt.Sub(es[0].Entry.Time)
	}
	return nil
}

// scratch is a drill's throw-away cluster.
type scratch struct {
	data, socket, log string
	port              int
	bin               string
	runAs             string
	made              string // a temporary directory the drill made, removed
	started           bool
}

func newScratch(o DrillOptions) (*scratch, error) {
	sc := &scratch{runAs: o.Tool.RunAs, port: o.Port, bin: o.PGBin}
	if sc.bin == "" {
		var err error
		if sc.bin, err = NewestPGBin(); err != nil {
			return nil, err
		}
	}
	if sc.port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		sc.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	uid, gid, err := lookupOwner(sc.runAs)
	if err != nil {
		return nil, err
	}
	// The socket directory is the drill's own, 0700 and PostgreSQL's: the
	// scratch cluster listens nowhere else.
	if sc.made, err = os.MkdirTemp("", "mgdrill-"); err != nil {
		return nil, err
	}
	if uid >= 0 {
		if err := os.Chown(sc.made, uid, gid); err != nil {
			os.RemoveAll(sc.made)
			return nil, err
		}
	}
	sc.socket = sc.made
	if o.Scratch == "" {
		sc.data = filepath.Join(sc.made, "data")
	} else {
		sc.data, _ = filepath.Abs(o.Scratch)
		if entries, err := os.ReadDir(sc.data); err == nil && len(entries) > 0 {
			os.RemoveAll(sc.made)
			return nil, fmt.Errorf("the scratch directory %s is not empty: a drill restores into an empty one and removes it", sc.data)
		}
	}
	sc.log = filepath.Join(sc.made, "postgresql.log")
	return sc, nil
}

// private makes the restored copy reachable by its owner only: no TCP,
// the socket in the drill's 0700 directory, and an authentication file
// of its own that trusts that socket (a production pg_hba.conf, if the
// data directory holds one, may ask for passwords the drill does not
// have). A Debian cluster keeps postgresql.conf outside its data
// directory: an empty one is written then.
func (sc *scratch) private() error {
	uid, gid, err := lookupOwner(sc.runAs)
	if err != nil {
		return err
	}
	write := func(name, text string) error {
		path := filepath.Join(sc.data, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return fmt.Errorf("pgbackup: %w", err)
		}
		if uid >= 0 {
			return os.Chown(path, uid, gid)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(sc.data, "postgresql.conf")); errors.Is(err, fs.ErrNotExist) {
		if err := write("postgresql.conf", "# written by medguard's drill: the production configuration lives elsewhere\n"); err != nil {
			return err
		}
	}
	if err := write("medguard_drill_hba.conf", "local all all trust\n"); err != nil {
		return err
	}
	if err := write("medguard_drill_ident.conf", ""); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(sc.data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	fmt.Fprintf(f, "# a drill's scratch copy: its own socket only\nlisten_addresses = ''\nunix_socket_permissions = 0700\n"+
		"hba_file = '%s'\nident_file = '%s'\nssl = off\n",
		filepath.Join(sc.data, "medguard_drill_hba.conf"), filepath.Join(sc.data, "medguard_drill_ident.conf"))
	return f.Close()
}

func (sc *scratch) command(ctx context.Context, argv ...string) *exec.Cmd {
	if sc.runAs != "" && os.Geteuid() == 0 {
		argv = append([]string{"runuser", "-u", sc.runAs, "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	return cmd
}

// start starts the scratch cluster and waits until it answers out of
// recovery (WAL replayed, promoted).
func (sc *scratch) start(ctx context.Context, t *Tool, database string) (*storage.DB, error) {
	if database == "" {
		database = "medguard"
	}
	out, err := sc.command(ctx, filepath.Join(sc.bin, "pg_ctl"), "-D", sc.data, "-l", sc.log, "-w", "-t", "3600", "start").CombinedOutput()
	sc.started = true
	if err != nil {
		return nil, fmt.Errorf("the scratch cluster did not start: %v: %s%s", err, strings.TrimSpace(string(out)), sc.logTail())
	}
	dsn := fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", t.Config.PGUser, database, sc.socket, sc.port)
	deadline := time.Now().Add(time.Hour)
	for {
		db, err := storage.Open(ctx, dsn, "")
		if err == nil {
			var inRecovery bool
			if err = db.QueryRowContext(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err == nil && !inRecovery {
				return db, nil
			}
			db.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the scratch cluster did not come out of recovery: %v%s", err, sc.logTail())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail is the end of the scratch cluster's log, for an error message.
func (sc *scratch) logTail() string {
	b, err := os.ReadFile(sc.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// remove stops the scratch cluster and removes its directories.
func (sc *scratch) remove(t *Tool) {
	if sc.started {
		sc.command(context.Background(), filepath.Join(sc.bin, "pg_ctl"), "-D", sc.data, "-m", "immediate", "-w", "stop").Run()
	}
	os.RemoveAll(sc.data)
	os.RemoveAll(sc.made)
}

// NewestPGBin is the newest /usr/lib/postgresql/*/bin holding pg_ctl.
func NewestPGBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(dirs) == 0 {
		return "", errors.New("pgbackup: no PostgreSQL server binaries under /usr/lib/postgresql: give their directory")
	}
	ver := func(p string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p)))); return n }
	sort.Slice(dirs, func(i, j int) bool { return ver(dirs[i]) < ver(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

// recordDrill writes the drill, signed, as DIR/ID.drill.
func recordDrill(dir string, d *backup.Drill, signer note.Signer) error {
	if signer == nil {
		return errors.New("pgbackup: no signer to record the drill with")
	}
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	msg, err := note.Sign(&note.Note{Text: DrillHeader + "\n" + string(body) + "\n"}, signer)
	if err != nil {
		return fmt.Errorf("pgbackup: signing the drill: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("pgbackup: %w", err)
	}
	path := filepath.Join(dir, d.ID+".drill")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, msg, 0o640); err != nil {
		return fmt.Errorf("pgbackup: recording the drill: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pgbackup: recording the drill: %w", err)
	}
	return nil
}

// ListDrills reads the drill records in dir whose signature verifies with
// the verifier key (never a key read from the repository), or a key the
// audit log's transition checkpoints (TransitionsFile in dir's parent, the
// manifest directory) link to it, oldest first;
// ones that do not verify are left out.
func ListDrills(dir, verifierKey string) ([]backup.Drill, error) {
	kc, err := dirKeys(filepath.Dir(dir), verifierKey)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgbackup: %w", err)
	}
	var out []backup.Drill
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".drill") {
			continue
		}
		msg, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		text, maySign, err := kc.open(msg)
		if err != nil {
			continue
		}
		body, ok := strings.CutPrefix(text, DrillHeader+"\n")
		if !ok {
			continue
		}
		var d backup.Drill
		if err := json.Unmarshal([]byte(body), &d); err != nil || d.ID+".drill" != e.Name() {
			continue
		}
		if _, err := maySign(d.AuditSize); err != nil {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out, nil
}
